"""Bugs the fuzzer found, each as a small named test."""

from __future__ import annotations

import rebasin_fx as rfx

from .generator import build


def test_unknown_ops_survive_the_json_round_trip():
    # found by the fuzzer: spec.to_json() dropped unknown_ops, so from_json(to_json(s)) != s
    recipe = {"mode": "vec", "c0": 3, "blocks": [("linear", 4, "relu"), ("unknown",)], "seed": 0}
    model, _, x = build(recipe)
    spec = rfx.permutation_spec(model, (x,), cache=False)
    assert [n.op for n in spec.unknown_ops] == ["sort.default"]
    back = rfx.PermutationSpec.from_json(spec.to_json())
    assert back == spec and back.unknown_ops == spec.unknown_ops
