"""Op rules, one file per op family. Importing this package registers them all."""

from . import elementwise, params, reduce, shape  # noqa: F401
