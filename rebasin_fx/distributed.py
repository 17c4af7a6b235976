"""Statistics over data sharded across processes (torchrun): sums are all-reduced."""

from __future__ import annotations

from typing import Iterable

import torch
import torch.distributed as dist


def active() -> bool:
    """True when a torch.distributed process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def all_reduce_sum(tensors: Iterable[torch.Tensor]) -> None:
    """Sum each tensor over all ranks, in place (nothing to do in a single process).

    Every rank must call this with tensors of the same shapes in the same order.
    """
    if not active():
        return
    for t in tensors:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
