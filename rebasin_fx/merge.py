"""MergeMany (Git Re-Basin, Algorithm 3): align every model to the mean of the others, then average."""

from __future__ import annotations

import dataclasses
import logging
from typing import Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import validate
from .derive import permutation_spec
from .errors import RebasinError
from .interpolate import check_models
from .permute import apply_permutations, clone_model, permute_state_dict, reset_module_caches
from .solvers import weight_matching
from .spec import PermutationSpec

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class MergeResult:
    """``model``: the average of the aligned models; ``perms[i]``: the permutation applied to model i;
    ``models``: the aligned copies; ``rounds``: rounds run."""

    model: nn.Module
    perms: list
    models: list
    spec: PermutationSpec
    rounds: int


def average(models: Sequence[nn.Module]) -> nn.Module:
    """A new model whose floating-point tensors are the mean of the models' (others from the first)."""
    out = clone_model(models[0])
    sds = [m.state_dict() for m in models]
    with torch.no_grad():
        for k, t in out.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.stack([sd[k].to(t.device, torch.float64) for sd in sds]).mean(0).to(t.dtype))
    return reset_module_caches(out)


def _mean_state(sds, skip: int) -> dict:
    others = [sd for i, sd in enumerate(sds) if i != skip]
    out = {}
    for k, t in sds[0].items():
        out[k] = torch.stack([sd[k] for sd in others]).mean(0) if t.is_floating_point() else t
    return out


def merge_many(models: Sequence[nn.Module], example_inputs, max_iter: int = 100, seed: int = 0,
               example_kwargs: dict | None = None, dataloader=None, num_batches: int | None = None,
               progress: bool = False) -> MergeResult:
    """Merge two or more models of one architecture; the inputs are untouched.

    Each round visits the models in a seeded random order and weight-matches
    each to the mean of the others (as currently permuted); rounds stop when no
    model's permutation changes, or after ``max_iter``. The result is the mean
    of the aligned models, with BatchNorm statistics recomputed on
    ``dataloader`` if given.

    Example:
        >>> import torch, rebasin_fx as rfx
        >>> make = lambda: torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
        >>> res = rfx.merge_many([make(), make(), make()], (torch.randn(1, 4),))
        >>> len(res.perms), res.rounds >= 1
        (3, True)
    """
    check_models(models, "merge_many")
    if max_iter < 1:
        raise RebasinError(f"max_iter must be at least 1, got {max_iter}")
    validate.one_device(*models)
    for i, m in enumerate(models):
        validate.finite(m, f"#{i}")
    spec = permutation_spec(models[0], example_inputs, example_kwargs)
    originals = [m.state_dict() for m in models]
    sds = [dict(sd) for sd in originals]
    total = [{g: torch.arange(grp.size) for g, grp in spec.groups.items()} for _ in models]
    rng = np.random.default_rng(seed)
    rounds = 0
    for rounds in tqdm(range(1, max_iter + 1), desc="MergeMany", disable=not progress, leave=False):
        changed = False
        for i in rng.permutation(len(models)):
            # later rounds start from where the model already is
            init = ["signature", "identity"] if rounds == 1 else "identity"
            p = weight_matching(spec, _mean_state(sds, i), sds[i], seed=seed, init=init)
            if any(not torch.equal(p[g], torch.arange(len(p[g]))) for g in spec.groups):
                changed = True
                sds[i] = permute_state_dict(sds[i], spec, p)
                total[i] = {g: total[i][g][p[g]] for g in spec.groups}
        if not changed:
            break
    log.info("MergeMany: %d round(s)", rounds)
    aligned = [apply_permutations(m, spec, total[i]) for i, m in enumerate(models)]
    merged = average(aligned)
    if dataloader is not None:
        from .norms import has_batchnorm, reset_bn_stats

        if has_batchnorm(merged):
            merged = reset_bn_stats(merged, dataloader, num_batches, inplace=True, progress=progress)
    return MergeResult(merged, total, aligned, spec, rounds)
