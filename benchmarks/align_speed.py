"""Spec derivation and weight-matching time on 2 CPU cores.

Run: python -m benchmarks.align_speed [--quick] [--json out.json]

For each model (random init, two seeds): spec derivation time (tracing +
analysis, first call of the process marked), the functional check time, then
weight matching per start with sweeps, seconds, and the share of time spent
building cost matrices vs solving assignments.
"""

from __future__ import annotations

import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

import rebasin_fx as rfx
from benchmarks import common  # noqa: E402


def models(quick: bool):
    import models as M

    out = [
        ("MLP 784-512x3-10", lambda: M.MLP(784, (512, 512, 512)), (2, 1, 28, 28)),
        ("ResNet-20 x1", lambda: M.ResNet20(1), (2, 3, 32, 32)),
        ("ResNet-20 x4", lambda: M.ResNet20(4), (2, 3, 32, 32)),
    ]
    if not quick:
        import torchvision

        out += [
            ("ResNet-20 x16", lambda: M.ResNet20(16), (2, 3, 32, 32)),
            ("torchvision resnet18", lambda: torchvision.models.resnet18(), (2, 3, 64, 64)),
            ("torchvision resnet50", lambda: torchvision.models.resnet50(), (2, 3, 64, 64)),
        ]
    return out


@torch.no_grad()
def run(quick: bool = False) -> list[dict]:
    rows = []
    for name, make, shape in models(quick):
        torch.manual_seed(0)
        a = make().eval()
        torch.manual_seed(1)
        b = make().eval()
        x = torch.randn(*shape)
        t0 = time.perf_counter()
        spec = rfx.permutation_spec(a, (x,), check=False, cache=False)
        t1 = time.perf_counter()
        err = spec.check(a, (x,))
        t2 = time.perf_counter()
        row = {"model": name, "params": sum(p.numel() for p in a.parameters()), "groups": len(spec.groups),
               "spec_s": t1 - t0, "check_s": t2 - t1, "check_err": err}
        for init in ("identity", "signature"):
            t3 = time.perf_counter()
            p = rfx.weight_matching(spec, a.state_dict(), b.state_dict(), init=init)
            total = time.perf_counter() - t3
            row[f"{init}_s"] = total
            row[f"{init}_sweeps"] = len(p.history[init]) - 1
            row[f"{init}_cost_share"] = p.timing["cost"] / total
            row[f"{init}_lap_share"] = p.timing["lap"] / total
        rows.append(row)
        print(_fmt(row), flush=True)
    return rows


HEADER = (f"| {'model':<22} | {'params':>10} | groups | spec s | check s | identity: sweeps, s, cost/lap % "
          f"| signature: sweeps, s, cost/lap % |")


def _fmt(r: dict) -> str:
    def wm(k):
        return (f"{r[k + '_sweeps']:>3}, {r[k + '_s']:6.2f}, {100 * r[k + '_cost_share']:3.0f}/"
                f"{100 * r[k + '_lap_share']:2.0f}")

    return (f"| {r['model']:<22} | {r['params']:>10,} | {r['groups']:>6} | {r['spec_s']:6.2f} | {r['check_s']:7.2f} "
            f"| {wm('identity'):>31} | {wm('signature'):>32} |")


def main(argv=None) -> int:
    return common.main(run, HEADER, argv)


if __name__ == "__main__":
    sys.exit(main())
