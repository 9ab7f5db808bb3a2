"""Polygons, the L-shape and CSG domains: areas, lengths, allocation, uniformity, membership, grids, errors."""

import dataclasses

import numpy as np
import pytest
from scipy import stats

from sciml_jax.geometry import METHODS, Box, Difference, Disk, Intersection, Interval, LShape, Polygon, SpaceTime, Union

ARROW = Polygon([(0, 0), (4, 1), (0, 2), (1, 1)])  # area 3 (two triangles of area 1.5 around the re-entrant vertex)
COMB = Polygon([(0, 0), (5, 0), (5, 3), (4, 3), (4, 1), (3, 1), (3, 3), (2, 3), (2, 1), (1, 1), (1, 3), (0, 3)])
DISK_A, DISK_B = Disk((0.0, 0.0), 1.0), Disk((1.0, 0.0), 1.0)
LENS_AREA = 2 * np.pi / 3 - np.sqrt(3) / 2  # two unit disks, centres 1 apart
PLATE = Box((-1.0, -1.0), (1.0, 1.0)) - Disk((0.2, 0.1), 0.5)
NEW = {
    "arrow": ARROW,
    "arrow_cw": Polygon(ARROW.vertices[::-1]),
    "comb": COMB,
    "lshape": LShape(),
    "lshape_deepxde": LShape(removed_quadrant=1),
    "two_disks": DISK_A | DISK_B,
    "lens": DISK_A & DISK_B,
    "moon": DISK_A - DISK_B,
    "plate": PLATE,
    "l_minus_disk": LShape() - Disk((-0.5, 0.5), 0.25),
    "nested": PLATE | Disk((1.0, 1.0), 0.5),
    "cube_minus_corner": Box((0, 0, 0), (1, 1, 1)) - Box((0.5, 0.5, 0.5), (2, 2, 2)),
    "segments": Interval(0.0, 1.0) | Interval(0.5, 2.0),
}
# exact interior measure and boundary measure
EXACT = {
    "arrow": (3.0, 2 * np.hypot(4, 1) + 2 * np.sqrt(2)),
    "arrow_cw": (3.0, 2 * np.hypot(4, 1) + 2 * np.sqrt(2)),
    "comb": (11.0, 5 + 3 + 1 + 2 + 1 + 2 + 1 + 2 + 1 + 2 + 1 + 3),
    "lshape": (3.0, 8.0),
    "lshape_deepxde": (3.0, 8.0),
    "two_disks": (2 * np.pi - LENS_AREA, 2 * (4 * np.pi / 3)),
    "lens": (LENS_AREA, 2 * (2 * np.pi / 3)),
    "moon": (np.pi - LENS_AREA, 4 * np.pi / 3 + 2 * np.pi / 3),
    "plate": (4 - np.pi / 4, 8 + np.pi),
    "l_minus_disk": (3 - np.pi / 16, 8 + np.pi / 2),
    "nested": (4 - np.pi / 4 + 3 * np.pi / 16, 8 - 1 + np.pi + 2 * np.pi * 0.5 * 0.75),
    "cube_minus_corner": (7 / 8, 6.0),
    "segments": (2.0, 2.0),
}


def _sets(dom):
    return list(dom.point_sets)


CASES = [(name, where) for name, dom in NEW.items() for where in _sets(dom)]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name,where", CASES)
def test_every_sampler_on_every_new_domain(name, where, method):
    dom = NEW[name]
    x = dom.sample(where, 37, method, seed=3)
    assert x.shape == (37, dom.dim) and x.dtype == np.float64 and np.all(np.isfinite(x))
    assert dom.contains(x, where).all()
    if where == "interior":
        assert not dom.contains(x, "boundary").any()  # probability-one statement
    np.testing.assert_array_equal(x, dom.sample(where, 37, method, seed=3))
    if not (name == "segments" and where == "boundary"):  # 4 fixed end points: nothing random
        assert not np.allclose(x, dom.sample(where, 37, method, seed=4))
    if method != "lhs":
        np.testing.assert_array_equal(dom.sample(where, 11, method, seed=3), x[:11])


@pytest.mark.parametrize("name", NEW)
def test_measures_against_exact_and_monte_carlo(name):
    dom = NEW[name]
    area, length = EXACT[name]
    # polygons (triangle / edge sums) are exact up to round-off; CSG measures are estimated from 2^14 scrambled
    # Sobol probes per piece: bounded here by the i.i.d. 4-sigma error of such a fraction (Sobol does far better)
    csg = isinstance(dom, (Union, Intersection, Difference))
    for where, exact in (("interior", area), ("boundary", length)):
        tol = 4 * np.sqrt(0.25 / 2**14) * 2 * exact if csg else 1e-12 * exact
        assert abs(dom.measure(where) - exact) <= tol, (where, dom.measure(where), exact)
    # independent Monte Carlo check of contains(): fraction of N i.i.d. box points inside -> area, 5-sigma binomial
    lo, hi = dom.bounds()
    box = float(np.prod(hi - lo))
    N = 100_000
    u = lo + (hi - lo) * np.random.default_rng(0).random((N, dom.dim))
    p = area / box
    assert abs(np.mean(dom.contains(u)) - p) <= 5 * np.sqrt(p * (1 - p) / N)


def test_lshape_convention_area_edges_and_reentrant_corner():
    L = LShape()
    assert L.vertices == ((-1.0, -1.0), (0.0, -1.0), (0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (-1.0, 1.0))
    assert L.area == 3.0 and L.measure("boundary") == 8.0
    # the removed quadrant is [0, 1) x (-1, 0] (open side inside the domain's closure: its edges belong to L)
    q = np.array([[0.5, -0.5], [-0.5, -0.5], [0.5, 0.5], [-0.5, 0.5], [0.0, -0.5], [0.5, 0.0]])
    assert L.contains(q).tolist() == [False, True, True, True, True, True]
    assert L.contains(q, "boundary").tolist() == [False, False, False, False, True, True]
    assert L.contains(q[4:], "boundary:edge1").tolist() == [True, False]
    # DeepXDE's Poisson_Lshape polygon removes [0, 1]^2: the same set as removed_quadrant=1
    deepxde = Polygon([[0, 0], [1, 0], [1, -1], [-1, -1], [-1, 1], [0, 1]])
    g = Box((-1.0, -1.0), (1.0, 1.0)).grid(41**2)
    np.testing.assert_array_equal(deepxde.contains(g), LShape(1).contains(g))
    for q in (2, 3):
        assert LShape(q).area == 3.0 and not LShape(q).contains(np.array([[-0.5, 0.5], [-0.5, -0.5]])[q - 2])
    # uniform in area: each of the three unit squares gets a third of the points (binomial 5-sigma, i.i.d.)
    x = L.sample("interior", 3000, "uniform", 7)
    frac = [np.mean((x[:, 0] < 0) & (x[:, 1] < 0)), np.mean((x[:, 0] < 0) & (x[:, 1] > 0)), np.mean(x[:, 0] > 0)]
    np.testing.assert_allclose(frac, 1 / 3, atol=5 * np.sqrt(2 / 9 / 3000))


def test_polygon_triangulation_orientation_and_normals():
    for poly in (ARROW, COMB, LShape(), Polygon(COMB.vertices[::-1])):
        tris = poly.triangles()
        e1, e2 = tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]
        a = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
        assert a.min() > 0 and abs(a.sum() - poly.area) <= 1e-12 * poly.area
        assert poly.contains(tris.mean(axis=1)).all()  # centroids inside: no triangle leaves the polygon
    assert ARROW.orientation == 1 and NEW["arrow_cw"].orientation == -1
    # the same set of outward normals for both orientations; each orthogonal to its edge
    v = np.array(ARROW.vertices)
    d = np.roll(v, -1, axis=0) - v
    n = ARROW.edge_normals()
    np.testing.assert_allclose(np.sum(n * d, axis=1), 0.0, atol=1e-15)
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-15)
    cw = NEW["arrow_cw"].edge_normals()  # reversed vertices: edge i of the reversed list is edge m-2-i reversed
    np.testing.assert_allclose(cw[::-1][np.r_[1:4, 0]], n, atol=1e-15)
    x, nx = ARROW.sample("boundary:edge0", 20, "sobol", 0, normals=True)
    rel = x - v[0]
    np.testing.assert_allclose(rel[:, 0] * d[0, 1] - rel[:, 1] * d[0, 0], 0.0, atol=1e-14)  # on the line of edge 0
    np.testing.assert_allclose(nx, np.tile([1, -4] / np.hypot(1, 4), (20, 1)), atol=1e-15)


@pytest.mark.parametrize("method", METHODS)
def test_polygon_boundary_allocation_proportional_to_edge_length(method):
    poly = COMB
    v = np.array(poly.vertices)
    length = np.linalg.norm(np.roll(v, -1, axis=0) - v, axis=1)
    for n in (5, 31, 100):
        x = poly.sample("boundary", n, method, seed=n)
        counts = np.array([np.count_nonzero(poly.contains(x, f"boundary:edge{i}")) for i in range(len(v))])
        assert counts.sum() == n  # no point on a vertex (probability one)
        np.testing.assert_array_less(np.abs(counts - n * length / length.sum()), 1.0 + 1e-9)


def test_qmc_stays_well_spread_on_polygons_and_csg():
    # integration error of a smooth function: Sobol through the triangle maps (L-shape) and through rejection
    # (plate) beats i.i.d. points by far (measured 10-40x); require 3x so that a broken map or stream fails
    f = lambda x: np.exp(x[:, 0]) * np.cos(x[:, 1])
    for dom in (LShape(), PLATE):
        ref = f(dom.sample("interior", 2**17, "sobol", 123)).mean()
        err = {
            m: np.mean([abs(f(dom.sample("interior", 256, m, s)).mean() - ref) for s in range(8)])
            for m in ("uniform", "sobol")
        }
        assert err["sobol"] < err["uniform"] / 3, err


@pytest.mark.parametrize("method", METHODS)
def test_csg_boundary_allocation_follows_length(method):
    dom = PLATE  # square boundary (length 8) outside the hole, hole circle (pi) inside the square
    x = dom.sample("boundary", 400, method, seed=1)
    on_hole = np.count_nonzero(Disk((0.2, 0.1), 0.5).contains(x, "boundary"))
    share = np.pi / (8 + np.pi)
    # deterministic apportionment by the estimated part lengths: within one point plus the estimate's error
    assert abs(on_hole - 400 * share) <= 1.0 + 400 * 4 * np.sqrt(0.25 / 2**14)
    lens = NEW["lens"]
    xl = lens.sample("boundary", 300, method, seed=2)
    on_a = np.count_nonzero(DISK_A.contains(xl, "boundary"))
    assert abs(on_a - 150) <= 1.0 + 300 * 4 * np.sqrt(0.25 / 2**14)  # two equal arcs


def test_union_interior_is_uniform_no_double_counting():
    a, b = Box((0.0, 0.0), (2.0, 1.0)), Box((1.0, 0.0), (3.0, 2.0))  # overlap [1, 2] x [0, 1], union area 5
    x = (a | b).sample("interior", 4000, "uniform", 5)
    p = 1.0 / 5.0
    assert abs(np.mean(a.contains(x) & b.contains(x)) - p) <= 5 * np.sqrt(p * (1 - p) / 4000)
    # and along x: the union's x-density is 1/5 on [0, 1], 2/5 on [1, 3]: KS against that CDF
    cdf = lambda t: np.where(t < 1, t / 5, 1 / 5 + 2 * (t - 1) / 5)
    assert stats.kstest(x[:, 0], cdf).pvalue > 1e-3  # a correct sampler fails once in 1000 seeds


def test_shared_faces_are_interior_to_unions_and_boundary_once():
    a, b = Box((0.0, 0.0), (1.0, 1.0)), Box((1.0, 0.0), (2.0, 1.0))
    u = a | b
    assert u.measure("boundary") == 6.0  # the shared face x = 1 is interior
    x = u.sample("boundary", 500, "sobol", 0)
    assert not np.any(x[:, 0] == 1.0)
    assert u.contains([[1.0, 0.5]]).all() and not u.contains([[1.0, 0.5]], "boundary").any()
    assert u.contains([[1.0, 0.0]], "boundary").all()
    # overlapping boxes with aligned bottoms: the common bottom segment is counted once
    c = Box((0.5, 0.0), (2.0, 1.0))
    xb = (a | c).sample("boundary", 2000, "uniform", 1)
    bottom = xb[xb[:, 1] == 0.0, 0]
    assert stats.kstest(bottom / 2.0, "uniform").pvalue > 1e-3  # uniform on [0, 2], no double density on [0.5, 1]
    # intersection: shared bottom face kept once; difference with a box that only touches: a unchanged
    assert abs((a & c).measure("boundary") - 3.0) <= 4 * 4 * np.sqrt(0.25 / 2**14)
    d = a - b
    assert d.measure("interior") == 1.0 and d.measure("boundary") == 4.0 and d.measure("boundary:b") == 0.0
    with pytest.raises(ValueError, match=r"the point set 'boundary:b' is empty"):
        d.sample("boundary:b", 4)
    # difference with coincident faces of equal normals: those pieces of a are removed
    e = Box((0.0, 0.0), (2.0, 1.0)) - Box((1.0, 0.0), (3.0, 1.0))
    assert abs(e.measure("boundary") - 4.0) <= 4 * 4 * np.sqrt(0.25 / 2**14)
    assert not e.contains([[1.5, 0.0]]).any() and e.contains([[1.0, 0.0], [1.0, 0.5]], "boundary").all()
    np.testing.assert_allclose(e.normals([[1.0, 0.5]]), [[1.0, 0.0]], atol=1e-15)
    # at the corner (1, 0), where the boundaries meet, the convention (normalised sum of both operands' normals,
    # each with its own corner convention) still points out of the domain
    c = np.array([[1.0, 0.0]])
    nc = e.normals(c)
    assert not e.contains(c + 1e-6 * nc).any() and e.contains(c - 1e-6 * nc).all()


def test_csg_normals_parts_and_operators():
    dom = PLATE
    xh, nh = dom.sample("boundary:b", 50, "sobol", 0, normals=True)
    np.testing.assert_allclose(nh, -(xh - [0.2, 0.1]) / 0.5, atol=1e-14)  # hole: towards its centre
    xl, nl = dom.sample("boundary:a.left", 10, "halton", 0, normals=True)
    assert np.all(xl[:, 0] == -1.0) and np.all(nl == [-1.0, 0.0])
    np.testing.assert_array_equal(
        dom.sample("boundary:a.left", 10, "halton", 0), dom.sample("boundary:a.x0_lo", 10, "halton", 0)
    )
    # boundary = part a + part b, disjoint
    x = dom.sample("boundary", 300, "sobol", 1)
    on_a, on_b = dom.contains(x, "boundary:a"), dom.contains(x, "boundary:b")
    assert np.all(on_a ^ on_b)
    # crossing points of two circles: the bisector convention
    p = np.array([[0.5, np.sqrt(3) / 2]])
    n_union = (DISK_A | DISK_B).normals(p)
    np.testing.assert_allclose(n_union, [[0.0, 1.0]], atol=1e-15)
    assert (DISK_A | DISK_B) == Union(DISK_A, DISK_B) and (DISK_A & DISK_B) == Intersection(DISK_A, DISK_B)
    assert (DISK_A - DISK_B) == Difference(DISK_A, DISK_B) and hash(DISK_A - DISK_B) == hash(Difference(DISK_A, DISK_B))
    with pytest.raises(dataclasses.FrozenInstanceError):
        PLATE.a = DISK_A
    # 3-D: the removed corner's faces are boundary with normals pointing into the removed cube
    cube = NEW["cube_minus_corner"]
    xc, nc = cube.sample("boundary:b", 40, "sobol", 0, normals=True)
    assert np.all(np.max(xc, axis=1) <= 1.0) and np.all(np.abs(nc).sum(axis=1) == 1.0) and np.all(nc >= 0)


def test_grids_of_new_domains():
    for name in ("lshape", "arrow", "plate", "two_disks", "cube_minus_corner"):
        dom = NEW[name]
        for n in (200, 2000):
            g = dom.grid(n)
            assert dom.contains(g).all()
            np.testing.assert_array_equal(g, dom.grid(n))
            # about n points: the bounding-box grid is sized to n * box/area and rounded up to m^d per axis, so the
            # count inside lies between about n and n (1 + 1/m)^d plus a boundary layer of O(m^(d-1)) points
            m = round((n * np.prod(np.subtract(*dom.bounds()[::-1])) / EXACT[name][0]) ** (1 / dom.dim))
            assert 0.7 * n <= len(g) <= 1.5 * n + 4 * dom.dim * m ** (dom.dim - 1), (name, n, len(g))


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: Polygon([(0, 0), (1, 0)]), r"at least 3 \(x, y\) pairs, shape \(m >= 3, 2\); got shape \(2, 2\)"),
        (
            lambda: Polygon([(0, 0), (1, 1), (1, 0), (0, 1)]),
            r"edges 0 .* and 2 .* intersect; the vertices must trace a simple",
        ),
        (lambda: Polygon([(0, 0), (2, 0), (2, 2), (1, 0), (0, 2)]), r"edges .* intersect"),  # vertex on an edge
        (lambda: Polygon([(0, 0), (1, 0), (2, 0)]), r"enclose zero area"),
        (lambda: Polygon([(0, 0), (1, 0), (1, 0), (0, 1)]), r"edge 1 has zero length"),
        (lambda: Polygon([(0, 0), (2, 0), (1, 0), (1, 1)]), r"edges 0 and 1 overlap"),
        (lambda: Polygon([(0, 0), (1, float("inf")), (0, 1)]), r"vertices\[1\]\[1\] must be a finite real"),
        (lambda: Polygon("abc"), r"vertices must be"),
        (lambda: LShape(5), r"removed_quadrant must be 1, 2, 3 or 4, got 5"),
        (
            lambda: Box((0, 0, 0), (1, 1, 1)) | Disk(),
            r"Union: a and b must have the same dimension; got a.dim = 3 \(Box\) and b.dim = 2 \(Disk\)",
        ),
        (lambda: Difference(Disk(), SpaceTime(Interval(0, 1))), r"Difference: b must be a spatial Domain"),
        (lambda: Union(Disk(), "disk"), r"Union: b must be a spatial Domain"),
        (lambda: Disk() & Disk((3.0, 0.0), 1.0), r"Intersection: the operands do not overlap"),
        (lambda: Disk() & Disk((1.5, 1.5), 1.0), r"Intersection: the result is empty"),
        (lambda: Disk() - Disk((0.0, 0.0), 2.0), r"Difference: the result is empty"),
    ],
)
def test_bad_input_one_line_value_errors(make, match):
    with pytest.raises(ValueError, match=match) as info:
        make()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "name,a,b", [("two_disks", DISK_A, DISK_B), ("lens", DISK_A, DISK_B), ("moon", DISK_A, DISK_B)]
)
def test_csg_boundary_length_by_monte_carlo(name, a, b):
    # independent of the CSG sampler: i.i.d. points on each operand's circle, the fraction that the CSG's
    # contains(boundary) accepts, times the circle's length; 5-sigma binomial tolerance for N points per circle
    dom = NEW[name]
    N = 20_000
    est, var = 0.0, 0.0
    for k, op in enumerate((a, b)):
        x = op.sample("boundary", N, "uniform", seed=10 + k)
        p = np.mean(dom.contains(x, "boundary"))
        est += 2 * np.pi * p
        var += (2 * np.pi) ** 2 * max(p * (1 - p), 1 / N) / N
    assert abs(est - EXACT[name][1]) <= 5 * np.sqrt(var)
