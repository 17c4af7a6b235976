"""Small models for the demo and the tests: an MLP, a ResNet-20 with BatchNorm, a small ViT."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def mlp(width: int = 512, depth: int = 3, d_in: int = 784, d_out: int = 10) -> nn.Module:
    """Flatten, then ``depth`` hidden layers of ``width`` ReLU units."""
    layers: list[nn.Module] = [nn.Flatten()]
    dims = [d_in] + [width] * depth
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(dims[-1], d_out))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet20(nn.Module):
    """ResNet-20 (He et al. 2016, CIFAR variant) with widths 16/32/64 x ``width``."""

    def __init__(self, width=1, num_classes=10, in_ch=3):
        super().__init__()
        w = [16 * width, 32 * width, 64 * width]
        self.conv1 = nn.Conv2d(in_ch, w[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w[0])
        blocks, cin = [], w[0]
        for s, cout in enumerate(w):
            for b in range(3):
                blocks.append(BasicBlock(cin, cout, 2 if (s > 0 and b == 0) else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(w[2], num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.blocks(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


class ViT(nn.Module):
    """A small vision transformer: patches, a class token, pre-norm encoder layers, a linear head."""

    def __init__(self, image=28, patch=7, in_ch=1, dim=64, depth=2, heads=4, mlp_ratio=2, num_classes=10):
        super().__init__()
        self.patch = nn.Conv2d(in_ch, dim, patch, patch)
        n = (image // patch) ** 2
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, dim * mlp_ratio, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        x = self.encoder(x)
        return self.head(self.norm(x[:, 0]))


FAMILIES = {
    "mlp": lambda width: mlp(width),
    "resnet": lambda width: ResNet20(width, in_ch=1),
    "vit": lambda width: ViT(dim=width),
}
DEFAULT_WIDTH = {"mlp": 512, "resnet": 1, "vit": 64}
