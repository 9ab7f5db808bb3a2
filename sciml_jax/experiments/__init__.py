"""Experiments as functions of a config; each writes a report directory (markdown, PNG, JSON, CSV)."""

from ._train import Setup as Setup
from ._train import LoadedRun as LoadedRun
from ._train import build as build
from ._train import load_run as load_run
from ._train import run as run
from ._train import run_config as run_config
from ._train import set_dtype as set_dtype
from ._train import check_options as check_options
from ._train import names as names
from ._train import register as register
from . import _spectral as _spectral  # registers experiments
from . import _sampling as _sampling  # registers sharp_gradient_sampling, biharmonic_stiffness
from . import _ablation as _ablation  # registers switch_ablation
from . import _operator as _operator  # registers operator_learning
from . import _bench as _bench  # registers bench
from ._bench import WallTimeBudget as WallTimeBudget
