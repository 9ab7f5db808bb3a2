"""Constructive solid geometry: ``Union``, ``Intersection`` and ``Difference`` of two domains of equal dimension.

Sampling is by rejection from the operands' own pieces (each thinned by a membership test on the other operand),
never from the bounding box: the operands' maps keep quasi-random points well spread (a disk's polar map, a polygon's
triangles), the acceptance rate is the fraction of an operand that survives (not the fraction of a possibly much
larger box), and the same code works in any dimension. The price is a measure estimate for each thinned piece
(:func:`sciml_jax.geometry._unit.estimate_accept`: 2^14 scrambled-Sobol probes with a fixed seed), used to allocate
points between pieces; ``measure()`` reports these estimates.

Classification of a point x against an operand D: side(D, x) = 0 on ∂D (within the tolerance), -1 in the open
interior, +1 outside. A ``Difference`` is an intersection with the complement of b (side and normal of b negated).
Where the boundaries of a and b coincide (shared faces), the outward normals decide: with opposite normals the
shared piece is interior to a union (and outside an intersection); with equal normals it is boundary, counted once
(from a).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from ._domain import Domain, filtered_grid, unit_rows
from ._shapes import SpaceTime
from ._unit import Piece, thin

# Two unit normals count as opposite (or equal) when their dot product is within 1e-6 of -1 (or 1): coincident
# boundaries give +-1 up to round-off, transversal crossings (a measure-zero set) anything in between.
_PARALLEL = 1.0 - 1e-6


def _side(dom: Domain, x: np.ndarray, tol: float) -> np.ndarray:
    """-1 (open interior), 0 (boundary) or +1 (outside) for each row of ``x: (m, dim)``: int ``(m,)``."""
    on = dom._contains_of(x, "boundary", tol)
    inside = dom._contains_of(x, "interior", tol)
    return np.where(on, 0, np.where(inside, -1, 1))


def _flip(piece: Piece) -> Piece:
    """The same piece with its normal negated (its ``keep`` still sees the original normal)."""
    keep = piece.keep
    return dataclasses.replace(
        piece,
        normal=lambda u: -piece.normal(u),
        keep=None if keep is None else (lambda x, nrm: keep(x, None if nrm is None else -nrm)),
    )


@dataclasses.dataclass(frozen=True)
class _CSG(Domain):
    """Shared logic of the binary CSG operations (see the module docstring)."""

    a: Domain
    b: Domain

    _UNION: ClassVar[bool] = False  # union (True) or intersection (False) of a and b'
    _FLIP: ClassVar[bool] = False  # b' = complement of b (Difference)

    def __post_init__(self):
        name = type(self).__name__
        for arg, dom in (("a", self.a), ("b", self.b)):
            if not isinstance(dom, Domain) or isinstance(dom, SpaceTime):
                raise ValueError(
                    f"{name}: {arg} must be a spatial Domain (Interval, Box, Disk, Polygon or a CSG domain), got {dom!r}"
                )
        if self.a.dim != self.b.dim:
            raise ValueError(
                f"{name}: a and b must have the same dimension; got a.dim = {self.a.dim} ({type(self.a).__name__}) "
                f"and b.dim = {self.b.dim} ({type(self.b).__name__})"
            )
        lo, hi = self.bounds()
        if np.any(lo >= hi):
            raise ValueError(f"{name}: the operands do not overlap (their bounding boxes are disjoint): empty result")
        if self.measure("interior") == 0.0:
            raise ValueError(
                f"{name}: the result is empty (none of the probe points of the operands' interiors is kept)"
            )

    @property
    def dim(self) -> int:
        return self.a.dim

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        (la, ha), (lb, hb) = self.a.bounds(), self.b.bounds()
        if self._FLIP:
            return la, ha
        if self._UNION:
            return np.minimum(la, lb), np.maximum(ha, hb)
        return np.maximum(la, lb), np.minimum(ha, hb)

    def grid(self, n: int) -> np.ndarray:
        """Tensor grid of the bounding box filtered to the closed domain, about ``n`` points inside (the box grid
        has ``ceil(n * box volume / measure)`` points, the measure estimated). Returns float64 ``(M, dim)``."""
        return filtered_grid(self, n)

    # ------------------------------------------------------------------ parts

    def _intrinsic_parts(self):
        return (
            ("a", "b")
            + tuple(f"a.{p}" for p in self.a._canonical_parts())
            + tuple(f"b.{p}" for p in self.b._canonical_parts())
        )

    def _part_aliases(self):
        out = {f"a.{k}": f"a.{v}" for k, v in self.a._part_aliases().items()}
        out.update({f"b.{k}": f"b.{v}" for k, v in self.b._part_aliases().items()})
        return out

    @staticmethod
    def _source(where: str) -> tuple[str, str]:
        """``"boundary:a.left"`` -> ("a", "boundary:left"); ``"boundary:b"`` -> ("b", "boundary")."""
        part = where[len("boundary:") :]
        operand, _, rest = part.partition(".")
        return operand, (f"boundary:{rest}" if rest else "boundary")

    # ------------------------------------------------------------------ classification

    def _sign(self) -> float:
        return -1.0 if self._FLIP else 1.0

    def _side_b(self, x: np.ndarray, tol: float) -> np.ndarray:
        return _side(self.b, x, tol) * (-1 if self._FLIP else 1)

    def _opposite(self, x: np.ndarray, na: np.ndarray | None, tol: float) -> np.ndarray:
        """For points on both boundaries: whether the outward normals of a and b' are opposite."""
        if na is None:
            na = self.a._normals_of(x, "boundary", tol)
        nb = self._sign() * self.b._normals_of(x, "boundary", tol)
        return np.sum(na * nb, axis=-1) <= -_PARALLEL

    def _keep_a(self, x: np.ndarray, na: np.ndarray | None, tol: float) -> np.ndarray:
        """Which points of ∂a belong to the result's boundary (crossings and equal-normal shared pieces: yes)."""
        sb = self._side_b(x, tol)
        keep = sb > 0 if self._UNION else sb < 0
        both = sb == 0
        if both.any():
            keep[both] = ~self._opposite(x[both], None if na is None else na[both], tol)
        return keep

    def _keep_b(self, x: np.ndarray, tol: float) -> np.ndarray:
        """Which points of ∂b belong to the result's boundary (points also on ∂a are left to a)."""
        sa = _side(self.a, x, tol)
        return sa > 0 if self._UNION else sa < 0

    # ------------------------------------------------------------------ hooks

    def _pieces(self, where):
        tol = self._tol()
        a, b = self.a, self.b
        if where == "interior":
            if self._UNION:
                outside_a = lambda x, nrm: ~a._contains_of(x, "interior", tol)
                pieces = a._pieces_of("interior") + tuple(thin(p, outside_a) for p in b._pieces_of("interior"))
            elif self._FLIP:
                outside_b = lambda x, nrm: ~b._contains_of(x, "interior", tol)
                pieces = tuple(thin(p, outside_b) for p in a._pieces_of("interior"))
            else:  # intersection: thin the smaller operand (fewer rejections)
                src, other = (a, b) if a.measure("interior") <= b.measure("interior") else (b, a)
                inside = lambda x, nrm: other._contains_of(x, "interior", tol)
                pieces = tuple(thin(p, inside) for p in src._pieces_of("interior"))
            return tuple(p for p in pieces if p.accept > 0)
        if where == "boundary":
            sources = [("a", "boundary"), ("b", "boundary")]
        else:
            sources = [self._source(where)]
        pieces = []
        keep_a = lambda x, nrm: self._keep_a(x, nrm, tol)
        keep_b = lambda x, nrm: self._keep_b(x, tol)
        for operand, src in sources:
            if operand == "a":
                pieces += [thin(p, keep_a) for p in a._pieces_of(src)]
            else:
                thinned = [thin(p, keep_b) for p in b._pieces_of(src)]
                pieces += [_flip(p) for p in thinned] if self._FLIP else thinned
        return tuple(p for p in pieces if p.accept > 0)

    def _contains(self, x, where, tol):
        if where not in ("interior", "boundary"):
            operand, src = self._source(where)
            if operand == "a":
                on = self.a._contains_of(x, src, tol)
                out = np.zeros(x.shape[0], dtype=bool)
                out[on] = self._keep_a(x[on], None, tol)
                return out
            on = self.b._contains_of(x, src, tol)
            out = np.zeros(x.shape[0], dtype=bool)
            out[on] = self._keep_b(x[on], tol)
            return out
        sa, sb = _side(self.a, x, tol), self._side_b(x, tol)
        both = (sa == 0) & (sb == 0)
        opp = np.zeros(x.shape[0], dtype=bool)
        if both.any():
            opp[both] = self._opposite(x[both], None, tol)
        if self._UNION:
            closed = (sa <= 0) | (sb <= 0)
            if where == "interior":
                return closed
            return closed & (sa >= 0) & (sb >= 0) & ~(both & opp)
        closed = (sa <= 0) & (sb <= 0) & ~(both & opp)
        if where == "interior":
            return closed
        return closed & ((sa == 0) | (sb == 0))

    def _normals(self, x, where, tol):
        if where != "boundary":
            operand, src = self._source(where)
            if operand == "a":
                return self.a._normals_of(x, src, tol)
            return self._sign() * self.b._normals_of(x, src, tol)
        out = np.zeros_like(x)
        on_a = self.a._contains_of(x, "boundary", tol)
        on_b = self.b._contains_of(x, "boundary", tol)
        if on_a.any():
            out[on_a] += self.a._normals_of(x[on_a], "boundary", tol)
        if on_b.any():
            out[on_b] += self._sign() * self.b._normals_of(x[on_b], "boundary", tol)
        return unit_rows(out)


_CSG_DOC = """

    Point sets ``"interior"`` and ``"boundary"``; boundary parts ``a`` and ``b`` (the pieces of ∂a and ∂b on the
    result's boundary) and ``a.<part>``, ``b.<part>`` for every boundary part of the operands (aliases included),
    restricted the same way. Outward normals: the operand's own, {flip}; where the two boundaries cross, the
    normalised sum of both (the corner convention of :meth:`Domain.normals`).

    Sampling (every method): rejection from the operands' own pieces, {how}; the kept fraction of each piece is
    estimated once with 2^14 scrambled-Sobol probes (fixed seed) and points are allocated between pieces in
    proportion to the estimated kept measures (house-monotone, so uniform/Sobol/Halton draws stay nested prefixes;
    LHS is deterministic per seed only). ``measure()`` returns these estimates. ``contains`` is exact (up to the
    tolerance); ``grid(n)`` filters a bounding-box tensor grid to the closed result.

    Args:
        a, b: spatial domains (not ``SpaceTime``; wrap the CSG domain in a ``SpaceTime`` instead) of equal dimension.

    Raises:
        ValueError: mismatched dimensions, a non-domain operand, or an empty result.
    """


@dataclasses.dataclass(frozen=True)
class Union(_CSG):
    _UNION: ClassVar[bool] = True


Union.__doc__ = "The union a ∪ b (also ``a | b``); boundary = (∂a outside b) ∪ (∂b outside a)." + _CSG_DOC.format(
    flip="never flipped",
    how="all of a's interior pieces plus b's interior pieces thinned to the points outside a (so no region is "
    "counted twice); the boundary from ∂a outside b and ∂b outside a",
)


@dataclasses.dataclass(frozen=True)
class Intersection(_CSG):
    _UNION: ClassVar[bool] = False


Intersection.__doc__ = (
    "The intersection a ∩ b (also ``a & b``); boundary = (∂a inside b) ∪ (∂b inside a)."
    + _CSG_DOC.format(
        flip="never flipped",
        how="the interior pieces of the operand of smaller measure thinned to the points inside the other; the "
        "boundary from ∂a inside b and ∂b inside a",
    )
)


@dataclasses.dataclass(frozen=True)
class Difference(_CSG):
    _UNION: ClassVar[bool] = False
    _FLIP: ClassVar[bool] = True


Difference.__doc__ = (
    "The difference a \\ b (also ``a - b``), closed; boundary = (∂a outside b) ∪ (∂b inside a), the latter with "
    "flipped normals."
    + _CSG_DOC.format(
        flip="negated on the pieces of ∂b",
        how="a's interior pieces thinned to the points outside the closed b; the boundary from ∂a outside b and "
        "∂b inside a",
    )
)
