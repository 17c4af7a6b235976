"""Random models from the grammar in generator.py: soundness, completeness, recovery, round trips.

A fixed number of models under a fixed seed (derandomized); benchmarks/fuzz.py runs many more.
"""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import rebasin_fx as rfx

from .generator import Drawn, build, random_recipe
from .properties import check_all

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@st.composite
def recipes(draw):
    return random_recipe(Drawn(draw), max_blocks=5)


def _well_formed(recipe):
    try:
        build(recipe)
    except ValueError:
        return False
    return True


@SETTINGS
@given(recipes())
def test_generated_models_are_sound_complete_and_recovered(recipe):
    assume(_well_formed(recipe))
    check_all(recipe)


def _spec_and_model(recipe):
    model, _, x = build(recipe)
    return rfx.permutation_spec(model, (x,)), model


FIXED = {"mode": "seq", "c0": 4, "vocab": 5, "tied": False, "seed": 3,
         "blocks": [("linear", 6, "relu"), ("res", 3), ("attn", 2, 2, 1, True), ("unknown",), ("linear", 4, "gelu")]}


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(st.data())
def test_truncated_or_extended_spec_json_is_refused_by_field(data):
    spec, _ = _spec_and_model(FIXED)
    text = spec.to_json()
    cut = data.draw(st.integers(1, len(text) - 2))
    with pytest.raises(rfx.RebasinError, match="truncated|malformed"):
        rfx.PermutationSpec.from_json(text[:cut])
    obj = json.loads(text)
    field = data.draw(st.sampled_from(["top", "groups", "axes"]))
    if field == "top":
        obj["surprise"] = 1
        want = "surprise"
    elif field == "groups":
        name = data.draw(st.sampled_from(sorted(obj["groups"])))
        obj["groups"][name] += data.draw(st.integers(1, 3))
        want = name.split(":")[0]
    else:
        key = data.draw(st.sampled_from(sorted(obj["axes"])))
        obj["axes"][key].append(None)
        want = key
    with pytest.raises(rfx.RebasinError, match=want.replace(".", r"\.")):
        rfx.PermutationSpec.from_json(json.dumps(obj))


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(st.data())
def test_permutations_that_are_not_permutations_are_refused_by_group(data):
    spec, model = _spec_and_model(FIXED)
    perms = {g: p.clone() for g, p in spec.random_perms(seed=0).items()}
    group = data.draw(st.sampled_from(sorted(perms)))
    n = spec.groups[group].size
    how = data.draw(st.sampled_from(["repeat", "out of range", "short"]))
    if how == "repeat":
        perms[group][0] = perms[group][-1]
    elif how == "out of range":
        perms[group][data.draw(st.integers(0, n - 1))] = n + data.draw(st.integers(0, 5))
    else:
        perms[group] = perms[group][:-1]
    with pytest.raises(rfx.RebasinError, match=group.replace(".", r"\.")):
        rfx.apply_permutations(model, spec, perms)


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(st.data())
def test_checkpoints_with_missing_extra_or_wrong_tensors_are_refused_by_key(data):
    _, model = _spec_and_model(FIXED)
    sd = dict(model.state_dict())
    key = data.draw(st.sampled_from(sorted(sd)))
    how = data.draw(st.sampled_from(["missing", "extra", "shape", "dtype"]))
    if how == "missing":
        del sd[key]
    elif how == "extra":
        key = key + "_extra"
        sd[key] = torch.zeros(1)
    elif how == "shape":
        sd[key] = torch.zeros(*sd[key].shape, 2)
    else:
        sd[key] = sd[key].to(torch.int64)
    with pytest.raises(rfx.RebasinError, match=key.replace(".", r"\.")):
        rfx.load_into(model, sd)
