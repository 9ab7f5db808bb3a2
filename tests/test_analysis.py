"""Jacobian, NTK, Gauss-Newton, Hessian, spectra (eigh / Lanczos), spectral-bias diagnostics, trace-ratio weights."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import sciml_jax as sj
from sciml_jax import analysis as A
from sciml_jax.problems import Problem, Term

# ----------------------------------------------------------------------------------------------- fixtures


def _problem(terms, name="test"):
    return Problem(
        name=name,
        domain=sj.geometry.Interval(-1.0, 1.0),
        terms=terms,
        exact=None,
        default_points={"interior": 8},
        order=0,
        options={},
        description="test problem",
    )


@pytest.fixture(scope="module")
def pinn_setup():
    """1-D Poisson PINN, -u'' = π² sin(πx), u(0) = u(1) = 0, with a small MLP (P = 97). The second derivative is
    written with nested jax.grad (cheaper to compile than the zoo's forward Laplacian; the analysis is the same)."""

    def pde(u, x):
        d2u = jax.grad(lambda y: jax.grad(lambda z: u(jnp.reshape(z, (1,))))(y))(x[0])
        return -d2u - jnp.pi**2 * jnp.sin(jnp.pi * x[0])

    prob = Problem(
        name="poisson_grad",
        domain=sj.geometry.Interval(0.0, 1.0),
        terms={"pde": Term("interior", pde), "bc": Term("boundary", lambda u, x: u(x))},
        exact=lambda x: jnp.sin(jnp.pi * x[0]),
        default_points={"interior": 24, "boundary": 2},
        order=2,
        options={},
        description="",
    )
    params, apply = sj.nn.functional(sj.nn.MLP(1, 1, 8, 2, key=jax.random.PRNGKey(0)))
    batch = sj.sampling.sample(prob.domain, {"interior": 24, "boundary": 2}, "sobol", 0)
    res = sj.pinn.residual(prob, apply, {"bc": 10.0})
    assert abs(float(pde(prob.exact, jnp.array([0.3])))) < 1e-12  # the exact solution solves it
    return res, params, batch


@pytest.fixture(scope="module")
def broad_setup():
    """Regression with Fourier features: an NTK whose leading eigenvalues are spread over several decades (but not
    lost in round-off), so eigenvalue comparisons at 1e-8 relative are meaningful. P = 289, N = 64."""
    ff = sj.nn.FourierFeatures(1, 8, 1.0, key=jax.random.PRNGKey(3))
    params, apply = sj.nn.functional(sj.nn.MLP(1, 1, 16, 1, key=jax.random.PRNGKey(1), fourier_features=ff))
    prob = A.regression_1d(frequencies=(1, 3))
    batch = {"interior": jnp.linspace(-1, 1, 64, endpoint=False)[:, None]}
    return sj.pinn.residual(prob, apply), params, batch


def _reference_jacobian(res, params, batch):
    """Independent reference: jax.jacrev of the whole residual over the flattened parameters."""
    flat, unravel = ravel_pytree(params)
    return jax.jit(jax.jacrev(lambda th: res(unravel(th), batch)))(flat)




@pytest.fixture(scope="module")
def broad_K(broad_setup):
    return A.ntk(*broad_setup)


@pytest.fixture(scope="module")
def two_term_setup():
    """A cheap two-term problem (no derivatives, fast to compile) with a small MLP."""
    prob = Problem(
        name="two_terms",
        domain=sj.geometry.Interval(0.0, 1.0),
        terms={
            "pde": Term("interior", lambda u, x: u(x) - jnp.sin(3.0 * x[0])),
            "bc": Term("boundary", lambda u, x: 5.0 * u(x)),
        },
        exact=None,
        default_points={"interior": 16, "boundary": 2},
        order=0,
        options={},
        description="",
    )
    params, apply = sj.nn.functional(sj.nn.MLP(1, 1, 8, 2, key=jax.random.PRNGKey(4)))
    batch = {"interior": jnp.linspace(0, 1, 16)[:, None], "boundary": jnp.array([[0.0], [1.0]])}
    return sj.pinn.residual(prob, apply), params, batch


# ----------------------------------------------------------------------------------------------- Jacobian / NTK


def test_ntk_from_per_point_rev_fwd_and_matvec_agree(pinn_setup):
    res, params, batch = pinn_setup
    K_rev = A.ntk(res, params, batch, mode="rev").K  # vmapped per-point jax.jacrev
    K_fwd = A.ntk(res, params, batch, mode="fwd").K  # vmapped per-point jax.jacfwd
    # columns K e_j = J(Jᵀ e_j): jvp∘vjp of the whole residual, J never formed
    K_mv = jax.jit(lambda p: jax.vmap(A.ntk_matvec(res, p, batch))(jnp.eye(26)))(params).T
    scale = float(jnp.max(jnp.abs(K_mv)))
    # three float64 computations of the same matrix by different AD paths: agreement to round-off; the issue
    # asks for 1e-10 (relative to max |K|)
    np.testing.assert_allclose(K_rev, K_mv, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(K_fwd, K_mv, rtol=0, atol=1e-10 * scale)
    assert K_rev.shape == (26, 26) and K_rev.dtype == jnp.float64


def test_jacobian_rows_follow_term_rows_and_weights(two_term_setup):
    res, params, batch = two_term_setup
    J = A.jacobian(res, params, batch)
    rows = A.term_rows(res, params, batch)
    assert rows == {"pde": slice(0, 16), "bc": slice(16, 18)}
    assert J.shape == (18, sj.nn.num_params(params)) and J.dtype == jnp.float64
    # weights override at call time: row block k scales with sqrt(γ_k)
    J2 = A.jacobian(res, params, batch, weights={"pde": 4.0, "bc": 1.0})
    np.testing.assert_allclose(J2[rows["pde"]], 2.0 * J[rows["pde"]], rtol=1e-14)  # exact factor 2: round-off only
    np.testing.assert_array_equal(J2[rows["bc"]], J[rows["bc"]])


def test_chunked_equals_unchunked(two_term_setup):
    res, params, batch = two_term_setup
    # chunk 5: 16 interior points = 3 chunks + a remainder of 1, and 2 boundary points in one short chunk
    for mode, chunk in (("rev", 5), ("fwd", 1)):
        J = A.jacobian(res, params, batch, mode=mode)
        Jc = A.jacobian(res, params, batch, mode=mode, chunk_size=chunk)
        # same per-point program; only XLA's vectorisation of a different batch size differs (round-off)
        np.testing.assert_allclose(Jc, J, rtol=0, atol=1e-14 * float(jnp.max(jnp.abs(J))))


def test_generic_residual_path_and_chunking(two_term_setup):
    res, params, batch = two_term_setup

    def plain(p, b):  # not a pinn.Residual: the generic (whole-residual vjp/jvp) path
        return res(p, b)

    J_ref = _reference_jacobian(res, params, batch)
    for mode, chunk in (("rev", 4), ("fwd", None)):  # fwd unchunked = jax.jacfwd of the whole residual
        J = A.jacobian(plain, params, batch, mode=mode, chunk_size=chunk)
        np.testing.assert_allclose(J, J_ref, rtol=0, atol=1e-13 * float(jnp.max(jnp.abs(J_ref))))
    assert A.term_rows(plain, params, batch) == {"residual": slice(0, 18)}
    diag = A.ntk_diagonal(plain, params, batch, chunk_size=5)["residual"]
    np.testing.assert_allclose(diag, jnp.sum(J_ref**2, axis=1), rtol=1e-12)
    d2 = A.ntk_diagonal(res, params, batch)  # structured: per term, without forming J
    np.testing.assert_allclose(jnp.concatenate([d2["pde"], d2["bc"]]), jnp.sum(J_ref**2, axis=1), rtol=1e-12)
    with pytest.raises(ValueError, match="weights"):
        A.jacobian(plain, params, batch, weights={"pde": 1.0})


def test_ntk_blocks(two_term_setup):
    K = A.ntk(*two_term_setup)
    J = _reference_jacobian(*two_term_setup)
    assert K.term_names == ("pde", "bc") and K.size == 18 and K.num_params == J.shape[1]
    np.testing.assert_allclose(K.block("pde", "bc"), J[:16] @ J[16:].T, rtol=1e-12, atol=1e-13)
    assert set(K.blocks) == {("pde", "pde"), ("pde", "bc"), ("bc", "pde"), ("bc", "bc")}
    np.testing.assert_array_equal(K.block("bc"), K.blocks[("bc", "bc")])
    np.testing.assert_array_equal(K.K, K.K.T)  # symmetrised exactly
    with pytest.raises(ValueError, match="unknown term 'nope'"):
        K.block("nope")


def test_nonzero_eigenvalues_of_ntk_and_gauss_newton_agree(broad_setup, broad_K):
    res, params, batch = broad_setup
    K = broad_K
    G = A.gauss_newton(res, params, batch)
    ek = np.linalg.eigvalsh(np.asarray(K.K))[::-1]
    eg = np.linalg.eigvalsh(np.asarray(G))[::-1]
    P = K.num_params
    assert G.shape == (P, P) and P == 289 and K.size == 64
    # eigh's error is ~eps·λ_max absolute, so 1e-8 relative is attainable for λ_i >= 1e-6 λ_max (here 20+ of them)
    keep = ek > 1e-6 * ek[0]
    assert keep.sum() >= 20
    np.testing.assert_allclose(eg[: keep.sum()], ek[keep], rtol=1e-8)
    # the rest of G's spectrum is zero to round-off (rank <= N = 64 < P)
    assert np.max(np.abs(eg[64:])) < 1e-12 * ek[0]
    # matrix-free G v = Jᵀ(J v)
    v = jax.random.normal(jax.random.PRNGKey(2), (P,))
    np.testing.assert_allclose(A.gn_matvec(res, params, batch)(v), G @ v, rtol=0, atol=1e-12 * float(jnp.linalg.norm(G @ v)))


def test_linear_model_ntk_is_phi_phi_transpose():
    """u(x) = Σ_j θ_j φ_j(x): J = sqrt(γ/N) Φ exactly, so K = (γ/N) Φ Φᵀ."""
    freqs = jnp.arange(1.0, 7.0)

    def features(x):  # (d,) -> (12,)
        return jnp.concatenate([jnp.cos(freqs * x[0]), jnp.sin(freqs * x[0])])

    def apply(theta, x):
        return features(x) @ theta["w"]

    prob = _problem({"data": Term("interior", lambda u, x: u(x) - jnp.cos(3 * x[0]))})
    res = sj.pinn.residual(prob, apply, {"data": 3.0})
    x = jnp.linspace(-1, 1, 40)[:, None]
    params = {"w": jnp.zeros(12)}
    K = A.ntk(res, params, {"interior": x}).K
    phi = np.stack([np.asarray(features(xi)) for xi in x])
    expected = (3.0 / 40) * phi @ phi.T
    np.testing.assert_allclose(K, expected, rtol=1e-14, atol=1e-15)  # exact up to float64 round-off of Φ Φᵀ


def test_equinox_and_flax_nnx_models():
    from flax import nnx

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.l1 = nnx.Linear(1, 6, rngs=rngs, param_dtype=jnp.float64)
            self.l2 = nnx.Linear(6, 1, rngs=rngs, param_dtype=jnp.float64)

        def __call__(self, x):
            return self.l2(jnp.tanh(self.l1(x)))[0]

    prob = A.regression_1d(frequencies=(1,))
    batch = {"interior": jnp.linspace(-1, 1, 12)[:, None]}
    models = {
        "nnx": sj.nn.from_nnx(Net(nnx.Rngs(0))),
        "eqx": sj.nn.functional(sj.nn.MLP(1, 1, 6, 1, key=jax.random.PRNGKey(0))),
    }
    for name, (params, apply) in models.items():
        res = sj.pinn.residual(prob, apply)
        K = A.ntk(res, params, batch)
        assert K.num_params == 19, name  # 1*6 + 6 + 6*1 + 1
        if name == "nnx":  # (the equinox path is checked against references throughout this file)
            J_ref = _reference_jacobian(res, params, batch)
            np.testing.assert_allclose(K.K, J_ref @ J_ref.T, rtol=0, atol=1e-12 * float(jnp.max(jnp.abs(K.K))))
        s = A.spectrum(K)
        assert 1 <= int(s.numerical_rank) <= 12 and s.eigenvalues.dtype == jnp.float64


def test_jit_compatible(two_term_setup):
    res, params, batch = two_term_setup
    s = jax.jit(lambda p, b: A.spectrum(A.ntk(res, p, b, chunk_size=8)))(params, batch)
    K = A.ntk(res, params, batch)
    np.testing.assert_allclose(s.eigenvalues, np.linalg.eigvalsh(np.asarray(K.K))[::-1], rtol=0, atol=1e-13)
    assert s.eigenvalues.shape == (18,) and int(s.numerical_rank) >= 3
    # (Lanczos on ntk_matvec inside jit: test_lanczos_top10_matches_eigh)


def test_hessian_hvp_and_gauss_newton():
    # a model linear in θ: the loss is quadratic and H = G = JᵀJ exactly
    def apply(theta, x):
        return jnp.array([1.0, x[0], x[0] ** 2]) @ theta

    prob = _problem({"data": Term("interior", lambda u, x: u(x) - jnp.exp(x[0]))})
    res = sj.pinn.residual(prob, apply)
    batch = {"interior": jnp.linspace(-1, 1, 9)[:, None]}
    theta = jnp.array([0.3, -0.2, 0.5])
    H = A.hessian(lambda p: res.loss(p, batch), theta)
    G = A.gauss_newton(res, theta, batch)
    np.testing.assert_allclose(H, G, rtol=1e-13, atol=1e-15)  # identical matrices up to round-off
    # a nonlinear model: Hv from hvp equals the dense Hessian, and the dense Hessian equals jax.hessian
    params, apply2 = sj.nn.functional(sj.nn.MLP(1, 1, 4, 1, key=jax.random.PRNGKey(5)))
    res2 = sj.pinn.residual(prob, apply2)
    loss = lambda p: res2.loss(p, batch)  # noqa: E731
    H2 = A.hessian(loss, params)
    flat, unravel = ravel_pytree(params)
    ref = jax.jit(jax.jacrev(jax.grad(lambda th: loss(unravel(th)))))(flat)  # reverse-over-reverse: another path
    np.testing.assert_allclose(H2, 0.5 * (ref + ref.T), rtol=1e-12, atol=1e-14)
    v = jax.random.normal(jax.random.PRNGKey(0), flat.shape)
    np.testing.assert_allclose(A.hvp(loss, params)(v), H2 @ v, rtol=1e-11, atol=1e-13)
    with pytest.raises(ValueError, match="loss_fn"):
        A.hessian(3.0, params)


# ----------------------------------------------------------------------------------------------- spectrum / Lanczos


def test_lanczos_top10_matches_eigh(broad_setup, broad_K):
    res, params, batch = broad_setup
    K = broad_K
    dense = A.spectrum(K, eigenvectors=True)
    # matrix-free: K is never formed; built and run inside one jit
    lz = jax.jit(
        lambda p: A.spectrum(A.ntk_matvec(res, p, batch), k=10, size=64, eigenvectors=True, key=jax.random.PRNGKey(7))
    )(params)
    assert lz.method == "lanczos" and lz.eigenvalues.shape == (10,)
    # well-separated leading eigenvalues of a float64 operator: Lanczos with full reorthogonalisation converges
    # to round-off; the issue asks for 1e-8 relative
    np.testing.assert_allclose(lz.eigenvalues, dense.eigenvalues[:10], rtol=1e-8)
    assert np.all(np.asarray(lz.residual_norms) < 1e-8 * float(dense.eigenvalues[0]))
    overlap = np.abs(np.sum(np.asarray(lz.eigenvectors[:, :5]) * np.asarray(dense.eigenvectors[:, :5]), axis=0))
    np.testing.assert_allclose(overlap, 1.0, atol=1e-6)  # eigenvectors agree up to sign


def test_lanczos_on_rank_deficient_and_bottom_end():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((60, 60)))
    # rank 5 PSD matrix: Lanczos must restart after 5 steps (breakdown) and keep its basis orthonormal
    lam = np.zeros(60)
    lam[:5] = [9.0, 5.0, 3.0, 2.0, 1.0]
    A5 = jnp.asarray((Q * lam) @ Q.T)
    s = A.spectrum(A5, k=7, method="lanczos", num_iterations=20)
    np.testing.assert_allclose(s.eigenvalues[:5], lam[:5], rtol=1e-12)  # exact arithmetic: invariant subspace
    assert np.all(np.abs(np.asarray(s.eigenvalues[5:])) < 1e-12)
    assert int(s.numerical_rank) == 5  # known: a computed top eigenvalue fell below τ
    # well-separated bottom eigenvalues (a spread spectrum 1..60): bottom-k from the same Krylov space
    lam2 = np.arange(1.0, 61.0) ** 1.5
    A2 = jnp.asarray((Q * lam2) @ Q.T)
    sb = A.spectrum(A2, k=3, which="both", method="lanczos", num_iterations=60)
    np.testing.assert_allclose(sb.eigenvalues, np.r_[lam2[::-1][:3], lam2[:3][::-1]], rtol=1e-10)
    np.testing.assert_allclose(sb.condition_number, lam2[-1] / lam2[0], rtol=1e-10)  # nonsingular: cond known
    assert int(sb.numerical_rank) == 60


def test_spectrum_measures_against_numpy():
    rng = np.random.default_rng(1)
    B = rng.standard_normal((30, 8))
    M = B @ B.T  # rank 8
    s = A.spectrum(jnp.asarray(M))
    assert s.which == "all" and s.eigenvalues.shape == (30,)
    assert np.all(np.diff(np.asarray(s.eigenvalues)) <= 0)  # descending
    assert int(s.numerical_rank) == np.linalg.matrix_rank(M)  # same default rule as numpy
    ev = np.linalg.eigvalsh(M)[::-1]
    np.testing.assert_allclose(s.condition_number, ev[0] / ev[7], rtol=1e-10)  # λ_max / λ_min⁺ over the rank
    p = ev[:8] / ev[:8].sum()
    # effective rank exp(H(p)); the 22 round-off eigenvalues contribute < 1e-10 to the entropy
    np.testing.assert_allclose(s.effective_rank, np.exp(-np.sum(p * np.log(p))), rtol=1e-9)
    np.testing.assert_allclose(A.spectrum(jnp.eye(7)).effective_rank, 7.0, rtol=1e-14)
    spd = M + np.eye(30)
    np.testing.assert_allclose(A.spectrum(jnp.asarray(spd)).condition_number, np.linalg.cond(spd), rtol=1e-10)
    top = A.spectrum(jnp.asarray(M), k=3)
    assert np.isnan(float(top.condition_number)) and int(top.numerical_rank) == -1  # unknown from a top-3 slice
    assert np.isnan(float(top.effective_rank))
    # explicit rank_rtol: everything below 0.5 λ_max is "zero"
    assert int(A.spectrum(jnp.asarray(M), rank_rtol=0.5).numerical_rank) == int(np.sum(ev > 0.5 * ev[0]))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"which": "middle"}, "which"),
        ({"method": "arpack"}, "method"),
        ({"k": 0}, "k: expected an integer in"),
        ({"k": 2, "num_iterations": 1, "method": "lanczos"}, "num_iterations"),
    ],
)
def test_spectrum_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        A.spectrum(jnp.eye(4), **kwargs)


def test_spectrum_validation_matvec():
    with pytest.raises(ValueError, match="size"):
        A.spectrum(lambda v: v, k=2)
    with pytest.raises(ValueError, match="k: a matvec needs k"):
        A.spectrum(lambda v: v, size=4)
    with pytest.raises(ValueError, match="eigh"):
        A.spectrum(lambda v: v, size=4, k=2, method="eigh")
    with pytest.raises(ValueError, match="square"):
        A.spectrum(jnp.ones((3, 4)))
    with pytest.raises(ValueError, match="mode"):
        A.jacobian(lambda p, b: p, jnp.ones(2), {}, mode="both")
    with pytest.raises(ValueError, match="chunk_size"):
        A.jacobian(lambda p, b: p, jnp.ones(2), {}, chunk_size=0)


# ----------------------------------------------------------------------------------------------- spectral bias


def _linear_regression():
    freqs = jnp.arange(1.0, 6.0)

    def apply(theta, x):
        return jnp.concatenate([jnp.cos(jnp.pi * freqs * x[0]), jnp.sin(jnp.pi * freqs * x[0])]) @ theta

    prob = _problem({"data": Term("interior", lambda u, x: u(x) - jnp.sin(3 * jnp.pi * x[0]) - x[0] ** 2)})
    batch = {"interior": jnp.linspace(-1, 1, 32, endpoint=False)[:, None]}
    return sj.pinn.residual(prob, apply), jnp.zeros(10), batch


def test_gd_decay_matches_linearised_prediction_for_linear_model():
    """r(θ) is affine in θ, so r_(t+1) = (I - ηK) r_t exactly and c_i(t) = (1 - ηλ_i)^t c_i(0) to round-off."""
    res, theta0, batch = _linear_regression()
    rec = A.SpectralRecorder(res, theta0, batch)
    eta = 0.9 / float(rec.eigenvalues[0])
    out = sj.train.fit(res, theta0, batch, optax.sgd(eta), 60, eval_every=5, callbacks=[rec])
    assert out.status == "completed" and rec.steps == list(range(0, 61, 5))
    obs, pred = rec.coefficients, rec.predicted(eta)
    scale = float(np.linalg.norm(obs[0]))
    # only round-off of 60 float64 steps separates them
    np.testing.assert_allclose(obs, pred, rtol=0, atol=1e-12 * scale)
    assert np.max(rec.deviation(eta)[:10]) < 1e-9  # relative to each mode's own |c_i(0)|, leading modes
    # mode_projections / linearized_gd are the same computation as the recorder's
    np.testing.assert_allclose(A.mode_projections(rec.eigenvectors, res(theta0, batch)), obs[0], rtol=1e-12)
    pred7 = A.linearized_gd(rec.eigenvalues, obs[0], eta, [0, 7])[1]
    np.testing.assert_allclose(pred7, (1 - eta * rec.eigenvalues) ** 7 * obs[0], rtol=1e-13)  # same formula


def test_fourier_projections_recover_amplitudes():
    x = -1.0 + 2.0 * jnp.arange(64) / 64  # uniform periodic grid of [-1, 1)
    t = (x + 1.0) / 2.0
    e = 0.7 * jnp.sin(2 * jnp.pi * 3 * t + 0.4) + 0.2 * jnp.cos(2 * jnp.pi * 5 * t) + 0.1
    amps = A.fourier_projections(e, x, [0, 1, 3, 5], interval=(-1.0, 1.0))
    np.testing.assert_allclose(amps, [0.1, 0.0, 0.7, 0.2], atol=1e-14)  # exact DFT coefficients, round-off only
    batched = A.fourier_projections(jnp.stack([e, 2 * e]), x, [3], interval=(-1.0, 1.0))
    np.testing.assert_allclose(batched[:, 0], [0.7, 1.4], rtol=1e-13)


def test_recorders_in_fit(broad_setup):
    res, params, batch = broad_setup
    cond = A.ConditionRecorder(res, params, batch, every=20)
    prob = res.problem
    grid = jnp.linspace(-1, 1, 32, endpoint=False)[:, None]
    err = lambda p: jax.vmap(lambda y: res.apply(p, y))(grid) - jax.vmap(prob.exact)(grid)  # noqa: E731
    four = {"error_fn": err, "x": grid, "frequencies": [1, 3], "interval": (-1.0, 1.0)}
    rec = A.SpectralRecorder(res, params, batch, k=4, fourier=four)
    out = sj.train.fit(res, params, batch, optax.adam(1e-3), 40, eval_every=10, callbacks=[cond, rec])
    assert cond.steps == [0, 20, 40] and len(cond.condition_number) == 3
    # two code paths (the recorders' jitted NTK + eigh) at θ_0: same λ_max, and λ_max changed during training
    np.testing.assert_allclose(cond.lambda_max[0], rec.eigenvalues[0], rtol=1e-12)
    assert cond.lambda_max[-1] != cond.lambda_max[0] and out.status == "completed"
    assert rec.coefficients.shape == (5, 4) and rec.fourier_amplitudes.shape == (5, 2)
    # independent reference: numpy's FFT of the error at θ_0 on the periodic grid, amplitude 2|ê_f|/M
    fft = np.fft.rfft(np.asarray(err(params)))
    np.testing.assert_allclose(rec.fourier_amplitudes[0], 2 * np.abs(fft[[1, 3]]) / 32, rtol=1e-12)
    np.testing.assert_allclose(rec.coefficients[-1], np.asarray(res(out.params, batch) @ rec.eigenvectors), rtol=1e-12)


# ----------------------------------------------------------------------------------------------- trace weights


def test_trace_ratio_weights_known_case():
    """Two terms of a linear model: tr(K_kk) at unit weights is mean_i ‖∂r_k,i/∂θ‖², known in closed form."""

    def apply(theta, x):
        return theta[0] + theta[1] * x[0]

    prob = Problem(
        name="two_terms",
        domain=sj.geometry.Interval(0.0, 1.0),
        terms={
            "pde": Term("interior", lambda u, x: 3.0 * u(x)),  # rows 3·(1, x_i)
            "bc": Term("boundary", lambda u, x: u(x)),  # rows (1, x_j)
        },
        exact=None,
        default_points={"interior": 4, "boundary": 2},
        order=0,
        options={},
        description="",
    )
    res = sj.pinn.residual(prob, apply, {"bc": 100.0})  # the residual's own weights must not matter
    xi = jnp.array([[0.0], [0.25], [0.5], [1.0]])
    xb = jnp.array([[0.0], [1.0]])
    batch = {"interior": xi, "boundary": xb}
    w = A.ntk_trace_weights(res, jnp.zeros(2), batch, chunk_size=3)
    tr_pde = 9.0 * np.mean(1.0 + np.asarray(xi[:, 0]) ** 2)  # = 9 · (1 + 0.328125)
    tr_bc = np.mean(1.0 + np.asarray(xb[:, 0]) ** 2)  # = 1.5
    total = tr_pde + tr_bc
    np.testing.assert_allclose([w["pde"], w["bc"]], [total / tr_pde, total / tr_bc], rtol=1e-14)
    # and the same from the dense NTK blocks at unit weights
    K = A.ntk(res, jnp.zeros(2), batch, weights={"pde": 1.0, "bc": 1.0})
    tr = K.block_traces()
    np.testing.assert_allclose(w["bc"], K.trace / tr["bc"], rtol=1e-14)
    # applying the weights equalises the traces of the weighted blocks
    Kw = A.ntk(res, jnp.zeros(2), batch, weights=w).block_traces()
    np.testing.assert_allclose(Kw["pde"], Kw["bc"], rtol=1e-14)


def test_ntk_weighting_through_fit(two_term_setup):
    res, params, batch = two_term_setup
    wres, wbatch, cb = A.ntk_weighting(res, params, batch, every=10, momentum=0.5)
    w0 = A.ntk_trace_weights(res, params, batch)
    assert float(wbatch["loss_weights"]["bc"]) == pytest.approx(float(w0["bc"]), rel=1e-14)
    np.testing.assert_allclose(wres(params, wbatch), res(params, batch, w0), rtol=1e-14)
    out = sj.train.fit(wres, params, wbatch, optax.adam(1e-3), 30, eval_every=10, callbacks=[cb])
    assert out.status == "completed"
    assert cb.steps == [0, 10, 20, 30] and len(cb.history) == 4
    # the batch fit returns carries the last update: momentum 0.5 of the old and the new trace-ratio weights
    assert float(out.batch["loss_weights"]["pde"]) == pytest.approx(cb.history[-1]["pde"], rel=1e-14)
    with pytest.raises(ValueError, match="every"):
        A.NTKWeightCallback(wres, every=0)
    with pytest.raises(ValueError, match="loss weights"):
        wres(params, batch)  # the plain batch has no weights entry


def test_regression_problem():
    prob = sj.problems.get("regression_1d", frequencies=[1, 2], amplitudes=[1.0, 0.5], lo=0.0, hi=2.0)
    x = jnp.array([0.25])
    np.testing.assert_allclose(prob.exact(x), np.sin(np.pi * 0.25) + 0.5 * np.sin(2 * np.pi * 0.25), rtol=1e-15)
    assert prob.residual_at("data", prob.exact, x) == 0.0
    with pytest.raises(ValueError, match="amplitudes"):
        A.regression_1d(frequencies=[1, 2], amplitudes=[1.0])
    with pytest.raises(ValueError, match="lo must be < hi"):
        A.regression_1d(lo=1.0, hi=0.0)


def test_eager_analysis_calls_are_compiled_once_per_structure():
    """ntk / jacobian / gauss_newton called again with the same residual structure and shapes trace nothing: new
    parameter values, points and loss weights are data (the analysis programs are cached like fit's step)."""
    traced = []

    def pde(u, x):
        traced.append(1)
        return -sj.operators.laplacian(u)(x) - jnp.pi**2 * jnp.sin(jnp.pi * x[0])

    prob = _problem({"pde": Term("interior", pde), "bc": Term("interior", lambda u, x: u(x))}, name="cache_probe")
    params, apply = sj.nn.functional(sj.nn.MLP(1, 1, 6, 1, key=jax.random.PRNGKey(0)))
    batch = {"interior": jnp.linspace(-1, 1, 8)[:, None]}
    first = A.ntk(sj.pinn.residual(prob, apply), params, batch)
    A.jacobian(sj.pinn.residual(prob, apply), params, batch)
    A.gauss_newton(sj.pinn.residual(prob, apply), params, batch)
    seen = len(traced)
    params2 = jax.tree.map(lambda a: 1.5 * a, params)
    batch2 = {"interior": jnp.linspace(-0.5, 0.9, 8)[:, None]}
    res2 = sj.pinn.residual(prob, apply, {"bc": 3.0})
    second = A.ntk(res2, params2, batch2)
    A.jacobian(res2, params2, batch2)
    A.gauss_newton(res2, params2, batch2)
    assert len(traced) == seen  # nothing traced again
    assert not np.allclose(np.asarray(first.K), np.asarray(second.K))  # the new values were used
