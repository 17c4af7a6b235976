"""Straight-through estimator (Git Re-Basin, Algorithm 2).

Free weights start at A. For every batch: weight-match B to the free weights
(warm-started from the previous permutation), take the midpoint of A and the
projection of B, where the projection is the free weights in the backward pass
and permuted B in the forward pass, and step the free weights down the
midpoint's loss. Candidates (plain weight matching, and the permutation after
every epoch) are scored by the midpoint loss on the first ``eval_batches``
batches; the best one is returned.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

import torch
from torch.func import functional_call
from tqdm.auto import tqdm

from ..data import batches, reiterable, split_batch, to_device
from ..errors import RebasinError
from ..permute import clone_model, permute_state_dict
from ..spec import PermutationSpec
from .weight_matching import Permutations, weight_matching

log = logging.getLogger(__name__)

OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "adamw": torch.optim.AdamW}


def _midpoint_buffers(sd_a, sd_b_perm, buffer_keys):
    out = {}
    for k in buffer_keys:
        a, b = sd_a[k], sd_b_perm[k]
        out[k] = (0.5 * (a + b)) if a.is_floating_point() else a.clone()
    return out


def straight_through(
    spec: PermutationSpec,
    model_a: torch.nn.Module,
    model_b: torch.nn.Module,
    dataloader,
    loss_fn: Callable,
    epochs: int = 1,
    lr: float = 1e-3,
    optimizer: str | Callable = "adam",
    num_batches: int | None = None,
    eval_batches: int = 4,
    device=None,
    seed: int = 0,
    progress: bool = False,
) -> Permutations:
    """Permutations of B found by the straight-through estimator; A and B are untouched.

    ``loss_fn(outputs, targets)`` scores the midpoint model on a batch; the
    midpoint runs in training mode (BatchNorm uses batch statistics). Options:
    ``epochs`` over the loader (``num_batches`` per epoch), ``lr``,
    ``optimizer`` ("adam", "adamw", "sgd", or a factory ``f(params, lr)``),
    ``device`` (where the work runs; default: the models' device).

    Example:
        >>> import torch, rebasin_fx as rfx
        >>> from rebasin_fx.solvers.ste import straight_through
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
        >>> spec = rfx.permutation_spec(net, (torch.randn(1, 4),))
        >>> b = rfx.apply_permutations(net, spec, spec.random_perms(seed=1))
        >>> data = [(torch.randn(32, 4), torch.randint(0, 2, (32,))) for _ in range(4)]
        >>> found = straight_through(spec, net, b, data, torch.nn.functional.cross_entropy)
        >>> torch.equal(found["0.weight:0"], rfx.inverse(spec.random_perms(seed=1))["0.weight:0"])
        True
    """
    if loss_fn is None or not callable(loss_fn):
        raise RebasinError("the straight-through estimator needs loss_fn(outputs, targets) -> scalar loss, "
                           "e.g. loss_fn=torch.nn.functional.cross_entropy")
    if epochs < 1:
        raise RebasinError(f"epochs must be at least 1, got {epochs}")
    make_opt = OPTIMIZERS.get(optimizer) if isinstance(optimizer, str) else optimizer
    if make_opt is None:
        raise RebasinError(f"unknown optimizer {optimizer!r}; use one of {sorted(OPTIMIZERS)} or a factory f(params, lr)")
    where = "the straight-through estimator's dataloader"
    reiterable(dataloader, where)
    torch.manual_seed(seed)
    model = clone_model(model_a)
    if device is not None:
        model = model.to(device)
    dev = next((t.device for t in model.state_dict().values()), torch.device("cpu"))
    sd_a = {k: v.detach().to(dev) for k, v in model_a.state_dict().items()}
    sd_b = {k: v.detach().to(dev) for k, v in model_b.state_dict().items()}
    params = {k for k, _ in model.named_parameters()}
    trainable = [k for k in sd_a if k in params and sd_a[k].is_floating_point()]
    buffer_keys = [k for k in sd_a if k not in trainable]
    free = {k: sd_a[k].clone().requires_grad_(True) for k in trainable}
    opt = make_opt(list(free.values()), lr=lr)

    def midpoint_loss(perms, batch, free_w=None):
        args, kwargs, target = split_batch(batch, where)
        if target is None:
            raise RebasinError(f"{where} yielded a batch without targets; the loss needs (input, target) batches "
                               "or dicts with 'labels'")
        pb = permute_state_dict(sd_b, spec, perms)
        tensors = _midpoint_buffers(sd_a, pb, buffer_keys)
        for k in trainable:
            proj = pb[k] if free_w is None else free_w[k] + (pb[k] - free_w[k]).detach()
            tensors[k] = 0.5 * (sd_a[k] + proj)
        out = functional_call(model, tensors, to_device(args, dev), to_device(kwargs, dev), tie_weights=False)
        return loss_fn(out, to_device(target, dev))

    def score(perms) -> float:
        with torch.no_grad():
            losses = [float(midpoint_loss(perms, b)) for b in batches(dataloader, eval_batches, where)]
        return sum(losses) / len(losses)

    t0 = time.perf_counter()
    perms = weight_matching(spec, sd_a, sd_b, seed=seed)
    model.train()
    best = (score(perms), dict(perms), "weight matching")
    history = [best[0]]
    total = epochs * (num_batches or _len_or_none(dataloader) or 0) or None
    bar = tqdm(total=total, desc="straight-through", disable=not progress, leave=False)
    for epoch in range(epochs):
        for batch in batches(dataloader, num_batches, where):
            current = {k: v.detach() for k, v in free.items()}
            perms = weight_matching(spec, {**sd_a, **current}, sd_b, seed=seed, init=dict(perms))
            opt.zero_grad(set_to_none=True)
            loss = midpoint_loss(perms, batch, free)
            if not torch.isfinite(loss.detach()):
                raise RebasinError(f"the midpoint loss became {loss.item()} at epoch {epoch}; lower lr (now {lr})")
            loss.backward()
            opt.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4g}")
        s = score(perms)
        history.append(s)
        if s < best[0]:
            best = (s, dict(perms), f"epoch {epoch + 1}")
    bar.close()
    log.info("straight-through: best midpoint loss %.4g from %s", best[0], best[2])
    out = Permutations({g: best[1][g].cpu() for g in spec.groups})
    out.objective, out.start, out.history = -best[0], best[2], {"midpoint loss": history}
    out.timing = {"total": time.perf_counter() - t0}
    return out


def _len_or_none(loader):
    try:
        return len(loader)
    except TypeError:
        return None
