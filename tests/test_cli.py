"""The rebasin-fx console script, run as users run it (a subprocess through the installed entry point)."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import torch

import rebasin_fx as rfx
from rebasin_fx import demo_models
import models as M

TESTS = pathlib.Path(__file__).parent


def rebasin_fx_cli(*args, cwd=None):
    exe = shutil.which("rebasin-fx", path=os.path.dirname(sys.executable)) or shutil.which("rebasin-fx")
    cmd = [exe] if exe else [sys.executable, "-m", "rebasin_fx"]
    env = dict(os.environ, PYTHONPATH=str(TESTS) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=600)


def test_the_entry_point_is_installed():
    assert shutil.which("rebasin-fx", path=os.path.dirname(sys.executable)), "pip install -e . installs rebasin-fx"


def test_demo_end_to_end_at_a_tiny_size(tmp_path):
    r = rebasin_fx_cli("demo", "--width", 64, "--epochs", 2, "--out", tmp_path, "-q")
    assert r.returncode == 0, r.stderr
    m = re.search(r"loss barrier: naive ([\d.]+), aligned ([\d.]+)", r.stdout)
    assert m, r.stdout
    naive, aligned = float(m.group(1)), float(m.group(2))
    assert aligned < naive
    png = (tmp_path / "interpolation.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["naive_barrier"] == pytest.approx(naive, abs=1e-4)


def test_spec_of_a_factory_with_json_check_and_dot(tmp_path):
    r = rebasin_fx_cli("spec", "models:MLP", "--kwargs", '{"hidden": [8, 8]}', "--input-shape", "2,1,28,28",
                       "--check", "--json", tmp_path / "s.json", "--dot", tmp_path / "s.dot")
    assert r.returncode == 0, r.stderr
    assert "functional check: passed" in r.stdout
    spec = rfx.PermutationSpec.from_json((tmp_path / "s.json").read_text())
    assert sorted(g.size for g in spec.groups.values()) == [8, 8]
    dot = (tmp_path / "s.dot").read_text()
    assert dot.startswith("graph spec {") and dot.count("shape=box") == 2


def test_spec_of_a_torchvision_name():
    r = rebasin_fx_cli("spec", "resnet18", "--input-shape", "1,3,32,32")
    assert r.returncode == 0, r.stderr
    assert "model output" in r.stdout  # the pinned axes and why


def _checkpoints(tmp_path, n=2, suffixes=(".safetensors", ".pt", ".safetensors")):
    paths = []
    for i in range(n):
        torch.manual_seed(i)
        m = M.MLP(784, (16, 16)).eval()
        paths.append(rfx.save_model(m, tmp_path / f"m{i}{suffixes[i]}"))
    return paths


def test_align_writes_the_aligned_checkpoint_and_its_permutations(tmp_path):
    a, b = _checkpoints(tmp_path)
    out = tmp_path / "b_aligned.safetensors"
    r = rebasin_fx_cli("align", a, b, "--model", "models:MLP", "--kwargs", '{"hidden": [16, 16]}',
                       "--input-shape", "2,1,28,28", "--out", out, "-q")
    assert r.returncode == 0, r.stderr
    template = M.MLP(784, (16, 16))
    aligned = rfx.load_into(template, rfx.load_state_dict(out)).eval()
    model_b = rfx.load_into(template, rfx.load_state_dict(b)).eval()
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(aligned(x), model_b(x), atol=1e-5)
    spec, perms = rfx.load_permutations(tmp_path / "b_aligned.perms.json")
    replayed = rfx.apply_permutations(model_b, spec, perms)
    for k, v in aligned.state_dict().items():
        assert torch.equal(replayed.state_dict()[k], v)


def test_interpolate_and_merge_on_the_digits(tmp_path):
    paths = []
    for i in range(3):
        torch.manual_seed(i)
        paths.append(rfx.save_model(demo_models.mlp(16, d_in=64), tmp_path / f"d{i}.safetensors"))
    model = ["--model", "rebasin_fx.demo_models:mlp", "--kwargs", '{"width": 16, "d_in": 64}',
             "--input-shape", "1,1,8,8"]
    r = rebasin_fx_cli("interpolate", *paths[:2], *model, "--data", "digits", "--steps", 3, "--out", tmp_path / "i",
                       "-q")
    assert r.returncode == 0, r.stderr
    assert "barrier" in r.stdout
    report = json.loads((tmp_path / "i" / "report.json").read_text())
    assert len(report["positions"]) == 5
    r = rebasin_fx_cli("merge", *paths, *model, "--out", tmp_path / "merged.safetensors", "-q")
    assert r.returncode == 0, r.stderr
    merged = rfx.load_into(demo_models.mlp(16, d_in=64), rfx.load_state_dict(tmp_path / "merged.safetensors"))
    assert merged(torch.randn(2, 1, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize("case", ["missing file", "unknown model", "wrong architecture"])
def test_errors_exit_1_with_one_clear_line(case, tmp_path):
    a, b = _checkpoints(tmp_path)
    args = ["align", a, b, "--model", "models:MLP", "--kwargs", '{"hidden": [16, 16]}', "--input-shape", "2,1,28,28",
            "--out", tmp_path / "o.safetensors"]
    if case == "missing file":
        args[2] = tmp_path / "nope.safetensors"
        want = "does not exist"
    elif case == "unknown model":
        args[4] = "no_such_model_anywhere"
        want = "unknown model"
    else:
        args[6] = '{"hidden": [16, 32]}'
        want = "has shape"
    r = rebasin_fx_cli(*args)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and want in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_bad_usage_exits_2():
    assert rebasin_fx_cli("align").returncode == 2
    assert rebasin_fx_cli("spec", "resnet18", "--input-shape", "a,b").returncode == 2
    assert rebasin_fx_cli("frobnicate").returncode == 2
