"""Optimizers as optax transforms, and the name registry used by configs."""

from ._registry import get as get
from ._registry import names as names
from ._registry import options as options
from ._registry import register as register
from ._registry import schedule as schedule
