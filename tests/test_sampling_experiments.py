"""sharp_gradient_sampling and biharmonic_stiffness: tiny end-to-end runs write their reports; configs validate."""

import dataclasses
import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml_jax import config, experiments
from sciml_jax.experiments import _sampling

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_BASE = {
    "name": "tiny",
    "dtype": "float64",
    "model": {"width": 6, "depth": 1},
    "optimizer": {"name": "adam", "learning_rate": 1e-2},
    "train": {"steps": 20, "eval_every": 10, "progress": False},
}


def test_shipped_configs_validate():
    sharp = config.load(os.path.join(ROOT, "configs", "sharp_gradient_sampling.yaml"))
    assert sharp.experiment == "sharp_gradient_sampling" and sharp.problem.name == "sharp_gradient_2d"
    assert sharp.experiment_options["seeds"] >= 3
    stiff = config.load(os.path.join(ROOT, "configs", "biharmonic_stiffness.yaml"))
    assert stiff.experiment == "biharmonic_stiffness" and len(stiff.experiment_options["frequencies"]) >= 4


def test_sharp_gradient_sampling_tiny_run(tmp_path):
    cfg = config.from_dict(
        {
            **_BASE,
            "experiment": "sharp_gradient_sampling",
            "problem": {"name": "sharp_gradient_2d", "width": 0.1},
            "sampling": {"method": "sobol", "points": {"interior": 24, "boundary": 8},
                         "adaptive": {"method": "rad", "every": 10, "candidates": 128}},
            "experiment_options": {"seeds": 1, "methods": ["sobol", "rad"], "kappa_rank": 4},
        }
    )
    out = experiments.run_config(cfg, str(tmp_path))["tiny"]
    for f in ("report.md", "metrics.json", "config.yaml", "sampling_comparison.png", "final_points.png", "points_rad.png"):
        assert (tmp_path / f).stat().st_size > 0, f
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert out["status"] == "completed" and m["methods"] == ["sobol", "rad"]
    rad = m["runs"]["rad"][0]
    assert rad["events"] == 1 and rad["moved"] == 24  # one event at step 10, none at the last step (20)
    assert m["runs"]["sobol"][0]["events"] == 0
    # both start from the same Sobol points and θ_0: the same start conditioning
    assert rad["condition_start"] == m["runs"]["sobol"][0]["condition_start"]
    for run in (rad, m["runs"]["sobol"][0]):
        c = run["condition_end"]
        assert c["lambda_max"] >= c["lambda_min"] > 0 and c["kappa_r"] >= 1.0
    report = (tmp_path / "report.md").read_text()
    assert "## Conclusion" in report and "Verdict" in report and "| rad |" in report


def test_biharmonic_stiffness_tiny_run(tmp_path):
    cfg = config.from_dict(
        {
            **_BASE,
            "experiment": "biharmonic_stiffness",
            "problem": {"name": "poisson_1d"},
            "sampling": {"method": "sobol", "points": {"interior": 12, "boundary": 2},
                         "adaptive": {"method": "rad", "every": 10}},
            "experiment_options": {"frequencies": [1, 2], "problems_by_order": {2: "poisson_1d"},
                                   "adaptive_seeds": 1, "adaptive_methods": ["rad"], "static_methods": ["sobol"],
                                   "kappa_rank": 4, "hessian": False},
        }
    )
    out = experiments.run_config(cfg, str(tmp_path))["tiny"]
    for f in ("report.md", "metrics.json", "stiffness.png", "convergence.png", "adaptive_biharmonic.png"):
        assert (tmp_path / f).stat().st_size > 0, f
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert out["status"] == "completed" and len(m["rows"]) == 2
    # one compiled training step per order: the second frequency reuses the first one's executable
    assert m["rows"][0]["compile_time_s"] > 0 and m["rows"][1]["compile_time_s"] == 0.0
    assert m["rows"][0]["eval_steps"] == [0, 10, 20] and len(m["rows"][0]["rel_l2_curve"]) == 3
    assert m["adaptive"]["points"] == {"interior": 12, "boundary": 2}  # default: sampling.points
    assert m["adaptive"]["runs"]["rad"][0]["events"] == 1 and m["adaptive"]["runs"]["rad"][0]["moved"] == 12
    # at initialisation J does not depend on the forcing: identical NTK spectra for both frequencies
    a, b = (r["init"] for r in m["rows"])
    assert a["lambda_max"] == pytest.approx(b["lambda_max"], rel=1e-12)
    assert m["fits"]["2"]["sine_basis_condition"]["b"] is not None
    assert m["adaptive"]["methods"] == ["sobol", "rad"]
    assert "Growth exponents" in (tmp_path / "report.md").read_text()


def _tiny_setup(name, k, seed=0, n=12):
    cfg = config.from_dict(
        {**_BASE, "problem": {"name": name, "k": k}, "seed": seed,
         "sampling": {"method": "sobol", "points": {"interior": n, "boundary": 2}}}
    )
    return experiments.build(cfg)


@pytest.mark.parametrize("name", ["poisson_1d", "biharmonic_1d"])
def test_family_residual_equals_each_problems_own_residual(name):
    ref = _tiny_setup(name, 1.0)
    fam = _sampling._Family(ref.problem, ref.apply, {})
    other = _tiny_setup(name, 3.0, seed=1)
    # reference: the ω = 3 problem's own residual; the family evaluates the ω = 1 operator plus ω = 3 data.
    # Rounding of (L u - f_1) + f_1 - f_3 is a few eps·|f|, |f| <= (3π)^4 ≈ 8e3: 1e-9 relative is ample
    want = np.asarray(jax.jit(lambda p, b: other.residual(p, b))(other.params, other.batch))
    got = np.asarray(jax.jit(lambda p, b: fam.residual(p, b))(other.params, fam.data(other.problem, other.batch)))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * np.abs(want).max())


def test_family_rejects_members_whose_operator_changes():
    from sciml_jax import problems

    ref = _tiny_setup("poisson_1d", 1.0)
    terms = dict(ref.problem.terms)
    terms["pde"] = problems.Term("interior", lambda u, x: u(x) ** 2 - jnp.sin(x[0]), "u² - sin x")
    fam = _sampling._Family(dataclasses.replace(ref.problem, terms=terms), ref.apply, {})
    # u² - 2 differs from u² - sin x only by data: accepted (the split needs no linearity)
    same_op = {**terms, "pde": problems.Term("interior", lambda u, x: u(x) ** 2 - 2.0, "")}
    fam.check(dataclasses.replace(ref.problem, terms=same_op), ref.params, ref.batch)
    # 2u² - 2 has another u-dependent part: rejected
    other_op = {**terms, "pde": problems.Term("interior", lambda u, x: 2.0 * u(x) ** 2 - 2.0, "")}
    with pytest.raises(ValueError, match="same operator"):
        fam.check(dataclasses.replace(ref.problem, terms=other_op), ref.params, ref.batch)
    fam_ok = _sampling._Family(ref.problem, ref.apply, {})
    fam_ok.check(_tiny_setup("poisson_1d", 2.0).problem, ref.params, ref.batch)  # a real family member passes


def test_trainer_matches_fit_and_compiles_once():
    from sciml_jax import optim, train

    ref = _tiny_setup("poisson_1d", 1.0)
    opt = optim.get("adam", learning_rate=1e-2)
    fam = _sampling._Family(ref.problem, ref.apply, {})
    trainer = _sampling._Trainer(fam.residual, opt, 10)
    first = trainer.fit(ref.params, fam.data(ref.problem, ref.batch), 20, fam.rel_l2(ref.problem))
    other = _tiny_setup("poisson_1d", 2.0)
    got = trainer.fit(other.params, fam.data(other.problem, other.batch), 20, fam.rel_l2(other.problem))
    assert first["compile_time_s"] > 0 and got["compile_time_s"] == 0.0  # ω = 2 reuses the ω = 1 executable
    # reference: train.fit on the ω = 2 problem's own residual, same optimizer and steps: the same algorithm on a
    # residual equal up to rounding (a few eps·|f|); 1e-9 relative leaves room for its growth over 20 steps
    want = train.fit(other.residual, other.params, other.batch, opt, 20, metrics=other.metrics, eval_every=10,
                     progress=False)
    np.testing.assert_allclose(got["loss_curve"], want.history.loss, rtol=1e-9)
    np.testing.assert_allclose(got["rel_l2"], want.history.metrics["rel_l2"][-1], rtol=1e-9)
    assert got["status"] == "completed" and got["eval_steps"] == [0, 10, 20]


def test_fit_exponent_and_sine_reference():
    w = np.array([1.0, 2.0, 3.0, 4.0])
    f = _sampling._fit_exponent(w, 3.0 * w**4.0)
    assert f["b"] == pytest.approx(4.0, abs=1e-12) and f["c"] == pytest.approx(3.0, rel=1e-12)
    assert _sampling._fit_exponent(w, [1.0, None, math.nan, -1.0])["b"] is None
    # on an exact quadrature grid the sine basis is orthogonal: κ = (ω π)^(2p) / π^(2p) = ω^(2p) (round-off only)
    x = (np.arange(64) + 0.5) / 64
    for p in (2, 4):
        assert _sampling._sine_basis_condition(4.0, x, p) == pytest.approx(4.0 ** (2 * p), rel=1e-9)


@pytest.mark.parametrize(
    "name, options, match",
    [
        ("sharp_gradient_sampling", {"methods": ["sobol", "bogus"]}, "methods"),
        ("sharp_gradient_sampling", {"seeds": 0}, "seeds"),
        ("biharmonic_stiffness", {"frequencies": [2]}, "frequencies"),
        ("biharmonic_stiffness", {"problems_by_order": {4: "poisson_1d"}}, "problems_by_order.4"),
        ("biharmonic_stiffness", {"adaptive_methods": ["sobol"]}, "adaptive_methods"),
        ("biharmonic_stiffness", {"static_methods": ["rad"]}, "static_methods"),
        ("biharmonic_stiffness", {"adaptive_points": {"interior": 0, "boundary": 2}}, "adaptive_points"),
        ("biharmonic_stiffness", {"adaptive_points": {"interior": 8}}, "adaptive_points"),
    ],
)
def test_bad_options(tmp_path, name, options, match):
    cfg = config.from_dict(
        {**_BASE, "experiment": name, "problem": {"name": "poisson_1d"}, "experiment_options": options,
         "sampling": {"adaptive": {"method": "rad", "every": 10}}}
    )
    with pytest.raises(ValueError, match=match):
        experiments.run_config(cfg, str(tmp_path))


def test_stiffness_needs_whole_chunks(tmp_path):
    cfg = config.from_dict(
        {**_BASE, "experiment": "biharmonic_stiffness", "problem": {"name": "poisson_1d"},
         "train": {"steps": 25, "eval_every": 10}, "sampling": {"adaptive": {"method": "rad", "every": 10}}}
    )
    with pytest.raises(ValueError, match="train.steps"):
        experiments.run_config(cfg, str(tmp_path))
