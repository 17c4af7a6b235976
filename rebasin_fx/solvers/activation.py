"""Activation matching (Git Re-Basin, section 3.1): match units by the correlation of their activations.

For every group, sites in the traced graph where the group's units are one axis
of an activation (after the nonlinearity where there is one) are recorded for
both models in step, batch by batch. Only running sums are kept (float64):
means, second moments and the cross moment per site. The correlation matrices
of a group's sites are summed and one assignment picks the permutation. Groups
with no site fall back to weight matching with the others held fixed.
"""

from __future__ import annotations

import logging
import math
import time

import torch
from tqdm.auto import tqdm

from .. import distributed
from ..data import batches, split_batch, to_device
from ..sites import Site, SiteGraph, run_lockstep
from ..spec import PermutationSpec
from ..trace import input_shapes_key
from . import lap
from .weight_matching import Permutations, weight_costs, weight_matching

log = logging.getLogger(__name__)


class Moments:
    """Running sums of one site's activations in two models: enough for their cross-correlation."""

    def __init__(self, n: int, device):
        z = lambda *s: torch.zeros(*s, dtype=torch.float64, device=device)  # noqa: E731
        self.count = z(1)
        self.sum_a, self.sum_b, self.sq_a, self.sq_b = z(n), z(n), z(n), z(n)
        self.cross = z(n, n)

    def add(self, a: torch.Tensor, b: torch.Tensor) -> None:
        """``a``, ``b``: [prefix, units, rest] views of one site in the two models."""
        a, b = a.float(), b.float()
        self.count += a.shape[0] * a.shape[2]
        # per-batch sums in float32 (fast), accumulated across batches in float64
        self.sum_a += a.sum((0, 2)).double()
        self.sum_b += b.sum((0, 2)).double()
        self.sq_a += torch.linalg.vector_norm(a, dim=(0, 2)).double().square()
        self.sq_b += torch.linalg.vector_norm(b, dim=(0, 2)).double().square()
        self.cross += cross(a, b).double()

    def tensors(self) -> list[torch.Tensor]:
        return [self.count, self.sum_a, self.sum_b, self.sq_a, self.sq_b, self.cross]

    def variances(self) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.count.clamp_min(1)
        ma, mb = self.sum_a / n, self.sum_b / n
        va, vb = self.sq_a / n - ma * ma, self.sq_b / n - mb * mb
        # sums of squares cancel to rounding noise for constant units
        tiny = 1e-10
        va = torch.where(va <= tiny * (self.sq_a / n).clamp_min(1e-30), torch.zeros_like(va), va)
        vb = torch.where(vb <= tiny * (self.sq_b / n).clamp_min(1e-30), torch.zeros_like(vb), vb)
        return va, vb

    def correlation(self, eps: float = 1e-12) -> torch.Tensor:
        n = self.count.clamp_min(1)
        ma, mb = self.sum_a / n, self.sum_b / n
        va, vb = self.variances()
        cov = self.cross / n - ma[:, None] * mb[None, :]
        corr = cov / (va.sqrt()[:, None] * vb.sqrt()[None, :] + eps)
        return torch.where((va[:, None] > 0) & (vb[None, :] > 0), corr, torch.zeros_like(corr))


def units(x: torch.Tensor, axis: int) -> torch.Tensor:
    """[prefix, units, rest]: a view (no copy for contiguous x); prefix and rest axes are samples."""
    axis = axis % x.dim()
    return x.reshape(-1, x.shape[axis], math.prod(x.shape[axis + 1:]))


def cross(a: torch.Tensor, b: torch.Tensor, budget: int = 1 << 24) -> torch.Tensor:
    """sum over prefix and rest of a[p, i, r] * b[p, j, r], without copying the activations."""
    p, n, r = a.shape
    if r == 1:
        return a[:, :, 0].T @ b[:, :, 0]
    if p == 1:
        return a[0] @ b[0].T
    step = max(1, budget // (n * n))
    out = a.new_zeros(n, n)
    for i in range(0, p, step):
        out += torch.bmm(a[i:i + step], b[i:i + step].transpose(1, 2)).sum(0)
    return out


def stream_sites(models, dataloader, on_site, num_batches=None, device=None, progress=False,
                 desc="activations", where="dataloader") -> int:
    """Run ``models`` in step over the loader's batches, calling ``on_site(group, k, site, values)``
    for the k-th site of every group. Graphs are traced once per batch shape. Returns the batch count."""
    graphs: dict[tuple, SiteGraph] = {}
    count = 0
    for batch in tqdm(batches(dataloader, num_batches, where), desc=desc, disable=not progress, leave=False):
        args, kwargs, _ = split_batch(batch, where)
        if device is not None:
            args, kwargs = to_device(args, device), to_device(kwargs, device)
        key = input_shapes_key(args, kwargs)
        if key not in graphs:
            graphs[key] = SiteGraph.build(models[0], args, kwargs)
        sg = graphs[key]
        index = {(s.node, s.axis): (g, k) for g, sites in sg.sites.items() for k, s in enumerate(sites)}

        def call(site: Site, values, index=index):
            g, k = index[(site.node, site.axis)]
            on_site(g, k, site, values)

        run_lockstep(sg.traced, models, args, kwargs, sg.sites, call, device=device)
        count += 1
    return count


def activation_matching(
    spec: PermutationSpec,
    model_a: torch.nn.Module,
    model_b: torch.nn.Module,
    dataloader,
    num_batches: int | None = None,
    device=None,
    seed: int = 0,
    progress: bool = False,
) -> Permutations:
    """Permutations of B's units maximising the correlation of B's activations with A's.

    Both models run in eval mode on the loader's batches (moved to ``device``
    if given; the models are not moved or changed). Under ``torch.distributed``
    each rank passes its shard of the data and the statistics are summed over
    ranks, so every rank gets the same permutations. ``result.fallback`` lists
    the groups with no activation site, solved by weight matching instead.

    Example:
        >>> import torch, rebasin_fx as rfx
        >>> from rebasin_fx.solvers.activation import activation_matching
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
        >>> spec = rfx.permutation_spec(net, (torch.randn(1, 4),))
        >>> planted = spec.random_perms(seed=1)
        >>> b = rfx.apply_permutations(net, spec, planted)
        >>> found = activation_matching(spec, net, b, [torch.randn(64, 4) for _ in range(4)])
        >>> torch.equal(found["0.weight:0"], rfx.inverse(planted)["0.weight:0"])
        True
    """
    t0 = time.perf_counter()
    moments: dict[tuple[str, int], Moments] = {}
    models = [model_a, model_b]

    def on_site(group, k, site, values):
        if group not in spec.groups:
            return
        a, b = (units(v, site.axis) for v in values)
        m = moments.get((group, k))
        if m is None:
            m = moments[(group, k)] = Moments(a.shape[1], a.device)
        m.add(a, b)

    stream_sites(models, dataloader, on_site, num_batches, device, progress, "activation matching",
                 "activation matching's dataloader")
    keys = sorted(moments)
    distributed.all_reduce_sum([t for k in keys for t in moments[k].tensors()])
    t1 = time.perf_counter()
    corr: dict[str, torch.Tensor] = {}
    silent: dict[str, torch.Tensor] = {}  # units constant on the data (dead ReLUs): no correlation to go by
    for (group, _), m in sorted(moments.items()):
        c = m.correlation()
        corr[group] = c if group not in corr else corr[group] + c
        flat = (m.variances()[0] <= 0) | (m.variances()[1] <= 0)
        silent[group] = flat if group not in silent else silent[group] & flat
    perms = {g: lap.solve(c) for g, c in corr.items()}
    ties = [g for g, flat in silent.items() if bool(flat.any())]
    if ties:  # break ties among silent units by their weights, the other groups as matched
        start = {g: perms.get(g, torch.arange(spec.groups[g].size)) for g in spec.groups}
        for g, w in weight_costs(spec, model_a.state_dict(), model_b.state_dict(), start, ties).items():
            c = corr[g].cpu()
            perms[g] = lap.solve(c + 1e-6 * w / w.abs().max().clamp_min(1e-30))
    t2 = time.perf_counter()
    fallback = tuple(g for g in spec.groups if g not in perms)
    objective = float(sum(c[torch.arange(c.shape[0]), perms[g].to(c.device)].sum() for g, c in corr.items()))
    if fallback:
        log.info("activation matching: %d group(s) have no activation site; weight matching solves them: %s",
                 len(fallback), ", ".join(fallback[:8]))
        start = {g: perms.get(g, torch.arange(spec.groups[g].size)) for g in spec.groups}
        wm = weight_matching(spec, model_a.state_dict(), model_b.state_dict(), seed=seed, init=start,
                             fixed=tuple(perms))
        perms = {g: wm[g] for g in spec.groups}
    out = Permutations({g: perms[g].cpu() for g in spec.groups})
    out.objective, out.start, out.history = objective, "activation", {"activation": [objective]}
    out.timing = {"statistics": t1 - t0, "lap": t2 - t1}
    out.fallback = fallback
    return out

