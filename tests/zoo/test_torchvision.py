"""Every torchvision classification model that builds in under 5 s on CPU, random weights."""

from __future__ import annotations

import time

import pytest
import torch
import torchvision

import rebasin_fx as rfx
from .zoo_check import n_params, verify

NAMES = torchvision.models.list_models(module=torchvision.models)
# Above this size the float64 check and weight matching of big layers do not fit the CI budget of a
# 2-core machine; benchmarks/zoo.py runs every model at full size. Each family keeps smaller members here.
MAX_PARAMS = 30_000_000
# Chained channel shuffles interleave a pass-through half with a branch output; the algebra has no
# interleaved sums, so it ties the two and the deepest blocks lose their freedom (sound, not complete).
INCOMPLETE = {n for n in NAMES if n.startswith("shufflenet")}
INPUT = {"inception_v3": 96, "maxvit_t": 224}
KWARGS = {n: {"image_size": 32} for n in NAMES if n.startswith("vit_")}
# measured here: 8.4 s and 10.9 s to build with random weights
SLOW_TO_BUILD = {"vit_h_14", "regnet_y_128gf"}


def build(name):
    kwargs = dict(KWARGS.get(name, {}))
    if name in ("googlenet", "inception_v3"):
        kwargs["init_weights"] = False
        kwargs["aux_logits"] = False
    return torchvision.models.get_model(name, weights=None, **kwargs)


@pytest.mark.parametrize("name", NAMES)
def test_torchvision_model(name):
    if name in SLOW_TO_BUILD:
        pytest.skip("builds in over 5 s on this CPU")
    torch.manual_seed(0)
    t = time.perf_counter()
    model = build(name)
    if time.perf_counter() - t > 5:
        pytest.skip("builds in over 5 s on this CPU")
    if n_params(model) > MAX_PARAMS:
        pytest.skip(f"{n_params(model) / 1e6:.0f}M parameters: over the CI budget, run by benchmarks/zoo.py")
    size = INPUT.get(name, 32 if name.startswith("vit_") else 64)
    spec = verify(model, (torch.randn(2, 3, size, size),), complete=name not in INCOMPLETE)
    assert len(spec.groups) >= 1


@pytest.mark.parametrize("name,blocks,bottleneck", [("resnet18", 8, False), ("resnet34", 16, False),
                                                   ("resnet50", 16, True), ("resnext50_32x4d", 16, True)])
def test_resnet_group_count(name, blocks, bottleneck):
    """Full symmetry: one stream per stage (and the stem's own when layer1 projects) + the inner units."""
    model = torchvision.models.get_model(name, weights=None).eval()
    spec = rfx.permutation_spec(model, (torch.randn(1, 3, 64, 64),))
    streams = 4 + (1 if bottleneck else 0)
    inner = blocks * (2 if bottleneck else 1)
    if name.startswith("resnext"):  # grouped 3x3 conv: its units are groups x per_group (2 atoms)
        inner = blocks * 3
    assert len(spec.groups) == streams + inner


def test_vit_group_count():
    """ViT: the residual stream, and per layer the heads, q/k head_dim, v head_dim, MLP hidden."""
    model = torchvision.models.vit_b_16(weights=None, image_size=32).eval()
    spec = rfx.permutation_spec(model, (torch.randn(1, 3, 32, 32),))
    sizes = sorted(g.size for g in spec.groups.values())
    assert sizes == sorted([768] + [12] * 12 + [64] * 24 + [3072] * 12)
