"""Every Python example in the README and docs runs; the benchmark scripts do not rot."""

from __future__ import annotations

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))


def python_blocks(path):
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


CASES = [(p, i, code) for p in DOCS for i, code in enumerate(python_blocks(p))]


@pytest.mark.parametrize("path,index,code", CASES, ids=[f"{p.name}-{i}" for p, i, _ in CASES])
def test_doc_example_runs(path, index, code):
    exec(compile(code, f"{path.name}[{index}]", "exec"), {})


def test_readme_quickstart_is_two_commands_and_ci_runs_the_second():
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1
    commands = [ln for ln in blocks[0].splitlines() if ln.strip()]
    assert len(commands) == 2
    assert "demo" in commands[0]
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1].strip() in ci


def test_align_speed_benchmark_smoke():
    from benchmarks import align_speed

    rows = align_speed.run(quick=True)
    assert [r["model"] for r in rows] == ["MLP 784-512x3-10", "ResNet-20 x1", "ResNet-20 x4"]
    for r in rows:
        assert r["check_err"] <= 1e-6
        assert r["identity_sweeps"] >= 1 and r["signature_sweeps"] >= 1


def test_zoo_benchmark_smoke():
    from benchmarks import zoo

    rows = zoo.run(["timm convnext_atto"])
    assert rows[0]["recovered"] and rows[0]["check_err"] <= 1e-6 and rows[0]["groups"] == 16


def test_methods_benchmark_smoke():
    from benchmarks import methods

    rows = methods.run(quick=True)
    by = {r["method"]: r for r in rows if "method" in r}
    assert set(by) == {"naive", "weight", "activation", "ste"}
    assert all(by[m]["barrier"] >= 0 for m in by)
    tp = [r["throughput"] for r in rows if "throughput" in r][0]
    assert tp["samples"] == 4000 and tp["samples/s"] > 0


EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_script_runs(path, tmp_path, monkeypatch, capsys):
    import runpy

    monkeypatch.setattr("sys.argv", [str(path), str(tmp_path)])
    runpy.run_path(str(path), run_name="__main__")
    assert capsys.readouterr().out.strip()


def test_api_reference_is_current_and_complete():
    import importlib.util

    import rebasin_fx as rfx

    spec = importlib.util.spec_from_file_location("make_api", ROOT / "docs" / "make_api.py")
    make_api = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_api)
    text = (ROOT / "docs" / "api.md").read_text()
    assert text == make_api.render(), "docs/api.md is stale: run python docs/make_api.py"
    for name in rfx.__all__:
        assert f"## `{name}`" in text


def test_fuzz_benchmark_smoke():
    from benchmarks import fuzz

    out = fuzz.run(seconds=60, models=5, seed=1)
    assert out["models"] == 5 and out["failures"] == {}


def test_lap_solvers_benchmark_smoke():
    from benchmarks import lap_solvers

    rows = lap_solvers.run(quick=True)
    assert {r["kind"] for r in rows} == {"signature", "descent"} and all(r["n"] == 64 for r in rows)
    solvers = [k for k in rows[0] if k not in ("model", "kind", "n", "count") and not k.endswith(" gap")]
    assert "scipy" in solvers and len(solvers) >= 2  # the test extra installs lapx
    assert all(r[s + " gap"] < 1e-9 and r[s] > 0 for r in rows for s in solvers)  # every solver optimal


def test_vs_rebasin_benchmark_smoke():
    from benchmarks import vs_rebasin

    out = vs_rebasin.run(quick=True)
    (row,) = out["speed"]
    ours, theirs = row["ours"], row["rebasin"]  # the test extra installs rebasin 0.0.47
    assert ours["function_err"] < 1e-5 and theirs["function_err"] < 1e-5
    assert ours["moved"] > 0.9 and ours["objective"] > ours["objective_before"]
    assert ours["total_s"] >= ours["trace_s"] > ours["warm_trace_s"]
    by = {r["aligner"]: r for r in out["quality"]}
    assert set(by) == {"naive", "rebasin 0.0.47", "weight", "activation", "ste"}
    assert all(by[m]["loss_barrier"] < by["naive"]["loss_barrier"] for m in ("weight", "activation", "ste"))


def test_scale_benchmark_smoke():
    from benchmarks import scale

    rows = scale.run(quick=True)
    assert len(rows) == 3 and all("error" not in r for r in rows), rows
    for r in rows:
        assert r["sweeps"] >= 2 and r["total_s"] > 0 and r["bound_s"] > 0
        assert r["cost_s"] + r["lap_s"] <= r["total_s"] and r["group_working_set_mb"] > 0
