"""The axis-term algebra: refinement, common refinement, direct sums, pinning."""

from __future__ import annotations

import pytest

from rebasin_fx.analysis.terms import Terms
from rebasin_fx.analysis.rules.reshape import reshape_blocks


def leaves(t, v):
    return [(x.size, x.pin is not None) for x in t.leaves(v)]


def test_atom_refined_into_product_everywhere():
    t = Terms()
    q = t.new(128)
    other_use = t.sum([q, t.new(8)])  # q also occurs inside a sum
    h, d = t.new(4), t.new(32)
    t.unify(q, t.product([h, d]), "view")
    assert [x.size for x in t.leaves(q)] == [4, 32]
    assert [x.size for x in t.leaves(other_use)] == [4, 32, 8]


def test_common_refinement_of_two_factorisations():
    t = Terms()
    x = t.new(64)
    t.unify(x, t.product([t.new(4), t.new(16)]), "a")
    t.unify(x, t.product([t.new(8), t.new(8)]), "b")
    assert [s for s, _ in leaves(t, x)] == [4, 2, 8]
    assert not any(p for _, p in leaves(t, x))


def test_no_common_refinement_pins():
    t = Terms()
    x = t.new(12)
    t.unify(x, t.product([t.new(3), t.new(4)]), "a")
    t.unify(x, t.product([t.new(2), t.new(6)]), "b")  # 3|4 vs 2|6: 3 does not divide 2
    assert all(p for _, p in leaves(t, x))


def test_sums_align_by_boundaries():
    t = Terms()
    a, b, c = t.new(3), t.new(5), t.new(8)
    s1 = t.sum([a, b])
    s2 = t.sum([t.new(3), t.new(5)])
    t.unify(s1, s2, "cat")
    assert t.find(t.leaves(s2)[0]) is t.find(a)
    t.unify(c, s1, "view")  # an atom meeting a sum becomes that sum
    assert [x.size for x in t.leaves(c)] == [3, 5]


def test_sum_refined_at_finer_boundaries():
    t = Terms()
    x = t.new(8)
    t.unify(x, t.sum([t.new(4), t.new(4)]), "chunk")
    t.unify(x, t.sum([t.new(2), t.new(6)]), "slice")
    assert [s for s, _ in leaves(t, x)] == [2, 2, 4]


def test_pin_flows_through_unions_and_refinements():
    t = Terms()
    a, b = t.new(6), t.new(6)
    t.unify(a, b, "add")
    t.pin(b, "output")
    assert t.is_pinned(a)
    c = t.new(6)
    t.unify(c, t.product([t.new(2), t.new(3)]), "view")
    t.pin(c, "x")
    assert t.is_pinned(c) and all(p for _, p in leaves(t, c))
    d = t.pinned(6, "input")
    e = t.product([t.new(2), t.new(3)])
    t.unify(d, e, "view")
    assert t.is_pinned(e)


def test_size_one_factors_dropped():
    t = Terms()
    a = t.new(5)
    assert t.product([t.new(1), a, t.new(1)]) is a


@pytest.mark.parametrize(
    "src,dst,blocks",
    [
        ((2, 3, 4), (2, 12), [([0], [0]), ([1, 2], [1])]),
        ((2, 12), (2, 3, 4), [([0], [0]), ([1], [1, 2])]),
        ((6, 4), (4, 6), [([0, 1], [0, 1])]),
        ((2, 1, 3), (2, 3, 1), [([0], [0]), ([2], [1])]),
        ((8, 16, 4, 4), (8, 256), [([0], [0]), ([1, 2, 3], [1])]),
    ],
)
def test_reshape_blocks(src, dst, blocks):
    assert reshape_blocks(src, dst) == blocks


def test_sum_meets_product_distributes():
    """(A (+) B) meeting 2 x K (a channel shuffle's view): both branches become K."""
    t = Terms()
    a, b = t.new(4), t.new(4)
    s = t.sum([a, b])
    g, k = t.new(2), t.new(4)
    t.unify(s, t.product([g, k]), "view")
    assert t.find(a) is t.find(k) and t.find(b) is t.find(k)


def test_halves_of_an_interleaved_axis_stay_interleaved():
    """K x pinned(2) cut in halves: (K1 x 2) (+) (K2 x 2)."""
    t = Terms()
    k = t.new(8)
    z = t.product([k, t.pinned(2, "shuffle")])
    h1, h2 = t.new(8), t.new(8)
    t.unify(z, t.sum([h1, h2]), "chunk")
    assert [x.size for x in t.leaves(h1)] == [4, 2]
    assert [x.size for x in t.leaves(k)] == [4, 4]
    assert not t.is_pinned(h1) and not t.is_pinned(h2)
