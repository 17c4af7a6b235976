"""What every benchmark script shares: its command line (--quick, --json), the table it prints, child processes."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Callable

ROOT = os.path.join(os.path.dirname(__file__), "..")


def run_child(code: str, first_on_path: str | None = None) -> dict:
    """Run ``code`` in a fresh Python (the repository importable, ``first_on_path`` ahead of everything);
    the JSON object on its last output line, or ``{"error": last line of stderr}``."""
    path = ([first_on_path] if first_on_path else []) + [ROOT, os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1][:160]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(run: Callable[[bool], list], header: str, argv=None) -> int:
    """Print ``header``, run (quick or full), optionally write the rows as JSON."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small models only (the test suite's smoke run)")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args(argv)
    print(header)
    rows = run(args.quick)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0
