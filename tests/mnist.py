"""MNIST helpers for tests, on top of the demo's data and training loop."""

from __future__ import annotations

import functools

from rebasin_fx import demo


@functools.lru_cache(maxsize=1)
def mnist():
    return demo.mnist_subset()


def train(model, data, epochs=5, seed=0):
    return demo.train(model, data, epochs=epochs, seed=seed)


loss_and_acc = demo.evaluate


def loss_barrier(model_a, model_b, data, steps=11):
    return demo.loss_barrier(demo.lerp_curve(model_a, model_b, data, steps))
