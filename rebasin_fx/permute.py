"""Apply permutations to a model or a state_dict, returning a new object."""

from __future__ import annotations

import copy
from typing import Mapping

import numpy as np
import torch

from . import layout as L
from .errors import RebasinError
from .spec import PermutationSpec

Perms = Mapping[str, torch.Tensor]


def as_perms(spec: PermutationSpec, perms: Mapping, device=None) -> dict[str, torch.Tensor]:
    """Validate ``perms`` against ``spec`` and return them as int64 tensors."""
    missing = [n for n in spec.groups if n not in perms]
    if missing:
        raise RebasinError(f"permutations are missing group(s) {missing[:5]}; pass one permutation for "
                           "every group of the spec (spec.groups)")
    out = {}
    for name, g in spec.groups.items():
        p = perms[name]
        t = torch.as_tensor(np.asarray(p) if not isinstance(p, torch.Tensor) else p, dtype=torch.long)
        if t.dim() != 1 or t.numel() != g.size:
            raise RebasinError(f"permutation of group {name!r} has shape {tuple(t.shape)}; the group has {g.size} units")
        if not torch.equal(torch.sort(t).values, torch.arange(g.size)):
            raise RebasinError(f"permutation of group {name!r} is not a permutation of 0..{g.size - 1} "
                               "(repeated or out-of-range entries)")
        out[name] = t.to(device) if device is not None else t
    return out


def permute_tensor(t: torch.Tensor, layouts: tuple, perms: Perms) -> torch.Tensor:
    for axis, lay in enumerate(layouts):
        if lay is not None:
            t = t.index_select(axis, L.index(lay, perms, device=t.device))
    return t


def permute_state_dict(state_dict: Mapping[str, torch.Tensor], spec: PermutationSpec, perms: Perms) -> dict:
    """A new state_dict with every permuted key gathered along its axes."""
    perms = as_perms(spec, perms)
    out = {}
    for key, t in state_dict.items():
        lays = spec.axes.get(key)
        if lays is None:
            out[key] = t
            continue
        if tuple(t.shape) != tuple(spec.shapes[key]):
            raise RebasinError(f"{key}: shape {tuple(t.shape)} does not match the spec's {spec.shapes[key]}")
        out[key] = permute_tensor(t.detach(), lays, perms)
    return out


def inverse(perms: Perms) -> dict[str, torch.Tensor]:
    """The inverse permutations (apply them to undo ``perms``)."""
    return {k: torch.argsort(torch.as_tensor(p)) for k, p in perms.items()}


def clone_model(model: torch.nn.Module) -> torch.nn.Module:
    """``copy.deepcopy`` that also copes with cached non-leaf tensors (they are copied detached)."""
    memo: dict = {}

    def visit(v):
        if isinstance(v, torch.Tensor) and not isinstance(v, torch.nn.Parameter) and v.grad_fn is not None:
            memo[id(v)] = v.detach().clone()
        elif isinstance(v, dict):
            for x in v.values():
                visit(x)
        elif isinstance(v, (list, tuple, set)):
            for x in v:
                visit(x)

    for m in model.modules():
        for k, v in m.__dict__.items():
            if k not in ("_parameters", "_modules"):
                visit(v)
    return copy.deepcopy(model, memo)


def reset_module_caches(model: torch.nn.Module) -> torch.nn.Module:
    """Let modules drop what they cached from their old weights; training flags are kept.

    Some modules cache tensors derived from their parameters in eval mode (timm's
    LeViT and EfficientFormer cache attention biases) and drop the cache in
    ``train()``. A permuted copy must not keep the cache of the original.
    """
    flags = [(m, m.training) for m in model.modules()]
    model.train(True)
    for m, flag in flags:
        m.training = flag
    return model


def copy_state_into(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor]) -> torch.nn.Module:
    """Copy ``state_dict``'s values into ``model``'s own tensors (in place) and drop stale caches."""
    with torch.no_grad():
        for key, t in model.state_dict().items():
            t.copy_(state_dict[key])
    return reset_module_caches(model)


def apply_permutations(model_or_state_dict, spec: PermutationSpec, perms: Perms):
    """Return a permuted copy of a model (nn.Module) or of a state_dict; the input is untouched.

    ``perms[g][i] = j`` means unit ``i`` of the result is unit ``j`` of the input.

    Example:
        >>> import torch, rebasin_fx as rfx
        >>> mlp = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> spec = rfx.permutation_spec(mlp, (torch.randn(1, 4),))
        >>> mlp2 = rfx.apply_permutations(mlp, spec, spec.random_perms(seed=1))
        >>> x = torch.randn(3, 4)
        >>> torch.allclose(mlp(x), mlp2(x), atol=1e-6)
        True
    """
    if isinstance(model_or_state_dict, torch.nn.Module):
        model = clone_model(model_or_state_dict)
        sd = model.state_dict()
        new = permute_state_dict(sd, spec, perms)
        with torch.no_grad():
            for key, t in new.items():
                if key in spec.axes:
                    sd[key].copy_(t)
        return reset_module_caches(model)
    return permute_state_dict(model_or_state_dict, spec, perms)
