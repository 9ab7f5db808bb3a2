"""Points in the unit cube and their allocation to the pieces of a point set (private).

Every point set of a domain is a finite union of *pieces* (one for an interior, one per face for the boundary of a
box, ...). Each piece is the image of the unit cube [0, 1)^k under a measure-preserving (up to a constant) map, so
drawing points on a set reduces to (1) deciding how many of the n points go to each piece and (2) drawing points in
[0, 1)^k with the requested method. Quasi-random points come from ``scipy.stats.qmc``; the allocation (a divisor
apportionment) is written here because no library offers it.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import operator
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

METHODS: tuple[str, ...] = ("uniform", "sobol", "halton", "lhs")


@functools.cache
def _qmc() -> tuple[Any, str]:
    """``scipy.stats.qmc`` and the name of its engines' generator argument, imported on first use: ``scipy.stats``
    takes about a second to import and most programs never draw quasi-random points."""
    from scipy.stats import qmc  # noqa: PLC0415

    # scipy >= 1.15 calls the generator argument of the QMC engines `rng`; older versions call it `seed`.
    return qmc, ("rng" if "rng" in inspect.signature(qmc.Sobol).parameters else "seed")


@dataclasses.dataclass(frozen=True)
class Piece:
    """One piece of a point set: the image of [0, 1)^k under ``map``, optionally thinned by ``keep``.

    Attributes:
        weight: the k-dimensional measure (length, area, volume) of the whole image of ``map``.
        k: the number of free parameters (0 for an isolated point such as an end of an interval).
        map: ``u: (m, k) -> x: (m, dim)``, float64; uniform ``u`` must give points uniform on the piece.
        normal: ``u: (m, k) -> (m, dim)`` outward unit normals at ``map(u)`` (boundary pieces), or ``None``.
        keep: ``(x: (m, dim), normal: (m, dim) | None) -> (m,) bool``, the part of the image that belongs to the
            point set (CSG operands, predicate parts), or ``None`` for all of it. Points are drawn by rejection:
            the accepted rows of a longer draw, in order.
        accept: the fraction of the image's measure that ``keep`` accepts (1 without ``keep``; an estimate from
            :func:`estimate_accept` otherwise). Points are allocated in proportion to ``weight * accept``.
    """

    weight: float
    k: int
    map: Callable[[np.ndarray], np.ndarray]
    normal: Callable[[np.ndarray], np.ndarray] | None = None
    keep: Callable[[np.ndarray, np.ndarray | None], np.ndarray] | None = None
    accept: float = 1.0

    @property
    def measure(self) -> float:
        """The measure of the kept part, ``weight * accept``."""
        return self.weight * self.accept


def check_int(value: Any, name: str, minimum: int = 1) -> int:
    """Returns ``value`` as a Python int >= ``minimum`` (bools rejected) or raises ``ValueError``."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer >= {minimum}, got the bool {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise ValueError(
            f"{name} must be an integer >= {minimum}, got {value!r} of type {type(value).__name__}"
        ) from None
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return value


def check_method(method: Any) -> str:
    """Returns ``method`` after checking it is one of :data:`METHODS`."""
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(repr(m) for m in METHODS)}; got {method!r}")
    return method


def unit_sample(method: str, n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Draws ``n`` points in the unit cube [0, 1)^k.

    Args:
        method: ``"uniform"`` (i.i.d., ``rng.random``), ``"sobol"``, ``"halton"`` (scrambled low-discrepancy
            sequences) or ``"lhs"`` (Latin hypercube: each axis split into n strata, one point per stratum).
        n: number of points (>= 0).
        k: dimension (>= 0; ``k = 0`` gives an empty ``(n, 0)`` array).
        rng: the generator that seeds the scrambling (QMC) or draws the points (uniform).

    Returns:
        float64 array ``(n, k)``. For ``"uniform"``, ``"sobol"`` and ``"halton"`` the first m rows of a draw of n
        points equal a draw of m points with the same generator state (nested prefixes); LHS has no such property.
    """
    if k == 0 or n == 0:
        return np.zeros((n, k))
    if method == "uniform":
        return rng.random((n, k))
    if method == "sobol":
        qmc, kw = _qmc()
        engine = qmc.Sobol(k, scramble=True, **{kw: rng})
        with warnings.catch_warnings():
            # Deliberate: `random(n)` (not `random_base2`) so that any n works. Scipy warns that the balance
            # properties of Sobol' points need n = 2^m; a prefix of the sequence is still a low-discrepancy
            # set, and prefixes are what nested batches (batch-size progressions) need.
            warnings.filterwarnings("ignore", message="The balance properties of Sobol", category=UserWarning)
            return np.asarray(engine.random(n), dtype=np.float64)
    if method == "halton":
        qmc, kw = _qmc()
        return np.asarray(qmc.Halton(k, scramble=True, **{kw: rng}).random(n), dtype=np.float64)
    if method == "lhs":
        qmc, kw = _qmc()
        return np.asarray(qmc.LatinHypercube(k, scramble=True, **{kw: rng}).random(n), dtype=np.float64)
    raise AssertionError(method)  # unreachable: callers validate with check_method


def apportion(weights: np.ndarray, n: int) -> np.ndarray:
    """Assigns n points to pieces in proportion to their weights, one point at a time (Webster/Sainte-Laguë).

    Point i goes to the piece k maximising w_k / (c_k + 1/2), where c_k counts the points already given to k (ties:
    lowest k). Divisor methods are house-monotone, so the assignment of the first m points does not depend on n
    (nested prefixes), and the counts after any n points stay within about one point of the quotas n w_k / sum(w).
    Equivalent closed form used here: sort all "seats" (k, j), j = 0, 1, ..., by (j + 1/2) / w_k, ties by k.
    A face of piece k never gets more than (n + K/2) w_k / W + 1/2 seats among the first n, which bounds the seats
    generated.

    Args:
        weights: ``(K,)`` positive piece weights.
        n: number of points.

    Returns:
        int array ``(n,)``: the piece of each point. Two equal weights give 0, 1, 0, 1, ...
    """
    w = np.asarray(weights, dtype=np.float64)
    share = w / w.sum()
    seats = np.floor((n + 0.5 * w.size) * share + 0.5).astype(np.int64) + 1
    piece = np.repeat(np.arange(w.size), seats)
    j = np.concatenate([np.arange(s) for s in seats])
    order = np.lexsort((piece, (j + 0.5) / share[piece]))
    return piece[order[:n]]


# Probes used to estimate the kept fraction of a thinned piece: 2^14 scrambled Sobol points with a fixed seed, so the
# estimate (and hence every allocation that depends on it) is a deterministic property of the domain. For a piece
# whose kept part has a piecewise-smooth boundary the error is far below the i.i.d. 1 / sqrt(2^14) = 0.8 %.
ESTIMATE_POINTS = 2**14
ESTIMATE_SEED = 0x5EED
# Largest rejection draw for one piece (beyond it the kept fraction is too small to sample sensibly).
MAX_DRAW = 2**21


def estimate_accept(piece: Piece, keep: Callable[[np.ndarray, np.ndarray | None], np.ndarray]) -> float:
    """Fraction of the image of ``piece.map`` that ``keep`` accepts, from :data:`ESTIMATE_POINTS` Sobol probes.

    A 0-dimensional piece (a single point) is evaluated exactly: the fraction is 0 or 1.
    """
    m = 1 if piece.k == 0 else ESTIMATE_POINTS
    u = unit_sample("sobol", m, piece.k, np.random.default_rng(ESTIMATE_SEED))
    x = np.asarray(piece.map(u), dtype=np.float64)
    nrm = None if piece.normal is None else np.asarray(piece.normal(u), dtype=np.float64)
    return float(np.count_nonzero(keep(x, nrm))) / m


def thin(piece: Piece, keep: Callable[[np.ndarray, np.ndarray | None], np.ndarray]) -> Piece:
    """The part of ``piece`` that both its own ``keep`` (if any) and ``keep`` accept, with its estimated fraction."""
    old = piece.keep
    both = keep if old is None else (lambda x, nrm: old(x, nrm) & keep(x, nrm))
    new = dataclasses.replace(piece, keep=both)
    return dataclasses.replace(new, accept=estimate_accept(new, both))


def draw_piece(
    piece: Piece, m: int, method: str, seed: int | np.random.SeedSequence, normals: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Draws ``m`` points on one piece: ``unit_sample`` pushed through ``map``, then thinned by ``keep``.

    A thinned piece draws M >= m unit-cube points (M from the estimated kept fraction, grown and redrawn from the
    same seed until m points are kept) and returns the first m kept rows, in order. For the nested methods
    (uniform, Sobol, Halton) the draw of M points is a prefix of any longer draw, so the result is the first m kept
    points of one infinite stream: nested prefixes survive the rejection. For LHS the points are deterministic per
    seed but the Latin-hypercube stratification applies to the M candidates, not to the m kept points.

    Returns:
        ``(x (m, dim), normal (m, dim) or None)``, float64.
    """
    need_normal = normals or (piece.keep is not None and piece.normal is not None)
    if piece.keep is None:
        u = unit_sample(method, m, piece.k, np.random.default_rng(seed))
        x = np.asarray(piece.map(u), dtype=np.float64)
        nrm = np.asarray(piece.normal(u), dtype=np.float64) if normals else None
        return x, nrm
    if piece.k == 0:  # a single point: kept or not (pieces with accept 0 are dropped before sampling)
        x = np.asarray(piece.map(np.zeros((m, 0))), dtype=np.float64)
        nrm = np.asarray(piece.normal(np.zeros((m, 0))), dtype=np.float64) if need_normal else None
        return x, (nrm if normals else None)
    big = min(MAX_DRAW, int(np.ceil(1.1 * m / max(piece.accept, 1.0 / MAX_DRAW))) + 16)
    while True:
        u = unit_sample(method, big, piece.k, np.random.default_rng(seed))
        x = np.asarray(piece.map(u), dtype=np.float64)
        nrm = np.asarray(piece.normal(u), dtype=np.float64) if need_normal else None
        rows = np.flatnonzero(piece.keep(x, nrm))
        if rows.size >= m:
            rows = rows[:m]
            return x[rows], (nrm[rows] if normals else None)
        if big >= MAX_DRAW:
            raise ValueError(
                f"could not draw {m} points on a thinned piece: only {rows.size} of {big} candidates were kept "
                f"(estimated kept fraction {piece.accept:.3g}); the point set is (almost) empty"
            )
        big = min(MAX_DRAW, max(2 * big, int(np.ceil(1.25 * big * (m + 8) / max(rows.size, 1)))))


def sample_pieces(
    pieces: tuple[Piece, ...], n: int, method: str, seed: int, dim: int, normals: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Draws n points on a union of pieces: deterministic allocation, then :func:`draw_piece` on each piece.

    A single piece uses ``numpy.random.default_rng(seed)``; several pieces get independent child generators spawned
    from ``SeedSequence(seed)``, one per piece, and points are allocated with :func:`apportion` for every method
    (stratified by piece; within a piece the points follow ``method``), in proportion to ``piece.measure``.

    Returns:
        float64 ``(n, dim)``, or the pair ``(x, normal)`` of two such arrays when ``normals`` is true.
    """
    if len(pieces) == 1:
        x, nrm = draw_piece(pieces[0], n, method, seed, normals)
        return (x, nrm) if normals else x
    which = apportion(np.array([p.measure for p in pieces]), n)
    children = np.random.SeedSequence(seed).spawn(len(pieces))
    out = np.empty((n, dim), dtype=np.float64)
    out_n = np.empty((n, dim), dtype=np.float64) if normals else None
    for i, (p, child) in enumerate(zip(pieces, children)):
        rows = np.flatnonzero(which == i)
        if rows.size:
            x, nrm = draw_piece(p, rows.size, method, child, normals)
            out[rows] = x
            if normals:
                out_n[rows] = nrm
    return (out, out_n) if normals else out
