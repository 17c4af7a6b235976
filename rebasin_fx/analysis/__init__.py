"""Analysis: unify the axis terms of every tensor in a traced graph by op rules."""

from .context import Analysis, PinNote, analyse
from .terms import Terms, Var

__all__ = ["Analysis", "PinNote", "analyse", "Terms", "Var"]
