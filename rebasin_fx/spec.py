"""The permutation spec: groups of hidden units and the tensor axes each one moves."""

from __future__ import annotations

import dataclasses
import json
import types
from typing import Any, Mapping

import torch

from . import layout as L
from .analysis.context import Analysis, PinNote
from .errors import RebasinError

FORMAT = "rebasin_fx.permutation_spec"
VERSION = 1


@dataclasses.dataclass(frozen=True)
class Group:
    """One permutation variable: ``size`` units and the (key, axis) pairs it moves."""

    name: str
    size: int
    members: tuple[tuple[str, int], ...]


@dataclasses.dataclass(frozen=True)
class PermutationSpec:
    """Which permutations of hidden units leave a model's function unchanged.

    ``groups`` maps a group name to its :class:`Group`; ``axes`` maps a
    state_dict key to one layout per axis (None: the axis does not move);
    ``shapes`` holds every state_dict key's shape; ``pinned`` says which axes
    were pinned and why; ``unknown_ops`` lists ops that had no rule.

    Example:
        >>> import torch, rebasin_fx as rfx
        >>> mlp = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> spec = rfx.permutation_spec(mlp, (torch.randn(1, 4),))
        >>> [(g.name, g.size) for g in spec.groups.values()]
        [('0.weight:0', 8)]
    """

    groups: Mapping[str, Group]
    axes: Mapping[str, tuple]
    shapes: Mapping[str, tuple[int, ...]]
    buffers: frozenset[str] = frozenset()
    # (reason with node and source line, axes it pinned as "key[axis]")
    pinned: tuple[tuple[str, tuple[str, ...]], ...] = ()
    unknown_ops: tuple[PinNote, ...] = ()

    # --- reading -----------------------------------------------------------
    @property
    def free_units(self) -> int:
        return sum(g.size for g in self.groups.values())

    def __str__(self) -> str:
        rows = [("group", "size", "members")]
        for g in self.groups.values():
            members = []
            for key, axis in g.members:
                lay = self.axes[key][axis]
                text = f"{key}[{axis}]"
                if lay[0] != "g":
                    text += f"={L.to_text(lay)}"
                members.append(text)
            more = f" (+{len(members) - 5} more)" if len(members) > 5 else ""
            rows.append((g.name, str(g.size), ", ".join(members[:5]) + more))
        w0 = max(len(r[0]) for r in rows)
        w1 = max(len(r[1]) for r in rows)
        lines = [
            f"PermutationSpec: {len(self.groups)} groups, {self.free_units} free units, "
            f"{len(self.axes)} of {len(self.shapes)} tensors permuted"
        ]
        lines += [f"  {a:<{w0}}  {b:>{w1}}  {c}" for a, b, c in rows]
        if self.pinned:
            lines.append("pinned axes (reason: axes):")
            by_reason: dict[str, list[str]] = {}
            for reason, members in self.pinned:
                by_reason.setdefault(reason.split(": ", 1)[0], []).extend(members)
            for reason, members in by_reason.items():
                shown = ", ".join(members[:4]) + (f" (+{len(members) - 4} more)" if len(members) > 4 else "")
                lines.append(f"  {reason}: {shown}")
        if self.unknown_ops:
            lines.append("ops with no rule (their axes were pinned):")
            for note in self.unknown_ops:
                lines.append(f"  {note.op} at {note.where}")
        return "\n".join(lines)

    __repr__ = __str__

    def coverage(self) -> dict:
        """A per-model summary: groups, free units, how much of the state_dict moves, pinned axes by reason.

        Example:
            >>> import torch, rebasin_fx as rfx
            >>> mlp = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
            >>> c = rfx.permutation_spec(mlp, (torch.randn(1, 4),)).coverage()
            >>> c["groups"], c["free_units"], c["elements_moved"], c["elements"]
            (1, 8, 56, 58)
        """
        total = sum(_numel(s) for s in self.shapes.values())
        moved = sum(_numel(self.shapes[k]) for k in self.axes)
        by_reason: dict[str, list[str]] = {}
        for reason, axes in self.pinned:
            by_reason.setdefault(reason.split(": ", 1)[0], []).extend(axes)
        return {
            "groups": len(self.groups),
            "free_units": self.free_units,
            "group_sizes": {n: g.size for n, g in self.groups.items()},
            "tensors_moved": len(self.axes),
            "tensors": len(self.shapes),
            "elements_moved": moved,
            "elements": total,
            "pinned": by_reason,
            "unknown_ops": [f"{n.op} at {n.where}" for n in self.unknown_ops],
        }

    def to_networkx(self):
        """A bipartite networkx graph: group nodes and tensor nodes, an edge per moved axis.

        Example:
            >>> import torch, rebasin_fx as rfx
            >>> mlp = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
            >>> g = rfx.permutation_spec(mlp, (torch.randn(1, 4),)).to_networkx()
            >>> sorted(g.neighbors("group:0.weight:0"))
            ['tensor:0.bias', 'tensor:0.weight', 'tensor:2.weight']
        """
        import networkx as nx

        g = nx.MultiGraph()
        for name, grp in self.groups.items():
            g.add_node(f"group:{name}", kind="group", size=grp.size)
            for key, axis in grp.members:
                g.add_node(f"tensor:{key}", kind="tensor", shape=self.shapes[key])
                g.add_edge(f"group:{name}", f"tensor:{key}", axis=axis, layout=L.to_text(self.axes[key][axis]))
        return g

    # --- checking -----------------------------------------------------------
    def random_perms(self, seed: int = 0) -> dict[str, torch.Tensor]:
        """One random permutation per group (seeded)."""
        gen = torch.Generator().manual_seed(seed)
        return {name: torch.randperm(g.size, generator=gen) for name, g in self.groups.items()}

    def check(self, model: torch.nn.Module, example_inputs, example_kwargs: dict | None = None,
              seed: int = 0, rtol: float = 1e-6) -> float:
        """The functional check: permute every group at random; outputs must not change.

        Runs a float64 copy of ``model`` in eval mode; returns the relative error
        and raises :class:`RebasinError` naming the offending groups if it exceeds ``rtol``.
        """
        from .check import functional_check

        return functional_check(self, model, example_inputs, example_kwargs, seed=seed, rtol=rtol)

    # --- files ---------------------------------------------------------------
    def to_json(self) -> str:
        obj = {
            "format": FORMAT,
            "version": VERSION,
            "groups": {n: g.size for n, g in self.groups.items()},
            "axes": {k: [L.to_json(a) for a in axes] for k, axes in self.axes.items()},
            "shapes": {k: list(s) for k, s in self.shapes.items()},
            "buffers": sorted(self.buffers),
            "pinned": [{"reason": r, "axes": list(m)} for r, m in self.pinned],
            "unknown_ops": [{"reason": n.reason, "op": n.op, "where": n.where} for n in self.unknown_ops],
        }
        return json.dumps(obj, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "PermutationSpec":
        """Read a spec written by :meth:`to_json`, checking every field."""
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise RebasinError(f"spec JSON is not valid JSON ({e}); was the file truncated?") from e
        try:
            return _spec_from_obj(obj)
        except (ValueError, TypeError, KeyError) as e:
            raise RebasinError(f"spec JSON is malformed: {e}. Regenerate it with spec.to_json().") from e


def _spec_from_obj(obj: Any) -> PermutationSpec:
    if not isinstance(obj, dict):
        raise ValueError("top level must be an object")
    if obj.get("format") != FORMAT:
        raise ValueError(f"field 'format' must be {FORMAT!r}, got {obj.get('format')!r}")
    if obj.get("version") != VERSION:
        raise ValueError(f"field 'version' must be {VERSION}, got {obj.get('version')!r}")
    known = {"format", "version", "groups", "axes", "shapes", "buffers", "pinned", "unknown_ops"}
    extra = set(obj) - known
    if extra:
        raise ValueError(f"unknown field(s) {sorted(extra)}")
    for field in ("groups", "axes", "shapes"):
        if not isinstance(obj.get(field), dict):
            raise ValueError(f"field '{field}' must be an object")
    sizes = {}
    for name, n in obj["groups"].items():
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"groups.{name}: size must be a positive integer, got {n!r}")
        sizes[name] = n
    shapes = {}
    for key, s in obj["shapes"].items():
        if not isinstance(s, list) or not all(isinstance(v, int) and v >= 0 for v in s):
            raise ValueError(f"shapes.{key}: must be a list of sizes")
        shapes[key] = tuple(s)
    axes = {}
    for key, lays in obj["axes"].items():
        if key not in shapes:
            raise ValueError(f"axes.{key}: key has no entry in 'shapes'")
        if not isinstance(lays, list) or len(lays) != len(shapes[key]):
            raise ValueError(f"axes.{key}: needs one layout per axis ({len(shapes[key])})")
        parsed = tuple(L.from_json(a, sizes, f"axes.{key}[{i}]") for i, a in enumerate(lays))
        for i, (lay, n) in enumerate(zip(parsed, shapes[key])):
            if lay is not None and L.size(lay) != n:
                raise ValueError(f"axes.{key}[{i}]: layout covers {L.size(lay)} units but the axis has {n}")
        axes[key] = parsed
    pinned = tuple((p["reason"], tuple(p["axes"])) for p in obj.get("pinned", []))
    from .analysis.context import PinNote

    unknown = tuple(PinNote(str(n["reason"]), str(n["op"]), str(n["where"]), unknown_op=True)
                    for n in obj.get("unknown_ops", []))
    return build_spec(sizes, axes, shapes, frozenset(obj.get("buffers", [])), pinned, unknown)


def build_spec(sizes, axes, shapes, buffers, pinned, unknown_ops) -> PermutationSpec:
    members: dict[str, list[tuple[str, int]]] = {n: [] for n in sizes}
    for key, lays in axes.items():
        for axis, lay in enumerate(lays):
            if lay is None:
                continue
            for name in dict.fromkeys(n for n, _ in L.groups_in(lay)):
                members[name].append((key, axis))
    for name, ms in members.items():
        if not ms:
            raise ValueError(f"groups.{name}: the group moves no axis")
    groups = {n: Group(n, sizes[n], tuple(members[n])) for n in sizes}
    return PermutationSpec(
        groups=types.MappingProxyType(groups),
        axes=types.MappingProxyType(dict(axes)),
        shapes=types.MappingProxyType(dict(shapes)),
        buffers=frozenset(buffers),
        pinned=tuple(pinned),
        unknown_ops=tuple(unknown_ops),
    )


def spec_from_analysis(an: Analysis, shapes: Mapping[str, tuple[int, ...]], buffers: frozenset[str]) -> PermutationSpec:
    """Resolve every state_dict axis to a layout over free atoms; name the atoms."""
    raw, atom_names, sizes, pinned_by = resolve_state_axes(an, shapes)

    def named(lay):
        if lay[0] == "atom":
            return ("g", atom_names[lay[1]], lay[2])
        if lay[0] == "pin":
            return lay
        return (lay[0], tuple(named(c) for c in lay[1]))

    axes = {}
    for key in shapes:
        lays = raw.get(key)
        if lays is None:
            continue
        out = tuple(None if lay[0] == "pin" else named(lay) for lay in lays)
        if any(o is not None for o in out):
            axes[key] = out
    pinned = tuple((reason, tuple(dict.fromkeys(ws))) for reason, ws in pinned_by.items())
    unknown = tuple(dict.fromkeys(n for n in an.notes if n.unknown_op))
    return build_spec(sizes, axes, shapes, buffers, pinned, unknown)


def resolve_state_axes(an: Analysis, shapes: Mapping[str, tuple[int, ...]]):
    """(raw layouts per state key, atom id -> group name, group sizes, pin reason -> axes)."""
    terms = an.terms
    traced = an.traced
    placeholders = {n.name: n for n in traced.graph.nodes if n.op == "placeholder"}
    atom_names: dict[int, str] = {}
    pinned_by: dict[str, list[str]] = {}

    def resolve(v, where):
        v = terms.find(v)
        if v.kind is None:
            if v.pin is not None or v.size <= 1:
                if v.pin is not None and v.size > 1:
                    pinned_by.setdefault(v.pin, []).append(where)
                return ("pin", v.size)
            return ("atom", v.id, v.size)
        kids = [resolve(p, where) for p in v.parts]
        if all(k[0] == "pin" for k in kids):
            return ("pin", v.size)
        kind = "prod" if v.kind == "prod" else "sum"
        flat = []
        for k in kids:
            flat.extend(k[1] if k[0] == kind else [k])
        merged = []
        for k in flat:  # neighbouring pinned parts merge into one
            if merged and k[0] == "pin" and merged[-1][0] == "pin":
                n = merged[-1][1] * k[1] if kind == "prod" else merged[-1][1] + k[1]
                merged[-1] = ("pin", n)
            elif not (kind == "prod" and k[0] == "pin" and k[1] == 1):
                merged.append(k)
        return merged[0] if len(merged) == 1 else (kind, tuple(merged))

    raw: dict[str, tuple] = {}
    for ph_name, keys in traced.tensor_names.items():
        node = placeholders.get(ph_name)
        ax = an.axes.get(node) if node is not None else None
        if not keys or not isinstance(ax, tuple):
            continue
        for key in keys:
            raw[key] = tuple(resolve(v, f"{key}[{i}]") for i, v in enumerate(ax))

    # name atoms by first appearance, in state_dict order
    sizes: dict[str, int] = {}
    for key in shapes:
        for axis, lay in enumerate(raw.get(key, ())):
            leaves = list(dict.fromkeys(_atoms(lay)))
            for k, (aid, n) in enumerate(leaves):
                if aid in atom_names:
                    continue
                name = f"{key}:{axis}" if lay[0] == "atom" else f"{key}:{axis}.{k}"
                atom_names[aid] = name
                sizes[name] = n
    return raw, atom_names, sizes, pinned_by


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _atoms(lay):
    if lay[0] == "atom":
        return [(lay[1], lay[2])]
    if lay[0] == "pin":
        return []
    out = []
    for c in lay[1]:
        out.extend(_atoms(c))
    return out
