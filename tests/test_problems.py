"""Tests of the PDE zoo: exact solutions satisfy their own terms, closed forms match autodiff, registry, validation."""

import inspect
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml_jax import geometry, problems

ALL_NAMES = {
    "poisson_1d",
    "poisson_nd",
    "helmholtz_2d",
    "biharmonic_1d",
    "biharmonic_2d",
    "sharp_gradient_2d",
    "heat_1d",
    "convection_1d",
    "reaction_1d",
    "wave_1d",
    "burgers_1d",
}

# Every problem with its defaults, plus variants that exercise the options (higher frequencies, other dimensions,
# stiffer parameters).
CASES = [(name, {}) for name in sorted(ALL_NAMES)] + [
    ("poisson_1d", {"frequencies": [1, 2, 8], "amplitudes": [1.0, 0.5, 0.1]}),
    ("poisson_nd", {"dim": 3, "k": 2}),
    ("poisson_nd", {"dim": 5}),
    ("helmholtz_2d", {"a1": 2.5, "a2": 3, "k": 4.0}),
    ("sharp_gradient_2d", {"width": 0.005, "center": (1.5, 0.25), "radius": 0.92}),
    ("heat_1d", {"alpha": 0.5, "k": 3}),
    ("convection_1d", {"beta": 30.0}),
    ("reaction_1d", {"rho": 5.0}),
    ("burgers_1d", {"nu": 0.003 / math.pi}),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in o.items()) or 'default'}" for n, o in CASES]
# The forcing check needs the defaults and the variants that change a source term.
FORCED = [(c, i) for c, i in zip(CASES, IDS) if not c[1] or c[0] in ("poisson_1d", "poisson_nd", "helmholtz_2d")]

N_CHECK = 256  # points per point set in the residual checks


def _points(problem, where, n=N_CHECK, seed=3):
    return jnp.asarray(problem.domain.sample(where, n, "uniform", seed=seed))


def _term_values(problem, name, u, x):
    return np.asarray(jax.jit(jax.vmap(lambda y: problem.residual_at(name, u, y)))(x))


def _perturbation(x):
    # Not a polynomial, depends on every coordinate, not periodic: changes every residual, derivative terms
    # included (a quadratic would leave u'''' unchanged).
    return 0.01 * jnp.exp(0.5 * jnp.sum(x) + 0.1 * x[0])


# ------------------------------------------------------------------------------------------- exact solutions


@pytest.mark.slow
@pytest.mark.parametrize("name,opts", CASES, ids=IDS)
def test_exact_solution_satisfies_every_term_and_a_wrong_one_does_not(name, opts):
    prob = problems.get(name, **opts)
    assert prob.exact is not None

    def wrong(x):
        return prob.exact(x) + _perturbation(x)

    points = {name_: _points(prob, term.points) for name_, term in prob.terms.items()}

    @jax.jit
    def all_terms(points):  # one compilation for every term of the problem
        return {
            k: jax.vmap(lambda y, k=k: (prob.residual_at(k, prob.exact, y), prob.residual_at(k, wrong, y)))(points[k])
            for k in prob.terms
        }

    for term_name, (r, r_wrong) in all_terms(points).items():
        r, r_wrong = np.asarray(r), np.asarray(r_wrong)
        assert r.shape[0] == N_CHECK and np.all(np.isfinite(r))
        # Closed-form forcing vs autodiff of a closed-form solution differ only by float64 rounding: measured
        # <= 2e-12 (the largest for the narrow wave front, where |f| ~ 8e3); 1e-8 leaves margin but catches any
        # error in a formula (an error in a coefficient shows up at O(1)).
        assert np.max(np.abs(r)) <= 1e-8, (name, term_name, np.max(np.abs(r)))
        # A perturbation of size 1e-2 with O(1) derivatives moves every term by >= ~2e-3 somewhere; 1e-3 is five
        # orders of magnitude above the pass threshold.
        assert np.max(np.abs(r_wrong)) > 1e-3, (name, term_name, np.max(np.abs(r_wrong)))


# Independent statements of each PDE operator, written with plain jax.grad / jax.hessian (not sciml_jax.operators).
def _lap(f):
    return lambda x: jnp.trace(jax.hessian(f)(x))


def _autodiff_pde(name, prob):
    u, o = prob.exact, prob.options
    g = jax.grad(u)
    H = jax.hessian(u)
    if name in ("poisson_1d", "poisson_nd", "sharp_gradient_2d"):
        return lambda x: -_lap(u)(x)
    if name == "helmholtz_2d":
        return lambda x: _lap(u)(x) + o["k"] ** 2 * u(x)
    if name in ("biharmonic_1d", "biharmonic_2d"):
        return _lap(_lap(u))
    if name == "heat_1d":
        return lambda x: g(x)[1] - o["alpha"] * H(x)[0, 0]
    if name == "convection_1d":
        return lambda x: g(x)[1] + o["beta"] * g(x)[0]
    if name == "reaction_1d":
        return lambda x: g(x)[1] - o["rho"] * u(x) * (1 - u(x))
    if name == "wave_1d":
        return lambda x: H(x)[1, 1] - o["c"] ** 2 * H(x)[0, 0]
    if name == "burgers_1d":
        return lambda x: g(x)[1] + u(x) * g(x)[0] - o["nu"] * H(x)[0, 0]
    raise AssertionError(name)


@pytest.mark.slow
@pytest.mark.parametrize("name,opts", [c for c, _ in FORCED], ids=[i for _, i in FORCED])
def test_forcing_closed_form_matches_autodiff(name, opts):
    prob = problems.get(name, **opts)
    x = _points(prob, "interior", 64, seed=11)
    lhs = np.asarray(jax.jit(jax.vmap(_autodiff_pde(name, prob)))(x))
    rhs = np.zeros_like(lhs) if prob.forcing is None else np.asarray(jax.jit(jax.vmap(prob.forcing))(x))
    scale = max(1.0, np.max(np.abs(rhs)))
    # Same rounding argument as above, relative to the size of f, which reaches ~8e3 (narrow wave front).
    assert np.max(np.abs(lhs - rhs)) <= 1e-10 * scale, (name, np.max(np.abs(lhs - rhs)), scale)
    if prob.forcing is not None:
        assert np.max(np.abs(rhs)) > 0.1  # a real source term, not an accidental zero


def test_biharmonic_boundary_data_is_second_derivative_of_exact():
    p1 = problems.biharmonic_1d(k=3)
    p2 = problems.biharmonic_2d(k=2)
    for prob in (p1, p2):
        xb = _points(prob, "boundary", 32)
        # With u = exact the term is Laplace(u) - h = 0; with u = exact + |x|^2 it must shift by exactly 2 d, so
        # the term really applies the (spatial) Laplacian to u.
        base = _term_values(prob, "bc_" + ("uxx" if prob is p1 else "lap"), prob.exact, xb)
        shifted = _term_values(
            prob,
            "bc_" + ("uxx" if prob is p1 else "lap"),
            lambda y: prob.exact(y) + jnp.sum(y**2),
            xb,
        )
        d = prob.domain.dim
        # float64 rounding of O(k^2 pi^2) numbers.
        np.testing.assert_allclose(base, 0.0, atol=1e-10)
        np.testing.assert_allclose(shifted, 2.0 * d, atol=1e-10)


def test_exact_is_traceable_and_differentiable_everywhere():
    # The closed-form solutions are differentiated twice (or four times) in the forcing test above; the Burgers
    # reference needs its own check at t = 0, where sqrt(t) is guarded.
    prob = problems.get("burgers_1d")
    x = jnp.asarray(prob.eval_points()[::37])
    assert bool(jnp.any(x[:, 1] == 0.0))
    v = jax.jit(jax.vmap(prob.exact))(x)
    g = jax.jit(jax.vmap(jax.grad(prob.exact)))(x)
    assert v.shape == (x.shape[0],) and v.dtype == jnp.float64
    assert g.shape == x.shape and bool(jnp.all(jnp.isfinite(g)))


# ------------------------------------------------------------------------------------------------- Burgers


def _shock_points(n=400, seed=5):
    rng = np.random.default_rng(seed)
    return jnp.asarray(np.column_stack([rng.uniform(-0.02, 0.02, n), rng.uniform(0.3, 1.0, n)]))


def test_burgers_reference_converged_in_nodes():
    prob = problems.get("burgers_1d")
    assert prob.options["nodes"] == 200
    fine = problems.get("burgers_1d", nodes=2000).exact
    x = jnp.concatenate([jnp.asarray(prob.eval_points()[::7]), _shock_points(200)])
    on = lambda u: np.asarray(jax.jit(jax.vmap(u))(x))  # noqa: E731
    diff = np.max(np.abs(on(prob.exact) - on(fine)))
    # Measured < 1e-14 (module docstring of _burgers); 1e-12 allows for platform rounding.
    assert diff <= 1e-12, diff
    coarse = problems.get("burgers_1d", nodes=20).exact
    assert np.max(np.abs(on(coarse) - on(fine))) > 1e-6  # the comparison can fail


def test_burgers_residual_small_at_the_shock():
    prob = problems.get("burgers_1d")
    x = _shock_points()
    r = _term_values(prob, "pde", prob.exact, x)
    # Measured 7e-14 where |u_x| ~ 150; the 1e-8 bar of the general test holds at the shock too.
    assert np.max(np.abs(r)) <= 1e-8, np.max(np.abs(r))


def test_burgers_matches_basdevant_1986():
    # Basdevant et al. (1986), Comput. Fluids 14, 23-41: for nu = 0.01/pi, max_t |u_x(0, t)| = 152.00516, reached
    # at t = 1.6037/pi. Both numbers are published to 5 decimals / 5 significant digits; at the maximum the slope
    # is stationary in t, so the rounding of t moves u_x by far less than 1e-5.
    prob = problems.get("burgers_1d")
    t_star = 1.6037 / math.pi
    ts = jnp.array([t_star - 0.01, t_star, t_star + 0.01])
    u_x = np.asarray(jax.jit(jax.vmap(lambda t: jax.grad(prob.exact)(jnp.stack([0.0 * t, t]))[0]))(ts))
    assert abs(u_x[1] + 152.00516) <= 1e-5, u_x
    assert np.all(np.abs(u_x[[0, 2]]) < 152.00516)  # the maximum is at t_star
    # Odd symmetry u(-x, t) = -u(x, t) and the initial value.
    x = jnp.asarray(prob.eval_points()[::13])
    u = jax.jit(jax.vmap(prob.exact))
    np.testing.assert_allclose(u(x), -u(x * jnp.array([-1.0, 1.0])), atol=1e-13)
    np.testing.assert_allclose(prob.exact(jnp.array([0.3, 0.0])), -math.sin(0.3 * math.pi), atol=1e-15)


# ------------------------------------------------------------------------------------------------ registry


def test_registry_lists_every_problem_and_factories_match():
    # The zoo is all there; other subpackages may register more (sciml_jax.analysis adds regression_1d).
    assert ALL_NAMES <= set(problems.names())
    assert problems.names() == sorted(problems.names())
    for name in ALL_NAMES:
        factory = getattr(problems, name)
        assert problems.options(name) == {
            p.name: p.default for p in inspect.signature(factory).parameters.values()
        }
        text = problems.describe(name)
        assert text.startswith(name + "(") and "Math:" in text and "Terms:" in text
        prob = problems.get(name)
        assert prob.name == name and list(prob.terms)[0] == "pde"
        assert set(prob.default_points) <= set(prob.domain.point_sets)
        assert {t.points for t in prob.terms.values()} <= set(prob.default_points)
        assert prob.order in (1, 2, 4) and prob.description
        json.dumps(prob.options)  # reports serialise options


def test_options_recorded_with_defaults_filled_in():
    assert problems.get("heat_1d", alpha=0.5).options == {"alpha": 0.5, "k": 1}
    assert problems.get("poisson_nd", dim=3).options == {"dim": 3, "k": 1}
    assert problems.get("poisson_1d", frequencies=(1, 3)).options == {
        "k": 1,
        "amplitudes": None,
        "frequencies": [1.0, 3.0],
    }
    assert problems.get("burgers_1d", nu=0.1).options == {"nu": 0.1, "nodes": 100}
    assert problems.get("sharp_gradient_2d").options["center"] == [-0.05, -0.05]
    assert problems.get("convection_1d", beta=30).options == {"beta": 30}


def test_orders():
    expected = {"biharmonic_1d": 4, "biharmonic_2d": 4, "convection_1d": 1, "reaction_1d": 1}
    for name in ALL_NAMES:
        assert problems.get(name).order == expected.get(name, 2), name


@pytest.mark.parametrize(
    "name,opts,match",
    [
        ("poisson_1d", {"kk": 2}, r"problem\.kk: unknown option for 'poisson_1d'; allowed: k=1, amplitudes=None"),
        ("burgers_1d", {"viscosity": 0.1}, r"allowed: nu=0\.003183"),
        ("poisson_1d", {"k": 0}, r"poisson_1d: k must be a finite real number > 0, got 0"),
        ("poisson_1d", {"k": -2}, r"k must be .* > 0, got -2"),
        ("poisson_1d", {"k": "2"}, r"k must be a finite real"),
        ("poisson_1d", {"k": True}, r"k must be a finite real"),
        ("poisson_1d", {"amplitudes": [1.0]}, r"amplitudes=\[1\.0\] needs frequencies"),
        ("poisson_1d", {"frequencies": [1, 2], "amplitudes": [1.0]}, r"amplitudes must be a sequence of 2"),
        ("poisson_1d", {"frequencies": [1, -2]}, r"frequencies\[1\] must be .* > 0, got -2"),
        ("poisson_1d", {"frequencies": []}, r"frequencies must be a sequence"),
        ("poisson_1d", {"frequencies": [1, 2], "amplitudes": [0, 0]}, r"amplitudes must not all be zero"),
        ("poisson_1d", {"k": 3, "frequencies": [1, 2]}, r"either k .* or frequencies"),
        ("poisson_nd", {"dim": 0}, r"poisson_nd: dim must be an integer >= 1, got 0"),
        ("poisson_nd", {"dim": 2.5}, r"dim must be an integer >= 1, got 2\.5"),
        ("helmholtz_2d", {"a1": 0}, r"a1 must be .* > 0"),
        ("helmholtz_2d", {"k": -1.0}, r"k must be .* >= 0, got -1\.0"),
        ("biharmonic_2d", {"k": float("nan")}, r"k must be a finite real"),
        ("heat_1d", {"alpha": -0.1}, r"heat_1d: alpha must be .* >= 0, got -0\.1"),
        ("convection_1d", {"beta": float("inf")}, r"beta must be a finite real"),
        ("reaction_1d", {"rho": None}, r"rho must be a finite real"),
        ("wave_1d", {"c": 0.0}, r"c must be .* > 0"),
        ("burgers_1d", {"nu": -0.01}, r"burgers_1d: nu must be .* > 0, got -0\.01"),
        ("burgers_1d", {"nu": 0}, r"nu must be .* > 0"),
        ("burgers_1d", {"nodes": 5}, r"nodes must be an integer >= 20, got 5"),
        ("sharp_gradient_2d", {"width": 0.0}, r"width must be .* > 0, got 0\.0"),
        ("sharp_gradient_2d", {"radius": -1}, r"radius must be .* > 0"),
        ("sharp_gradient_2d", {"center": (0.5, 0.5)}, r"center must lie outside the closed unit square"),
        ("sharp_gradient_2d", {"center": (2.0, 0.5, 1.0)}, r"center must be a sequence of 2"),
    ],
)
def test_invalid_options_raise(name, opts, match):
    with pytest.raises(ValueError, match=match):
        problems.get(name, **opts)


def test_unknown_name_raises():
    listing = r"unknown name 'poisson_3d'; allowed: allen_cahn_1d, biharmonic_1d, .*wave_1d"
    with pytest.raises(ValueError, match=listing):
        problems.get("poisson_3d")
    with pytest.raises(ValueError, match="unknown name"):
        problems.describe("nope")


def test_register_rejects_bad_factories():
    with pytest.raises(ValueError, match="already registered"):
        problems.register("poisson_1d", problems.poisson_1d)
    with pytest.raises(ValueError, match="keyword with a default"):
        problems.register("no_default", lambda k: None)


# -------------------------------------------------------------------------------------- Problem and Term


@pytest.mark.parametrize("name,opts", CASES, ids=IDS)
def test_eval_points_fixed_and_inside(name, opts):
    prob = problems.get(name, **opts)
    a, b = prob.eval_points(), prob.eval_points()
    assert a.dtype == np.float64 and a.ndim == 2 and a.shape[1] == prob.domain.dim
    assert 1000 <= a.shape[0] <= 10_000
    np.testing.assert_array_equal(a, b)
    assert np.all(prob.domain.contains(a))
    # The grid depends on the problem family and dimension, not on the other options.
    assert a.shape == problems.get(name, **({"dim": opts["dim"]} if "dim" in opts else {})).eval_points().shape


def test_term_and_problem_validation():
    with pytest.raises(ValueError, match="points must be a non-empty"):
        problems.Term("", lambda u, x: u(x))
    with pytest.raises(ValueError, match="fn must be a callable"):
        problems.Term("interior", 3.0)
    prob = problems.poisson_1d()
    fields = {f: getattr(prob, f) for f in ("name", "domain", "terms", "default_points", "order", "options",
                                             "description")}
    fields["exact"] = prob.exact_fn
    fields["coeffs"] = prob.coeffs
    bad_terms = dict(prob.terms, ic=problems.Term("initial", lambda u, x: u(x)))
    with pytest.raises(ValueError, match=r"terms\['ic'\]\.points = 'initial' is not a point set"):
        problems.Problem(**{**fields, "terms": bad_terms})
    with pytest.raises(ValueError, match=r"default_points\['interior'\] must be an int >= 1"):
        problems.Problem(**{**fields, "default_points": {"interior": 0}})
    with pytest.raises(ValueError, match="eval_method must be one of grid, uniform"):
        problems.Problem(**fields, eval_method="random")
    # Dict fields are private copies, and problems are hashable (by identity).
    terms = dict(prob.terms)
    p2 = problems.Problem(**{**fields, "terms": terms})
    terms.clear()
    assert list(p2.terms) == ["pde", "bc"]
    assert len({prob, p2}) == 2
    with pytest.raises(AttributeError):
        prob.order = 3


def test_high_dimensional_eval_points_are_quasi_random_interior():
    prob = problems.poisson_nd(dim=6)
    x = prob.eval_points()
    assert x.shape == (8192, 6) and prob.eval_method == "sobol"
    assert isinstance(prob.domain, geometry.Box)
    # Sobol points fill the cube: every coordinate's mean is 1/2 within a few 1e-3.
    assert np.max(np.abs(x.mean(axis=0) - 0.5)) < 5e-3


@pytest.mark.slow
@pytest.mark.parametrize("name", ["convection_1d", "burgers_1d"])
def test_terms_differentiate_with_respect_to_model_parameters(name):
    # Training differentiates every term through the model's parameters; these two build residuals from several
    # model evaluations (periodic condition) or several operators (Burgers: grad and Laplacian). biharmonic_1d/_2d
    # (nested forward Laplacians) pass this check too, but compiling their gradient costs ~7 s each, so they are
    # left out to keep the file fast.
    prob = problems.get(name)
    d = prob.domain.dim
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(0), 4)
    params = (jax.random.normal(k1, (6, d)), jax.random.normal(k2, (6,)), jax.random.normal(k3, (6,)) / 6)

    def loss(p):
        W, b, v = p
        u = lambda x: jnp.dot(v, jnp.tanh(W @ x + b))  # noqa: E731
        total = 0.0
        for name_, term in prob.terms.items():
            x = _points(prob, term.points, 8)
            total = total + jnp.sum(jax.vmap(lambda y, n=name_: prob.residual_at(n, u, y))(x) ** 2)
        return total

    direction = jax.tree_util.tree_map(lambda a: jax.random.normal(k4, a.shape), params)
    g = jax.jit(jax.grad(loss))(params)
    slope = sum(jnp.vdot(a, b) for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(direction)))
    h = 1e-5
    shifted = [jax.tree_util.tree_map(lambda a, e: a + s * h * e, params, direction) for s in (1, -1)]
    loss_jit = jax.jit(loss)
    fd = (loss_jit(shifted[0]) - loss_jit(shifted[1])) / (2 * h)
    # Central difference error ~ h^2 |loss'''| ~ 1e-10 relative, plus rounding eps |loss| / h ~ 1e-11 relative.
    np.testing.assert_allclose(float(slope), float(fd), rtol=1e-6)
