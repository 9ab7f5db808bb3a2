"""Residual core: the weighted residual vector r(θ), loss, per-term metrics and errors."""

from ._residual import Causal as Causal
from ._residual import CausalMinWeight as CausalMinWeight
from ._residual import ErrorMetric as ErrorMetric
from ._residual import Residual as Residual
from ._residual import UnknownValue as UnknownValue
from ._residual import metrics as metrics
from ._residual import rel_l2 as rel_l2
from ._residual import residual as residual
from ._marching import LocalTime as LocalTime
from ._marching import MarchingError as MarchingError
from ._marching import TimeWindows as TimeWindows
from ._marching import WindowedModel as WindowedModel
from ._marching import marching_error as marching_error
from ._operator import OperatorRelL2 as OperatorRelL2
from ._operator import OperatorResidual as OperatorResidual
from ._operator import OperatorTerm as OperatorTerm
from ._operator import operator_batch as operator_batch
from ._operator import operator_rel_l2 as operator_rel_l2
