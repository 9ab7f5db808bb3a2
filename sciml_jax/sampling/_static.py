"""Static (non-adaptive) collocation batches: one fixed-size point array per point set."""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..geometry import METHODS as _GEOMETRY_METHODS
from ..geometry import Domain

METHODS: tuple[str, ...] = _GEOMETRY_METHODS

_SEED_BOUND = 2**31 - 1  # numpy/scipy seeds drawn in [0, 2^31 - 1)


def as_key(key: Any) -> jax.Array:
    """Normalises ``key`` to a typed JAX PRNG key.

    Args:
        key: a non-negative int seed (-> ``jax.random.key(seed)``, which has the same bits as the legacy
            ``jax.random.PRNGKey(seed)``), a typed key from ``jax.random.key`` (shape ``()``), or a legacy raw
            ``uint32`` key from ``jax.random.PRNGKey``.

    Returns:
        A typed key of shape ``()``.
    """
    if isinstance(key, jax.core.Tracer):
        raise ValueError(
            "key must be concrete: sampling runs on the host (numpy/scipy), call it outside jit/vmap; "
            f"got the traced value {key!r}"
        )
    if isinstance(key, (bool, np.bool_)):
        raise ValueError(f"key must be an int seed >= 0 or a JAX PRNG key, got the bool {key!r}")
    if isinstance(key, (int, np.integer)):
        seed = operator.index(key)
        if seed < 0:
            raise ValueError(f"key must be an int seed >= 0 or a JAX PRNG key, got {seed}")
        return jax.random.key(seed)
    dtype = getattr(key, "dtype", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"key must be a single PRNG key (shape ()), got a batch of keys of shape {key.shape}")
        return key
    if dtype is not None and np.dtype(dtype) == np.uint32:
        try:
            return jax.random.wrap_key_data(jnp.asarray(key))
        except (TypeError, ValueError):
            pass
    raise ValueError(
        "key must be an int seed >= 0, a typed key (jax.random.key) or a legacy uint32 key (jax.random.PRNGKey); "
        f"got {key!r}"
    )


def point_set_seed(key: Any, domain: Domain, where: str) -> int:
    """The integer seed that :func:`sample` uses for ``where``: ``randint(fold_in(key, i))``, i = index of ``where``
    in ``domain.all_point_sets`` (the primary ``point_sets`` first, then ``"boundary:<part>"`` names), so each
    point set gets an independent stream that does not depend on which other sets are requested."""
    sub = jax.random.fold_in(as_key(key), domain.all_point_sets.index(where))
    return int(jax.random.randint(sub, (), 0, _SEED_BOUND, dtype=jnp.int32))


def sample(
    domain: Domain, counts: Mapping[str, int], method: str = "sobol", key: Any = 0, normals: Any = ()
) -> dict[str, Any]:
    """Draws a collocation batch: ``counts[name]`` points on each requested point set of ``domain``.

    Runs on the host: points are built in float64 by ``domain.sample`` (``scipy.stats.qmc`` for the quasi-random
    methods) with one integer seed per point set derived from ``key`` (:func:`point_set_seed`), then converted to
    JAX arrays of the default float dtype ``jnp.result_type(float)`` (float64 under ``jax_enable_x64``). The same
    key gives the same points; for ``"uniform"``, ``"sobol"`` and ``"halton"`` a smaller count with the same key
    gives a prefix of the larger set (nested batches).

    Args:
        domain: a :class:`sciml_jax.geometry.Domain`.
        counts: non-empty mapping point-set name (in ``domain.point_sets``) -> positive int.
        method: one of :data:`METHODS` (``"uniform"``, ``"sobol"``, ``"halton"``, ``"lhs"``).
        key: an int seed >= 0, a typed JAX key (``jax.random.key``) or a legacy uint32 key (``jax.random.PRNGKey``).
            ``0``, ``jax.random.key(0)`` and ``jax.random.PRNGKey(0)`` give the same points.
        normals: names of boundary entries of ``counts`` (``"boundary"``, ``"boundary:<part>"``; a single str is
            one name) whose entry is the pair ``(x, n)`` of points and outward unit normals, both
            ``(counts[name], domain.dim)`` (the same points as without ``normals``).

    Returns:
        dict name -> array ``(counts[name], domain.dim)`` (or the pair ``(x, n)`` for names in ``normals``), in the
        order of ``counts``. Names are those of ``domain.all_point_sets``: the primary point sets and the boundary
        parts ``"boundary:<part>"``.
    """
    if not isinstance(domain, Domain):
        raise ValueError(f"domain must be a sciml_jax.geometry.Domain, got {domain!r}")
    if not isinstance(counts, Mapping) or not counts:
        raise ValueError(
            f"counts must be a non-empty mapping point set -> positive int, with point sets among "
            f"{', '.join(repr(s) for s in domain.point_sets)}; got {counts!r}"
        )
    for name, n in counts.items():
        if name not in domain.all_point_sets:
            raise ValueError(
                f"counts: unknown point set {name!r} for {type(domain).__name__}; allowed: "
                f"{', '.join(repr(s) for s in domain.all_point_sets)}"
            )
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise ValueError(f"counts[{name!r}] must be a positive int, got {n!r}")
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(repr(m) for m in METHODS)}; got {method!r}")
    normals = _check_normals(normals, counts)
    key = as_key(key)
    dtype = jnp.result_type(float)
    out = {}
    for name, n in counts.items():
        drawn = domain.sample(name, int(n), method, point_set_seed(key, domain, name), normals=name in normals)
        if name in normals:
            out[name] = (jnp.asarray(drawn[0], dtype=dtype), jnp.asarray(drawn[1], dtype=dtype))
        else:
            out[name] = jnp.asarray(drawn, dtype=dtype)
    return out


def _check_normals(normals: Any, counts: Mapping[str, int]) -> tuple[str, ...]:
    """Validates the ``normals`` argument of :func:`sample`: boundary entries of ``counts``."""
    if isinstance(normals, str):
        normals = (normals,)
    try:
        names = tuple(normals)
    except TypeError:
        raise ValueError(
            f"normals must be a sequence of point-set names (entries of counts), got {normals!r}"
        ) from None
    for name in names:
        if name not in counts:
            raise ValueError(f"normals: {name!r} is not an entry of counts; entries: {', '.join(map(repr, counts))}")
        if not (name == "boundary" or name.startswith("boundary:")):
            raise ValueError(
                f"normals: {name!r} is not a boundary point set; normals exist for 'boundary' and 'boundary:<part>'"
            )
    return names
