"""Tensors made inside the graph.

Zeros, ones and fills are constant along every axis: their axes are fresh,
unconstrained terms (a broadcast, coupling nothing). Ranges and random tensors
vary along their axes: pinned.
"""

from __future__ import annotations

from ..registry import aten, rule

CONSTANT = aten("zeros", "ones", "full", "empty", "empty_strided", "new_zeros", "new_ones", "new_full",
                "new_empty", "new_empty_strided", "scalar_tensor", "zeros_like", "ones_like", "full_like",
                "empty_like")
VARYING = aten("arange", "linspace", "logspace", "rand", "randn", "randint", "randperm", "eye", "tensor",
               "lift_fresh_copy", "_to_copy_from_python")


@rule(*CONSTANT)
def constant(ctx, node):
    return ctx.fresh_out()


@rule(*VARYING)
def varying(ctx, node):
    out = ctx.fresh_out()
    ctx.pin(out, "values vary along this axis (range or random tensor)")
    return out
