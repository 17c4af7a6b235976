"""The docstring examples of the public API run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["rebasin_fx.trace", "rebasin_fx.spec", "rebasin_fx.permute", "rebasin_fx.derive",
           "rebasin_fx.solvers.weight_matching", "rebasin_fx.solvers.activation", "rebasin_fx.solvers.ste",
           "rebasin_fx.align", "rebasin_fx.norms", "rebasin_fx.repair", "rebasin_fx.interpolate",
           "rebasin_fx.barrier", "rebasin_fx.merge", "rebasin_fx.files", "rebasin_fx.compat"]


@pytest.mark.parametrize("name", MODULES)
def test_docstrings(name):
    mod = importlib.import_module(name)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
