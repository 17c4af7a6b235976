"""Barriers along an interpolation path: evaluate every point, report, plot."""

from __future__ import annotations

import dataclasses
import json
from typing import Sequence

from torch import nn
from tqdm.auto import tqdm

from .data import reiterable
from .errors import RebasinError
from .interpolate import check_models, iter_points, positions
from .metrics import resolve


def path_barrier(pos: Sequence[float], values: Sequence[float], higher_is_better: bool) -> float:
    """Largest excess of the metric over the straight line between each segment's endpoints.

    For a loss: max over t of L(t) - ((1 - t) L(0) + t L(1)); for accuracy the
    sign is flipped (the shortfall below the line). Over several segments: the
    largest segment barrier.
    """
    sign = -1.0 if higher_is_better else 1.0
    best = 0.0
    ends = {int(round(p)): i for i, p in enumerate(pos) if abs(p - round(p)) < 1e-9}
    for seg in range(int(round(max(pos)))):
        i0, i1 = ends[seg], ends[seg + 1]
        for i in range(i0, i1 + 1):
            t = pos[i] - seg
            line = (1 - t) * values[i0] + t * values[i1]
            best = max(best, sign * (values[i] - line))
    return best


@dataclasses.dataclass(frozen=True)
class BarrierReport:
    """Metric values along a path and the barriers they imply.

    ``positions``: k + t on segment k (0..1 for two models); ``values``:
    {metric: values}; ``barriers``: {metric: barrier} (the paper's
    definition, see ``path_barrier``); ``best``: index of the best point by
    the primary metric; ``label``: a name for tables and plots.
    """

    positions: tuple[float, ...]
    values: dict
    higher_is_better: dict
    primary: str
    label: str = ""

    @property
    def barriers(self) -> dict:
        return {k: path_barrier(self.positions, v, self.higher_is_better[k]) for k, v in self.values.items()}

    @property
    def loss_barrier(self) -> float | None:
        return self.barriers.get("loss")

    @property
    def accuracy_barrier(self) -> float | None:
        return self.barriers.get("accuracy")

    @property
    def best(self) -> int:
        v = self.values[self.primary]
        key = (lambda i: v[i]) if self.higher_is_better[self.primary] else (lambda i: -v[i])
        return max(range(len(v)), key=key)

    def __str__(self) -> str:
        names = list(self.values)
        head = f"{'position':>8}  " + "  ".join(f"{n:>10}" for n in names)
        lines = [f"interpolation{' (' + self.label + ')' if self.label else ''}", head]
        for i, p in enumerate(self.positions):
            mark = "  <- best" if i == self.best else ""
            lines.append(f"{p:8.3f}  " + "  ".join(f"{self.values[n][i]:10.4f}" for n in names) + mark)
        lines.append("barrier   " + "  ".join(f"{self.barriers[n]:10.4f}" for n in names))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"label": self.label, "positions": list(self.positions), "values": self.values,
                "barriers": self.barriers, "best": self.best, "primary": self.primary}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def plot(self, path, compare: "BarrierReport | Sequence[BarrierReport] | None" = None) -> None:
        """Draw the metric curves (this report and any ``compare`` reports) into an image file."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as e:  # pragma: no cover - optional extra
            raise RebasinError("plotting needs matplotlib: pip install 'rebasin_fx[plot]'") from e
        reports = [self] + ([compare] if isinstance(compare, BarrierReport) else list(compare or []))
        names = list(self.values)
        fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.5), squeeze=False)
        for ax, name in zip(axes[0], names):
            for r in reports:
                if name in r.values:
                    ax.plot(r.positions, r.values[name], marker="o", ms=3,
                            label=f"{r.label or 'path'} (barrier {r.barriers[name]:.3f})")
            ax.set_xlabel("position along the path")
            ax.set_ylabel(name)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)


def evaluate_path(models: Sequence[nn.Module], dataloader, metric="loss", steps: int = 10, method: str = "lerp",
                  train_dataloader=None, reset_bn: bool = True, repair: bool = False,
                  num_batches: int | None = None, label: str = "", progress: bool = False,
                  on_point=None) -> BarrierReport:
    """Evaluate ``metric`` at every point of the path through ``models``; one model in memory at a time.

    ``metric``: "loss" or "accuracy" (both are measured; the name picks the
    best point) or ``f(model, dataloader) -> float`` with ``f.higher_is_better``.
    With ``train_dataloader``, interior points get fresh BatchNorm statistics
    (``reset_bn``) and optionally REPAIR (``repair``) before evaluation.
    ``on_point(index, position, model, values)`` is called at every point
    (to save models, for instance).

    Example:
        >>> import torch, rebasin_fx as rfx
        >>> make = lambda: torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
        >>> data = [(torch.randn(16, 4), torch.randint(0, 3, (16,)))]
        >>> report = rfx.evaluate_path([make(), make()], data, steps=3)
        >>> len(report.positions), sorted(report.barriers)
        (5, ['accuracy', 'loss'])
    """
    check_models(models, "evaluate_path")
    reiterable(dataloader, "the evaluation dataloader")
    metrics = resolve(metric)
    n_points = len(positions(len(models), steps))
    pos, values = [], {}
    points = iter_points(models, steps, method, train_dataloader, reset_bn, repair, num_batches, progress)
    for i, (p, model) in enumerate(tqdm(points, total=n_points, desc="interpolation", disable=not progress,
                                        leave=False)):
        pos.append(p)
        measured = metrics.measure(model, dataloader)
        for name, v in measured.items():
            values.setdefault(name, []).append(v)
        if on_point is not None:
            on_point(i, p, model, measured)
    return BarrierReport(tuple(pos), {k: tuple(v) for k, v in values.items()}, metrics.higher_is_better,
                         metrics.primary, label)
