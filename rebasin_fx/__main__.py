"""``python -m rebasin_fx``: the ``rebasin-fx`` command line (see rebasin_fx.cli)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
