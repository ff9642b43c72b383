"""The placement problem as a small integer programme, solved exactly.

Variables: replicas per pool. Minimise Σ cost·x subject to Σ tokens/s·x ≥ required, a total
replica range, and per-pool lower/upper bounds. Instances with at most `ENUMERATION_LIMIT`
placements (two or three pools of a few nodes: the usual deployment) are solved by checking
every placement at once with numpy, which is exact and about a hundred times faster than
starting HiGHS; larger ones go to HiGHS (scipy.optimize.milp). Among equally cheap answers the
enumeration takes the one with the fewest replicas, then the first in pool order.
``greedy_min_cost`` is the documented fallback used only when the solver fails (and the
baseline the benchmark measures the MILP against).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CAPACITY_TOLERANCE = 1e-9
_SOLVER_MARGIN = 1e-6
ENUMERATION_LIMIT = 20_000
"""Instances with at most this many placements are solved by enumeration instead of HiGHS."""


class SolverFailed(RuntimeError):
    """HiGHS stopped without an answer (time or node limit, numerical trouble)."""


@dataclass(frozen=True)
class PoolTerms:
    """One pool's column: objective cost per replica, tokens/s per replica, replica bounds."""

    cost: float
    tokens_per_second: float
    lower: int
    upper: int
    least_if_used: int = 0
    """A pool that gets replicas gets at least this many (0 or 1: no such floor)."""


def capacity(terms: Sequence[PoolTerms], replicas: Sequence[int]) -> float:
    return math.fsum(t.tokens_per_second * x for t, x in zip(terms, replicas, strict=True))


def objective(terms: Sequence[PoolTerms], replicas: Sequence[int]) -> float:
    return math.fsum(t.cost * x for t, x in zip(terms, replicas, strict=True))


def is_feasible(
    terms: Sequence[PoolTerms],
    replicas: Sequence[int],
    required: float,
    total_min: int,
    total_max: int,
) -> bool:
    """Whether a placement satisfies every constraint (used to keep a tied current placement)."""
    if len(replicas) != len(terms):
        return False
    if any(not t.lower <= x <= t.upper for t, x in zip(terms, replicas, strict=True)):
        return False
    if any(0 < x < t.least_if_used for t, x in zip(terms, replicas, strict=True)):
        return False
    if not total_min <= sum(replicas) <= total_max:
        return False
    return capacity(terms, replicas) >= required - CAPACITY_TOLERANCE * max(1.0, required)


def _milp(
    cost: Sequence[float],
    terms: Sequence[PoolTerms],
    required: float | None,
    total_min: int,
    total_max: int,
) -> tuple[int, ...] | None:
    import numpy as np
    from scipy.optimize import Bounds, LinearConstraint, milp

    n = len(terms)
    if n == 0:
        return () if total_min <= 0 and (required is None or required <= 0) else None
    rows = [np.ones(n)]
    low = [float(total_min)]
    high = [float(total_max)]
    if required is not None and required > 0:
        rows.append(np.array([t.tokens_per_second for t in terms]))
        low.append(required)
        high.append(np.inf)
    # A pool with a floor when used is semi-integer (integrality 3): 0, or floor..upper; one
    # that must be used anyway (lower ≥ 1) simply starts at the floor.
    semi = [t.least_if_used > 1 and t.lower == 0 for t in terms]
    floors = [
        float(t.least_if_used) if s else float(max(t.lower, t.least_if_used if t.lower else 0))
        for t, s in zip(terms, semi, strict=True)
    ]
    uppers = [float(t.upper) for t in terms]
    if any(f > u for f, u, s in zip(floors, uppers, semi, strict=True) if not s):
        return None  # a pool that must be used cannot reach its floor
    # A semi-integer column whose floor is above its cap can only stay at 0.
    uppers = [0.0 if s and f > u else u for f, u, s in zip(floors, uppers, semi, strict=True)]
    floors = [0.0 if s and u == 0 else f for f, u, s in zip(floors, uppers, semi, strict=True)]
    result = milp(
        c=np.array(cost, dtype=float),
        constraints=LinearConstraint(np.vstack(rows), low, high),
        integrality=np.array([3 if s else 1 for s in semi]),
        bounds=Bounds(floors, uppers),
        options={"mip_rel_gap": 1e-9, "time_limit": 20.0},
    )
    if result.status == 2:  # infeasible
        return None
    if result.x is None or result.status != 0:
        raise SolverFailed(f"HiGHS status {result.status}: {result.message}")
    return tuple(round(float(v)) for v in result.x)


def _placements(terms: Sequence[PoolTerms], total_min: int, total_max: int) -> Any | None:
    """Every placement within the pools' bounds and the total range, as rows of an integer array;
    None when there are more than `ENUMERATION_LIMIT` (the MILP solves those)."""
    import numpy as np

    sizes = [max(0, t.upper - t.lower + 1) for t in terms]
    if math.prod(sizes) > ENUMERATION_LIMIT:
        return None
    if not terms:
        grid = np.zeros((1, 0), dtype=np.int64)
    else:
        axes = [np.arange(t.lower, t.upper + 1, dtype=np.int64) for t in terms]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(terms))
    totals = grid.sum(axis=1)
    keep = (totals >= total_min) & (totals <= total_max)
    for index, t in enumerate(terms):
        if t.least_if_used > 1:
            column = grid[:, index]
            keep &= (column == 0) | (column >= t.least_if_used)
    return grid[keep]


def _first_best(grid: Any, primary: Any, totals: Any) -> tuple[int, ...] | None:
    """The row with the least `primary` (within float noise), then fewest replicas, then first."""
    import numpy as np

    if len(grid) == 0:
        return None
    least = float(primary.min())
    near = primary <= least + 1e-12 * max(1.0, abs(least))
    candidates = np.flatnonzero(near)
    chosen = candidates[int(np.argmin(totals[candidates]))]
    return tuple(int(v) for v in grid[chosen])


def _enumerate_min_cost(
    terms: Sequence[PoolTerms], required: float, total_min: int, total_max: int
) -> tuple[bool, tuple[int, ...] | None]:
    """(whether the instance was small enough to enumerate, the exact answer)."""
    import numpy as np

    grid = _placements(terms, total_min, total_max)
    if grid is None:
        return False, None
    rates = np.array([t.tokens_per_second for t in terms], dtype=np.float64)
    costs = np.array([t.cost for t in terms], dtype=np.float64)
    capacity = grid @ rates if len(terms) else np.zeros(len(grid))
    enough = capacity >= required - CAPACITY_TOLERANCE * max(1.0, required)
    grid = grid[enough]
    cost = grid @ costs if len(terms) else np.zeros(len(grid))
    return True, _first_best(grid, cost, grid.sum(axis=1))


def solve_min_cost(
    terms: Sequence[PoolTerms], required: float, total_min: int, total_max: int
) -> tuple[int, ...] | None:
    """The cheapest placement meeting ``required`` tokens/s, or ``None`` if none exists."""
    enumerated, answer = _enumerate_min_cost(terms, required, total_min, total_max)
    if enumerated:
        return answer
    cost = [t.cost for t in terms]
    found = _milp(cost, terms, required, total_min, total_max)
    if found is None or is_feasible(terms, found, required, total_min, total_max):
        return found
    # HiGHS accepts a row up to its feasibility tolerance (1e-7) short, more than this module
    # allows a small demand: ask again with a margin above that tolerance.
    margin = _SOLVER_MARGIN * max(1.0, required)
    return _milp(cost, terms, required + margin, total_min, total_max)


def solve_max_capacity(
    terms: Sequence[PoolTerms], total_min: int, total_max: int
) -> tuple[int, ...] | None:
    """The most capacity the bounds allow, then the cheapest way to get it (two exact solves)."""
    import numpy as np

    grid = _placements(terms, total_min, total_max)
    if grid is not None:
        if len(grid) == 0:
            return None
        rates = np.array([t.tokens_per_second for t in terms], dtype=np.float64)
        costs = np.array([t.cost for t in terms], dtype=np.float64)
        served = grid @ rates if len(terms) else np.zeros(len(grid))
        top = float(served.max())
        grid = grid[served >= top - CAPACITY_TOLERANCE * max(1.0, top)]
        cost = grid @ costs if len(terms) else np.zeros(len(grid))
        return _first_best(grid, cost, grid.sum(axis=1))
    most = _milp([-t.tokens_per_second for t in terms], terms, None, total_min, total_max)
    if most is None:
        return None
    best = capacity(terms, most)
    slack = CAPACITY_TOLERANCE * max(1.0, best)
    cheapest = _milp([t.cost for t in terms], terms, best - slack, total_min, total_max)
    return most if cheapest is None else cheapest


def greedy_min_cost(
    terms: Sequence[PoolTerms], required: float, total_min: int, total_max: int
) -> tuple[int, ...] | None:
    """Fallback: fill the cheapest pool per token/s first, then the cheapest per replica to reach min.

    Not optimal (it overshoots when a big cheap replica is more than the last gap needs); the
    benchmark reports by how much.
    """
    replicas = [t.lower for t in terms]
    if sum(replicas) > total_max:
        return None
    by_token_price = sorted(
        (i for i, t in enumerate(terms) if t.tokens_per_second > 0),
        key=lambda i: (terms[i].cost / terms[i].tokens_per_second, terms[i].cost, i),
    )
    for i in by_token_price:
        while capacity(terms, replicas) < required and replicas[i] < terms[i].upper:
            if sum(replicas) >= total_max:
                break
            replicas[i] += 1
    by_replica_price = sorted(range(len(terms)), key=lambda i: (terms[i].cost, i))
    for i in by_replica_price:
        while sum(replicas) < total_min and replicas[i] < terms[i].upper:
            replicas[i] += 1
    if not is_feasible(terms, replicas, required, total_min, total_max):
        return None
    return tuple(replicas)


def greedy_max_capacity(
    terms: Sequence[PoolTerms], total_min: int, total_max: int
) -> tuple[int, ...] | None:
    """Fallback for the partial placement: the biggest replicas first, up to the replica limit."""
    replicas = [t.lower for t in terms]
    if sum(replicas) > total_max:
        return None
    by_size = sorted(
        range(len(terms)), key=lambda i: (-terms[i].tokens_per_second, terms[i].cost, i)
    )
    for i in by_size:
        while replicas[i] < terms[i].upper and sum(replicas) < total_max:
            replicas[i] += 1
    if sum(replicas) < total_min:
        return None
    return tuple(replicas)
