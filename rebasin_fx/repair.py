"""REPAIR (Jordan et al., 2022): give a merged model's channels the statistics of its endpoints.

For every linear/conv layer whose output channels are hidden units (free in the
spec), the mean and std of each output channel are measured in A, in aligned B
and in the merged model; the merged layer is rescaled and shifted so each
channel's mean and std become the interpolation of the endpoints'. During the
merged model's pass every chosen layer is already corrected with its batch
statistics (as a BatchNorm in training mode would), so later layers see
corrected inputs; the correction is then folded into the layer's weight and
bias: the result is an ordinary model of the same class.
"""

from __future__ import annotations

import contextlib
import logging

import torch
from torch import nn
from tqdm.auto import tqdm

from . import distributed
from .data import batches, reiterable, split_batch, to_device
from .derive import permutation_spec
from .errors import RebasinError
from .permute import clone_model
from .spec import PermutationSpec
from .trace import eval_mode
from .validate import same_architecture

log = logging.getLogger(__name__)

_AFFINE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _channel_dim(module: nn.Module) -> int:
    return -1 if isinstance(module, nn.Linear) else 1


def repairable(model: nn.Module, spec: PermutationSpec) -> list[str]:
    """Names of the linear/conv layers whose output channels are a free axis of the spec."""
    out = []
    for name, m in model.named_modules():
        if isinstance(m, _AFFINE):
            lays = spec.axes.get(f"{name}.weight" if name else "weight")
            if lays is not None and lays[0] is not None:
                out.append(name)
    return out


def _other_dims(y: torch.Tensor, dim: int) -> list[int]:
    dim = dim % y.dim()
    return [d for d in range(y.dim()) if d != dim]


class _Stats:
    """Per-channel running count, sum and sum of squares (float64 across batches)."""

    def __init__(self):
        self.sums = None

    def add(self, y: torch.Tensor, dim: int) -> None:
        y = y.detach()
        dims = _other_dims(y, dim)
        count = y.numel() // y.shape[dim]
        s = torch.stack([torch.full((y.shape[dim],), float(count), device=y.device, dtype=torch.float64),
                         y.sum(dims).double(), torch.linalg.vector_norm(y, dim=dims).double().square()])
        self.sums = s if self.sums is None else self.sums + s

    def mean_var(self):
        n, s, sq = self.sums
        mean = s / n
        return mean, (sq / n - mean * mean).clamp_min(0)


@contextlib.contextmanager
def _hooks(model, names, fn):
    mods = dict(model.named_modules())
    handles = [mods[n].register_forward_hook(lambda m, i, o, n=n: fn(n, m, o)) for n in names]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _measure(model, names, loader, num_batches, device, correct=None, progress=False, desc="") -> dict[str, _Stats]:
    stats = {n: _Stats() for n in names}

    def hook(name, module, out):
        dim = _channel_dim(module)
        stats[name].add(out, dim)
        if correct is None:
            return None
        mean_t, std_t = correct[name]
        shape = [1] * out.dim()
        shape[dim] = -1
        v, m = torch.var_mean(out, _other_dims(out, dim), unbiased=False)
        scale = (std_t / (v.double() + 1e-5).sqrt()).to(out.dtype)
        return (out - m.view(shape)) * scale.view(shape) + mean_t.to(out.dtype).view(shape)

    where = "repair's dataloader"
    with eval_mode(model), torch.no_grad(), _hooks(model, names, hook):
        for batch in tqdm(batches(loader, num_batches, where), desc=desc, disable=not progress, leave=False):
            args, kwargs, _ = split_batch(batch, where)
            model(*to_device(args, device), **to_device(kwargs, device))
    distributed.all_reduce_sum([stats[n].sums for n in names])
    return stats


class Repairer:
    """REPAIR along one segment A -> B: the endpoints are measured once, then any point is repaired."""

    def __init__(self, model_a: nn.Module, model_b: nn.Module, dataloader, num_batches: int | None = None,
                 spec: PermutationSpec | None = None, progress: bool = False):
        same_architecture(model_a, model_b)
        self.loader = reiterable(dataloader, "repair's dataloader")
        self.num_batches, self.progress = num_batches, progress
        self.device = next((t.device for t in model_a.state_dict().values()), torch.device("cpu"))
        if spec is None:
            first = next(iter(batches(dataloader, 1, "repair's dataloader")))
            args, kwargs, _ = split_batch(first, "repair's dataloader")
            spec = permutation_spec(model_a, to_device(args, self.device), to_device(kwargs, self.device))
        self.names = repairable(model_a, spec)
        if not self.names:
            log.warning("repair: no linear/conv layer with free output channels; models are returned unchanged")
        self.stats = [self._measure(m, desc=f"REPAIR: {w}") for m, w in ((model_a, "A"), (model_b, "B"))]

    def _measure(self, model, correct=None, desc=""):
        return _measure(model, self.names, self.loader, self.num_batches, self.device, correct, self.progress, desc)

    def __call__(self, merged: nn.Module, alpha: float) -> nn.Module:
        if not 0.0 <= alpha <= 1.0:
            raise RebasinError(f"alpha must be in [0, 1], got {alpha}")
        out = clone_model(merged)
        if not self.names:
            return out
        target = {}
        for n in self.names:
            (ma, va), (mb, vb) = self.stats[0][n].mean_var(), self.stats[1][n].mean_var()
            target[n] = ((1 - alpha) * ma + alpha * mb, (1 - alpha) * va.sqrt() + alpha * vb.sqrt())
        sm = self._measure(out, correct=target, desc="REPAIR: merged")
        mods = dict(out.named_modules())
        no_bias = []
        with torch.no_grad():
            for n in self.names:
                m = mods[n]
                mean_m, var_m = sm[n].mean_var()
                mean_t, std_t = target[n]
                scale = std_t / (var_m + 1e-5).sqrt()
                w = m.weight
                w.mul_(scale.to(w.dtype).view(-1, *[1] * (w.dim() - 1)))
                if m.bias is not None:
                    m.bias.copy_(((m.bias.double() - mean_m) * scale + mean_t).to(m.bias.dtype))
                else:
                    no_bias.append(n)
        if no_bias:
            log.info("repair: %d layer(s) have no bias and got the scale only: %s", len(no_bias),
                     ", ".join(no_bias[:8]))
        return out


def repair(model_a: nn.Module, model_b: nn.Module, merged: nn.Module, dataloader, alpha: float = 0.5,
           num_batches: int | None = None, spec: PermutationSpec | None = None, progress: bool = False) -> nn.Module:
    """A copy of ``merged`` whose hidden channels have the interpolated statistics of A and B.

    ``merged`` is the interpolation ``(1 - alpha) * A + alpha * B`` of A and
    (aligned) B. ``spec`` chooses the layers (derived from the first batch if
    not given). Layers without a bias get the scale only. Under
    ``torch.distributed`` the statistics are summed over ranks.

    Example:
        >>> import torch, rebasin_fx as rfx
        >>> make = lambda: torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
        >>> a, b = make(), make()
        >>> mid = rfx.interpolate([a, b], steps=1)[1]
        >>> data = [torch.randn(64, 4) for _ in range(4)]
        >>> fixed = rfx.repair(a, b, mid, data)
        >>> type(fixed) is type(mid) and fixed is not mid
        True
    """
    same_architecture(model_a, merged)
    return Repairer(model_a, model_b, dataloader, num_batches, spec, progress)(merged, alpha)
