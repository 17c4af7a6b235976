"""Interpolation, barrier reports, MergeMany, files and the seed's classes on small models."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

import rebasin_fx as rfx
import models as M
from helpers import assert_unchanged, snapshot


def _mlps(n=3, seed=0):
    torch.manual_seed(seed)
    return [M.MLP(784, (16, 16)).eval() for _ in range(n)]


def _data(n_batches=2, batch=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch, 1, 28, 28, generator=g), torch.randint(0, 10, (batch,), generator=g))
            for _ in range(n_batches)]


@pytest.mark.parametrize("method", ["lerp", "slerp"])
def test_endpoints_exact_and_three_model_path_passes_through_the_middle(method):
    ms = _mlps(3)
    snaps = [snapshot(m) for m in ms]
    path = rfx.interpolate(ms, steps=4, method=method)
    assert len(path) == 1 + 2 * 5  # 4 interior points per segment, 3 endpoints once each
    for model, i in ((path[0], 0), (path[5], 1), (path[10], 2)):
        for k, v in ms[i].state_dict().items():
            assert torch.equal(model.state_dict()[k], v), (i, k)
    for m, s in zip(ms, snaps):
        assert_unchanged(m, s)


def test_lerp_and_slerp_values():
    a, b = nn.Linear(3, 3), nn.Linear(3, 3)
    with torch.no_grad():
        a.weight.copy_(torch.eye(3))
        b.weight.copy_(torch.eye(3).roll(1, 0))
        a.bias.fill_(1.0)
        b.bias.fill_(2.0)  # parallel: slerp falls back to lerp
    mid_l = rfx.interpolate([a, b], steps=1, method="lerp")[1]
    mid_s = rfx.interpolate([a, b], steps=1, method="slerp")[1]
    assert torch.allclose(mid_l.weight, (a.weight + b.weight) / 2)
    # orthogonal unit-norm-sqrt(3) weights: slerp keeps the norm, lerp shrinks it by cos(45°)
    assert math.isclose(float(mid_s.weight.detach().norm()), math.sqrt(3), rel_tol=1e-6)
    assert math.isclose(float(mid_l.weight.detach().norm()), math.sqrt(3) * math.cos(math.pi / 4), rel_tol=1e-6)
    assert torch.allclose(mid_s.bias, torch.full((3,), 1.5))


def test_integer_buffers_come_from_the_nearer_endpoint():
    a, b = nn.BatchNorm1d(2), nn.BatchNorm1d(2)
    a.num_batches_tracked.fill_(3)
    b.num_batches_tracked.fill_(7)
    path = rfx.interpolate([a, b], steps=3)  # t = 0, .25, .5, .75, 1
    assert [int(m.num_batches_tracked) for m in path] == [3, 3, 3, 7, 7]


BARRIER_CASES = [  # (positions, values, higher_is_better, barrier)
    ((0, 0.5, 1), (1.0, 3.0, 2.0), False, 1.5),
    ((0, 0.25, 0.5, 0.75, 1), (1, 1, 1, 1, 1), False, 0.0),
    ((0, 0.5, 1), (0.9, 0.5, 0.8), True, 0.35),
    ((0, 0.5, 1, 1.5, 2), (1.0, 1.0, 1.0, 4.0, 2.0), False, 2.5),  # the second segment's
    ((0, 0.5, 1), (2.0, 1.0, 2.0), False, 0.0),  # below the line: no barrier
]


@pytest.mark.parametrize("pos,values,hib,want", BARRIER_CASES)
def test_path_barrier(pos, values, hib, want):
    assert math.isclose(rfx.path_barrier(pos, values, hib), want, abs_tol=1e-12)


def test_report_table_best_point_json_and_plot(tmp_path):
    ms = _mlps(2)
    data = _data()
    report = rfx.evaluate_path(ms, data, metric="accuracy", steps=3, label="naive")
    assert report.positions == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert report.primary == "accuracy" and set(report.values) == {"loss", "accuracy"}
    losses = [rfx.metrics.loss_and_accuracy(m, data)[0] for m in rfx.interpolate(ms, steps=3)]
    assert all(math.isclose(x, y, rel_tol=1e-6) for x, y in zip(report.values["loss"], losses))
    assert report.best == max(range(5), key=lambda i: report.values["accuracy"][i])
    text = str(report)
    assert "barrier" in text and "<- best" in text
    assert json.loads(report.to_json())["barriers"]["loss"] == pytest.approx(report.loss_barrier)

    def neg_loss(model, loader):
        return -rfx.metrics.loss_and_accuracy(model, loader)[0]

    neg_loss.higher_is_better = True
    custom = rfx.evaluate_path(ms, data, metric=neg_loss, steps=3, label="custom")
    assert custom.barriers["neg_loss"] == pytest.approx(report.loss_barrier)
    png = tmp_path / "curve.png"
    report.plot(png, compare=custom)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_merge_many_recovers_a_planted_merge():
    # three relabellings of one model: MergeMany must undo them and the mean is the model itself
    net = _mlps(1)[0]
    spec = rfx.permutation_spec(net, (torch.randn(2, 1, 28, 28),))
    copies = [rfx.apply_permutations(net, spec, spec.random_perms(seed=s)) for s in range(3)]
    res = rfx.merge_many(copies, (torch.randn(2, 1, 28, 28),))
    x = torch.randn(8, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(res.model(x), net(x), atol=1e-5)
    for m in res.models:
        for k, v in res.models[0].state_dict().items():
            assert torch.equal(m.state_dict()[k], v)


def test_safetensors_file_keeps_every_key_and_tied_weights(tmp_path):
    from safetensors import safe_open

    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(10, 4)
            self.head = nn.Linear(4, 10, bias=False)
            self.head.weight = self.emb.weight

        def forward(self, x):
            return self.head(self.emb(x))

    net = Tied()
    path = rfx.save_model(net, tmp_path / "tied.safetensors")
    with safe_open(str(path), "pt") as f:
        assert f.metadata() == {"format": "pt"}
        assert sorted(f.keys()) == ["emb.weight", "head.weight"]
    back = rfx.load_into(Tied(), rfx.load_state_dict(path))
    x = torch.randint(0, 10, (3, 5))
    assert torch.equal(back(x), net(x))


def test_permutations_file_replays_an_alignment(tmp_path):
    a, b = _mlps(2)
    x = torch.randn(2, 1, 28, 28)
    res = rfx.align(a, b, (x,))
    rfx.save_model(res.model, tmp_path / "b.safetensors", spec=res.spec, perms=res.perms)
    spec, perms = rfx.load_permutations(tmp_path / "b.perms.json")
    assert spec == res.spec
    replayed = rfx.apply_permutations(b, spec, perms)
    for k, v in res.model.state_dict().items():
        assert torch.equal(replayed.state_dict()[k], v)


def test_hugging_face_folder_round_trip(tmp_path):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=32, n_positions=16)
    torch.manual_seed(0)
    a, b = transformers.GPT2LMHeadModel(cfg).eval(), transformers.GPT2LMHeadModel(cfg).eval()
    ids = torch.randint(0, 32, (1, 6))
    res = rfx.align(a, b, (ids,), example_kwargs={"use_cache": False})
    folder = rfx.save_model(res.model, tmp_path / "gpt2_aligned", spec=res.spec, perms=res.perms)
    back = transformers.GPT2LMHeadModel.from_pretrained(folder).eval()
    with torch.no_grad():
        assert torch.allclose(back(ids, use_cache=False).logits, b(ids, use_cache=False).logits, atol=1e-5)
    assert (folder / "permutations.json").exists()


def test_failed_save_leaves_no_file(tmp_path, monkeypatch):
    import safetensors.torch

    def broken(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with pytest.raises(rfx.RebasinError, match="could not write"):
        rfx.save_model(_mlps(1)[0], tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("method", ["weight", "activation", "straight through"])
def test_rebasin_class_then_interpolate_saves_the_best_model(method, tmp_path):
    target, other = _mlps(2)
    train, val = _data(3, seed=1), _data(2, seed=2)
    x = val[0][0]
    with torch.no_grad():
        before = other(x)
    rb = rfx.Rebasin(target, [other], train, val)
    rb.rebasin(method=method)
    with torch.no_grad():
        assert torch.allclose(other(x), before, atol=1e-5)  # permuted in place: same function
    rb.interpolate(tmp_path, steps=3, metric="accuracy")
    interp = rb.interpolations[0]
    assert interp.results.shape == (5,)
    best = max(range(1, 4), key=lambda i: float(interp.results[i]))  # the best interior point
    saved = rfx.load_into(M.MLP(784, (16, 16)), rfx.load_state_dict(tmp_path / "best.safetensors")).eval()
    want = rfx.interpolate([target, other], steps=3)[best]
    with torch.no_grad():
        assert torch.allclose(saved(x), want(x), atol=1e-6)


def test_interpolation_class_save_all_with_batchnorm(tmp_path):
    torch.manual_seed(0)
    ms = [M.ResNet20(1, in_ch=1).eval() for _ in range(3)]
    g = torch.Generator().manual_seed(0)
    train = [(torch.randn(8, 1, 8, 8, generator=g), torch.randint(0, 10, (8,), generator=g)) for _ in range(2)]
    interp = rfx.Interpolation(ms, train, train, tmp_path, save_all=True)
    interp.interpolate(steps=2, metric="loss")
    files = sorted(p.name for p in tmp_path.glob("point_*.safetensors"))
    assert len(files) == len(interp.results) == 7
    # interior points have BatchNorm statistics recomputed on the training data
    point = rfx.load_into(M.ResNet20(1, in_ch=1), rfx.load_state_dict(tmp_path / "point_001.safetensors"))
    mixed = rfx.interpolate(ms[:2], steps=2)[1]
    fresh = rfx.reset_bn_stats(mixed, train)
    assert torch.allclose(point.bn1.running_mean, fresh.bn1.running_mean)
    assert not torch.allclose(point.bn1.running_mean, mixed.bn1.running_mean)


def test_permutation_coordinate_descent_changes_model_b_in_place():
    a, b = _mlps(2)
    snap_a = snapshot(a)
    w_before = b.layers[0].weight.clone()
    rfx.PermutationCoordinateDescent(a, b, (torch.randn(2, 1, 28, 28),)).rebasin()
    assert not torch.equal(b.layers[0].weight, w_before)
    assert_unchanged(a, snap_a)


def test_bad_input(tmp_path):
    a, b = _mlps(2)
    data = _data()
    with pytest.raises(rfx.RebasinError, match="at least two models"):
        rfx.interpolate([a])
    with pytest.raises(rfx.RebasinError, match="different architectures"):
        rfx.interpolate([a, M.ResNet20(1)])
    with pytest.raises(rfx.RebasinError, match="shape"):
        rfx.interpolate([a, M.MLP(784, (16, 32))])
    with pytest.raises(rfx.RebasinError, match="steps must be"):
        rfx.interpolate([a, b], steps=0)
    with pytest.raises(rfx.RebasinError, match="unknown interpolation"):
        rfx.interpolate([a, b], method="cubic")
    with pytest.raises(rfx.RebasinError, match="unknown metric"):
        rfx.evaluate_path([a, b], data, metric="f1")
    with pytest.raises(rfx.RebasinError, match="declare its direction"):
        rfx.evaluate_path([a, b], data, metric=lambda m, d: 0.0)
    with pytest.raises(rfx.RebasinError, match="unknown method"):
        rfx.Rebasin(a, [b], data, data).rebasin(method="magic")
    with pytest.raises(rfx.RebasinError, match="at least two models"):
        rfx.merge_many([a], (data[0][0],))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(rfx.RebasinError, match="savedir"):
        rfx.Interpolation([a, b], data, data, blocker / "sub").interpolate(steps=1)
