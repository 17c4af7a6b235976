"""The analysis pass: walk the graph once, let each op's rule unify axis terms.

Results are stored per node in ``Analysis.axes`` (a tuple of vars per tensor,
a list of those for multi-output ops, None for non-tensors).
"""

from __future__ import annotations

import dataclasses
import operator

import torch
import torch.fx

from ..errors import node_where
from ..trace import Traced
from .registry import lookup
from .rules.constants import constant_axes
from .terms import Terms, Var


@dataclasses.dataclass(frozen=True)
class PinNote:
    """Why some axes were pinned: the op, the node and its source line."""

    reason: str
    op: str
    where: str
    unknown_op: bool = False


def _val_axes_shape(val):
    if isinstance(val, torch.Tensor):
        return tuple(int(s) for s in val.shape)
    return None


class Ctx:
    """What a rule sees: terms, per-node axes, and helpers to unify and pin."""

    def __init__(self, traced: Traced, terms: Terms):
        self.traced = traced
        self.terms = terms
        self.env: dict[torch.fx.Node, object] = {}
        self.notes: list[PinNote] = []
        self.node: torch.fx.Node | None = None
        # node -> axes along which its values are constant (from zeros/ones/expand...)
        self.constant: dict[torch.fx.Node, frozenset[int]] = {}

    # reading ---------------------------------------------------------------
    def axes(self, x) -> tuple[Var, ...] | None:
        """Axes of a tensor argument (None for scalars, shapes, missing args).

        An axis along which the tensor is constant comes back as a fresh term on
        every read: it constrains nothing, and two consumers are not tied through it.
        """
        if isinstance(x, torch.fx.Node):
            ax = self.env.get(x)
            if not isinstance(ax, tuple):
                return None
            const = self.constant.get(x)
            if const:
                return tuple(self.terms.new(a.size) if i in const else a for i, a in enumerate(ax))
            return ax
        return None

    @staticmethod
    def shape(x) -> tuple[int, ...] | None:
        if isinstance(x, torch.fx.Node):
            return _val_axes_shape(x.meta.get("val"))
        return None

    def arg(self, i: int, name: str, default=None):
        n = self.node
        if len(n.args) > i:
            return n.args[i]
        return n.kwargs.get(name, default)

    # making ----------------------------------------------------------------
    def fresh(self, shape) -> tuple[Var, ...]:
        return tuple(self.terms.new(s) for s in shape)

    def fresh_out(self, node: torch.fx.Node | None = None):
        """New free vars for every axis of the node's output(s)."""
        val = (node or self.node).meta.get("val")
        return self._fresh_val(val)

    def _fresh_val(self, val):
        if isinstance(val, torch.Tensor):
            return self.fresh(val.shape)
        if isinstance(val, (tuple, list)):
            return [self._fresh_val(v) for v in val]
        return None

    def pinned_axes(self, shape, reason: str) -> tuple[Var, ...]:
        why = self.note(reason)
        return tuple(self.terms.pinned(s, why) for s in shape)

    # constraining ------------------------------------------------------------
    def why(self, what: str = "") -> str:
        target = getattr(self.node.target, "__name__", str(self.node.target))
        return f"{what or target} at {node_where(self.node)}"

    def unify(self, a: Var | None, b: Var | None, what: str = "") -> None:
        if a is None or b is None:
            return
        a_, b_ = self.terms.find(a), self.terms.find(b)
        if a_ is b_:
            return
        self.terms.unify(a_, b_, self.why(what))

    def unify_all(self, xs, ys) -> None:
        for a, b in zip(xs, ys):
            self.unify(a, b)

    def unify_except(self, xs, ys, skip) -> None:
        """Unify axes pairwise, except at the positions in ``skip`` (the axis an op works along)."""
        skip = {skip} if isinstance(skip, int) else set(skip)
        for i, (a, b) in enumerate(zip(xs, ys)):
            if i not in skip:
                self.unify(a, b)

    def note(self, reason: str, unknown_op: bool = False) -> str:
        n = self.node
        op = getattr(n.target, "__name__", str(n.target)) if n is not None else ""
        where = node_where(n) if n is not None else ""
        self.notes.append(PinNote(reason, op, where, unknown_op))
        return f"{reason}: {where}"

    def pin(self, axes, reason: str, unknown_op: bool = False) -> None:
        """Pin every axis in ``axes`` (a tuple of vars, or nested lists of them)."""
        flat = list(_iter_vars(axes))
        if not flat:
            return
        if all(self.terms.is_pinned(v) for v in flat):
            return
        why = self.note(reason, unknown_op)
        for v in flat:
            self.terms.pin(v, why)


def _iter_vars(axes):
    if axes is None:
        return
    if isinstance(axes, Var):
        yield axes
    elif isinstance(axes, (tuple, list)):
        for a in axes:
            yield from _iter_vars(a)


def _tensor_args(node: torch.fx.Node):
    out = []

    def visit(a):
        if isinstance(a, torch.fx.Node):
            out.append(a)

    torch.fx.node.map_arg((node.args, node.kwargs), visit)
    return out


# Ops with tensor inputs whose result does not depend on values.
_HARMLESS = {
    "sym_size",
    "sym_stride",
    "sym_numel",
    "sym_storage_offset",
    "_assert_tensor_metadata",
    "_assert_scalar",
    "sym_constrain_range_for_size",
}


@dataclasses.dataclass
class Analysis:
    traced: Traced
    terms: Terms
    axes: dict
    notes: list[PinNote]


def analyse(traced: Traced, constant_axes=None) -> Analysis:
    """Run every node's rule; pin graph inputs, outputs, constants and unknown ops.

    ``constant_axes(placeholder_name, shape)`` may say which axes of a
    non-state_dict tensor (a constant) vary; by default all of them do.
    """
    from . import rules  # noqa: F401  (registers the rules)
    from .passes import split_stacked_slices

    split_stacked_slices(traced.graph)
    terms = Terms()
    ctx = Ctx(traced, terms)
    graph = traced.graph
    inputs = set(traced.input_names)
    for node in graph.nodes:
        ctx.node = node
        if node.op == "placeholder":
            shape = ctx.shape(node)
            if shape is None:
                ctx.env[node] = _nested_pinned(ctx, node.meta.get("val"), "graph input")
                continue
            names = traced.tensor_names.get(node.name)
            if node.name in inputs or names is None:
                ctx.env[node] = ctx.pinned_axes(shape, "graph input")
            elif not names:
                # a buffer that is not in the state_dict: a constant of the model
                axes = ctx.fresh(shape)
                vary = constant_axes(node.name, shape) if constant_axes else [True] * len(shape)
                ctx.pin([a for a, v in zip(axes, vary) if v and a.size > 1], "constant buffer varies along this axis")
                ctx.env[node] = axes
            elif not node.users:
                ctx.env[node] = ctx.pinned_axes(shape, "parameter unused in forward")
            else:
                ctx.env[node] = ctx.fresh(shape)
        elif node.op == "output":
            ctx.pin([ctx.env.get(a) for a in _tensor_args(node)], "model output")
        elif node.op == "get_attr":
            val = node.meta.get("val")
            shape = _val_axes_shape(val)
            ctx.env[node] = ctx.pinned_axes(shape, "constant tensor") if shape is not None else None
        elif node.op == "call_function":
            _run_rule(ctx, node)
        else:
            _unknown(ctx, node)
    return Analysis(traced=traced, terms=terms, axes=ctx.env, notes=ctx.notes)


def _nested_pinned(ctx, val, reason):
    if isinstance(val, torch.Tensor):
        return ctx.pinned_axes(val.shape, reason)
    if isinstance(val, (tuple, list)):
        return [_nested_pinned(ctx, v, reason) for v in val]
    return None


def _run_rule(ctx: Ctx, node: torch.fx.Node) -> None:
    if node.target is operator.getitem:
        src, idx = node.args[0], node.args[1]
        axes = ctx.env.get(src)
        ctx.env[node] = axes[idx] if isinstance(axes, list) and isinstance(idx, int) and idx < len(axes) else None
        if ctx.env[node] is None and ctx.shape(node) is not None:
            _unknown(ctx, node)
        return
    fn = lookup(node.target)
    if fn is None:
        name = getattr(node.target, "__name__", str(node.target)).split(".")[0]
        if name in _HARMLESS or (not _tensor_args(node) and ctx.shape(node) is None):
            ctx.env[node] = ctx.fresh_out()
            return
        _unknown(ctx, node)
        return
    try:
        out = fn(ctx, node)
    except Exception as e:  # noqa: BLE001 - a rule that cannot handle a call site pins it
        _unknown(ctx, node, f"the op's rule could not handle this call ({type(e).__name__}: {e}): its axes are pinned")
        return
    ctx.env[node] = out
    if isinstance(out, tuple):
        const = constant_axes(ctx, node)
        if const:
            ctx.constant[node] = const


def _unknown(ctx: Ctx, node: torch.fx.Node, reason: str = "no rule for this op: its axes are pinned") -> None:
    out = ctx.fresh_out()
    ctx.env[node] = out
    touched = [ctx.env.get(a) for a in _tensor_args(node)] + [out]
    ctx.pin(touched, reason, unknown_op=True)
