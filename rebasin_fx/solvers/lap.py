"""Linear assignment (maximisation) on a dense cost matrix."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment


def solve(cost: torch.Tensor) -> torch.Tensor:
    """The permutation p maximising sum_i cost[i, p[i]]."""
    c = cost.detach().to("cpu", torch.float64).numpy()
    if not np.isfinite(c).all():
        c = np.nan_to_num(c, nan=-1e300, posinf=1e300, neginf=-1e300)
    rows, cols = linear_sum_assignment(c, maximize=True)
    return torch.as_tensor(cols[np.argsort(rows)], dtype=torch.long)
