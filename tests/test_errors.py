"""Bad input gets a RebasinError that says what, where and what to do."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

import rebasin_fx as rfx
import models as M

X = torch.randn(2, 1, 28, 28)


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 8), nn.Linear(8, 2)

    def forward(self, x):
        h = self.a(x)
        if h.sum() > 0:  # Python control flow on a tensor value
            h = h * 2
        return self.b(h)


class Sorts(nn.Module):
    """torch.sort on the hidden axis has no rule: its axes must be pinned, with a warning."""

    def __init__(self):
        super().__init__()
        self.a, self.m, self.b = nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, x):
        return self.b(torch.relu(self.m(torch.sort(torch.relu(self.a(x)), dim=1).values)))


def test_different_classes():
    with pytest.raises(rfx.RebasinError, match="different architectures: model A is MLP, model B is VGGish"):
        rfx.align(M.MLP(), M.VGGish(), (X,))


def test_different_widths_names_first_parameter():
    with pytest.raises(rfx.RebasinError, match=r"'layers\.1\.weight' differs: shape \(48, 32\) in model A, \(32, 32\)"):
        rfx.align(M.MLP(784, (32, 48, 32)), M.MLP(784, (32, 32, 32)), (X,))


def test_missing_key():
    a, b = M.MLP(), M.MLP()
    b.register_buffer("extra", torch.zeros(3))
    with pytest.raises(rfx.RebasinError, match="'extra' that model A lacks"):
        rfx.align(a, b, (X,))


def test_untraceable_model_names_line_and_fix():
    with pytest.raises(rfx.RebasinError) as info:
        rfx.permutation_spec(DataDependent(), (torch.randn(2, 4),))
    msg = str(info.value)
    assert "data-dependent" in msg
    assert "if h.sum() > 0" in msg  # the failing source line
    assert "torch.where" in msg  # what to do


def test_wrong_input_shape_wraps_tracer_error():
    with pytest.raises(rfx.RebasinError) as info:
        rfx.permutation_spec(M.MLP(), (torch.randn(2, 5),))
    msg = str(info.value)
    assert "could not trace MLP" in msg and "shapes and dtypes" in msg
    assert "x = F.relu(layer(x))" in msg
    assert isinstance(info.value.__cause__, Exception)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights(bad):
    a, b = M.MLP(), M.MLP()
    with torch.no_grad():
        b.layers[1].weight[3, 4] = bad
    with pytest.raises(rfx.RebasinError, match=r"layers\.1\.weight of model B has non-finite values"):
        rfx.align(a, b, (X,))


def test_data_driven_methods_need_data_and_a_loss():
    with pytest.raises(rfx.RebasinError, match="needs data: pass dataloader="):
        rfx.align(M.MLP(), M.MLP(), (X,), method="activation")
    with pytest.raises(rfx.RebasinError, match="needs loss_fn"):
        rfx.align(M.MLP(), M.MLP(), (X,), method="ste", dataloader=[(X, torch.zeros(2, dtype=torch.long))])
    with pytest.raises(rfx.RebasinError, match="unknown method 'magic'"):
        rfx.align(M.MLP(), M.MLP(), (X,), method="magic")


def test_models_on_different_devices():
    a, b = M.MLP(), M.MLP()
    b.out.to("meta")
    with pytest.raises(rfx.RebasinError, match="several devices"):
        rfx.align(a, b, (X,))


def test_unknown_op_pins_its_axes_with_a_warning(caplog):
    model = Sorts().eval()
    with caplog.at_level(logging.WARNING, logger="rebasin_fx"):
        spec = rfx.permutation_spec(model, (torch.randn(2, 4),), cache=False)
    assert any("no rule for sort" in r.getMessage() for r in caplog.records)
    assert [n.op for n in spec.unknown_ops] == ["sort.default"]
    # a's output and m's input go through sort: pinned; m's output is still free
    assert list(spec.groups) == ["m.weight:0"]
    assert "a.weight" not in spec.axes
    assert spec.check(model, (torch.randn(2, 4),)) <= 1e-6
    assert "ops with no rule" in str(spec) and "sort" in str(spec)


def test_bad_permutations_rejected():
    spec = rfx.permutation_spec(M.MLP(), (X,))
    perms = {n: torch.arange(g.size) for n, g in spec.groups.items()}
    name = next(iter(spec.groups))
    bad = dict(perms, **{name: torch.zeros(spec.groups[name].size, dtype=torch.long)})
    with pytest.raises(rfx.RebasinError, match="not a permutation"):
        rfx.apply_permutations(M.MLP(), spec, bad)
    with pytest.raises(rfx.RebasinError, match="missing group"):
        rfx.apply_permutations(M.MLP(), spec, {})
    with pytest.raises(rfx.RebasinError, match="has shape"):
        rfx.apply_permutations(M.MLP(), spec, dict(perms, **{name: torch.arange(3)}))
