"""align: derive the spec, solve for B's permutations, return an aligned copy of B."""

from __future__ import annotations

import dataclasses

import torch

from . import validate
from .derive import permutation_spec
from .errors import RebasinError
from .permute import apply_permutations
from .solvers import Permutations, weight_matching
from .spec import PermutationSpec

METHODS = ("weight", "activation", "ste")


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
) -> AlignResult:
    """Permute model B's hidden units to match model A's; A and B are left untouched.

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
    """
    if method not in METHODS:
        raise RebasinError(f"unknown method {method!r}; use one of {METHODS}")
    if method != "weight":
        raise RebasinError(f"method {method!r} is not available yet in this version; use method='weight'")
    validate.same_architecture(model_a, model_b)
    validate.one_device(model_a, model_b)
    validate.finite(model_a, "A")
    validate.finite(model_b, "B")
    spec = permutation_spec(model_a, example_inputs, example_kwargs, check=check)
    perms = weight_matching(spec, model_a.state_dict(), model_b.state_dict(), max_iter=max_iter, seed=seed,
                            init=init, progress=progress)
    return AlignResult(model=apply_permutations(model_b, spec, perms), perms=perms, spec=spec)
