"""Computational domains and their point sets.

A domain is a frozen (hashable) dataclass with named point sets (``"interior"``, ``"boundary"`` and, for
space-time domains, ``"initial"``) and named boundary parts (``"boundary:<part>"``: box faces ``x0_lo``/``left``,
polygon edges ``edge<i>``, the disk's ``circle``, CSG operand parts ``a.<part>``, and parts defined by predicates
with ``with_parts``). ``domain.sample(where, n, method, seed, normals=False)`` returns float64 numpy points
``(n, dim)`` drawn uniformly (i.i.d.) or quasi-randomly (Sobol, Halton, Latin hypercube via ``scipy.stats.qmc``),
with outward unit normals ``(n, dim)`` on boundary sets when ``normals=True``; ``contains`` tests membership,
``normals`` gives the normals at given boundary points, ``measure`` the length/area/volume, ``grid`` deterministic
evaluation points. Time is the last coordinate. Domains combine with ``|``, ``&`` and ``-`` (Union, Intersection,
Difference).

    sq = Box((0.0, 0.0), (1.0, 2.0))
    xb = sq.sample("boundary", 64, "sobol", seed=0)       # (64, 2), faces in proportion to their length
    xl, nl = sq.sample("boundary:left", 16, "sobol", seed=0, normals=True)   # nl == (-1, 0)
    heat = SpaceTime(Interval(0.0, 1.0), 0.0, 0.5)
    x0 = heat.sample("initial", 32, "halton", seed=1)     # (32, 2), last column == 0.0
    plate = Box((-1.0, -1.0), (1.0, 1.0)) - Disk((0.0, 0.0), 0.5)   # a square plate with a hole
    xh, nh = plate.sample("boundary:b", 32, "sobol", seed=2, normals=True)  # the hole; normals point to its centre
    L = LShape()                                          # (-1, 1)^2 minus [0, 1) x (-1, 0], area 3
"""

from ._csg import Difference as Difference
from ._csg import Intersection as Intersection
from ._csg import Union as Union
from ._domain import Domain as Domain
from ._polygon import LShape as LShape
from ._polygon import Polygon as Polygon
from ._shapes import Box as Box
from ._shapes import Disk as Disk
from ._shapes import Interval as Interval
from ._shapes import SpaceTime as SpaceTime
from ._unit import METHODS as METHODS

__all__ = [
    "METHODS",
    "Box",
    "Difference",
    "Disk",
    "Domain",
    "Intersection",
    "Interval",
    "LShape",
    "Polygon",
    "SpaceTime",
    "Union",
]
