"""PermutationSpec: JSON, printing, layouts, inverse, caching, and a heads-reshaping model."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
import torch.nn.functional as F

import rebasin_fx as rfx
from rebasin_fx import layout as L
from helpers import assert_spec_matches
import models as M


class ExplicitAttention(nn.Module):
    """Fused qkv, split, view into heads, matmul-softmax-matmul, residual: the design's worked example."""

    def __init__(self, d=16, h=4):
        super().__init__()
        self.h = h
        self.emb, self.ln = nn.Linear(5, d), nn.LayerNorm(d)
        self.qkv, self.proj, self.head = nn.Linear(d, 3 * d), nn.Linear(d, d), nn.Linear(d, 3)

    def forward(self, x):
        x = self.emb(x)
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.h, C // self.h).transpose(1, 2) for t in (q, k, v))
        att = F.softmax((q @ k.transpose(-2, -1)) / (C // self.h) ** 0.5, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.head(x + self.proj(y))


@pytest.fixture(scope="module")
def resnet_spec():
    model = M.ResNet20(1).eval()
    return model, rfx.permutation_spec(model, (torch.randn(2, 3, 16, 16),))


def test_explicit_attention_heads_and_head_dims():
    torch.manual_seed(0)
    model = ExplicitAttention().eval()
    x = torch.randn(2, 7, 5)
    spec = rfx.permutation_spec(model, (x,))
    hq = ("x", "H", "Dqk")
    hv = ("x", "H", "Dv")
    expected = {
        "emb.weight": ("R", None), "emb.bias": ("R",), "ln.weight": ("R",), "ln.bias": ("R",),
        "qkv.weight": (("+", hq, hq, hv), "R"), "qkv.bias": (("+", hq, hq, hv),),
        "proj.weight": ("R", hv), "proj.bias": ("R",), "head.weight": (None, "R"), "head.bias": (None,),
    }
    assert_spec_matches(spec, expected)
    assert sorted(g.size for g in spec.groups.values()) == [4, 4, 4, 16]
    assert spec.check(model, (x,), seed=3) <= 1e-6
    planted = spec.random_perms(seed=1)
    b = rfx.apply_permutations(model, spec, planted)
    res = rfx.align(model, b, (x,))
    for k, v in model.state_dict().items():
        assert torch.equal(res.model.state_dict()[k], v)


def test_json_round_trip_is_exact(resnet_spec):
    _, spec = resnet_spec
    again = rfx.PermutationSpec.from_json(spec.to_json())
    assert again.groups == dict(spec.groups)
    assert dict(again.axes) == dict(spec.axes)
    assert dict(again.shapes) == dict(spec.shapes)
    assert again.buffers == spec.buffers
    assert again.to_json() == spec.to_json()


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda t: t[: len(t) // 2], "not valid JSON"),
        (lambda t: json.dumps(dict(json.loads(t), surprise=1)), "unknown field"),
        (lambda t: json.dumps(dict(json.loads(t), version=99)), "'version'"),
        (lambda t: _edit(t, lambda o: o["groups"].update({"conv1.weight:0": 17})), r"axes\.conv1\.weight\[0\]: layout covers 17"),
        (lambda t: _edit(t, lambda o: o["axes"]["fc.weight"].append(None)), r"axes\.fc\.weight: needs one layout per axis"),
        (lambda t: _edit(t, lambda o: o["axes"]["fc.weight"].__setitem__(1, {"group": "nope"})), "unknown group 'nope'"),
    ],
)
def test_bad_json_names_the_field(resnet_spec, mutate, match):
    _, spec = resnet_spec
    with pytest.raises(rfx.RebasinError, match=match):
        rfx.PermutationSpec.from_json(mutate(spec.to_json()))


def _edit(text, fn):
    obj = json.loads(text)
    fn(obj)
    return json.dumps(obj)


def test_apply_then_inverse_is_bit_exact(resnet_spec):
    model, spec = resnet_spec
    perms = spec.random_perms(seed=11)
    sd = model.state_dict()
    back = rfx.permute_state_dict(rfx.permute_state_dict(sd, spec, perms), spec, rfx.inverse(perms))
    for k, v in sd.items():
        assert torch.equal(back[k], v)


def test_printed_table(resnet_spec):
    _, spec = resnet_spec
    text = str(spec)
    assert text.startswith("PermutationSpec: 12 groups, 448 free units")
    assert "conv1.weight:0" in text and "blocks.0.conv1.weight[1]" not in text.splitlines()[0]
    assert "model output: fc.weight[0], fc.bias[0]" in text


def test_specs_are_cached_per_architecture_and_input_shape():
    a, b = M.MLP(), M.MLP()
    x = torch.randn(2, 1, 28, 28)
    s1 = rfx.permutation_spec(a, (x,))
    assert rfx.permutation_spec(b, (torch.randn(2, 1, 28, 28),)) is s1
    assert rfx.permutation_spec(b, (torch.randn(3, 1, 28, 28),)) is not s1
    assert rfx.permutation_spec(M.MLP(784, (32, 32, 16)), (x,)) is not s1


def test_layout_index_and_unit_positions():
    g = ("g", "G", 2)
    h = ("g", "H", 3)
    lay = ("sum", (("prod", (g, h)), ("pin", 2)))
    perms = {"G": torch.tensor([1, 0]), "H": torch.tensor([2, 0, 1])}
    assert L.size(lay) == 8
    assert L.index(lay, perms).tolist() == [5, 3, 4, 2, 0, 1, 6, 7]
    assert L.index(lay, perms, skip=(0, 0)).tolist() == [2, 0, 1, 5, 3, 4, 6, 7]
    assert L.unit_positions(lay, (0, 0)).tolist() == [[0, 1, 2], [3, 4, 5]]
    assert L.unit_positions(lay, (0, 1)).tolist() == [[0, 3], [1, 4], [2, 5]]
    assert L.groups_in(lay) == [("G", (0, 0)), ("H", (0, 1))]


def test_weight_matching_records_objective_per_sweep():
    torch.manual_seed(0)
    a, b = M.MLP(784, (64, 64, 64)), M.MLP(784, (64, 64, 64))
    spec = rfx.permutation_spec(a, (torch.randn(1, 1, 28, 28),))
    p = rfx.weight_matching(spec, a.state_dict(), b.state_dict(), init="identity", seed=0)
    hist = p.history["identity"]
    assert len(hist) >= 2 and all(y >= x - 1e-9 for x, y in zip(hist, hist[1:]))  # never decreases
    assert hist[-1] > hist[0]
    q = rfx.weight_matching(spec, a.state_dict(), b.state_dict(), init="identity", seed=0)
    assert all(torch.equal(p[g], q[g]) for g in spec.groups)  # reproducible
    warm = rfx.weight_matching(spec, a.state_dict(), b.state_dict(), init=dict(p))
    assert warm.history["given"][0] == pytest.approx(hist[-1])


@pytest.mark.parametrize("make,shape", [
    (lambda: M.ResNet20(1), (2, 3, 16, 16)),
    (lambda: ExplicitAttention(), (2, 7, 5)),
    (lambda: M.DenseBlockNet(), (2, 3, 8, 8)),
])
def test_export_fallback_gives_the_same_spec(monkeypatch, make, shape):
    """The two front ends (make_fx, torch.export) must agree on every spec."""
    import rebasin_fx.trace as tr
    from helpers import spec_as_axes

    torch.manual_seed(0)
    model = make().eval()
    x = (torch.randn(*shape),)
    primary = rfx.permutation_spec(model, x, cache=False)

    def fail(*a, **k):
        raise RuntimeError("make_fx unavailable")

    monkeypatch.setattr(tr, "_trace_make_fx", fail)
    assert tr.trace(model, x).tracer == "torch.export"
    fallback = rfx.permutation_spec(model, x, cache=False)
    assert spec_as_axes(fallback) == spec_as_axes(primary)
    assert fallback.buffers == primary.buffers
