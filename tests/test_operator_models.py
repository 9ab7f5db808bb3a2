"""Neural operators: DeepONet and FNO1d against independent numpy forward passes, the batched DeepONet evaluation,
derivatives in the query coordinate, discretisation invariance of the FNO, and the toolkit contracts (functional,
float64, Jacobians, serialisation, training through sj.train.fit)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import erf

import sciml_jax as sj
from sciml_jax.nn import DeepONet, FNO1d, deeponet_grid, functional

KEY = jax.random.key(0)
EPS = np.finfo(np.float64).eps


def _np_mlp(mlp, x, act):
    h = np.asarray(x)
    for i, layer in enumerate(mlp.layers):
        h = np.asarray(layer.weight) @ h + np.asarray(layer.bias)
        if i < len(mlp.layers) - 1:
            h = act(h)
    return h


def _np_deeponet(model, z):
    m, p, o = model.n_sensors, model.latent, model.n_outputs
    b = _np_mlp(model.branch, z[:m], np.tanh).reshape(o, p)
    t = np.tanh(_np_mlp(model.trunk, z[m:], np.tanh)).reshape(o, p)
    out = np.sum(b * t, axis=1)
    if model.b0 is not None:
        out = out + np.asarray(model.b0)
    if model.output_scale is not None:
        out = out * model.output_scale
    return out[0] if o == 1 else out


def _np_gelu(v):
    return 0.5 * v * (1 + erf(v / np.sqrt(2)))


def _np_fno(model, a):
    """Independent forward pass: the spectral convolution as an explicit sum over Fourier modes."""
    c_in = model.in_channels
    n = a.shape[0] // c_in
    x = np.arange(n) / n
    g = [x] if model.grid_features == "linear" else [np.cos(2 * np.pi * x), np.sin(2 * np.pi * x)]
    v = np.asarray(model.lift_w) @ np.vstack([np.reshape(a, (c_in, n)), *g]) + np.asarray(model.lift_b)[:, None]
    modes = model.modes
    k = np.arange(modes)
    dft = np.exp(-2j * np.pi * np.outer(x, k))  # (n, modes)
    for i in range(model.layers):
        R = np.asarray(model.spectral_re[i]) + 1j * np.asarray(model.spectral_im[i])
        vh = v @ dft / n  # (width, modes): forward-normalised coefficients
        oh = np.einsum("oik,ik->ok", R, vh)
        # real synthesis: mode 0 once, modes k >= 1 with their conjugates (the inverse real FFT of a half spectrum)
        spec = oh[:, :1].real + 2 * np.real(oh[:, 1:] @ np.exp(2j * np.pi * np.outer(k[1:], x)))
        spec = np.broadcast_to(spec, v.shape) if spec.shape != v.shape else spec
        v = spec + np.asarray(model.pointwise_w[i]) @ v + np.asarray(model.pointwise_b[i])[:, None]
        if i < model.layers - 1:
            v = _np_gelu(v)
    v = _np_gelu(np.asarray(model.proj1_w) @ v + np.asarray(model.proj1_b)[:, None])
    out = np.asarray(model.proj2_w) @ v + np.asarray(model.proj2_b)[:, None]
    return out[0] if model.out_channels == 1 else out.ravel()


@eqx.filter_jit
def _call(model, x):
    return model(x)


def _perturbed(model, seed, scale=0.1):
    """The model with every parameter shifted randomly (zero-initialised biases would hide mistakes).

    Host numpy draws: JAX compiles every new random-draw shape anew, which costs seconds of CPU in a test suite."""
    params, static = eqx.partition(model, eqx.is_inexact_array)
    flat, unravel = sj.nn.ravel(params)
    shift = np.random.default_rng(seed).standard_normal(flat.shape)
    return eqx.combine(unravel(flat + scale * jnp.asarray(shift, flat.dtype)), static)


def _normal(seed, shape):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape))


def _uniform(seed, shape):
    return jnp.asarray(np.random.default_rng(seed).uniform(size=shape))


# --------------------------------------------------------------------------------------------------------- DeepONet


@pytest.mark.parametrize("n_outputs, bias, scale", [(1, False, 2.5), (3, True, 0.5)])
def test_deeponet_matches_numpy_reference(n_outputs, bias, scale):
    # the architectures of the grid tests below (model construction compiles once per architecture)
    model = DeepONet(6, 2, 10, 2, 4, key=KEY, bias=bias, output_scale=scale, n_outputs=n_outputs)
    model = _perturbed(model, 1)
    z = _normal(2, (8,))
    out = _call(model, z)
    assert out.shape == (() if n_outputs == 1 else (n_outputs,)) and out.dtype == jnp.float64
    # float64 end to end: only summation-order round-off between XLA and numpy
    np.testing.assert_allclose(out, _np_deeponet(model, np.asarray(z)), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("n_outputs, per_function", [(1, False), (3, True)])
def test_deeponet_grid_equals_pointwise_evaluation(n_outputs, per_function):
    model = _perturbed(DeepONet(6, 2, 10, 2, 4, key=KEY, n_outputs=n_outputs), 3)
    params, apply = functional(model)
    U = _normal(4, (3, 6))
    Y = _uniform(5, (3, 5, 2) if per_function else (5, 2))
    G = jax.jit(lambda p, U, Y: deeponet_grid(p, model, U, Y))(params, U, Y)
    assert G.shape == ((3, 5) if n_outputs == 1 else (3, 5, n_outputs))
    Yb = Y if per_function else jnp.broadcast_to(Y, (3, 5, 2))
    Z = jnp.concatenate([jnp.repeat(U[:, None, :], 5, axis=1), Yb], axis=-1).reshape(15, 8)
    pointwise = jax.jit(jax.vmap(apply, in_axes=(None, 0)))(params, Z).reshape(G.shape)
    np.testing.assert_allclose(G, pointwise, rtol=1e-12, atol=1e-13)
    # the same through the model method (params=None uses the model's own arrays)
    np.testing.assert_allclose(deeponet_grid(None, model, U, Y), G, rtol=1e-13, atol=1e-15)


def test_deeponet_grid_residual_gradient_equals_pointwise_residual_gradient():
    model = _perturbed(DeepONet(5, 1, 8, 2, 4, key=KEY), 6)
    params, apply = functional(model)
    U = _normal(7, (4, 5))
    Y = _uniform(8, (4, 3, 1))
    S = _normal(9, (4, 3))
    Z = jnp.concatenate([jnp.repeat(U[:, None, :], 3, axis=1), Y], axis=-1).reshape(12, 6)

    def loss_grid(p):
        return 0.5 * jnp.sum((deeponet_grid(p, model, U, Y) - S) ** 2)

    def loss_points(p):
        return 0.5 * jnp.sum((jax.vmap(apply, in_axes=(None, 0))(p, Z) - S.ravel()) ** 2)

    g1, _ = sj.nn.ravel(jax.jit(jax.grad(loss_grid))(params))
    g2, _ = sj.nn.ravel(jax.jit(jax.grad(loss_points))(params))
    np.testing.assert_allclose(g1, g2, rtol=1e-11, atol=1e-13)


def test_deeponet_derivative_in_query_coordinate():
    m = 6
    model = _perturbed(DeepONet(m, 2, 10, 2, 4, key=KEY), 10)
    params, apply = functional(model)
    z = jnp.concatenate([_normal(11, (m,)), jnp.array([0.3, 0.7])])
    u = jax.jit(lambda zz: apply(params, zz))
    du_dy1 = jax.jit(sj.operators.partial(u, m + 1))(z)
    # against the trunk differentiated by hand: d/dy1 sum_k b_k t_k(y)
    b = eqx.filter_jit(lambda mod, u: mod.branch_features(u))(model, z[:m])
    dt = jax.jit(jax.jacfwd(model.trunk_features))(z[m:])[..., 1]
    np.testing.assert_allclose(du_dy1, jnp.sum(b * dt), rtol=1e-12, atol=1e-14)
    # and against a central difference in y1 (error ~ h^2 |u'''| + eps |u| / h)
    h = 1e-5
    e = jnp.zeros(m + 2).at[m + 1].set(h)
    np.testing.assert_allclose(du_dy1, (u(z + e) - u(z - e)) / (2 * h), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_sensors=0), "n_sensors"),
        (dict(latent=2.5), "latent"),
        (dict(activation="elu"), "activation"),
        (dict(output_scale=-1.0), "output_scale"),
        (dict(n_outputs=0), "n_outputs"),
        (dict(bias="yes"), "bias"),
    ],
)
def test_deeponet_validates_arguments(kwargs, match):
    args = dict(n_sensors=4, coord_dim=1, width=8, depth=1, latent=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        DeepONet(**args, key=KEY)


def test_deeponet_rejects_wrong_point_and_grid_shapes():
    model = DeepONet(5, 1, 8, 2, 4, key=KEY)
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        model(jnp.ones(5))
    with pytest.raises(ValueError, match="U must have shape"):
        deeponet_grid(None, model, jnp.ones((2, 3)), jnp.ones((5, 1)))
    with pytest.raises(ValueError, match="Y must have shape"):
        deeponet_grid(None, model, jnp.ones((2, 5)), jnp.ones((3, 5, 1)))
    with pytest.raises(ValueError, match="must be a DeepONet"):
        deeponet_grid(None, model.branch, jnp.ones((2, 5)), jnp.ones((5, 1)))


# -------------------------------------------------------------------------------------------------------------- FNO


@pytest.mark.slow
@pytest.mark.parametrize("c_in, c_out, grid_features", [(1, 1, "linear"), (2, 3, "periodic")])
def test_fno_matches_numpy_reference(c_in, c_out, grid_features):
    model = FNO1d(c_in, c_out, 6, 5, 3, key=KEY, n_grid=16, grid_features=grid_features)
    model = _perturbed(model, 12)
    a = _normal(13, (c_in * 16,))
    out = _call(model, a)
    assert out.shape == (c_out * 16,) if c_out > 1 else (16,)
    assert out.dtype == jnp.float64
    # FFT vs explicit DFT sums of ~16 terms: round-off ~ 1e-15 relative to the O(1) activations
    np.testing.assert_allclose(out, _np_fno(model, np.asarray(a)), rtol=1e-11, atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("grid_features", ["linear", "periodic"])
def test_fno_is_discretisation_invariant(grid_features):
    """The same weights on finer grids: outputs at the shared points converge as n grows.

    For a band-limited input the only n-dependence is the aliasing of what the pointwise layers put above the
    kept modes. With the linear grid channel x (a sawtooth on the torus, Fourier coefficients ~ 1/k) that decays
    like 1/n; with periodic features (cos, sin) everything is smooth and the outputs agree to round-off once the
    grid resolves the activations' harmonics (measured: 8e-8 at n = 32, 1e-15 from n = 64 on)."""
    model = _perturbed(FNO1d(1, 1, 6, 5, 3, key=KEY, n_grid=16, grid_features=grid_features), 14, 0.05)
    params, apply = functional(model)
    apply = jax.jit(apply)  # one compilation per grid size instead of op-by-op dispatch

    def a(n):
        x = jnp.arange(n) / n
        return jnp.sin(2 * jnp.pi * x) + 0.5 * jnp.cos(6 * jnp.pi * x)

    fine = apply(params, a(2048))
    scale = float(jnp.max(jnp.abs(fine)))
    diffs = [float(jnp.max(jnp.abs(apply(params, a(n)) - fine[:: 2048 // n]))) / scale for n in (32, 128, 512)]
    if grid_features == "linear":
        assert diffs[0] > diffs[1] > diffs[2], diffs
        assert diffs[2] < 0.2 * diffs[0] and diffs[0] < 0.5  # first order: 16x more points, ~16x smaller
    else:
        # round-off of O(1) activations through a few FFTs of length <= 2048
        assert max(diffs[1:]) < 1e3 * EPS, diffs


def test_fno_validates_arguments_and_points():
    with pytest.raises(ValueError, match="modes"):
        FNO1d(1, 1, 4, 9, 2, key=KEY, n_grid=16)
    with pytest.raises(ValueError, match="activation"):
        FNO1d(1, 1, 4, 4, 2, "cos", key=KEY, n_grid=16)
    with pytest.raises(ValueError, match="n_grid"):
        FNO1d(1, 1, 4, 4, 2, key=KEY, n_grid=0)
    with pytest.raises(ValueError, match="grid_features"):
        FNO1d(1, 1, 4, 4, 2, key=KEY, n_grid=16, grid_features="fourier")
    model = FNO1d(2, 1, 4, 4, 2, key=KEY, n_grid=16)
    with pytest.raises(ValueError, match="in_channels"):
        model(jnp.ones(31))
    with pytest.raises(ValueError, match="cannot hold modes"):
        model(jnp.ones(2 * 6))
    with pytest.raises(ValueError, match="in_channels"):
        model(jnp.ones((2, 16)))


def test_fno_params_are_real_and_counted():
    model = FNO1d(1, 1, 4, 3, 2, key=KEY, n_grid=16)  # the architecture of _fno_problem (compiled once)
    params, _ = functional(model)
    leaves = jax.tree.leaves(params)
    assert all(leaf.dtype == jnp.float64 for leaf in leaves)
    # lift 4*(1+1)+4, 2 x (spectral 2*4*4*3 + pointwise 4*4+4), projection (2*4)*4+8 + 1*8+1
    assert sj.nn.num_params(params) == 12 + 2 * (96 + 20) + 40 + 9


# ------------------------------------------------------------------------------------------ the toolkit's contracts


def _deeponet_problem():
    model = DeepONet(5, 1, 8, 2, 4, key=KEY)
    U = _normal(20, (6, 5))
    Y = _uniform(21, (6, 4, 1))
    S = jnp.cumsum(U[:, :4], axis=1) / 5  # any smooth-ish target

    def residual(params, batch):
        U, Y, S = batch["data"]
        return (deeponet_grid(params, model, U, Y) - S).ravel() / jnp.sqrt(S.size)

    return model, residual, {"data": (U, Y, S)}


def _fno_problem():
    model = FNO1d(1, 1, 4, 3, 2, key=KEY, n_grid=16)
    _, apply = functional(model)
    x = jnp.arange(16) / 16
    a = jnp.stack([jnp.sin(2 * jnp.pi * (x + c)) for c in (0.0, 0.3, 0.6)])
    s = 0.5 * jnp.roll(a, 2, axis=1)

    def residual(params, batch):
        a, s = batch["data"]
        return (jax.vmap(apply, in_axes=(None, 0))(params, a) - s).ravel() / jnp.sqrt(s.size)

    return model, residual, {"data": (a, s)}


PROBLEMS = {"deeponet": _deeponet_problem, "fno": _fno_problem}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_jacfwd_equals_jacrev_and_float64_is_kept(name):
    model, residual, batch = PROBLEMS[name]()
    params, _ = functional(model)
    flat, unravel = sj.nn.ravel(params)
    f = jax.jit(lambda v: residual(unravel(v), batch))
    r = f(flat)
    assert flat.dtype == jnp.float64 and r.dtype == jnp.float64
    J_fwd, J_rev = jax.jit(jax.jacfwd(f))(flat), jax.jit(jax.jacrev(f))(flat)
    assert J_fwd.dtype == jnp.float64 and J_fwd.shape == (r.shape[0], flat.shape[0])
    # both are exact derivatives; they differ by round-off of the O(|J|) entries only
    np.testing.assert_allclose(J_fwd, J_rev, rtol=0, atol=1e3 * EPS * float(jnp.max(jnp.abs(J_rev))))
    assert float(jnp.max(jnp.abs(J_rev))) > 0


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_serialisation_round_trip(name, tmp_path):
    model, _, _ = PROBLEMS[name]()
    model = _perturbed(model, 30)
    path = tmp_path / "model.eqx"
    eqx.tree_serialise_leaves(path, model)
    template = PROBLEMS[name]()[0]
    loaded = eqx.tree_deserialise_leaves(path, template)
    for a, b in zip(jax.tree.leaves(model), jax.tree.leaves(loaded), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_levenberg_marquardt_through_fit_reduces_loss(name):
    model, residual, batch = PROBLEMS[name]()
    params, _ = functional(model)
    steps = 5
    result = sj.train.fit(
        residual, params, batch, sj.optim.levenberg_marquardt(), steps=steps, eval_every=steps, progress=False
    )
    loss0 = 0.5 * float(jnp.sum(residual(params, batch) ** 2))
    loss1 = 0.5 * float(jnp.sum(residual(result.params, batch) ** 2))
    assert result.status == "completed"
    assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(result.params))
    # LM from the default initialisation: accepted steps decrease the loss strictly; 5 steps cut it by > 2x
    assert loss1 < 0.5 * loss0, (loss0, loss1)
