"""The ``Domain`` base class: point sets, sampling, membership, evaluation grids."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from ._unit import ESTIMATE_POINTS, Piece, check_int, check_method, sample_pieces, thin


def check_real(value: Any, name: str, owner: str) -> float:
    """Returns ``value`` as a finite Python float or raises ``ValueError`` naming ``owner.name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        if not (isinstance(value, np.ndarray) and value.shape == () and np.issubdtype(value.dtype, np.number)):
            raise ValueError(f"{owner}: {name} must be a finite real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {name} must be a finite real number, got {value!r}")
    return value


def check_vector(value: Any, name: str, owner: str) -> tuple[float, ...]:
    """Returns a non-empty 1-D sequence of finite reals as a tuple of floats, or raises ``ValueError``."""
    if isinstance(value, (str, bytes)) or np.ndim(value) != 1:
        raise ValueError(f"{owner}: {name} must be a non-empty 1-D sequence of real numbers, got {value!r}")
    out = tuple(check_real(v, f"{name}[{i}]", owner) for i, v in enumerate(value))
    if not out:
        raise ValueError(f"{owner}: {name} must be a non-empty 1-D sequence of real numbers, got {value!r}")
    return out


Predicate = Callable[[np.ndarray], np.ndarray]

_PART_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def is_boundary_set(where: str) -> bool:
    """Whether ``where`` (a canonical point-set name) is the boundary or a named part of it."""
    return where == "boundary" or where.startswith("boundary:")


def unit_rows(v: np.ndarray) -> np.ndarray:
    """Rows of ``v`` divided by their Euclidean norm (the corner convention: a normalised sum of normals)."""
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


@dataclasses.dataclass(frozen=True)
class Domain:
    """A computational domain: a set in R^dim with named point sets (``"interior"``, ``"boundary"``, ...).

    Subclasses are frozen (hence hashable) dataclasses. They describe each point set as a union of pieces, each the
    image of a unit cube under a map that sends uniform points to uniform points on the piece (optionally thinned
    by a membership test, for CSG domains and predicate parts); ``sample`` draws unit-cube points with the requested
    method and pushes them through these maps. Time, when present, is the last coordinate.

    Point sets: :attr:`point_sets` (``"interior"``, ``"boundary"`` and, for space-time domains, ``"initial"``) and
    one set ``"boundary:<part>"`` per named boundary part (:attr:`boundary_parts`: faces, edges, the circle, parts
    added by :meth:`with_parts`); :attr:`all_point_sets` lists both. Boundary sets come with outward unit normals
    (``sample(..., normals=True)``, :meth:`normals`).

    Attributes:
        predicate_parts: extra named boundary parts ``((name, predicate), ...)``; set them with :meth:`with_parts`.
    """

    predicate_parts: tuple[tuple[str, Predicate], ...] = dataclasses.field(default=(), kw_only=True, repr=False)

    @property
    def dim(self) -> int:
        """Number of coordinates of a point (space + time)."""
        raise NotImplementedError

    @property
    def point_sets(self) -> tuple[str, ...]:
        """Names of the primary point sets (``"interior"``, ``"boundary"``, ...); see also :attr:`all_point_sets`."""
        return ("interior", "boundary")

    @property
    def boundary_parts(self) -> tuple[str, ...]:
        """Names of the named boundary parts: the domain's own parts, then their aliases, then predicate parts.

        ``"boundary:<part>"`` is a point set for each of them. Aliases (``left`` for ``x0_lo`` ...) name the same
        set of points as the part they stand for.
        """
        return self._intrinsic_parts() + tuple(self._part_aliases()) + tuple(n for n, _ in self.predicate_parts)

    @property
    def all_point_sets(self) -> tuple[str, ...]:
        """Every name ``sample``, ``contains`` and ``normals`` accept: :attr:`point_sets` first (in their order),
        then ``"boundary:<part>"`` for each of :attr:`boundary_parts`."""
        return self.point_sets + tuple(f"boundary:{p}" for p in self.boundary_parts)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned bounding box ``(lo, hi)``, two float64 arrays ``(dim,)``."""
        raise NotImplementedError

    def grid(self, n: int) -> np.ndarray:
        """Deterministic evaluation points covering the closed domain, about ``n`` of them: float64 ``(M, dim)``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ hooks of the concrete domains

    def _intrinsic_parts(self) -> tuple[str, ...]:
        """Canonical names of the domain's own boundary parts (faces, edges, ...)."""
        return ()

    def _part_aliases(self) -> dict[str, str]:
        """Alias -> canonical part name."""
        return {}

    def _pieces(self, where: str) -> tuple[Piece, ...]:
        """Pieces of a primary point set or of ``"boundary:<intrinsic part>"`` (canonical name)."""
        raise NotImplementedError

    def _contains(self, x: np.ndarray, where: str, tol: float) -> np.ndarray:
        """Membership of ``x: (m, dim)`` in the closure of a primary set or intrinsic part: ``(m,)`` bool."""
        raise NotImplementedError

    def _normals(self, x: np.ndarray, where: str, tol: float) -> np.ndarray:
        """Outward unit normals ``(m, dim)`` at points ``x: (m, dim)`` known to lie on the boundary set ``where``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ dispatch (predicate parts, cache)

    def _canonical_parts(self) -> tuple[str, ...]:
        return self._intrinsic_parts() + tuple(n for n, _ in self.predicate_parts)

    def _predicate(self, where: str) -> tuple[str, Predicate] | None:
        for name, pred in self.predicate_parts:
            if where == f"boundary:{name}":
                return name, pred
        return None

    def _pieces_of(self, where: str) -> tuple[Piece, ...]:
        """Pieces of a canonical point-set name, predicate parts included; cached on the instance."""
        cache = self.__dict__.setdefault("_cache", {})
        if where not in cache:
            found = self._predicate(where)
            if found is None:
                cache[where] = self._pieces(where)
            else:
                name, pred = found
                keep = lambda x, nrm, name=name, pred=pred: call_predicate(name, pred, x)
                pieces = tuple(p for p in (thin(p, keep) for p in self._pieces_of("boundary")) if p.accept > 0)
                if not pieces:
                    raise ValueError(
                        f"{type(self).__name__}.with_parts: the predicate of part {name!r} selects (almost) nothing: "
                        f"none of {ESTIMATE_POINTS} probe points on any boundary piece; it must select a part of "
                        "the boundary of positive length/area"
                    )
                cache[where] = pieces
        return cache[where]

    def _contains_of(self, x: np.ndarray, where: str, tol: float) -> np.ndarray:
        found = self._predicate(where)
        if found is None:
            return self._contains(x, where, tol)
        return self._contains(x, "boundary", tol) & call_predicate(found[0], found[1], x)

    def _normals_of(self, x: np.ndarray, where: str, tol: float) -> np.ndarray:
        return self._normals(x, "boundary" if self._predicate(where) is not None else where, tol)

    def _tol(self, atol: float = 1e-12) -> float:
        """``atol`` plus 16 units of round-off at the coordinate scale ``max(1, max |bounds|)``."""
        lo, hi = self.bounds()
        scale = max(1.0, float(np.max(np.abs(np.concatenate([lo, hi])))))
        return atol + 16 * np.finfo(np.float64).eps * scale

    def __getstate__(self):  # the piece cache holds closures: rebuilt after unpickling, never pickled
        return {k: v for k, v in self.__dict__.items() if k != "_cache"}

    # ------------------------------------------------------------------ shared public methods

    def sample(
        self, where: str, n: int, method: str = "uniform", seed: int = 0, normals: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Draws ``n`` points on the point set ``where``.

        Points on a set made of several pieces (faces of a box, ends of an interval, triangles of a polygon) are
        allocated to the pieces in proportion to their measure by a deterministic house-monotone apportionment
        (each piece gets within about one point of n * measure_k / total); within a piece the points follow
        ``method``. Pieces thinned by a membership test (CSG domains, predicate parts) are sampled by rejection: the
        first kept points of a longer draw with the same method and seed. For ``"uniform"``, ``"sobol"`` and
        ``"halton"`` a draw of m < n points with the same seed is the first m rows of the draw of n points (nested
        sets for batch-size progressions), rejection included; LHS points are only deterministic per seed.

        Args:
            where: one of :attr:`all_point_sets` (``"interior"``, ``"boundary"``, ``"boundary:<part>"``, ...).
            n: number of points, a positive int.
            method: ``"uniform"`` (i.i.d., numpy Generator), ``"sobol"``, ``"halton"`` (scrambled, seeded) or
                ``"lhs"`` (Latin hypercube), the last three from ``scipy.stats.qmc``.
            seed: non-negative int seed; the same seed gives the same points.
            normals: if true (boundary sets only), also return the outward unit normal at each point, exact per
                piece (face, edge, circle; the operand's normal, flipped for the subtracted operand of a
                ``Difference``; spatial normal with time component 0 for a ``SpaceTime``).

        Returns:
            float64 numpy array ``x: (n, dim)``, or the pair ``(x, normal)`` with ``normal: (n, dim)``,
            ``|normal| = 1``, when ``normals`` is true.
        """
        where = self._check_where(where)
        n = check_int(n, "n", 1)
        method = check_method(method)
        seed = check_int(seed, "seed", 0)
        if not isinstance(normals, (bool, np.bool_)):
            raise ValueError(f"normals must be True or False, got {normals!r}")
        if normals and not is_boundary_set(where):
            raise ValueError(
                f"normals=True needs a boundary point set ('boundary' or 'boundary:<part>'); got {where!r}"
            )
        pieces = self._pieces_of(where)
        if not pieces:
            raise ValueError(
                f"{type(self).__name__}: the point set {where!r} is empty (none of the probe points of its source "
                "pieces is kept); choose another point set or part"
            )
        out = sample_pieces(pieces, n, method, seed, self.dim, bool(normals))
        x = out[0] if normals else out
        assert x.shape == (n, self.dim), (x.shape, n, self.dim)
        return out

    def contains(self, x: np.ndarray, where: str = "interior", atol: float = 1e-12) -> np.ndarray:
        """Membership test of points in the closure of a point set, within a tolerance.

        The tolerance is ``atol + 16 eps s`` with ``s = max(1, max |bounds|)``: ``atol`` plus a few units of
        round-off at the domain's coordinate scale, so that points built by the domain's own maps are accepted.
        ``"interior"`` is tested as the closed set (points on the boundary count as inside).

        Args:
            x: points ``(..., dim)``.
            where: one of :attr:`all_point_sets`.
            atol: non-negative absolute tolerance.

        Returns:
            bool numpy array ``(...)``.
        """
        where = self._check_where(where)
        x, shape = self._check_points(x)
        return self._contains_of(x, where, self._tol(self._check_atol(atol))).reshape(shape)

    def normals(self, x: np.ndarray, where: str = "boundary", atol: float = 1e-12) -> np.ndarray:
        """Outward unit normals at given points of a boundary set.

        Exact on the smooth part of the boundary. Where several faces/edges meet (box corners and edges, polygon
        vertices, points where the boundaries of two CSG operands cross) the convention is the normalised sum of
        the outward normals of all faces/edges the point lies on within the tolerance (the bisector at a 2-D
        corner). On a named part, the normal is that part's (face, edge) normal.

        Args:
            x: points ``(..., dim)`` on the set ``where`` (tested with :meth:`contains` and the same ``atol``).
            where: ``"boundary"`` or ``"boundary:<part>"``.
            atol: non-negative absolute tolerance, as in :meth:`contains`.

        Returns:
            float64 ``(..., dim)``, unit rows.

        Raises:
            ValueError: if ``where`` is not a boundary set or a point is not on it.
        """
        where = self._check_where(where)
        if not is_boundary_set(where):
            raise ValueError(
                f"normals are defined on boundary point sets ('boundary', 'boundary:<part>'); got {where!r}"
            )
        x, shape = self._check_points(x)
        tol = self._tol(self._check_atol(atol))
        on = self._contains_of(x, where, tol)
        if not on.all():
            i = int(np.flatnonzero(~on)[0])
            raise ValueError(
                f"normals: {int(np.count_nonzero(~on))} of {on.size} points are not on {where!r} within {tol:.3g} "
                f"(first: row {i}, {x[i].tolist()}); normals exist only on the boundary"
            )
        return self._normals_of(x, where, tol).reshape(shape + (self.dim,))

    def measure(self, where: str = "interior") -> float:
        """The measure of a point set: volume/area/length of the interior, area/length of the boundary or a part.

        Exact for Interval, Box, Disk, Polygon and their space-time products; for CSG domains and predicate parts an
        estimate: the kept fraction of 2^14 scrambled-Sobol probes (fixed seed) of each thinned piece times the
        piece's measure, deterministic, with an error far below the i.i.d. 1/sqrt(2^14) = 0.8 % for piecewise-smooth
        sets. End points count 1 each (the "length" of a 0-dimensional boundary).
        """
        return float(sum(p.measure for p in self._pieces_of(self._check_where(where))))

    def with_parts(self, **predicates: Predicate) -> Domain:
        """A copy of this domain with extra named boundary parts defined by predicates.

        Each ``predicate(x: (m, dim) np.ndarray) -> (m,) bool`` selects the boundary points of its part;
        ``"boundary:<name>"`` then works in ``sample`` (exactly n points, drawn by rejection from the boundary's own
        pieces with the same method and seed), ``contains`` (boundary and predicate) and ``normals`` (the boundary's
        normals). The new domain has the same type and fields (plus ``predicate_parts``), so it compares equal only
        to a domain built with the same predicate objects.

        Raises:
            ValueError: a name that is not an identifier or already a part, a predicate that is not callable or
                does not return an ``(m,)`` bool array, or a predicate that selects (almost) none of the boundary.
        """
        if not predicates:
            raise ValueError(f"{type(self).__name__}.with_parts: give at least one part, name=predicate")
        taken = set(self.boundary_parts)
        for name, pred in predicates.items():
            if not _PART_NAME.fullmatch(name):
                raise ValueError(f"{type(self).__name__}.with_parts: part name must be an identifier, got {name!r}")
            if name in taken:
                raise ValueError(
                    f"{type(self).__name__}.with_parts: part {name!r} already exists; existing parts: "
                    f"{', '.join(self.boundary_parts) or '(none)'}"
                )
            if not callable(pred):
                raise ValueError(
                    f"{type(self).__name__}.with_parts: part {name!r} needs a callable predicate(x) -> (m,) bool, "
                    f"got {pred!r}"
                )
        out = dataclasses.replace(self, predicate_parts=self.predicate_parts + tuple(predicates.items()))
        for name in predicates:
            out._pieces_of(f"boundary:{name}")  # validates now: non-empty part, well-formed predicate output
        return out

    def __or__(self, other: Domain) -> Domain:
        from ._csg import Union

        return Union(self, other)

    def __and__(self, other: Domain) -> Domain:
        from ._csg import Intersection

        return Intersection(self, other)

    def __sub__(self, other: Domain) -> Domain:
        from ._csg import Difference

        return Difference(self, other)

    # ------------------------------------------------------------------ validation helpers

    def _check_where(self, where: Any) -> str:
        """Validates a point-set name and returns its canonical form (aliases resolved)."""
        if isinstance(where, str) and where in self.point_sets:
            return where
        if isinstance(where, str) and where.startswith("boundary:"):
            part = where[len("boundary:") :]
            part = self._part_aliases().get(part, part)
            if part in self._canonical_parts():
                return f"boundary:{part}"
            raise ValueError(
                f"unknown boundary part {where[len('boundary:') :]!r} of this {type(self).__name__}; allowed parts: "
                f"{', '.join(self.boundary_parts) or '(none)'}"
            )
        parts = f"'boundary:<part>' with <part> in {', '.join(self.boundary_parts)}" if self.boundary_parts else ""
        raise ValueError(
            f"where must name a point set of this {type(self).__name__}: one of "
            f"{', '.join(repr(s) for s in self.point_sets)}{' or ' + parts if parts else ''}; got {where!r}"
        )

    def _check_points(self, x: Any) -> tuple[np.ndarray, tuple[int, ...]]:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(
                f"x must be an array of points with shape (..., {self.dim}) for this {type(self).__name__}, "
                f"got shape {x.shape}"
            )
        return x.reshape(-1, self.dim), x.shape[:-1]

    def _check_atol(self, atol: Any) -> float:
        atol = check_real(atol, "atol", type(self).__name__)
        if atol < 0:
            raise ValueError(f"{type(self).__name__}: atol must be >= 0, got {atol}")
        return atol


def call_predicate(name: str, pred: Predicate, x: np.ndarray) -> np.ndarray:
    """Evaluates a part predicate on ``x: (m, dim)`` and checks it returns an ``(m,)`` bool array."""
    out = np.asarray(pred(x))
    if out.shape != (x.shape[0],) or out.dtype != np.bool_:
        raise ValueError(
            f"with_parts: the predicate of part {name!r} must return a bool array of shape ({x.shape[0]},) for "
            f"points of shape {x.shape}; got a {out.dtype} array of shape {out.shape}"
        )
    return out


def filtered_grid(domain: Domain, n: Any) -> np.ndarray:
    """A tensor grid of the bounding box, filtered to the closed domain, with about ``n`` points inside.

    The bounding-box grid gets ``ceil(n * vol(box) / measure(domain))`` points (so that about ``n`` fall inside);
    rows keep the C order of :func:`box_grid`. Returns float64 ``(M, dim)``.
    """
    n = check_int(n, "n", 1)
    lo, hi = domain.bounds()
    ratio = float(np.prod(hi - lo)) / domain.measure("interior")
    g = box_grid(lo, hi, max(1, int(np.ceil(n * ratio))))
    return g[domain.contains(g, "interior")]


def per_axis(n: Any, d: int) -> int:
    """Smallest m >= 2 with m^d >= n (exact integer arithmetic), after checking ``n`` is a positive int."""
    n = check_int(n, "n", 1)
    m = max(2, int(math.floor(n ** (1.0 / d))))
    while m**d < n:
        m += 1
    while m > 2 and (m - 1) ** d >= n:
        m -= 1
    return m


def face_names(d: int) -> tuple[str, ...]:
    """Canonical face names of a d-dimensional box, in piece order: ``x0_lo, x0_hi, x1_lo, ...``."""
    return tuple(f"x{a}_{side}" for a in range(d) for side in ("lo", "hi"))


def face_aliases(d: int) -> dict[str, str]:
    """``left``/``right`` for axis 0 and, in 2-D, ``bottom``/``top`` for axis 1."""
    out = {"left": "x0_lo", "right": "x0_hi"}
    if d == 2:
        out.update(bottom="x1_lo", top="x1_hi")
    return out


def box_pieces(lo: np.ndarray, hi: np.ndarray, where: str) -> tuple[Piece, ...]:
    """Pieces of the interior (one), boundary (2 d faces, order: axis 0 lo, axis 0 hi, axis 1 lo, ...) or one face
    ``"boundary:x<a>_<lo|hi>"`` of a box.

    The interior map is the affine x = lo + (hi - lo) u. The face x_a = lo_a (or hi_a) is parametrised by the other
    d - 1 coordinates, again affinely; its weight is its (d-1)-volume prod_{b != a} (hi_b - lo_b) (1 when d = 1,
    where the faces are the two end points), its outward normal -e_a (or +e_a).
    """
    ext = hi - lo
    d = lo.size
    if where == "interior":
        return (Piece(float(np.prod(ext)), d, lambda u: lo + ext * u),)
    pieces = []
    for a in range(d):
        others = np.array([b for b in range(d) if b != a], dtype=np.int64)
        for sign, value in ((-1.0, lo[a]), (1.0, hi[a])):

            def face(u, a=a, value=value, others=others):
                x = np.empty((u.shape[0], d))
                x[:, others] = lo[others] + ext[others] * u
                x[:, a] = value
                return x

            e = np.zeros(d)
            e[a] = sign
            pieces.append(
                Piece(float(np.prod(ext[others])), d - 1, face, normal=lambda u, e=e: np.tile(e, (u.shape[0], 1)))
            )
    if where == "boundary":
        return tuple(pieces)
    return (pieces[face_names(d).index(where[len("boundary:") :])],)


def box_contains(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, where: str, tol: float) -> np.ndarray:
    """Closed-box membership within ``tol``; for ``"boundary"`` also some coordinate within ``tol`` of a face, for
    ``"boundary:x<a>_<lo|hi>"`` coordinate a within ``tol`` of that face."""
    inside = np.all((x >= lo - tol) & (x <= hi + tol), axis=-1)
    if where == "interior":
        return inside
    if where == "boundary":
        return inside & np.any((np.abs(x - lo) <= tol) | (np.abs(x - hi) <= tol), axis=-1)
    i = face_names(lo.size).index(where[len("boundary:") :])
    a, value = i // 2, (lo, hi)[i % 2][i // 2]
    return inside & (np.abs(x[..., a] - value) <= tol)


def box_normals(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, where: str, tol: float) -> np.ndarray:
    """Outward unit normals at boundary points of a box: the face normal on a face; on ``"boundary"`` the
    normalised sum of the normals of every face within ``tol`` (corners and edges: the diagonal direction)."""
    if where != "boundary":
        i = face_names(lo.size).index(where[len("boundary:") :])
        e = np.zeros(lo.size)
        e[i // 2] = -1.0 if i % 2 == 0 else 1.0
        return np.tile(e, (x.shape[0], 1))
    v = (np.abs(x - hi) <= tol).astype(np.float64) - (np.abs(x - lo) <= tol).astype(np.float64)
    return unit_rows(v)


def box_grid(lo: np.ndarray, hi: np.ndarray, n: int) -> np.ndarray:
    """Tensor grid with m = max(2, ceil(n^(1/d))) points per axis, end points included: ``(m^d, d)``, C order."""
    m = per_axis(n, lo.size)
    axes = [np.linspace(a, b, m) for a, b in zip(lo, hi)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, lo.size)
