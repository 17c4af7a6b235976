"""Assignment solvers on the cost matrices weight matching actually solves.

Run: python -m benchmarks.lap_solvers [--quick] [--json out.json] [--solver-path DIR ...]

Weight matching is run on random-init pairs with every call to the solver
recorded (the signature start's distance matrices and the descent's
similarity matrices). Each solver then solves the recorded matrices and its
optimum is checked against scipy's. ``lap`` and ``lapx`` both install a module
named ``lap``, so they cannot share an environment: install each into its own
folder (``pip install --target DIR lap``) and pass the folders with
``--solver-path``; each is timed in a subprocess with that folder first on
``sys.path``. The solver importable here (if any) is timed too.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
import tempfile
import time

import numpy as np
import torch

import rebasin_fx as rfx
from benchmarks import common
from rebasin_fx.solvers import lap as lap_module


def models(quick: bool):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
    import models as M

    out = [("MLP 784-512x3-10", lambda: M.MLP(784, (512, 512, 512)), (2, 1, 28, 28))]
    if quick:
        return [("MLP 784-64x2-10", lambda: M.MLP(784, (64, 64)), (2, 1, 28, 28))]
    import torchvision

    out += [("ResNet-20 x4", lambda: M.ResNet20(4), (2, 3, 32, 32)),
            ("torchvision resnet50", lambda: torchvision.models.resnet50(), (2, 3, 64, 64))]
    return out


def record(quick: bool, per_size: int = 6) -> dict[str, np.ndarray]:
    """Cost matrices seen by the solver, at most ``per_size`` per model, kind and size (spread over the run)."""
    wm = importlib.import_module("rebasin_fx.solvers.weight_matching")
    seen: dict[tuple, list] = {}
    state = {"model": "", "kind": "descent"}
    solve, signature_start = lap_module.solve, wm.signature_start

    def spy(cost):
        key = (state["model"], state["kind"], cost.shape[0])
        seen.setdefault(key, []).append(cost.detach().double().cpu().numpy())
        return solve(cost)

    def spy_start(*args):
        state["kind"] = "signature"
        try:
            return signature_start(*args)
        finally:
            state["kind"] = "descent"

    lap_module.solve, wm.signature_start = spy, spy_start
    try:
        for name, make, shape in models(quick):
            torch.manual_seed(0)
            a = make().eval()
            torch.manual_seed(1)
            b = make().eval()
            spec = rfx.permutation_spec(a, (torch.randn(*shape),))
            state["model"] = name
            rfx.weight_matching(spec, a.state_dict(), b.state_dict(), init="signature", rtol=0)
    finally:
        lap_module.solve, wm.signature_start = solve, signature_start
    out = {}
    for (name, kind, n), mats in seen.items():
        for i in np.unique(np.linspace(0, len(mats) - 1, per_size).round().astype(int)):
            out[f"{name}|{kind}|{n}|{i}"] = mats[i]
    return out


def _solvers():
    """Solvers importable in this process: name -> function(cost) -> column of each row (maximising)."""
    from scipy.optimize import linear_sum_assignment

    out = {"scipy": lambda c: linear_sum_assignment(c, maximize=True)[1]}
    try:
        import lap
    except ImportError:
        return out
    dist = "lapx" if _has_dist("lapx") and lap.__file__.startswith(_dist_root("lapx")) else "lap"
    label = f"{dist} {importlib.metadata.version(dist)}"
    out[f"{label} lapjv"] = lambda c: lap.lapjv(-c, extend_cost=False, return_cost=False)[0]
    for fn in ("lapjvx", "lapjvc", "lapjvs", "lapjvr", "lapjvh"):
        if hasattr(lap, fn):
            out[f"{label} {fn}"] = lambda c, f=getattr(lap, fn): _columns(f(-c), len(c))
    return out


def _columns(result, n):
    """(rows, cols) as the last two arrays of a solver's result -> column of each row."""
    rows, cols = (np.asarray(x) for x in result[-2:])
    out = np.full(n, -1)
    out[rows] = cols
    return out


def _has_dist(name):
    try:
        importlib.metadata.distribution(name)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def _dist_root(name):
    return str(importlib.metadata.distribution(name).locate_file(""))


def time_solvers(path: str) -> dict:
    """Seconds per solver per matrix set, and the largest shortfall from scipy's optimum."""
    mats = np.load(path)
    from scipy.optimize import linear_sum_assignment

    result: dict = {}
    for solver, fn in _solvers().items():
        for key in mats.files:
            c = np.ascontiguousarray(mats[key])
            best = c[np.arange(len(c)), linear_sum_assignment(c, maximize=True)[1]].sum()
            t0 = time.perf_counter()
            cols = np.asarray(fn(c))
            dt = time.perf_counter() - t0
            valid = np.array_equal(np.sort(cols), np.arange(len(c)))
            gap = float(best - c[np.arange(len(c)), cols].sum()) if valid else float("inf")
            group = key.rsplit("|", 1)[0]
            row = result.setdefault(solver, {}).setdefault(group, {"s": 0.0, "count": 0, "gap": 0.0})
            row["s"] += dt
            row["count"] += 1
            row["gap"] = max(row["gap"], gap / max(1.0, abs(best)))
    return result


def run(quick: bool = False, solver_paths=()) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "costs.npz")
        np.savez(path, **record(quick))
        timings = {}
        envs = [None] + list(solver_paths)
        for env in envs:
            out = common.run_child("import json\nfrom benchmarks import lap_solvers\n"
                                   f"print(json.dumps(lap_solvers.time_solvers({path!r})))", env)
            if "error" in out:
                raise RuntimeError(f"timing the solvers with {env or 'this environment'} failed: {out['error']}")
            timings.update(out)
    groups = sorted({g for t in timings.values() for g in t}, key=lambda g: (g.split("|")[0], g.split("|")[1],
                                                                             int(g.split("|")[2])))
    solvers = list(timings)
    print("| model | kind | n | matrices | " + " | ".join(solvers) + " |")
    print("|---|---|---:|---:|" + "---:|" * len(solvers))
    rows = []
    for g in groups:
        model, kind, n = g.split("|")
        row = {"model": model, "kind": kind, "n": int(n), "count": timings["scipy"][g]["count"]}
        for solver, t in timings.items():
            row[solver] = t[g]["s"] / t[g]["count"]
            row[solver + " gap"] = t[g]["gap"]
        rows.append(row)
        print(_fmt(row, solvers), flush=True)
    return rows


def _fmt(r, solvers):
    cells = " | ".join(f"{1000 * r[s]:.2f}{'' if r[s + ' gap'] < 1e-9 else ' (not optimal)'}" for s in solvers)
    return f"| {r['model']} | {r['kind']} | {r['n']} | {r['count']} | {cells} |"


HEADER = "Assignment solvers on the cost matrices weight matching builds: ms per solve (2 CPU cores)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--solver-path", action="append", default=[])
    known, rest = ap.parse_known_args(argv)
    return common.main(lambda quick: run(quick, known.solver_path), HEADER, rest)


if __name__ == "__main__":
    sys.exit(main())
