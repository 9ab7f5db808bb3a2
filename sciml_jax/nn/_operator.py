"""Neural operators as point functions: DeepONet (Lu et al. 2021) and the 1-D Fourier neural operator (Li et al. 2021).

Both follow the toolkit's point convention (one point is a 1-D array, ``apply(params, x)`` maps ONE point), so
``sj.nn.functional``, the Jacobian/NTK/Gauss-Newton machinery and every optimizer apply unchanged:

* :class:`DeepONet`: a point is ``z = concat(u(x_1..x_m), y)`` of shape ``(m + d,)``; the output is G(u)(y).
  Derivatives in the query coordinate are ``sj.operators.partial(f, m + j)`` (physics-informed DeepONet).
  :func:`deeponet_grid` evaluates many functions at many query points with the branch run once per function and
  the trunk once per query point (the efficient form for data terms).
* :class:`FNO1d`: a point is one input function sampled on a uniform periodic grid, ``a: (n,)`` (or
  ``(c_in * n,)``, channel-major, for several channels); the output is the output function on the same grid.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._mlp import ACTIVATIONS, MLP, Frozen, _check_key, _check_size


def _check_activation(activation: Any, owner: str) -> str:
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(f"{owner}: activation must be one of {', '.join(ACTIVATIONS)}; got {activation!r}")
    return activation


def _trainable(leaf: Any) -> bool:  # the same split as sj.nn.functional
    return not isinstance(leaf, Frozen) and eqx.is_inexact_array(leaf)


# ------------------------------------------------------------------------------------------------------- DeepONet


class DeepONet(eqx.Module):
    """Unstacked DeepONet G(u)(y) = output_scale * (sum_k b_k(u) t_k(y) + b0) for one point z = (u, y).

    * branch: an :class:`MLP` ``R^m -> R^(p * n_outputs)`` on the sensor values u = (u(x_1), ..., u(x_m)), last
      layer linear;
    * trunk: an :class:`MLP` ``R^d -> R^(p * n_outputs)`` on the query coordinate y, followed by the activation
      (as in Lu et al. 2021 and DeepXDE, the trunk's last layer is activated too);
    * output i (of ``n_outputs``) uses its own block of p branch and p trunk features ("split both"):
      ``G_i = output_scale * (sum_{k<p} b_{i p + k} t_{i p + k} + b0_i)``.

    Weights are Glorot normal, biases zero (the :class:`MLP` initialisation); the dtype is
    ``jnp.result_type(float)``.

        model = DeepONet(100, 1, 40, 2, 40, key=jax.random.key(0))   # m = 100 sensors, y in R^1, p = 40
        params, apply = sj.nn.functional(model)
        apply(params, jnp.concatenate([u_sensors, y]))             # G(u)(y): ()
        deeponet_grid(params, model, U, Y)                         # U: (B, 100), Y: (Q, 1) -> (B, Q)
        sj.operators.partial(lambda z: apply(params, z), 100)      # z -> dG(u)/dy (z)

    Args:
        n_sensors: number m of sensor values of the input function.
        coord_dim: dimension d of the query coordinate y (e.g. 2 for (x, t), time last).
        width: neurons per hidden layer (branch and trunk).
        depth: hidden layers of branch and trunk (>= 1).
        latent: number p of basis functions per output.
        activation: an activation name of :data:`ACTIVATIONS` (default ``tanh``).
        key: JAX PRNG key (keyword only).
        bias: add the trainable output bias b0 (zeros at initialisation).
        output_scale: ``None`` or a finite float > 0 multiplying the output (static, not trained).
        n_outputs: number of outputs; 1 gives a scalar output.
    """

    branch: MLP
    trunk: MLP
    b0: jax.Array | None
    n_sensors: int = eqx.field(static=True)
    coord_dim: int = eqx.field(static=True)
    latent: int = eqx.field(static=True)
    n_outputs: int = eqx.field(static=True)
    activation: str = eqx.field(static=True)
    output_scale: float | None = eqx.field(static=True)

    def __init__(
        self,
        n_sensors: int,
        coord_dim: int,
        width: int,
        depth: int,
        latent: int,
        activation: str = "tanh",
        *,
        key: jax.Array,
        bias: bool = True,
        output_scale: float | None = None,
        n_outputs: int = 1,
    ):
        owner = "DeepONet"
        self.n_sensors = _check_size(n_sensors, "n_sensors", owner)
        self.coord_dim = _check_size(coord_dim, "coord_dim", owner)
        width = _check_size(width, "width", owner)
        depth = _check_size(depth, "depth", owner)
        self.latent = _check_size(latent, "latent", owner)
        self.n_outputs = _check_size(n_outputs, "n_outputs", owner)
        self.activation = _check_activation(activation, owner)
        if not isinstance(bias, (bool, np.bool_)):
            raise ValueError(f"{owner}: bias must be True or False, got {bias!r}")
        if output_scale is not None:
            if isinstance(output_scale, bool) or not isinstance(output_scale, (int, float, np.integer, np.floating)):
                raise ValueError(f"{owner}: output_scale must be None or a finite float > 0, got {output_scale!r}")
            if not (math.isfinite(output_scale) and output_scale > 0):
                raise ValueError(f"{owner}: output_scale must be None or a finite float > 0, got {output_scale!r}")
            output_scale = float(output_scale)
        self.output_scale = output_scale
        kb, kt = jax.random.split(_check_key(key, owner))
        features = self.latent * self.n_outputs
        self.branch = MLP(self.n_sensors, features, width, depth, self.activation, key=kb)
        self.trunk = MLP(self.coord_dim, features, width, depth, self.activation, key=kt)
        dtype = jnp.result_type(float)
        self.b0 = jnp.zeros((self.n_outputs,), dtype) if bias else None

    @property
    def in_size(self) -> int:
        """Length m + d of one point z = concat(u_sensors, y)."""
        return self.n_sensors + self.coord_dim

    def branch_features(self, u: jax.Array) -> jax.Array:
        """Branch coefficients of one input function: ``u: (m,) -> (n_outputs, p)``."""
        return jnp.reshape(self.branch(u), (self.n_outputs, self.latent))

    def trunk_features(self, y: jax.Array) -> jax.Array:
        """Activated trunk basis at one query point: ``y: (d,) -> (n_outputs, p)``."""
        return jnp.reshape(ACTIVATIONS[self.activation](self.trunk(y)), (self.n_outputs, self.latent))

    def _finish(self, out: jax.Array) -> jax.Array:
        # out: (..., n_outputs); adds b0, scales, and drops the output axis for a scalar model
        if self.b0 is not None:
            out = out + self.b0
        if self.output_scale is not None:
            out = out * self.output_scale
        return out[..., 0] if self.n_outputs == 1 else out

    def __call__(self, z: jax.Array) -> jax.Array:
        """G(u)(y) at one point ``z = concat(u: (m,), y: (d,))``: ``()`` (or ``(n_outputs,)``)."""
        if jnp.ndim(z) != 1 or jnp.shape(z)[0] != self.in_size:
            raise ValueError(
                f"DeepONet: expected one point z = concat(u_sensors ({self.n_sensors},), y ({self.coord_dim},)) of "
                f"shape ({self.in_size},), got shape {jnp.shape(z)}; vmap over a batch of points"
            )
        b = self.branch_features(z[: self.n_sensors])
        t = self.trunk_features(z[self.n_sensors :])
        return self._finish(jnp.sum(b * t, axis=-1))

    def grid(self, U: jax.Array, Y: jax.Array) -> jax.Array:
        """G(u_b)(y_q) for all functions and query points; see :func:`deeponet_grid`."""
        U = jnp.asarray(U)
        Y = jnp.asarray(Y)
        if U.ndim != 2 or U.shape[1] != self.n_sensors:
            raise ValueError(f"deeponet_grid: U must have shape (B, {self.n_sensors}), got {U.shape}")
        if Y.ndim not in (2, 3) or Y.shape[-1] != self.coord_dim or (Y.ndim == 3 and Y.shape[0] != U.shape[0]):
            raise ValueError(
                f"deeponet_grid: Y must have shape (Q, {self.coord_dim}) (shared query points) or "
                f"(B={U.shape[0]}, Q, {self.coord_dim}) (per function), got {Y.shape}"
            )
        b = jax.vmap(self.branch_features)(U)  # (B, n_out, p)
        if Y.ndim == 2:
            t = jax.vmap(self.trunk_features)(Y)  # (Q, n_out, p)
            out = jnp.einsum("bop,qop->bqo", b, t)
        else:
            t = jax.vmap(jax.vmap(self.trunk_features))(Y)  # (B, Q, n_out, p)
            out = jnp.einsum("bop,bqop->bqo", b, t)
        return self._finish(out)


def deeponet_grid(params: Any, model: DeepONet, U: jax.Array, Y: jax.Array) -> jax.Array:
    """Evaluates a DeepONet on B input functions times Q query points, the branch once per function.

        out[b, q] = G(U[b])(Y[q])   (shared points, Y: (Q, d))   or   G(U[b])(Y[b, q])   (Y: (B, Q, d))

    computed as ``einsum(branch(U), trunk(Y))``: B branch and Q (or B·Q) trunk evaluations instead of B·Q of each
    when vmapping the point function. Equal to ``vmap(apply)`` over the pairs ``z = concat(U[b], Y[q])`` up to
    round-off. Pure and jittable; differentiable in ``params``.

    Args:
        params: trainable parameters, as returned by ``sj.nn.functional(model)`` (or ``None``: use the model's own).
        model: the :class:`DeepONet` (only its structure and frozen parts are used when ``params`` is given).
        U: sensor values, ``(B, m)``.
        Y: query points, ``(Q, d)`` shared by all functions or ``(B, Q, d)`` per function.

    Returns:
        ``(B, Q)`` (or ``(B, Q, n_outputs)``).
    """
    if not isinstance(model, DeepONet):
        raise ValueError(f"deeponet_grid: model must be a DeepONet (the template params belong to), got {model!r}")
    if params is not None:
        _, static = eqx.partition(model, _trainable, is_leaf=lambda node: isinstance(node, Frozen))
        model = eqx.combine(params, static)
    return model.grid(U, Y)


# ----------------------------------------------------------------------------------------------------------- FNO


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _fno_init(key: jax.Array, sizes: tuple[int, ...], modes: int, dtype) -> tuple[Any, Any]:
    """All FNO arrays from ONE standard-normal draw in one compiled call (as ``_glorot_init`` does for the MLP).

    Dense layers along ``sizes`` (lift, L pointwise, two projection layers): Glorot normal, untruncated,
    W ~ N(0, 2 / (fan_in + fan_out)), zero biases. Spectral weight pairs (re, im): N(0, 1 / (2 width)) each.
    One 1-D draw cut into pieces keeps compilation cheap: XLA:CPU compiles a multi-dimensional draw much more
    slowly (measured on a small FNO: 5.6 s of CPU with one 5-D spectral draw, 1.8 s with two 1-D draws, 1.1-1.4 s
    with this single one).
    """
    shapes = [(b, a) for a, b in zip(sizes[:-1], sizes[1:], strict=False)]
    width, n_layers = sizes[1], len(sizes) - 4
    spectral_shape = (n_layers, 2, width, width, modes)
    n_dense = sum(a * b for a, b in shapes)
    z = jax.random.normal(key, (n_dense + math.prod(spectral_shape),), dtype)
    dense, start = [], 0
    for fan_out, fan_in in shapes:
        w = z[start : start + fan_out * fan_in].reshape(fan_out, fan_in) * math.sqrt(2.0 / (fan_in + fan_out))
        dense.append((w.astype(dtype), jnp.zeros((fan_out,), dtype)))
        start += fan_out * fan_in
    spectral = (z[n_dense:].reshape(spectral_shape) * math.sqrt(1.0 / (2 * width))).astype(dtype)
    return tuple(dense), tuple((spectral[i, 0], spectral[i, 1]) for i in range(n_layers))


GRID_FEATURES = {"linear": 1, "periodic": 2}  # name -> number of grid channels


class FNO1d(eqx.Module):
    """One-dimensional Fourier neural operator (Li et al. 2021) on a uniform periodic grid of [0, 1).

    For an input function a with c_in channels sampled at x_j = j / n (j = 0..n-1):

        v_0(x) = P (a(x), g(x)) + p                                 lift to ``width`` channels (grid features g)
        v_{l+1}(x) = s( K_l v_l (x) + W_l v_l(x) + w_l ),  l < L    (no s after the last layer)
        (K_l v)(x) = sum_{|k| < modes} R_l[k] v^_k e^{2 pi i k x}   spectral convolution on the lowest modes
        out(x) = Q_2 s(Q_1 v_L(x) + q_1) + q_2                        projection to c_out channels

    v^_k are the Fourier coefficients ``rfft(v, norm="forward")`` (the sum divided by n) and the synthesis is
    ``irfft(., n, norm="forward")`` (no 1/n), so K_l acts on the *function* and not on its samples: the same
    weights evaluate the operator on any grid with n >= 2 * modes points (``__call__`` infers n from the input).
    That is the discretisation invariance of Li et al.: outputs on different grids agree up to the aliasing of
    the pointwise layers and converge as n grows. The highest kept mode is below Nyquist (``modes <= n // 2``) so
    every kept coefficient is a true complex one.

    Grid features g: ``"linear"`` is Li et al.'s coordinate channel g(x) = x, which jumps from 1 to 0 across the
    periodic boundary; its Fourier coefficients decay like 1/k, so the discretisation error is first order in 1/n
    (measured, width 16, 8 modes, 4 layers, band-limited input, max difference to n = 4096 relative to max |out|:
    n = 32: 8.8e-2, 64: 4.4e-2, 256: 1.0e-2, 1024: 2.1e-3). ``"periodic"`` uses g(x) = (cos 2 pi x, sin 2 pi x),
    smooth on the torus, so only the activations' aliasing remains (same model: n = 32: 7.9e-8, 64 and more:
    ~1e-15, round-off), the better choice for periodic problems (e.g. :func:`sciml_jax.datasets.burgers`).

    The complex weights R_l: (width, width, modes) are stored as two real arrays (``spectral_re``,
    ``spectral_im``) so that ``params`` are real float arrays (every optimizer and the Jacobian machinery see P
    real numbers); their entries are N(0, 1 / (2 width)) each, so every output coefficient has variance ~ that of
    the input coefficients. Pointwise layers are Glorot normal with zero biases. The dtype is
    ``jnp.result_type(float)``. Li et al. pad non-periodic problems, which this class does not do.

    Args:
        in_channels: channels c_in of the input function.
        out_channels: channels c_out of the output function.
        width: channels of the hidden representation.
        modes: number of Fourier modes k = 0..modes-1 kept per spectral layer (1 <= modes <= n_grid // 2).
        layers: number L of Fourier layers (>= 1).
        activation: an activation name of :data:`ACTIVATIONS` (default ``gelu``, exact).
        key: JAX PRNG key (keyword only).
        n_grid: number of grid points n of the training grid (``in_size`` = c_in * n_grid).
        projection_width: hidden width of the projection (default 2 * width; Li et al. use 128 for width 64).
        grid_features: ``"linear"`` (default, x) or ``"periodic"`` ((cos 2 pi x, sin 2 pi x)).
    """

    lift_w: jax.Array  # (width, c_in + n_features)
    lift_b: jax.Array  # (width,)
    spectral_re: tuple[jax.Array, ...]  # L x (width, width, modes)
    spectral_im: tuple[jax.Array, ...]
    pointwise_w: tuple[jax.Array, ...]  # L x (width, width)
    pointwise_b: tuple[jax.Array, ...]  # L x (width,)
    proj1_w: jax.Array  # (projection_width, width)
    proj1_b: jax.Array
    proj2_w: jax.Array  # (c_out, projection_width)
    proj2_b: jax.Array
    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    modes: int = eqx.field(static=True)
    layers: int = eqx.field(static=True)
    activation: str = eqx.field(static=True)
    n_grid: int = eqx.field(static=True)
    grid_features: str = eqx.field(static=True)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int,
        modes: int,
        layers: int,
        activation: str = "gelu",
        *,
        key: jax.Array,
        n_grid: int,
        projection_width: int | None = None,
        grid_features: str = "linear",
    ):
        owner = "FNO1d"
        self.in_channels = _check_size(in_channels, "in_channels", owner)
        self.out_channels = _check_size(out_channels, "out_channels", owner)
        self.width = _check_size(width, "width", owner)
        self.modes = _check_size(modes, "modes", owner)
        self.layers = _check_size(layers, "layers", owner)
        self.activation = _check_activation(activation, owner)
        self.n_grid = _check_size(n_grid, "n_grid", owner)
        if self.modes > self.n_grid // 2:
            raise ValueError(
                f"{owner}: modes must be <= n_grid // 2 = {self.n_grid // 2} (below Nyquist), got modes={self.modes}"
            )
        if grid_features not in GRID_FEATURES:
            raise ValueError(f"{owner}: grid_features must be one of {GRID_FEATURES}, got {grid_features!r}")
        self.grid_features = grid_features
        pw = 2 * self.width if projection_width is None else _check_size(projection_width, "projection_width", owner)
        dtype = jnp.dtype(jnp.result_type(float))
        sizes = (
            (self.in_channels + GRID_FEATURES[grid_features],)
            + (self.width,) * (self.layers + 1)
            + (pw, self.out_channels)
        )
        dense, spectral = _fno_init(_check_key(key, owner), sizes, self.modes, dtype)
        (self.lift_w, self.lift_b) = dense[0]  # then L pointwise layers, then two projection layers
        self.pointwise_w = tuple(w for w, _ in dense[1 : 1 + self.layers])
        self.pointwise_b = tuple(b for _, b in dense[1 : 1 + self.layers])
        (self.proj1_w, self.proj1_b), (self.proj2_w, self.proj2_b) = dense[-2], dense[-1]
        self.spectral_re = tuple(re for re, _ in spectral)
        self.spectral_im = tuple(im for _, im in spectral)

    @property
    def in_size(self) -> int:
        """Length c_in * n_grid of one point (one input function on the training grid)."""
        return self.in_channels * self.n_grid

    def _spectral(self, v: jax.Array, i: int) -> jax.Array:
        n = v.shape[-1]
        vh = jnp.fft.rfft(v, axis=-1, norm="forward")[:, : self.modes]  # (width, modes), complex
        weight = jax.lax.complex(self.spectral_re[i], self.spectral_im[i])  # (out, in, modes)
        out = jnp.einsum("oik,ik->ok", weight, vh)
        out = jnp.pad(out, ((0, 0), (0, n // 2 + 1 - self.modes)))
        return jnp.fft.irfft(out, n=n, axis=-1, norm="forward")

    def __call__(self, a: jax.Array) -> jax.Array:
        """Maps one input function ``a: (c_in * n,)`` (channel-major; ``(n,)`` for one channel) on the grid
        x_j = j / n to the output ``(c_out * n,)`` (``(n,)`` for one channel). n may differ from ``n_grid``
        (any n >= 2 * modes: discretisation-invariant evaluation, see the class docstring)."""
        if jnp.ndim(a) != 1 or jnp.shape(a)[0] % self.in_channels != 0:
            raise ValueError(
                f"FNO1d: expected one input function of shape (in_channels * n,) = ({self.in_size},) on the "
                f"training grid, got shape {jnp.shape(a)}; vmap over a batch of functions"
            )
        n = jnp.shape(a)[0] // self.in_channels
        if n < 2 * self.modes:
            raise ValueError(
                f"FNO1d: a grid of n = {n} points cannot hold modes = {self.modes}; need n >= {2 * self.modes}"
            )
        act = ACTIVATIONS[self.activation]
        x = jnp.arange(n, dtype=a.dtype) / n
        g = (
            x[None, :]
            if self.grid_features == "linear"
            else jnp.stack([jnp.cos(2 * jnp.pi * x), jnp.sin(2 * jnp.pi * x)])
        )
        h = jnp.concatenate([jnp.reshape(a, (self.in_channels, n)), g], axis=0)  # (c_in + n_features, n)
        v = self.lift_w @ h + self.lift_b[:, None]
        for i in range(self.layers):
            v = self._spectral(v, i) + self.pointwise_w[i] @ v + self.pointwise_b[i][:, None]
            if i < self.layers - 1:
                v = act(v)
        v = act(self.proj1_w @ v + self.proj1_b[:, None])
        out = self.proj2_w @ v + self.proj2_b[:, None]  # (c_out, n)
        return out[0] if self.out_channels == 1 else jnp.reshape(out, (-1,))
