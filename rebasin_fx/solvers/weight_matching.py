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
    tensors, summed from the tensors), ``start`` (name of the winning start), ``history``
    (``{start: [objective after each sweep]}``, entry 0 = at the start; later
    entries are kept from the cost products, to about 1e-6 relative),
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


def _unit_axis(t: torch.Tensor, m: _Member, n: int) -> torch.Tensor:
    """The tensor with the member's positions, in unit order, along ``m.axis`` (no copy when they are all of it)."""
    plain = m.positions.numel() == t.shape[m.axis] and m.positions.shape[1] == 1 and torch.equal(
        m.positions[:, 0], torch.arange(n))
    return t if plain else t.index_select(m.axis, m.positions.reshape(-1).to(t.device))


def _units(t: torch.Tensor, m: _Member, n: int) -> torch.Tensor:
    """The tensor as [n_units, everything else] for one member occurrence."""
    return _unit_axis(t, m, n).movedim(m.axis, 0).reshape(n, -1)


def _product(spec, A, B, perms, m: _Member, n: int) -> torch.Tensor:
    """[n, n]: A's units against B's for one member, every other permutation applied to B."""
    b = _permuted(B[m.key], spec.axes[m.key], perms, m.axis, m.path)
    return _units(A[m.key], m, n) @ _units(b, m, n).T


def _permuted(t, layouts, perms, skip_axis=None, skip_path=None):
    for axis, lay in enumerate(layouts):
        if lay is not None:
            skip = skip_path if axis == skip_axis else None
            idx = L.index(lay, perms, skip)
            if not torch.equal(idx, torch.arange(len(idx))):  # e.g. the skipped group's own axis: no copy
                t = t.index_select(axis, idx.to(t.device))
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
            cost += _product(spec, A, B, perms, m, n).double().cpu()
        out[name] = cost
    return out


def _contribution(a, b, layouts, perms) -> float:
    return float((a * _permuted(b, layouts, perms)).sum())  # pairwise sum; a float64 cast would cost more


def _objective(A, B, spec, perms) -> float:
    return sum(_contribution(a, B[key], spec.axes[key], perms) for key, a in A.items())


def _moments(t: torch.Tensor, m: _Member, n: int) -> torch.Tensor:
    """Statistics of each unit's slice that do not depend on the order of its entries: [n, 6].

    Reduced in place over every axis but the unit axis (no transposed copy: a
    unit axis that is not the tensor's first would make every reduction strided).
    """
    t = _unit_axis(t, m, n).unflatten(m.axis, (n, m.positions.shape[1]))
    dims = [d for d in range(t.dim()) if d != m.axis]
    sq = t * t
    # means in the tensor's dtype: torch sums pairwise, and sum(dtype=float64) would cast the whole tensor first
    stats = [t.mean(dims), sq.mean(dims), t.abs().mean(dims), t.amax(dims), t.amin(dims), (sq * t).mean(dims)]
    return torch.stack(stats, 1).double()


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
            a, b = _moments(A[m.key], m, g.size), _moments(B[m.key], m, g.size)
            both = torch.cat([a, b])
            mu, sd = both.mean(0), both.std(0).clamp_min(1e-12)
            fa.append((a - mu) / sd)
            fb.append((b - mu) / sd)
        if not fa:
            perms[name] = torch.arange(g.size)
            continue
        a, b = torch.cat(fa, 1), torch.cat(fb, 1)
        cost = (a @ b.T).sub_(0.5 * (a * a).sum(1)[:, None]).sub_(0.5 * (b * b).sum(1)[None, :])  # one n x n buffer
        perms[name] = lap.solve(cost)
    return perms


def _dependencies(spec, m: _Member) -> tuple[str, ...]:
    """Groups whose permutation changes this member's product (all of the tensor's but the member's own leaf)."""
    occurrences = [(axis, name, path) for axis, lay in enumerate(spec.axes[m.key]) if lay is not None
                   for name, path in L.groups_in(lay)]
    return tuple(sorted({name for axis, name, path in occurrences if (axis, path) != (m.axis, m.path)}))


_CACHE_MIN_REST = 16  # products over fewer entries per unit (biases, norms) cost less to redo than to keep


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


class _Descent:
    """Coordinate descent from one start; ``sweep()`` visits every free group once.

    A group is solved again only when a permutation its cost depends on has
    changed since its last solve (the assignment would repeat otherwise). The
    objective is kept per tensor from the member products rather than by a pass
    over every tensor per sweep: a tensor holding the group once scores
    trace(product[:, new]).
    """

    def __init__(self, spec, A, B, members, perms, seed, tol, rtol, timing, cache_bytes, fixed=frozenset()):
        self.spec, self.A, self.B, self.members, self.perms = spec, A, B, members, dict(perms)
        self.names = [n for n in spec.groups if n not in fixed]
        self.rng = np.random.default_rng(seed)
        self.tol, self.rtol, self.timing = tol, rtol, timing
        self.versions = {n: 0 for n in spec.groups}
        self.cache = _ProductCache(spec, members, cache_bytes)
        self.inputs = {n: tuple(sorted({d for m in members[n] if m.key in A for d in self.cache.deps[id(m)]}))
                       for n in self.names}
        self.solved: dict[str, tuple] = {}
        self.contrib = {key: _contribution(a, B[key], spec.axes[key], perms) for key, a in A.items()}
        self.history = [sum(self.contrib.values())]
        self.done = False

    def descend(self, max_sweeps: int, bar) -> None:
        """Sweep until done or ``max_sweeps``; then the objective from the tensors, and the cache is freed."""
        for _ in range(max_sweeps):
            self.sweep()
            bar.update(1)
            bar.set_postfix(objective=f"{self.history[-1]:.4g}")
            if self.done:
                break
        self.objective = _objective(self.A, self.B, self.spec, self.perms)  # the history sums products
        self.cache = None

    def sweep(self) -> None:
        improved = False
        for gi in self.rng.permutation(len(self.names)):
            improved |= self._update(self.names[gi])
        self.history.append(sum(self.contrib.values()))
        gained = self.history[-1] - self.history[-2]
        self.done = not improved or gained <= self.rtol * (self.history[-1] - self.history[0])

    def _update(self, name: str) -> bool:
        stamp = tuple(self.versions[d] for d in self.inputs[name])
        if self.solved.get(name) == stamp:
            return False
        self.solved[name] = stamp
        spec, A, B, perms, n = self.spec, self.A, self.B, self.perms, self.spec.groups[name].size
        t0 = time.perf_counter()
        cost, prods = None, []
        for m in self.members[name]:
            if m.key not in A:
                continue
            prod = self.cache.get(m, self.versions)
            if prod is None:
                prod = _product(spec, A, B, perms, m, n)
                t = A[m.key]
                if t.numel() // t.shape[m.axis] * m.positions.shape[1] >= _CACHE_MIN_REST:  # entries per unit
                    self.cache.put(m, self.versions, prod)
            prods.append((m.key, prod))
            cost = prod.clone() if cost is None else cost.add_(prod)
        t1 = time.perf_counter()
        self.timing["cost"] += t1 - t0
        if cost is None:
            return False
        new = lap.solve(cost)
        self.timing["lap"] += time.perf_counter() - t1
        # The gain in float64 from the products (the summed cost is float32, the solver's input only).
        dev = prods[0][1].device
        new_idx, old_idx = new.to(dev)[:, None], perms[name].to(dev)[:, None]
        scores = [float(p.gather(1, new_idx).sum(dtype=torch.float64)) for _, p in prods]
        before = sum(float(p.gather(1, old_idx).sum(dtype=torch.float64)) for _, p in prods)
        if sum(scores) - before <= self.tol * max(1.0, abs(before)):
            return False
        perms[name] = new
        self.versions[name] += 1
        keys = [k for k, _ in prods]
        for (key, _), score in zip(prods, scores):
            if keys.count(key) == 1:
                self.contrib[key] = score
            else:
                self.contrib[key] = _contribution(A[key], B[key], spec.axes[key], perms)
        return True


def weight_matching(
    spec: PermutationSpec,
    state_dict_a: Mapping[str, torch.Tensor],
    state_dict_b: Mapping[str, torch.Tensor],
    max_iter: int = 100,
    seed: int = 0,
    init: str | Mapping | Sequence | None = None,
    include_buffers: bool = False,
    tol: float = 1e-12,
    rtol: float = 1e-4,
    progress: bool = False,
    cache_bytes: int = 1 << 30,
    fixed=(),
) -> Permutations:
    """Find permutations of B's units that maximise the similarity of B's weights to A's.

    ``init`` picks the starts: ``"identity"``, ``"signature"`` (order-free
    statistics of each unit's weights, matched per group), a dict of permutations (a warm start), or a list
    of these; each descends and the best objective is kept. By default both named
    starts are run: neither is better in general (on trained pairs either one
    can end with the lower barrier).
    Each sweep visits the groups in a fresh order drawn from ``seed``; the descent
    stops after a sweep with no improvement, after a sweep that raised the
    objective by no more than ``rtol`` times its rise since the start (the long
    tail of tiny gains on unrelated random networks; ``rtol=0`` runs to the
    fixed point), or after ``max_iter`` sweeps.
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
    timing = {"cost": 0.0, "lap": 0.0}
    runs = {}
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
        run = runs[label] = _Descent(spec, A, B, members, perms, seed, tol, rtol, timing, cache_bytes,
                                     frozenset(fixed))
        run.descend(max_iter, bar)  # and frees its product cache before the next start
        log.info("weight matching start %s: objective %s over %d sweeps", label, run.objective,
                 len(run.history) - 1)
    bar.close()
    best = max(runs, key=lambda k: runs[k].objective)
    out = Permutations({n: runs[best].perms[n] for n in spec.groups})
    out.objective, out.start, out.timing = runs[best].objective, best, timing
    out.history = {label: run.history for label, run in runs.items()}
    return out
