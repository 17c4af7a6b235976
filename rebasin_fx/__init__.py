"""rebasin_fx: Git Re-Basin for any PyTorch model, with specs derived by tracing."""

from .align import AlignResult, align
from .barrier import BarrierReport, evaluate_path, path_barrier
from .compat import Interpolation, PermutationCoordinateDescent, Rebasin
from .derive import permutation_spec
from .errors import RebasinError
from .files import load_into, load_permutations, load_state_dict, save_model, save_permutations
from .interpolate import interpolate
from .merge import MergeResult, average, merge_many
from .norms import reset_bn_stats
from .permute import apply_permutations, inverse, permute_state_dict
from .repair import repair
from .solvers import Permutations, activation_matching, straight_through, weight_matching
from .spec import Group, PermutationSpec

__all__ = [
    # errors
    "RebasinError",
    # specs
    "PermutationSpec",
    "Group",
    "permutation_spec",
    "apply_permutations",
    "permute_state_dict",
    "inverse",
    # solvers
    "weight_matching",
    "activation_matching",
    "straight_through",
    "Permutations",
    "align",
    "AlignResult",
    # merging and statistics
    "interpolate",
    "evaluate_path",
    "path_barrier",
    "BarrierReport",
    "merge_many",
    "MergeResult",
    "average",
    "reset_bn_stats",
    "repair",
    # files
    "save_model",
    "load_state_dict",
    "load_into",
    "save_permutations",
    "load_permutations",
    # the seed's classes
    "PermutationCoordinateDescent",
    "Interpolation",
    "Rebasin",
]
__version__ = "0.1.0"
