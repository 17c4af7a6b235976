"""Element-wise ops: unary ops keep every axis; binary ops broadcast.

A size-1 (broadcast) operand axis does not couple anything. A constant operand
arrives with pinned axes, so it pins the output axes it varies along.
"""

from __future__ import annotations

from ..registry import aten, rule

UNARY = aten(
    "relu", "relu_", "relu6", "gelu", "gelu_", "silu", "silu_", "sigmoid", "sigmoid_", "tanh", "tanh_",
    "hardtanh", "hardtanh_", "hardswish", "hardswish_", "hardsigmoid", "hardsigmoid_", "leaky_relu",
    "leaky_relu_", "elu", "elu_", "selu", "selu_", "celu", "celu_", "mish", "mish_", "softplus",
    "neg", "exp", "log", "log1p", "expm1", "abs", "sqrt", "rsqrt", "square", "reciprocal", "sin",
    "cos", "erf", "sign", "clamp", "clamp_", "clamp_min", "clamp_min_", "clamp_max", "clamp_max_",
    "clip", "clip_", "clone", "contiguous", "alias", "detach", "detach_",
    "_to_copy", "to", "type_as", "dropout", "dropout_", "feature_dropout", "alpha_dropout",
    "feature_alpha_dropout", "native_dropout", "bernoulli", "logit", "threshold", "hardshrink",
    "softshrink", "tanhshrink", "silu_backward", "nan_to_num", "round", "floor", "ceil", "trunc",
    "frac", "sgn", "logical_not", "bitwise_not", "isnan", "isinf", "isfinite", "fill", "fill_", "zero_",
    "positive",
)

BINARY = aten(
    "add", "add_", "sub", "sub_", "rsub", "mul", "mul_", "div", "div_", "true_divide", "floor_divide",
    "remainder", "fmod", "pow", "pow_", "maximum", "minimum", "max_other", "min_other", "eq", "ne",
    "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor", "bitwise_and", "bitwise_or",
    "bitwise_xor", "where", "masked_fill", "masked_fill_", "lerp", "lerp_", "addcmul", "addcdiv",
    "atan2", "hypot", "copysign", "xlogy", "copy", "copy_", "threshold_backward", "__and__", "__or__",
    "__xor__", "__iand__", "__ior__", "bitwise_left_shift", "bitwise_right_shift", "fmax", "fmin",
    "clamp_tensor",
)


def broadcast(ctx, operands, out) -> None:
    """Unify ``out``'s axes with each tensor operand's, aligned from the right."""
    if out is None:
        return
    for x in operands:
        ax = ctx.axes(x)
        if ax is None:
            continue
        for a, o in zip(reversed(ax), reversed(out)):
            if a.size == o.size:
                ctx.unify(a, o)
            # size 1 against size n: a broadcast, couples nothing


@rule(*UNARY)
def unary(ctx, node):
    out = ctx.fresh_out()
    x = node.args[0] if node.args else None
    ax = ctx.axes(x)
    if isinstance(out, list):  # e.g. native_dropout -> (out, mask)
        for o in out:
            if ax is not None and o is not None and len(o) == len(ax):
                ctx.unify_all(ax, o)
        return out
    if ax is not None and out is not None and len(ax) == len(out):
        ctx.unify_all(ax, out)
    return out


@rule(*aten("glu"))
def glu(ctx, node):
    """glu(x) = a * sigmoid(b) with x = a (+) b along ``dim``: both halves share the out atom."""
    out = ctx.fresh_out()
    ax = ctx.axes(node.args[0])
    dim = ctx.arg(1, "dim", -1) % len(out)
    ctx.unify_except(ax, out, dim)
    ctx.unify(ax[dim], ctx.terms.sum([out[dim], out[dim]]))
    return out


@rule(*BINARY)
def binary(ctx, node):
    out = ctx.fresh_out()
    operands = [a for a in list(node.args) + list(node.kwargs.values())]
    broadcast(ctx, operands, out)
    return out
