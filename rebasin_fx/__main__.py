"""``python -m rebasin_fx demo``: see rebasin_fx.demo."""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="rebasin-fx", description="Git Re-Basin for any PyTorch model")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train two MNIST MLPs, align them, compare interpolations")
    demo.add_argument("--width", type=int, default=512)
    demo.add_argument("--epochs", type=int, default=5)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    from .errors import RebasinError

    try:
        if args.command == "demo":
            from .demo import run

            run(width=args.width, epochs=args.epochs, seed=args.seed, progress=not args.quiet)
    except RebasinError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
