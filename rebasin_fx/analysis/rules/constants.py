"""Tensors made inside the graph, and which axes a tensor is constant along.

Zeros, ones and fills are constant along every axis; expand makes an axis
constant; element-wise ops keep an axis constant when every operand is constant
(or broadcast) along it. Reading such an axis gives a fresh term each time
(see ``Ctx.axes``), so a zero bias shared by several layers ties none of them.
Ranges and random tensors vary along their axes: pinned.
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


_EXPAND = {op for name in ("expand", "expand_as", "broadcast_to", "expand_copy") for op in aten(name)}


def constant_axes(ctx, node) -> frozenset[int]:
    """Axes of ``node``'s output along which its values cannot vary."""
    from .elementwise import BINARY, UNARY

    packet = getattr(node.target, "overloadpacket", None)
    shape = ctx.shape(node)
    if packet is None or shape is None:
        return frozenset()
    if packet in CONSTANT:
        return frozenset(range(len(shape)))
    if packet in _EXPAND:
        src = ctx.shape(node.args[0]) or ()
        inherited = _aligned(ctx, node.args[0], len(shape))
        return frozenset(i for i in range(len(shape))
                         if i in inherited or _size_from_right(src, i, len(shape)) in (None, 1) and shape[i] > 1)
    if packet in UNARY or packet in BINARY:
        operands = [a for a in list(node.args) + list(node.kwargs.values()) if ctx.shape(a) is not None]
        if not operands:
            return frozenset()
        out = set(range(len(shape)))
        for a in operands:
            src = ctx.shape(a)
            const = _aligned(ctx, a, len(shape))
            out &= {i for i in range(len(shape)) if i in const or _size_from_right(src, i, len(shape)) in (None, 1)}
        return frozenset(i for i in out if shape[i] > 1)
    return frozenset()


def _size_from_right(src, i, n):
    """Size of the operand axis that lines up with output axis i (None if the operand has none)."""
    k = i - (n - len(src))
    return src[k] if k >= 0 else None


def _aligned(ctx, x, n) -> set[int]:
    """The operand's constant axes, renumbered as output axes (right-aligned)."""
    const = ctx.constant.get(x, frozenset())
    src = ctx.shape(x) or ()
    return {i + (n - len(src)) for i in const}
