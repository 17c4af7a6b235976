"""Ops that rearrange one tensor's axes: reshape (as products), permute, expand, repeat, shuffles.

Reshapes are matched block by block: the smallest runs of input and output axes
with equal products; each block's input product is unified with its output
product, which refines atoms into factors (heads x head_dim) or pins them where
factor boundaries do not line up.
"""

from __future__ import annotations

from ..registry import aten, rule


def reshape_blocks(src: tuple[int, ...], dst: tuple[int, ...]) -> list[tuple[list[int], list[int]]] | None:
    """Pair the smallest runs of ``src`` and ``dst`` axes with equal products.

    Size-1 axes belong to no run (they carry no permutation).
    """
    si = [i for i, n in enumerate(src) if n != 1]
    dj = [j for j, n in enumerate(dst) if n != 1]
    blocks = []
    a = b = 0
    while a < len(si) and b < len(dj):
        bi, bj = [si[a]], [dj[b]]
        pi, pj = src[si[a]], dst[dj[b]]
        a, b = a + 1, b + 1
        while pi != pj:
            if pi < pj:
                if a == len(si):
                    return None
                bi.append(si[a])
                pi *= src[si[a]]
                a += 1
            else:
                if b == len(dj):
                    return None
                bj.append(dj[b])
                pj *= dst[dj[b]]
                b += 1
        blocks.append((bi, bj))
    if a != len(si) or b != len(dj):
        return None
    return blocks


@rule(*aten("view", "reshape", "_unsafe_view", "flatten", "unflatten", "squeeze", "squeeze_", "unsqueeze",
            "unsqueeze_", "view_as", "reshape_as", "_reshape_alias", "ravel"))
def reshape(ctx, node):
    x = ctx.axes(node.args[0])
    out = ctx.fresh_out()
    src, dst = tuple(a.size for a in x), tuple(a.size for a in out)
    blocks = reshape_blocks(src, dst)
    if blocks is None or 0 in src:
        ctx.pin([x, out], "reshape whose sizes could not be matched")
        return out
    t = ctx.terms
    for bi, bj in blocks:
        ctx.unify(t.product([x[i] for i in bi]), t.product([out[j] for j in bj]), "reshape")
    return out


def _dims(d, n):
    return [int(v) % n for v in d]


@rule(*aten("permute", "permute_copy"))
def permute(ctx, node):
    x = ctx.axes(node.args[0])
    out = ctx.fresh_out()
    for o, i in zip(out, _dims(node.args[1], len(x))):
        ctx.unify(o, x[i])
    return out


@rule(*aten("transpose", "transpose_", "swapaxes", "swapdims", "transpose_copy"))
def transpose(ctx, node):
    x = ctx.axes(node.args[0])
    out = ctx.fresh_out()
    n = len(x)
    d0, d1 = _dims(node.args[1:3], n) if n else (0, 0)
    order = list(range(n))
    if n:
        order[d0], order[d1] = order[d1], order[d0]
    for o, i in zip(out, order):
        ctx.unify(o, x[i])
    return out


@rule(*aten("t", "t_", "numpy_T", "mT", "adjoint"))
def t(ctx, node):
    x = ctx.axes(node.args[0])
    out = ctx.fresh_out()
    order = list(range(len(x)))
    if len(x) >= 2:
        order[-1], order[-2] = order[-2], order[-1]
    for o, i in zip(out, order):
        ctx.unify(o, x[i])
    return out


@rule(*aten("movedim", "moveaxis"))
def movedim(ctx, node):
    x = ctx.axes(node.args[0])
    out = ctx.fresh_out()
    n = len(x)
    src, dst = node.args[1], node.args[2]
    src = _dims([src] if isinstance(src, int) else src, n)
    dst = _dims([dst] if isinstance(dst, int) else dst, n)
    order = [None] * n
    for s, d in zip(src, dst):
        order[d] = s
    rest = iter(i for i in range(n) if i not in src)
    order = [o if o is not None else next(rest) for o in order]
    for o, i in zip(out, order):
        ctx.unify(o, x[i])
    return out


@rule(*aten("expand", "expand_as", "broadcast_to", "expand_copy"))
def expand(ctx, node):
    """Expanded axes are constant along themselves: fresh (unconstrained) terms."""
    x = ctx.axes(node.args[0])
    out = ctx.fresh_out()
    for a, o in zip(reversed(x), reversed(out)):
        if a.size == o.size:
            ctx.unify(a, o)
    return out


@rule(*aten("repeat"))
def repeat(ctx, node):
    """Tiling r times: the axis becomes pinned(r) x old axis; new leading axes are pinned."""
    x = ctx.axes(node.args[0])
    reps = list(node.args[1])
    out = ctx.fresh_out()
    lead = len(reps) - len(x)
    ctx.pin(list(out[:lead]), "axis added by repeat")
    t = ctx.terms
    for a, r, o in zip(x, reps[lead:], out[lead:]):
        if r == 1:
            ctx.unify(a, o)
        else:
            ctx.unify(o, t.product([t.pinned(r, ctx.note("repeat tiles this axis")), a]), "repeat")
    return out


@rule(*aten("repeat_interleave"))
def repeat_interleave(ctx, node):
    """Each unit copied r times in a row: the axis becomes old axis x (copies, constant along)."""
    x = ctx.axes(node.args[0])
    out = ctx.fresh_out()
    reps = node.args[1] if len(node.args) > 1 else None
    dim = ctx.arg(2, "dim", None)
    if x is None or not isinstance(reps, int) or dim is None:
        ctx.pin([x, out], "repeat_interleave with tensor repeats or no dim")
        return out
    dim = int(dim) % len(x)
    t = ctx.terms
    ctx.unify_except(x, out, dim)
    ctx.unify(out[dim], t.product([x[dim], t.new(reps)]), "repeat_interleave")
    return out


@rule(*aten("pixel_shuffle", "pixel_unshuffle"))
def pixel_shuffle(ctx, node):
    """pixel_shuffle: channels C*r*r -> C; the r*r part goes to the (pinned) spatial axes."""
    x = ctx.axes(node.args[0])
    out = ctx.fresh_out()
    r = int(node.args[1])
    t = ctx.terms
    n = len(x)
    ctx.unify_all(x[: n - 3], out[: n - 3])
    ctx.pin(list(x[n - 2 :]) + list(out[n - 2 :]), "spatial axes of pixel shuffle")
    if node.target.overloadpacket.__name__ == "pixel_shuffle":
        ctx.unify(x[n - 3], t.product([out[n - 3], t.pinned(r * r, ctx.note("pixel shuffle"))]), "pixel_shuffle")
    else:
        ctx.unify(out[n - 3], t.product([x[n - 3], t.pinned(r * r, ctx.note("pixel unshuffle"))]), "pixel_unshuffle")
    return out


@rule(*aten("channel_shuffle", "native_channel_shuffle"))
def channel_shuffle(ctx, node):
    """Channels g x c come out as c x g."""
    x = ctx.axes(node.args[0])
    out = ctx.fresh_out()
    g = int(node.args[1])
    t = ctx.terms
    ctx.unify_except(x, out, 1)
    G, K = t.new(g), t.new(x[1].size // g)
    ctx.unify(x[1], t.product([G, K]), "channel_shuffle")
    ctx.unify(out[1], t.product([K, G]), "channel_shuffle")
    return out
