"""Axis terms and their unification.

Every axis of every tensor gets a ``Var``. A var is either free (an atom: one
permutation variable), or bound to a structure: a row-major product of vars
(from reshape) or a direct sum (from cat/split). Unifying two vars makes them
the same; an atom meeting a structure is refined into it in place; two
structures meet at their common refinement. Where no refinement exists the
vars involved are pinned: conservative, never guessed.
"""

from __future__ import annotations

from typing import Iterable

PROD = "prod"
SUM = "sum"


class Var:
    __slots__ = ("id", "size", "parent", "kind", "parts", "pin")

    def __init__(self, vid: int, size: int):
        self.id = vid
        self.size = size
        self.parent: Var | None = None
        self.kind: str | None = None  # None (atom), PROD or SUM
        self.parts: tuple[Var, ...] = ()
        self.pin: str | None = None  # reason, when pinned

    def __repr__(self) -> str:
        return f"Var({self.id}, n={self.size}{', ' + self.kind if self.kind else ''}{', pinned' if self.pin else ''})"


class Terms:
    """The store of vars and the unification algorithm."""

    def __init__(self) -> None:
        self.vars: list[Var] = []

    # construction -------------------------------------------------------
    def new(self, size: int) -> Var:
        v = Var(len(self.vars), int(size))
        self.vars.append(v)
        return v

    def pinned(self, size: int, why: str) -> Var:
        v = self.new(size)
        v.pin = why
        return v

    def product(self, factors: Iterable[Var]) -> Var:
        """The row-major product of ``factors``; size-1 factors are dropped."""
        fs = tuple(f for f in factors if f.size != 1)
        if len(fs) == 1:
            return fs[0]
        size = 1
        for f in fs:
            size *= f.size
        v = self.new(size)
        if fs:
            v.kind, v.parts = PROD, fs
        return v

    def sum(self, parts: Iterable[Var]) -> Var:
        """The direct sum of ``parts``; empty parts are dropped."""
        ps = tuple(p for p in parts if p.size != 0)
        if len(ps) == 1:
            return ps[0]
        v = self.new(sum(p.size for p in ps))
        if ps:
            v.kind, v.parts = SUM, ps
        return v

    # union-find -----------------------------------------------------------
    @staticmethod
    def find(v: Var) -> Var:
        root = v
        while root.parent is not None:
            root = root.parent
        while v.parent is not None:
            v.parent, v = root, v.parent
        return root

    def is_pinned(self, v: Var) -> bool:
        """True when every unit of ``v`` is fixed (all leaves pinned or trivial)."""
        return all(leaf.pin is not None or leaf.size <= 1 for leaf in self.leaves(v))

    def leaves(self, v: Var) -> list[Var]:
        v = self.find(v)
        if v.kind is None:
            return [v]
        out: list[Var] = []
        for p in v.parts:
            out.extend(self.leaves(p))
        return out

    def pin(self, v: Var, why: str) -> None:
        """Pin every unit of ``v`` (recursively through its structure)."""
        stack = [v]
        while stack:
            r = self.find(stack.pop())
            if r.kind is not None:
                stack.extend(r.parts)
            elif r.pin is None:
                r.pin = why

    def _flat(self, v: Var, kind: str) -> list[Var]:
        """Leaves of ``v`` through nested structures of the same ``kind``."""
        v = self.find(v)
        if v.kind != kind:
            return [v] if (kind == SUM or v.size != 1) else []
        out: list[Var] = []
        for p in v.parts:
            out.extend(self._flat(p, kind))
        return out

    def _bind(self, v: Var, kind: str, parts: tuple[Var, ...]) -> None:
        """Refine the free atom ``v`` into a structure (keeping its pin)."""
        v.kind, v.parts = kind, parts
        if v.pin is not None:
            why, v.pin = v.pin, None
            for p in parts:
                self.pin(p, why)

    def unify(self, a: Var, b: Var, why: str) -> None:
        """Make ``a`` and ``b`` the same term; pin both (with ``why``) where impossible."""
        a, b = self.find(a), self.find(b)
        if a is b:
            return
        if a.size != b.size:
            self.pin(a, why + " (sizes differ)")
            self.pin(b, why + " (sizes differ)")
            return
        if a.size <= 1:
            return
        if a.kind is None or b.kind is None:
            atom, other = (a, b) if a.kind is None else (b, a)
            atom.parent = other
            if atom.pin is not None:
                self.pin(other, atom.pin)
            return
        if a.kind == b.kind:
            ok = self._align(self._flat(a, a.kind), self._flat(b, b.kind), a.kind, why)
        else:
            fa, fb = self._flat(a, a.kind), self._flat(b, b.kind)
            if len(fa) == 1 or len(fb) == 1:
                self.unify(fa[0] if len(fa) == 1 else a, fb[0] if len(fb) == 1 else b, why)
                return
            ok = self._distribute(a, b, fa, fb, why)
        if not ok:
            self.pin(a, why)
            self.pin(b, why)
        a, b = self.find(a), self.find(b)
        if a is not b:
            a.parent = b

    def _distribute(self, a: Var, b: Var, fa: list[Var], fb: list[Var], why: str) -> bool:
        """A sum meeting a product: ``(P1 (+) P2) x R = (P1 x R) (+) (P2 x R)``.

        The product's outer factor is split at the sum's boundaries (scaled by
        the rest); a channel shuffle of two equal branches (``2 x C``) makes
        both branches ``C``, and halves of an interleaved axis stay interleaved.
        """
        parts, factors = (fa, fb) if a.kind == SUM else (fb, fa)
        rest = self.product(factors[1:])
        r = rest.size
        if r == 0 or any(p.size % r for p in parts):
            return False
        outer = [self.new(p.size // r) for p in parts]
        self.unify(factors[0], self.sum(outer), why)
        for p, o in zip(parts, outer):
            self.unify(p, self.product([o, rest]), why)
        return True

    def _split_product(self, big: Var, first: int, why: str):
        """``F x R`` cut after ``first`` units, as ``(F1 x R) (+) (F2 x R)``; None if R does not divide."""
        factors = self._flat(big, PROD)
        rest = self.product(factors[1:])
        if first % rest.size:
            return None
        parts = (self.product([self.new(first // rest.size), rest]),
                 self.product([self.new((big.size - first) // rest.size), rest]))
        self.unify(big, self.sum(parts), why)
        return parts

    def _align(self, xs: list[Var], ys: list[Var], kind: str, why: str) -> bool:
        """Unify two sequences of factors (or summands) at their common refinement."""
        xs, ys = list(xs), list(ys)
        i = j = 0
        while i < len(xs) and j < len(ys):
            x, y = self.find(xs[i]), self.find(ys[j])
            if x.size == y.size:
                self.unify(x, y, why)
                i += 1
                j += 1
                continue
            small, big, big_list, k = (x, y, ys, j) if x.size < y.size else (y, x, xs, i)
            if kind == SUM and big.kind == PROD:  # split a product along its outer factor
                parts = self._split_product(big, small.size, why)
                if parts is None:
                    return False
                big_list[k : k + 1] = list(parts)
                continue
            if big.kind is not None:
                return False
            if kind == PROD:
                if big.size % small.size:
                    return False
                parts = (self.new(small.size), self.new(big.size // small.size))
            else:
                parts = (self.new(small.size), self.new(big.size - small.size))
            self._bind(big, kind, parts)
            big_list[k : k + 1] = list(parts)
        return i == len(xs) and j == len(ys)


__all__ = ["Var", "Terms", "PROD", "SUM"]
