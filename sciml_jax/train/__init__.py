"""Training loop: jitted scan chunks, history, checkpoints, resume."""

from ._compile import cache_info as cache_info
from ._compile import clear_cache as clear_cache
from ._fit import CACHED_KEY as CACHED_KEY
from ._fit import FitResult as FitResult
from ._fit import fit as fit
from ._fit import initial_carry as initial_carry
from ._checkpoint import load_checkpoint as load_checkpoint
from ._fit import make_step as make_step
from ._checkpoint import save_checkpoint as save_checkpoint
from ._checkpoint import CheckpointError as CheckpointError
from ._checkpoint import has_checkpoint as has_checkpoint
from ._checkpoint import read_checkpoint_meta as read_checkpoint_meta
from ._faults import Interrupted as Interrupted
from ._history import History as History
from ._sharding import DataParallel as DataParallel
from ._sharding import data_parallel as data_parallel
from ._sharding import replicate as replicate
from ._sharding import shard_batch as shard_batch
from ._stages import fit_stages as fit_stages
from ._windows import fit_windows as fit_windows
from ._summary import settled_index as settled_index
from ._summary import summary_stats as summary_stats
from ._summary import time_to_level as time_to_level
