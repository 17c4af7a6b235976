"""Batches as users' dataloaders yield them: a tensor, (input, target, ...), or a dict of keyword inputs."""

from __future__ import annotations

from typing import Any, Iterable, Iterator

import torch
from torch.utils import _pytree as pytree

from .errors import RebasinError


def split_batch(batch: Any, where: str = "dataloader") -> tuple[tuple, dict, Any]:
    """(args, kwargs, target) of one batch.

    A tensor is the input; a tuple/list is (input, target, ...); a dict holds keyword
    inputs (Hugging Face style) with ``labels`` as the target.
    """
    if isinstance(batch, torch.Tensor):
        return (batch,), {}, None
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
        return (batch[0],), {}, batch[1] if len(batch) > 1 else None
    if isinstance(batch, dict) and batch:
        kwargs = dict(batch)
        target = kwargs.pop("labels", None)
        return (), kwargs, target
    raise RebasinError(
        f"{where} yielded a {type(batch).__name__}; expected a tensor (the input), a tuple/list "
        "(input, target, ...) or a dict of keyword inputs (with 'labels' as the target)"
    )


def to_device(x: Any, device) -> Any:
    return pytree.tree_map(lambda t: t.to(device) if isinstance(t, torch.Tensor) else t, x)


def batches(loader: Iterable, num_batches: int | None = None, where: str = "dataloader") -> Iterator:
    """Yield up to ``num_batches`` batches; a loader that yields nothing is an error."""
    if num_batches is not None and num_batches < 1:
        raise RebasinError(f"num_batches must be at least 1, got {num_batches}")
    count = 0
    for batch in loader:
        if num_batches is not None and count >= num_batches:
            break
        count += 1
        yield batch
    if count == 0:
        raise RebasinError(f"{where} yielded no batches; pass a dataloader over at least one batch of data")


def reiterable(loader: Iterable, where: str = "dataloader") -> Iterable:
    """``loader`` itself, if it can be iterated more than once (a list, a DataLoader); else a RebasinError."""
    if loader is not None and iter(loader) is loader:
        raise RebasinError(f"{where} is a one-shot iterator (a generator?), but it is read several times; "
                           "pass a list of batches or a torch DataLoader")
    return loader
