"""Optimizers as optax transforms (``GradientTransformationExtraArgs``) and the name registry used by configs.

Extra arguments of ``update`` (passed by ``sciml_jax.train.fit``): ``value``, ``grad``, ``value_fn`` (θ ↦ L(θ))
and ``residual_fn`` (θ ↦ r(θ)) at the current batch.
"""

from ._bfgs import BFGSState as BFGSState
from ._bfgs import ScaleByBFGSState as ScaleByBFGSState
from ._bfgs import SSBFGSState as SSBFGSState
from ._bfgs import SSBroydenState as SSBroydenState
from ._bfgs import bfgs as bfgs
from ._bfgs import scale_by_bfgs as scale_by_bfgs
from ._bfgs import ssbfgs as ssbfgs
from ._bfgs import ssbroyden as ssbroyden
from ._hybrid import REASON_BITS as REASON_BITS
from ._hybrid import AfterStepsState as AfterStepsState
from ._hybrid import Context as Context
from ._hybrid import CurvatureState as CurvatureState
from ._hybrid import GradNormState as GradNormState
from ._hybrid import PlateauState as PlateauState
from ._hybrid import Criterion as Criterion
from ._hybrid import FunctionCriterion as FunctionCriterion
from ._hybrid import HybridState as HybridState
from ._hybrid import after_steps as after_steps
from ._hybrid import curvature_model as curvature_model
from ._hybrid import grad_norm_below as grad_norm_below
from ._hybrid import hybrid as hybrid
from ._hybrid import on_plateau as on_plateau
from ._hybrid import reason_names as reason_names
from ._info import events_from_info as events_from_info
from ._info import logged_info as logged_info
from ._lbfgs import LBFGSState as LBFGSState
from ._lbfgs import lbfgs as lbfgs
from ._least_squares import PRECONDITIONERS as PRECONDITIONERS
from ._least_squares import SOLVERS as SOLVERS
from ._least_squares import ENGDState as ENGDState
from ._least_squares import NystromFactors as NystromFactors
from ._least_squares import LeastSquaresState as LeastSquaresState
from ._least_squares import NewtonState as NewtonState
from ._least_squares import damped_gn_direction as damped_gn_direction
from ._least_squares import engd as engd
from ._least_squares import gauss_newton as gauss_newton
from ._least_squares import levenberg_marquardt as levenberg_marquardt
from ._least_squares import newton as newton
from ._least_squares import nystrom_factors as nystrom_factors
from ._registry import criterion as criterion
from ._registry import get as get
from ._registry import names as names
from ._registry import options as options
from ._registry import register as register
from ._registry import schedule as schedule
