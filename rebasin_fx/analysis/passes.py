"""Graph passes run before the analysis.

``split_stacked_slices``: a fused projection reshaped so that a leading axis of
size k stacks k tensors (qkv as ``reshape(B, N, 3, H, D)`` or ``unflatten(-1,
(3, E))``), then taken apart with unbind/select along that axis. Read as it is,
the stack axis is a factor of the projection's units, so q, k and v would share
one head_dim permutation. The pass rewrites it as a split of the projection's
axis into k parts, each reshaped and permuted on its own, which is the same
computation and lets each part keep its own permutation.
"""

from __future__ import annotations

import operator

import torch
import torch.fx

aten = torch.ops.aten

_RESHAPES = {aten.view.default, aten.reshape.default, aten._unsafe_view.default, aten.unflatten.int}
_PASS = {aten.contiguous.default, aten.clone.default, aten.alias.default}


def _shape(node):
    val = node.meta.get("val")
    return tuple(int(s) for s in val.shape) if isinstance(val, torch.Tensor) else None


def _track(node, labels):
    """Axis labels after one chain op, or None if the op is not a pure axis move."""
    t = node.target
    n = len(labels)
    if t in _PASS:
        return list(labels)
    if t is aten.permute.default:
        return [labels[int(d) % n] for d in node.args[1]]
    if t is aten.transpose.int:
        d0, d1 = int(node.args[1]) % n, int(node.args[2]) % n
        out = list(labels)
        out[d0], out[d1] = out[d1], out[d0]
        return out
    if t is aten.unsqueeze.default:
        d = int(node.args[1]) % (n + 1)
        return labels[:d] + [None] + labels[d:]
    if t in (aten.squeeze.dim, aten.squeeze.dims, aten.squeeze.default):
        shape = _shape(node.args[0])
        if t is aten.squeeze.default:
            dims = [i for i, s in enumerate(shape) if s == 1]
        else:
            dims = node.args[1] if t is aten.squeeze.dims else [node.args[1]]
            dims = [int(d) % n for d in dims if shape[int(d) % n] == 1]
        return [lab for i, lab in enumerate(labels) if i not in dims]
    return None


def _origin(y, d):
    """Walk back from (y, axis d) through single-user axis moves to the reshape that made the axis."""
    chain = []
    node, axis = y, d
    while True:
        if node.op != "call_function" or len(node.users) != (1 if chain else len(node.users)):
            return None
        if node.target in _RESHAPES:
            return node, chain
        if _track(node, list(range(len(_shape(node.args[0]) or ())))) is None:
            return None
        chain.append(node)
        node = node.args[0]
        if len(node.users) != 1:
            return None


def _split_axis(r):
    """For reshape r: map each output axis that is the outermost factor of exactly one input axis."""
    from .rules.reshape import reshape_blocks

    src, dst = _shape(r.args[0]), _shape(r)
    blocks = reshape_blocks(src, dst)
    out = {}
    for bi, bj in blocks or []:
        if len(bi) == 1 and len(bj) > 1:
            out[bj[0]] = bi[0]
    return out


def split_stacked_slices(graph: torch.fx.Graph) -> int:
    """Rewrite every qualifying stack-then-slice; returns how many were rewritten."""
    count = 0
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target not in (aten.unbind.int, aten.select.int):
            continue
        if node.graph is None or node not in node.graph.nodes:
            continue
        count += _rewrite(graph, node)
    return count


def _consumers(node):
    """[(index, node to replace)] for a select, or the getitems of an unbind; None if unusual."""
    if node.target is aten.select.int:
        return [(int(node.args[2]), node)]
    pairs = []
    for u in node.users:
        if u.target is not operator.getitem:
            return None
        pairs.append((int(u.args[1]), u))
    return pairs


def _dim(n) -> int:
    return int(n.args[1]) if len(n.args) > 1 else int(n.kwargs.get("dim", 0))


def _rewrite(graph, sel) -> int:
    y = sel.args[0]
    y_shape = _shape(y)
    if y_shape is None:
        return 0
    d = _dim(sel) % len(y_shape)
    # every user of y must be a select/unbind on the same axis
    users = list(y.users)
    if not all(u.target in (aten.unbind.int, aten.select.int) and _dim(u) % len(y_shape) == d for u in users):
        return 0
    found = _origin(y, d) if y.target not in _RESHAPES else (y, [])
    if found is None:
        return 0
    r, chain = found
    chain = list(reversed(chain))  # from r's output towards y
    r_out = _shape(r)
    labels = list(range(len(r_out)))
    for c in chain:
        labels = _track(c, labels)
        if labels is None:
            return 0
    p = labels[d]
    splits = _split_axis(r)
    if p is None or p not in splits:
        return 0
    a = splits[p]
    k = r_out[p]
    src = _shape(r.args[0])
    part = src[a] // k
    consumers = []
    for u in users:
        c = _consumers(u)
        if c is None:
            return 0
        consumers.extend(c)
    rest_labels = [lab for i, lab in enumerate(labels) if i != d]
    final_shape = [s for i, s in enumerate(y_shape) if i != d]
    kept = [lab for lab in rest_labels if lab is not None]  # r-axes (minus p) in final order
    part_shape = [s for i, s in enumerate(r_out) if i != p]
    r_axes = [i for i in range(len(r_out)) if i != p]
    order = [r_axes.index(lab) for lab in kept]

    def meta(n, shape, like):
        n.meta["val"] = torch.empty(shape, dtype=like.dtype, device="meta")
        if "stack_trace" in r.meta:
            n.meta["stack_trace"] = r.meta["stack_trace"]
        return n

    like = r.meta["val"]
    with graph.inserting_after(r):
        sp = graph.call_function(aten.split.Tensor, (r.args[0], part, a))
    sp.meta["val"] = [torch.empty(src[:a] + (part,) + src[a + 1 :], dtype=like.dtype, device="meta")] * k
    last = sp
    pieces = {}
    for i in range(k):
        with graph.inserting_after(last):
            gi = meta(graph.call_function(operator.getitem, (sp, i)), src[:a] + (part,) + src[a + 1 :], like)
        with graph.inserting_after(gi):
            ri = meta(graph.call_function(aten.reshape.default, (gi, part_shape)), part_shape, like)
        with graph.inserting_after(ri):
            pi = meta(graph.call_function(aten.permute.default, (ri, order)), [part_shape[j] for j in order], like)
        with graph.inserting_after(pi):
            fi = meta(graph.call_function(aten.reshape.default, (pi, final_shape)), final_shape, like)
        with graph.inserting_after(fi):
            # contiguous like the original's result, so views downstream run when the graph is executed
            ci = meta(graph.call_function(aten.contiguous.default, (fi,)), final_shape, like)
        pieces[i] = ci
        last = ci
    # the pieces must come before every consumer: move the new nodes right after r (done) and
    # replace consumers
    for idx, c in consumers:
        c.replace_all_uses_with(pieces[idx])
    for _, c in consumers:
        if c in graph.nodes and not c.users:
            graph.erase_node(c)
    for u in users:
        if u in graph.nodes and not u.users:
            graph.erase_node(u)
    for c in reversed([r] + chain):
        if c in graph.nodes and not c.users:
            graph.erase_node(c)
    return 1
