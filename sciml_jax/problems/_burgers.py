"""Reference solution of the viscous Burgers benchmark by the Cole-Hopf transform and Gauss-Hermite quadrature.

Problem: u_t + u u_x = nu u_xx on x in [-1, 1], t > 0, u(x, 0) = -sin(pi x), u(-1, t) = u(1, t) = 0 (the PINN
benchmark of Raissi, Perdikaris & Karniadakis 2019; Basdevant et al. 1986 computed it spectrally).

Cole-Hopf: u = -2 nu phi_x / phi with phi_t = nu phi_xx and phi(x, 0) = F(x) = exp(-cos(pi x) / (2 pi nu)) (this
F satisfies -2 nu F' / F = -sin(pi x)). The heat kernel gives phi as a Gaussian average, and differentiating under
the integral and substituting eta = sqrt(4 nu t) z gives (as in Basdevant et al. 1986):

    u(x, t) = - int sin(pi y(z)) F(y(z)) exp(-z^2) dz / int F(y(z)) exp(-z^2) dz,     y(z) = x - sqrt(4 nu t) z.

Both integrals are Gauss-Hermite sums with nodes z_i and weights w_i. Writing the weights in log form,

    a_i = log w_i - cos(pi y_i) / (2 pi nu),     p = softmax(a),     u = -sum_i p_i sin(pi y_i),

is the log-sum-exp evaluation of the ratio: F alone spans exp(+-1/(2 pi nu)) = exp(+-50) for the default nu,
which would lose the ratio to overflow/cancellation in direct form; every p_i is in [0, 1] and no sum cancels.

The nodes come from ``scipy.special.roots_hermite``, which switches to an asymptotic O(n) algorithm above 150
nodes. ``numpy.polynomial.hermite.hermgauss`` was tried first: its weights overflow to NaN from about 400 nodes on
(numpy 2.x), too few for small viscosities. Weights that underflow to 0 in float64 (nodes with |z| > ~27) are
dropped; the measurements below, against references that keep every representable weight, show no effect.

Accuracy (measured in float64 on 4000 uniform points of [-1, 1] x [0, 1] plus 1000 points in the shock region
|x| < 0.02, t in [0.3, 1]; "diff" is the max difference to a 4000-node reference, "residual" the max
|u_t + u u_x - nu u_xx| with the derivatives taken by autodiff of the quadrature formula):

    nu = 0.1/pi:   100 nodes: diff 2e-14, residual 1e-12;  200 nodes: residual 2e-14
    nu = 0.01/pi:   32 nodes: diff 5e-3,  residual 0.14;    64 nodes: diff 2e-10, residual 1.3e-8;
                   100 nodes: diff 6e-15, residual 1.2e-13; 200 nodes: diff 5e-15, residual 7e-14
    nu = 0.003/pi: 100 nodes: diff 4e-5,  residual 3e-3;   200+ nodes: diff 2e-14, residual 3e-13
    nu = 0.001/pi: 200 nodes: diff 0.1,   residual 0.9;    400+ nodes: diff 6e-14, residual 9e-13

so the node count needed grows like 1/nu (roughly: the integrand's mass sits near |z| ~ 1/sqrt(4 nu t), where F
has its peaks, and Gauss-Hermite nodes reach |z| ~ sqrt(2 n)). The default, ``default_nodes(nu) =
max(100, ceil(2 / (pi nu)))``, is about three times the measured need: 200 nodes for the standard nu = 0.01/pi.
With it the residual is <= 1e-12 everywhere on the domain, including next to the shock at x = 0 (where
|u_x| ~ 152 at t = 0.51), and the value of Basdevant et al. (1986), max_t |u_x(0, t)| = 152.00516 at
t = 1.6037 / pi, is reproduced to all published digits (152.0051616 with 200 nodes). Viscosities below 0.001/pi
were not measured.

At t = 0 the formula degenerates (all y_i = x); the initial condition -sin(pi x) is returned there, and the
square root is guarded so gradients stay finite (at t = 0 the returned u_t is 0, not the true -u u_x + nu u_xx;
training points of the PDE term have t > 0).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def default_nodes(nu: float) -> int:
    """Gauss-Hermite node count used when none is given: ``max(100, ceil(2 / (pi nu)))`` (see module docstring)."""
    return max(100, math.ceil(2.0 / (math.pi * nu)))


def hermite_rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes and log-weights for int g(z) exp(-z^2) dz, weights that underflow to 0 dropped.

    Returns:
        ``(z, log_w)``, float64 numpy arrays ``(m,)`` with ``m <= n``, m = n for n <= 300 or so.
    """
    import scipy.special  # noqa: PLC0415 - imported on first use (~0.4 s)

    z, w = scipy.special.roots_hermite(n)
    keep = w > 0
    return z[keep], np.log(w[keep])


@functools.lru_cache(maxsize=32)
def cole_hopf_fn(nodes: int) -> Callable[[jax.Array, Any], jax.Array]:
    """The reference solution as a function of the point and the coefficients: ``u(p, c)`` with ``c["nu"]``.

    One function per node count (cached), so Burgers problems that differ only in the viscosity share compiled
    code; the Gauss-Hermite nodes are computed once per node count and closed over as constants.

    Args:
        nodes: number of Gauss-Hermite nodes (choose it for the smallest viscosity used, see ``default_nodes``).

    Returns:
        ``u(p: (2,), c) -> ()`` for a point (x, t); jit/vmap/grad compatible.
    """
    z_np, log_w_np = hermite_rule(nodes)

    def u(p: jax.Array, c: Any) -> jax.Array:
        nu = c["nu"]
        x, t = p[0], p[-1]
        z = jnp.asarray(z_np, dtype=p.dtype)
        log_w = jnp.asarray(log_w_np, dtype=p.dtype)
        positive = t > 0
        t_safe = jnp.where(positive, t, jnp.ones_like(t))  # keeps sqrt and its gradient finite at t = 0
        y = x - jnp.sqrt(4.0 * nu * t_safe) * z
        prob = jax.nn.softmax(log_w - jnp.cos(jnp.pi * y) / (2.0 * math.pi * nu))
        u_quad = -jnp.sum(prob * jnp.sin(jnp.pi * y))
        return jnp.where(positive, u_quad, -jnp.sin(jnp.pi * x))

    return u


def cole_hopf(nu: float, nodes: int) -> Callable[[jax.Array], jax.Array]:
    """Reference solution u(x, t) of the Burgers benchmark as a jnp-traceable point function.

    Args:
        nu: viscosity, > 0.
        nodes: number of Gauss-Hermite nodes.

    Returns:
        ``u: (2,) -> ()`` for a point (x, t); jit/vmap/grad compatible (:func:`cole_hopf_fn` with ``nu`` bound).
    """
    fn = cole_hopf_fn(nodes)
    return lambda p: fn(p, {"nu": jnp.asarray(nu, dtype=p.dtype)})
