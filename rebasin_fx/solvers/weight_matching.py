"""Weight matching: permutation coordinate descent (Git Re-Basin, Algorithm 1).

For one group at a time, the cost matrix sums the similarity of A's and B's
units over every member axis (every other permutation applied to B), and a
linear assignment picks the group's permutation. Several starts are run and
the best objective kept.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Mapping, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import layout as L
from ..errors import RebasinError
from ..permute import as_perms
from ..spec import PermutationSpec
from ..validate import finite_tensor
from . import lap

log = logging.getLogger(__name__)


class Permutations(dict):
    """``{group: permutation}`` plus how it was found.

    Attributes: ``objective`` (sum of <A, permuted B> over the permuted
    tensors), ``start`` (name of the winning start), ``history``
    (``{start: [objective after each sweep]}``, entry 0 = at the start),
    ``timing`` (seconds in cost building and in assignment solving),
    ``fallback`` (groups a data-driven method left to weight matching).
    """

    objective: float
    start: str
    history: dict
    timing: dict
    fallback: tuple = ()


@dataclasses.dataclass(frozen=True)
class _Member:
    key: str
    axis: int
    path: tuple[int, ...]
    positions: torch.Tensor  # [n_units, m] positions along the axis


def _members(spec: PermutationSpec, keys) -> dict[str, list[_Member]]:
    out: dict[str, list[_Member]] = {n: [] for n in spec.groups}
    for key in keys:
        for axis, lay in enumerate(spec.axes[key]):
            if lay is None:
                continue
            for name, path in L.groups_in(lay):
                pos = L.unit_positions(lay, path)
                out[name].append(_Member(key, axis, path, pos))
    return out


def _units(t: torch.Tensor, m: _Member, n: int) -> torch.Tensor:
    """The tensor as [n_units, everything else] for one member occurrence."""
    plain = m.positions.numel() == t.shape[m.axis] and m.positions.shape[1] == 1 and torch.equal(
        m.positions[:, 0], torch.arange(n))
    if not plain:
        t = t.index_select(m.axis, m.positions.reshape(-1).to(t.device))
    return t.movedim(m.axis, 0).reshape(n, -1)


def _permuted(t, layouts, perms, skip_axis=None, skip_path=None):
    for axis, lay in enumerate(layouts):
        if lay is not None:
            skip = skip_path if axis == skip_axis else None
            t = t.index_select(axis, L.index(lay, perms, skip, device=t.device))
    return t


def _prepare(spec, sd, which: str, keys, device):
    out = {}
    for key in keys:
        if key not in sd:
            raise RebasinError(f"state_dict of model {which} has no key {key!r} that the spec permutes; "
                               "was the spec derived from another architecture?")
        t = sd[key]
        if tuple(t.shape) != tuple(spec.shapes[key]):
            raise RebasinError(f"{key} of model {which} has shape {tuple(t.shape)}, the spec expects "
                               f"{tuple(spec.shapes[key])}")
        if not t.is_floating_point():
            continue
        t = t.detach()
        if device is not None:
            t = t.to(device)
        finite_tensor(key, t, which)
        out[key] = t.double() if t.dtype == torch.float64 else t.float()
    return out


def weight_costs(spec: PermutationSpec, state_dict_a, state_dict_b, perms, groups) -> dict[str, torch.Tensor]:
    """Weight-matching cost matrix of each group in ``groups``, every other group permuted by ``perms``."""
    keys = [k for k in spec.axes if k not in spec.buffers]
    A = _prepare(spec, state_dict_a, "A", keys, None)
    B = _prepare(spec, state_dict_b, "B", keys, None)
    members = _members(spec, [k for k in keys if k in A])
    perms = as_perms(spec, perms)
    out = {}
    for name in groups:
        n = spec.groups[name].size
        cost = torch.zeros(n, n, dtype=torch.float64)
        for m in members[name]:
            b = _permuted(B[m.key], spec.axes[m.key], perms, m.axis, m.path)
            cost += (_units(A[m.key], m, n) @ _units(b, m, n).T).double().cpu()
        out[name] = cost
    return out


def _objective(A, B, spec, perms) -> float:
    total = 0.0
    for key, a in A.items():
        total += float((a * _permuted(B[key], spec.axes[key], perms)).sum(dtype=torch.float64))
    return total


def _moments(u: torch.Tensor) -> torch.Tensor:
    """Statistics of each row that do not depend on the order of its entries: [n, 6]."""
    u = u.double()
    return torch.stack([u.mean(1), (u * u).mean(1), u.abs().mean(1), u.amax(1), u.amin(1), (u**3).mean(1)], 1)


def signature_start(spec, A, B, members) -> dict[str, torch.Tensor]:
    """Match units by signatures that no other group's permutation changes.

    A unit's signature is, per member axis, order-free statistics of its slice
    (mean, mean square, mean |x|, max, min, third moment), each standardised
    over both models; one assignment per group on squared distances.
    """
    perms = {}
    for name, g in spec.groups.items():
        fa, fb = [], []
        for m in members[name]:
            if m.key not in A:
                continue
            a, b = _moments(_units(A[m.key], m, g.size)), _moments(_units(B[m.key], m, g.size))
            both = torch.cat([a, b])
            mu, sd = both.mean(0), both.std(0).clamp_min(1e-12)
            fa.append((a - mu) / sd)
            fb.append((b - mu) / sd)
        if not fa:
            perms[name] = torch.arange(g.size)
            continue
        a, b = torch.cat(fa, 1), torch.cat(fb, 1)
        cost = a @ b.T - 0.5 * (a * a).sum(1)[:, None] - 0.5 * (b * b).sum(1)[None, :]
        perms[name] = lap.solve(cost)
    return perms


def _dependencies(spec, m: _Member) -> tuple[str, ...]:
    """Groups whose permutation changes this member's product (all of the tensor's but the member's own leaf)."""
    occurrences = [(axis, name, path) for axis, lay in enumerate(spec.axes[m.key]) if lay is not None
                   for name, path in L.groups_in(lay)]
    return tuple(sorted({name for axis, name, path in occurrences if (axis, path) != (m.axis, m.path)}))


class _ProductCache:
    """Member products A_u @ B_u^T, reused while none of their dependencies changed.

    Near convergence most permutations stop changing, so most products repeat;
    ``budget`` bytes bounds the memory held.
    """

    def __init__(self, spec, members, budget: int):
        self.deps = {id(m): _dependencies(spec, m) for ms in members.values() for m in ms}
        self.store: dict[int, tuple[tuple, torch.Tensor]] = {}
        self.budget = budget
        self.used = 0

    def get(self, m, versions):
        hit = self.store.get(id(m))
        if hit is not None and hit[0] == tuple(versions[d] for d in self.deps[id(m)]):
            return hit[1]
        return None

    def put(self, m, versions, prod):
        size = prod.numel() * prod.element_size()
        old = self.store.get(id(m))
        if old is not None:
            self.used -= old[1].numel() * old[1].element_size()
        elif self.used + size > self.budget:
            return
        self.store[id(m)] = (tuple(versions[d] for d in self.deps[id(m)]), prod)
        self.used += size


def _descend(spec, A, B, members, perms, max_iter, rng, tol, bar, timing, cache_bytes, fixed=frozenset()):
    names = [n for n in spec.groups if n not in fixed]
    versions = {n: 0 for n in names}
    cache = _ProductCache(spec, members, cache_bytes)
    history = [_objective(A, B, spec, perms)]
    for _ in range(max_iter):
        improved = False
        for gi in rng.permutation(len(names)):
            name = names[gi]
            n = spec.groups[name].size
            t0 = time.perf_counter()
            cost = None
            for m in members[name]:
                if m.key not in A:
                    continue
                prod = cache.get(m, versions)
                if prod is None:
                    b = _permuted(B[m.key], spec.axes[m.key], perms, m.axis, m.path)
                    prod = _units(A[m.key], m, n) @ _units(b, m, n).T
                    cache.put(m, versions, prod)
                cost = prod.double() if cost is None else cost + prod.double()
            t1 = time.perf_counter()
            timing["cost"] += t1 - t0
            if cost is None:
                continue
            new = lap.solve(cost)
            timing["lap"] += time.perf_counter() - t1
            ar = torch.arange(n)
            cost = cost.cpu()
            gain = float(cost[ar, new].sum() - cost[ar, perms[name]].sum())
            if gain > tol * max(1.0, abs(float(cost[ar, perms[name]].sum()))):
                perms[name] = new
                versions[name] += 1
                improved = True
        history.append(_objective(A, B, spec, perms))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(objective=f"{history[-1]:.4g}")
        if not improved:
            break
    return perms, history


def weight_matching(
    spec: PermutationSpec,
    state_dict_a: Mapping[str, torch.Tensor],
    state_dict_b: Mapping[str, torch.Tensor],
    max_iter: int = 100,
    seed: int = 0,
    init: str | Mapping | Sequence | None = None,
    include_buffers: bool = False,
    tol: float = 1e-12,
    progress: bool = False,
    cache_bytes: int = 1 << 30,
    fixed=(),
) -> Permutations:
    """Find permutations of B's units that maximise the similarity of B's weights to A's.

    ``init`` picks the starts: ``"identity"``, ``"signature"`` (order-free
    statistics of each unit's weights, matched per group), a dict of permutations (a warm start), or a list
    of these; by default both named starts are run and the best objective kept.
    Each sweep visits the groups in a fresh order drawn from ``seed``; the descent
    stops after a sweep with no improvement or after ``max_iter`` sweeps.
    Buffers (BatchNorm running statistics) are permuted but not matched on unless
    ``include_buffers``. Per-member cost products are reused while their
    inputs do not change, within ``cache_bytes`` of memory. Groups named in
    ``fixed`` keep the permutation of the start (pass it in ``init``).

    Example:
        >>> import torch, rebasin_fx as rfx
        >>> mlp = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
        >>> spec = rfx.permutation_spec(mlp, (torch.randn(1, 4),))
        >>> planted = spec.random_perms(seed=3)
        >>> sd_b = rfx.permute_state_dict(mlp.state_dict(), spec, planted)
        >>> found = rfx.weight_matching(spec, mlp.state_dict(), sd_b)
        >>> all(torch.equal(found[g], rfx.inverse(planted)[g]) for g in spec.groups)
        True
    """
    if max_iter < 1:
        raise RebasinError(f"max_iter must be at least 1, got {max_iter}")
    keys = [k for k in spec.axes if include_buffers or k not in spec.buffers]
    dev_a = {t.device for k, t in state_dict_a.items() if k in spec.axes}
    dev_b = {t.device for k, t in state_dict_b.items() if k in spec.axes}
    if len(dev_a | dev_b) > 1:
        raise RebasinError(f"the two models' tensors are on different devices ({sorted(map(str, dev_a | dev_b))}); "
                           "move both models to one device with .to(device) first")
    A = _prepare(spec, state_dict_a, "A", keys, None)
    B = _prepare(spec, state_dict_b, "B", keys, None)
    members = _members(spec, [k for k in keys if k in A])
    starts = ["signature", "identity"] if init is None else (list(init) if isinstance(init, (list, tuple)) else [init])
    best = None
    history = {}
    timing = {"cost": 0.0, "lap": 0.0}
    bar = tqdm(total=max_iter * len(starts), desc="weight matching", disable=not progress, leave=False)
    for i, start in enumerate(starts):
        if isinstance(start, str):
            if start == "identity":
                perms = {n: torch.arange(g.size) for n, g in spec.groups.items()}
            elif start == "signature":
                perms = signature_start(spec, A, B, members)
            else:
                raise RebasinError(f"unknown init {start!r}: use 'identity', 'signature' or a dict of permutations")
            label = start
        else:
            perms = as_perms(spec, start)
            label = f"given{i}" if len(starts) > 1 else "given"
        rng = np.random.default_rng(seed)
        perms, hist = _descend(spec, A, B, members, dict(perms), max_iter, rng, tol, bar, timing, cache_bytes,
                               frozenset(fixed))
        history[label] = hist
        log.info("weight matching start %s: objective %s over %d sweeps", label, hist[-1], len(hist) - 1)
        if best is None or hist[-1] > best[2]:
            best = (label, perms, hist[-1])
    bar.close()
    out = Permutations({n: best[1][n] for n in spec.groups})
    out.objective, out.start, out.history, out.timing = best[2], best[0], history, timing
    return out
