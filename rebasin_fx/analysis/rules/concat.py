"""Direct sums: cat, stack, split/chunk, unbind, slice and select along one axis."""

from __future__ import annotations

from ..registry import aten, rule


@rule(*aten("cat", "concat", "concatenate"))
def cat(ctx, node):
    parts = [p for p in node.args[0] if ctx.axes(p) is not None]
    out = ctx.fresh_out()
    dim = int(ctx.arg(1, "dim", 0)) % len(out)
    pieces = []
    for p in parts:
        ax = ctx.axes(p)
        if len(ax) != len(out):  # legacy: empty 1-D tensors are skipped by cat
            continue
        pieces.append(ax[dim])
        ctx.unify_except(ax, out, dim)
    ctx.unify(out[dim], ctx.terms.sum(pieces), "cat")
    return out


@rule(*aten("stack"))
def stack(ctx, node):
    parts = [ctx.axes(p) for p in node.args[0]]
    out = ctx.fresh_out()
    dim = int(ctx.arg(1, "dim", 0)) % len(out)
    ctx.pin([out[dim]], "stacked axis")
    rest = out[:dim] + out[dim + 1 :]
    for ax in parts:
        if ax is not None:
            ctx.unify_all(ax, rest)
    return out


def _split_outputs(ctx, node, dim_arg: int, default_dim: int = 0):
    x = ctx.axes(node.args[0])
    outs = ctx.fresh_out()
    dim = int(ctx.arg(dim_arg, "dim", default_dim)) % len(x)
    for o in outs:
        ctx.unify_except(x, o, dim)
    ctx.unify(x[dim], ctx.terms.sum([o[dim] for o in outs]), "split")
    return outs


@rule(*aten("split", "split_with_sizes", "chunk", "split_copy", "split_with_sizes_copy", "unsafe_split",
            "unsafe_chunk", "unsafe_split_with_sizes"))
def split(ctx, node):
    return _split_outputs(ctx, node, dim_arg=2)


@rule(*aten("tensor_split"))
def tensor_split(ctx, node):
    return _split_outputs(ctx, node, dim_arg=2)


def _pick(ctx, node, outs, reason):
    """unbind/select: the axis picked along is pinned; every output keeps the other axes."""
    x = ctx.axes(node.args[0])
    dim = int(ctx.arg(1, "dim", 0)) % len(x)
    ctx.pin([x[dim]], reason)
    for o in outs:
        ctx.unify_all(x[:dim] + x[dim + 1 :], o)


@rule(*aten("unbind", "unbind_copy"))
def unbind(ctx, node):
    outs = ctx.fresh_out()
    _pick(ctx, node, outs, "unbind selects by position along this axis")
    return outs


@rule(*aten("slice", "slice_copy"))
def slice_(ctx, node):
    """A contiguous slice is one part of a direct sum: before (+) kept (+) after."""
    x = ctx.axes(node.args[0])
    out = ctx.fresh_out()
    n = len(x)
    dim = int(ctx.arg(1, "dim", 0)) % n
    size = x[dim].size
    start = ctx.arg(2, "start", None)
    end = ctx.arg(3, "end", None)
    step = int(ctx.arg(4, "step", 1) or 1)
    start = 0 if start is None else int(start)
    end = size if end is None else int(end)
    start = max(0, start + size if start < 0 else start)
    end = min(size, end + size if end < 0 else end)
    ctx.unify_except(x, out, dim)
    if step != 1:
        ctx.pin([x[dim], out[dim]], "strided slice")
        return out
    t = ctx.terms
    before, after = t.new(max(0, start)), t.new(max(0, size - max(end, start)))
    ctx.unify(x[dim], t.sum([before, out[dim], after]), "slice")
    return out


@rule(*aten("select", "select_copy"))
def select(ctx, node):
    out = ctx.fresh_out()
    _pick(ctx, node, [out], "select picks one position along this axis")
    return out
