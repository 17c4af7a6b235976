"""Ops that pick or move values along an axis (indexing, gather, roll, flip, masks): those axes are pinned,
and so is every index tensor."""

from __future__ import annotations

from ..registry import aten, rule


def _pin_dims_rule(dims_of):
    """Ops that move values along some axes (roll, flip): those axes are pinned, the rest pass."""

    def fn(ctx, node):
        x = ctx.axes(node.args[0])
        out = ctx.fresh_out()
        dims = [int(d) % len(x) for d in dims_of(ctx)]
        ctx.unify_except(x, out, dims)
        ctx.pin([[x[d], out[d]] for d in dims], f"{node.target.overloadpacket.__name__} along this axis")
        return out

    return fn


def _roll_dims(ctx):
    dims = ctx.arg(2, "dims", None)
    if dims is None or (isinstance(dims, (list, tuple)) and not dims):
        return range(len(ctx.axes(ctx.node.args[0])))  # flattened roll moves everything
    return [dims] if isinstance(dims, int) else dims


rule(*aten("roll"))(_pin_dims_rule(_roll_dims))
rule(*aten("flip"))(_pin_dims_rule(lambda ctx: ctx.arg(1, "dims")))
@rule(*aten("index_select"))
def index_select(ctx, node):
    out = _pin_dims_rule(lambda c: [c.arg(1, "dim")])(ctx, node)
    ctx.pin([ctx.axes(node.args[2])], "index tensor")
    return out
rule(*aten("tril", "triu"))(_pin_dims_rule(lambda ctx: [-1, -2]))


@rule(*aten("index"))
def index(ctx, node):
    """x[..., idx, ...]: indexed axes are pinned; the others pass through to where torch puts them."""
    x = ctx.axes(node.args[0])
    indices = list(node.args[1])
    out = ctx.fresh_out()
    used = [i for i, ix in enumerate(indices) if ix is not None]
    ctx.pin([x[i] for i in used], "indexed axis")
    ctx.pin([ctx.axes(indices[i]) for i in used], "index tensor")
    idx_shapes = [ctx.axes(indices[i]) for i in used]
    if any(s is None for s in idx_shapes):
        ctx.pin([x, out], "indexing with a non-tensor index")
        return out
    n_idx = max(len(s) for s in idx_shapes)
    adjacent = used == list(range(used[0], used[-1] + 1))
    rest = [i for i in range(len(x)) if i not in used]
    if adjacent:
        pos = used[0]
        layout = [("x", i) for i in rest if i < pos] + [("idx", k) for k in range(n_idx)] + [("x", i) for i in rest if i > pos]
    else:
        layout = [("idx", k) for k in range(n_idx)] + [("x", i) for i in rest]
    if len(layout) != len(out):
        ctx.pin([x, out], "indexing with an unexpected result shape")
        return out
    for (kind, i), o in zip(layout, out):
        if kind == "x":
            ctx.unify(x[i], o)
        else:
            ctx.pin([o], "axis produced by indexing")
    return out


rule(*aten("diff", "cummax", "cummin"))(_pin_dims_rule(lambda ctx: [ctx.arg(2, "dim", -1) if ctx.node.target.overloadpacket.__name__ == "diff" else ctx.arg(1, "dim")]))
@rule(*aten("gather", "take_along_dim"))
def gather(ctx, node):
    """Values picked by an index tensor: everything it touches is pinned."""
    out = ctx.fresh_out()
    ctx.pin([ctx.axes(a) for a in node.args if ctx.axes(a) is not None] + [out], "gather by index")
    return out
