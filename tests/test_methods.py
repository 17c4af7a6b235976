"""Activation matching, the straight-through estimator and REPAIR: planted permutations,
statistics over shards (gloo), and bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import rebasin_fx as rfx
import models as M
from helpers import assert_unchanged, snapshot

CASES = [
    ("mlp", lambda: M.MLP(784, (32, 32, 32)), (1, 28, 28)),
    ("resnet20", lambda: M.ResNet20(1, in_ch=1), (1, 12, 12)),
    ("dense", lambda: M.DenseBlockNet(), (3, 8, 8)),
    ("separable", lambda: M.SeparableNet(), (3, 8, 8)),
]


def _planted(make, shape, seed=0):
    torch.manual_seed(seed)
    net = make().eval()
    x = torch.randn(2, *shape)
    spec = rfx.permutation_spec(net, (x,))
    planted = spec.random_perms(seed=seed + 5)
    b = rfx.apply_permutations(net, spec, planted)
    return net, b, spec, rfx.inverse(planted)


@pytest.mark.parametrize("name,make,shape", CASES, ids=[c[0] for c in CASES])
def test_activation_matching_recovers_planted_permutation(name, make, shape):
    net, b, spec, want = _planted(make, shape)
    data = [torch.randn(16, *shape) for _ in range(3)] + [torch.randn(5, *shape)]  # a shorter last batch
    snaps = snapshot(net), snapshot(b)
    found = rfx.activation_matching(spec, net, b, data)
    for g in spec.groups:
        assert torch.equal(found[g], want[g]), g
    assert_unchanged(net, snaps[0])
    assert_unchanged(b, snaps[1])
    res = rfx.align(net, b, (data[0][:2],), method="activation", dataloader=data)
    spec.check(res.model, (data[0][:2],))
    for k, v in net.state_dict().items():
        assert torch.equal(res.model.state_dict()[k], v), k


def test_activation_matching_on_a_transformer_falls_back_for_groups_without_sites():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True)
    net = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()
    x = torch.randn(2, 5, 16)
    spec = rfx.permutation_spec(net, (x,))
    planted = spec.random_perms(seed=3)
    b = rfx.apply_permutations(net, spec, planted)
    found = rfx.activation_matching(spec, net, b, [torch.randn(8, 5, 16) for _ in range(3)])
    want = rfx.inverse(planted)
    for g in spec.groups:
        assert torch.equal(found[g], want[g]), g
    # the MLP hidden units have a site (after the ReLU); groups that only live inside attention's
    # weights (a head's own dims) need not, and are solved by weight matching
    assert any("linear1" in g for g in spec.groups if g not in found.fallback)
    assert set(found.fallback) <= set(spec.groups)


@pytest.mark.parametrize("name,make,shape", CASES[:2], ids=[c[0] for c in CASES[:2]])
def test_straight_through_recovers_planted_permutation(name, make, shape):
    net, b, spec, want = _planted(make, shape)
    data = [(torch.randn(16, *shape), torch.randint(0, 10, (16,))) for _ in range(3)]
    found = rfx.straight_through(spec, net, b, data, F.cross_entropy, epochs=2)
    for g in spec.groups:
        assert torch.equal(found[g], want[g]), g
    assert len(found.history["midpoint loss"]) == 3


def test_repair_gives_each_channel_the_interpolated_statistics():
    torch.manual_seed(0)
    a, b = M.MLP(784, (32, 32)).eval(), M.MLP(784, (32, 32)).eval()
    # one batch: the batch statistics REPAIR corrects with during its pass are then the ones it
    # folds in, so every layer's statistics come out exactly (with more batches, approximately)
    data = [torch.randn(512, 1, 28, 28)]
    mid = rfx.interpolate([a, b], steps=1)[1]
    snap = snapshot(mid)
    fixed = rfx.repair(a, b, mid, data, alpha=0.5)
    assert_unchanged(mid, snap)
    assert type(fixed) is type(mid)

    def stats(model, name):
        outs = []
        h = dict(model.named_modules())[name].register_forward_hook(lambda m, i, o: outs.append(o))
        with torch.no_grad():
            for x in data:
                model(x)
        h.remove()
        y = torch.cat(outs)
        return y.mean(0), y.std(0, unbiased=False)

    for name in ("layers.0", "layers.1"):
        (ma, sa), (mb, sb), (mf, sf) = stats(a, name), stats(b, name), stats(fixed, name)
        assert torch.allclose(mf, (ma + mb) / 2, atol=1e-4), name
        assert torch.allclose(sf, (sa + sb) / 2, rtol=1e-3), name
    # the output layer's units are not hidden units: left alone
    assert torch.equal(fixed.out.weight, mid.out.weight)


def test_distributed_statistics_match_one_process(tmp_path):
    import torch.multiprocessing as mp

    import dist_worker

    out = tmp_path / "rank0.pt"
    mp.spawn(dist_worker.worker, args=(2, str(tmp_path / "init"), str(out)), nprocs=2, join=True)
    two = torch.load(out, weights_only=True)
    one = dist_worker.results(*dist_worker.setup())
    assert two["perms"].keys() == one["perms"].keys()
    for g, p in one["perms"].items():
        assert torch.equal(two["perms"][g], p), g
    for k, v in one["repaired"].items():
        assert torch.allclose(two["repaired"][k].double(), v.double(), rtol=1e-5, atol=1e-6), k


def test_bad_input():
    a, b = M.MLP(784, (16,)), M.MLP(784, (16,))
    x = torch.randn(2, 1, 28, 28)
    with pytest.raises(rfx.RebasinError, match="yielded no batches"):
        rfx.align(a, b, (x,), method="activation", dataloader=[])
    with pytest.raises(rfx.RebasinError, match="yielded a str"):
        rfx.align(a, b, (x,), method="activation", dataloader=["not a batch"])
    with pytest.raises(rfx.RebasinError, match="without targets"):
        rfx.align(a, b, (x,), method="ste", dataloader=[x], loss_fn=F.cross_entropy)
    with pytest.raises(rfx.RebasinError, match="needs loss_fn"):
        rfx.align(a, b, (x,), method="straight through", dataloader=[(x, torch.zeros(2, dtype=torch.long))])
    b.out.to("meta")
    with pytest.raises(rfx.RebasinError, match="several devices"):
        rfx.align(a, b, (x,), method="activation", dataloader=[x])
    with pytest.raises(rfx.RebasinError, match="alpha must be in"):
        rfx.repair(a, a, a, [x], alpha=2.0)
    # methods that read the data several times refuse a one-shot generator, saying what to pass
    with pytest.raises(rfx.RebasinError, match="one-shot iterator.*list of batches or a torch DataLoader"):
        rfx.repair(a, a, a, (x for _ in range(2)))
    with pytest.raises(rfx.RebasinError, match="one-shot iterator"):
        rfx.evaluate_path([a, a], ((x, torch.zeros(2, dtype=torch.long)) for _ in range(2)))
