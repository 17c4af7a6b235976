"""Bugs found on real models, each reduced to a small model."""

from __future__ import annotations

import torch
from torch import nn

import rebasin_fx as rfx


class CachedBias(nn.Module):
    """Like timm's EfficientFormer/LeViT: an index buffer into a bias table, cached in eval mode."""

    def __init__(self, heads=4, n=5):
        super().__init__()
        self.q = nn.Linear(8, heads * 4)
        self.k = nn.Linear(8, heads * 4)
        self.v = nn.Linear(8, heads * 4)
        self.out = nn.Linear(heads * 4, 3)
        self.heads = heads
        self.biases = nn.Parameter(torch.randn(heads, 2 * n))
        self.register_buffer("idx", torch.randint(0, 2 * n, (n, n)))
        self.cache = {}

    def train(self, mode=True):
        super().train(mode)
        if mode:
            self.cache = {}
        return self

    def bias(self):
        if self.training:
            return self.biases[:, self.idx]
        if "b" not in self.cache:
            self.cache["b"] = self.biases[:, self.idx]
        return self.cache["b"]

    def forward(self, x):  # x: [B, n, 8]
        B, N, _ = x.shape
        q, k, v = (f(x).view(B, N, self.heads, 4).transpose(1, 2) for f in (self.q, self.k, self.v))
        att = (q @ k.transpose(-1, -2) + self.bias()).softmax(-1)
        return self.out((att @ v).transpose(1, 2).reshape(B, N, -1)).mean(1)


def test_index_buffer_is_pinned_and_caches_are_not_kept():
    torch.manual_seed(0)
    model = CachedBias().eval()
    x = torch.randn(2, 5, 8)
    model(x)  # fills the cache, as a user's evaluation would
    spec = rfx.permutation_spec(model, (x,))
    assert "idx" not in spec.axes  # an index tensor must never be permuted
    assert model.cache and not any(isinstance(v, torch._subclasses.FakeTensor) for v in model.cache.values())
    assert spec.check(model, (x,)) <= 1e-6
    perms = spec.random_perms(seed=2)
    permuted = rfx.apply_permutations(model, spec, perms)
    with torch.no_grad():
        assert torch.allclose(permuted(x), model(x), atol=1e-5)  # stale cache would break this
    res = rfx.align(model, permuted, (x,))
    for k, v in model.state_dict().items():
        assert torch.equal(res.model.state_dict()[k], v)


class SharedZeroBias(nn.Module):
    """One zero bias tensor (constant along heads) added to the scores of two attention layers."""

    def __init__(self, d=8, h=2):
        super().__init__()
        self.h = h
        self.layers = nn.ModuleList(nn.ModuleDict({"qkv": nn.Linear(d, 3 * d), "o": nn.Linear(d, d)}) for _ in range(2))
        self.inp, self.head = nn.Linear(5, d), nn.Linear(d, 2)

    def forward(self, x):
        x = self.inp(x)
        B, T, D = x.shape
        bias = torch.zeros(1, self.h, T, T) + torch.ones(1, 1, T, T).triu(1) * -1e4  # causal, constant over heads
        for layer in self.layers:
            q, k, v = (t.view(B, T, self.h, -1).transpose(1, 2) for t in layer["qkv"](x).chunk(3, -1))
            att = (q @ k.transpose(-1, -2) + bias).softmax(-1)
            x = x + layer["o"]((att @ v).transpose(1, 2).reshape(B, T, D))
        return self.head(x)


def test_constant_shared_tensor_ties_no_heads():
    torch.manual_seed(0)
    model = SharedZeroBias().eval()
    x = torch.randn(2, 5, 5)
    spec = rfx.permutation_spec(model, (x,))
    # residual; per layer heads, q/k head_dim, v head_dim: the two layers' heads stay separate
    assert sorted(g.size for g in spec.groups.values()) == [2, 2, 4, 4, 4, 4, 8]
    assert spec.check(model, (x,), seed=4) <= 1e-6


class Shuffles(nn.Module):
    """nn.PixelShuffle (channels C*r*r -> C) and nn.ChannelShuffle (g x c -> c x g)."""

    def __init__(self):
        super().__init__()
        self.c0 = nn.Conv2d(3, 8, 3, padding=1)
        self.ps = nn.PixelShuffle(2)
        self.c1 = nn.Conv2d(2, 6, 3, padding=1)
        self.cs = nn.ChannelShuffle(2)
        self.c2 = nn.Conv2d(6, 4, 1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        x = self.cs(torch.relu(self.c1(self.ps(torch.relu(self.c0(x))))))
        return self.fc(torch.relu(self.c2(x)).mean((2, 3)))


def test_pixel_and_channel_shuffle_layouts():
    from helpers import assert_spec_matches

    torch.manual_seed(0)
    model = Shuffles().eval()
    x = torch.randn(2, 3, 6, 6)
    spec = rfx.permutation_spec(model, (x,))
    expected = {
        "c0.weight": (("x", "C", 4), None, None, None), "c0.bias": (("x", "C", 4),),
        "c1.weight": (("x", "G", "K"), "C", None, None), "c1.bias": (("x", "G", "K"),),
        "c2.weight": ("O", ("x", "K", "G"), None, None), "c2.bias": ("O",),
        "fc.weight": (None, "O"), "fc.bias": (None,),
    }
    assert_spec_matches(spec, expected)
    assert spec.check(model, (x,), seed=2) <= 1e-6
