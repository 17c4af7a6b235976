"""The table of op rules: one small function per op kind, found by ATen target."""

from __future__ import annotations

from typing import Any, Callable

import torch

RuleFn = Callable[[Any, torch.fx.Node], Any]
RULES: dict[Any, RuleFn] = {}


def _overloads(op) -> list:
    """An OpOverloadPacket stands for all its overloads; others stand for themselves."""
    if isinstance(op, torch._ops.OpOverloadPacket):
        return [getattr(op, name) for name in op.overloads()]
    return [op]


def rule(*ops) -> Callable[[RuleFn], RuleFn]:
    """Register ``fn`` as the rule for every overload of ``ops`` (missing ops are skipped)."""

    def register(fn: RuleFn) -> RuleFn:
        for op in ops:
            if op is None:
                continue
            for target in _overloads(op):
                RULES[target] = fn
        return fn

    return register


def aten(*names: str) -> list:
    """ATen op packets by name, skipping names this torch build does not have."""
    out = []
    for name in names:
        op = getattr(torch.ops.aten, name, None)
        if op is not None:
            out.append(op)
    return out


def lookup(target) -> RuleFn | None:
    fn = RULES.get(target)
    if fn is None and hasattr(target, "overloadpacket"):
        fn = RULES.get(target.overloadpacket)
    return fn
