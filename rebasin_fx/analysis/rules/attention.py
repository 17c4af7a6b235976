"""Attention: scaled_dot_product_attention (the explicit matmul-softmax-matmul form
needs no rule of its own: matmul, softmax and the shape ops already tie its axes).

q [..., Hq, L, E], k [..., Hk, S, E], v [..., Hk, S, Ev] -> out [..., Hq, L, Ev].
Heads are shared by q, k, v and out; q and k share E; v and out share Ev.
Grouped-query attention (Hq = Hk * rep): query heads are ``Hk x Rep``.
"""

from __future__ import annotations

from ..registry import aten, rule
from .elementwise import broadcast


@rule(*aten("scaled_dot_product_attention"))
def sdpa(ctx, node):
    q, k, v = (ctx.axes(a) for a in node.args[:3])
    mask = ctx.arg(3, "attn_mask")
    out = ctx.fresh_out()
    t = ctx.terms
    ctx.unify(q[-1], k[-1])
    ctx.unify(out[-1], v[-1])
    ctx.unify(k[-2], v[-2])
    ctx.unify(out[-2], q[-2])
    if len(q) >= 3:
        hq, hk = q[-3], k[-3]
        ctx.unify(hk, v[-3])
        if hq.size == hk.size:
            ctx.unify(hq, hk)
        elif hk.size and hq.size % hk.size == 0:
            ctx.unify(hq, t.product([hk, t.new(hq.size // hk.size)]), "grouped-query attention")
        else:
            ctx.pin([hq, hk], "attention heads of q and k do not match")
        ctx.unify(out[-3], hq)
        for axes in (q, k, v):
            for a, o in zip(reversed(axes[:-3]), reversed(out[:-3])):
                if a.size == o.size:
                    ctx.unify(a, o)
    if ctx.axes(mask) is not None:
        scores = tuple(out[:-1]) + (k[-2],)
        broadcast(ctx, [mask], scores)
    return out
