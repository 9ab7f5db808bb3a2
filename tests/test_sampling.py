"""Collocation batches from a JAX key or an int seed."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml_jax.geometry import Box, Disk, Interval, SpaceTime
from sciml_jax.sampling import METHODS, point_set_seed, sample

HEAT = SpaceTime(Box((0.0, 0.0), (1.0, 2.0)), 0.0, 1.0)
COUNTS = {"interior": 33, "boundary": 17, "initial": 9}


def test_methods():
    assert METHODS == ("uniform", "sobol", "halton", "lhs")


@pytest.mark.parametrize("method", METHODS)
def test_shapes_dtype_membership_and_order(method):
    batch = sample(HEAT, COUNTS, method, key=3)
    assert list(batch) == list(COUNTS)
    for name, n in COUNTS.items():
        assert isinstance(batch[name], jax.Array)
        assert batch[name].shape == (n, 3) and batch[name].dtype == jnp.float64  # conftest turns x64 on
        assert HEAT.contains(np.asarray(batch[name]), name).all()


def test_int_seed_typed_key_and_legacy_key_agree():
    a = sample(HEAT, COUNTS, "sobol", 0)
    b = sample(HEAT, COUNTS, "sobol", jax.random.key(0))
    c = sample(HEAT, COUNTS, "sobol", jax.random.PRNGKey(0))
    d = sample(HEAT, COUNTS, "sobol", np.int64(0))
    for name in COUNTS:
        np.testing.assert_array_equal(a[name], b[name])
        np.testing.assert_array_equal(a[name], c[name])
        np.testing.assert_array_equal(a[name], d[name])


def test_keys_change_points_and_sets_are_independent():
    a = sample(HEAT, COUNTS, "halton", jax.random.key(1))
    b = sample(HEAT, COUNTS, "halton", jax.random.key(2))
    for name in COUNTS:
        assert not np.allclose(a[name], b[name])
    # a point set's points do not depend on which other sets are requested, nor on dict order
    only = sample(HEAT, {"initial": 9}, "halton", jax.random.key(1))
    np.testing.assert_array_equal(only["initial"], a["initial"])
    rev = sample(HEAT, dict(reversed(list(COUNTS.items()))), "halton", jax.random.key(1))
    for name in COUNTS:
        np.testing.assert_array_equal(rev[name], a[name])
    # interior and initial (both drawn from the space interior) use different streams
    assert point_set_seed(1, HEAT, "interior") != point_set_seed(1, HEAT, "initial")


def test_matches_domain_sample_with_derived_seed():
    key = jax.random.key(42)
    batch = sample(HEAT, COUNTS, "lhs", key)
    for name, n in COUNTS.items():
        # independent reference: fold_in(key, index of the set), then an int32 seed, as documented
        sub = jax.random.fold_in(key, HEAT.point_sets.index(name))
        seed = int(jax.random.randint(sub, (), 0, 2**31 - 1, dtype=jnp.int32))
        assert point_set_seed(key, HEAT, name) == seed
        np.testing.assert_array_equal(batch[name], HEAT.sample(name, n, "lhs", seed))


def test_nested_batches_for_quasi_random_methods():
    small = sample(Disk(), {"interior": 50, "boundary": 10}, "sobol", 7)
    large = sample(Disk(), {"interior": 200, "boundary": 40}, "sobol", 7)
    np.testing.assert_array_equal(small["interior"], large["interior"][:50])
    np.testing.assert_array_equal(small["boundary"], large["boundary"][:10])


def test_dtype_follows_x64_flag():
    with jax.enable_x64(False):
        batch = sample(Interval(0.0, 1.0), {"interior": 8}, "uniform", 0)
        assert batch["interior"].dtype == jnp.float32
    assert sample(Interval(0.0, 1.0), {"interior": 8}, "uniform", 0)["interior"].dtype == jnp.float64


def test_traced_key_is_rejected_with_a_clear_message():
    with pytest.raises(ValueError, match="key must be concrete"):
        jax.jit(lambda k: sample(Interval(0.0, 1.0), {"interior": 4}, "sobol", k)["interior"])(jax.random.key(0))


@pytest.mark.parametrize(
    "args,match",
    [
        ((HEAT, {}), r"counts must be a non-empty mapping .* 'interior', 'boundary', 'initial'; got \{\}"),
        ((HEAT, [("interior", 4)]), r"counts must be a non-empty mapping"),
        ((HEAT, {"edge": 4}), r"unknown point set 'edge' for SpaceTime; allowed: 'interior', 'boundary', 'initial'"),
        ((HEAT, {"interior": 0}), r"counts\['interior'\] must be a positive int, got 0"),
        ((HEAT, {"interior": 4.0}), r"counts\['interior'\] must be a positive int, got 4.0"),
        ((HEAT, {"interior": True}), r"counts\['interior'\] must be a positive int, got True"),
        ((HEAT, {"interior": 4}, "grid"), r"method must be one of 'uniform', 'sobol', 'halton', 'lhs'; got 'grid'"),
        ((HEAT, {"interior": 4}, "sobol", -1), r"key must be an int seed >= 0 .* got -1"),
        ((HEAT, {"interior": 4}, "sobol", 1.5), r"key must be an int seed >= 0, a typed key .* got 1.5"),
        ((HEAT, {"interior": 4}, "sobol", jax.random.split(jax.random.key(0))), r"single PRNG key .* shape \(2,\)"),
        (("box", {"interior": 4}), r"domain must be a sciml_jax.geometry.Domain, got 'box'"),
    ],
)
def test_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        sample(*args)
