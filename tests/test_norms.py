"""reset_bn_stats: exact statistics, modes kept, inputs untouched; batch structures; bad loaders."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import rebasin_fx as rfx
from helpers import assert_unchanged, snapshot
import models as M


def test_equals_hand_computed_statistics():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3)
    net = nn.Sequential(bn, nn.Conv2d(3, 2, 1), nn.Dropout(0.5)).eval()
    data = [torch.randn(5, 3, 4, 4) * (i + 1) + i for i in range(3)]
    snap = snapshot(net)
    fresh = rfx.reset_bn_stats(net, data)
    # cumulative average of the per-batch statistics BatchNorm sees (variance unbiased per batch)
    means = torch.stack([x.mean((0, 2, 3)) for x in data]).mean(0)
    vars_ = torch.stack([x.var((0, 2, 3), unbiased=True) for x in data]).mean(0)
    assert torch.allclose(fresh[0].running_mean, means, atol=1e-6)
    assert torch.allclose(fresh[0].running_var, vars_, atol=1e-5)
    assert int(fresh[0].num_batches_tracked) == 3
    assert not fresh.training and not fresh[2].training  # modes as they were
    assert fresh[0].momentum == 0.1
    assert_unchanged(net, snap)


@pytest.mark.parametrize("make_batch", [
    lambda x, y: x,
    lambda x, y: (x, y),
    lambda x, y: [x, y, "extra"],
])
def test_batch_structures(make_batch):
    torch.manual_seed(0)
    net = M.ResNet20(1, in_ch=1).eval()
    xs = [torch.randn(4, 1, 8, 8) for _ in range(2)]
    loader = [make_batch(x, torch.zeros(4, dtype=torch.long)) for x in xs]
    a = rfx.reset_bn_stats(net, loader)
    b = rfx.reset_bn_stats(net, xs)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k])


def test_dict_batches_are_keyword_inputs():
    class KW(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm1d(3)

        def forward(self, features):
            return self.bn(features)

    data = [{"features": torch.randn(6, 3), "labels": torch.zeros(6)} for _ in range(2)]
    fresh = rfx.reset_bn_stats(KW().eval(), data)
    assert int(fresh.bn.num_batches_tracked) == 2


def test_bad_loaders():
    net = M.ResNet20(1).eval()
    with pytest.raises(rfx.RebasinError, match="yielded no batches"):
        rfx.reset_bn_stats(net, [])
    with pytest.raises(rfx.RebasinError, match="yielded a str"):
        rfx.reset_bn_stats(net, ["not a batch"])
    with pytest.raises(rfx.RebasinError, match="num_batches must be at least 1"):
        rfx.reset_bn_stats(net, [torch.randn(2, 3, 8, 8)], num_batches=0)


def test_num_batches_limits_the_pass():
    net = nn.Sequential(nn.BatchNorm1d(2)).eval()
    fresh = rfx.reset_bn_stats(net, [torch.randn(4, 2) for _ in range(5)], num_batches=2)
    assert int(fresh[0].num_batches_tracked) == 2
