"""Shared test helpers: compare specs with hand-written ones, plant permutations, snapshots."""

from __future__ import annotations

import torch

import rebasin_fx as rfx


def spec_as_axes(spec: rfx.PermutationSpec) -> dict:
    """The spec in hand-written form: per key, per axis None | group | ("x"|"+", ...) | pinned size."""

    def expr(lay):
        if lay is None:
            return None
        if lay[0] == "g":
            return lay[1]
        if lay[0] == "pin":
            return lay[1]
        return ("x" if lay[0] == "prod" else "+",) + tuple(expr(c) for c in lay[1])

    out = {}
    for key, shape in spec.shapes.items():
        lays = spec.axes.get(key, (None,) * len(shape))
        out[key] = tuple(expr(lay) for lay in lays)
    return out


def assert_spec_matches(spec: rfx.PermutationSpec, expected: dict) -> None:
    """Equal up to renaming groups: same groups, same sizes, same members and layouts."""
    got = spec_as_axes(spec)
    names: dict[str, str] = {}

    def same(e, g, where):
        if isinstance(e, str):
            assert isinstance(g, str), f"{where}: expected group {e}, got {g}"
            if e in names:
                assert names[e] == g, f"{where}: expected {e} (= {names[e]}), got {g}"
            else:
                assert g not in names.values(), f"{where}: {g} already stands for another expected group"
                names[e] = g
        elif isinstance(e, tuple):
            assert isinstance(g, tuple) and e[0] == g[0] and len(e) == len(g), f"{where}: expected {e}, got {g}"
            for k, (a, b) in enumerate(zip(e[1:], g[1:])):
                same(a, b, f"{where}.{k}")
        else:
            assert e == g, f"{where}: expected {e}, got {g}"

    for key, axes in got.items():
        exp = expected.get(key, (None,) * len(axes))
        assert len(exp) == len(axes), f"{key}: expected {len(exp)} axes, got {len(axes)}"
        for i, (e, g) in enumerate(zip(exp, axes)):
            same(e, g, f"{key}[{i}]")
    unknown = set(expected) - set(got)
    assert not unknown, f"expected keys not in the model: {unknown}"
    assert len(names) == len(spec.groups), f"expected {len(names)} groups, spec has {len(spec.groups)}"


def snapshot(model: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_unchanged(model: torch.nn.Module, snap: dict) -> None:
    sd = model.state_dict()
    assert sd.keys() == snap.keys()
    for k, v in snap.items():
        assert torch.equal(sd[k], v), f"{k} was modified"


def randomize_bn(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give BatchNorm running stats and affine params non-trivial values (as after training)."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._NormBase) and m.track_running_stats:
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen))
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
        if isinstance(m, (torch.nn.modules.batchnorm._NormBase, torch.nn.GroupNorm)) and m.weight is not None:
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen))
    return model
