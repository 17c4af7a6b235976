"""Activation sites: graph nodes where a group's units are one axis of an activation.

Data-driven methods (activation matching, REPAIR-style statistics) need, for each
group, tensors computed from the input whose one axis is exactly the group's
units and whose other axes are pinned (batch, spatial, sequence). ``find_sites``
reads them off the analysis; ``run_lockstep`` executes the traced graph for
several models at once and hands each site's values to a callback, freeing every
value after its last use (no activations are kept beyond one batch).
"""

from __future__ import annotations

import dataclasses
import operator
from typing import Callable, Sequence

import torch
import torch.fx
from torch.utils import _pytree as pytree

from .analysis.context import Analysis, analyse
from .analysis.terms import Terms
from .errors import RebasinError
from .spec import resolve_state_axes
from .trace import Traced, model_tensors, trace

# outputs of these ops are "after the nonlinearity": the preferred sites
NONLINEAR = frozenset({
    "relu", "relu6", "gelu", "silu", "sigmoid", "tanh", "hardtanh", "hardswish", "hardsigmoid", "leaky_relu",
    "elu", "selu", "celu", "mish", "softplus", "glu", "softmax", "_softmax",
})
# outputs of these ops hold the same values as their input: never a site of their own
_SAME_VALUES = frozenset({
    "view", "reshape", "_unsafe_view", "permute", "transpose", "t", "clone", "contiguous", "alias", "detach",
    "expand", "unsqueeze", "squeeze", "flatten", "_to_copy", "to", "dropout", "native_dropout", "movedim",
    "getitem", "lift_fresh_copy",
})


def op_name(node: torch.fx.Node) -> str:
    name = getattr(node.target, "__name__", str(node.target)).split(".")[0]
    return name[:-1] if name.endswith("_") and not name.startswith("_") else name


@dataclasses.dataclass(frozen=True)
class Site:
    """Node ``node`` of the graph holds group units along ``axis``."""

    node: str
    axis: int
    op: str

    @property
    def nonlinear(self) -> bool:
        return self.op in NONLINEAR


def _pinned(terms: Terms, v) -> bool:
    r = terms.find(v)
    if r.kind is None:
        return r.pin is not None or r.size <= 1
    return all(_pinned(terms, p) for p in r.parts)


def find_sites(an: Analysis, shapes) -> dict[str, list[Site]]:
    """{group name: sites}; after-nonlinearity sites only where a group has any."""
    terms = an.terms
    atom_names = resolve_state_axes(an, shapes)[1]
    graph = an.traced.graph
    data = {n for n in graph.nodes if n.op == "placeholder" and n.name in an.traced.input_names}
    found: dict[str, list[Site]] = {}
    for node in graph.nodes:
        if node.op != "call_function" or not any(a in data for a in node.all_input_nodes):
            continue
        data.add(node)
        axes, val = an.axes.get(node), node.meta.get("val")
        if not isinstance(axes, tuple) or not isinstance(val, torch.Tensor) or not val.is_floating_point():
            continue
        if op_name(node) in _SAME_VALUES or node.target is operator.getitem or val.dim() != len(axes):
            continue
        unit_axes = []
        for i, v in enumerate(axes):
            r = terms.find(v)
            if r.kind is None and r.pin is None and r.size > 1 and r.id in atom_names:
                unit_axes.append((i, atom_names[r.id]))
            elif not _pinned(terms, v):
                unit_axes = None
                break
        if unit_axes and len(unit_axes) == 1:
            axis, group = unit_axes[0]
            found.setdefault(group, []).append(Site(node.name, axis, op_name(node)))
    return {g: ([s for s in sites if s.nonlinear] or sites) for g, sites in found.items()}


@dataclasses.dataclass(frozen=True)
class SiteGraph:
    """A graph traced at one input shape, with its sites."""

    traced: Traced
    sites: dict[str, list[Site]]

    @classmethod
    def build(cls, model: torch.nn.Module, args, kwargs) -> "SiteGraph":
        traced = trace(model, args, kwargs)
        if traced.tracer != "make_fx":
            raise RebasinError(f"{type(model).__name__} could only be traced with torch.export, whose graphs "
                               "cannot be run for activation statistics here; use method='weight'")
        an = analyse(traced)
        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        return cls(traced, find_sites(an, shapes))


def run_lockstep(traced: Traced, models: Sequence[torch.nn.Module], args, kwargs, watch: dict[str, list[Site]],
                 on_site: Callable[[Site, list[torch.Tensor]], None], device=None) -> None:
    """Run the traced graph once per model, node by node in step, calling ``on_site`` at each site."""
    graph = traced.graph
    owner = graph.owning_module
    leaves = pytree.tree_leaves((tuple(args), dict(kwargs)))
    envs = []
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    for m in models:
        tensors = model_tensors(m)[0]
        if device is not None:
            tensors = [t.to(device) for t in tensors]
        values = tensors + leaves
        if len(values) != len(placeholders):
            raise RebasinError(f"the graph of {type(m).__name__} has {len(placeholders)} inputs but the model and "
                               f"batch give {len(values)}: the batch does not have the example inputs' structure")
        envs.append(dict(zip(placeholders, values)))
    by_node: dict[str, list[Site]] = {}
    for sites in watch.values():
        for s in sites:
            by_node.setdefault(s.node, []).append(s)
    last_use: dict[torch.fx.Node, list[torch.fx.Node]] = {}
    seen = set()
    for node in reversed(graph.nodes):
        for a in node.all_input_nodes:
            if a not in seen:
                seen.add(a)
                last_use.setdefault(node, []).append(a)
    grad = torch.is_grad_enabled()
    try:
        with torch.no_grad():
            for node in graph.nodes:
                if node.op == "output":
                    break
                if node.op == "call_function":
                    for env in envs:
                        a, kw = torch.fx.map_arg((node.args, node.kwargs), lambda n, env=env: env[n])
                        env[node] = node.target(*a, **kw)
                elif node.op == "get_attr":
                    value = operator.attrgetter(node.target)(owner)
                    for env in envs:
                        env[node] = value
                elif node.op != "placeholder":
                    raise RebasinError(f"cannot run graph node {node.name} ({node.op}) for activation statistics")
                for s in by_node.get(node.name, ()):
                    on_site(s, [env[node] for env in envs])
                for dead in last_use.get(node, ()):
                    for env in envs:
                        env.pop(dead, None)
    finally:
        torch.set_grad_enabled(grad)
