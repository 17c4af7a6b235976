"""The properties every generated model must have; each returns None or raises AssertionError."""

from __future__ import annotations

import torch

import rebasin_fx as rfx

from .generator import build


def check_all(recipe: dict) -> None:
    model, oracle, x = build(recipe)
    spec = rfx.permutation_spec(model, (x,), cache=False)  # soundness: the functional check runs here
    spec.check(model, (x,), seed=1)
    # completeness: every width the oracle says is free is a group of that size, with its members
    sizes = sorted(g.size for g in spec.groups.values())
    assert sizes == oracle.free_sizes(), f"group sizes {sizes}, oracle {oracle.free_sizes()}"
    for (key, axis), n in oracle.free_members():
        assert any((key, axis) in g.members and g.size == n for g in spec.groups.values()), (key, axis, n)
    # the JSON round trip is exact
    assert rfx.PermutationSpec.from_json(spec.to_json()) == spec
    # permutations then their inverses give back the state_dict bit for bit
    sd = model.state_dict()
    planted = spec.random_perms(seed=recipe.get("seed", 0) + 7)
    there = rfx.permute_state_dict(sd, spec, planted)
    back = rfx.permute_state_dict(there, spec, rfx.inverse(planted))
    for k, v in sd.items():
        assert torch.equal(back[k], v), k
    # recovery: weight matching finds the planted permutation exactly
    found = rfx.weight_matching(spec, sd, there)
    want = rfx.inverse(planted)
    for g in spec.groups:
        assert torch.equal(found[g], want[g]), f"group {g} not recovered"
