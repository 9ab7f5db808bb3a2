"""Operator learning as a residual vector: OperatorResidual (DeepONet grid / points / FNO), physics-informed DeepONet
terms and their NTK blocks, mini-batches of functions in fit (one compilation, bit-identical resume mid-epoch),
fit_stages with per-stage mini-batch sizes, and second-order optimizers on an operator residual."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sciml_jax as sj
from sciml_jax.problems import Problem, Term

M = 12  # sensors


@pytest.fixture(scope="module")
def data():
    return sj.datasets.antiderivative(0, n_train=16, n_test=8, n_sensors=M, n_queries=5, n_grf=201)


@pytest.fixture(scope="module")
def deeponet():
    model = sj.nn.DeepONet(M, 1, 10, 2, 8, key=jax.random.key(0))
    return model, *sj.nn.functional(model)


def _pi_batch(data, functions=None):
    """Antiderivative PI-DeepONet batch: data at the sensors, dG/dy = u at the sensors, G(u)(0) = 0."""
    U, S = data.fno_entry("train")
    if functions is not None:
        U, S = U[:functions], S[:functions]
    y = jnp.asarray(data.sensors[:, None])
    return {"data": (U, S), "queries": y, "physics": (U, U), "collocation": y,
            "initial": (U, jnp.zeros((U.shape[0], 1))), "origin": jnp.zeros((1, 1))}


PI_TERMS = {
    "data": sj.pinn.OperatorTerm("data", "queries"),
    "ode": sj.pinn.OperatorTerm("physics", "collocation", derivative=0, description="dG(u)/dy - u = 0"),
    "ic": sj.pinn.OperatorTerm("initial", "origin", description="G(u)(0) = 0"),
}


def _rtol(x):  # round-off of O(P) accumulated terms in float64
    return 1e-12 * max(1.0, float(jnp.max(jnp.abs(x))))


def test_grid_residual_equals_per_point_evaluation(data, deeponet):
    model, params, apply = deeponet
    for layout in ("queries", "sensors"):
        batch = sj.pinn.operator_batch(data, layout=layout)
        r = sj.pinn.OperatorResidual(apply)(params, batch)
        U = batch["data"][0]
        Y = batch["data"][1] if layout == "queries" else jnp.broadcast_to(batch["queries"], (U.shape[0], M, 1))
        S = batch["data"][-1]
        # independent reference: the point function on every pair z = concat(u_b, y_bq), then the 1/sqrt(N) scale
        z = jnp.concatenate([jnp.repeat(U[:, None, :], Y.shape[1], axis=1), Y], axis=-1).reshape(-1, M + 1)
        ref = (jax.vmap(lambda zz: apply(params, zz))(z) - S.ravel()) / np.sqrt(S.size)
        assert r.shape == (S.size,)
        np.testing.assert_allclose(r, ref, rtol=0, atol=_rtol(ref))
    # the model itself is accepted and gives the same residual
    batch = sj.pinn.operator_batch(data, layout="sensors")
    np.testing.assert_array_equal(sj.pinn.OperatorResidual(model)(params, batch),
                                  sj.pinn.OperatorResidual(apply)(params, batch))


@pytest.mark.slow  # compile-bound (5-20 s on 2 cores)
def test_physics_term_matches_per_point_problem_and_ntk_blocks(data, deeponet):
    """The batched forward-mode dG/dy term against the structured per-point path (Problem/Term with
    sj.operators.partial(u, m)): same residual vector and the same NTK blocks per term."""
    _, params, apply = deeponet
    batch = _pi_batch(data, functions=4)
    res = sj.pinn.OperatorResidual(apply, PI_TERMS, weights={"ode": 0.3, "ic": 2.0})
    r = res(params, batch)

    # the same loss as a data-only Problem of per-point terms on z = concat(u, y)
    U, S = batch["data"]
    y = batch["queries"]

    def pairs(U, Y, T):
        z = jnp.concatenate([jnp.repeat(U[:, None, :], Y.shape[0], axis=1),
                             jnp.broadcast_to(Y, (U.shape[0],) + Y.shape)], axis=-1)
        return z.reshape(-1, z.shape[-1]), T.reshape(-1)

    prob = Problem(
        "pi_deeponet", None,
        {"data": Term("obs", lambda u, z, s: u(z) - s),
         "ode": Term("colloc", lambda u, z, f: sj.operators.partial(u, M)(z) - f),
         "ic": Term("init", lambda u, z, s: u(z) - s)},
        data=("obs", "colloc", "init"), weights={"ode": 0.3, "ic": 2.0},
    )
    pbatch = {"obs": pairs(U, y, S), "colloc": pairs(U, y, U), "init": pairs(U, jnp.zeros((1, 1)), jnp.zeros((4, 1)))}
    ref_res = sj.pinn.residual(prob, apply)
    ref = ref_res(params, pbatch)
    np.testing.assert_allclose(r, ref, rtol=0, atol=_rtol(ref))
    assert res.slices(params, batch) == ref_res.slices(params, pbatch)

    K = sj.analysis.ntk(res, params, batch)  # generic path: one vjp per row
    K_ref = sj.analysis.ntk(ref_res, params, pbatch)  # structured path: per-point gradients
    assert K.term_names == ("data", "ode", "ic")
    for a in K.term_names:
        for b in K.term_names:
            np.testing.assert_allclose(K.block(a, b), K_ref.block(a, b), rtol=0, atol=_rtol(K_ref.K))
    assert K.block("ode").shape == (4 * M, 4 * M) and K.block("ic", "ode").shape == (4, 4 * M)
    traces = K.block_traces()
    np.testing.assert_allclose(sum(traces.values()), K.trace, rtol=1e-12)
    assert min(float(t) for t in traces.values()) > 0
    # the points kind (vmapped point function, derivatives by sj.operators.partial) agrees too
    r_points = sj.pinn.OperatorResidual(apply, PI_TERMS, {"ode": 0.3, "ic": 2.0}, kind="points")(params, batch)
    np.testing.assert_allclose(r_points, ref, rtol=0, atol=_rtol(ref))


@pytest.mark.slow  # compile-bound (5-20 s on 2 cores)
def test_fno_residual_and_metric(data):
    fno = sj.nn.FNO1d(1, 1, 6, 3, 2, key=jax.random.key(1), n_grid=M, grid_features="periodic")
    params, apply = sj.nn.functional(fno)
    res = sj.pinn.OperatorResidual(apply)
    assert res.kind == "fno" and res.term_names == ("data",)
    batch = sj.pinn.operator_batch(data, "fno")
    a, s = batch["data"]
    pred = jax.vmap(lambda x: apply(params, x))(a)
    np.testing.assert_allclose(res(params, batch), ((pred - s) / np.sqrt(s.size)).ravel(), rtol=0, atol=_rtol(pred))
    np.testing.assert_allclose(res.loss(params, batch), 0.5 * jnp.mean((pred - s) ** 2), rtol=1e-12)
    at, st = sj.pinn.operator_batch(data, "fno", split="test")["data"]
    err = sj.pinn.operator_rel_l2(res, data)(params)
    ref = jnp.linalg.norm(jax.vmap(lambda x: apply(params, x))(at) - st) / jnp.linalg.norm(st)
    np.testing.assert_allclose(err, ref, rtol=1e-12)


def test_validation_messages(data, deeponet):
    model, params, apply = deeponet
    with pytest.raises(ValueError, match="kind must be one of"):
        sj.pinn.OperatorResidual(apply, kind="grid")
    with pytest.raises(ValueError, match="kind='fno' needs a FNO1d"):
        sj.pinn.OperatorResidual(apply, kind="fno")
    with pytest.raises(ValueError, match="kind is needed"):
        sj.pinn.OperatorResidual(lambda p, z: z[0])
    with pytest.raises(ValueError, match=r"weights\['pde'\] names no term"):
        sj.pinn.OperatorResidual(apply, weights={"pde": 1.0})
    with pytest.raises(ValueError, match="derivative must be None or a coordinate index"):
        sj.pinn.OperatorTerm("data", derivative=-1)
    res = sj.pinn.OperatorResidual(apply)
    U, S = data.fno_entry("train")
    with pytest.raises(ValueError, match="needs shared query points"):
        res(params, {"data": (U, S)})
    with pytest.raises(ValueError, match="do not match the prediction"):
        res.check(params, {"data": (U, S[:, :5]), "queries": jnp.asarray(data.sensors[:, None])})
    with pytest.raises(ValueError, match="must share the function axis"):
        res.check(params, {"data": (U, S[:3]), "queries": jnp.asarray(data.sensors[:, None])})
    with pytest.raises(ValueError, match="layout 'sensors' needs a 1-D query coordinate"):
        dr = sj.datasets.diffusion_reaction(0, n_train=2, n_test=2, n_sensors=5, n_times=3, n_queries=4, n_grf=51)
        sj.pinn.operator_batch(dr, layout="sensors")
    with pytest.raises(ValueError, match=r"functions must be an int in \[1, 16\]"):
        sj.pinn.operator_batch(data, functions=17)


def test_minibatch_of_functions_compiles_once_and_resumes_bit_identically(data, deeponet, tmp_path):
    _, params, apply = deeponet
    res = sj.pinn.OperatorResidual(apply)
    batch = sj.pinn.operator_batch(data, layout="sensors")  # (U, S) tuple mini-batched; shared Y left whole
    # a mini-batch is the residual of the chosen functions: rows of U and S stay paired, Y untouched
    mb = sj.train._fit._minibatch(batch, {"data": 4}, jax.random.key(7), jnp.asarray(0))
    assert mb["data"][0].shape == (4, M) and mb["queries"] is batch["queries"]
    rows = [int(np.nonzero(np.all(np.asarray(batch["data"][0]) == np.asarray(u), axis=1))[0][0]) for u in mb["data"][0]]
    np.testing.assert_array_equal(mb["data"][1], batch["data"][1][np.asarray(rows)])

    metric = sj.pinn.operator_rel_l2(res, data)
    opt = optax.adam(optax.exponential_decay(3e-3, 40, 0.1))
    kw = dict(minibatch={"data": 5}, key=3, progress=False, metrics={"test": metric})  # 3 steps per epoch of 16 // 5
    before = sj.train.cache_info()["misses"]
    straight = sj.train.fit(res, params, batch, opt, 35, eval_every=7, **kw)
    after = sj.train.cache_info()["misses"]
    assert after - before <= 2  # the step chunk (and the metric, unless an earlier test compiled it): once
    again = sj.train.fit(sj.pinn.OperatorResidual(apply), params, batch, opt, 35, eval_every=7, **kw)
    assert sj.train.cache_info()["misses"] == after  # a new residual of the same structure: nothing compiles
    assert again.history.loss == straight.history.loss
    assert straight.history.loss[-1] < straight.history.loss[0]

    sj.train.fit(res, params, batch, opt, 17, checkpoint_dir=tmp_path, chunk=7, eval_every=7, **kw)  # stops mid-epoch
    resumed = sj.train.fit(res, params, batch, opt, 35, checkpoint_dir=tmp_path, resume=True, eval_every=7, **kw)
    for a, b in zip(jax.tree.leaves(straight.params), jax.tree.leaves(resumed.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert straight.history.loss == resumed.history.loss


@pytest.mark.slow  # compile-bound (5-20 s on 2 cores)
def test_fit_stages_minibatch_progression_compiles_once_per_stage(data, deeponet):
    _, params, apply = deeponet
    res = sj.pinn.OperatorResidual(apply)
    batch = sj.pinn.operator_batch(data, layout="sensors")
    sizes = [2, 4, 8]
    stage_kwargs = [{"minibatch": {"data": b}} for b in sizes] + [{}]  # then the full batch
    opt = optax.adam(optax.exponential_decay(3e-3, 200, 0.1))
    sj.train.fit(res, params, batch, opt, 1, minibatch={"data": 3}, progress=False)  # warm the metric-free caches
    before = sj.train.cache_info()["misses"]
    out = sj.train.fit_stages(res, params, batch, [20, 20, 20, 20], opt, stage_kwargs=stage_kwargs, eval_every=10,
                              progress=False, key=1)
    assert sj.train.cache_info()["misses"] - before == 4  # one program per stage, none inside a stage
    stages = [e for e in out.history.events if e["kind"] == "stage"]
    assert [e["step"] for e in stages] == [0, 20, 40, 60]
    assert [e.get("minibatch", {}).get("data") for e in stages] == sizes + [None]
    assert out.step == 80 and len(out.history.loss) == 80 and out.status == "completed"
    # the schedule's count carried over: the final state has seen all 80 steps
    counts = [x for x in jax.tree.leaves(out.opt_state) if jnp.issubdtype(x.dtype, jnp.integer)]
    assert any(int(c) == 80 for c in counts)
    # the same stages again: every program is reused
    mid = sj.train.cache_info()["misses"]
    sj.train.fit_stages(res, params, batch, [20, 20, 20, 20], opt, stage_kwargs=stage_kwargs, eval_every=10,
                        progress=False, key=2)
    assert sj.train.cache_info()["misses"] == mid
    with pytest.raises(ValueError, match="stage_kwargs: expected one mapping"):
        sj.train.fit_stages(res, params, batch, [5, 5], opt, stage_kwargs=[{}])
    with pytest.raises(ValueError, match=r"stage_kwargs\[1\]: resume is not supported"):
        sj.train.fit_stages(res, params, batch, [5, 5], opt, stage_kwargs=[{}, {"resume": True}])


@pytest.mark.slow  # compile-bound (5-20 s on 2 cores)
@pytest.mark.parametrize("name", ["lbfgs", "levenberg_marquardt"])
def test_full_batch_second_order_on_an_operator_residual(data, deeponet, name):
    """Defaults from the default initialisation (LM matrix-free: solver cg) lower the loss on the full batch."""
    _, params, apply = deeponet
    res = sj.pinn.OperatorResidual(apply)
    batch = sj.pinn.operator_batch(data, layout="sensors", functions=8)
    opt = sj.optim.lbfgs() if name == "lbfgs" else sj.optim.levenberg_marquardt(solver="cg", cg_max_steps=50)
    out = sj.train.fit(res, params, batch, opt, 20, eval_every=10, progress=False)
    assert out.status == "completed"
    assert out.history.loss[-1] < 0.05 * out.history.loss[0]


@pytest.mark.slow  # compile-bound (5-20 s on 2 cores)
def test_query_bounds_map_points_and_derivatives(data, deeponet):
    """query_bounds=(lo, hi): the network sees y' = 2 (y - lo) / (hi - lo) - 1; values equal the unmapped residual
    at y', derivatives in y carry the chain-rule factor 2 / (hi - lo)."""
    _, params, apply = deeponet
    lo, hi = 0.0, 0.5
    batch = _pi_batch(data, functions=3)
    mapped = {k: (2 * (v - lo) / (hi - lo) - 1 if k in ("queries", "collocation", "origin") else v)
              for k, v in batch.items()}
    plain = sj.pinn.OperatorResidual(apply, PI_TERMS)
    for kind in ("deeponet", "points"):
        res = sj.pinn.OperatorResidual(apply, PI_TERMS, kind=kind, query_bounds=(lo, hi))
        t, t0 = res.terms(params, batch), plain.terms(params, mapped)
        U = batch["physics"][0]
        for name in ("data", "ic"):
            np.testing.assert_allclose(t[name], t0[name], rtol=0, atol=_rtol(t0[name]))
        dG = (t["ode"] + U.ravel()).reshape(U.shape)  # dG/dy at y (the ode term is dG/dy - u)
        dG0 = (t0["ode"] + U.ravel()).reshape(U.shape)  # dG/dy' at y'
        np.testing.assert_allclose(dG, 2 / (hi - lo) * dG0, rtol=0, atol=_rtol(dG))
    with pytest.raises(ValueError, match="query_bounds must be finite"):
        sj.pinn.OperatorResidual(apply, query_bounds=(1.0, 0.0))


# ------------------------------------------------------------------------------------------- the experiment

TINY = {
    "name": "oplearn_tiny",
    "dtype": "float64",
    "seed": 0,
    "experiment": "operator_learning",
    "experiment_options": {
        "budget_s": 30,
        "levels": [0.9, 1e-6],
        "ntk": {"functions": 3, "points": 6},
        "cases": [{"label": "anti", "dataset": "antiderivative",
                   "dataset_options": {"n_train": 12, "n_test": 6, "n_sensors": 10, "n_queries": 4, "n_grf": 101},
                   "model": {"kind": "deeponet", "width": 6, "depth": 1, "latent": 5}, "query_bounds": [0.0, 1.0],
                   "target": 0.5}],
        "methods": [
            {"label": "adam", "optimizer": {"name": "adam", "learning_rate": 3e-3}, "minibatch": 4, "eval_every": 5,
             "max_steps": 20},
            {"label": "lbfgs", "optimizer": {"name": "lbfgs"}, "eval_every": 5, "max_steps": 10},
        ],
    },
    "problem": {"name": "regression_1d"},
}


SHIPPED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "operator_learning.yaml")


@pytest.mark.slow  # compile-bound (5-20 s on 2 cores)
def test_small_mode_of_the_shipped_config_writes_a_consistent_report(tmp_path):
    """`--set experiment_options.small=true` (one case, two methods selected): report, figures, JSON, and a
    conclusion recomputed here from the per-run numbers."""
    import json

    from sciml_jax import config, experiments

    cfg = config.load(SHIPPED, ["experiment_options.small=true", "experiment_options.select=[antiderivative DeepONet]",
                                "experiment_options.select_methods=[adam, lbfgs]"])
    out = tmp_path / "op"
    s = experiments.run_config(cfg, str(out))["operator_learning"]
    for f in ("report.md", "metrics.json", "runs.csv", "curves.png", "ntk_spectrum.png", "predictions.png"):
        assert (out / f).stat().st_size > 0
    m = json.loads((out / "metrics.json").read_text())
    assert s["status"] == "completed" and len(m["runs"]) == 2
    runs = {r["method"]: r for r in m["runs"]}
    t_eq = min(x["wall_time_s"] for x in m["runs"])
    for r in runs.values():
        assert 1 <= r["steps"] <= 20 and r["status"] in ("completed", "budget")  # small mode: <= 20 steps or 2 s
        c = r["curve"]
        assert r["test"]["final"] == c["test_rel_l2"][-1] and r["test"]["best"] == min(c["test_rel_l2"])
        assert r["test"]["final"] < c["test_rel_l2"][0]  # training lowered the test error
        # the error at equal time is the last evaluation at or before t* = the shortest run's time
        i = max(j for j, t in enumerate(c["wall_time_s"]) if t <= t_eq + 1e-9)
        assert r["at_equal_time"] == c["test_rel_l2"][i] and r["equal_time_s"] == t_eq
    # the conclusion is the table's: the lower error at equal time wins
    first, second = runs["adam"]["at_equal_time"], runs["lbfgs"]["at_equal_time"]
    concl = m["conclusion"]
    assert concl["answer"] == ("yes" if second < first else "no")
    assert concl["per_case"]["antiderivative DeepONet"]["ratio_first_over_second"] == pytest.approx(first / second)
    ntk = m["ntk"]["antiderivative DeepONet"]
    assert set(ntk) == {"initial θ_0", "adam", "lbfgs"}
    assert all(n["rows"] == 4 * 8 and len(n["eigenvalues"]) == 32 and n["condition_number"] > 1 for n in ntk.values())
    report = (out / "report.md").read_text()
    assert f"**Answer: {concl['answer']}**" in report and "### antiderivative DeepONet" in report


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("cases", [], "experiment_options.cases"),
        ("cases", [{"dataset": "navier_stokes"}], r"experiment_options.cases\[0\].dataset"),
        ("cases", [{"dataset": "burgers", "colour": 1}], r"experiment_options.cases\[0\].colour"),
        ("cases", [{"dataset": "burgers", "model": {"kind": "fno", "modes": 0}}],
         r"experiment_options.cases\[0\].model.modes"),
        ("cases", [{"dataset": "burgers", "model": {"kind": "fno"}, "physics": {"ode": 1.0}}],
         r"experiment_options.cases\[0\].physics"),
        ("methods", [{"optimizer": {"name": "adamw"}}], r"experiment_options.methods\[0\].optimizer"),
        ("methods", [{"optimizer": {"name": "adam"}, "minibatch": 0}], r"experiment_options.methods\[0\].minibatch"),
        ("methods", [{"optimizer": {"name": "adam"}, "cases": ["nope"]}], r"experiment_options.methods\[0\].cases"),
        ("budget_s", -1, "experiment_options.budget_s"),
        ("select", ["nope"], "experiment_options.select"),
        ("select_methods", ["nope"], "experiment_options.select_methods"),
        ("small", "yes", "experiment_options.small"),
    ],
)
def test_bad_experiment_options_raise(tmp_path, key, value, message):
    import copy

    from sciml_jax import config, experiments

    d = copy.deepcopy(TINY)
    d["experiment_options"][key] = value
    with pytest.raises(ValueError, match=message) as err:  # refused when the config is read, before anything runs
        config.from_dict(d)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "x").exists()
    experiments.check_options("operator_learning", TINY["experiment_options"], config.from_dict(TINY))  # the base is fine


def test_shipped_config_validates_and_has_a_small_mode():
    from sciml_jax import config

    path = SHIPPED
    cfg = config.load(path)
    assert cfg.experiment == "operator_learning" and cfg.dtype == "float64"
    opts = cfg.experiment_options
    assert {c["dataset"] for c in opts["cases"]} >= {"antiderivative", "burgers"}
    names = {m["optimizer"]["name"] for m in opts["methods"]}
    assert {"adam", "lbfgs", "levenberg_marquardt"} <= names
    small = config.load(path, ["experiment_options.small=true"])
    assert small.experiment_options["small"] is True


@pytest.mark.slow
def test_shipped_config_runs_in_small_mode(tmp_path):
    """The whole shipped config end to end in its small mode (every case and method; compile-bound, minutes)."""
    import json

    from sciml_jax import config, experiments

    cfg = config.load(SHIPPED, ["experiment_options.small=true"])
    experiments.run_config(cfg, str(tmp_path))
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["status"] == "completed"
    assert len(m["runs"]) == sum(len(x["cases"]) for x in m["methods"])
    assert m["conclusion"]["cases_compared"] == len(m["cases"])
