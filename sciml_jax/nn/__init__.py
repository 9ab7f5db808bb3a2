"""Neural networks as point functions, and their functional ``(params, apply)`` form.

    model = MLP(2, 1, width=32, depth=3, activation="tanh", key=jax.random.key(0))
    params, apply = functional(model)        # params: trainable arrays only; apply(params, x: (2,)) -> ()
    u = jax.vmap(apply, in_axes=(None, 0))(params, xs)   # (n,)

Frozen arrays (the Fourier matrix B) are kept out of ``params`` by wrapping them in :class:`Frozen`.

Neural operators follow the same convention: :class:`DeepONet` maps one point z = concat(u_sensors, y),
:class:`FNO1d` one input function on a grid; :func:`deeponet_grid` is the batched DeepONet evaluation.
"""

from ._functional import Apply as Apply
from ._functional import from_nnx as from_nnx
from ._functional import functional as functional
from ._functional import num_params as num_params
from ._functional import ravel as ravel
from ._mlp import ACTIVATIONS as ACTIVATIONS
from ._mlp import MLP as MLP
from ._mlp import FourierFeatures as FourierFeatures
from ._mlp import Frozen as Frozen
from ._operator import DeepONet as DeepONet
from ._operator import FNO1d as FNO1d
from ._operator import deeponet_grid as deeponet_grid
from ._wrappers import Embedded as Embedded
from ._wrappers import OutputTransform as OutputTransform
from ._wrappers import PeriodicEmbedding as PeriodicEmbedding

__all__ = [
    "ACTIVATIONS",
    "Apply",
    "DeepONet",
    "Embedded",
    "FNO1d",
    "FourierFeatures",
    "Frozen",
    "MLP",
    "OutputTransform",
    "PeriodicEmbedding",
    "deeponet_grid",
    "from_nnx",
    "functional",
    "num_params",
    "ravel",
]
