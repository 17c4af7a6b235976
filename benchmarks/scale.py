"""Weight-matching time and memory as the work grows.

Run: python -m benchmarks.scale [--quick] [--json out.json] [--only PREFIX]

ResNet-20 widths x1..x16, MLPs 784-w-w-10 for w = 512..8192, GPT-2 from tiny to
GPT-2-small size (124M parameters, random init). Each row runs in a fresh
process: two random models, the spec (with its functional check), then
``weight_matching`` with the defaults, sampled for peak resident memory.

Columns: sweeps (all starts), seconds in all, in cost products and in
assignment solves; the lower bound ``sweeps x (cost products + assignment
solves of every group once)``, the full pass measured at the final
permutations with no reuse, and our time over it; resident memory of the
two models before matching, the peak added while matching, and the largest
group's working set for scale (its member tensors' permuted copies + products + cost).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import threading
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from benchmarks import common  # noqa: E402


def _gpt2(d, layers, heads, vocab=50257, positions=1024):
    def make():
        import transformers

        cfg = transformers.GPT2Config(n_embd=d, n_layer=layers, n_head=heads, vocab_size=vocab,
                                      n_positions=positions)
        return transformers.GPT2LMHeadModel(cfg).eval()

    return make, lambda: torch.randint(0, vocab, (1, 8)), {"use_cache": False}


def _mlp(w):
    import models as M

    return lambda: M.MLP(784, (w, w)), lambda: torch.randn(2, 1, 28, 28), None


def _resnet(k):
    import models as M

    return lambda: M.ResNet20(k), lambda: torch.randn(2, 3, 32, 32), None


def configs(quick: bool) -> dict:
    if quick:
        out = {"ResNet-20 x1": _resnet(1), "MLP 784-64x2-10": _mlp(64)}
        if importlib.util.find_spec("transformers"):
            out["GPT-2 d32 L2 (vocab 100)"] = _gpt2(32, 2, 2, vocab=100, positions=32)
        return out
    out = {f"ResNet-20 x{k}": _resnet(k) for k in (1, 2, 4, 8, 16)}
    out.update({f"MLP 784-{w}x2-10": _mlp(w) for w in (512, 1024, 2048, 4096, 8192)})
    out.update({"GPT-2 d64 L2 H2": _gpt2(64, 2, 2), "GPT-2 d192 L4 H3": _gpt2(192, 4, 3),
                "GPT-2 d384 L6 H6": _gpt2(384, 6, 6), "GPT-2 small (d768 L12 H12)": _gpt2(768, 12, 12)})
    return out


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _PeakRSS:
    """Samples resident memory every few milliseconds while in the ``with`` block."""

    def __enter__(self):
        self.peak, self._stop = _rss(), threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def full_pass(spec, sd_a, sd_b, perms) -> tuple[float, float, int]:
    """Seconds to build every group's cost from scratch and to solve every assignment once; the largest
    group's working set in bytes (permuted member copies + products + cost)."""
    wm = importlib.import_module("rebasin_fx.solvers.weight_matching")
    from rebasin_fx.solvers import lap

    keys = [k for k in spec.axes if k not in spec.buffers]
    A, B = wm._prepare(spec, sd_a, "A", keys, None), wm._prepare(spec, sd_b, "B", keys, None)
    members = wm._members(spec, list(A))
    cost_s = lap_s = 0.0
    largest = 0
    for name, g in spec.groups.items():
        t0 = time.perf_counter()
        cost = torch.zeros(g.size, g.size)
        work = 0
        for m in members[name]:
            cost += wm._product(spec, A, B, perms, m, g.size)
            work += B[m.key].numel() * B[m.key].element_size() + cost.numel() * cost.element_size()
        t1 = time.perf_counter()
        lap.solve(cost)
        cost_s, lap_s = cost_s + t1 - t0, lap_s + time.perf_counter() - t1
        largest = max(largest, work + cost.numel() * cost.element_size())
    return cost_s, lap_s, largest


def child(name: str) -> dict:
    import rebasin_fx as rfx

    make, inputs, kwargs = configs(False).get(name) or configs(True)[name]
    torch.manual_seed(0)
    a = make()
    torch.manual_seed(1)
    b = make()
    spec = rfx.permutation_spec(a, (inputs(),), kwargs)
    sd_a, sd_b = a.state_dict(), b.state_dict()
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in sd_a.values()}
    state_bytes = sum(storages.values())  # tied weights (GPT-2's wte and lm_head) counted once
    base = _rss()
    with _PeakRSS() as mem:
        t0 = time.perf_counter()
        p = rfx.weight_matching(spec, sd_a, sd_b)
        total = time.perf_counter() - t0
    cost_s, lap_s, largest = full_pass(spec, sd_a, sd_b, p)
    sweeps = sum(len(h) - 1 for h in p.history.values())
    return {"model": name, "params": sum(t.numel() for t in a.parameters()), "groups": len(spec.groups),
            "largest_group": max(g.size for g in spec.groups.values()), "sweeps": sweeps, "total_s": total,
            "cost_s": p.timing["cost"], "lap_s": p.timing["lap"], "full_pass_s": cost_s + lap_s,
            "bound_s": sweeps * (cost_s + lap_s), "ratio": total / (sweeps * (cost_s + lap_s)),
            "state_dict_mb": state_bytes / 2**20, "rss_before_mb": base / 2**20,
            "peak_added_mb": (mem.peak - base) / 2**20, "group_working_set_mb": largest / 2**20}


def _spawn(name: str) -> dict:
    return {"model": name, **common.run_child(f"import json\nfrom benchmarks import scale\n"
                                              f"print(json.dumps(scale.child({name!r})))")}


HEADER = ("| model | params | groups | largest | sweeps | total s | cost s | lap s | bound s | total/bound "
          "| two models MB | peak added MB | group working set MB |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def _fmt(r: dict) -> str:
    if "error" in r:
        return f"| {r['model']} | error: {r['error']} |"
    return (f"| {r['model']} | {r['params']:,} | {r['groups']} | {r['largest_group']} | {r['sweeps']} "
            f"| {r['total_s']:.2f} | {r['cost_s']:.2f} | {r['lap_s']:.2f} | {r['bound_s']:.2f} | {r['ratio']:.2f} "
            f"| {2 * r['state_dict_mb']:.0f} | {r['peak_added_mb']:.0f} | {r['group_working_set_mb']:.0f} |")


def run(quick: bool = False, only: str = "") -> list[dict]:
    rows = []
    for name in configs(quick):
        if name.startswith(only):
            rows.append(_spawn(name))
            print(_fmt(rows[-1]), flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--only", default="")
    known, rest = ap.parse_known_args(argv)
    return common.main(lambda quick: run(quick, known.only), HEADER, rest)


if __name__ == "__main__":
    sys.exit(main())
