"""Normalisation statistics after merging: BatchNorm running statistics recomputed on data."""

from __future__ import annotations

import torch
from torch import nn
from tqdm.auto import tqdm

from .data import batches, split_batch, to_device
from .permute import clone_model

_BN = nn.modules.batchnorm._BatchNorm


def has_batchnorm(model: nn.Module) -> bool:
    """Does the model have a BatchNorm that tracks running statistics?"""
    return any(isinstance(m, _BN) and m.track_running_stats for m in model.modules())


def reset_bn_stats(model: nn.Module, dataloader, num_batches: int | None = None, inplace: bool = False,
                   progress: bool = False) -> nn.Module:
    """Recompute every BatchNorm's running mean and variance on ``dataloader``.

    The statistics are the cumulative average over the batches (``momentum=None``),
    with each BatchNorm normalising by its batch statistics during the pass, as in
    training. Works for BatchNorm1d/2d/3d and SyncBatchNorm (which needs an
    initialised process group in training mode). Returns a new model unless
    ``inplace``; every module keeps the mode and momentum it had.

    Example:
        >>> import torch, rebasin_fx as rfx
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).eval()
        >>> data = [torch.randn(8, 3) for _ in range(4)]
        >>> fresh = rfx.reset_bn_stats(net, data)
        >>> int(fresh[1].num_batches_tracked), fresh[1].training
        (4, False)
    """
    model = model if inplace else clone_model(model)
    norms = [m for m in model.modules() if isinstance(m, _BN) and m.track_running_stats]
    if not norms:
        return model
    saved = [(m, m.training, m.momentum) for m in norms]
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.training = True
    try:
        with torch.no_grad():
            for batch in tqdm(batches(dataloader, num_batches, "reset_bn_stats' dataloader"),
                              desc="BatchNorm statistics", disable=not progress, leave=False):
                args, kwargs, _ = split_batch(batch, "reset_bn_stats' dataloader")
                model(*to_device(args, device), **to_device(kwargs, device))
    finally:
        for m, training, momentum in saved:
            m.training = training
            m.momentum = momentum
    return model
