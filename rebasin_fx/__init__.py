"""rebasin_fx: Git Re-Basin for any PyTorch model, with specs derived by tracing."""

from .align import AlignResult, align
from .derive import permutation_spec
from .errors import RebasinError
from .norms import reset_bn_stats
from .permute import apply_permutations, inverse, permute_state_dict
from .solvers import Permutations, weight_matching
from .spec import Group, PermutationSpec

__all__ = [
    "RebasinError",
    "PermutationSpec",
    "Group",
    "permutation_spec",
    "apply_permutations",
    "permute_state_dict",
    "inverse",
    "weight_matching",
    "Permutations",
    "align",
    "AlignResult",
    "reset_bn_stats",
]
__version__ = "0.1.0"
