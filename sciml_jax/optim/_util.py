"""Small helpers shared by the optimizer states."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def param_dtype(params: Any) -> Any:
    """The common float dtype of the parameter leaves (JAX's default float when there are none)."""
    leaves = jax.tree.leaves(params)
    return jnp.result_type(*[x.dtype for x in leaves]) if leaves else jnp.result_type(float)
