"""Named boundary parts, predicate parts and outward normals, on every kind of domain; sampling.sample(normals=)."""

import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml_jax import sampling
from sciml_jax.geometry import METHODS, Box, Disk, Interval, LShape, Polygon, SpaceTime

ARROW = Polygon([(0, 0), (4, 1), (0, 2), (1, 1)])  # non-convex, counter-clockwise
DOMAINS = {
    "interval": Interval(-1.0, 2.0),
    "box2": Box((0.0, -1.0), (3.0, 1.0)),
    "box3": Box((0.0, 0.0, 0.0), (1.0, 2.0, 3.0)),
    "disk": Disk((1.0, -2.0), 0.5),
    "arrow": ARROW,
    "lshape": LShape(),
    "plate": Box((-1.0, -1.0), (1.0, 1.0)) - Disk((0.2, 0.1), 0.5),
    "lens": Disk((0.0, 0.0), 1.0) & Disk((1.0, 0.0), 1.0),
    "two_disks": Disk((0.0, 0.0), 1.0) | Disk((1.0, 0.0), 1.0),
    "st_box": SpaceTime(Box((-1.0, 0.0), (1.0, 2.0)), 1.0, 3.0),
    "st_plate": SpaceTime(Box((-1.0, -1.0), (1.0, 1.0)) - Disk((0.0, 0.0), 0.5), 0.0, 1.0),
    "box_inlet": Box((0.0, 0.0), (2.0, 1.0)).with_parts(inlet=lambda x: (x[:, 0] <= 0.0) & (x[:, 1] < 0.5)),
}


def _canonical_sets(dom):
    """Primary boundary set plus every part that is not an alias."""
    aliases = set(dom._part_aliases())
    return ["boundary"] + [f"boundary:{p}" for p in dom.boundary_parts if p not in aliases]


BOUNDARY_CASES = [(name, where) for name, dom in DOMAINS.items() for where in _canonical_sets(dom)]


def _scale(dom):
    lo, hi = dom.bounds()
    return float(np.max(hi - lo))


def test_part_names():
    assert Box((0, 0), (1, 1)).boundary_parts == (
        "x0_lo", "x0_hi", "x1_lo", "x1_hi", "left", "right", "bottom", "top",
    )  # fmt: skip
    assert DOMAINS["box3"].boundary_parts == ("x0_lo", "x0_hi", "x1_lo", "x1_hi", "x2_lo", "x2_hi", "left", "right")
    assert Interval(0, 1).boundary_parts == ("x0_lo", "x0_hi", "left", "right")
    assert Disk().boundary_parts == ("circle",)
    assert LShape().boundary_parts == tuple(f"edge{i}" for i in range(6))
    assert DOMAINS["st_box"].boundary_parts == Box((0, 0), (1, 1)).boundary_parts
    assert DOMAINS["lens"].boundary_parts == ("a", "b", "a.circle", "b.circle")
    assert DOMAINS["box_inlet"].boundary_parts[-1] == "inlet"
    # point_sets is unchanged; all_point_sets appends the parts, so seeds of the primary sets do not move
    dom = DOMAINS["st_box"]
    assert dom.point_sets == ("interior", "boundary", "initial")
    assert dom.all_point_sets[:3] == dom.point_sets and "boundary:top" in dom.all_point_sets


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name,where", BOUNDARY_CASES)
def test_parts_sample_on_part_with_outward_unit_normals(name, where, method):
    dom = DOMAINS[name]
    x, n = dom.sample(where, 19, method, seed=4, normals=True)
    assert x.shape == n.shape == (19, dom.dim) and x.dtype == n.dtype == np.float64
    assert dom.contains(x, where).all() and dom.contains(x, "boundary").all()
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, rtol=0, atol=1e-12)
    # the same points without normals, and the same normals from normals() (no sampled point sits on a corner:
    # a probability-zero event, except on the 0-dimensional faces of an interval, which are their own parts)
    np.testing.assert_array_equal(dom.sample(where, 19, method, seed=4), x)
    if dom.dim > 1:
        np.testing.assert_allclose(dom.normals(x, where), n, rtol=0, atol=1e-12)
    # outward: a step h along n leaves the closed domain, a step back stays inside. h = 1e-6 * size is far above
    # the membership tolerance (1e-12 + 16 eps) and far below every feature size of these domains.
    h = 1e-6 * _scale(dom)
    assert not dom.contains(x + h * n).any()
    assert dom.contains(x - h * n).all()
    if isinstance(dom, SpaceTime):
        assert np.all(n[:, -1] == 0.0)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name,where", BOUNDARY_CASES)
def test_parts_are_deterministic_and_nested(name, where, method):
    dom = DOMAINS[name]
    a = dom.sample(where, 24, method, seed=9)
    np.testing.assert_array_equal(a, dom.sample(where, 24, method, seed=9))
    if method != "lhs":  # nested prefixes survive the rejection of thinned pieces (predicate, CSG)
        np.testing.assert_array_equal(dom.sample(where, 9, method, seed=9), a[:9])


def test_aliases_name_the_same_points_and_faces_partition_the_box():
    box = DOMAINS["box2"]
    for alias, canon in (("left", "x0_lo"), ("right", "x0_hi"), ("bottom", "x1_lo"), ("top", "x1_hi")):
        np.testing.assert_array_equal(
            box.sample(f"boundary:{alias}", 7, "sobol", 1), box.sample(f"boundary:{canon}", 7, "sobol", 1)
        )
    left = box.sample("boundary:left", 50, "halton", 2)
    assert np.all(left[:, 0] == 0.0)
    top, nt = box.sample("boundary:top", 5, "uniform", 2, normals=True)
    assert np.all(top[:, 1] == 1.0) and np.all(nt == [0.0, 1.0])
    measures = [box.measure(f"boundary:{p}") for p in box.boundary_parts[:4]]
    assert measures == [2.0, 2.0, 3.0, 3.0] and sum(measures) == box.measure("boundary") == 10.0
    # every boundary point lies on at least one face part, interior points on none
    xb = box.sample("boundary", 200, "sobol", 3)
    on = np.stack([box.contains(xb, f"boundary:{p}") for p in box.boundary_parts[:4]])
    assert (
        on.any(axis=0).all()
        and not np.stack(
            [box.contains(box.sample("interior", 50), f"boundary:{p}") for p in box.boundary_parts[:4]]
        ).any()
    )
    iv = DOMAINS["interval"]
    xr, nr = iv.sample("boundary:right", 3, normals=True)
    np.testing.assert_array_equal(xr, [[2.0]] * 3) and np.testing.assert_array_equal(nr, [[1.0]] * 3)


def test_spacetime_parts_are_space_parts_times_time_interval():
    st = DOMAINS["st_box"]
    x = st.sample("boundary:bottom", 64, "sobol", 0)
    assert np.all(x[:, 1] == 0.0) and np.all((x[:, 2] > 1.0) & (x[:, 2] <= 3.0))
    assert st.measure("boundary:bottom") == 2.0 * 2.0  # face length x time span
    st_plate = DOMAINS["st_plate"]
    xh, nh = st_plate.sample("boundary:b", 32, "halton", 1, normals=True)
    r = np.linalg.norm(xh[:, :2], axis=1)
    np.testing.assert_allclose(r, 0.5, atol=1e-14)
    np.testing.assert_allclose(nh[:, :2], -xh[:, :2] / r[:, None], atol=1e-14)  # the hole's normal points inward
    x0 = st_plate.sample("initial", 40, "sobol", 2)
    assert np.all(x0[:, 2] == 0.0) and np.all(np.linalg.norm(x0[:, :2], axis=1) > 0.5)


def test_normals_at_given_points_and_corner_convention():
    box = Box((0.0, 0.0), (2.0, 1.0))
    pts = np.array([[0.0, 0.5], [2.0, 0.25], [1.0, 0.0], [1.0, 1.0], [2.0, 1.0], [0.0, 0.0]])
    s = np.sqrt(0.5)
    np.testing.assert_allclose(box.normals(pts), [[-1, 0], [1, 0], [0, -1], [0, 1], [s, s], [-s, -s]], atol=1e-15)
    np.testing.assert_array_equal(box.normals(pts[:1], "boundary:left"), [[-1.0, 0.0]])
    L = LShape()
    # the re-entrant corner: bisector of edge1 (normal +x) and edge2 (normal -y), pointing into the removed quadrant
    np.testing.assert_allclose(L.normals(np.zeros(2)), [s, -s], atol=1e-15)
    np.testing.assert_allclose(L.normals([[-1.0, -1.0]]), [[-s, -s]], atol=1e-15)
    disk = Disk((1.0, 1.0), 2.0)
    np.testing.assert_allclose(disk.normals([[1.0, 3.0], [-1.0, 1.0]]), [[0, 1], [-1, 0]], atol=1e-15)
    st = SpaceTime(Interval(0.0, 1.0), 0.0, 1.0)
    np.testing.assert_array_equal(st.normals([[0.0, 0.3], [1.0, 0.9]]), [[-1.0, 0.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match=r"normals: 1 of 2 points are not on 'boundary' .*row 1, \[1.0, 0.5\]"):
        box.normals([[0.0, 0.5], [1.0, 0.5]])
    with pytest.raises(ValueError, match=r"normals are defined on boundary point sets .* got 'interior'"):
        box.normals([[0.0, 0.5]], "interior")
    with pytest.raises(ValueError, match=r"normals=True needs a boundary point set .* got 'initial'"):
        st.sample("initial", 4, normals=True)


def test_predicate_part_exact_count_deterministic_and_estimated_length():
    dom = DOMAINS["box_inlet"]
    for method in METHODS:
        x, n = dom.sample("boundary:inlet", 37, method, seed=2, normals=True)
        assert x.shape == (37, 2) and np.all(x[:, 0] == 0.0) and np.all((x[:, 1] >= 0.0) & (x[:, 1] < 0.5))
        assert np.all(n == [-1.0, 0.0])
    # the kept fraction is estimated with 2^14 Sobol probes of each face; for an interval [0, 0.5) of a unit face
    # a scrambled Sobol count is within a few points of 2^13, i.e. far inside the i.i.d. 4-sigma bound used here
    sigma = np.sqrt(0.25 / 2**14)
    assert abs(dom.measure("boundary:inlet") - 0.5) < 4 * sigma
    assert dom.contains([[0.0, 0.25], [0.0, 0.75], [0.5, 0.0]], "boundary:inlet").tolist() == [True, False, False]
    # a predicate part of the space is a part of the space-time boundary, evaluated on the spatial coordinates
    st = SpaceTime(dom, 0.0, 2.0)
    xs = st.sample("boundary:inlet", 16, "sobol", 0)
    assert np.all(xs[:, 0] == 0.0) and np.all(xs[:, 1] < 0.5) and np.all(xs[:, 2] > 0.0)
    # and of a CSG domain built from it, with the operand's prefix
    hole = dom - Disk((1.0, 0.5), 0.25)
    xi = hole.sample("boundary:a.inlet", 16, "halton", 0)
    assert np.all(xi[:, 0] == 0.0) and np.all(xi[:, 1] < 0.5)
    # picklable even after sampling (the piece cache with its closures is not pickled)
    plate = DOMAINS["plate"]
    plate.sample("boundary", 4)
    again = pickle.loads(pickle.dumps(plate))
    assert again == plate and np.array_equal(again.sample("boundary", 8, "sobol"), plate.sample("boundary", 8, "sobol"))


def test_predicate_part_validation():
    box = Box((0.0, 0.0), (1.0, 1.0))
    with pytest.raises(ValueError, match=r"predicate of part 'nowhere' selects \(almost\) nothing"):
        box.with_parts(nowhere=lambda x: x[:, 0] > 5.0)
    with pytest.raises(ValueError, match=r"predicate of part 'corner' selects \(almost\) nothing"):
        box.with_parts(corner=lambda x: (x[:, 0] == 0.0) & (x[:, 1] == 0.0))  # a single point: zero length
    with pytest.raises(ValueError, match=r"part 'left' already exists; existing parts: x0_lo, .*, top"):
        box.with_parts(left=lambda x: x[:, 0] == 0)
    with pytest.raises(
        ValueError, match=r"part 'p' must return a bool array of shape \(16384,\) .* got a float64 array"
    ):
        box.with_parts(p=lambda x: x[:, 0])
    with pytest.raises(ValueError, match=r"part 'p' needs a callable predicate"):
        box.with_parts(p=3)
    with pytest.raises(ValueError, match=r"give at least one part"):
        box.with_parts()
    with pytest.raises(
        ValueError,
        match=r"unknown boundary part 'front' of this Box; allowed parts: x0_lo, x0_hi, x1_lo, x1_hi, left, right, bottom, top$",
    ):
        box.sample("boundary:front", 4)
    with pytest.raises(
        ValueError, match=r"unknown boundary part 'edge9' of this Polygon; allowed parts: edge0, edge1, edge2, edge3$"
    ):
        ARROW.contains([[0.0, 0.0]], "boundary:edge9")
    with pytest.raises(ValueError, match=r"normals must be True or False, got 'yes'"):
        box.sample("boundary", 4, normals="yes")


def test_static_sample_entries_for_parts_and_normals():
    dom = DOMAINS["st_box"]
    counts = {"interior": 8, "boundary:left": 4, "boundary": 6, "initial": 5}
    plain = sampling.sample(dom, counts, "sobol", 3)
    both = sampling.sample(dom, counts, "sobol", 3, normals=("boundary:left", "boundary"))
    assert list(both) == list(counts)
    for name in ("interior", "initial"):
        np.testing.assert_array_equal(both[name], plain[name])
    for name in ("boundary:left", "boundary"):
        x, n = both[name]
        assert x.shape == n.shape == (counts[name], 3) and x.dtype == n.dtype == jnp.result_type(float)
        np.testing.assert_array_equal(x, plain[name])
        np.testing.assert_array_equal(n, dom.normals(np.asarray(x), name))
    # the primary sets keep their seeds: index in point_sets == index in all_point_sets
    key = jax.random.key(3)
    for name in dom.point_sets:
        sub = jax.random.fold_in(key, dom.point_sets.index(name))
        seed = int(jax.random.randint(sub, (), 0, 2**31 - 1, dtype=jnp.int32))
        np.testing.assert_array_equal(plain[name], dom.sample(name, counts[name], "sobol", seed))
    single = sampling.sample(dom, {"boundary:top": 3}, "halton", 0, normals="boundary:top")
    assert isinstance(single["boundary:top"], tuple) and np.all(np.asarray(single["boundary:top"][1]) == [0, 1, 0])
    with pytest.raises(ValueError, match=r"normals: 'interior' is not a boundary point set"):
        sampling.sample(dom, {"interior": 4}, normals=("interior",))
    with pytest.raises(ValueError, match=r"normals: 'boundary' is not an entry of counts; entries: 'interior'"):
        sampling.sample(dom, {"interior": 4}, normals=("boundary",))
    with pytest.raises(
        ValueError, match=r"counts: unknown point set 'boundary:front' .* allowed: 'interior', .*'boundary:top'"
    ):
        sampling.sample(dom, {"boundary:front": 4})
