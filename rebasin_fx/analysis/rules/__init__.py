"""Op rules, one file per op family. Importing this package registers them all."""

from . import attention, constants, elementwise, params, reduce, shape  # noqa: F401
