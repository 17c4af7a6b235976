"""Op rules, one file per op family. Importing this package registers them all."""

from . import attention, concat, constants, elementwise, indexing, matmul, params, reduce, reshape  # noqa: F401
