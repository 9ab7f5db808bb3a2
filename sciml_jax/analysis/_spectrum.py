"""Eigenvalue spectra of symmetric matrices and matrix-free operators: dense eigh or Lanczos; conditioning measures."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._ntk import NTK

WHICH = ("top", "bottom", "both")
METHODS = ("auto", "eigh", "lanczos")


class Spectrum(eqx.Module):
    """Eigenvalues (descending) of a symmetric matrix or operator, with conditioning measures.

    Rank threshold (documented choice): an eigenvalue counts as nonzero when |λ| > τ with

        τ = rank_rtol · max_i |λ_i|,   default rank_rtol = n_max · eps,

    where eps is the machine epsilon of the eigenvalues' dtype and n_max = max(N, P) for an :class:`NTK` (J is
    N × P) and the matrix size n otherwise. For a plain matrix this is exactly ``numpy.linalg.matrix_rank``'s
    default rule applied to the symmetric matrix itself (its singular values are the |λ_i|); eigenvalues below τ
    are at the level of eigh's backward error eps·‖A‖ and carry no information.

    * condition_number = max |λ| / min { |λ| : |λ| > τ } (the condition number of A restricted to its numerical
      range; for a positive semi-definite NTK this is λ_max / λ_min⁺).
    * numerical_rank = #{ |λ| > τ }.
    * effective_rank = exp(H(p)), H the Shannon entropy of p_i = |λ_i| / Σ_j |λ_j| (Roy & Vetterli 2007): it lies
      in [1, n], equals n for a multiple of the identity and ~1 when one eigenvalue dominates.

    For a partial spectrum (``k`` eigenvalues) these are only known in some cases, assuming a positive
    semi-definite matrix (NTK, Gauss-Newton): the rank is known when some computed top eigenvalue falls below τ;
    the condition number when the bottom end was computed and its smallest eigenvalue is above τ (then the matrix
    is nonsingular and cond = λ_max / λ_min). Otherwise they are NaN / -1; effective_rank is NaN for any partial
    spectrum.

    Attributes:
        eigenvalues: (k,) descending (``which="both"``: the top k then the bottom k).
        eigenvectors: (n, k) orthonormal columns matching ``eigenvalues``, or None.
        condition_number: () NaN when unknown.
        effective_rank: () NaN for a partial spectrum.
        numerical_rank: () int, -1 when unknown.
        threshold: () the rank threshold τ (NaN when max |λ| is unknown, i.e. ``which="bottom"``).
        residual_norms: (k,) Lanczos residuals ‖A y_i - θ_i y_i‖ of the Ritz pairs (each θ_i lies within this
            distance of a true eigenvalue), or None for eigh.
        size: n.
        method: "eigh" or "lanczos".
        which: "all" for a complete spectrum, else "top"/"bottom"/"both".
    """

    eigenvalues: jax.Array
    eigenvectors: jax.Array | None
    condition_number: jax.Array
    effective_rank: jax.Array
    numerical_rank: jax.Array
    threshold: jax.Array
    residual_norms: jax.Array | None
    size: int = eqx.field(static=True)
    method: str = eqx.field(static=True)
    which: str = eqx.field(static=True)


class LanczosResult(NamedTuple):
    """Ritz pairs of m Lanczos steps (ascending Ritz values).

    Attributes:
        values: (m,) Ritz values θ_i (eigenvalues of the tridiagonal T_m), ascending.
        vectors: (n, m) Ritz vectors y_i = V_m s_i, or None.
        residual_norms: (m,) ‖A y_i - θ_i y_i‖ = |β_m · s_i[m-1]|.
        alpha: (m,) diagonal of T_m.
        beta: (m,) off-diagonal of T_m (beta[m-1] couples to the next, uncomputed, vector); 0 marks a restart.
    """

    values: jax.Array
    vectors: jax.Array | None
    residual_norms: jax.Array
    alpha: jax.Array
    beta: jax.Array


def lanczos(
    matvec: Callable[[jax.Array], jax.Array],
    size: int,
    num_iterations: int,
    *,
    key: jax.Array | None = None,
    dtype: Any = None,
    eigenvectors: bool = False,
) -> LanczosResult:
    """Symmetric Lanczos with full reorthogonalisation, on a matrix-free operator.

    Builds an orthonormal basis V_m = [v_1 .. v_m] of the Krylov space span{v_1, A v_1, ..., A^(m-1) v_1} and the
    tridiagonal T_m = V_mᵀ A V_m, so that A V_m = V_m T_m + β_m v_(m+1) e_mᵀ; the eigenpairs (θ_i, s_i) of T_m give
    Ritz pairs (θ_i, V_m s_i) whose extreme members converge first to the extreme eigenpairs of A.

    Written by hand because no installed library offers Lanczos on a JAX matvec (scipy's ARPACK needs host
    callbacks and is not jittable; lineax/optimistix solve systems but compute no eigenvalues). Each step
    orthogonalises A v_j against *all* previous vectors twice (classical Gram-Schmidt twice, "CGS2"), which keeps
    V_m orthonormal to working precision and prevents the spurious copies ("ghosts") of converged eigenvalues that
    plain three-term Lanczos produces. When the new vector's norm falls below n · eps · ‖A‖ (an invariant subspace
    was found, e.g. A is numerically rank-deficient) the iteration restarts with a random vector orthogonal to V
    and records β = 0, so the decomposition stays valid and the basis keeps growing.

    Cost: m matvecs plus O(m² n) for the reorthogonalisation; memory (m + 1) n for V. Runs in ``lax.fori_loop``,
    jittable, static shapes.

    Args:
        matvec: v: (n,) -> A v: (n,), A symmetric.
        size: n.
        num_iterations: m, 1 <= m <= n.
        key: PRNG key (or int seed) for the starting vector and restarts (default ``jax.random.PRNGKey(0)``).
        dtype: vector dtype (default ``jnp.result_type(float)``).
        eigenvectors: also return the Ritz vectors (n, m).

    Returns:
        A :class:`LanczosResult`.
    """
    n, m = int(size), int(num_iterations)
    if not 1 <= m <= n:
        raise ValueError(f"num_iterations: expected an integer in [1, size={n}], got {num_iterations!r}")
    dtype = jnp.result_type(float) if dtype is None else dtype
    key = _as_key(key)
    eps = jnp.finfo(dtype).eps
    v0 = jax.random.normal(key, (n,), dtype)
    v0 = v0 / jnp.linalg.norm(v0)
    V = jnp.zeros((m + 1, n), dtype).at[0].set(v0)
    rows = jnp.arange(m + 1)

    def orthogonalise(V, w, j):
        """w minus its projection on v_0..v_j, twice (CGS2); returns (w, total coefficient on v_j)."""
        mask = rows <= j
        h1 = jnp.where(mask, V @ w, 0)
        w = w - h1 @ V
        h2 = jnp.where(mask, V @ w, 0)
        w = w - h2 @ V
        return w, h1[j] + h2[j]

    def body(j, carry):
        V, alpha, beta, scale = carry
        w = jnp.asarray(matvec(V[j]), dtype)
        w, a = orthogonalise(V, w, j)
        b = jnp.linalg.norm(w)
        scale = jnp.maximum(scale, jnp.maximum(jnp.abs(a), b))
        breakdown = b <= n * eps * scale

        def restart(_):
            z = jax.random.normal(jax.random.fold_in(key, j + 1), (n,), dtype)
            z, _ = orthogonalise(V, z, j)
            return z / jnp.maximum(jnp.linalg.norm(z), jnp.finfo(dtype).tiny)  # z = 0 only once V spans R^n

        v_next = jax.lax.cond(breakdown, restart, lambda _: w / jnp.where(breakdown, 1, b), None)
        V = V.at[j + 1].set(v_next)
        alpha = alpha.at[j].set(a)
        beta = beta.at[j].set(jnp.where(breakdown, 0, b))
        return V, alpha, beta, scale

    init = (V, jnp.zeros(m, dtype), jnp.zeros(m, dtype), jnp.zeros((), dtype))
    V, alpha, beta, _ = jax.lax.fori_loop(0, m, body, init)
    T = jnp.diag(alpha) + jnp.diag(beta[: m - 1], 1) + jnp.diag(beta[: m - 1], -1)
    theta, S = jnp.linalg.eigh(T)
    res = jnp.abs(beta[m - 1] * S[m - 1, :])
    vectors = V[:m].T @ S if eigenvectors else None
    return LanczosResult(theta, vectors, res, alpha, beta)


def _as_key(key: Any) -> jax.Array:
    """A PRNG key from None (PRNGKey(0)), an int seed, or a key."""
    if key is None:
        return jax.random.PRNGKey(0)
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return jax.random.PRNGKey(int(key))
    return key


def _default_iterations(n: int, k: int) -> int:
    """Krylov dimension for k extreme eigenpairs: 2k + 30, at most n (enough for the fast-decaying NTK spectra;
    pass ``num_iterations`` and check ``residual_norms`` for flat spectra)."""
    return min(n, 2 * k + 30)


def _measures(vals: jax.Array, n: int, rtol: float | None, n_max: int, which: str, num_top: int):
    """(condition_number, effective_rank, numerical_rank, threshold) from eigenvalues sorted descending."""
    dtype = vals.dtype
    eps = jnp.finfo(dtype).eps
    rtol = n_max * eps if rtol is None else jnp.asarray(rtol, dtype)
    nan = jnp.asarray(jnp.nan, dtype)
    a = jnp.abs(vals)
    if which == "bottom":
        return nan, nan, jnp.asarray(-1), nan
    top = jnp.max(a)
    tau = rtol * top
    above = a > tau
    count = jnp.sum(above)
    smallest_above = jnp.min(jnp.where(above, a, jnp.inf))
    if which == "all":
        cond = top / smallest_above
        p = a / jnp.sum(a)
        entropy = -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1)), 0))
        return cond, jnp.exp(entropy), count, tau
    # partial spectrum of a PSD matrix: the rank is known once a computed *top* eigenvalue falls below τ (all
    # larger ones were computed too); with the bottom end computed and above τ the matrix is nonsingular.
    top_part = above[:num_top]
    rank = jnp.where(jnp.any(~top_part), jnp.sum(top_part), -1)
    cond = nan
    if which == "both":
        nonsingular = jnp.min(a) > tau
        cond = jnp.where(nonsingular, top / jnp.min(a), nan)
        rank = jnp.where(nonsingular, n, rank)
    return cond, nan, rank, tau


def _select(values_asc: jax.Array, vectors: jax.Array | None, k: int, which: str):
    """From ascending eigenpairs pick top k / bottom k / both, and return them in descending order."""
    n = values_asc.shape[0]
    if which == "top":
        idx = jnp.arange(n - 1, n - 1 - k, -1)
    elif which == "bottom":
        idx = jnp.arange(k - 1, -1, -1)
    else:
        idx = jnp.concatenate([jnp.arange(n - 1, n - 1 - k, -1), jnp.arange(k - 1, -1, -1)])
    return values_asc[idx], (None if vectors is None else vectors[:, idx]), idx


def spectrum(
    matrix_or_matvec: Any,
    *,
    k: int | None = None,
    which: str = "top",
    method: str = "auto",
    rank_rtol: float | None = None,
    eigenvectors: bool = False,
    key: jax.Array | None = None,
    size: int | None = None,
    num_iterations: int | None = None,
) -> Spectrum:
    """Eigenvalues of a symmetric matrix (dense) or operator (matvec), with condition number and ranks.

    Methods:
        * "eigh": ``jnp.linalg.eigh`` of the dense matrix (all eigenvalues; then the requested ones are kept).
        * "lanczos": :func:`lanczos` with full reorthogonalisation on the matvec (or on ``A @ v``), Krylov
          dimension ``num_iterations`` (default min(n, 2k + 30)), returning the k extreme Ritz pairs and their
          residual norms. Top-k is robust (the large NTK eigenvalues are well separated). Bottom-k comes from the
          same Krylov space; a spectrum shift would not change that space, so no shift is applied — the bottom Ritz
          values are accurate only where they are separated relative to the spread λ_max - λ_min, and their
          ``residual_norms`` bound the error (each lies within its residual norm of a true eigenvalue). For a
          dense matrix, "auto" therefore always uses eigh; use Lanczos for bottom-k only on operators too large to
          form, and read the residual norms.
        * "auto": eigh for a matrix (or NTK), Lanczos for a matvec.

    Args:
        matrix_or_matvec: an (n, n) symmetric array, an :class:`NTK` (its K; rank threshold with max(N, P)), or a
            callable ``v: (n,) -> A v`` (then ``size`` is required).
        k: number of eigenvalues (per end for ``which="both"``); default all for a matrix; required for a matvec.
        which: "top", "bottom" or "both".
        method: "auto", "eigh" or "lanczos".
        rank_rtol: relative rank threshold (see :class:`Spectrum`); default n_max · eps.
        eigenvectors: also return the eigenvectors (n, k).
        key: PRNG key (or int seed) of the Lanczos start vector (default ``PRNGKey(0)``).
        size: n, for a matvec.
        num_iterations: Lanczos Krylov dimension (default min(n, 2k + 30)).

    Returns:
        A :class:`Spectrum` with eigenvalues in descending order.

    Raises:
        ValueError: bad ``which``/``method``/``k``/``size``/``num_iterations``, eigh on a matvec, or a
            non-square matrix.
    """
    if which not in WHICH:
        raise ValueError(f"which: expected one of {', '.join(map(repr, WHICH))}, got {which!r}")
    if method not in METHODS:
        raise ValueError(f"method: expected one of {', '.join(map(repr, METHODS))}, got {method!r}")
    if rank_rtol is not None and (
        isinstance(rank_rtol, bool)
        or not isinstance(rank_rtol, (int, float, np.integer, np.floating))
        or not 0 <= rank_rtol < 1
    ):
        raise ValueError(f"rank_rtol: expected None or a number in [0, 1), got {rank_rtol!r}")
    n_max = None
    if isinstance(matrix_or_matvec, NTK):
        n_max = max(matrix_or_matvec.size, matrix_or_matvec.num_params)
        matrix_or_matvec = matrix_or_matvec.K
    if callable(matrix_or_matvec) and not hasattr(matrix_or_matvec, "shape"):
        matvec, A = matrix_or_matvec, None
        if size is None or isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
            raise ValueError(f"size: a matvec needs size = n, a positive integer; got {size!r}")
        n = int(size)
        if method == "eigh":
            raise ValueError("method: 'eigh' needs a dense matrix; got a matvec (use 'lanczos' or 'auto')")
        if k is None:
            raise ValueError("k: a matvec needs k, the number of eigenvalues wanted (per end for which='both')")
        method = "lanczos"
        dtype = jnp.result_type(float)
    else:
        A = jnp.asarray(matrix_or_matvec)
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"matrix_or_matvec: expected a square (n, n) matrix, got shape {A.shape}")
        n = int(A.shape[0])
        if size is not None and size != n:
            raise ValueError(f"size: got {size!r} but the matrix is {n} x {n}")
        matvec = None
        method = "eigh" if method == "auto" else method
        dtype = A.dtype if jnp.issubdtype(A.dtype, jnp.floating) else jnp.result_type(float)
    n_max = n if n_max is None else n_max
    if k is None:
        k = n
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise ValueError(f"k: expected an integer in [1, n={n}], got {k!r}")
    k = int(k)
    complete = (which != "both" and k == n) or (which == "both" and 2 * k >= n)
    m = None
    if method == "lanczos":
        m = _default_iterations(n, 2 * k if which == "both" else k) if num_iterations is None else num_iterations
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or not 1 <= m <= n:
            raise ValueError(f"num_iterations: expected an integer in [1, n={n}], got {num_iterations!r}")
        m = int(m)
        if m < (2 * k if which == "both" else k):
            raise ValueError(f"num_iterations: {m} Lanczos steps cannot give {k} eigenvalues per end; use >= {k}")
        complete = complete and m == n
    statics = dict(
        n=n, k=k, which=which, complete=complete, eigenvectors=bool(eigenvectors), rank_rtol=rank_rtol, n_max=n_max
    )
    # the dense paths run as one jitted computation (cached per shape and options): eagerly, each of the small
    # post-processing operations would be compiled and dispatched on its own
    if A is not None:
        return _dense_spectrum(A.astype(dtype), _as_key(key), method=method, m=m, **statics)
    lz = lanczos(matvec, n, m, key=key, dtype=dtype, eigenvectors=eigenvectors)
    return _assemble(lz.values, lz.vectors, lz.residual_norms, method="lanczos", **statics)


_STATIC = ("n", "k", "which", "complete", "eigenvectors", "rank_rtol", "n_max")


@functools.partial(jax.jit, static_argnames=("method", "m") + _STATIC)
def _dense_spectrum(A, key, *, method, m, **statics) -> Spectrum:
    if method == "eigh":
        vals, vecs = jnp.linalg.eigh(A)
        return _assemble(vals, vecs, None, method="eigh", **statics)
    lz = lanczos(lambda v: A @ v, statics["n"], m, key=key, dtype=A.dtype, eigenvectors=statics["eigenvectors"])
    return _assemble(lz.values, lz.vectors, lz.residual_norms, method="lanczos", **statics)


@functools.partial(jax.jit, static_argnames=("method",) + _STATIC)
def _assemble(values_asc, vectors, resnorms, *, method, n, k, which, complete, eigenvectors, rank_rtol, n_max):
    """Select the requested eigenpairs from ascending ones, sort them descending, add the conditioning measures."""
    if complete:
        sel_vals = values_asc[::-1]
        sel_vecs = None if vectors is None else vectors[:, ::-1]
        res = None if resnorms is None else resnorms[::-1]
    else:
        sel_vals, sel_vecs, idx = _select(values_asc, vectors, k, which)
        res = None if resnorms is None else resnorms[idx]
    kind = "all" if complete else which
    cond, eff, rank, tau = _measures(sel_vals, n, rank_rtol, n_max, kind, k)
    return Spectrum(
        eigenvalues=sel_vals,
        eigenvectors=sel_vecs if eigenvectors else None,
        condition_number=cond,
        effective_rank=eff,
        numerical_rank=jnp.asarray(rank, jnp.int32),
        threshold=tau,
        residual_norms=res,
        size=n,
        method=method,
        which=kind,
    )
