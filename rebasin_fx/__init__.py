"""rebasin_fx: Git Re-Basin for any PyTorch model, with specs derived by tracing."""

from .derive import permutation_spec
from .errors import RebasinError
from .permute import apply_permutations, inverse, permute_state_dict
from .spec import Group, PermutationSpec

__all__ = [
    "RebasinError",
    "PermutationSpec",
    "Group",
    "permutation_spec",
    "apply_permutations",
    "permute_state_dict",
    "inverse",
]
__version__ = "0.1.0"
