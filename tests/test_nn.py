"""Models: shapes, initialisation statistics, the functional (params, apply) contract, the nnx adapter."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy import stats
from scipy.special import erf

from sciml_jax.nn import ACTIVATIONS, MLP, FourierFeatures, from_nnx, functional, num_params, ravel

KEY = jax.random.key(0)


def _numpy_forward(model, x, act):
    """Independent numpy forward pass through the model's weights."""
    h = np.asarray(x)
    if model.fourier_features is not None:
        z = 2 * np.pi * np.asarray(model.fourier_features.B.value) @ h
        h = np.concatenate([np.cos(z), np.sin(z)])
    for i, layer in enumerate(model.layers):
        h = np.asarray(layer.weight) @ h + np.asarray(layer.bias)
        if i < len(model.layers) - 1:
            h = act(h)
    return h[0] if model.out_size == 1 else h


NUMPY_ACTS = {
    "tanh": np.tanh,
    "sin": np.sin,
    "gelu": lambda z: 0.5 * z * (1 + erf(z / np.sqrt(2))),
    "silu": lambda z: z / (1 + np.exp(-z)),
    "swish": lambda z: z / (1 + np.exp(-z)),
    "relu": lambda z: np.maximum(z, 0),
    "softplus": lambda z: np.log1p(np.exp(z)),
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
}


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_forward_matches_numpy_reference(activation):
    model = MLP(3, 2, 8, 2, activation, key=KEY)
    x = jnp.array([0.3, -1.2, 0.7])
    # float64 end to end: only summation-order round-off between XLA and numpy
    np.testing.assert_allclose(model(x), _numpy_forward(model, x, NUMPY_ACTS[activation]), rtol=1e-12, atol=1e-14)


def test_output_shapes_and_structure():
    x = jnp.ones(2)
    xs = jnp.ones((5, 2))
    scalar = MLP(2, 1, 16, 3, key=KEY)
    vector = MLP(2, 3, 16, 1, key=KEY)
    assert scalar(x).shape == () and vector(x).shape == (3,)
    assert jax.vmap(scalar)(xs).shape == (5,) and jax.vmap(vector)(xs).shape == (5, 3)
    assert [layer.weight.shape for layer in scalar.layers] == [(16, 2), (16, 16), (16, 16), (1, 16)]
    ff = FourierFeatures(2, 10, 1.0, key=KEY)
    assert ff(x).shape == (20,)
    assert MLP(2, 1, 16, 1, key=KEY, fourier_features=ff).layers[0].weight.shape == (16, 20)


def test_glorot_normal_statistics_and_zero_biases():
    model = MLP(300, 1, 500, 2, key=jax.random.key(3))
    for layer, (fan_in, fan_out) in zip(model.layers[:2], [(300, 500), (500, 500)]):
        w = np.asarray(layer.weight).ravel()
        var = 2.0 / (fan_in + fan_out)
        # 150k-250k samples: the sample variance has relative standard error sqrt(2 / n) <= 0.4 %, so 2 % is more
        # than 5 standard errors
        assert np.var(w) == pytest.approx(var, rel=0.02)
        assert abs(np.mean(w)) < 5 * np.sqrt(var / w.size)
        # untruncated normal: KS test of w / sd against N(0, 1), p > 1e-3 (fails by chance once in 1000 keys) ...
        assert stats.kstest(w / np.sqrt(var), "norm").pvalue > 1e-3
        # ... with real tails: the largest of >= 150k draws exceeds 3.5 sd (a 2-sd truncation would not)
        assert np.max(np.abs(w)) > 3.5 * np.sqrt(var)
        np.testing.assert_array_equal(layer.bias, 0.0)


def test_fourier_features_formula_and_frequency_scale():
    ff = FourierFeatures(3, 2000, 2.5, key=jax.random.key(1))
    B = np.asarray(ff.B.value)
    assert B.shape == (2000, 3)
    # 6000 N(0, sigma^2) samples: the sample sd has relative standard error 1/sqrt(2 * 6000) = 0.9 %; allow 4 %
    assert np.std(B) == pytest.approx(2.5, rel=0.04)
    x = np.array([0.1, -0.4, 0.25])
    expected = np.concatenate([np.cos(2 * np.pi * B @ x), np.sin(2 * np.pi * B @ x)])
    # float64 round-off of |2 pi B x| ~ 50 only
    np.testing.assert_allclose(ff(jnp.asarray(x)), expected, rtol=1e-12, atol=1e-12)


def test_functional_apply_matches_model_and_excludes_fourier_matrix():
    ff = FourierFeatures(2, 6, 1.0, key=jax.random.key(5))
    model = MLP(2, 1, 8, 2, "sin", key=KEY, fourier_features=ff)
    params, apply = functional(model)
    x = jnp.array([0.2, 0.9])
    assert apply(params, x) == model(x)
    leaves = jax.tree_util.tree_leaves(params)
    assert all(eqx.is_inexact_array(leaf) for leaf in leaves)
    assert all(leaf.shape != (6, 2) for leaf in leaves)  # no B among the parameters
    assert num_params(params) == (12 * 8 + 8) + (8 * 8 + 8) + (8 + 1)
    g = jax.grad(apply)(params, x)
    assert jax.tree_util.tree_structure(g) == jax.tree_util.tree_structure(params)
    assert g.fourier_features.B is None and len(jax.tree_util.tree_leaves(g)) == 6
    # a gradient step on params leaves B untouched, and apply still uses the same B
    stepped = jax.tree_util.tree_map(lambda p, d: p - 0.1 * d, params, g)
    rebuilt = eqx.combine(stepped, eqx.filter(model, lambda leaf: False, inverse=True))
    np.testing.assert_array_equal(rebuilt.fourier_features.B.value, ff.B.value)
    assert apply(stepped, x) != apply(params, x)


@pytest.mark.slow
def test_jit_vmap_grad_and_derivatives_agree_with_finite_differences():
    model = MLP(2, 1, 16, 2, key=jax.random.key(2))
    params, apply = functional(model)
    xs = jax.random.uniform(jax.random.key(3), (7, 2))
    u = jax.jit(jax.vmap(apply, in_axes=(None, 0)))(params, xs)
    np.testing.assert_allclose(u, [model(x) for x in xs], rtol=1e-13)
    # d u / d x by central differences, h = 1e-5: truncation O(h^2) ~ 1e-10, round-off ~ 1e-11
    x, h = xs[0], 1e-5
    du = jax.grad(apply, argnums=1)(params, x)
    fd = [(apply(params, x + h * e) - apply(params, x - h * e)) / (2 * h) for e in jnp.eye(2)]
    np.testing.assert_allclose(du, fd, rtol=1e-7, atol=1e-9)
    # gradient in parameter space along a random direction v, same finite-difference tolerance
    flat, unravel = ravel(params)
    v = jax.random.normal(jax.random.key(4), flat.shape)
    gp, _ = ravel(jax.grad(apply)(params, x))
    fd_dir = (apply(unravel(flat + h * v), x) - apply(unravel(flat - h * v), x)) / (2 * h)
    np.testing.assert_allclose(gp @ v, fd_dir, rtol=1e-7, atol=1e-9)


def test_ravel_round_trip():
    params, apply = functional(MLP(3, 2, 5, 2, key=KEY, fourier_features=FourierFeatures(3, 4, 1.0, key=KEY)))
    flat, unravel = ravel(params)
    assert flat.shape == (num_params(params),) and flat.dtype == jnp.float64
    back = unravel(flat)
    assert jax.tree_util.tree_structure(back) == jax.tree_util.tree_structure(params)
    for a, b in zip(jax.tree_util.tree_leaves(back), jax.tree_util.tree_leaves(params)):
        np.testing.assert_array_equal(a, b)
    x = jnp.array([0.1, 0.2, 0.3])
    np.testing.assert_array_equal(apply(back, x), apply(params, x))


def test_float64_end_to_end_and_float32_without_x64():
    params, apply = functional(MLP(2, 1, 4, 1, key=KEY, fourier_features=FourierFeatures(2, 3, 1.0, key=KEY)))
    assert all(leaf.dtype == jnp.float64 for leaf in jax.tree_util.tree_leaves(params))
    assert apply(params, jnp.ones(2)).dtype == jnp.float64
    with jax.enable_x64(False):
        p32, apply32 = functional(MLP(2, 1, 4, 1, key=KEY))
        assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(p32))
        assert apply32(p32, jnp.ones(2, jnp.float32)).dtype == jnp.float32


class _NnxNet(nnx.Module):
    def __init__(self, rngs):
        dtype = jnp.result_type(float)
        self.l1 = nnx.Linear(2, 8, param_dtype=dtype, dtype=dtype, rngs=rngs)
        self.l2 = nnx.Linear(8, 1, param_dtype=dtype, dtype=dtype, rngs=rngs)
        self.calls = nnx.Variable(jnp.zeros((), jnp.int32))  # non-parameter state the module mutates

    def __call__(self, x):
        self.calls[...] = self.calls[...] + 1
        return self.l2(jnp.tanh(self.l1(x)))[0]


def test_from_nnx_gives_the_same_contract():
    module = _NnxNet(nnx.Rngs(0))
    x = jnp.array([0.3, -0.5])
    expected = float(module(x))
    params, apply = from_nnx(module)
    assert all(leaf.dtype == jnp.float64 for leaf in jax.tree_util.tree_leaves(params))
    assert num_params(params) == 2 * 8 + 8 + 8 + 1  # the int counter is not a parameter
    assert float(apply(params, x)) == pytest.approx(expected, rel=1e-14)
    assert float(apply(params, x)) == float(apply(params, x))
    assert int(module.calls[...]) == 1  # apply did not touch the original module's state (pure)
    module.l1.kernel[...] = jnp.zeros((2, 8))  # nor does a later in-place change of the module reach params
    assert float(apply(params, x)) == pytest.approx(expected, rel=1e-14)
    xs = jnp.stack([x, 2 * x, -x])
    u = jax.jit(jax.vmap(apply, in_axes=(None, 0)))(params, xs)
    assert u.shape == (3,)
    g = jax.grad(apply)(params, x)
    gflat, _ = ravel(g)
    flat, unravel = ravel(params)
    v = jax.random.normal(jax.random.key(1), flat.shape)
    h = 1e-5  # central differences, as above
    fd = (apply(unravel(flat + h * v), x) - apply(unravel(flat - h * v), x)) / (2 * h)
    np.testing.assert_allclose(gflat @ v, fd, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: MLP(2, 1, 8, 1, "elu", key=KEY), r"activation must be one of tanh, sin, gelu, .*sigmoid; got 'elu'"),
        (lambda: MLP(2, 1, 8, 0, key=KEY), r"MLP: depth must be a positive int, got 0"),
        (lambda: MLP(2, 1, 8.0, 1, key=KEY), r"MLP: width must be a positive int, got 8.0 of type float"),
        (lambda: MLP(2, 1, 8, 1, key=0), r"MLP: key must be a JAX PRNG key .* got 0"),
        (
            lambda: MLP(2, 1, 8, 1, key=KEY, fourier_features=FourierFeatures(3, 4, 1.0, key=KEY)),
            r"fourier_features.in_size must equal in_size=2, got 3",
        ),
        (lambda: FourierFeatures(2, 4, 0.0, key=KEY), r"sigma must be a finite real > 0, got 0.0"),
        (lambda: FourierFeatures(2, 0, 1.0, key=KEY), r"num_features must be a positive int, got 0"),
        (lambda: MLP(2, 1, 8, 1, key=KEY)(jnp.ones((4, 2))), r"one point x of shape \(2,\), got shape \(4, 2\)"),
        (lambda: functional(lambda x: x), r"model must be an equinox.Module, got function"),
        (lambda: from_nnx(MLP(2, 1, 8, 1, key=KEY)), r"module must be a flax.nnx.Module, got MLP"),
    ],
)
def test_bad_input(make, match):
    with pytest.raises(ValueError, match=match):
        make()
