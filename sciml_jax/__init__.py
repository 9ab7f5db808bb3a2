"""sciml_jax: a functional JAX toolkit for training physics-informed networks and understanding why they train.

Everything is derived from one object, the weighted residual vector r(θ) (``sciml_jax.pinn.residual``):
loss ½‖r‖², gradient Jᵀr, Gauss-Newton matrix JᵀJ, empirical NTK JJᵀ.

Subpackages: geometry, sampling, nn, operators, problems, pinn, optim, analysis, train; ``datasets``,
``plotting``, ``experiments``, ``config`` and ``load_run`` are imported on first use (they pull in scipy's
interpolation and matplotlib, which most programs never need).
"""

from . import analysis as analysis
from . import geometry as geometry
from . import nn as nn
from . import operators as operators
from . import optim as optim
from . import pinn as pinn
from . import problems as problems
from . import sampling as sampling
from . import train as train

__version__ = "0.1.0"


def __getattr__(name):  # lazy: matplotlib and the experiment runner are only loaded when asked for
    import importlib

    if name in ("datasets", "plotting", "experiments", "config", "cli"):
        return importlib.import_module(f".{name}", __name__)
    if name == "load_run":  # a trained model back from a run directory (lives with the experiment runner)
        return importlib.import_module(".experiments", __name__).load_run
    raise AttributeError(f"module 'sciml_jax' has no attribute {name!r}")
