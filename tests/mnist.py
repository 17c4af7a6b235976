"""MNIST helpers for tests, on top of the demo's data and training loop."""

from __future__ import annotations

from rebasin_fx import datasets, demo
from rebasin_fx.barrier import evaluate_path


def mnist():
    return datasets.mnist_subset()


def train(model, data, epochs=5, seed=0):
    return demo.train(model, data, epochs=epochs, seed=seed)


loss_and_acc = demo.evaluate


def loss_barrier(model_a, model_b, data, steps=9):
    return evaluate_path([model_a, model_b], datasets.batched(data), steps=steps).loss_barrier
