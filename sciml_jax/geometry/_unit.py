"""Points in the unit cube and their allocation to the pieces of a point set (private).

Every point set of a domain is a finite union of *pieces* (one for an interior, one per face for the boundary of a
box, ...). Each piece is the image of the unit cube [0, 1)^k under a measure-preserving (up to a constant) map, so
drawing points on a set reduces to (1) deciding how many of the n points go to each piece and (2) drawing points in
[0, 1)^k with the requested method. Quasi-random points come from ``scipy.stats.qmc``; the allocation (a divisor
apportionment) is written here because no library offers it.
"""

from __future__ import annotations

import dataclasses
import inspect
import operator
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.stats import qmc

METHODS: tuple[str, ...] = ("uniform", "sobol", "halton", "lhs")

# scipy >= 1.15 calls the generator argument of the QMC engines `rng`; older versions call it `seed`.
_QMC_RNG_KW = "rng" if "rng" in inspect.signature(qmc.Sobol).parameters else "seed"


@dataclasses.dataclass(frozen=True)
class Piece:
    """One piece of a point set: the image of [0, 1)^k under ``map``.

    Attributes:
        weight: the piece's k-dimensional measure (length, area, volume); points are allocated proportionally to it.
        k: the number of free parameters (0 for an isolated point such as an end of an interval).
        map: ``u: (m, k) -> x: (m, dim)``, float64; uniform ``u`` must give points uniform on the piece.
    """

    weight: float
    k: int
    map: Callable[[np.ndarray], np.ndarray]


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
        engine = qmc.Sobol(k, scramble=True, **{_QMC_RNG_KW: rng})
        with warnings.catch_warnings():
            # Deliberate: `random(n)` (not `random_base2`) so that any n works. Scipy warns that the balance
            # properties of Sobol' points need n = 2^m; a prefix of the sequence is still a low-discrepancy
            # set, and prefixes are what nested batches (batch-size progressions) need.
            warnings.filterwarnings("ignore", message="The balance properties of Sobol", category=UserWarning)
            return np.asarray(engine.random(n), dtype=np.float64)
    if method == "halton":
        return np.asarray(qmc.Halton(k, scramble=True, **{_QMC_RNG_KW: rng}).random(n), dtype=np.float64)
    if method == "lhs":
        return np.asarray(qmc.LatinHypercube(k, scramble=True, **{_QMC_RNG_KW: rng}).random(n), dtype=np.float64)
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


def sample_pieces(pieces: tuple[Piece, ...], n: int, method: str, seed: int, dim: int) -> np.ndarray:
    """Draws n points on a union of pieces: deterministic allocation, then ``unit_sample`` on each piece.

    A single piece uses ``numpy.random.default_rng(seed)``; several pieces get independent child generators spawned
    from ``SeedSequence(seed)``, one per piece, and points are allocated with :func:`apportion` for every method
    (stratified by piece; within a piece the points follow ``method``).

    Returns:
        float64 ``(n, dim)``.
    """
    if len(pieces) == 1:
        p = pieces[0]
        return np.asarray(p.map(unit_sample(method, n, p.k, np.random.default_rng(seed))), dtype=np.float64)
    which = apportion(np.array([p.weight for p in pieces]), n)
    children = np.random.SeedSequence(seed).spawn(len(pieces))
    out = np.empty((n, dim), dtype=np.float64)
    for i, (p, child) in enumerate(zip(pieces, children)):
        rows = np.flatnonzero(which == i)
        if rows.size:
            out[rows] = p.map(unit_sample(method, rows.size, p.k, np.random.default_rng(child)))
    return out
