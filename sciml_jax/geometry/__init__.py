"""Computational domains and their point sets.

A domain is a frozen (hashable) dataclass with named point sets (``"interior"``, ``"boundary"`` and, for
space-time domains, ``"initial"``). ``domain.sample(where, n, method, seed)`` returns float64 numpy points
``(n, dim)`` drawn uniformly (i.i.d.) or quasi-randomly (Sobol, Halton, Latin hypercube via ``scipy.stats.qmc``);
``contains`` tests membership, ``grid`` gives deterministic evaluation points. Time is the last coordinate.

    sq = Box((0.0, 0.0), (1.0, 2.0))
    xb = sq.sample("boundary", 64, "sobol", seed=0)       # (64, 2), faces in proportion to their length
    heat = SpaceTime(Interval(0.0, 1.0), 0.0, 0.5)
    x0 = heat.sample("initial", 32, "halton", seed=1)     # (32, 2), last column == 0.0
"""

from ._domain import Domain as Domain
from ._shapes import Box as Box
from ._shapes import Disk as Disk
from ._shapes import Interval as Interval
from ._shapes import SpaceTime as SpaceTime
from ._unit import METHODS as METHODS

__all__ = ["METHODS", "Box", "Disk", "Domain", "Interval", "SpaceTime"]
