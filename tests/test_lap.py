"""Every installed assignment solver gives scipy's optimum on the matrices weight matching builds."""

from __future__ import annotations

import pytest
import torch

import rebasin_fx as rfx
from rebasin_fx.solvers import lap

import models as M

BACKENDS = sorted(lap._SOLVERS)


@pytest.fixture
def backend(request):
    old = lap.backend(request.param)
    yield request.param
    lap.backend(old)


def _value(cost, p):
    return float(cost[torch.arange(len(cost)), p].sum())


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize("n", [1, 2, 5, 64, 300])
def test_solver_reaches_the_optimum(backend, n):
    g = torch.Generator().manual_seed(n)
    for cost in (torch.randn(n, n, generator=g, dtype=torch.float64),
                 torch.randint(0, 3, (n, n), generator=g).double(),  # many ties
                 torch.ones(n, n, dtype=torch.float64)):
        p = lap.solve(cost)
        assert sorted(p.tolist()) == list(range(n))
        old = lap.backend("scipy")
        best = lap.solve(cost)
        lap.backend(old)
        assert _value(cost, p) == pytest.approx(_value(cost, best), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_planted_permutation_recovered_with_each_solver(backend):
    torch.manual_seed(0)
    a = M.ResNet20(1)
    spec = rfx.permutation_spec(a, (torch.randn(2, 3, 16, 16),))
    planted = spec.random_perms(seed=5)
    sd_b = rfx.permute_state_dict(a.state_dict(), spec, planted)
    found = rfx.weight_matching(spec, a.state_dict(), sd_b)
    inv = rfx.inverse(planted)
    assert all(torch.equal(found[g], inv[g]) for g in spec.groups)


def test_non_finite_costs_and_unknown_backend():
    assert lap.solve(torch.tensor([[1.0, float("nan")], [float("nan"), 1.0]])).tolist() == [0, 1]
    assert lap.solve(torch.tensor([[0.0, float("inf")], [float("inf"), 0.0]])).tolist() == [1, 0]
    with pytest.raises(rfx.RebasinError, match="not available"):
        lap.backend("hungarian-by-hand")
    assert lap.backend() in BACKENDS


def test_fast_solver_is_preferred_when_installed():
    pytest.importorskip("lap")
    assert lap.backend() in ("lapx", "lap")
