"""align: derive the spec, solve for B's permutations, return an aligned copy of B."""

from __future__ import annotations

import dataclasses

import torch

from . import validate
from .derive import permutation_spec
from .errors import RebasinError
from .permute import apply_permutations
from .solvers import Permutations, weight_matching
from .solvers.activation import activation_matching
from .solvers.ste import straight_through
from .spec import PermutationSpec

METHODS = ("weight", "activation", "ste")
_ALIASES = {"straight through": "ste", "straight_through": "ste", "straight-through": "ste",
            "weight matching": "weight", "activation matching": "activation"}


def method_name(method: str) -> str:
    """The canonical name of an alignment method (accepts the seed's "straight through")."""
    name = _ALIASES.get(method, method) if isinstance(method, str) else method
    if name not in METHODS:
        raise RebasinError(f"unknown method {method!r}; use one of {METHODS} (or 'straight through')")
    return name


@dataclasses.dataclass(frozen=True)
class AlignResult:
    """``model``: aligned copy of B; ``perms``: {group: permutation}; ``spec``: the spec used."""

    model: torch.nn.Module
    perms: Permutations
    spec: PermutationSpec


def align(
    model_a: torch.nn.Module,
    model_b: torch.nn.Module,
    example_inputs,
    method: str = "weight",
    example_kwargs: dict | None = None,
    max_iter: int = 100,
    seed: int = 0,
    init=None,
    check: bool = True,
    progress: bool = False,
    dataloader=None,
    loss_fn=None,
    num_batches: int | None = None,
    device=None,
    epochs: int = 1,
    lr: float = 1e-3,
    optimizer="adam",
) -> AlignResult:
    """Permute model B's hidden units to match model A's; A and B are left untouched.

    Methods: ``"weight"`` (weight matching; ``max_iter``, ``init``, ``seed``),
    ``"activation"`` (correlation of activations on ``dataloader``, up to
    ``num_batches`` batches, computed on ``device``), ``"ste"`` (the
    straight-through estimator: ``dataloader``, ``loss_fn(outputs, targets)``,
    ``epochs``, ``lr``, ``optimizer``). Batches are tensors, (input, target)
    tuples or dicts of keyword inputs.

    Example:
        >>> import torch, rebasin_fx as rfx
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> make = lambda: torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
        >>> a, b = make(), make()
        >>> res = rfx.align(a, b, (torch.randn(1, 4),))
        >>> x = torch.randn(5, 4)
        >>> torch.allclose(res.model(x), b(x), atol=1e-6)   # same function as B
        True
        >>> data = [torch.randn(32, 4) for _ in range(4)]
        >>> res = rfx.align(a, b, (torch.randn(1, 4),), method="activation", dataloader=data)
        >>> sorted(res.perms)
        ['0.weight:0']
    """
    method = method_name(method)
    if method != "weight" and dataloader is None:
        raise RebasinError(f"method {method!r} needs data: pass dataloader= (an iterable of batches: tensors, "
                           "(input, target) tuples or dicts of keyword inputs)")
    if method == "ste" and loss_fn is None:
        raise RebasinError("method 'ste' needs loss_fn(outputs, targets) -> scalar loss, "
                           "e.g. loss_fn=torch.nn.functional.cross_entropy")
    validate.same_architecture(model_a, model_b)
    validate.one_device(model_a, model_b)
    validate.finite(model_a, "A")
    validate.finite(model_b, "B")
    spec = permutation_spec(model_a, example_inputs, example_kwargs, check=check)
    if method == "weight":
        perms = weight_matching(spec, model_a.state_dict(), model_b.state_dict(), max_iter=max_iter, seed=seed,
                                init=init, progress=progress)
    elif method == "activation":
        perms = activation_matching(spec, model_a, model_b, dataloader, num_batches=num_batches, device=device,
                                    seed=seed, progress=progress)
    else:
        perms = straight_through(spec, model_a, model_b, dataloader, loss_fn, epochs=epochs, lr=lr,
                                 optimizer=optimizer, num_batches=num_batches, device=device, seed=seed,
                                 progress=progress)
    return AlignResult(model=apply_permutations(model_b, spec, perms), perms=perms, spec=spec)
