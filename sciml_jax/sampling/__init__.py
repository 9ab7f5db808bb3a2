"""Collocation batches: fixed-shape point arrays per point set, drawn on the host from a JAX key or int seed.

    batch = sample(Box((0.0, 0.0), (1.0, 1.0)), {"interior": 256, "boundary": 64}, "sobol", key)
    batch["interior"].shape   # (256, 2), dtype jnp.result_type(float)

Static samplers live in ``_static``; adaptive ones (RAD, RAR-D, R3) will sit beside them.
"""

from ._static import METHODS as METHODS
from ._static import point_set_seed as point_set_seed
from ._static import sample as sample

__all__ = ["METHODS", "point_set_seed", "sample"]
