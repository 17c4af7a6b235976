"""Products between tensors: matmul/mm/bmm, einsum, baddbmm. Contracted axes unify."""

from __future__ import annotations

from ..registry import aten, rule
from .elementwise import broadcast


@rule(*aten("matmul", "mm", "bmm"))
def matmul(ctx, node):
    """Contracted axes unify; batch axes broadcast; 1-D operands follow torch.matmul."""
    a, b = ctx.axes(node.args[0]), ctx.axes(node.args[1])
    out = ctx.fresh_out()
    if len(a) == 1 and len(b) == 1:
        ctx.unify(a[0], b[0])
        return out
    if len(b) == 1:
        ctx.unify(a[-1], b[0])
        ctx.unify_all(a[:-1], out)
        return out
    if len(a) == 1:
        ctx.unify(a[0], b[-2])
        ctx.unify_all(b[:-2] + b[-1:], out)
        return out
    ctx.unify(a[-1], b[-2])
    ctx.unify(a[-2], out[-2])
    ctx.unify(b[-1], out[-1])
    for x in (a[:-2], b[:-2]):
        for p, o in zip(reversed(x), reversed(out[:-2])):
            if p.size == o.size:
                ctx.unify(p, o)
    return out


@rule(*aten("einsum"))
def einsum(ctx, node):
    """Same letter, same term; letters summed away just unify across operands."""
    eq = node.args[0].replace(" ", "")
    ops = [ctx.axes(o) for o in node.args[1]]
    out = ctx.fresh_out()
    if "..." in eq or "->" not in eq:
        ctx.pin(ops + [out], "einsum with ellipsis or implicit output")
        return out
    lhs, rhs = eq.split("->")
    letters: dict[str, object] = {}
    for spec, ax in zip(lhs.split(","), ops):
        for ch, a in zip(spec, ax):
            if a.size == 1:
                continue
            if ch in letters:
                ctx.unify(letters[ch], a)
            else:
                letters[ch] = a
    for ch, o in zip(rhs, out):
        if ch in letters and o.size != 1:
            ctx.unify(letters[ch], o)
    return out


@rule(*aten("baddbmm", "addbmm"))
def baddbmm(ctx, node):
    """input + b1 @ b2 (batched): the product rule plus a broadcast add."""
    b1, b2 = ctx.axes(node.args[1]), ctx.axes(node.args[2])
    out = ctx.fresh_out()
    name = node.target.overloadpacket.__name__
    ctx.unify(b1[-1], b2[-2])
    ctx.unify(b1[-2], out[-2])
    ctx.unify(b2[-1], out[-1])
    if name == "baddbmm":
        ctx.unify(b1[0], out[0])
        ctx.unify(b2[0], out[0])
    broadcast(ctx, [node.args[0]], out)
    return out
