"""Inverse problems: identify a PDE coefficient jointly with the solution from scattered observations.

``burgers_inverse_1d`` follows the continuous-time identification example of Raissi, Perdikaris & Karniadakis
(2019): observations of the Burgers solution at scattered points of the space-time domain, a data term and the PDE
residual with the viscosity as an :class:`Unknown`. The observations come from the toolkit's Cole-Hopf reference
(``sciml_jax.problems._burgers``), accurate to ~1e-14, so the data carry no discretisation error.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from .. import geometry
from .. import operators as ops
from . import _burgers
from ._core import Problem, Term, Unknown, integer, real
from ._data import observations_from_arrays

_PI = math.pi
_COLLOCATION = ("observations", "interior")
_NU_INIT = math.exp(-6.0)  # Raissi et al.: log(lambda_2) = -6 initially


def _burgers_residual(u, x, c):
    g = ops.grad(u)(x)  # (u_x, u_t)
    return g[1] + u(x) * g[0] - c["nu"] * ops.laplacian(u, dims=(0,))(x)


def _burgers_pde_at_observation(u, x, y, c):
    """The PDE residual at an observation point (the observed value y is not used)."""
    return _burgers_residual(u, x, c)


def _data_misfit(u, x, y):
    return u(x) - y


@functools.lru_cache(maxsize=8)
def _reference_on_points(nodes: int):
    """The Cole-Hopf reference on a set of points, ``(x: (n, 2), c) -> (n,)``, compiled once per node count."""
    return jax.jit(jax.vmap(_burgers.cole_hopf_fn(nodes), in_axes=(0, None)))


def burgers_observations(n_obs: int, nu: float, nodes: int, seed: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """``n_obs`` observations of the Burgers reference at uniform random points of [-1, 1] x [0, 1].

    Points: ``numpy.random.default_rng(seed).uniform`` in x and t; values: the Cole-Hopf reference, evaluated in
    JAX's default float (float64 with x64 enabled, ~1e-14 accurate; float32 otherwise, ~1e-7);
    noise: Gaussian, standard deviation ``noise * std(u)`` (as Raissi et al. 2019 and
    :func:`sciml_jax.problems.observations_from_arrays`, which adds it, seeded by ``seed + 1``).

    Returns:
        ``(x: (n_obs, 2), y: (n_obs,))`` float64 numpy arrays.
    """
    rng = np.random.default_rng(seed)
    pts = np.column_stack([rng.uniform(-1.0, 1.0, n_obs), rng.uniform(0.0, 1.0, n_obs)])
    x = jnp.asarray(pts, dtype=jnp.result_type(float))  # JAX's default float: float64 with x64 enabled
    vals = np.asarray(_reference_on_points(nodes)(x, {"nu": jnp.asarray(nu, x.dtype)}), dtype=np.float64)
    obs = observations_from_arrays({"x": pts[:, 0], "t": pts[:, 1], "u": vals}, ["x", "t"], ["u"],
                                   source="Cole-Hopf reference", noise=noise, seed=seed + 1)
    return obs.x, obs.y


def burgers_inverse_1d(n_obs=2000, noise=0.0, seed=0, nu_true=0.01 / _PI, nu_init=_NU_INIT,
                       collocation="observations", nodes=None) -> Problem:
    """Identify the viscosity of the Burgers equation from scattered observations (Raissi et al. 2019).

    Math: u_t + u u_x - ν u_xx = 0 on x in [-1, 1], t in [0, 1], with ν unknown, and observations
    y_i = u*(x_i, t_i) (+ noise) of the Burgers benchmark solution u* (u*(x, 0) = -sin(πx), u*(±1, t) = 0,
    ν_true = 0.01/π). The loss is the data misfit plus the PDE residual; as in Raissi et al. no initial or
    boundary term is used (the observations carry that information), and by default the PDE residual is taken at
    the observation points themselves (``collocation="observations"``, Raissi's setup); ``"interior"`` uses
    separate collocation points of the domain instead (batch entry ``interior``).

    Raissi et al. identify λ1 and λ2 in u_t + λ1 u u_x - λ2 u_xx = 0 (λ1 = 0 and log λ2 = -6 initially, N = 2000
    points drawn from a 256 x 100 grid of a spectral reference, L-BFGS); they report errors of 0.078% (clean data)
    and 0.24% (1% noise) for λ1 and 0.38% / 0.39% for λ2. Here λ1 = 1 is known and only ν = λ2 is identified,
    with the same log parameterisation (``Unknown(transform="log")``) and by default the same initial value
    ν = e^-6 ≈ 2.48e-3; the points are drawn uniformly from the continuous domain with ``seed``, the values from the
    Cole-Hopf reference of ``burgers_1d``, the noise is Gaussian with standard deviation ``noise · std(u)``
    (Raissi's definition).

    Source: M. Raissi, P. Perdikaris, G. E. Karniadakis, "Physics-informed neural networks", J. Comput. Phys. 378
    (2019) 686-707, section 4.1.1 (Burgers' equation, continuous-time identification).

    Terms: ``pde``: u_t + u u_x - ν u_xx at the observation points (or ``interior`` points); ``data`` (entry
    ``obs``, pairs (x, y)): u(x) - y. Unknown: ``nu`` (log transform). ``metrics`` report ``nu`` per evaluation.

    Args:
        n_obs: number of observations, an integer >= 10.
        noise: relative Gaussian noise level, a real >= 0 (0.01 = 1% of the standard deviation of u).
        seed: seed of the observation points (and, seed + 1, of the noise), an integer >= 0.
        nu_true: viscosity of the data, a real > 0.
        nu_init: initial guess of ν, a real > 0.
        collocation: where the PDE residual is taken: ``"observations"`` or ``"interior"``.
        nodes: Gauss-Hermite nodes of the Cole-Hopf reference, an integer >= 20; default as ``burgers_1d``.

    Returns:
        A :class:`Problem` on ``SpaceTime(Interval(-1, 1), 0, 1)`` with data entry ``obs`` and unknown ``nu``;
        ``exact`` is the reference at ``nu_true``.
    """
    owner = "burgers_inverse_1d"
    n_obs = integer(n_obs, "n_obs", owner, low=10)
    noise_f = real(noise, "noise", owner, low=0.0, strict=False)
    seed = integer(seed, "seed", owner, low=0)
    nu_t = real(nu_true, "nu_true", owner, low=0.0)
    nu_0 = real(nu_init, "nu_init", owner, low=0.0)
    if collocation not in _COLLOCATION:
        raise ValueError(f"{owner}: collocation must be one of {', '.join(_COLLOCATION)}, got {collocation!r}")
    n_nodes = _burgers.default_nodes(nu_t) if nodes is None else integer(nodes, "nodes", owner, low=20)
    x_obs, y_obs = burgers_observations(n_obs, nu_t, n_nodes, seed, noise_f)
    if collocation == "observations":
        pde = Term("obs", _burgers_pde_at_observation, "u_t + u u_x - nu u_xx = 0 at the observation points")
        points = {}
    else:
        pde = Term("interior", _burgers_residual, "u_t + u u_x - nu u_xx = 0")
        points = {"interior": 2000}
    return Problem(
        name="burgers_inverse_1d",
        domain=geometry.SpaceTime(geometry.Interval(-1.0, 1.0), 0.0, 1.0),
        terms={"pde": pde, "data": Term("obs", _data_misfit, "u(x, t) - u_obs = 0 at the observations")},
        exact=_burgers.cole_hopf_fn(n_nodes),
        default_points=points,
        order=2,
        options={"n_obs": n_obs, "noise": noise_f, "seed": seed, "nu_true": nu_t, "nu_init": nu_0,
                 "collocation": collocation, "nodes": n_nodes},
        description=(
            f"Identify nu in u_t + u u_x = nu u_xx on [-1, 1] x [0, 1] from {n_obs} observations of the Burgers "
            f"solution (nu_true = {nu_t:.6g}, Cole-Hopf reference) with {noise_f:g} relative noise; PDE residual at "
            f"the {'observation' if collocation == 'observations' else 'interior collocation'} points "
            "(Raissi et al. 2019)."
        ),
        unknowns={"nu": Unknown(nu_0, transform="log", true=nu_t)},
        observations={"obs": (x_obs, y_obs)},
    )
