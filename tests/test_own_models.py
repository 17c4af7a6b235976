"""Specs of our own models: functional check, hand-written spec, planted recovery, no mutation."""

from __future__ import annotations

import pytest
import torch

import rebasin_fx as rfx
from helpers import assert_spec_matches, assert_unchanged, randomize_bn, snapshot
import models as M


def _g(*parts):
    return ("x",) + parts


def _s(*parts):
    return ("+",) + parts


def bn(name, p):
    return M.bn_axes(name, p)


DENSE = {
    "stem.weight": ("C0", None, None, None), "stem.bias": ("C0",),
    **bn("norms.0", "C0"),
    "convs.0.weight": ("G1", "C0", None, None), "convs.0.bias": ("G1",),
    **bn("norms.1", _s("C0", "G1")),
    "convs.1.weight": ("G2", _s("C0", "G1"), None, None), "convs.1.bias": ("G2",),
    **bn("final_norm", _s("C0", "G1", "G2")),
    "fc.weight": (None, _s("C0", "G1", "G2")), "fc.bias": (None,),
}

GROUPED = {
    "conv0.weight": (_g("G", "I"), None, None, None), "conv0.bias": (_g("G", "I"),),
    **bn("bn0", _g("G", "I")),
    "gconv.weight": (_g("G", "O"), "I", None, None), "gconv.bias": (_g("G", "O"),),
    **bn("bn1", _g("G", "O")),
    "fc.weight": (None, _g("G", "O")), "fc.bias": (None,),
}

GROUPNORM = {
    "conv1.weight": (_g("G1", "C1"), None, None, None), "conv1.bias": (_g("G1", "C1"),),
    "gn1.weight": (_g("G1", "C1"),), "gn1.bias": (_g("G1", "C1"),),
    "conv2.weight": (_g("G2", "C2"), _g("G1", "C1"), None, None), "conv2.bias": (_g("G2", "C2"),),
    "gn2.weight": (_g("G2", "C2"),), "gn2.bias": (_g("G2", "C2"),),
    "fc.weight": (None, _g("G2", "C2")), "fc.bias": (None,),
}

CONV13 = {
    "c1.weight": ("A", None, None), "c1.bias": ("A",), **bn("b1", "A"),
    "c3.weight": ("V", None, None, None, None), "c3.bias": ("V",), **bn("b3", "V"),
    "t3.weight": ("V", "T", None, None, None), "t3.bias": ("T",),
    "fc.weight": (None, _s("A", "T")), "fc.bias": (None,),
}

VGG_FLAT = dict(M.vggish_axes(), **{"fc1.weight": ("P3", _g("P2", 16))})

CASES = {
    "mlp": (lambda: M.MLP(784, (32, 24, 16)), (2, 1, 28, 28), M.mlp_axes(3)),
    "vggish": (lambda: M.VGGish(8), (2, 1, 16, 16), VGG_FLAT),
    "resnet20": (lambda: M.ResNet20(1), (2, 3, 16, 16), M.resnet20_axes()),
    "densenet_block": (lambda: M.DenseBlockNet(), (2, 3, 8, 8), DENSE),
    "separable": (lambda: M.SeparableNet(), (2, 3, 8, 8), M.separable_axes()),
    "grouped": (lambda: M.GroupedNet(), (2, 3, 8, 8), GROUPED),
    "groupnorm": (lambda: M.GroupNormNet(), (2, 3, 8, 8), GROUPNORM),
    "conv1d_conv3d_transposed": (lambda: M.Conv1d3dNet(), [(2, 2, 10), (2, 1, 4, 4, 4)], CONV13),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    make, shape, expected = CASES[request.param]
    torch.manual_seed(0)
    model = randomize_bn(make(), seed=1).eval()
    x = tuple(torch.randn(*s) for s in shape) if isinstance(shape, list) else (torch.randn(*shape),)
    spec = rfx.permutation_spec(model, x)
    return request.param, model, x, spec, expected


def test_functional_check(case):
    name, model, x, spec, _ = case
    for seed in range(3):
        assert spec.check(model, x, seed=seed) <= 1e-6


def test_spec_equals_hand_written(case):
    name, model, x, spec, expected = case
    assert_spec_matches(spec, expected)


def test_planted_permutation_recovered_exactly(case):
    name, model_a, x, spec, _ = case
    planted = spec.random_perms(seed=7)
    model_b = rfx.apply_permutations(model_a, spec, planted)
    snap_a, snap_b = snapshot(model_a), snapshot(model_b)
    # B computes the same function as A but its weights differ
    with torch.no_grad():
        assert torch.allclose(model_a(*x), model_b(*x), atol=1e-5)
    assert any(not torch.equal(v, model_b.state_dict()[k]) for k, v in snap_a.items())
    # the default runs both starts; identity alone suffices without product (grouped) layouts
    inits = [None, "signature"] + (["identity"] if name in ("mlp", "vggish", "resnet20") else [])
    for init in inits:
        res = rfx.align(model_a, model_b, x, init=init)
        sd = res.model.state_dict()
        for k, v in model_a.state_dict().items():
            assert torch.equal(sd[k], v), f"{name} ({init} start): {k} not recovered"
        best = max(max(h) for h in res.perms.history.values())  # history sums float32 products
        assert res.perms.objective >= best - 1e-6 * abs(best)
    assert_unchanged(model_a, snap_a)
    assert_unchanged(model_b, snap_b)


def test_resnet20_group_structure():
    """12 groups for ResNet-20 x1: 3 residual streams + 9 block-inner permutations."""
    model = M.ResNet20(1).eval()
    spec = rfx.permutation_spec(model, (torch.randn(2, 3, 16, 16),))
    sizes = sorted(g.size for g in spec.groups.values())
    assert sizes == sorted([16] * 4 + [32] * 4 + [64] * 4)
    assert len(spec.groups) == 12
