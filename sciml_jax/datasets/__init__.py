"""Operator-learning data sets made in the package (no downloads), reproducible from a JAX key or an int seed.

    data = antiderivative(key=0)                 # u ~ GRF(l = 0.2) -> s(x) = int_0^x u   (Lu et al. 2021)
    data = diffusion_reaction(key=0)             # source u(x) -> s(x, t) of s_t = D s_xx + k s^2 + u
    data = burgers(key=0, nu=0.1)                # u0 -> u(., 1) of periodic Burgers (Li et al. 2021)
    z, s = data.deeponet_entry("train")          # (B Q, m + d), (B Q,): per-point DeepONet data term
    U, Y, S = data.deeponet_grid_entry("test")   # (B, m), (B, Q, d), (B, Q): for sj.nn.deeponet_grid
    a, s = data.fno_entry("train")               # (B, m), (B, m): grid-to-grid (FNO1d)

Each generator has its own solver, tested against an independent one: :func:`spline_antiderivative` (exact
integral of the spline interpolant), :func:`solve_diffusion_reaction` (Crank-Nicolson + Newton finite
differences) and :func:`burgers_cole_hopf` (exact periodic Cole-Hopf in Fourier space). Sampling runs on the host
(numpy/scipy, float64); batch entries are converted to ``jnp.result_type(float)``.
"""

from ._antiderivative import antiderivative as antiderivative
from ._antiderivative import spline_antiderivative as spline_antiderivative
from ._burgers import burgers as burgers
from ._burgers import burgers_cole_hopf as burgers_cole_hopf
from ._core import OperatorDataset as OperatorDataset
from ._core import OperatorSplit as OperatorSplit
from ._diffusion_reaction import diffusion_reaction as diffusion_reaction
from ._diffusion_reaction import solve_diffusion_reaction as solve_diffusion_reaction
from ._grf import grf as grf
from ._grf import interpolate as interpolate
from ._grf import periodic_rbf_kernel as periodic_rbf_kernel
from ._grf import rbf_kernel as rbf_kernel

__all__ = [
    "OperatorDataset",
    "OperatorSplit",
    "antiderivative",
    "burgers",
    "burgers_cole_hopf",
    "diffusion_reaction",
    "grf",
    "interpolate",
    "periodic_rbf_kernel",
    "rbf_kernel",
    "solve_diffusion_reaction",
    "spline_antiderivative",
]
