"""Simple polygons in the plane (``Polygon``) and the L-shaped domain (``LShape``)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ._domain import Domain, check_real, filtered_grid, unit_rows
from ._unit import Piece, check_int


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """z-component of the 2-D cross product, broadcast over leading axes."""
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _orient(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Twice the signed area of the triangle (p, q, r): > 0 counter-clockwise, 0 collinear."""
    return _cross(q - p, r - p)


def _on_segment(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """For r collinear with the segment pq: whether r lies in its bounding box (hence on the closed segment)."""
    return np.all((np.minimum(p, q) <= r) & (r <= np.maximum(p, q)), axis=-1)


def _check_simple(v: np.ndarray) -> None:
    """Raises ``ValueError`` if the closed polyline through ``v: (m, 2)`` is not a simple polygon.

    Non-adjacent edges must not meet at all (closed-segment test with exact orientation signs), adjacent edges
    only at their shared vertex (no fold-back along a line). Hand-written: O(m^2) pairs, fine for the few hundred
    vertices a PINN domain has.
    """
    m = v.shape[0]
    p, q = v, np.roll(v, -1, axis=0)
    d = q - p
    for i in range(m):  # adjacent edges i, i+1 fold back onto each other
        j = (i + 1) % m
        if _cross(d[i], d[j]) == 0 and np.dot(d[i], d[j]) < 0:
            raise ValueError(
                f"Polygon: edges {i} and {j} overlap (the boundary folds back at vertex {j}, {tuple(v[j])}); the "
                "vertices must trace a simple (non-self-intersecting) polygon"
            )
    i, j = np.triu_indices(m, k=2)
    keep = ~((i == 0) & (j == m - 1))  # edges 0 and m-1 are adjacent too
    i, j = i[keep], j[keep]
    if i.size == 0:
        return
    p1, p2, q1, q2 = p[i], q[i], p[j], q[j]
    d1, d2 = _orient(q1, q2, p1), _orient(q1, q2, p2)
    d3, d4 = _orient(p1, p2, q1), _orient(p1, p2, q2)
    meet = ((d1 * d2 < 0) & (d3 * d4 < 0)) | (
        ((d1 == 0) & _on_segment(q1, q2, p1))
        | ((d2 == 0) & _on_segment(q1, q2, p2))
        | ((d3 == 0) & _on_segment(p1, p2, q1))
        | ((d4 == 0) & _on_segment(p1, p2, q2))
    )
    if meet.any():
        k = int(np.flatnonzero(meet)[0])
        a, b = int(i[k]), int(j[k])
        raise ValueError(
            f"Polygon: edges {a} ({tuple(v[a])}->{tuple(v[(a + 1) % m])}) and {b} ({tuple(v[b])}->"
            f"{tuple(v[(b + 1) % m])}) intersect; the vertices must trace a simple (non-self-intersecting) polygon"
        )


def _drop_straight(v: np.ndarray, idx: list[int]) -> list[int]:
    """Removes vertices where the polygon goes straight on (collinear neighbours); the region is unchanged."""
    changed = True
    while changed and len(idx) > 3:
        changed = False
        for k in range(len(idx)):
            a, b, c = idx[k - 1], idx[k], idx[(k + 1) % len(idx)]
            if _orient(v[a], v[b], v[c]) == 0:
                idx.pop(k)
                changed = True
                break
    return idx


def triangulate(v: np.ndarray) -> np.ndarray:
    """Ear-clipping triangulation of a simple counter-clockwise polygon ``v: (m, 2)``.

    An ear is a convex vertex b (neighbours a, c) whose closed triangle abc contains no other remaining vertex; the
    two-ears theorem guarantees one exists for every simple polygon with more than 3 vertices. Vertices where the
    boundary goes straight on are dropped first (and again after each clip), so no triangle is degenerate.
    Hand-written (O(m^3), fine for small polygons): scipy's Delaunay triangulates convex hulls, not polygons.

    Returns:
        int array ``(m' - 2, 3)`` of counter-clockwise vertex indices, m' the number of non-straight vertices.
    """
    idx = _drop_straight(v, list(range(v.shape[0])))
    tris = []
    while len(idx) > 3:
        for k in range(len(idx)):
            a, b, c = idx[k - 1], idx[k], idx[(k + 1) % len(idx)]
            if _orient(v[a], v[b], v[c]) <= 0:
                continue  # reflex vertex
            others = np.array([i for i in idx if i not in (a, b, c)])
            w = v[others]
            inside = (_orient(v[a], v[b], w) >= 0) & (_orient(v[b], v[c], w) >= 0) & (_orient(v[c], v[a], w) >= 0)
            if inside.any():
                continue
            tris.append((a, b, c))
            idx.pop(k)
            idx = _drop_straight(v, idx)
            break
        else:  # pragma: no cover - impossible for a simple polygon (two-ears theorem)
            raise AssertionError("ear clipping found no ear: the polygon is not simple")
    tris.append(tuple(idx))
    return np.array(tris, dtype=np.int64)


def _triangle_piece(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> Piece:
    """The triangle abc as the image of the unit square under the area-preserving map
    x = a + sqrt(u_0) ((b - a) + u_1 (c - b)): continuous, so quasi-random points stay well spread."""
    area = 0.5 * abs(float(_orient(a, b, c)))

    def tri(u):
        s = np.sqrt(u[:, :1])
        return a + s * ((b - a) + u[:, 1:2] * (c - b))

    return Piece(area, 2, tri)


@dataclasses.dataclass(frozen=True)
class Polygon(Domain):
    """A simple polygon (closed region bounded by a non-self-intersecting closed polyline) in R^2.

    Point sets:
      * ``"interior"``: an ear-clipping triangulation, each triangle a piece with the area-preserving map
        x = a + sqrt(u_0) ((b - a) + u_1 (c - b)) of the unit square, points allocated to triangles in proportion to
        area (house-monotone apportionment, so QMC points stay stratified and nested);
      * ``"boundary"``: the edges, x = v_i + u (v_{i+1} - v_i), allocated in proportion to length;
      * ``"boundary:edge<i>"``: edge i, from vertex i to vertex i + 1 (mod m), in the order given.
    Outward unit normal on edge i: the edge direction turned by -90 degrees for a counter-clockwise polygon, +90
    for a clockwise one (either orientation is accepted); at a vertex, the normalised sum of the two edge normals.

    ``contains``: even-odd crossing test, points within the tolerance of an edge count as boundary (and as inside
    the closed polygon). ``grid(n)``: a tensor grid of the bounding box filtered to the closed polygon, about n
    points inside.

    Args:
        vertices: m >= 3 points ``(x, y)`` of finite reals, in order around the polygon, without repeating the first
            at the end. Validated: no zero-length edge, non-zero area, no two edges meeting except adjacent ones at
            their shared vertex (exact floating-point orientation tests).
    """

    vertices: tuple[tuple[float, float], ...]

    def __post_init__(self):
        try:
            v = np.array(self.vertices, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"Polygon: vertices must be a sequence of (x, y) pairs of real numbers, got {self.vertices!r}"
            ) from None
        if v.ndim != 2 or v.shape[1] != 2 or v.shape[0] < 3:
            raise ValueError(
                f"Polygon: vertices must be at least 3 (x, y) pairs, shape (m >= 3, 2); got shape {v.shape}"
            )
        for i, row in enumerate(v):
            for j in range(2):
                check_real(row[j], f"vertices[{i}][{j}]", "Polygon")
        nxt = np.roll(v, -1, axis=0)
        same = np.flatnonzero(np.all(v == nxt, axis=1))
        if same.size:
            i = int(same[0])
            raise ValueError(
                f"Polygon: edge {i} has zero length (vertex {i} == vertex {(i + 1) % len(v)} == {tuple(v[i])}); "
                "consecutive vertices must differ"
            )
        if np.all(_cross(v[1:] - v[0], v[1] - v[0]) == 0):
            raise ValueError(f"Polygon: the vertices enclose zero area (all on one line); got {v.tolist()}")
        _check_simple(v)
        area = 0.5 * float(np.sum(_cross(v, nxt)))
        scale = float(np.max(np.abs(v - v.mean(axis=0))))
        if abs(area) <= 1e-14 * scale**2:  # pragma: no cover - a simple polygon off one line has area
            raise ValueError(f"Polygon: the vertices enclose zero area (signed area {area:.3g}); got {v.tolist()}")
        object.__setattr__(self, "vertices", tuple((float(a), float(b)) for a, b in v))

    # ------------------------------------------------------------------ geometry of the vertex list

    @property
    def dim(self) -> int:
        return 2

    def _v(self) -> np.ndarray:
        return np.array(self.vertices, dtype=np.float64)

    @property
    def area(self) -> float:
        """Area (shoelace formula)."""
        v = self._v()
        return 0.5 * abs(float(np.sum(_cross(v, np.roll(v, -1, axis=0)))))

    @property
    def orientation(self) -> int:
        """+1 if the vertices run counter-clockwise, -1 if clockwise."""
        v = self._v()
        return 1 if float(np.sum(_cross(v, np.roll(v, -1, axis=0)))) > 0 else -1

    def edge_normals(self) -> np.ndarray:
        """Outward unit normal of each edge, ``(m, 2)``: (dy, -dx) / L times the orientation."""
        v = self._v()
        d = np.roll(v, -1, axis=0) - v
        nrm = self.orientation * np.stack([d[:, 1], -d[:, 0]], axis=1) / np.linalg.norm(d, axis=1, keepdims=True)
        return nrm + 0.0  # no negative zeros

    def triangles(self) -> np.ndarray:
        """The triangulation used for interior sampling: ``(m' - 2, 3, 2)`` counter-clockwise triangles."""
        v = self._v()
        ccw = v if self.orientation > 0 else v[::-1]
        return ccw[triangulate(ccw)]

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        v = self._v()
        return v.min(axis=0), v.max(axis=0)

    # ------------------------------------------------------------------ point sets

    def _intrinsic_parts(self):
        return tuple(f"edge{i}" for i in range(len(self.vertices)))

    def _edge(self, where: str) -> int:
        return int(where[len("boundary:edge") :])

    def _pieces(self, where):
        if where == "interior":
            return tuple(_triangle_piece(*t) for t in self.triangles())
        v = self._v()
        d = np.roll(v, -1, axis=0) - v
        nrm = self.edge_normals()
        pieces = tuple(
            Piece(
                float(np.linalg.norm(d[i])),
                1,
                lambda u, i=i: v[i] + u[:, :1] * d[i],
                normal=lambda u, i=i: np.tile(nrm[i], (u.shape[0], 1)),
            )
            for i in range(v.shape[0])
        )
        return pieces if where == "boundary" else (pieces[self._edge(where)],)

    def _edge_distance(self, x: np.ndarray) -> np.ndarray:
        """Distance from each point to each edge (closed segment): ``(n, m)``."""
        v = self._v()
        d = np.roll(v, -1, axis=0) - v
        rel = x[:, None, :] - v[None]
        t = np.clip(np.sum(rel * d, axis=-1) / np.sum(d * d, axis=-1), 0.0, 1.0)
        return np.linalg.norm(rel - t[..., None] * d, axis=-1)

    def _contains(self, x, where, tol):
        if where == "boundary":
            return np.min(self._edge_distance(x), axis=1) <= tol
        if where != "interior":
            return self._edge_distance(x)[:, self._edge(where)] <= tol
        v = self._v()
        w = np.roll(v, -1, axis=0)
        px, py = x[:, None, 0], x[:, None, 1]
        straddle = (v[:, 1] > py) != (w[:, 1] > py)
        dy = np.where(straddle, w[:, 1] - v[:, 1], 1.0)
        x_cross = v[:, 0] + (py - v[:, 1]) * (w[:, 0] - v[:, 0]) / dy
        odd = np.count_nonzero(straddle & (px < x_cross), axis=1) % 2 == 1
        out = odd.copy()  # points the crossing test puts outside may still lie on an edge within tol
        out[~odd] = np.min(self._edge_distance(x[~odd]), axis=1) <= tol
        return out

    def _normals(self, x, where, tol):
        nrm = self.edge_normals()
        if where != "boundary":
            return np.tile(nrm[self._edge(where)], (x.shape[0], 1))
        return unit_rows((self._edge_distance(x) <= tol).astype(np.float64) @ nrm)

    def grid(self, n: int) -> np.ndarray:
        """Tensor grid of the bounding box filtered to the closed polygon, about ``n`` points inside (the box grid
        has ``ceil(n * box area / polygon area)`` points). Returns float64 ``(M, 2)``."""
        return filtered_grid(self, n)


# The L-shape with its re-entrant corner at the origin, as a counter-clockwise vertex list, for the removed
# quadrant 4 = [0, 1) x (-1, 0]; the other quadrants are rotations of it by multiples of 90 degrees.
_L_VERTICES = ((-1, -1), (0, -1), (0, 0), (1, 0), (1, 1), (-1, 1))


def LShape(removed_quadrant: Any = 4) -> Polygon:
    """The L-shaped domain (-1, 1)^2 minus one closed quadrant of the square, re-entrant corner at the origin.

    Conventions differ between communities. The default (``removed_quadrant=4``) removes [0, 1) x (-1, 0] (the
    fourth quadrant x > 0, y < 0): the finite-element benchmark, where the corner singularity
    u = r^(2/3) sin(2 theta / 3), theta in [0, 3 pi / 2], is the exact harmonic solution. DeepXDE's "Poisson
    equation over an L-shaped domain" example (-Δu = 1, u = 0 on the boundary; ``examples/Poisson_Lshape.py``,
    polygon [[0, 0], [1, 0], [1, -1], [-1, -1], [-1, 1], [0, 1]]) removes the first quadrant [0, 1]^2: that is
    ``LShape(removed_quadrant=1)``. All variants have area 3 and boundary length 8.

    The vertices run counter-clockwise; for the default (-1, -1), (0, -1), (0, 0), (1, 0), (1, 1), (-1, 1), so
    ``edge1`` (x = 0, y in [-1, 0]) and ``edge2`` (y = 0, x in [0, 1]) are the two re-entrant edges. Quadrant q
    rotates this list by (q - 4) * 90 degrees (``edge1``, ``edge2`` stay the re-entrant edges).

    Args:
        removed_quadrant: 1, 2, 3 or 4 (counter-clockwise from x > 0, y > 0).

    Returns:
        a :class:`Polygon` with 6 vertices.
    """
    q = check_int(removed_quadrant, "removed_quadrant", 1)
    if q > 4:
        raise ValueError(f"LShape: removed_quadrant must be 1, 2, 3 or 4, got {q}")
    verts = _L_VERTICES
    for _ in range((q - 4) % 4):
        verts = tuple((-y, x) for x, y in verts)  # rotate by +90 degrees, exactly
    return Polygon(tuple((float(x), float(y)) for x, y in verts))
