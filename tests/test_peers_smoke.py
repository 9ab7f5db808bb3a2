"""Fast checks of benchmarks/peers.py's bookkeeping (no worker processes, no training): the per-round ratio
statistics, the thread environment every worker gets, and the fairness rules heading the markdown."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

PEERS = Path(__file__).resolve().parents[1] / "benchmarks" / "peers.py"


@pytest.fixture(scope="module")
def peers():
    spec = importlib.util.spec_from_file_location("peers_bench", PEERS)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_ratio_stats_are_per_round(peers):
    # round i: A takes a_i s, B takes b_i s; the ratio of medians (3/2) differs from the median of ratios (2)
    a = [{"seconds": s} for s in (1.0, 4.0, 3.0, 10.0)]
    b = [{"seconds": s} for s in (1.0, 2.0, 1.0)]  # B ran one round fewer: only common rounds count
    r = peers._ratio_stats(a, b)
    ratios = [1.0, 2.0, 3.0]
    assert r["rounds"] == 3
    assert r["median"] == pytest.approx(sorted(ratios)[1])
    assert (r["min"], r["max"]) == (pytest.approx(min(ratios)), pytest.approx(max(ratios)))
    assert peers._ratio_stats([], b) is None


def test_thread_env_is_single_threaded_by_default(peers, monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    one = peers.thread_env(1)
    assert {one[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")} == {"1"}
    assert "--xla_cpu_multi_thread_eigen=false" in one["XLA_FLAGS"]
    assert "intra_op_parallelism_threads=1" in one["XLA_FLAGS"]
    two = peers.thread_env(2)
    assert two["OPENBLAS_NUM_THREADS"] == "2" and "XLA_FLAGS" not in two


def test_fairness_rules_head_the_markdown(peers):
    args = peers.parse_args(["--interior", "100", "--boundary", "20", "--out", "unused.json"])
    rules = peers.fairness_rules(args)
    assert any("100 interior + 20 boundary" in r for r in rules)
    result = {
        "config": {"chunk": args.chunk, "target_loss": args.target_loss, "lbfgs_repeats": 1},
        "fairness_rules": rules, "loadavg_start": [1.0, 1.0, 1.0], "loadavg_end": [2.0, 2.0, 2.0],
        "machine": {"cpus": 2},
        "dtypes": {"float64": {"adam": {}, "lbfgs": {},
                               "ratios": {"sciml_jax.fit / optax_scan_forward": peers._ratio_stats(
                                   [{"seconds": 3.0}], [{"seconds": 2.0}])}}},
    }
    md = peers.markdown(result)
    assert md.startswith("Fairness rules:")
    assert md.index("Fairness rules:") < md.index("per-round time ratios")
    assert "| sciml_jax.fit / optax_scan_forward | 1.500 |" in md
