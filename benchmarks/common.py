"""What every benchmark script shares: its command line (--quick, --json) and the table it prints."""

from __future__ import annotations

import argparse
import json
from typing import Callable


def main(run: Callable[[bool], list], header: str, argv=None) -> int:
    """Print ``header``, run (quick or full), optionally write the rows as JSON."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small models only (the test suite's smoke run)")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args(argv)
    print(header)
    rows = run(args.quick)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0
