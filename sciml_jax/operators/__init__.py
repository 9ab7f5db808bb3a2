"""Differential operators on point functions.

An operator takes a point function ``f: (d,) -> out`` (usually a model at fixed parameters,
``lambda y: apply(params, y)``) and returns a point function of one point ``x: (d,)``; vmap it over a ``(n, d)``
array of points. ``dims`` restricts an operator to some coordinates, e.g. the spatial ones of a space-time point
whose last coordinate is time. Everything returned is jit/vmap/grad/jvp compatible.

    lap_u = laplacian(lambda y: apply(params, y))          # x -> Delta u(x)
    u_t = time_derivative(lambda y: apply(params, y))      # x -> du/dt(x)
    lap_x = laplacian(u, dims=tuple(range(d - 1)))         # spatial Laplacian of a space-time u
"""

from ._differential import divergence as divergence
from ._differential import grad as grad
from ._differential import hessian as hessian
from ._differential import partial as partial
from ._differential import time_derivative as time_derivative
from ._laplacian import LAPLACIAN_METHODS as LAPLACIAN_METHODS
from ._laplacian import auto_method as auto_method
from ._laplacian import biharmonic as biharmonic
from ._laplacian import laplacian as laplacian

__all__ = [
    "LAPLACIAN_METHODS",
    "auto_method",
    "biharmonic",
    "divergence",
    "grad",
    "hessian",
    "laplacian",
    "partial",
    "time_derivative",
]
