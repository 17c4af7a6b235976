"""Small models of our own, each with its symmetry written out by hand (Git Re-Basin style)."""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class MLP(nn.Module):
    def __init__(self, d_in=784, hidden=(32, 32, 32), d_out=10):
        super().__init__()
        dims = (d_in,) + tuple(hidden)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.out = nn.Linear(dims[-1], d_out)

    def forward(self, x):
        x = x.flatten(1)
        for layer in self.layers:
            x = F.relu(layer(x))
        return self.out(x)


def mlp_axes(n_hidden=3):
    axes = {}
    prev = None
    for i in range(n_hidden):
        axes[f"layers.{i}.weight"] = (f"P{i}", prev)
        axes[f"layers.{i}.bias"] = (f"P{i}",)
        prev = f"P{i}"
    axes["out.weight"] = (None, prev)
    axes["out.bias"] = (None,)
    return axes


class VGGish(nn.Module):
    """Conv-BN-ReLU-pool twice on 16x16 inputs, then a classifier after flattening a 4x4 map."""

    def __init__(self, w=8):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, w, 3, padding=1), nn.BatchNorm2d(w)
        self.conv2, self.bn2 = nn.Conv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w)
        self.fc1 = nn.Linear(2 * w * 16, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


def bn_axes(name, p):
    return {f"{name}.{s}": (p,) for s in ("weight", "bias", "running_mean", "running_var")}


def vggish_axes():
    axes = {"conv1.weight": ("P1", None, None, None), "conv1.bias": ("P1",), **bn_axes("bn1", "P1"),
            "conv2.weight": ("P2", "P1", None, None), "conv2.bias": ("P2",), **bn_axes("bn2", "P2"),
            "fc1.weight": ("P3", "P2"), "fc1.bias": ("P3",), "fc2.weight": (None, "P3"), "fc2.bias": (None,)}
    return axes


from rebasin_fx.demo_models import BasicBlock, ResNet20  # noqa: E402,F401  (shared with the demo)


def resnet20_axes():
    """One permutation per residual stream (stem, block outputs, shortcuts) + one inside each block."""
    axes = {"conv1.weight": ("S0", None, None, None), **bn_axes("bn1", "S0")}
    stream = "S0"
    for i in range(9):
        p = f"blocks.{i}"
        new_stream = stream if i not in (3, 6) else f"S{i // 3}"
        axes[f"{p}.conv1.weight"] = (f"I{i}", stream, None, None)
        axes.update(bn_axes(f"{p}.bn1", f"I{i}"))
        axes[f"{p}.conv2.weight"] = (new_stream, f"I{i}", None, None)
        axes.update(bn_axes(f"{p}.bn2", new_stream))
        if i in (3, 6):
            axes[f"{p}.shortcut.0.weight"] = (new_stream, stream, None, None)
            axes.update(bn_axes(f"{p}.shortcut.1", new_stream))
        stream = new_stream
    axes["fc.weight"] = (None, stream)
    axes["fc.bias"] = (None,)
    return axes


class DenseBlockNet(nn.Module):
    """A stem, then a dense block whose layers see the concatenation of all earlier features."""

    def __init__(self, c0=8, growth=4, n_layers=2):
        super().__init__()
        self.stem = nn.Conv2d(3, c0, 3, padding=1)
        self.norms = nn.ModuleList()
        self.convs = nn.ModuleList()
        c = c0
        for _ in range(n_layers):
            self.norms.append(nn.BatchNorm2d(c))
            self.convs.append(nn.Conv2d(c, growth, 3, padding=1))
            c += growth
        self.final_norm = nn.BatchNorm2d(c)
        self.fc = nn.Linear(c, 5)

    def forward(self, x):
        feats = [self.stem(x)]
        for norm, conv in zip(self.norms, self.convs):
            feats.append(conv(F.relu(norm(torch.cat(feats, 1)))))
        x = F.relu(self.final_norm(torch.cat(feats, 1)))
        return self.fc(x.mean((2, 3)))


class SeparableNet(nn.Module):
    """Depthwise-separable block (MobileNet style)."""

    def __init__(self, c=16, c2=32):
        super().__init__()
        self.conv0, self.bn0 = nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.dw, self.bn_dw = nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False), nn.BatchNorm2d(c)
        self.pw, self.bn_pw = nn.Conv2d(c, c2, 1, bias=False), nn.BatchNorm2d(c2)
        self.fc = nn.Linear(c2, 5)

    def forward(self, x):
        x = F.relu6(self.bn0(self.conv0(x)))
        x = F.relu6(self.bn_dw(self.dw(x)))
        x = F.relu6(self.bn_pw(self.pw(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def separable_axes():
    return {"conv0.weight": ("P1", None, None, None), **bn_axes("bn0", "P1"),
            "dw.weight": ("P1", None, None, None), **bn_axes("bn_dw", "P1"),
            "pw.weight": ("P2", "P1", None, None), **bn_axes("bn_pw", "P2"),
            "fc.weight": (None, "P2"), "fc.bias": (None,)}


class GroupedNet(nn.Module):
    """A grouped conv (groups=4): channels are groups x per_group on both sides."""

    def __init__(self, c=16, c2=32, groups=4):
        super().__init__()
        self.conv0, self.bn0 = nn.Conv2d(3, c, 3, padding=1), nn.BatchNorm2d(c)
        self.gconv, self.bn1 = nn.Conv2d(c, c2, 3, padding=1, groups=groups), nn.BatchNorm2d(c2)
        self.fc = nn.Linear(c2, 5)

    def forward(self, x):
        x = F.relu(self.bn0(self.conv0(x)))
        x = F.relu(self.bn1(self.gconv(x)))
        return self.fc(x.mean((2, 3)))


class GroupNormNet(nn.Module):
    def __init__(self, c=16, groups=4):
        super().__init__()
        self.conv1, self.gn1 = nn.Conv2d(3, c, 3, padding=1), nn.GroupNorm(groups, c)
        self.conv2, self.gn2 = nn.Conv2d(c, c, 3, padding=1), nn.GroupNorm(groups, c)
        self.fc = nn.Linear(c, 5)

    def forward(self, x):
        x = F.gelu(self.gn1(self.conv1(x)))
        x = F.gelu(self.gn2(self.conv2(x)))
        return self.fc(F.avg_pool2d(x, 2).amax((2, 3)))


class Conv1d3dNet(nn.Module):
    """conv1d on a sequence and conv3d on a volume, joined by concatenating pooled features."""

    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv1d(2, 6, 3, padding=1), nn.BatchNorm1d(6)
        self.c3, self.b3 = nn.Conv3d(1, 4, 3, padding=1), nn.BatchNorm3d(4)
        self.t3 = nn.ConvTranspose3d(4, 5, 2, stride=2)
        self.fc = nn.Linear(11, 3)

    def forward(self, seq, vol):
        a = F.relu(self.b1(self.c1(seq))).mean(-1)
        v = F.relu(self.b3(self.c3(vol)))
        v = F.relu(self.t3(v)).amax((2, 3, 4))
        return self.fc(torch.cat([a, v], 1))
