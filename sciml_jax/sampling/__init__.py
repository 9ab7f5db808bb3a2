"""Collocation batches: fixed-size point arrays per point set, drawn on the host from a JAX key or int seed, and
residual-based adaptive resampling that keeps those sizes fixed.

    batch = sample(Box((0.0, 0.0), (1.0, 1.0)), {"interior": 256, "boundary": 64}, "sobol", key)
    batch["interior"].shape   # (256, 2), dtype jnp.result_type(float)

    rs = Resampler(residual, problem.domain, "rad", every=500, key=1)   # RAD on the "pde" term's points
    fit(residual, params, batch, optimizer, 5000, eval_every=100, callbacks=[rs])

Static samplers live in ``_static``; adaptive ones (RAD, RAR-D, R3 and the ``fit`` callback) in ``_adaptive``.
"""

from ._adaptive import ADAPTIVE_METHODS as ADAPTIVE_METHODS
from ._adaptive import Resampler as Resampler
from ._adaptive import r3 as r3
from ._adaptive import rad as rad
from ._adaptive import rad_log_density as rad_log_density
from ._adaptive import rar_d as rar_d
from ._static import METHODS as METHODS
from ._static import point_set_seed as point_set_seed
from ._static import sample as sample

__all__ = [
    "ADAPTIVE_METHODS",
    "METHODS",
    "Resampler",
    "point_set_seed",
    "r3",
    "rad",
    "rad_log_density",
    "rar_d",
    "sample",
]
