"""Domains: point sets lie where they should, are reproducible, well spread and correctly allocated."""

import dataclasses

import numpy as np
import pytest
from scipy import stats
from scipy.stats import qmc

from sciml_jax.geometry import METHODS, Box, Disk, Domain, Interval, SpaceTime

DOMAINS = {
    "interval": Interval(-1.0, 2.0),
    "box1": Box((0.5,), (1.5,)),
    "box2": Box((0.0, -1.0), (3.0, 1.0)),
    "box3": Box((0.0, 0.0, 0.0), (1.0, 2.0, 3.0)),
    "disk": Disk((1.0, -2.0), 0.5),
    "st_interval": SpaceTime(Interval(0.0, 1.0), 0.0, 0.5),
    "st_box": SpaceTime(Box((-1.0, 0.0), (1.0, 2.0)), 1.0, 3.0),
    "st_disk": SpaceTime(Disk(), 0.0, 2.0),
}
CASES = [(name, where) for name, dom in DOMAINS.items() for where in dom.point_sets]


def _unit_image(dom, x):
    """Inverse of the domain's interior map: points back to the unit cube (independent re-derivation)."""
    if isinstance(dom, SpaceTime):
        u_space = _unit_image(dom.space, x[:, :-1])
        return np.column_stack([u_space, (dom.t1 - x[:, -1]) / (dom.t1 - dom.t0)])
    if isinstance(dom, Disk):
        z = x - np.array(dom.center)
        r2 = np.sum(z**2, axis=1) / dom.radius**2
        theta = np.mod(np.arctan2(z[:, 1], z[:, 0]), 2 * np.pi) / (2 * np.pi)
        return np.column_stack([r2, theta])
    lo, hi = dom.bounds()
    return (x - lo) / (hi - lo)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name,where", CASES)
def test_samples_lie_in_their_set_with_exact_shape(name, where, method):
    dom = DOMAINS[name]
    x = dom.sample(where, 37, method, seed=3)  # 37: not a power of two (Sobol without balance)
    assert x.shape == (37, dom.dim) and x.dtype == np.float64
    assert np.all(np.isfinite(x))
    assert dom.contains(x, where).all()
    lo, hi = dom.bounds()
    assert np.all(x >= lo - 1e-12) and np.all(x <= hi + 1e-12)
    if isinstance(dom, SpaceTime):
        t = x[:, -1]
        if where == "initial":
            assert np.all(t == dom.t0)
        else:  # interior and boundary are space-part x (t0, t1]
            assert np.all(t > dom.t0) and np.all(t <= dom.t1)
    if where == "interior" and not isinstance(dom, SpaceTime):
        # interior points are not on the boundary (probability-one statement; exact zeros are ~2^-52 events)
        assert not dom.contains(x, "boundary").any()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name,where", CASES)
def test_same_seed_same_points_different_seed_different_points(name, where, method):
    dom = DOMAINS[name]
    a = dom.sample(where, 16, method, seed=7)
    np.testing.assert_array_equal(a, dom.sample(where, 16, method, seed=7))
    b = dom.sample(where, 16, method, seed=8)
    if dom.dim == 1 and where == "boundary":
        np.testing.assert_array_equal(a, b)  # the two end points, alternating: nothing random left
    else:
        assert not np.allclose(a, b)


@pytest.mark.parametrize("method", ["uniform", "sobol", "halton"])
@pytest.mark.parametrize("name,where", CASES)
def test_smaller_draw_is_prefix_of_larger(name, where, method):
    dom = DOMAINS[name]
    np.testing.assert_array_equal(dom.sample(where, 23, method, 5), dom.sample(where, 64, method, 5)[:23])


@pytest.mark.parametrize("name", ["box2", "box3", "disk", "st_interval", "st_box", "st_disk"])
def test_quasi_random_interior_has_lower_discrepancy_than_uniform(name):
    dom = DOMAINS[name]

    def mean_cd(method):
        # centered L2 discrepancy of the unit-cube image, averaged over 8 seeds
        images = [_unit_image(dom, dom.sample("interior", 128, method, s)) for s in range(8)]
        return np.mean([qmc.discrepancy(np.clip(u, 0, 1)) for u in images])

    uniform = mean_cd("uniform")
    for method in ("sobol", "halton", "lhs"):
        # measured ratios are 8x (LHS) to 70x (Sobol); require at least 2x so a broken map or engine fails
        assert mean_cd(method) < 0.5 * uniform, method


def _face_counts(dom, x):
    """Number of points on each face (axis 0 lo, axis 0 hi, axis 1 lo, ...), identified by exact coordinates."""
    lo, hi = dom.bounds()
    return np.array([[np.sum(x[:, a] == v) for v in (lo[a], hi[a])] for a in range(dom.dim)]).ravel()


@pytest.mark.parametrize("method", METHODS)
def test_box_boundary_faces_get_points_in_proportion_to_area(method):
    dom = DOMAINS["box3"]  # face areas 6, 6, 3, 3, 2, 2
    lo, hi = dom.bounds()
    ext = hi - lo
    area = np.repeat([np.prod(np.delete(ext, a)) for a in range(3)], 2)
    for n in (1, 2, 7, 31, 100, 257):
        counts = _face_counts(dom, dom.sample("boundary", n, method, seed=n))
        assert counts.sum() == n  # every point on exactly one face (no edge points with probability one)
        # deterministic house-monotone apportionment: every face within one point of its quota n * area / total
        np.testing.assert_array_less(np.abs(counts - n * area / area.sum()), 1.0 + 1e-9)


def test_box_boundary_points_uniform_and_well_spread_within_faces():
    dom = DOMAINS["box3"]
    lo, hi = dom.bounds()

    def face_coords(method, seed, n=2048):
        x = dom.sample("boundary", n, method, seed)
        on = x[:, 0] == lo[0]  # the face x_0 = lo_0 (area 6): about n * 6 / 22 points
        return (x[on][:, 1:] - lo[1:]) / (hi[1:] - lo[1:])

    u = face_coords("uniform", 0)
    for j in range(2):
        # i.i.d. uniform within the face: KS p-value above 1e-3 (fails by chance once in a thousand seeds)
        assert stats.kstest(u[:, j], "uniform").pvalue > 1e-3
    cd = {m: np.mean([qmc.discrepancy(face_coords(m, s, 256)) for s in range(6)]) for m in ("uniform", "sobol")}
    # Sobol points stay low-discrepancy on each face (measured about 20x lower); require 2x
    assert cd["sobol"] < 0.5 * cd["uniform"]


def test_interval_boundary_alternates_end_points_and_box1_matches_interval():
    dom = Interval(-1.0, 2.0)
    np.testing.assert_array_equal(dom.sample("boundary", 2, "sobol"), [[-1.0], [2.0]])
    np.testing.assert_array_equal(dom.sample("boundary", 5, "uniform", 9).ravel(), [-1, 2, -1, 2, -1])
    box = Box((-1.0,), (2.0,))
    for where in ("interior", "boundary"):
        for method in METHODS:
            np.testing.assert_array_equal(box.sample(where, 11, method, 4), dom.sample(where, 11, method, 4))
    np.testing.assert_array_equal(box.grid(6), dom.grid(6))


@pytest.mark.parametrize("method", ["uniform", "sobol"])
def test_disk_interior_is_uniform_in_area(method):
    dom = DOMAINS["disk"]
    x = dom.sample("interior", 2000, method, seed=11)
    z = x - np.array(dom.center)
    area_fraction = np.sum(z**2, axis=1) / dom.radius**2  # |x - c|^2 / R^2 ~ U(0, 1) iff uniform in area
    angle = np.mod(np.arctan2(z[:, 1], z[:, 0]), 2 * np.pi) / (2 * np.pi)
    for v in (area_fraction, angle):
        # KS test against U(0, 1); threshold p > 1e-3 (a correct uniform sampler fails once in 1000 seeds)
        assert stats.kstest(v, "uniform").pvalue > 1e-3
    if method == "sobol":
        # QMC: KS distance far below the i.i.d. scale 1/sqrt(n) = 0.022 (measured about 1e-3)
        assert stats.kstest(area_fraction, "uniform").statistic < 5e-3
    # a wrong radial map (r = R u instead of R sqrt(u)) puts area fraction u^2: the same test must reject it
    assert stats.kstest(area_fraction**2, "uniform").pvalue < 1e-6


def test_disk_boundary_on_circle_with_uniform_angle():
    dom = DOMAINS["disk"]
    x = dom.sample("boundary", 1000, "uniform", 2)
    r = np.linalg.norm(x - np.array(dom.center), axis=1)
    np.testing.assert_allclose(r, dom.radius, rtol=0, atol=1e-14)  # cos/sin round-off only
    angle = np.mod(np.arctan2(x[:, 1] + 2.0, x[:, 0] - 1.0), 2 * np.pi) / (2 * np.pi)
    assert stats.kstest(angle, "uniform").pvalue > 1e-3  # stated threshold, as above


def test_spacetime_boundary_and_initial_structure():
    dom = DOMAINS["st_box"]
    xb = dom.sample("boundary", 200, "sobol", 1)
    assert dom.space.contains(xb[:, :-1], "boundary").all()
    x0 = dom.sample("initial", 50, "halton", 1)
    assert dom.space.contains(x0[:, :-1], "interior").all() and not dom.space.contains(x0[:, :-1], "boundary").any()
    # joint QMC over (face coordinate, time): on the 1-D space boundary of st_interval, each end point's times are
    # a scrambled 1-D Sobol sequence, so their KS distance to U(t0, t1] is far below the i.i.d. 1/sqrt(n) = 0.044
    st = DOMAINS["st_interval"]
    x = st.sample("boundary", 1024, "sobol", 0)
    for end in (0.0, 1.0):
        t = x[x[:, 0] == end, 1]
        assert t.size == 512
        assert stats.kstest(t / 0.5, "uniform").statistic < 5e-3


def test_contains_rejects_points_outside():
    box = DOMAINS["box2"]
    pts = np.array([[1.0, 0.0], [3.0, 0.5], [3.0 + 1e-9, 0.5], [-1.0, 0.0], [1.5, 1.0]])
    np.testing.assert_array_equal(box.contains(pts, "interior"), [True, True, False, False, True])
    np.testing.assert_array_equal(box.contains(pts, "boundary"), [False, True, False, False, True])
    disk = Disk()
    q = np.array([[0.0, 0.0], [1.0, 0.0], [0.6, 0.8], [0.8, 0.8]])
    np.testing.assert_array_equal(disk.contains(q), [True, True, True, False])
    np.testing.assert_array_equal(disk.contains(q, "boundary"), [False, True, True, False])
    st = DOMAINS["st_interval"]
    y = np.array([[0.5, 0.0], [0.5, 0.25], [0.0, 0.25], [0.5, 0.6]])
    np.testing.assert_array_equal(st.contains(y, "initial"), [True, False, False, False])
    np.testing.assert_array_equal(st.contains(y, "boundary"), [False, False, True, False])
    np.testing.assert_array_equal(st.contains(y, "interior"), [True, True, True, False])
    assert st.contains(y[0]).shape == ()  # a single point (dim,) gives a scalar


def test_grids():
    np.testing.assert_array_equal(Interval(0.0, 1.0).grid(5).ravel(), [0, 0.25, 0.5, 0.75, 1.0])
    g = DOMAINS["box2"].grid(10)  # ceil(sqrt(10)) = 4 per axis
    assert g.shape == (16, 2)
    np.testing.assert_array_equal(np.unique(g[:, 0]), np.linspace(0, 3, 4))
    assert DOMAINS["box3"].grid(27).shape == (27, 3) and DOMAINS["box3"].grid(28).shape == (64, 3)
    disk = DOMAINS["disk"]
    for n in (50, 400, 3000):
        g = disk.grid(n)
        # "about n": whole rings are added while the total gets closer to n, so the total misses n by at most half
        # a ring, about pi m = sqrt(pi n) points
        assert abs(len(g) - n) <= np.sqrt(np.pi * n)
        assert disk.contains(g).all()
        np.testing.assert_array_equal(disk.grid(n), g)
        r2 = np.sum((g - np.array(disk.center)) ** 2, axis=1) / disk.radius**2
        # nearly uniform in area: half the points inside r = R / sqrt(2) (ring discretisation error ~ 1/m)
        assert abs(np.mean(r2 < 0.5) - 0.5) < 0.1
        assert np.sum(np.isclose(r2, 1.0)) >= 6  # the boundary circle is part of the grid
    st = DOMAINS["st_box"]
    g = st.grid(100)  # 3 coordinates: m = 5 per axis
    assert g.shape == (125, 3) and st.contains(g).all()
    np.testing.assert_array_equal(np.unique(g[:, -1]), np.linspace(1.0, 3.0, 5))


def test_bounds_dim_point_sets_and_hashable():
    lo, hi = DOMAINS["st_disk"].bounds()
    np.testing.assert_array_equal(lo, [-1, -1, 0]) and np.testing.assert_array_equal(hi, [1, 1, 2])
    assert [d.dim for d in DOMAINS.values()] == [1, 1, 2, 3, 2, 2, 3, 3]
    assert DOMAINS["st_disk"].point_sets == ("interior", "boundary", "initial")
    assert DOMAINS["disk"].point_sets == ("interior", "boundary")
    assert all(isinstance(d, Domain) for d in DOMAINS.values())
    assert Box([0, 0], [1, 2]) == Box((0.0, 0.0), (1.0, 2.0))
    assert hash(Box([0, 0], [1, 2])) == hash(Box((0.0, 0.0), (1.0, 2.0)))
    assert len({SpaceTime(Disk(), 0, 1), SpaceTime(Disk(), 0.0, 1.0)}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        DOMAINS["interval"].lo = 0.0


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: Interval(1.0, 1.0), r"lo must be < hi on axis 0; got lo=1.0, hi=1.0"),
        (lambda: Interval(0.0, float("nan")), r"hi must be a finite real"),
        (lambda: Box((0.0, 0.0), (1.0, -1.0)), r"on axis 1 got lo\[1\]=0.0, hi\[1\]=-1.0"),
        (lambda: Box((0.0,), (1.0, 2.0)), r"same number of coordinates; got 1 .* and 2"),
        (lambda: Box((), ()), r"lo must be a non-empty 1-D sequence"),
        (lambda: Disk(radius=0.0), r"radius must be > 0, got 0.0"),
        (lambda: Disk(center=(0.0, 0.0, 0.0)), r"center must have 2 coordinates, got 3"),
        (lambda: SpaceTime(Interval(0, 1), 1.0, 1.0), r"t0 must be < t1 .*got t0=1.0, t1=1.0"),
        (lambda: SpaceTime(SpaceTime(Interval(0, 1)), 0, 1), r"space must be a spatial Domain"),
        (lambda: DOMAINS["box2"].sample("interior", 0), r"n must be an integer >= 1, got 0"),
        (lambda: DOMAINS["box2"].sample("interior", 2.5), r"n must be an integer >= 1, got 2.5 of type float"),
        (lambda: DOMAINS["box2"].sample("interior", True), r"n must be an integer >= 1, got the bool True"),
        (lambda: DOMAINS["box2"].sample("interior", 4, "random"), r"'uniform', 'sobol', 'halton', 'lhs'; got 'random'"),
        (lambda: DOMAINS["box2"].sample("initial", 4), r"one of 'interior', 'boundary' or 'boundary:<part>' with <part> in x0_lo, .*, top; got 'initial'"),
        (lambda: DOMAINS["st_box"].sample("edge", 4), r"'interior', 'boundary', 'initial' or 'boundary:<part>' with <part> in x0_lo, .*; got 'edge'"),
        (lambda: DOMAINS["box2"].sample("interior", 4, seed=-1), r"seed must be an integer >= 0, got -1"),
        (lambda: DOMAINS["box2"].contains(np.zeros((4, 3))), r"shape \(\.\.\., 2\) .* got shape \(4, 3\)"),
        (lambda: DOMAINS["box2"].grid(0), r"n must be an integer >= 1, got 0"),
    ],
)
def test_bad_input_raises_value_error_naming_argument(make, match):
    with pytest.raises(ValueError, match=match):
        make()
