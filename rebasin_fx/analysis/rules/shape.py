"""Shape ops: reshape into products, cat/split as direct sums, axis moves, matmul.

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
        for i, (a, o) in enumerate(zip(ax, out)):
            if i != dim:
                ctx.unify(a, o)
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
        for i, (a, b) in enumerate(zip(x, o)):
            if i != dim:
                ctx.unify(a, b)
    ctx.unify(x[dim], ctx.terms.sum([o[dim] for o in outs]), "split")
    return outs


@rule(*aten("split", "split_with_sizes", "chunk", "split_copy", "split_with_sizes_copy", "unsafe_split",
            "unsafe_chunk", "unsafe_split_with_sizes"))
def split(ctx, node):
    return _split_outputs(ctx, node, dim_arg=2)


@rule(*aten("tensor_split"))
def tensor_split(ctx, node):
    return _split_outputs(ctx, node, dim_arg=2)


@rule(*aten("unbind", "unbind_copy"))
def unbind(ctx, node):
    x = ctx.axes(node.args[0])
    outs = ctx.fresh_out()
    dim = int(ctx.arg(1, "dim", 0)) % len(x)
    ctx.pin([x[dim]], "unbind selects by position along this axis")
    rest = x[:dim] + x[dim + 1 :]
    for o in outs:
        ctx.unify_all(rest, o)
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
    for i, (a, o) in enumerate(zip(x, out)):
        if i != dim:
            ctx.unify(a, o)
    if step != 1:
        ctx.pin([x[dim], out[dim]], "strided slice")
        return out
    t = ctx.terms
    before, after = t.new(max(0, start)), t.new(max(0, size - max(end, start)))
    ctx.unify(x[dim], t.sum([before, out[dim], after]), "slice")
    return out


@rule(*aten("select", "select_copy"))
def select(ctx, node):
    x = ctx.axes(node.args[0])
    out = ctx.fresh_out()
    dim = int(ctx.arg(1, "dim", 0)) % len(x)
    ctx.pin([x[dim]], "select picks one position along this axis")
    ctx.unify_all(x[:dim] + x[dim + 1 :], out)
    return out


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


def _pin_dims_rule(dims_of):
    """Ops that move values along some axes (roll, flip): those axes are pinned, the rest pass."""

    def fn(ctx, node):
        x = ctx.axes(node.args[0])
        out = ctx.fresh_out()
        dims = [int(d) % len(x) for d in dims_of(ctx)]
        for i, (a, o) in enumerate(zip(x, out)):
            if i in dims:
                ctx.pin([a, o], f"{node.target.overloadpacket.__name__} along this axis")
            else:
                ctx.unify(a, o)
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
    for i, (a, o) in enumerate(zip(x, out)):
        if i == dim:
            ctx.unify(o, t.product([a, t.new(reps)]), "repeat_interleave")
        else:
            ctx.unify(a, o)
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
    for i, (a, o) in enumerate(zip(x, out)):
        if i != 1:
            ctx.unify(a, o)
    G, K = t.new(g), t.new(x[1].size // g)
    ctx.unify(x[1], t.product([G, K]), "channel_shuffle")
    ctx.unify(out[1], t.product([K, G]), "channel_shuffle")
    return out


@rule(*aten("baddbmm", "addbmm"))
def baddbmm(ctx, node):
    """input + b1 @ b2 (batched): the product rule plus a broadcast add."""
    from .elementwise import broadcast

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
rule(*aten("diff", "cummax", "cummin"))(_pin_dims_rule(lambda ctx: [ctx.arg(2, "dim", -1) if ctx.node.target.overloadpacket.__name__ == "diff" else ctx.arg(1, "dim")]))
@rule(*aten("gather", "take_along_dim"))
def gather(ctx, node):
    """Values picked by an index tensor: everything it touches is pinned."""
    out = ctx.fresh_out()
    ctx.pin([ctx.axes(a) for a in node.args if ctx.axes(a) is not None] + [out], "gather by index")
    return out
