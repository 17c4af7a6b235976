"""Linear assignment (maximisation) on a dense cost matrix.

scipy's solver is always there. When ``lapx`` is installed (``pip install
rebasin_fx[fast]``) its Jonker-Volgenant solver ``lapjvr`` is used: 1.6-7x faster
on the matrices weight matching solves (``benchmarks/lap_solvers.py``); the
older ``lap`` package's ``lapjv`` (about 2x) is used when it is the one
installed. Every solver returns an optimal assignment; where several are optimal
they may pick different ones.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..errors import RebasinError

log = logging.getLogger(__name__)


def _scipy(c: np.ndarray) -> np.ndarray:
    from scipy.optimize import linear_sum_assignment  # imported when used: scipy.optimize takes ~0.6 s to import

    rows, cols = linear_sum_assignment(c, maximize=True)
    return cols[np.argsort(rows)]


def _installed() -> dict:
    try:
        import lap
    except ImportError:
        return {}
    out = {}
    if hasattr(lap, "lapjvr"):  # lapx

        def lapjvr(c):
            rows, cols = lap.lapjvr(np.negative(c, out=c), return_cost=False)  # c is solve()'s own copy
            col_of_row = np.empty(len(c), dtype=np.int64)
            col_of_row[rows] = cols
            return col_of_row

        out["lapx"] = lapjvr
    if hasattr(lap, "lapjv"):
        out["lap"] = lambda c: lap.lapjv(np.negative(c, out=c), extend_cost=False, return_cost=False)[0]
    return out


_SOLVERS = {**_installed(), "scipy": _scipy}
_current = next(iter(_SOLVERS))


def backend(name: str | None = None) -> str:
    """The solver in use; ``backend("scipy")`` (or ``"lapx"``, ``"lap"`` if installed) switches it.

    Example:
        >>> from rebasin_fx.solvers import lap
        >>> old = lap.backend("scipy")
        >>> lap.backend()
        'scipy'
        >>> _ = lap.backend(old)
    """
    global _current
    previous = _current
    if name is not None:
        if name not in _SOLVERS:
            raise RebasinError(f"assignment solver {name!r} is not available; installed: {sorted(_SOLVERS)} "
                               "(pip install lapx for 'lapx')")
        _current = name
    return previous if name is not None else _current


def solve(cost: torch.Tensor) -> torch.Tensor:
    """The permutation p maximising sum_i cost[i, p[i]]."""
    c = cost.detach().to("cpu", torch.float64, copy=True).contiguous().numpy()
    if not np.isfinite(c).all():  # only scipy is documented to take these
        return torch.as_tensor(_scipy(np.nan_to_num(c, nan=-1e300, posinf=1e300, neginf=-1e300)), dtype=torch.long)
    cols = np.asarray(_SOLVERS[_current](c))
    if _current != "scipy" and not np.array_equal(np.sort(cols), np.arange(len(c))):
        log.warning("assignment solver %s returned no permutation; solving with scipy", _current)
        cols = _scipy(cost.detach().to("cpu", torch.float64).numpy())
    return torch.as_tensor(cols, dtype=torch.long)
