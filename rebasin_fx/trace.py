"""Front end: trace a model into an ATen-level torch.fx graph.

The graph's placeholders are the model's parameters and buffers (one per
distinct tensor) followed by the flattened example inputs. ``Traced.tensor_names``
maps a placeholder to every state_dict key that holds that tensor (tied
weights have several).
"""

from __future__ import annotations

import collections
import contextlib
import copy
import dataclasses
import io
import logging
import os
import traceback
from typing import Any, Sequence

import torch
import torch.fx
from torch.func import functional_call
from torch.fx.experimental.proxy_tensor import make_fx
from torch.utils import _pytree as pytree

from .errors import RebasinError, node_where


@dataclasses.dataclass(frozen=True)
class Traced:
    """A traced model: its graph and which placeholders are which tensors."""

    graph: torch.fx.Graph
    # placeholder name -> state_dict keys (empty tuple: not in the state_dict)
    tensor_names: dict[str, tuple[str, ...]]
    # placeholder name -> the model's real tensor (to see which axes a constant varies along)
    tensors: dict[str, torch.Tensor]
    # placeholder names of the example inputs, in order
    input_names: tuple[str, ...]
    tracer: str


@contextlib.contextmanager
def _quiet_torch_logs():
    """torch logs whole graphs at error level when a trace fails; we report the failure ourselves."""
    previous = logging.root.manager.disable
    logging.disable(logging.ERROR)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logging.disable(previous)


def _user_frame(exc: BaseException) -> str:
    """The innermost traceback frame in the user's code (not torch, not rebasin_fx)."""
    torch_dir = os.path.dirname(torch.__file__)
    here = os.path.dirname(__file__)
    best = ""
    for fr in traceback.extract_tb(exc.__traceback__):
        if fr.filename.startswith(torch_dir) or fr.filename.startswith(here) or "<" in fr.filename:
            continue
        best = f'{fr.filename}:{fr.lineno} in {fr.name}: {(fr.line or "").strip()}'
    return best


@contextlib.contextmanager
def preserve_module_state(model: torch.nn.Module):
    """Undo what a forward pass writes into modules' Python state (e.g. caches of fake tensors).

    Some models cache tensors in eval mode (timm's LeViT caches attention biases);
    a trace would leave fake tensors there. Attributes and the contents of dict,
    list and set attributes are put back as they were, in place.
    """
    saved = []
    for m in model.modules():
        attrs = dict(m.__dict__)
        contents = {k: copy.copy(v) for k, v in attrs.items() if type(v) in (dict, list, set, collections.OrderedDict)}
        saved.append((m, attrs, contents))
    try:
        yield
    finally:
        for m, attrs, contents in saved:
            for k in [k for k in m.__dict__ if k not in attrs]:
                del m.__dict__[k]
            m.__dict__.update(attrs)
            for k, v in contents.items():
                target = attrs[k]
                if isinstance(target, dict):
                    target.clear()
                    target.update(v)
                elif isinstance(target, list):
                    target[:] = v
                else:
                    target.clear()
                    target.update(v)


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module):
    """Put every submodule in eval mode, restoring each one's flag afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, flag in flags:
            m.training = flag


def model_tensors(model: torch.nn.Module) -> tuple[list[torch.Tensor], list[tuple[str, ...]]]:
    """Distinct parameter/buffer tensors and, for each, all names it goes by (tied weights
    have several; non-persistent buffers are included, though not state_dict keys)."""
    by_id: dict[int, int] = {}
    tensors: list[torch.Tensor] = []
    names: list[list[str]] = []
    items = list(model.named_parameters(remove_duplicate=False)) + list(
        model.named_buffers(remove_duplicate=False)
    )
    for name, t in items:
        if t is None:
            continue
        k = by_id.get(id(t))
        if k is None:
            by_id[id(t)] = len(tensors)
            tensors.append(t)
            names.append([name])
        elif name not in names[k]:
            names[k].append(name)
    return tensors, [tuple(n) for n in names]


def _trace_make_fx(model, args, kwargs, tensors, first_names):
    def run(flat, *a, **kw):
        return functional_call(model, dict(zip(first_names, flat)), a, kw, tie_weights=True)

    def run_flat(flat, inputs):
        a, kw = inputs
        return run(flat, *a, **kw)

    gm = make_fx(
        run_flat,
        tracing_mode="fake",
        pre_dispatch=True,
        record_stack_traces=True,
    )(tensors, (tuple(args), dict(kwargs)))
    return gm.graph


def trace(
    model: torch.nn.Module,
    example_inputs: Sequence[Any] | Any,
    example_kwargs: dict[str, Any] | None = None,
) -> Traced:
    """Trace ``model`` in eval mode into a graph over its parameters, buffers and inputs.

    Example:
        >>> import torch
        >>> t = trace(torch.nn.Linear(3, 2), (torch.randn(1, 3),))
        >>> sorted(v for names in t.tensor_names.values() for v in names)
        ['bias', 'weight']
    """
    if isinstance(example_inputs, (torch.Tensor, dict)) or not isinstance(example_inputs, (tuple, list)):
        example_inputs = (example_inputs,)
    kwargs = dict(example_kwargs or {})
    tensors, names = model_tensors(model)
    state_keys = set(model.state_dict().keys())
    first_names = [n[0] for n in names]
    errors = []
    found = None
    with preserve_module_state(model), eval_mode(model), torch.no_grad(), _quiet_torch_logs():
        try:
            graph = _trace_make_fx(model, example_inputs, kwargs, tensors, first_names)
            placeholders = [n.name for n in graph.nodes if n.op == "placeholder"]
            found = Traced(
                graph=graph,
                tensor_names={ph: tuple(n for n in ns if n in state_keys) for ph, ns in zip(placeholders, names)},
                tensors=dict(zip(placeholders, tensors)),
                input_names=tuple(placeholders[len(names):]),
                tracer="make_fx",
            )
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(("make_fx", e))
        if found is None:
            found = _trace_export(model, example_inputs, kwargs, names, state_keys, errors)
    if found is None:
        raise RebasinError(_trace_failure_message(model, errors)) from errors[-1][1]
    return found


def _trace_export(model, args, kwargs, names, state_keys, errors) -> Traced | None:
    """Fallback: torch.export (non-strict), mapping its signature to state_dict keys."""
    try:
        ep = torch.export.export(model, tuple(args), kwargs, strict=False)
    except Exception as e:  # noqa: BLE001
        errors.append(("torch.export", e))
        return None
    alias = {n: ns for ns in names for n in ns}
    real = dict(model.named_parameters(remove_duplicate=False))
    real.update(model.named_buffers(remove_duplicate=False))
    tensor_names: dict[str, tuple[str, ...]] = {}
    tensors: dict[str, torch.Tensor] = {}
    inputs = []
    for spec in ep.graph_signature.input_specs:
        name = getattr(spec.arg, "name", None)
        if name is None:
            continue
        target = getattr(spec, "target", None)
        if target is None:
            inputs.append(name)
            continue
        tensor_names[name] = tuple(n for n in alias.get(target, (target,)) if n in state_keys)
        if target in real:
            tensors[name] = real[target]
    return Traced(graph=ep.graph, tensor_names=tensor_names, tensors=tensors, input_names=tuple(inputs),
                  tracer="torch.export")


def _trace_failure_message(model, errors) -> str:
    lines = [f"could not trace {type(model).__name__} into a graph."]
    for tracer, e in errors:
        msg = str(e).strip().splitlines()
        first = msg[0] if msg else type(e).__name__
        lines.append(f"  {tracer}: {type(e).__name__}: {first[:300]}")
        where = _user_frame(e)
        if where:
            lines.append(f"    failing line: {where}")
        if "data-dependent" in str(e) or "DataDependent" in type(e).__name__:
            lines.append("    (the model turns a tensor value into a Python bool/int: data-dependent control flow)")
    lines.append(
        "What to do: check that the example inputs have the shapes and dtypes the model's forward "
        "expects; replace data-dependent Python control flow (if/for on tensor values) with tensor "
        "ops (torch.where) or move it out of forward; for Hugging Face decoders pass use_cache=False."
    )
    return "\n".join(lines)


def input_shapes_key(example_inputs, example_kwargs) -> tuple:
    """A hashable key of the structure, shapes and dtypes of the inputs (for spec caching)."""
    leaves, spec = pytree.tree_flatten((example_inputs, example_kwargs or {}))
    key = []
    for leaf in leaves:
        if isinstance(leaf, torch.Tensor):
            key.append(("T", tuple(leaf.shape), str(leaf.dtype)))
        else:
            key.append(("V", repr(leaf)))
    return (str(spec), tuple(key))


__all__ = ["Traced", "trace", "eval_mode", "model_tensors", "node_where"]
