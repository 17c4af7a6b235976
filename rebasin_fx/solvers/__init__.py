"""Solvers: find the permutation of model B that best matches model A."""

from .activation import activation_matching
from .ste import straight_through
from .weight_matching import Permutations, weight_matching

__all__ = ["Permutations", "weight_matching", "activation_matching", "straight_through"]
