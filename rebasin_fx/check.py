"""The functional check that proves a spec: random permutations must not change outputs."""

from __future__ import annotations

import torch
from torch.utils import _pytree as pytree

from .errors import RebasinError
from .trace import eval_mode


def _to_double(x):
    if isinstance(x, torch.Tensor) and x.is_floating_point():
        return x.double()
    return x


def _outputs(model, args, kwargs) -> list[torch.Tensor]:
    with torch.no_grad():
        out = model(*args, **kwargs)
    if hasattr(out, "to_tuple"):  # Hugging Face ModelOutput
        out = out.to_tuple()
    leaves = [t for t in pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]
    return [t.double() if t.is_floating_point() else t for t in leaves]


def relative_error(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    worst = 0.0
    for x, y in zip(a, b):
        if not x.is_floating_point():
            if not torch.equal(x, y):
                return float("inf")
            continue
        scale = max(float(x.abs().max()) if x.numel() else 0.0, 1e-12)
        worst = max(worst, float((x - y).abs().max()) / scale if x.numel() else 0.0)
    return worst


def functional_check(spec, model, example_inputs, example_kwargs=None, seed: int = 0, rtol: float = 1e-6) -> float:
    from .permute import apply_permutations

    if isinstance(example_inputs, (torch.Tensor, dict)) or not isinstance(example_inputs, (tuple, list)):
        example_inputs = (example_inputs,)
    from .permute import clone_model, reset_module_caches

    base = reset_module_caches(clone_model(model).double())
    args = pytree.tree_map(_to_double, tuple(example_inputs))
    kwargs = pytree.tree_map(_to_double, dict(example_kwargs or {}))
    with eval_mode(base):
        ref = _outputs(base, args, kwargs)
    perms = spec.random_perms(seed)
    permuted = apply_permutations(base, spec, perms)
    with eval_mode(permuted):
        got = _outputs(permuted, args, kwargs)
    err = relative_error(ref, got)
    if err <= rtol:
        return err
    bad = []
    for name in spec.groups:  # find the groups that break it, one at a time
        one = {n: (p if n == name else torch.arange(len(p))) for n, p in perms.items()}
        m = apply_permutations(base, spec, one)
        with eval_mode(m):
            if relative_error(ref, _outputs(m, args, kwargs)) > rtol:
                bad.append(name)
    raise RebasinError(
        f"the permutation spec is wrong: permuting groups {bad[:8]} changes the model's outputs "
        f"(relative error {err:.2e} > {rtol:.0e}). This is a bug in an op rule of rebasin_fx; please "
        "report it with the model. Members of the first bad group: "
        + (", ".join(f"{k}[{a}]" for k, a in spec.groups[bad[0]].members[:8]) if bad else "?")
    )
