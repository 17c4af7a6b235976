"""The seed's classes, on top of the functions: same names and signatures as the ``rebasin`` package.

Unlike the rest of the library, these classes change models in place where the
seed's API does: ``PermutationCoordinateDescent.rebasin`` permutes ``model_b``,
``Rebasin.rebasin`` permutes every model in ``models_to_permute``. Each
docstring says what it mutates.
"""

from __future__ import annotations

import logging
import pathlib

import torch
from torch import nn

from .align import align, method_name
from .barrier import BarrierReport, evaluate_path
from .data import batches, split_batch
from .errors import RebasinError
from .files import save_model, writable_folder
from .interpolate import check_models, positions
from .metrics import resolve
from .norms import has_batchnorm, reset_bn_stats
from .permute import copy_state_into

log = logging.getLogger(__name__)


def _first_inputs(loader, where: str):
    args, kwargs, _ = split_batch(next(iter(batches(loader, 1, where))), where)
    return args, kwargs


class PermutationCoordinateDescent:
    """Weight matching of ``model_b`` to ``model_a``. ``rebasin()`` changes ``model_b`` in place
    (and recomputes its BatchNorm statistics on ``train_dataloader`` if given); ``model_a`` is untouched.

    Example:
        >>> import torch, rebasin_fx as rfx
        >>> make = lambda: torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
        >>> a, b = make(), make()
        >>> x = torch.randn(3, 4)
        >>> before = b(x)
        >>> rfx.PermutationCoordinateDescent(a, b, (torch.randn(1, 4),)).rebasin()
        >>> torch.allclose(b(x), before, atol=1e-6)   # b was permuted: same function
        True
    """

    def __init__(self, model_a: nn.Module, model_b: nn.Module, example_inputs, train_dataloader=None):
        self.model_a, self.model_b = model_a, model_b
        self.example_inputs = example_inputs
        self.train_dataloader = train_dataloader
        self.result = None

    def rebasin(self) -> None:
        self.result = align(self.model_a, self.model_b, self.example_inputs)
        copy_state_into(self.model_b, self.result.model.state_dict())
        if self.train_dataloader is not None and has_batchnorm(self.model_b):
            reset_bn_stats(self.model_b, self.train_dataloader, inplace=True)


class Interpolation:
    """Interpolate along ``models`` (two or more), evaluate on ``val_dataloader``, save to ``savedir``.

    Every interpolated model gets BatchNorm statistics recomputed on
    ``train_dataloader``. ``interpolate`` saves the best interpolated model
    (``best.safetensors``), or every point (``point_000.safetensors``, ...)
    with ``save_all``, plus ``report.json``; ``results`` holds the metric at
    every point, endpoints included. The models are not changed.
    """

    def __init__(self, models: list[nn.Module], train_dataloader, val_dataloader, savedir: pathlib.Path,
                 save_all: bool = False) -> None:
        check_models(models, "Interpolation")
        self.models = list(models)
        self.train_dataloader, self.val_dataloader = train_dataloader, val_dataloader
        self.savedir = pathlib.Path(savedir)
        self.save_all = save_all
        self.results: torch.Tensor = torch.empty(0)
        self.report: BarrierReport | None = None

    def interpolate(self, method: str = "lerp", steps: int = 10, metric: str = "accuracy") -> None:
        metrics = resolve(metric)
        positions(len(self.models), steps)  # validates steps before any work
        writable_folder(self.savedir, "savedir")
        sign = 1.0 if metrics.higher_is_better[metrics.primary] else -1.0
        best: list = []

        def keep(i, pos, model, measured):
            if self.save_all:
                save_model(model, self.savedir / f"point_{i:03d}.safetensors")
            score = sign * measured[metrics.primary]
            if abs(pos - round(pos)) > 1e-9 and (not best or score > best[0]):  # interior points only
                best[:] = [score, model]

        self.report = evaluate_path(self.models, self.val_dataloader, metric, steps, method,
                                    train_dataloader=self.train_dataloader, on_point=keep)
        if best and not self.save_all:
            save_model(best[1], self.savedir / "best.safetensors")
        (self.savedir / "report.json").write_text(self.report.to_json())
        self.results = torch.tensor(self.report.values[metrics.primary])


class Rebasin:
    """Permute every model in ``models_to_permute`` towards ``target_model`` and interpolate.

    ``rebasin(method)`` changes each model in ``models_to_permute`` in place
    (same function, units reordered; BatchNorm statistics recomputed on
    ``train_dataloader``); ``target_model`` is untouched. Example inputs for
    tracing are the first training batch's inputs. ``interpolate`` runs
    ``Interpolation([target, model_k], ...)`` for each permuted model, saving
    under ``savedir`` (a subfolder ``model_k`` per model when there are several).
    """

    def __init__(self, target_model: nn.Module, models_to_permute: list[nn.Module], train_dataloader,
                 val_dataloader) -> None:
        if isinstance(models_to_permute, nn.Module):
            models_to_permute = [models_to_permute]
        if not models_to_permute:
            raise RebasinError("models_to_permute is empty: pass at least one model to align to the target")
        check_models([target_model, *models_to_permute], "Rebasin")
        self.target_model = target_model
        self.models_to_permute = list(models_to_permute)
        self.train_dataloader, self.val_dataloader = train_dataloader, val_dataloader
        self.results: list = []

    def rebasin(self, method: str = "weight", **options) -> None:
        method = method_name(method)
        args, kwargs = _first_inputs(self.train_dataloader, "Rebasin's train_dataloader")
        if method == "ste" and "loss_fn" not in options:
            options["loss_fn"] = torch.nn.functional.cross_entropy
        self.results = []
        for model in self.models_to_permute:
            res = align(self.target_model, model, args, method=method, example_kwargs=kwargs,
                        dataloader=self.train_dataloader if method != "weight" else None, **options)
            copy_state_into(model, res.model.state_dict())
            if has_batchnorm(model):
                reset_bn_stats(model, self.train_dataloader, inplace=True)
            self.results.append(res)

    def interpolate(self, savedir, save_all: bool = False, method: str = "lerp", steps: int = 10,
                    metric: str = "accuracy") -> None:
        savedir = pathlib.Path(savedir)
        self.interpolations = []
        for k, model in enumerate(self.models_to_permute):
            where = savedir if len(self.models_to_permute) == 1 else savedir / f"model_{k}"
            interp = Interpolation([self.target_model, model], self.train_dataloader, self.val_dataloader, where,
                                   save_all)
            interp.interpolate(method=method, steps=steps, metric=metric)
            self.interpolations.append(interp)
