"""Layouts: how one tensor axis is built from permutation groups.

A layout is a small nested tuple, frozen and hashable:
``("g", name)`` one group, ``("pin", n)`` n fixed units,
``("prod", (a, b, ...))`` row-major product, ``("sum", (a, b, ...))`` direct sum.
"""

from __future__ import annotations

from typing import Mapping

import torch

Layout = tuple


def size(layout: Layout) -> int:
    kind = layout[0]
    if kind == "g":
        return int(layout[2])
    if kind == "pin":
        return int(layout[1])
    sizes = [size(c) for c in layout[1]]
    if kind == "sum":
        return sum(sizes)
    out = 1
    for s in sizes:
        out *= s
    return out


def groups_in(layout: Layout) -> list[tuple[str, tuple[int, ...]]]:
    """Every group leaf as (name, path), path = child indices from the root."""
    out: list[tuple[str, tuple[int, ...]]] = []

    def walk(node, path):
        if node[0] == "g":
            out.append((node[1], path))
        elif node[0] in ("prod", "sum"):
            for k, child in enumerate(node[1]):
                walk(child, path + (k,))

    walk(layout, ())
    return out


def index(layout: Layout, perms: Mapping[str, torch.Tensor], skip: tuple[int, ...] | None = None,
          device=None) -> torch.Tensor:
    """The gather index along the axis: new[i] = old[index[i]].

    ``skip`` is the path of one group leaf to leave unpermuted (weight matching
    builds one group's cost with every other permutation applied).
    """

    def build(node, path):
        kind = node[0]
        if kind == "g":
            if skip is not None and path == skip:
                return torch.arange(node[2], device=device)
            return perms[node[1]].to(device)
        if kind == "pin":
            return torch.arange(node[1], device=device)
        parts = [build(c, path + (k,)) for k, c in enumerate(node[1])]
        if kind == "sum":
            out, offset = [], 0
            for p in parts:
                out.append(p + offset)
                offset += p.numel()
            return torch.cat(out)
        idx = torch.zeros(1, dtype=torch.long, device=device)
        for p in parts:
            idx = (idx[:, None] * p.numel() + p[None, :]).reshape(-1)
        return idx

    return build(layout, ())


def unit_positions(layout: Layout, path: tuple[int, ...]) -> torch.Tensor:
    """Positions along the axis that belong to each unit of the leaf at ``path``: [n_units, m]."""

    def walk(node, path, base):  # base: [size(node), m]
        if not path:
            return base
        k, rest = path[0], path[1:]
        children = node[1]
        if node[0] == "sum":
            offset = sum(size(c) for c in children[:k])
            return walk(children[k], rest, base[offset : offset + size(children[k])])
        sizes = [size(c) for c in children]
        grid = base.reshape(*sizes, base.shape[-1]).movedim(k, 0)
        return walk(children[k], rest, grid.reshape(sizes[k], -1))

    n = size(layout)
    return walk(layout, path, torch.arange(n).reshape(n, 1))


def to_text(layout: Layout | None) -> str:
    if layout is None:
        return "-"
    kind = layout[0]
    if kind == "g":
        return layout[1]
    if kind == "pin":
        return f"pinned({layout[1]})"
    sep = " x " if kind == "prod" else " (+) "
    return "(" + sep.join(to_text(c) for c in layout[1]) + ")"


def to_json(layout: Layout | None):
    if layout is None:
        return None
    kind = layout[0]
    if kind == "g":
        return {"group": layout[1]}
    if kind == "pin":
        return {"pinned": layout[1]}
    return {"product" if kind == "prod" else "sum": [to_json(c) for c in layout[1]]}


def from_json(obj, group_sizes: Mapping[str, int], where: str) -> Layout | None:
    """Parse one layout, raising ``ValueError`` naming ``where`` on anything malformed."""
    if obj is None:
        return None
    if not isinstance(obj, dict) or len(obj) != 1:
        raise ValueError(f"{where}: a layout is one of {{'group'|'pinned'|'product'|'sum': ...}}, got {obj!r}")
    (key, val), = obj.items()
    if key == "group":
        if val not in group_sizes:
            raise ValueError(f"{where}: unknown group {val!r}")
        return ("g", val, int(group_sizes[val]))
    if key == "pinned":
        if not isinstance(val, int) or val < 0:
            raise ValueError(f"{where}: 'pinned' needs a size >= 0, got {val!r}")
        return ("pin", val)
    if key in ("product", "sum"):
        if not isinstance(val, list) or not val:
            raise ValueError(f"{where}: '{key}' needs a non-empty list")
        kids = tuple(from_json(c, group_sizes, f"{where}.{key}[{i}]") for i, c in enumerate(val))
        if any(k is None for k in kids):
            raise ValueError(f"{where}: null inside '{key}'")
        return ("prod" if key == "product" else "sum", kids)
    raise ValueError(f"{where}: unknown layout key {key!r}")
