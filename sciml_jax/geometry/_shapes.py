"""Concrete domains: Interval, Box (any dimension), Disk, and the space-time product SpaceTime."""

from __future__ import annotations

import dataclasses

import numpy as np

from ._domain import (
    Domain,
    box_contains,
    box_grid,
    box_normals,
    box_pieces,
    check_real,
    check_vector,
    face_aliases,
    face_names,
    per_axis,
)
from ._unit import Piece, check_int


class _AxisAligned(Domain):
    """Shared point-set logic of axis-aligned boxes (Interval and Box), in terms of ``bounds()``.

    Boundary parts: the faces ``x0_lo, x0_hi, x1_lo, ...`` (face x_a = lo_a, x_a = hi_a), with the aliases
    ``left``/``right`` (axis 0) and, in 2-D, ``bottom``/``top`` (axis 1). Outward normals: -e_a on ``x<a>_lo``,
    +e_a on ``x<a>_hi``; at corners and edges, the normalised sum of the normals of the faces the point lies on.
    """

    def _intrinsic_parts(self):
        return face_names(self.dim)

    def _part_aliases(self):
        return face_aliases(self.dim)

    def _pieces(self, where):
        return box_pieces(*self.bounds(), where)

    def _contains(self, x, where, tol):
        return box_contains(x, *self.bounds(), where, tol)

    def _normals(self, x, where, tol):
        return box_normals(x, *self.bounds(), where, tol)


@dataclasses.dataclass(frozen=True)
class Interval(_AxisAligned):
    """The interval [lo, hi] in R^1; points have shape ``(1,)``.

    Point sets: ``"interior"`` (x = lo + (hi - lo) u with u in [0, 1)) and ``"boundary"`` (the two end points,
    alternating lo, hi, lo, ... for every method, so n = 2 gives exactly lo and hi). Boundary parts ``left`` and
    ``right`` (also named ``x0_lo``, ``x0_hi``, as for a 1-D ``Box``), outward normals -1 and +1.

    Args:
        lo: left end, a finite real.
        hi: right end, a finite real > lo.
    """

    lo: float
    hi: float

    def __post_init__(self):
        lo = check_real(self.lo, "lo", "Interval")
        hi = check_real(self.hi, "hi", "Interval")
        if not lo < hi:
            raise ValueError(f"Interval: lo must be < hi on axis 0; got lo={lo}, hi={hi}")
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    @property
    def dim(self) -> int:
        return 1

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array([self.lo]), np.array([self.hi])

    def grid(self, n: int) -> np.ndarray:
        """``max(n, 2)`` equispaced points from lo to hi inclusive: ``(max(n, 2), 1)``."""
        return box_grid(*self.bounds(), n)


@dataclasses.dataclass(frozen=True)
class Box(_AxisAligned):
    """The box [lo_0, hi_0] x ... x [lo_{d-1}, hi_{d-1}] in R^d, d >= 1 (a 1-D box behaves like an Interval).

    Point sets: ``"interior"`` (x = lo + (hi - lo) u, u from the d-dimensional unit cube) and ``"boundary"`` (the
    2 d faces; each point is allocated to a face in proportion to face area, deterministically, and its other d - 1
    coordinates come from a (d-1)-dimensional sample of the chosen method, one independent stream per face, so
    quasi-random boundary points stay well spread on every face). Boundary parts: one per face, ``x<a>_lo`` and
    ``x<a>_hi`` for a = 0..d-1, aliases ``left``/``right`` (axis 0) and, in 2-D, ``bottom``/``top`` (axis 1);
    outward normals -e_a and +e_a.

    Args:
        lo: lower corner, a sequence of d finite reals.
        hi: upper corner, a sequence of d finite reals with hi[i] > lo[i].
    """

    lo: tuple[float, ...]
    hi: tuple[float, ...]

    def __post_init__(self):
        lo = check_vector(self.lo, "lo", "Box")
        hi = check_vector(self.hi, "hi", "Box")
        if len(lo) != len(hi):
            raise ValueError(
                f"Box: lo and hi must have the same number of coordinates; got {len(lo)} (lo={lo}) and "
                f"{len(hi)} (hi={hi})"
            )
        for i, (a, b) in enumerate(zip(lo, hi)):
            if not a < b:
                raise ValueError(f"Box: lo must be < hi on every axis; on axis {i} got lo[{i}]={a}, hi[{i}]={b}")
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    @property
    def dim(self) -> int:
        return len(self.lo)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array(self.lo), np.array(self.hi)

    def grid(self, n: int) -> np.ndarray:
        """Tensor grid, m = max(2, ceil(n^(1/d))) points per axis including both ends: ``(m^d, d)``."""
        return box_grid(*self.bounds(), n)


@dataclasses.dataclass(frozen=True)
class Disk(Domain):
    """The closed disk |x - center| <= radius in R^2.

    Point sets: ``"interior"`` through the area-preserving polar map r = R sqrt(u_0), theta = 2 pi u_1 of
    two-dimensional unit-square points (uniform u gives points uniform in area), and ``"boundary"``, the circle,
    with theta = 2 pi u from one-dimensional points. Boundary part ``circle`` (the whole circle); outward normal
    (x - center) / radius.

    Args:
        center: two finite reals.
        radius: a finite real > 0.
    """

    center: tuple[float, ...] = (0.0, 0.0)
    radius: float = 1.0

    def __post_init__(self):
        center = check_vector(self.center, "center", "Disk")
        if len(center) != 2:
            raise ValueError(f"Disk: center must have 2 coordinates, got {len(center)} (center={center})")
        radius = check_real(self.radius, "radius", "Disk")
        if not radius > 0:
            raise ValueError(f"Disk: radius must be > 0, got {radius}")
        object.__setattr__(self, "center", center)
        object.__setattr__(self, "radius", radius)

    @property
    def dim(self) -> int:
        return 2

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        c = np.array(self.center)
        return c - self.radius, c + self.radius

    def _polar(self, r: np.ndarray, theta: np.ndarray) -> np.ndarray:
        return np.array(self.center) + np.stack([r * np.cos(theta), r * np.sin(theta)], axis=-1)

    def _intrinsic_parts(self):
        return ("circle",)

    def _pieces(self, where):
        R = self.radius
        if where == "interior":
            return (Piece(np.pi * R**2, 2, lambda u: self._polar(R * np.sqrt(u[:, 0]), 2 * np.pi * u[:, 1])),)
        return (
            Piece(
                2 * np.pi * R,
                1,
                lambda u: self._polar(np.full(u.shape[0], R), 2 * np.pi * u[:, 0]),
                normal=lambda u: np.stack([np.cos(2 * np.pi * u[:, 0]), np.sin(2 * np.pi * u[:, 0])], axis=-1),
            ),
        )

    def _contains(self, x, where, tol):
        r = np.linalg.norm(x - np.array(self.center), axis=-1)
        if where == "interior":
            return r <= self.radius + tol
        return np.abs(r - self.radius) <= tol

    def _normals(self, x, where, tol):
        z = x - np.array(self.center)
        return z / np.linalg.norm(z, axis=-1, keepdims=True)

    def grid(self, n: int) -> np.ndarray:
        """Concentric rings with spacing h = R / m in radius and about h along each ring.

        Ring j = 0..m has radius R j / m and max(1, round(2 pi j)) equispaced angles (odd rings rotated by half a
        step), so the grid is nearly uniform in area and contains the centre and the boundary circle. m >= 1 is
        chosen so that the total M(m) = 1 + sum_j round(2 pi j) is closest to n. Returns ``(M, 2)``.
        """
        n = check_int(n, "n", 1)
        sizes = [1, 6]  # points on rings 0, 1, ...; M(m) = sum(sizes[: m + 1]) increases with m
        total = 7
        while abs(total + round(2 * np.pi * len(sizes)) - n) < abs(total - n):
            sizes.append(round(2 * np.pi * len(sizes)))
            total += sizes[-1]
        m = len(sizes) - 1
        rings = []
        for j, k in enumerate(sizes):
            theta = 2 * np.pi * (np.arange(k) + 0.5 * (j % 2)) / k
            rings.append(self._polar(np.full(k, self.radius * j / m), theta))
        return np.concatenate(rings)


@dataclasses.dataclass(frozen=True)
class SpaceTime(Domain):
    """The space-time cylinder ``space x [t0, t1]``; time is the last coordinate, ``dim = space.dim + 1``.

    Point sets (each drawn from one joint sample over the product coordinates, so that quasi-random points are
    well spread in space and time together):
      * ``"interior"``: space interior x (t0, t1], t = t1 - (t1 - t0) u;
      * ``"boundary"``: space boundary x (t0, t1], same time map (faces allocated as for the space domain);
      * ``"initial"``: space interior x {t0};
      * ``"boundary:<part>"`` for each boundary part of ``space`` (same names, aliases included): the part x
        (t0, t1]. Outward normals on boundary sets: the spatial normal with time component 0.

    Args:
        space: a spatial domain (any ``Domain`` except a ``SpaceTime``).
        t0: initial time, a finite real.
        t1: final time, a finite real > t0.
    """

    space: Domain
    t0: float = 0.0
    t1: float = 1.0

    def __post_init__(self):
        if not isinstance(self.space, Domain) or isinstance(self.space, SpaceTime):
            raise ValueError(
                f"SpaceTime: space must be a spatial Domain (Interval, Box, Disk, ...), got {self.space!r}"
            )
        t0 = check_real(self.t0, "t0", "SpaceTime")
        t1 = check_real(self.t1, "t1", "SpaceTime")
        if not t0 < t1:
            raise ValueError(f"SpaceTime: t0 must be < t1 (time axis {self.space.dim}); got t0={t0}, t1={t1}")
        object.__setattr__(self, "t0", t0)
        object.__setattr__(self, "t1", t1)

    @property
    def dim(self) -> int:
        return self.space.dim + 1

    @property
    def point_sets(self) -> tuple[str, ...]:
        return ("interior", "boundary", "initial")

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.space.bounds()
        return np.append(lo, self.t0), np.append(hi, self.t1)

    def _intrinsic_parts(self):
        return self.space._canonical_parts()

    def _part_aliases(self):
        return self.space._part_aliases()

    def _pieces(self, where):
        t0, t1 = self.t0, self.t1
        if where == "initial":
            return tuple(
                Piece(
                    p.weight,
                    p.k,
                    lambda u, p=p: np.column_stack([p.map(u), np.full(u.shape[0], t0)]),
                    keep=None if p.keep is None else (lambda x, nrm, p=p: p.keep(x[:, :-1], None)),
                    accept=p.accept,
                )
                for p in self.space._pieces_of("interior")
            )

        def lift_normal(p):
            if p.normal is None:
                return None
            return lambda u: np.column_stack([p.normal(u[:, :-1]), np.zeros(u.shape[0])])

        def lift_keep(p):
            if p.keep is None:
                return None
            return lambda x, nrm: p.keep(x[:, :-1], None if nrm is None else nrm[:, :-1])

        return tuple(
            Piece(
                p.weight * (t1 - t0),
                p.k + 1,
                lambda u, p=p: np.column_stack([p.map(u[:, :-1]), t1 - (t1 - t0) * u[:, -1]]),
                normal=lift_normal(p),
                keep=lift_keep(p),
                accept=p.accept,
            )
            for p in self.space._pieces_of(where)
        )

    def _contains(self, x, where, tol):
        xs, t = x[..., :-1], x[..., -1]
        if where == "initial":
            return self.space._contains_of(xs, "interior", tol) & (np.abs(t - self.t0) <= tol)
        return self.space._contains_of(xs, where, tol) & (t >= self.t0 - tol) & (t <= self.t1 + tol)

    def _normals(self, x, where, tol):
        return np.column_stack([self.space._normals_of(x[:, :-1], where, tol), np.zeros(x.shape[0])])

    def grid(self, n: int) -> np.ndarray:
        """Product of ``space.grid(m^ds)`` and m equispaced times in [t0, t1], m = max(2, ceil(n^(1/(ds+1)))).

        Rows are ordered space-major (time varies fastest). Returns ``(M_space * m, dim)``.
        """
        m = per_axis(n, self.dim)
        xs = self.space.grid(m**self.space.dim)
        ts = np.linspace(self.t0, self.t1, m)
        return np.column_stack([np.repeat(xs, m, axis=0), np.tile(ts, xs.shape[0])])
