"""The ``Domain`` base class: point sets, sampling, membership, evaluation grids."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from ._unit import Piece, check_int, check_method, sample_pieces


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


@dataclasses.dataclass(frozen=True)
class Domain:
    """A computational domain: a set in R^dim with named point sets (``"interior"``, ``"boundary"``, ...).

    Subclasses are frozen (hence hashable) dataclasses. They describe each point set as a union of pieces, each the
    image of a unit cube under a map that sends uniform points to uniform points on the piece; ``sample`` draws
    unit-cube points with the requested method and pushes them through these maps. Time, when present, is the last
    coordinate.
    """

    @property
    def dim(self) -> int:
        """Number of coordinates of a point (space + time)."""
        raise NotImplementedError

    @property
    def point_sets(self) -> tuple[str, ...]:
        """Names of the point sets ``sample`` and ``contains`` accept."""
        return ("interior", "boundary")

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned bounding box ``(lo, hi)``, two float64 arrays ``(dim,)``."""
        raise NotImplementedError

    def grid(self, n: int) -> np.ndarray:
        """Deterministic evaluation points covering the closed domain, about ``n`` of them: float64 ``(M, dim)``."""
        raise NotImplementedError

    def _pieces(self, where: str) -> tuple[Piece, ...]:
        raise NotImplementedError

    def _contains(self, x: np.ndarray, where: str, tol: float) -> np.ndarray:
        raise NotImplementedError

    # ------------------------------------------------------------------ shared public methods

    def sample(self, where: str, n: int, method: str = "uniform", seed: int = 0) -> np.ndarray:
        """Draws ``n`` points on the point set ``where``.

        Points on a set made of several pieces (faces of a box, ends of an interval) are allocated to the pieces in
        proportion to their measure by a deterministic house-monotone apportionment (each piece gets within about
        one point of n * measure_k / total); within a piece the points follow ``method``. For ``"uniform"``,
        ``"sobol"`` and ``"halton"`` a draw of m < n points with the same seed is the first m rows of the draw of n
        points (nested sets for batch-size progressions).

        Args:
            where: one of :attr:`point_sets`.
            n: number of points, a positive int.
            method: ``"uniform"`` (i.i.d., numpy Generator), ``"sobol"``, ``"halton"`` (scrambled, seeded) or
                ``"lhs"`` (Latin hypercube), the last three from ``scipy.stats.qmc``.
            seed: non-negative int seed; the same seed gives the same points.

        Returns:
            float64 numpy array ``(n, dim)``.
        """
        pieces = self._pieces(self._check_where(where))
        n = check_int(n, "n", 1)
        method = check_method(method)
        seed = check_int(seed, "seed", 0)
        out = sample_pieces(pieces, n, method, seed, self.dim)
        assert out.shape == (n, self.dim), (out.shape, n, self.dim)
        return out

    def contains(self, x: np.ndarray, where: str = "interior", atol: float = 1e-12) -> np.ndarray:
        """Membership test of points in the closure of a point set, within a tolerance.

        The tolerance is ``atol + 16 eps s`` with ``s = max(1, max |bounds|)``: ``atol`` plus a few units of
        round-off at the domain's coordinate scale, so that points built by the domain's own maps are accepted.
        ``"interior"`` is tested as the closed set (points on the boundary count as inside).

        Args:
            x: points ``(..., dim)``.
            where: one of :attr:`point_sets`.
            atol: non-negative absolute tolerance.

        Returns:
            bool numpy array ``(...)``.
        """
        where = self._check_where(where)
        x = np.asarray(x, dtype=np.float64)
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(
                f"x must be an array of points with shape (..., {self.dim}) for this {type(self).__name__}, "
                f"got shape {x.shape}"
            )
        atol = check_real(atol, "atol", type(self).__name__)
        if atol < 0:
            raise ValueError(f"{type(self).__name__}: atol must be >= 0, got {atol}")
        lo, hi = self.bounds()
        scale = max(1.0, float(np.max(np.abs(np.concatenate([lo, hi])))))
        return self._contains(x, where, atol + 16 * np.finfo(np.float64).eps * scale)

    def _check_where(self, where: Any) -> str:
        if not isinstance(where, str) or where not in self.point_sets:
            raise ValueError(
                f"where must name a point set of this {type(self).__name__}: one of "
                f"{', '.join(repr(s) for s in self.point_sets)}; got {where!r}"
            )
        return where


def per_axis(n: Any, d: int) -> int:
    """Smallest m >= 2 with m^d >= n (exact integer arithmetic), after checking ``n`` is a positive int."""
    n = check_int(n, "n", 1)
    m = max(2, int(math.floor(n ** (1.0 / d))))
    while m**d < n:
        m += 1
    while m > 2 and (m - 1) ** d >= n:
        m -= 1
    return m


def box_pieces(lo: np.ndarray, hi: np.ndarray, where: str) -> tuple[Piece, ...]:
    """Pieces of the interior (one) or boundary (2 d faces, order: axis 0 lo, axis 0 hi, axis 1 lo, ...) of a box.

    The interior map is the affine x = lo + (hi - lo) u. The face x_a = lo_a (or hi_a) is parametrised by the other
    d - 1 coordinates, again affinely; its weight is its (d-1)-volume prod_{b != a} (hi_b - lo_b) (1 when d = 1,
    where the faces are the two end points).
    """
    ext = hi - lo
    d = lo.size
    if where == "interior":
        return (Piece(float(np.prod(ext)), d, lambda u: lo + ext * u),)
    pieces = []
    for a in range(d):
        others = np.array([b for b in range(d) if b != a], dtype=np.int64)
        for value in (lo[a], hi[a]):

            def face(u, a=a, value=value, others=others):
                x = np.empty((u.shape[0], d))
                x[:, others] = lo[others] + ext[others] * u
                x[:, a] = value
                return x

            pieces.append(Piece(float(np.prod(ext[others])), d - 1, face))
    return tuple(pieces)


def box_contains(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, where: str, tol: float) -> np.ndarray:
    """Closed-box membership within ``tol``; for ``"boundary"`` also some coordinate within ``tol`` of a face."""
    inside = np.all((x >= lo - tol) & (x <= hi + tol), axis=-1)
    if where == "interior":
        return inside
    on_face = np.any((np.abs(x - lo) <= tol) | (np.abs(x - hi) <= tol), axis=-1)
    return inside & on_face


def box_grid(lo: np.ndarray, hi: np.ndarray, n: int) -> np.ndarray:
    """Tensor grid with m = max(2, ceil(n^(1/d))) points per axis, end points included: ``(m^d, d)``, C order."""
    m = per_axis(n, lo.size)
    axes = [np.linspace(a, b, m) for a, b in zip(lo, hi)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, lo.size)

