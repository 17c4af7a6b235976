"""Reductions, softmax, pooling, upsampling and padding.

Reducing over an axis drops it (sum/mean/max over an atom are invariant to
permuting it); softmax is equivariant along its axis; pooling, upsampling and
padding keep batch and channel axes and make new, pinned spatial axes.
"""

from __future__ import annotations

from ..registry import aten, rule

REDUCE = aten("sum", "mean", "amax", "amin", "var", "std", "var_mean", "std_mean", "logsumexp", "prod",
              "norm", "linalg_vector_norm", "max", "min", "argmax", "argmin", "all", "any", "nansum", "nanmean",
              "count_nonzero")


def _reduced_dims(ctx, node, n):
    dims = ctx.arg(1, "dim", None)
    name = node.target.overloadpacket.__name__
    if name in ("norm",):
        dims = ctx.arg(2, "dim", None)
    if name == "linalg_vector_norm":
        dims = ctx.arg(2, "dim", None)
    if name in ("var", "std", "var_mean", "std_mean") and isinstance(dims, bool):
        dims = None
    if dims is None or (isinstance(dims, (list, tuple)) and len(dims) == 0):
        return list(range(n))
    if isinstance(dims, int):
        dims = [dims]
    if not all(isinstance(d, int) for d in dims):
        return None
    return sorted(int(d) % n for d in dims)


@rule(*REDUCE)
def reduce(ctx, node):
    x = ctx.axes(node.args[0])
    out = ctx.fresh_out()
    if x is None or not x:
        return out
    dims = _reduced_dims(ctx, node, len(x))
    outs = out if isinstance(out, list) else [out]
    if dims is None:
        ctx.pin([x] + outs, "reduction over unknown axes")
        return out
    kept = [a for i, a in enumerate(x) if i not in dims]
    for o in outs:
        if o is None:
            continue
        if len(o) == len(x):  # keepdim
            ctx.unify_all([a for i, a in enumerate(x) if i not in dims], [b for i, b in enumerate(o) if i not in dims])
        elif len(o) == len(kept):
            ctx.unify_all(kept, o)
        else:
            ctx.pin([x, o], "reduction with an unexpected output shape")
    return out


@rule(*aten("softmax", "_softmax", "log_softmax", "_log_softmax", "cumsum", "cumprod", "logcumsumexp"))
def along_axis(ctx, node):
    """Equivariant along every axis: output axes are the input's."""
    x = ctx.axes(node.args[0])
    out = ctx.fresh_out()
    name = node.target.overloadpacket.__name__
    ctx.unify_all(x, out)
    if name.startswith("cum") or name == "logcumsumexp":
        dim = int(ctx.arg(1, "dim", 0)) % len(x)
        ctx.pin([x[dim]], "cumulative op along this axis")
    return out


def _spatial(ctx, node, n_spatial):
    x = ctx.axes(node.args[0])
    out = ctx.fresh_out()
    outs = out if isinstance(out, list) else [out]
    n_keep = len(x) - n_spatial
    ctx.pin(list(x[n_keep:]), "spatial axes of pooling/resampling")
    for o in outs:
        if o is None:
            continue
        ctx.unify_all(x[:n_keep], o[:n_keep])
        ctx.pin(list(o[n_keep:]), "spatial axes of pooling/resampling")
    return out


def _pool_rule(n_spatial):
    def pool(ctx, node):
        return _spatial(ctx, node, n_spatial)

    return pool


for _n, _ops in (
    (1, ("avg_pool1d", "max_pool1d", "max_pool1d_with_indices", "adaptive_avg_pool1d", "adaptive_max_pool1d",
         "upsample_nearest1d", "upsample_linear1d", "reflection_pad1d", "replication_pad1d", "lp_pool1d")),
    (2, ("avg_pool2d", "max_pool2d", "max_pool2d_with_indices", "adaptive_avg_pool2d", "adaptive_max_pool2d",
         "_adaptive_avg_pool2d", "upsample_nearest2d", "upsample_bilinear2d", "upsample_bicubic2d",
         "_upsample_nearest_exact2d", "_upsample_bilinear2d_aa", "reflection_pad2d", "replication_pad2d",
         "lp_pool2d", "fractional_max_pool2d")),
    (3, ("avg_pool3d", "max_pool3d", "max_pool3d_with_indices", "adaptive_avg_pool3d", "adaptive_max_pool3d",
         "upsample_nearest3d", "upsample_trilinear3d", "reflection_pad3d", "replication_pad3d")),
):
    rule(*aten(*_ops))(_pool_rule(_n))


@rule(*aten("constant_pad_nd", "pad"))
def pad(ctx, node):
    x = ctx.axes(node.args[0])
    pads = list(node.args[1])
    out = ctx.fresh_out()
    n_padded = len(pads) // 2
    for k in range(len(x)):
        from_end = len(x) - 1 - k
        touched = from_end < n_padded and (pads[2 * from_end] != 0 or pads[2 * from_end + 1] != 0)
        if touched:
            ctx.pin([x[k], out[k]], "padded axis")
        else:
            ctx.unify(x[k], out[k])
    return out


@rule(*aten("interpolate", "upsample_nearest2d", "upsample_bilinear2d"))
def interpolate(ctx, node):
    x = ctx.axes(node.args[0])
    return _spatial(ctx, node, max(0, len(x) - 2))


# max/min with a tensor second operand are element-wise, not reductions
def _binary_overloads():
    import torch

    from .elementwise import binary

    for op in (torch.ops.aten.max, torch.ops.aten.min):
        for name in ("other", "out"):
            if name in op.overloads():
                rule(getattr(op, name))(binary)


_binary_overloads()
