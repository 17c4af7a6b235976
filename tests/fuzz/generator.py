"""Random models from a small grammar, each with the symmetry it was built with (the oracle).

A recipe is plain data (mode, input width, blocks), so hypothesis can draw and
shrink it and ``benchmarks/fuzz.py`` can draw many with a seeded RNG. ``build``
turns it into an ``nn.Module`` and an ``Oracle``: every hidden width the model
creates is a class in a union-find (residual adds and element-wise products tie
widths), pinned when an op without a rule touches it.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

WIDTHS = (1, 2, 3, 4, 6, 8)
ACTS = ("relu", "gelu", "tanh", "none")
VEC_OPS = ("linear", "res", "norm", "cat", "glu", "gate", "unknown")
SEQ_OPS = VEC_OPS + ("attn", "attn", "mean", "tmix")
IMG_OPS = ("conv", "gconv", "dwconv", "res_conv", "bn", "gn", "pool", "se", "unknown", "mean", "flatten")
TOKENS = 5  # sequence length


@dataclasses.dataclass
class Oracle:
    """The symmetry a model was built with, as atoms (permutation variables) in a union-find.

    A width is a list of atoms (a row-major product). Tying two widths refines
    both to their common refinement (a GroupNorm or grouped conv makes a width
    ``groups x per_group``), then unifies them atom by atom; where no common
    refinement exists, everything involved is pinned. ``first[a]`` = a (state
    key, axis) that is exactly atom ``a``'s units, valid while ``a`` is not
    refined.
    """

    parent: list = dataclasses.field(default_factory=list)
    size: list = dataclasses.field(default_factory=list)
    pinned: list = dataclasses.field(default_factory=list)
    first: dict = dataclasses.field(default_factory=dict)
    children: dict = dataclasses.field(default_factory=dict)  # refined root -> [outer atom, inner atom]
    extra: list = dataclasses.field(default_factory=list)  # sizes of free groups inside attention blocks

    def new(self, n: int, where=None) -> int:
        self.parent.append(len(self.parent))
        self.size.append(n)
        self.pinned.append(n <= 1)
        if where is not None:
            self.first[len(self.parent) - 1] = where
        return len(self.parent) - 1

    def find(self, a: int) -> int:
        while self.parent[a] != a:
            a = self.parent[a]
        return a

    def leaves(self, width) -> list[int]:
        out = []
        for a in width:
            r = self.find(a)
            out += self.leaves(self.children[r]) if r in self.children else [r]
        return out

    def _split(self, leaf: int, outer: int) -> tuple[int, int]:
        x, y = self.new(outer), self.new(self.size[leaf] // outer)
        if self.pinned[leaf]:
            self.pinned[x] = self.pinned[y] = True
        self.children[leaf] = [x, y]
        return x, y

    def _refine(self, leaves, bounds):
        out, p = [], 1
        for leaf in leaves:
            end, cur, cp = p * self.size[leaf], leaf, p
            for b in sorted(b for b in bounds if p < b < end):
                if b % cp or end % b:
                    return None
                x, cur = self._split(cur, b // cp)
                out.append(x)
                cp = b
            out.append(cur)
            p = end
        return out

    def _bounds(self, leaves) -> set[int]:
        out, p = set(), 1
        for leaf in leaves[:-1]:
            p *= self.size[leaf]
            out.add(p)
        return out

    def tie_widths(self, w1, w2) -> None:
        l1, l2 = self.leaves(w1), self.leaves(w2)
        bounds = self._bounds(l1) | self._bounds(l2)
        r1, r2 = self._refine(l1, bounds), self._refine(l2, bounds)
        if r1 is None or r2 is None:
            self.pin_width(w1)
            self.pin_width(w2)
            return
        r1, r2 = [a for a in r1 if self.size[a] > 1], [a for a in r2 if self.size[a] > 1]
        assert [self.size[a] for a in r1] == [self.size[a] for a in r2]
        for a, b in zip(r1, r2):
            ra, rb = self.find(a), self.find(b)
            if ra != rb:
                self.parent[rb] = ra
                self.pinned[ra] = self.pinned[ra] or self.pinned[rb]

    def cut(self, width, groups: int) -> None:
        """A GroupNorm over ``width``: its units become groups x per_group (row-major)."""
        n = 1
        for leaf in self.leaves(width):
            n *= self.size[leaf]
        if 1 < groups < n:
            self.tie_widths(width, [self.new(groups), self.new(n // groups)])

    def pin(self, a: int) -> None:
        self.pin_width([a])

    def pin_width(self, width) -> None:
        for leaf in self.leaves(width):
            self.pinned[leaf] = True

    def free_sizes(self) -> list[int]:
        roots = {self.find(a) for a in range(len(self.parent))}
        leaves = [r for r in roots if r not in self.children and not self.pinned[r] and self.size[r] > 1]
        return sorted([self.size[r] for r in leaves] + self.extra)

    def free_members(self) -> list[tuple[tuple[str, int], int]]:
        out = []
        for a, where in self.first.items():
            r = self.find(a)
            if r not in self.children and not self.pinned[r] and self.size[r] > 1:
                out.append((where, self.size[r]))
        return out


def _act(name: str):
    return {"relu": F.relu, "gelu": F.gelu, "tanh": torch.tanh, "none": lambda x: x}[name]


class Block(nn.Module):
    """One op of the grammar; ``forward`` reads ``self.op`` (set at build time)."""

    def __init__(self, op: tuple):
        super().__init__()
        self.op = op

    def forward(self, x):
        kind = self.op[0]
        if kind == "linear":
            return _act(self.op[2])(self.lin(x))
        if kind == "res":
            return x + self.l2(F.relu(self.l1(x)))
        if kind == "norm":
            return self.norm(x)
        if kind == "cat":
            return F.gelu(torch.cat([self.la(x), self.lb(x)], -1))
        if kind == "glu":
            a, b = self.lin(x).chunk(2, -1)
            return a * torch.sigmoid(b)
        if kind == "gate":
            return x * torch.sigmoid(self.lin(x))
        if kind == "unknown":
            return torch.sort(x, dim=-1 if x.dim() < 4 else 1).values
        if kind == "attn":
            return x + self.attention(x)
        if kind == "mean":
            return x.mean(1) if x.dim() == 3 else x.mean((2, 3))
        if kind == "conv":
            return _act(self.op[3])(self.conv(x))
        if kind in ("dwconv", "gconv"):
            return F.relu(self.conv(x))
        if kind == "res_conv":
            return x + self.c2(F.relu(self.c1(x)))
        if kind == "bn":
            return self.bn(x)
        if kind == "gn":
            return self.gn(x)
        if kind == "tmix":  # token mixing (MLP-Mixer): a hidden layer across the sequence axis
            return x + self.t2(F.relu(self.t1(x.transpose(1, 2)))).transpose(1, 2)
        if kind == "pool":
            return F.avg_pool2d(x, 2, ceil_mode=True)
        if kind == "se":
            s = x.mean((2, 3))
            return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))[:, :, None, None]
        if kind == "flatten":
            return x.flatten(1)
        raise ValueError(kind)

    def attention(self, x):
        _, heads, dim, kv, explicit = self.op
        B, T, _ = x.shape
        q = self.q(x).view(B, T, heads, dim).transpose(1, 2)
        k = self.k(x).view(B, T, kv, dim).transpose(1, 2)
        v = self.v(x).view(B, T, kv, dim).transpose(1, 2)
        if kv != heads:
            k = k.repeat_interleave(heads // kv, dim=1)
            v = v.repeat_interleave(heads // kv, dim=1)
        if explicit:
            att = torch.softmax(q @ k.transpose(-1, -2) / dim ** 0.5, -1)
            y = att @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v)
        return self.o(y.transpose(1, 2).reshape(B, T, heads * dim))


class Generated(nn.Module):
    def __init__(self, recipe: dict):
        super().__init__()
        self.recipe = recipe
        self.blocks = nn.ModuleList()
        if recipe["mode"] == "tokens":
            self.emb = nn.Embedding(recipe["vocab"], recipe["c0"])

    def forward(self, x):
        if self.recipe["mode"] == "tokens":
            x = self.emb(x)
        for b in self.blocks:
            x = b(x)
        if x.dim() == 4:
            x = x.mean((2, 3))
        return self.head(x)


def build(recipe: dict) -> tuple[nn.Module, Oracle, torch.Tensor]:
    """(model, oracle, example input) for a recipe; raises ValueError for an ill-formed recipe."""
    torch.manual_seed(recipe.get("seed", 0))
    model = Generated(recipe)
    o = Oracle()
    mode = recipe["mode"]
    c = recipe["c0"]
    if mode == "tokens":
        cls = o.new(c, ("emb.weight", 1))
        dims = "seq"
        x = torch.randint(0, recipe["vocab"], (2, TOKENS))
    else:
        cls = o.new(c)
        o.pin(cls)  # the input's features are the model's input: pinned
        dims = {"vec": "vec", "seq": "seq", "img": "img"}[mode]
        x = torch.randn({"vec": (3, c), "seq": (2, TOKENS, c), "img": (2, c, 6, 6)}[mode])
    factors = [cls]  # the current feature axis: a product of classes (flatten makes it C x pinned HW)
    for i, op in enumerate(recipe["blocks"]):
        p = f"blocks.{i}"
        b = Block(op)
        kind = op[0]
        allowed = {"vec": VEC_OPS, "seq": SEQ_OPS, "img": IMG_OPS}[dims]
        if kind not in allowed:
            raise ValueError(f"{kind} in {dims} mode")
        plain = all(isinstance(f, int) for f in factors)  # a product of atoms (no sum, no pinned part)
        if kind == "linear":
            b.lin = nn.Linear(c, op[1])
            c = op[1]
            factors = [o.new(c, (f"{p}.lin.weight", 0))]
        elif kind == "res":
            b.l1, b.l2 = nn.Linear(c, op[1]), nn.Linear(op[1], c)
            o.new(op[1], (f"{p}.l1.weight", 0))
            if plain:
                o.tie_widths(factors, [o.new(c, (f"{p}.l2.weight", 0))])
        elif kind == "norm":
            b.norm = nn.LayerNorm(c) if op[1] == "layer" else nn.RMSNorm(c)
        elif kind == "cat":
            b.la, b.lb = nn.Linear(c, op[1]), nn.Linear(c, op[2])
            ca, cb = o.new(op[1], (f"{p}.la.weight", 0)), o.new(op[2], (f"{p}.lb.weight", 0))
            c = op[1] + op[2]
            factors = [("sum", ca, cb)]
        elif kind == "glu":
            b.lin = nn.Linear(c, 2 * op[1])
            c = op[1]
            factors = [o.new(c)]  # the halves share one permutation: a sum of two copies
        elif kind == "gate":
            b.lin = nn.Linear(c, c)
            if plain:
                o.tie_widths(factors, [o.new(c, (f"{p}.lin.weight", 0))])
            else:
                raise ValueError("gate after cat/flatten")
        elif kind == "unknown":
            o.pin_width(_classes(factors))
        elif kind == "attn":
            _, heads, dim, kv, _ = op
            if not plain or heads % kv:
                raise ValueError("attention needs a plain stream and kv | heads")
            b.q, b.k, b.v = nn.Linear(c, heads * dim), nn.Linear(c, kv * dim), nn.Linear(c, kv * dim)
            b.o = nn.Linear(heads * dim, c)
            o.tie_widths(factors, [o.new(c, (f"{p}.o.weight", 0))])
            o.extra += [n for n in (kv, heads // kv, dim, dim) if n > 1]
        elif kind == "mean":
            dims = "vec"
        elif kind == "conv":
            b.conv = nn.Conv2d(c, op[1], op[2], padding=op[2] // 2)
            c = op[1]
            factors = [o.new(c, (f"{p}.conv.weight", 0))]
        elif kind == "gconv":  # groups permute as a whole, one within-group permutation for all groups
            g, m = op[1], op[2]
            if c % g:
                raise ValueError("groups must divide the channels")
            b.conv = nn.Conv2d(c, g * m, 3, padding=1, groups=g)
            shared = o.new(g)
            o.tie_widths(factors, [shared, o.new(c // g)])
            c = g * m
            factors = [shared, o.new(m)]
        elif kind == "dwconv":
            b.conv = nn.Conv2d(c, c, 3, padding=1, groups=c)
            if plain:
                o.tie_widths(factors, [o.new(c, (f"{p}.conv.weight", 0))])
        elif kind == "res_conv":
            b.c1, b.c2 = nn.Conv2d(c, op[1], 3, padding=1), nn.Conv2d(op[1], c, 3, padding=1)
            o.new(op[1], (f"{p}.c1.weight", 0))
            o.tie_widths(factors, [o.new(c, (f"{p}.c2.weight", 0))])
        elif kind == "bn":
            b.bn = nn.BatchNorm2d(c)
        elif kind == "gn":
            if c % op[1]:
                raise ValueError("GroupNorm groups must divide the channels")
            b.gn = nn.GroupNorm(op[1], c)
            o.cut(factors, op[1])
        elif kind == "tmix":
            b.t1, b.t2 = nn.Linear(TOKENS, op[1]), nn.Linear(op[1], TOKENS)
            o.new(op[1], (f"{p}.t1.weight", 0))
        elif kind == "se":
            b.fc1, b.fc2 = nn.Linear(c, op[1]), nn.Linear(op[1], c)
            o.new(op[1], (f"{p}.fc1.weight", 0))
            o.tie_widths(factors, [o.new(c, (f"{p}.fc2.weight", 0))])
        elif kind == "flatten":
            if x.dim() != 4:
                raise ValueError("flatten needs an image")
            hw = _spatial(recipe, i)
            factors = factors + [("pin", hw)]
            c = c * hw
            dims = "vec"
        model.blocks.append(b)
    if mode == "tokens" and recipe.get("tied", False) and dims == "seq" and factors == [cls]:
        model.head = nn.Linear(c, recipe["vocab"], bias=False)
        model.head.weight = model.emb.weight
    else:
        model.head = nn.Linear(c, recipe.get("out", 3))
    return model.eval(), o, x


def _classes(factors):
    out = []
    for f in factors:
        if isinstance(f, tuple):
            out += [g for g in f[1:] if isinstance(g, int)] if f[0] == "sum" else []
        else:
            out.append(f)
    return out


def _spatial(recipe, upto):
    h = 6
    for op in recipe["blocks"][:upto]:
        if op[0] == "pool":
            h = (h + 1) // 2
    return h * h


def random_recipe(rng, max_blocks: int = 6) -> dict:
    """A recipe drawn with ``rng``: a ``random.Random`` (the long fuzz run) or ``Drawn`` (hypothesis)."""
    mode = rng.choice(("vec", "seq", "img", "tokens"))
    w = lambda: rng.choice(WIDTHS)  # noqa: E731
    blocks = []
    dims = {"vec": "vec", "seq": "seq", "img": "img", "tokens": "seq"}[mode]
    for _ in range(rng.randint(1, max_blocks)):
        kind = rng.choice({"vec": VEC_OPS, "seq": SEQ_OPS, "img": IMG_OPS}[dims])
        blocks.append(draw_op(kind, w, rng))
        if kind in ("mean", "flatten"):
            dims = "vec"
    return {"mode": mode, "c0": rng.choice((2, 3, 4, 6)), "vocab": rng.choice((5, 7)), "tied": rng.random() < 0.5,
            "blocks": blocks, "seed": rng.randrange(1000)}


class Drawn:
    """The ``random.Random`` methods ``random_recipe`` uses, drawn from hypothesis (so failures shrink)."""

    def __init__(self, draw):
        from hypothesis import strategies as st

        self.draw, self.st = draw, st

    def choice(self, seq):
        return self.draw(self.st.sampled_from(list(seq)))

    def randint(self, a, b):
        return self.draw(self.st.integers(a, b))

    def randrange(self, n):
        return self.draw(self.st.integers(0, n - 1))

    def random(self):
        return 0.0 if self.draw(self.st.booleans()) else 0.99


def draw_op(kind, w, rng):
    if kind == "linear":
        return (kind, w(), rng.choice(ACTS))
    if kind in ("res", "glu", "res_conv", "se", "tmix"):
        return (kind, w())
    if kind == "norm":
        return (kind, rng.choice(("layer", "rms")))
    if kind == "gn":
        return (kind, rng.choice((1, 2, 3, 4)))
    if kind == "gconv":
        return (kind, rng.choice((2, 3, 4)), rng.choice((1, 2, 3)))
    if kind == "cat":
        return (kind, w(), w())
    if kind == "attn":
        kv = rng.choice((1, 2))
        return (kind, kv * rng.choice((1, 2)), rng.choice((1, 2, 4)), kv, rng.random() < 0.5)
    if kind == "conv":
        return (kind, w(), rng.choice((1, 3)), rng.choice(ACTS))
    return (kind,)
