"""Ops with weights: linear, conv, norms, embedding, PReLU.

Batch and spatial axes pass through or are pinned; the rules below tie the
channel axes of the input, the weight, the bias and the output.
"""

from __future__ import annotations

from ..registry import aten, rule


@rule(*aten("linear"))
def linear(ctx, node):
    """y = x W^T + b: x[-1] ~ W[1], y[-1] ~ W[0] ~ b[0]."""
    x, w = ctx.axes(node.args[0]), ctx.axes(node.args[1])
    b = ctx.axes(ctx.arg(2, "bias"))
    out = ctx.fresh_out()
    ctx.unify_all(x[:-1], out[:-1])
    if len(w) == 2:
        ctx.unify(x[-1], w[1])
        ctx.unify(out[-1], w[0])
    else:  # weight of shape [in]: y is [...]
        ctx.unify(x[-1], w[0])
    if b is not None and len(b) == 1 and len(w) == 2:
        ctx.unify(b[0], w[0])
    return out


@rule(*aten("addmm"))
def addmm(ctx, node):
    """bias + a @ b (GPT-2's Conv1D after the view, or a decomposed linear)."""
    bias, a, b = (ctx.axes(x) for x in node.args[:3])
    out = ctx.fresh_out()
    ctx.unify(a[0], out[0])
    ctx.unify(a[1], b[0])
    ctx.unify(b[1], out[1])
    if bias is not None:
        for x, o in zip(reversed(bias), reversed(out)):
            if x.size == o.size:
                ctx.unify(x, o)
    return out


def _conv_channels(ctx, x_ch, out_ch, w, groups: int, transposed: bool):
    """Tie channel axes of a (grouped, maybe transposed) conv.

    Channels are ``groups x per_group`` (row-major, group-major), the same
    group atom on input and output; the weight holds ``groups x out_per_group``
    on its output-channel axis and ``in_per_group`` on the other.
    """
    terms = ctx.terms
    if groups == 1:
        w_in, w_out = (w[0], w[1]) if transposed else (w[1], w[0])
        ctx.unify(x_ch, w_in)
        ctx.unify(out_ch, w_out)
        return
    g = terms.new(groups)
    in_per = terms.new(x_ch.size // groups)
    out_per = terms.new(out_ch.size // groups)
    ctx.unify(x_ch, terms.product([g, in_per]))
    ctx.unify(out_ch, terms.product([g, out_per]))
    if transposed:
        ctx.unify(w[0], terms.product([g, in_per]))
        ctx.unify(w[1], out_per)
    else:
        ctx.unify(w[0], terms.product([g, out_per]))
        ctx.unify(w[1], in_per)


def _conv(ctx, node, transposed: bool, groups: int):
    x, w = ctx.axes(node.args[0]), ctx.axes(node.args[1])
    b = ctx.axes(ctx.arg(2, "bias"))
    out = ctx.fresh_out()
    batched = len(x) == len(w)
    ch = 1 if batched else 0
    if batched:
        ctx.unify(x[0], out[0])
    ctx.pin(list(out[ch + 1 :]) + list(w[2:]), "spatial axes of a convolution")
    _conv_channels(ctx, x[ch], out[ch], w, groups, transposed)
    if b is not None:
        ctx.unify(b[0], out[ch])
    return out


@rule(*aten("conv1d", "conv2d", "conv3d", "_convolution_mode"))
def conv(ctx, node):
    return _conv(ctx, node, transposed=False, groups=int(ctx.arg(6, "groups", 1)))


@rule(*aten("conv_transpose1d", "conv_transpose2d", "conv_transpose3d"))
def conv_transpose(ctx, node):
    return _conv(ctx, node, transposed=True, groups=int(ctx.arg(6, "groups", 1)))


@rule(*aten("convolution", "_convolution"))
def convolution(ctx, node):
    return _conv(ctx, node, transposed=bool(ctx.arg(6, "transposed")), groups=int(ctx.arg(8, "groups", 1)))


def _channel_norm(ctx, node, channel_args):
    """Norms over channel axis 1 whose parameters/statistics are per channel."""
    x = ctx.axes(node.args[0])
    out = ctx.fresh_out()
    first = out[0] if isinstance(out, list) else out
    ctx.unify_all(x, first)
    for i in channel_args:
        p = ctx.axes(node.args[i]) if len(node.args) > i else None
        if p is not None and len(p) == 1 and len(x) > 1:
            ctx.unify(p[0], x[1])
    if isinstance(out, list):  # native forms return (out, saved stats...)
        for extra in out[1:]:
            if extra and len(extra) == 1 and extra[0].size == x[1].size:
                ctx.unify(extra[0], x[1])
    return out


@rule(*aten("batch_norm", "instance_norm", "native_batch_norm", "_native_batch_norm_legit_no_training",
            "_native_batch_norm_legit", "_native_batch_norm_legit_functional", "cudnn_batch_norm",
            "miopen_batch_norm", "_batch_norm_impl_index", "_batch_norm_no_update", "_batch_norm_with_update"))
def batch_norm(ctx, node):
    return _channel_norm(ctx, node, channel_args=(1, 2, 3, 4))


@rule(*aten("layer_norm", "native_layer_norm", "rms_norm", "_fused_rms_norm"))
def layer_norm(ctx, node):
    """Statistics over the last k axes are invariant to permuting them; weight ~ those axes."""
    x = ctx.axes(node.args[0])
    k = len(node.args[1])
    out = ctx.fresh_out()
    first = out[0] if isinstance(out, list) else out
    ctx.unify_all(x, first)
    for i in (2, 3):
        p = ctx.axes(node.args[i]) if len(node.args) > i else None
        if p is not None:
            ctx.unify_all(x[len(x) - k :], p)
    if isinstance(out, list):
        for extra in out[1:]:  # mean / rstd: [..., 1, ..]
            if extra:
                ctx.unify_all(x[: len(x) - k], extra[: len(x) - k])
    return out


@rule(*aten("group_norm", "native_group_norm"))
def group_norm(ctx, node):
    """Channels are ``groups x per_group``: groups permute as a whole, units within a group alike."""
    x = ctx.axes(node.args[0])
    native = node.target.overloadpacket.__name__.startswith("native")
    groups = int(node.args[6] if native else node.args[1])
    w_i, b_i = (1, 2) if native else (2, 3)
    out = ctx.fresh_out()
    first = out[0] if isinstance(out, list) else out
    ctx.unify_all(x, first)
    terms = ctx.terms
    ch = x[1]
    ctx.unify(ch, terms.product([terms.new(groups), terms.new(ch.size // groups)]))
    for i in (w_i, b_i):
        p = ctx.axes(node.args[i]) if len(node.args) > i else None
        if p is not None:
            ctx.unify(p[0], ch)
    if isinstance(out, list):
        ctx.pin(out[1:], "group_norm statistics")
    return out


@rule(*aten("embedding"))
def embedding(ctx, node):
    """Vocabulary axis pinned (indices select rows); the model axis is free."""
    w, idx = ctx.axes(node.args[0]), ctx.axes(node.args[1])
    out = ctx.fresh_out()
    ctx.pin([w[0]], "embedding rows are selected by index")
    ctx.unify_all(idx, out[:-1])
    ctx.unify(w[1], out[-1])
    return out


@rule(*aten("prelu", "_prelu_kernel"))
def prelu(ctx, node):
    x, w = ctx.axes(node.args[0]), ctx.axes(node.args[1])
    out = ctx.fresh_out()
    ctx.unify_all(x, out)
    if w is not None and len(w) == 1 and w[0].size > 1 and len(x) > 1:
        ctx.unify(w[0], x[1])
    return out
