"""Solvers: find the permutation of model B that best matches model A."""

from .weight_matching import Permutations, weight_matching

__all__ = ["Permutations", "weight_matching"]
