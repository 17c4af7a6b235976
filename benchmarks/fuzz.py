"""Fuzz the permutation compiler: many random models, failures grouped by class, each shrunk.

Run: python -m benchmarks.fuzz [--seconds 600] [--models N] [--seed 0] [--json out.json]

Models come from the grammar in tests/fuzz/generator.py, drawn with a seeded
RNG; each is checked for soundness (functional check), completeness (groups
equal the symmetry the generator built), exact recovery of a planted
permutation by weight matching, and exact JSON and inverse round trips. A
failure is shrunk greedily (drop blocks, shrink widths) while it keeps its
class, and the minimal recipe of each class is printed.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from fuzz.generator import build, random_recipe  # noqa: E402
from fuzz.properties import check_all  # noqa: E402


def failure_class(recipe) -> str | None:
    """None if the recipe passes (or is ill-formed); otherwise a short name of what failed."""
    try:
        build(recipe)
    except ValueError:
        return None
    try:
        check_all(recipe)
    except Exception as e:  # noqa: BLE001 - every failure is a finding
        first = (str(e).splitlines() or [""])[0]
        return f"{type(e).__name__}: {first[:70]}"
    return None


def shrink(recipe: dict, cls: str, budget: float = 30.0) -> dict:
    """Greedily remove blocks and shrink widths while the failure keeps its class."""
    t0 = time.perf_counter()
    best = recipe
    changed = True
    while changed and time.perf_counter() - t0 < budget:
        changed = False
        blocks = best["blocks"]
        candidates = [dict(best, blocks=blocks[:i] + blocks[i + 1:]) for i in range(len(blocks))]
        for i, op in enumerate(blocks):
            for j, v in enumerate(op):
                if isinstance(v, int) and not isinstance(v, bool) and v > 1:
                    smaller = op[:j] + (v - 1,) + op[j + 1:]
                    candidates.append(dict(best, blocks=blocks[:i] + [smaller] + blocks[i + 1:]))
        for c in candidates:
            if failure_class(c) == cls:
                best, changed = c, True
                break
    return best


def run(seconds: float, models: int | None, seed: int) -> dict:
    logging.disable(logging.WARNING)
    rng = random.Random(seed)
    tried = ill = 0
    classes: collections.Counter = collections.Counter()
    first: dict = {}
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds and (models is None or tried < models):
        recipe = random_recipe(rng)
        try:
            build(recipe)
        except ValueError:
            ill += 1
            continue
        tried += 1
        cls = failure_class(recipe)
        if cls is not None:
            classes[cls] += 1
            first.setdefault(cls, recipe)
    elapsed = time.perf_counter() - t0
    minimal = {cls: shrink(r, cls) for cls, r in first.items()}
    return {"seed": seed, "models": tried, "ill_formed_skipped": ill, "seconds": elapsed,
            "failures": dict(classes), "minimal": minimal}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--models", type=int, default=None, help="stop after this many models")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    out = run(args.seconds, args.models, args.seed)
    print(f"fuzz seed {out['seed']}: {out['models']} models in {out['seconds']:.0f} s "
          f"({out['ill_formed_skipped']} ill-formed recipes skipped); "
          f"{sum(out['failures'].values())} failures in {len(out['failures'])} classes")
    for cls, n in sorted(out["failures"].items(), key=lambda kv: -kv[1]):
        print(f"  {n:5d}  {cls}\n         minimal: {out['minimal'][cls]}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
