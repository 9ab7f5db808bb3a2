"""Analysis of the residual vector r(θ): Jacobian, empirical NTK with per-term blocks, Gauss-Newton and Hessian
matrices (dense and matrix-free), spectra (eigh / Lanczos) with condition numbers, spectral-bias diagnostics and
NTK trace-ratio loss weights.

    J = sj.analysis.jacobian(residual, params, batch)            # (N, P)
    K = sj.analysis.ntk(residual, params, batch)                 # K.K: (N, N); K.block("pde", "bc")
    s = sj.analysis.spectrum(K)                                  # eigenvalues (descending), condition_number, ...
    s = sj.analysis.spectrum(sj.analysis.ntk_matvec(residual, params, batch), k=10, size=N)   # matrix-free
"""

from ._jacobian import WeightsFromBatch as WeightsFromBatch
from ._jacobian import jacobian as jacobian
from ._jacobian import ntk_diagonal as ntk_diagonal
from ._jacobian import parameter_groups as parameter_groups
from ._jacobian import term_rows as term_rows
from ._jacobian import with_weights as with_weights
from ._ntk import NTK as NTK
from ._ntk import gauss_newton as gauss_newton
from ._ntk import gn_matvec as gn_matvec
from ._ntk import hessian as hessian
from ._ntk import hvp as hvp
from ._ntk import ntk as ntk
from ._ntk import ntk_matvec as ntk_matvec
from ._spectral_bias import ConditionRecorder as ConditionRecorder
from ._spectral_bias import SpectralRecorder as SpectralRecorder
from ._spectral_bias import fourier_projections as fourier_projections
from ._spectral_bias import linearized_gd as linearized_gd
from ._spectral_bias import mode_projections as mode_projections
from ._spectrum import LanczosResult as LanczosResult
from ._spectrum import Spectrum as Spectrum
from ._spectrum import lanczos as lanczos
from ._spectrum import spectrum as spectrum
from ._weights import NTKWeightCallback as NTKWeightCallback
from ._weights import ntk_trace_weights as ntk_trace_weights
from ._weights import ntk_weighting as ntk_weighting
from ._regression import regression_1d as regression_1d
from ._fits import fit_power_law as fit_power_law

_PLOTS = (
    "plot_spectrum",
    "plot_mode_decay",
    "plot_fourier_decay",
    "plot_condition_history",
    "plot_scaling",
    "plot_eigenvectors",
)


def __getattr__(name):  # plots load matplotlib on first use only, like sciml_jax.plotting
    if name in _PLOTS:
        from . import _plots

        return getattr(_plots, name)
    raise AttributeError(f"module 'sciml_jax.analysis' has no attribute {name!r}")
