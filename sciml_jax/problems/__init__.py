"""PDE problem zoo: manufactured and benchmark problems with exact or reference solutions.

A :class:`Problem` bundles a domain, named fields, named residual :class:`Term` s (each ``fn(u, x[, c])``
evaluated pointwise on one batch entry, the model ``u`` as named point functions, ``c`` the coefficients and
unknowns), the exact solution, default collocation counts and a fixed evaluation grid. A problem is a pytree: its
coefficients are array leaves, so changing them (``prob.replace(coeffs={"k": 3.0})``) recompiles nothing.
Problems are built by name with validated options, or by hand (see docs/OWN_PROBLEM.md):

    prob = get("poisson_1d", k=4)            # or poisson_1d(k=4)
    prob.residual_at("pde", prob.exact, x)   # ~ 0 for x: (1,)
    names()                                  # all registered problems
    print(describe("burgers_1d"))            # docstring and options with defaults

Zoo: poisson_1d, poisson_nd, helmholtz_2d, biharmonic_1d, biharmonic_2d, sharp_gradient_2d (stationary);
heat_1d, convection_1d, reaction_1d, wave_1d, burgers_1d (space-time, time is the last coordinate);
kovasznay_2d (steady Navier-Stokes, fields u, v, p), helmholtz_mixed_2d (Dirichlet/Neumann faces), poisson_lshape
(re-entrant corner, finite-difference reference), allen_cahn_1d (spectral ETDRK4 reference), burgers_inverse_1d
(identify the viscosity from observations).
"""

from ._conditions import dirichlet as dirichlet
from ._data import Observations as Observations
from ._data import load_observations as load_observations
from ._data import observations_from_arrays as observations_from_arrays
from ._conditions import initial as initial
from ._conditions import neumann as neumann
from ._conditions import periodic as periodic
from ._conditions import robin as robin
from ._core import Fields as Fields
from ._core import Meta as Meta
from ._core import Problem as Problem
from ._core import Term as Term
from ._core import Unknown as Unknown
from ._core import point_sets as point_sets
from ._evolution import burgers_1d as burgers_1d
from ._evolution import convection_1d as convection_1d
from ._evolution import heat_1d as heat_1d
from ._evolution import reaction_1d as reaction_1d
from ._evolution import wave_1d as wave_1d
from ._allen_cahn import allen_cahn_1d as allen_cahn_1d
from ._flow import kovasznay_2d as kovasznay_2d
from ._inverse import burgers_inverse_1d as burgers_inverse_1d
from ._lshape import poisson_lshape as poisson_lshape
from ._mixed import helmholtz_mixed_2d as helmholtz_mixed_2d
from ._registry import build as build
from ._registry import describe as describe
from ._registry import from_factory as from_factory
from ._registry import get as get
from ._registry import names as names
from ._registry import options as options
from ._registry import register as register
from ._stationary import biharmonic_1d as biharmonic_1d
from ._stationary import biharmonic_2d as biharmonic_2d
from ._stationary import helmholtz_2d as helmholtz_2d
from ._stationary import poisson_1d as poisson_1d
from ._stationary import poisson_nd as poisson_nd
from ._stationary import sharp_gradient_2d as sharp_gradient_2d

for _factory in (
    poisson_1d,
    poisson_nd,
    helmholtz_2d,
    biharmonic_1d,
    biharmonic_2d,
    sharp_gradient_2d,
    heat_1d,
    convection_1d,
    reaction_1d,
    wave_1d,
    burgers_1d,
    kovasznay_2d,
    allen_cahn_1d,
    poisson_lshape,
    helmholtz_mixed_2d,
    burgers_inverse_1d,
):
    register(_factory.__name__, _factory)
del _factory

__all__ = [
    "Fields",
    "Meta",
    "Observations",
    "Problem",
    "Term",
    "Unknown",
    "dirichlet",
    "initial",
    "load_observations",
    "neumann",
    "observations_from_arrays",
    "periodic",
    "point_sets",
    "robin",
    "biharmonic_1d",
    "build",
    "biharmonic_2d",
    "burgers_1d",
    "convection_1d",
    "describe",
    "from_factory",
    "get",
    "heat_1d",
    "helmholtz_2d",
    "names",
    "options",
    "poisson_1d",
    "poisson_nd",
    "reaction_1d",
    "register",
    "sharp_gradient_2d",
    "wave_1d",
    "kovasznay_2d",
    "allen_cahn_1d",
    "poisson_lshape",
    "helmholtz_mixed_2d",
    "burgers_inverse_1d",
]
