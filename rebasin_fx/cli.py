"""The ``rebasin-fx`` command line (also ``python -m rebasin_fx``).

Exit codes: 0 success, 1 a RebasinError (one line; ``-v`` adds the traceback),
2 bad usage.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import pathlib
import sys
import traceback

log = logging.getLogger("rebasin_fx.cli")


# models ----------------------------------------------------------------------------------------
def load_model(name: str, kwargs: dict | None = None):
    """``package.module:factory`` (called with ``kwargs``), or a torchvision / timm model name
    (``torchvision:NAME``, ``timm:NAME`` or a bare name tried in that order), with random weights."""
    from .errors import RebasinError

    kwargs = dict(kwargs or {})
    if ":" in name and name.split(":", 1)[0] not in ("torchvision", "timm"):
        module, _, attr = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise RebasinError(f"cannot load model factory {name!r}: {e}; give package.module:factory "
                               "importable from here") from e
        return factory(**kwargs)
    source, _, bare = name.rpartition(":")
    tried = []
    if source in ("", "torchvision"):
        try:
            import torchvision

            if bare in torchvision.models.list_models():
                return torchvision.models.get_model(bare, weights=None, **kwargs)
            tried.append("torchvision")
        except ImportError:
            tried.append("torchvision (not installed)")
    if source in ("", "timm"):
        try:
            import timm

            if timm.is_model(bare):
                return timm.create_model(bare, pretrained=False, **kwargs)
            tried.append("timm")
        except ImportError:
            tried.append("timm (not installed)")
    raise RebasinError(f"unknown model {name!r} (looked in {', '.join(tried)}); give a torchvision or timm "
                       "model name, or package.module:factory")


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in text.replace("x", ",").split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--input-shape must be integers like 2,3,224,224, got {text!r}")
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"--input-shape must be positive integers, got {text!r}")
    return shape


def _json(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--kwargs must be a JSON object: {e}")
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("--kwargs must be a JSON object")
    return value


def _model_and_input(args):
    import torch

    model = load_model(args.model, args.kwargs).eval()
    return model, (torch.randn(*args.input_shape, generator=torch.Generator().manual_seed(0)),)


def _checkpoint_model(model, path):
    from .files import load_into, load_state_dict

    return load_into(model, load_state_dict(path), where=f"checkpoint {path}").eval()


def _data(name: str | None, batch: int = 500):
    from .datasets import batched, load

    if name is None:
        return None, None
    train, test = load(name)
    return batched(train, batch), batched(test, batch)


# subcommands ------------------------------------------------------------------------------------
def cmd_demo(args) -> None:
    from .demo import run

    run(family=args.family, width=args.width, epochs=args.epochs, method=args.method, out=args.out,
        seed=args.seed, progress=not args.quiet)


def cmd_spec(args) -> None:
    from .derive import permutation_spec

    model, inputs = _model_and_input(args)
    spec = permutation_spec(model, inputs, check=args.check)
    print(spec)
    if args.check:
        print("functional check: passed (float64, random permutation of every group)")
    if args.json:
        pathlib.Path(args.json).write_text(spec.to_json())
        print(f"wrote {args.json}")
    if args.dot:
        pathlib.Path(args.dot).write_text(to_dot(spec))
        print(f"wrote {args.dot}")


def to_dot(spec) -> str:
    """Graphviz: one node per module, one per group; an edge where a module's tensor uses a group."""
    lines = ["graph spec {", "  rankdir=LR;", '  node [fontsize=10];']
    seen = set()
    for name, g in spec.groups.items():
        lines.append(f'  "{name}" [shape=box, style=filled, fillcolor=lightblue, label="{name}\\n{g.size} units"];')
        for key, _axis in g.members:
            module = key.rsplit(".", 1)[0] if "." in key else key
            if module not in seen:
                seen.add(module)
                lines.append(f'  "{module}" [shape=ellipse];')
            edge = f'  "{module}" -- "{name}";'
            if edge not in lines:
                lines.append(edge)
    lines.append("}")
    return "\n".join(lines) + "\n"


def cmd_align(args) -> None:
    import torch.nn.functional as F

    from .align import align
    from .files import save_model

    model, inputs = _model_and_input(args)
    a, b = _checkpoint_model(model, args.a), _checkpoint_model(model, args.b)
    train, _ = _data(args.data)
    res = align(a, b, inputs, method=args.method, seed=args.seed, max_iter=args.max_iter, dataloader=train,
                loss_fn=F.cross_entropy, progress=not args.quiet)
    out = save_model(res.model, args.out, spec=res.spec, perms=res.perms)
    print(f"aligned {args.b} to {args.a} ({args.method}, {len(res.spec.groups)} groups); wrote {out} and its "
          "permutations")


def cmd_interpolate(args) -> None:
    from .barrier import evaluate_path

    model, _ = _model_and_input(args)
    models = [_checkpoint_model(model, p) for p in args.checkpoints]
    train, test = _data(args.data)
    report = evaluate_path(models, test, metric=args.metric, steps=args.steps, method=args.method,
                           train_dataloader=train, repair=args.repair, progress=not args.quiet)
    print(report)
    if args.out:
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(report.to_json())
        report.plot(out / "interpolation.png")
        print(f"wrote {out / 'report.json'} and {out / 'interpolation.png'}")


def cmd_merge(args) -> None:
    from .files import save_model
    from .merge import merge_many

    model, inputs = _model_and_input(args)
    models = [_checkpoint_model(model, p) for p in args.checkpoints]
    train, _ = _data(args.data)
    res = merge_many(models, inputs, max_iter=args.max_iter, seed=args.seed, dataloader=train,
                     progress=not args.quiet)
    out = save_model(res.model, args.out)
    print(f"merged {len(models)} models in {res.rounds} round(s) of MergeMany; wrote {out}")


# parser -----------------------------------------------------------------------------------------
def _model_args(p, positional=False):
    help = "package.module:factory or a torchvision/timm model name"
    if positional:
        p.add_argument("model", help=help)
    else:
        p.add_argument("--model", required=True, help=help)
    p.add_argument("--kwargs", type=_json, default=None, help="JSON keyword arguments for the factory")
    p.add_argument("--input-shape", type=_shape, default=(1, 3, 224, 224),
                   help="example input shape for tracing, e.g. 1,3,224,224 (default)")


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="log details; tracebacks on errors")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars, errors only")
    ap = argparse.ArgumentParser(prog="rebasin-fx", description="Git Re-Basin for any PyTorch model")
    sub = ap.add_subparsers(dest="command", required=True)

    def add(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, parents=[common])  # every subcommand takes -v/-q

    p = add("demo", help="train two MNIST models, align them, compare naive and aligned interpolation")
    p.add_argument("--family", choices=("mlp", "resnet", "vit"), default="mlp")
    p.add_argument("--width", type=int, default=None, help="hidden width (default per family)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default per family)")
    p.add_argument("--method", choices=("weight", "activation", "ste"), default="weight")
    p.add_argument("--out", default="rebasin_fx_demo", help="folder for interpolation.png and report.json")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)

    p = add("spec", help="print the permutation spec derived for a model")
    _model_args(p, positional=True)
    p.add_argument("--json", help="write the spec as JSON here")
    p.add_argument("--check", action="store_true", help="run the functional check")
    p.add_argument("--dot", help="write a Graphviz file of groups over modules here")
    p.set_defaults(func=cmd_spec)

    p = add("align", help="align checkpoint B to checkpoint A")
    p.add_argument("a")
    p.add_argument("b")
    _model_args(p)
    p.add_argument("--out", required=True, help="aligned checkpoint of B (.safetensors or .pt)")
    p.add_argument("--method", choices=("weight", "activation", "ste"), default="weight")
    p.add_argument("--data", choices=("mnist", "digits"), help="built-in dataset for activation/ste")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-iter", type=int, default=100)
    p.set_defaults(func=cmd_align)

    p = add("interpolate", help="evaluate the interpolation path through two or more checkpoints")
    p.add_argument("checkpoints", nargs="+")
    _model_args(p)
    p.add_argument("--data", choices=("mnist", "digits"), required=True, help="built-in dataset to evaluate on")
    p.add_argument("--steps", type=int, default=9)
    p.add_argument("--method", choices=("lerp", "slerp"), default="lerp")
    p.add_argument("--metric", choices=("loss", "accuracy"), default="loss")
    p.add_argument("--repair", action="store_true", help="REPAIR every interpolated point")
    p.add_argument("--out", help="folder for report.json and interpolation.png")
    p.set_defaults(func=cmd_interpolate)

    p = add("merge", help="merge two or more checkpoints with MergeMany")
    p.add_argument("checkpoints", nargs="+")
    _model_args(p)
    p.add_argument("--out", required=True)
    p.add_argument("--data", choices=("mnist", "digits"), help="built-in dataset for BatchNorm statistics")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-iter", type=int, default=100)
    p.set_defaults(func=cmd_merge)
    return ap


def main(argv=None) -> int:
    from .errors import RebasinError

    args = parser().parse_args(argv)
    level = logging.INFO if args.verbose else logging.ERROR if args.quiet else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("torch").setLevel(logging.WARNING)
    try:
        args.func(args)
    except RebasinError as e:
        if args.verbose:
            traceback.print_exc()
        first, *rest = str(e).splitlines() or [""]
        print(f"error: {first}", file=sys.stderr)
        for line in rest:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0
