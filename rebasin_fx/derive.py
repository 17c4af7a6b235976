"""permutation_spec: trace -> analyse -> spec, cached per architecture and input shapes."""

from __future__ import annotations

import collections
import logging

import torch

from .analysis.context import analyse
from .spec import PermutationSpec, spec_from_analysis
from .trace import input_shapes_key, trace

log = logging.getLogger(__name__)

_CACHE: "collections.OrderedDict[tuple, PermutationSpec]" = collections.OrderedDict()
_CACHE_SIZE = 32


def _varying_axes(tensor: torch.Tensor) -> list[bool]:
    """For each axis: do the values vary along it? (a constant along an axis does not pin it)"""
    if tensor.is_meta or tensor.numel() == 0:
        return [True] * tensor.dim()
    out = []
    for d in range(tensor.dim()):
        first = tensor.narrow(d, 0, 1)
        out.append(tensor.size(d) > 1 and not bool((tensor == first).all()))
    return out


def _cache_key(model, example_inputs, example_kwargs):
    sd = model.state_dict()
    shapes = tuple((k, tuple(v.shape), str(v.dtype)) for k, v in sd.items())
    return (type(model), repr(model), shapes, input_shapes_key(example_inputs, example_kwargs))


def permutation_spec(model: torch.nn.Module, example_inputs, example_kwargs: dict | None = None,
                     check: bool = True, cache: bool = True) -> PermutationSpec:
    """Derive the permutation spec of ``model`` by tracing it on ``example_inputs``.

    With ``check`` (default) the spec is proven by the functional check before
    it is returned. Specs are cached by model class, structure, state_dict
    shapes and input shapes; ``cache=False`` derives afresh.

    Example:
        >>> import torch, rebasin_fx as rfx
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        ...                           torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 3))
        >>> spec = rfx.permutation_spec(net, (torch.randn(2, 1, 8, 8),))
        >>> spec.groups["0.weight:0"].members[:3]
        (('0.weight', 0), ('0.bias', 0), ('1.weight', 0))
    """
    key = _cache_key(model, example_inputs, example_kwargs) if cache else None
    if key is not None and key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    traced = trace(model, example_inputs, example_kwargs)

    def constant_axes(ph_name, shape):
        t = traced.tensors.get(ph_name)
        return _varying_axes(t) if t is not None else [True] * len(shape)

    an = analyse(traced, constant_axes)
    sd = model.state_dict()
    params = dict(model.named_parameters(remove_duplicate=False))
    buffers = frozenset(k for k in sd if k not in params)
    spec = spec_from_analysis(an, {k: tuple(v.shape) for k, v in sd.items()}, buffers)
    for note in spec.unknown_ops:
        log.warning("no rule for %s at %s: its axes were pinned", note.op, note.where)
    if check:
        spec.check(model, example_inputs, example_kwargs)
    if key is not None:
        _CACHE[key] = spec
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return spec
