"""Models along a path through two or more models: lerp or slerp per tensor."""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import torch
from torch import nn

from .data import reiterable
from .errors import RebasinError
from .permute import clone_model, reset_module_caches
from .validate import same_architecture

INTERPOLATIONS = ("lerp", "slerp")


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    return torch.lerp(a, b, t) if a.is_floating_point() else (a if t <= 0.5 else b)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float, eps: float = 1e-6) -> torch.Tensor:
    """Spherical interpolation of the flattened tensors; lerp when they are (anti)parallel or tiny."""
    if not a.is_floating_point():
        return a if t <= 0.5 else b
    x, y = a.double().flatten(), b.double().flatten()
    nx, ny = x.norm(), y.norm()
    if nx < eps or ny < eps:
        return lerp(a, b, t)
    cos = float((x @ y) / (nx * ny))
    omega = math.acos(max(-1.0, min(1.0, cos)))
    if math.sin(omega) < eps:
        return lerp(a, b, t)
    s = math.sin(omega)
    out = (math.sin((1 - t) * omega) / s) * x + (math.sin(t * omega) / s) * y
    return out.view_as(a).to(a.dtype)


def check_models(models: Sequence[nn.Module], what: str = "interpolate") -> None:
    if isinstance(models, nn.Module) or len(models) < 2:
        raise RebasinError(f"{what} needs a list of at least two models, got "
                           f"{1 if isinstance(models, nn.Module) else len(models)}")
    for i, m in enumerate(models[1:], 1):
        if not isinstance(m, nn.Module):
            raise RebasinError(f"{what}: item {i} is a {type(m).__name__}, not a torch.nn.Module")
        same_architecture(models[0], m)


def mix(model_a: nn.Module, model_b: nn.Module, t: float, method: str = "lerp") -> nn.Module:
    """One new model at ``t`` between A (t=0) and B (t=1); integer buffers from the nearer end."""
    if method not in INTERPOLATIONS:
        raise RebasinError(f"unknown interpolation {method!r}; use one of {INTERPOLATIONS}")
    if t == 0 or t == 1:
        return clone_model(model_a if t == 0 else model_b)
    fn = lerp if method == "lerp" else slerp
    out = clone_model(model_a if t <= 0.5 else model_b)
    sd_a, sd_b, sd = model_a.state_dict(), model_b.state_dict(), out.state_dict()
    with torch.no_grad():
        for k, t_out in sd.items():
            t_out.copy_(fn(sd_a[k].to(t_out.device), sd_b[k].to(t_out.device), t))
    return reset_module_caches(out)


def positions(n_models: int, steps: int) -> list[tuple[int, float]]:
    """(segment, t) of every point: ``steps`` interior points per segment, endpoints once."""
    if not isinstance(steps, int) or steps < 1:
        raise RebasinError(f"steps must be an integer of at least 1 (interior points per segment), got {steps!r}")
    out = []
    for seg in range(n_models - 1):
        ts = [i / (steps + 1) for i in range(steps + 2)]
        out.extend((seg, t) for t in (ts if seg == 0 else ts[1:]))
    return out


def iter_interpolate(models: Sequence[nn.Module], steps: int = 10, method: str = "lerp",
                     ) -> Iterator[tuple[float, nn.Module]]:
    """Yield ``(position, model)`` along the path, one model at a time (position k + t on segment k)."""
    check_models(models)
    if method not in INTERPOLATIONS:
        raise RebasinError(f"unknown interpolation {method!r}; use one of {INTERPOLATIONS}")
    for seg, t in positions(len(models), steps):
        yield seg + t, mix(models[seg], models[seg + 1], t, method)


def iter_points(models: Sequence[nn.Module], steps: int = 10, method: str = "lerp", dataloader=None,
                reset_bn: bool = True, repair: bool = False, num_batches: int | None = None,
                progress: bool = False) -> Iterator[tuple[float, nn.Module]]:
    """``iter_interpolate`` with fresh BatchNorm statistics / REPAIR at interior points (see ``interpolate``)."""
    from .norms import has_batchnorm, reset_bn_stats
    from .repair import Repairer

    check_models(models)
    if method not in INTERPOLATIONS:
        raise RebasinError(f"unknown interpolation {method!r}; use one of {INTERPOLATIONS}")
    if repair and dataloader is None:
        raise RebasinError("repair=True needs a dataloader to measure activation statistics on")
    reiterable(dataloader, "the dataloader for BatchNorm statistics / REPAIR")
    repairers: dict[int, Repairer] = {}
    for (seg, t), (pos, model) in zip(positions(len(models), steps), iter_interpolate(models, steps, method)):
        if dataloader is not None and 0 < t < 1:
            if reset_bn and has_batchnorm(model):
                model = reset_bn_stats(model, dataloader, num_batches, inplace=True, progress=progress)
            if repair:
                if seg not in repairers:
                    repairers[seg] = Repairer(models[seg], models[seg + 1], dataloader, num_batches,
                                              progress=progress)
                model = repairers[seg](model, t)
        yield pos, model


def interpolate(models: Sequence[nn.Module], steps: int = 10, method: str = "lerp", dataloader=None,
                reset_bn: bool = True, repair: bool = False, num_batches: int | None = None,
                progress: bool = False) -> list[nn.Module]:
    """New models along the path models[0] -> models[1] -> ...; the inputs are untouched.

    ``steps`` interior points per segment, endpoints included once (so two
    models and ``steps=10`` give 12 models). Every floating-point parameter
    and buffer is interpolated (``method`` "lerp" or "slerp", per tensor);
    integer buffers come from the nearer endpoint. With a ``dataloader``,
    interior points get fresh BatchNorm statistics (``reset_bn``) and, with
    ``repair=True``, REPAIR against their segment's endpoints (which should be
    aligned).

    Example:
        >>> import torch, rebasin_fx as rfx
        >>> a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
        >>> path = rfx.interpolate([a, b], steps=3)
        >>> len(path), torch.equal(path[0].weight, a.weight), torch.equal(path[-1].weight, b.weight)
        (5, True, True)
        >>> torch.allclose(path[2].weight, (a.weight + b.weight) / 2)
        True
    """
    return [m for _, m in iter_points(models, steps, method, dataloader, reset_bn, repair, num_batches, progress)]
