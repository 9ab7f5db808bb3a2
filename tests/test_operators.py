"""Tests for sciml_jax.operators (float64 via tests/conftest.py).

References are analytic derivatives, or, for neural networks, ``jnp.trace(jax.hessian(...))`` written here with
plain JAX (independent of the code under test).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml_jax.operators import (
    LAPLACIAN_METHODS,
    auto_method,
    biharmonic,
    divergence,
    grad,
    hessian,
    laplacian,
    partial,
    time_derivative,
)

# Analytic checks: values are O(1)-O(100) and every path is exact AD, so the only error is float64 rounding
# (~1e-15 relative, a few ulps per operation); 1e-10 absolute leaves a wide margin yet catches any wrong term.
ATOL = 1e-10
RTOL = 1e-12
# Between exact AD paths on O(1) network outputs, as required of every Laplacian method.
PATH_ATOL = 1e-12

METHODS = [m for m in LAPLACIAN_METHODS]


def close(a, b, atol=ATOL, rtol=RTOL):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=atol, rtol=rtol)


def jit_all(fns, x):
    """Evaluates a dict of point functions at x in ONE jitted call (one compilation keeps the tests fast)."""
    return jax.jit(lambda y: {name: fn(y) for name, fn in fns.items()})(x)


# ---------------------------------------------------------------------------------------------------------------
# Test functions with analytic derivatives
# ---------------------------------------------------------------------------------------------------------------


def sine_product(k):
    """f(x) = prod_i sin(k_i x_i): grad_j = k_j cos(k_j x_j) prod_{i!=j} sin; Delta f = -sum(k^2) f."""
    k = np.asarray(k, dtype=np.float64)
    return lambda x: jnp.prod(jnp.sin(k * x))


def sine_product_grad(k, x):
    k, x = np.asarray(k, dtype=np.float64), np.asarray(x)
    s, c = np.sin(k * x), np.cos(k * x)
    return np.array([k[j] * c[j] * np.prod(np.delete(s, j)) for j in range(len(k))])


def sine_product_hessian(k, x):
    k, x = np.asarray(k, dtype=np.float64), np.asarray(x)
    s, c = np.sin(k * x), np.cos(k * x)
    d = len(k)
    h = np.empty((d, d))
    for a in range(d):
        for b in range(d):
            if a == b:
                h[a, a] = -k[a] ** 2 * np.prod(s)
            else:
                h[a, b] = k[a] * k[b] * c[a] * c[b] * np.prod(np.delete(s, [a, b]))
    return h


def random_point(d, seed=0, scale=1.0):
    return jnp.asarray(np.random.default_rng(seed).uniform(-scale, scale, d))


def init_tanh_mlp(d, width=16, depth=2, out=1, seed=0):
    """Small tanh MLP with Glorot-normal weights and nonzero biases (so no symmetry makes terms vanish)."""
    rng = np.random.default_rng(seed)
    sizes = [d] + [width] * depth + [out]
    return [
        (jnp.asarray(rng.normal(0, np.sqrt(2 / (a + b)), (a, b))), jnp.asarray(rng.normal(0, 0.3, b)))
        for a, b in zip(sizes[:-1], sizes[1:])
    ]


def tanh_mlp(params, x):
    h = x
    for w, b in params[:-1]:
        h = jnp.tanh(h @ w + b)
    w, b = params[-1]
    out = h @ w + b
    return out[0] if out.shape == (1,) else out


def ref_laplacian(f, x, dims=None):
    """Reference: trace of the dense Hessian from plain jax.hessian, restricted to dims."""
    h = jax.hessian(f)(x)
    dims = range(x.shape[0]) if dims is None else [i % x.shape[0] for i in dims]
    return sum(h[..., i, i] for i in dims)


# ---------------------------------------------------------------------------------------------------------------
# Analytic derivatives
# ---------------------------------------------------------------------------------------------------------------


def test_polynomial_1d_all_orders():
    # f(x) = x^5 - 3 x^2 + 2. Derivatives of order 1..6: 5x^4 - 6x, 20x^3 - 6, 60x^2, 120x, 120, 0.
    f = lambda x: x[0] ** 5 - 3 * x[0] ** 2 + 2  # noqa: E731
    t = 0.7
    expected = [5 * t**4 - 6 * t, 20 * t**3 - 6, 60 * t**2, 120 * t, 120.0, 0.0]
    fns = {f"d{n}": partial(f, 0, n) for n in range(1, 7)}
    fns |= {f"lap_{m}": laplacian(f, method=m) for m in METHODS}
    fns |= dict(grad=grad(f), hess=hessian(f), bih=biharmonic(f))
    out = jit_all(fns, jnp.array([t]))
    for n, value in enumerate(expected, start=1):
        close(out[f"d{n}"], value)
    close(out["grad"], [expected[0]])
    close(out["hess"], [[expected[1]]])
    for m in METHODS:
        close(out[f"lap_{m}"], expected[1])
    close(out["bih"], expected[3])


@pytest.mark.slow
@pytest.mark.parametrize("d", [1, 2, 3, 5])
def test_sine_product_grad_hessian_laplacian(d):
    k = np.arange(1, d + 1) * 0.9
    f = sine_product(k)
    x = random_point(d, seed=d)
    fx = float(f(x))
    fns = {f"lap_{m}": laplacian(f, method=m) for m in METHODS}
    fns |= dict(grad=grad(f), hess=hessian(f), d4=partial(f, d - 1, 4))
    if d == 2:  # biharmonics compile slowly: the default (nested forward Laplacians) at d = 2, jacfwd at d = 3
        fns["bih"] = biharmonic(f)
    if d == 3:
        fns["bih"] = biharmonic(f, method="jacfwd")
    out = jit_all(fns, x)
    close(out["grad"], sine_product_grad(k, x))
    close(out["hess"], sine_product_hessian(k, x))
    for m in METHODS:
        close(out[f"lap_{m}"], -np.sum(k**2) * fx)
    if "bih" in out:  # Delta^2 f = (sum k^2)^2 f exactly.
        close(out["bih"], np.sum(k**2) ** 2 * fx)
    # A high-order partial: d^4/dx_j^4 sin(k_j x_j) = k_j^4 sin(k_j x_j).
    close(out["d4"], k[-1] ** 4 * fx)


def test_exponential_3d():
    # f(x) = exp(a.x): grad = a f, H = a a^T f, Delta f = |a|^2 f, d^n f / dx_i^n = a_i^n f.
    a = np.array([0.5, -1.2, 0.8])
    f = lambda x: jnp.exp(jnp.dot(a, x))  # noqa: E731
    x = jnp.array([0.3, 0.1, -0.4])
    fx = float(f(x))
    fns = dict(grad=grad(f), hess=hessian(f), hess20=hessian(f, dims=(2, 0)))
    fns |= {f"lap_{m}": laplacian(f, method=m) for m in METHODS}
    fns |= {f"lap1_{m}": laplacian(f, dims=(1,), method=m) for m in METHODS}
    fns |= {f"d{n}_1": partial(f, 1, n) for n in (1, 2, 3)}
    fns |= {f"d{n}_last": partial(f, -1, n) for n in (1, 2, 3)}
    out = jit_all(fns, x)
    close(out["grad"], a * fx)
    close(out["hess"], np.outer(a, a) * fx)
    close(out["hess20"], np.outer(a[[2, 0]], a[[2, 0]]) * fx)
    for m in METHODS:
        close(out[f"lap_{m}"], np.dot(a, a) * fx)
        close(out[f"lap1_{m}"], a[1] ** 2 * fx)
    for n in (1, 2, 3):
        close(out[f"d{n}_1"], a[1] ** n * fx)
        close(out[f"d{n}_last"], a[2] ** n * fx)


def test_space_time_heat_and_wave():
    # Heat: u(x, y, t) = exp(-2 pi^2 t) sin(pi x) sin(pi y) solves u_t = Delta_x u = -2 pi^2 u.
    u = lambda z: jnp.exp(-2 * jnp.pi**2 * z[2]) * jnp.sin(jnp.pi * z[0]) * jnp.sin(jnp.pi * z[1])  # noqa: E731
    z = jnp.array([0.3, 0.6, 0.05])
    uz = float(u(z))
    fns = {f"lap_{m}": laplacian(u, dims=(0, 1), method=m) for m in METHODS}
    fns |= {f"lapneg_{m}": laplacian(u, dims=(0, -2), method=m) for m in METHODS}
    fns |= dict(
        ut=time_derivative(u),
        gx=grad(u, dims=(0, 1)),
        div=divergence(grad(u, dims=(0, 1)), dims=(0, 1)),
        bih=biharmonic(u, dims=(0, 1)),
    )
    out = jit_all(fns, z)
    for m in METHODS:
        close(out[f"lap_{m}"], -2 * np.pi**2 * uz)
        close(out[f"lapneg_{m}"], -2 * np.pi**2 * uz)
    close(out["ut"], -2 * np.pi**2 * uz)
    # Spatial gradient excludes time; the divergence of the spatial gradient is the spatial Laplacian.
    assert out["gx"].shape == (2,)
    close(out["gx"][0], np.pi * np.exp(-2 * np.pi**2 * 0.05) * np.cos(np.pi * 0.3) * np.sin(np.pi * 0.6))
    close(out["div"], -2 * np.pi**2 * uz)
    # Spatial biharmonic: (2 pi^2)^2 u; values ~ 400 |u|, so 1e-9 absolute is still rounding level.
    close(out["bih"], (2 * np.pi**2) ** 2 * uz, atol=1e-9)
    # Wave: v(x, t) = sin(pi x) cos(2 pi t) has v_tt = -4 pi^2 v and v_tt = 4 v_xx.
    v = lambda z: jnp.sin(jnp.pi * z[0]) * jnp.cos(2 * jnp.pi * z[1])  # noqa: E731
    w = jnp.array([0.2, 0.3])
    out = jit_all(dict(vtt=time_derivative(v, order=2), vxx=laplacian(v, dims=(0,))), w)
    close(out["vtt"], -4 * np.pi**2 * float(v(w)))
    close(out["vtt"], 4 * out["vxx"])


def test_divergence_analytic():
    # F = (x0^2 x1, sin(x1) x2, exp(x0 x2)): div F = 2 x0 x1 + cos(x1) x2 + x0 exp(x0 x2).
    F = lambda x: jnp.array([x[0] ** 2 * x[1], jnp.sin(x[1]) * x[2], jnp.exp(x[0] * x[2])])  # noqa: E731
    # Restricted: G pairs with dims (2, 0): dG_0/dx2 + dG_1/dx0 = 3 x2^2 x1 + cos(x0) x1.
    G = lambda x: jnp.array([x[2] ** 3 * x[1], jnp.sin(x[0]) * x[1]])  # noqa: E731
    x0, x1, x2 = 0.4, -0.7, 1.1
    out = jit_all(dict(F=divergence(F), G=divergence(G, dims=(2, 0))), jnp.array([x0, x1, x2]))
    close(out["F"], 2 * x0 * x1 + np.cos(x1) * x2 + x0 * np.exp(x0 * x2))
    close(out["G"], 3 * x2**2 * x1 + np.cos(x0) * x1)


def test_vector_valued_laplacian_is_componentwise():
    # f = (sin(x0) x1^2, exp(x0 + 2 x1)): Delta f = (-sin(x0) x1^2 + 2 sin(x0), 5 exp(x0 + 2 x1)).
    f = lambda x: jnp.array([jnp.sin(x[0]) * x[1] ** 2, jnp.exp(x[0] + 2 * x[1])])  # noqa: E731
    fns = {m: laplacian(f, method=m) for m in METHODS} | {"d2": partial(f, 1, 2)}
    out = jit_all(fns, jnp.array([0.3, -0.5]))
    expected = np.array([-np.sin(0.3) * 0.25 + 2 * np.sin(0.3), 5 * np.exp(0.3 - 1.0)])
    for m in METHODS:
        assert out[m].shape == (2,)
        close(out[m], expected)
    close(out["d2"], [2 * np.sin(0.3), 4 * np.exp(0.3 - 1.0)])


# ---------------------------------------------------------------------------------------------------------------
# Laplacian paths on neural networks
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("d", [2, 7])
def test_all_laplacian_paths_match_hessian_trace_on_mlp(d):
    params = init_tanh_mlp(d, seed=d)
    f = lambda y: tanh_mlp(params, y)  # noqa: E731
    X = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (4, d)))
    dims = (d - 1, 0) if d > 2 else (1,)
    fns = {"ref": lambda x: ref_laplacian(f, x), "ref_dims": lambda x: ref_laplacian(f, x, dims)}
    fns |= {m: laplacian(f, method=m) for m in METHODS}
    fns |= {f"dims_{m}": laplacian(f, dims=dims, method=m) for m in METHODS}
    out = jit_all({name: jax.vmap(fn) for name, fn in fns.items()}, X)
    assert np.max(np.abs(out["ref"])) > 1e-2  # a meaningful, nonzero test
    for m in METHODS:
        close(out[m], out["ref"], atol=PATH_ATOL, rtol=0)
        close(out[f"dims_{m}"], out["ref_dims"], atol=PATH_ATOL, rtol=0)


def test_dims_restriction_on_mlp():
    d = 4
    params = init_tanh_mlp(d, seed=3)
    f = lambda y: tanh_mlp(params, y)  # noqa: E731
    x = random_point(d, seed=5)
    fns = dict(
        H=jax.hessian(f),  # plain JAX references
        g=jax.grad(f),
        grad31=grad(f, dims=(3, 1)),
        grad_last=grad(f, dims=(-1,)),
        hess203=hessian(f, dims=(2, 0, 3)),
        hess=hessian(f),
        lap_all=laplacian(f, dims=(0, 1, 2, 3)),
        lap_list=laplacian(f, dims=[-1, 0]),
        lap_array=laplacian(f, dims=np.array([1, 2])),
        utt=time_derivative(f, order=2),
        div=divergence(jax.grad(f)),
    )
    out = jit_all(fns, x)
    H, g = np.asarray(out["H"]), np.asarray(out["g"])
    close(out["grad31"], g[[3, 1]], atol=PATH_ATOL, rtol=0)
    close(out["grad_last"], g[[3]], atol=PATH_ATOL, rtol=0)
    close(out["hess203"], H[np.ix_([2, 0, 3], [2, 0, 3])], atol=PATH_ATOL, rtol=0)
    close(out["hess"], H, atol=PATH_ATOL, rtol=0)
    close(out["lap_all"], np.trace(H), atol=PATH_ATOL, rtol=0)
    close(out["lap_list"], H[3, 3] + H[0, 0], atol=PATH_ATOL, rtol=0)
    close(out["lap_array"], H[1, 1] + H[2, 2], atol=PATH_ATOL, rtol=0)
    close(out["utt"], H[3, 3], atol=PATH_ATOL, rtol=0)
    close(out["div"], np.trace(H), atol=PATH_ATOL, rtol=0)


def test_vector_output_mlp_paths_agree():
    d = 3
    params = init_tanh_mlp(d, out=2, seed=11)
    f = lambda y: tanh_mlp(params, y)  # noqa: E731
    out = jit_all({"ref": lambda x: ref_laplacian(f, x)} | {m: laplacian(f, method=m) for m in METHODS},
                  random_point(d, seed=2))
    assert out["ref"].shape == (2,)
    for m in METHODS:
        close(out[m], out["ref"], atol=PATH_ATOL, rtol=0)


# ---------------------------------------------------------------------------------------------------------------
# Transformations: jit, vmap, parameter derivatives
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_jit_and_vmap_over_points():
    d = 3
    params = init_tanh_mlp(d, seed=4)
    X = jnp.asarray(np.random.default_rng(2).uniform(-1, 1, (6, d)))

    @jax.jit
    def batch_ops(params, X):
        u = lambda y: tanh_mlp(params, y)  # noqa: E731
        return (
            jax.vmap(laplacian(u))(X),
            jax.vmap(grad(u, dims=(0, 1)))(X),
            jax.vmap(time_derivative(u))(X),
            jax.vmap(biharmonic(u, dims=(0, 1)))(X),
        )

    @jax.jit
    def references(params, X):  # plain JAX
        u = lambda y: tanh_mlp(params, y)  # noqa: E731
        lap_xy = lambda y: ref_laplacian(u, y, (0, 1))  # noqa: E731
        return (
            jax.vmap(lambda y: ref_laplacian(u, y))(X),
            jax.vmap(jax.grad(u))(X),
            jax.vmap(lambda y: ref_laplacian(lap_xy, y, (0, 1)))(X),
        )

    lap, g, ut, bih = batch_ops(params, X)
    assert lap.shape == (6,) and g.shape == (6, 2) and ut.shape == (6,) and bih.shape == (6,)
    ref_lap, ref_grad, ref_bih = references(params, X)
    close(lap, ref_lap, atol=PATH_ATOL, rtol=0)
    close(g, ref_grad[:, :2], atol=PATH_ATOL, rtol=0)
    close(ut, ref_grad[:, 2], atol=PATH_ATOL, rtol=0)
    close(bih, ref_bih, atol=1e-10, rtol=0)  # fourth derivatives of an O(1) net are O(10): 1e-10 abs
    # The jitted point function, called point by point, gives the vmapped values.
    lap_point = jax.jit(laplacian(lambda y: tanh_mlp(params, y)))
    close(jnp.stack([lap_point(x) for x in X[:2]]), lap[:2], atol=PATH_ATOL, rtol=0)


def _loss(method, params, X):
    u = lambda y: tanh_mlp(params, y)  # noqa: E731
    r = jax.vmap(laplacian(u, method=method))(X) - jnp.sin(X[:, 0])
    return 0.5 * jnp.mean(r**2)


@pytest.mark.slow
def test_parameter_gradient_matches_across_methods_and_finite_differences():
    d = 3
    params = init_tanh_mlp(d, width=8, seed=6)
    X = jnp.asarray(np.random.default_rng(3).uniform(-1, 1, (5, d)))
    # "auto" is one of the listed paths (test_auto_method_is_a_listed_path); it is checked by finite differences.
    paths = [m for m in METHODS if m != "auto"]
    grads = jax.jit(lambda p: {m: jax.grad(_loss, argnums=1)(m, p, X) for m in paths})(params)
    ref = grads["hessian"]
    for m, g in grads.items():
        for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(ref)):
            # gradients are O(0.1-1) sums of exact AD terms: agreement to 1e-10 abs is rounding level
            close(a, b, atol=1e-10, rtol=0)
    # Central finite difference along a random direction v: (L(p + h v) - L(p - h v)) / (2h) = <grad L, v> + O(h^2).
    rng = np.random.default_rng(4)
    v = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape)), params)
    h = 1e-5
    shift = lambda s: jax.tree.map(lambda p, q: p + s * q, params, v)  # noqa: E731
    loss = jax.jit(lambda p: _loss("auto", p, X))
    fd = (loss(shift(h)) - loss(shift(-h))) / (2 * h)
    exact = sum(jnp.vdot(a, b) for a, b in zip(jax.tree.leaves(grads[auto_method(d)]), jax.tree.leaves(v)))
    # O(h^2) truncation ~ 1e-10 * third derivative plus roundoff ~ 1e-16 / h ~ 1e-11: 1e-7 relative is safe.
    np.testing.assert_allclose(float(fd), float(exact), rtol=1e-7)


def test_forward_mode_in_parameters_matches_reverse_mode():
    # Gauss-Newton and NTK code differentiate residuals with jvp (forward) and vjp (reverse); both must agree.
    d = 2
    params = init_tanh_mlp(d, width=8, seed=7)
    X = jnp.asarray(np.random.default_rng(5).uniform(-1, 1, (4, d)))

    def residual(p, method="auto"):
        return jax.vmap(laplacian(lambda y: tanh_mlp(p, y), method=method))(X)

    rng = np.random.default_rng(6)
    v = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape)), params)

    @jax.jit
    def both(params, v):
        _, jv = jax.jvp(residual, (params,), (v,))
        J = jax.jacrev(residual)(params)  # leaves: (4,) + leaf shape
        jv_hessian = jax.jvp(lambda p: residual(p, "hessian"), (params,), (v,))[1]
        jv_rev = sum(jnp.tensordot(j, w, axes=w.ndim) for j, w in zip(jax.tree.leaves(J), jax.tree.leaves(v)))
        return jv, jv_rev, jv_hessian

    jv, jv_rev, jv_hessian = both(params, v)
    assert np.max(np.abs(jv)) > 1e-2
    close(jv, jv_rev, atol=1e-12, rtol=0)  # exact AD in two orders on O(1) numbers: rounding level
    close(jv, jv_hessian, atol=1e-12, rtol=0)  # same directional derivative through an independent path


# ---------------------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------------------


def test_auto_method_is_a_listed_path():
    for k in (1, 2, 10, 100):
        assert auto_method(k) in LAPLACIAN_METHODS and auto_method(k) != "auto"


def test_build_time_errors():
    f = lambda x: jnp.sum(x**2)  # noqa: E731
    with pytest.raises(ValueError, match=r"method must be one of .*'forward'.*got 'fast'"):
        laplacian(f, method="fast")
    with pytest.raises(ValueError, match="method must be one of"):
        biharmonic(f, method="exact")
    with pytest.raises(ValueError, match=r"order must be an integer >= 1, got 0"):
        partial(f, 0, order=0)
    with pytest.raises(ValueError, match=r"order must be an integer >= 1, got -2"):
        time_derivative(f, order=-2)
    with pytest.raises(ValueError, match=r"order must be an integer, got 1.5"):
        partial(f, 0, order=1.5)
    with pytest.raises(ValueError, match="order must be an integer, got the bool"):
        partial(f, 0, order=True)
    with pytest.raises(ValueError, match=r"i must be an integer, got 'x'"):
        partial(f, "x")
    with pytest.raises(ValueError, match="dims must not repeat a coordinate"):
        laplacian(f, dims=(0, 0))
    with pytest.raises(ValueError, match="dims must be None or a non-empty tuple.*empty"):
        grad(f, dims=())
    with pytest.raises(ValueError, match=r"dims must be None or a non-empty tuple .*got 1 of type int"):
        hessian(f, dims=1)
    with pytest.raises(ValueError, match="dims entry must be an integer"):
        divergence(jax.grad(f), dims=(0.5,))
    with pytest.raises(ValueError, match="f must be a callable"):
        laplacian(3.0)
    with pytest.raises(ValueError, match="F must be a callable"):
        divergence(None)


def test_trace_time_errors():
    f = lambda x: jnp.sum(x**2)  # noqa: E731
    x = jnp.array([0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"dims entry 3 is out of range .* d=3"):
        laplacian(f, dims=(0, 3))(x)
    with pytest.raises(ValueError, match=r"dims entry -4 is out of range"):
        grad(f, dims=(-4,))(x)
    with pytest.raises(ValueError, match=r"resolves to \(2, 2\)"):
        laplacian(f, dims=(2, -1))(x)
    with pytest.raises(ValueError, match=r"i=5 is out of range .* d=3"):
        partial(f, 5)(x)
    with pytest.raises(ValueError, match=r"x must be a single point.*shape \(2, 3\)"):
        laplacian(f)(jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="x must have a floating dtype"):
        grad(f)(jnp.array([1, 2, 3]))
    with pytest.raises(ValueError, match=r"grad needs a scalar point function, but f\(x\) has shape \(3,\)"):
        grad(lambda y: y**2)(x)
    with pytest.raises(ValueError, match=r"hessian needs a scalar point function"):
        hessian(lambda y: y**2)(x)
    with pytest.raises(ValueError, match=r"divergence needs F\(x\) of shape \(len\(dims\),\) = \(2,\)"):
        divergence(lambda y: y**2, dims=(0, 1))(x)


@pytest.mark.parametrize("method", ["forward", "jacfwd", "hessian", "hvp"])
def test_laplacian_of_constant_and_biharmonic_of_linear_are_zero(method):
    """Functions that do not depend on x (folx returns their plain value, not a Laplacian object) give exact zeros."""
    x = jnp.array([0.3, -0.7])
    assert float(laplacian(lambda y: jnp.zeros(()), method=method)(x)) == 0.0
    assert float(jax.jit(laplacian(lambda y: 2.5 + 0.0 * y[0], method=method))(x)) == 0.0
    assert float(biharmonic(lambda y: 3.0 * y[0] - y[1] + 1.0, method=method)(x)) == 0.0
