"""Metrics along an interpolation path: built-in loss and accuracy, or the user's own."""

from __future__ import annotations

import dataclasses
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .data import batches, split_batch, to_device
from .errors import RebasinError
from .trace import eval_mode


@dataclasses.dataclass(frozen=True)
class Metrics:
    """What to measure at each point: ``measure(model, dataloader) -> {name: value}``.

    ``primary`` picks the best point; ``higher_is_better[name]`` gives each barrier's sign.
    """

    primary: str
    higher_is_better: dict
    measure: Callable[[nn.Module, object], dict]


def logits_of(out):
    """The logits of a model output: a tensor, an object with ``.logits`` (Hugging Face), or a tuple's first."""
    if isinstance(out, torch.Tensor):
        return out
    if hasattr(out, "logits"):
        return out.logits
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise RebasinError(f"cannot read logits from a model output of type {type(out).__name__}; "
                       "pass metric=callable(model, dataloader) -> float")


@torch.no_grad()
def loss_and_accuracy(model: nn.Module, dataloader, num_batches: int | None = None) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over the loader's (input, target) batches, model in eval mode."""
    where = "the evaluation dataloader"
    device = next((t.device for t in model.state_dict().values()), torch.device("cpu"))
    total = loss = correct = 0.0
    with eval_mode(model):
        for batch in batches(dataloader, num_batches, where):
            args, kwargs, target = split_batch(batch, where)
            if target is None:
                raise RebasinError(f"{where} yielded a batch without targets; loss and accuracy need "
                                   "(input, target) batches or dicts with 'labels'")
            logits = logits_of(model(*to_device(args, device), **to_device(kwargs, device)))
            target = target.to(device)
            logits = logits.reshape(-1, logits.shape[-1]).float()
            target = target.reshape(-1)
            keep = target != -100
            loss += float(F.cross_entropy(logits[keep], target[keep], reduction="sum"))
            correct += float((logits[keep].argmax(-1) == target[keep]).sum())
            total += int(keep.sum())
    return loss / max(total, 1), correct / max(total, 1)


BUILTIN = ("loss", "accuracy")


def resolve(metric) -> Metrics:
    """``"loss"`` or ``"accuracy"`` (both are measured, in one pass; the name is the primary one),
    or a callable ``f(model, dataloader) -> float`` with ``f.higher_is_better`` set."""
    if isinstance(metric, str):
        if metric not in BUILTIN:
            raise RebasinError(f"unknown metric {metric!r}; use 'loss', 'accuracy' or a callable "
                               "f(model, dataloader) -> float with f.higher_is_better set")

        def measure(model, loader):
            loss, acc = loss_and_accuracy(model, loader)
            return {"loss": loss, "accuracy": acc}

        return Metrics(metric, {"loss": False, "accuracy": True}, measure)
    if callable(metric):
        hib = getattr(metric, "higher_is_better", None)
        if not isinstance(hib, bool):
            raise RebasinError("a metric callable must declare its direction: set "
                               "fn.higher_is_better = True (accuracy-like) or False (loss-like)")
        name = getattr(metric, "__name__", "metric")
        return Metrics(name, {name: hib}, lambda model, loader: {name: float(metric(model, loader))})
    raise RebasinError(f"metric must be 'loss', 'accuracy' or a callable, got {type(metric).__name__}")
