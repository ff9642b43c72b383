"""The placement problem as a small integer programme, solved exactly by HiGHS (scipy.optimize.milp).

Variables: replicas per pool. Minimise Σ cost·x subject to Σ tokens/s·x ≥ required, a total
replica range, and per-pool lower/upper bounds. ``greedy_min_cost`` is the documented fallback
used only when the solver fails (and the baseline the benchmark measures the MILP against).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

_CAPACITY_TOLERANCE = 1e-9
_SOLVER_MARGIN = 1e-6


class SolverFailed(RuntimeError):
    """HiGHS stopped without an answer (time or node limit, numerical trouble)."""


@dataclass(frozen=True)
class PoolTerms:
    """One pool's column: objective cost per replica, tokens/s per replica, replica bounds."""

    cost: float
    tokens_per_second: float
    lower: int
    upper: int


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
    if not total_min <= sum(replicas) <= total_max:
        return False
    return capacity(terms, replicas) >= required - _CAPACITY_TOLERANCE * max(1.0, required)


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
    result = milp(
        c=np.array(cost, dtype=float),
        constraints=LinearConstraint(np.vstack(rows), low, high),
        integrality=np.ones(n),
        bounds=Bounds([float(t.lower) for t in terms], [float(t.upper) for t in terms]),
        options={"mip_rel_gap": 1e-9, "time_limit": 20.0},
    )
    if result.status == 2:  # infeasible
        return None
    if result.x is None or result.status != 0:
        raise SolverFailed(f"HiGHS status {result.status}: {result.message}")
    return tuple(round(float(v)) for v in result.x)


def solve_min_cost(
    terms: Sequence[PoolTerms], required: float, total_min: int, total_max: int
) -> tuple[int, ...] | None:
    """The cheapest placement meeting ``required`` tokens/s, or ``None`` if none exists."""
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
    most = _milp([-t.tokens_per_second for t in terms], terms, None, total_min, total_max)
    if most is None:
        return None
    best = capacity(terms, most)
    slack = _CAPACITY_TOLERANCE * max(1.0, best)
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
