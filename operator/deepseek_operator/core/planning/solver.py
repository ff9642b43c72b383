"""The placement problem as a small integer programme, solved exactly.

Variables: replicas per pool. Minimise Σ cost·x subject to Σ tokens/s·x ≥ required, a total
replica range, per-pool lower/upper bounds, and a floor for a pool that is used at all. A
depth-first branch-and-bound in pure Python solves it (`_branch_and_bound_min_cost`): it
bounds each node by the fractional cover of the missing capacity, priced for the replica cap
when that binds, and returns exactly the placement an enumeration of every placement would pick
(among equally cheap answers, within 1e-12: the fewest replicas, then the first in enumeration
order, i.e. the lexicographically smallest). The planner's instances take it well under a
millisecond, where starting HiGHS took several. Past `BRANCH_AND_BOUND_NODES` nodes (degenerate
ties it cannot tell apart) it gives up, and the instance goes to the enumeration when it has at
most `ENUMERATION_LIMIT` placements, else to HiGHS (scipy.optimize.milp), which agrees on cost
but may pick another of several equally cheap placements. Answers are memoised (`MEMO_SIZE`).
``greedy_min_cost`` is the documented fallback used only when the solver fails (and the
baseline the benchmark measures the exact answer against).
"""

from __future__ import annotations

import math
import sys
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
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


BRANCH_AND_BOUND_NODES = 5_000
"""Node budget of the exact branch-and-bound that solves instances too big to enumerate; one
that needs more goes to HiGHS. 0 sends every such instance to HiGHS (the benchmark's baseline)."""
_PRUNE_SLACK = 1e-9
"""A node is cut only when its lower bound is this much (relative) above the incumbent's cost,
so that rounding in the bound never cuts a tie."""


class _OutOfNodes(Exception):
    """The branch-and-bound used up its node budget (HiGHS takes over)."""


def _domains(terms: Sequence[PoolTerms]) -> list[tuple[int, ...]] | None:
    """The replica counts each pool may take, ascending (None when some pool has none)."""
    domains = []
    for t in terms:
        if t.upper < t.lower:
            return None
        start = max(t.lower, t.least_if_used) if t.least_if_used > 1 else t.lower
        values = tuple(range(max(start, 1) if t.lower == 0 else start, t.upper + 1))
        if t.lower == 0:
            values = (0, *values)
        if not values:
            return None
        domains.append(values)
    return domains


def _needed(
    terms: Sequence[PoolTerms], domains: list[tuple[int, ...]], floor: float
) -> list[tuple[int, ...]] | None:
    """The domains without the counts too small to reach ``floor`` even with every other pool
    full (a pool the others cannot do without then starts at what it must give); None when a
    pool is left with none. Only impossible counts go, with a margin for rounding; raising a
    pool's least does not change what the others hold at most, so one pass is enough."""
    reach = 1e-9 * max(1.0, abs(floor))
    full = sum([t.tokens_per_second * d[-1] for t, d in zip(terms, domains, strict=True)])
    if full - floor >= reach + max(
        (t.tokens_per_second * d[-1] for t, d in zip(terms, domains, strict=True)), default=0.0
    ):
        return domains  # no pool is needed: the others, full, cover the floor without it
    result = list(domains)
    for j, (t, values) in enumerate(zip(terms, domains, strict=True)):
        need = floor - reach - (full - t.tokens_per_second * values[-1])
        if need <= 0:
            continue
        if t.tokens_per_second <= 0:
            return None
        least = math.ceil(need / t.tokens_per_second - 1e-9)
        if least > values[0]:
            kept = tuple(v for v in values if v >= least)
            if not kept:
                return None
            result[j] = kept
    return result


def _branch_and_bound_min_cost(
    terms: Sequence[PoolTerms], floor: float, total_min: int, total_max: int, nodes: int
) -> tuple[int, ...] | None:
    """The placement the enumeration would pick (capacity ≥ ``floor``; least cost within 1e-12,
    then fewest replicas, then the first in pool order), found by branch-and-bound.

    Pools alike per replica (same cost and rate, no floor when used) are searched as one pool
    holding all their replicas: which of them take the replicas changes neither cost nor count,
    only the order, and the search would otherwise try every way of sharing a tie. Each
    placement found is then split among them as the tie rule prefers: the later pools first.
    Raises `_OutOfNodes` after ``nodes`` nodes.
    """
    groups: dict[tuple[float, float], list[int]] = {}
    for i, t in enumerate(terms):
        if t.least_if_used <= max(t.lower, 1) and t.upper >= t.lower:  # lower..upper, all
            groups.setdefault((t.cost, t.tokens_per_second), []).append(i)
    merged = [members for members in groups.values() if len(members) > 1]
    if not merged:
        candidates = _search_min_cost_candidates(terms, floor, total_min, total_max, nodes)
    else:
        columns: list[list[int]] = []
        reduced: list[PoolTerms] = []
        seen: set[int] = set()
        for i, t in enumerate(terms):
            if i in seen:
                continue
            members = next((m for m in merged if m[0] == i), [i])
            seen.update(members)
            columns.append(members)
            reduced.append(
                PoolTerms(
                    t.cost,
                    t.tokens_per_second,
                    sum(terms[j].lower for j in members),
                    sum(terms[j].upper for j in members),
                )
                if len(members) > 1
                else t
            )
        candidates = []
        for _, total, grouped in _search_min_cost_candidates(
            reduced, floor, total_min, total_max, nodes
        ):
            placement = [0] * len(terms)
            for members, x in zip(columns, grouped, strict=True):
                if len(members) == 1:
                    placement[members[0]] = x
                    continue
                extra = x - sum(terms[j].lower for j in members)
                for i in reversed(members):
                    placement[i] = terms[i].lower + min(terms[i].upper - terms[i].lower, extra)
                    extra -= placement[i] - terms[i].lower
            value = sum([t.cost * x for t, x in zip(terms, placement, strict=True)])
            candidates.append((value, total, tuple(placement)))
    if not candidates:
        return None
    best = min(value for value, _, _ in candidates)
    near = best + 1e-12 * max(1.0, abs(best))
    return min((total, placement) for value, total, placement in candidates if value <= near)[1]


def _search_min_cost_candidates(
    terms: Sequence[PoolTerms], floor: float, total_min: int, total_max: int, nodes: int
) -> list[tuple[float, int, tuple[int, ...]]]:
    """(cost, replicas, placement) of every placement with capacity ≥ ``floor`` within a hair
    (1e-12 + `_PRUNE_SLACK`, relative) of the least cost, found by depth-first branch-and-bound.

    The bound at a node is the largest of three relaxations of what is left: the fractional
    cover of the missing capacity (the LP without the replica total, or, when the replica cap
    binds, its Lagrangian with a price λ per replica: ``cover(cost + λ) − λ·room``), the
    cheapest replicas to reach ``total_min``, and the remaining pools at their least. Pools are
    branched on in order of (cost + λ) per token/s. A node that cannot reach the floor within
    the cap is cut. Raises `_OutOfNodes` after ``nodes`` nodes.
    """
    domains = _domains(terms)
    if domains is None:
        return []
    domains = _needed(terms, domains, floor)
    if domains is None:
        return []
    n = len(terms)
    lows = [d[0] for d in domains]
    highs = [d[-1] for d in domains]
    price = _replica_price(
        [t.cost for t in terms],
        [t.tokens_per_second for t in terms],
        lows,
        highs,
        floor - math.fsum(t.tokens_per_second * x for t, x in zip(terms, lows, strict=True)),
        total_max - sum(lows),
    )
    order = sorted(
        range(n),
        key=lambda i: (
            (0, (terms[i].cost + price) / terms[i].tokens_per_second, i)
            if terms[i].tokens_per_second > 0
            else (1, 0.0, i)
        ),
    )
    cost = [terms[i].cost for i in order]
    priced = [c + price for c in cost]
    rate = [terms[i].tokens_per_second for i in order]
    dom = [domains[i] for i in order]
    lo = [lows[i] for i in order]
    hi = [highs[i] for i in order]
    ratio = [c / r if r > 0 else math.inf for c, r in zip(priced, rate, strict=True)]
    # Suffix sums (from position k on) of what the pools hold at their least, and prefix sums
    # (before position k) of what they add from least to most, for the fractional cover.
    lo_cost = [0.0] * (n + 1)
    lo_priced = [0.0] * (n + 1)
    lo_cap = [0.0] * (n + 1)
    lo_count = [0] * (n + 1)
    hi_count = [0] * (n + 1)
    cheapest = [math.inf] * (n + 1)
    for k in range(n - 1, -1, -1):
        lo_cost[k] = lo_cost[k + 1] + cost[k] * lo[k]
        lo_priced[k] = lo_priced[k + 1] + priced[k] * lo[k]
        lo_cap[k] = lo_cap[k + 1] + rate[k] * lo[k]
        lo_count[k] = lo_count[k + 1] + lo[k]
        hi_count[k] = hi_count[k + 1] + hi[k]
        cheapest[k] = min(cheapest[k + 1], cost[k])
    extra_cap = [0.0] * (n + 1)
    extra_cost = [0.0] * (n + 1)
    for k in range(n):
        extra_cap[k + 1] = extra_cap[k] + rate[k] * (hi[k] - lo[k])
        extra_cost[k + 1] = extra_cost[k] + priced[k] * (hi[k] - lo[k])
    scale = max(1.0, abs(floor))
    reach = 1e-9 * scale  # rounding allowance in the cumulative capacities
    positive = sum(r > 0 for r in rate)  # pools with throughput come first in the order

    def cover(k: int, missing: float) -> float:
        """Least priced cost of `missing` tokens/s from pools k.. above their least
        (fractional)."""
        if missing <= 0:
            return 0.0
        if k >= positive:
            return 0.0 if missing <= reach else math.inf
        target = extra_cap[k] + missing
        if target >= extra_cap[positive]:
            if target > extra_cap[positive] + reach:
                return math.inf
            return extra_cost[positive] - extra_cost[k]
        m = bisect_left(extra_cap, target, k + 1, positive + 1) - 1
        return extra_cost[m] - extra_cost[k] + (target - extra_cap[m]) * ratio[m]

    # For each position k, the extras of pools k.. biggest replica first: the most capacity a
    # number of further replicas can add (a node that cannot reach the floor within
    # ``total_max`` is cut, however cheap its fractional cover). Built on first use, and only
    # needed where the cap is below what the pools hold.
    by_size: dict[int, tuple[list[int], list[float], list[float]]] = {}

    def most(k: int, room: int) -> float:
        """Most capacity `room` more replicas add on pools k.. above their least."""
        if k >= n or room <= 0:
            return 0.0
        table = by_size.get(k)
        if table is None:
            counts, caps, rates = [0], [0.0], []
            for j in sorted(range(k, n), key=lambda j: -rate[j]):
                counts.append(counts[-1] + hi[j] - lo[j])
                caps.append(caps[-1] + rate[j] * (hi[j] - lo[j]))
                rates.append(rate[j])
            table = by_size[k] = (counts, caps, rates)
        counts, caps, rates = table
        if room >= counts[-1]:
            return caps[-1]
        m = bisect_left(counts, room) - 1
        return caps[m] + (room - counts[m]) * rates[m]

    capped = total_max < hi_count[0]
    rates_in_order = [t.tokens_per_second for t in terms]
    costs_in_order = [t.cost for t in terms]
    best = math.inf  # least exact cost of a complete placement so far
    limit = sys.float_info.max  # nodes whose bound is above this are cut (inf: infeasible)
    found: list[tuple[float, int, tuple[int, ...]]] = []
    chosen = [0] * n
    left = nodes

    def leaf(k: int, spent: float, served: float, count: int) -> None:
        """Pools k.. at their least: record the placement."""
        nonlocal best, limit
        total = count + lo_count[k]
        if not total_min <= total <= total_max:
            return
        if served + lo_cap[k] < floor - reach or spent + lo_cost[k] > limit * (1 + 1e-9):
            return  # short of the floor, or dearer than the limit, beyond any rounding
        for j in range(k, n):
            chosen[j] = lo[j]
        placement = [0] * n
        for position, i in enumerate(order):
            placement[i] = chosen[position]
        # Sums in pool order, as the enumeration adds them.
        if sum([r * x for r, x in zip(rates_in_order, placement, strict=True)]) < floor:
            return
        value = sum([c * x for c, x in zip(costs_in_order, placement, strict=True)])
        if value > limit:
            return
        found.append((value, total, tuple(placement)))
        if value < best:
            best = value
            limit = best + (1e-12 + _PRUNE_SLACK) * max(1.0, abs(best))

    def bound(k: int, spent: float, served: float, count: int) -> float:
        """Lower bound on any placement that fixes pools ..k-1 this way."""
        if count + lo_count[k] > total_max or count + hi_count[k] < total_min:
            return math.inf
        missing = floor - served - lo_cap[k]
        if (
            capped
            and missing > reach
            and missing > most(k, total_max - count - lo_count[k]) + reach
        ):
            return math.inf
        least = spent + lo_cost[k]
        value = spent + lo_priced[k] + cover(k, missing) - price * (total_max - count)
        short = total_min - count - lo_count[k]
        if short > 0:
            least = max(least, spent + lo_cost[k] + short * cheapest[k])
        return max(value, least)

    def branch(k: int, spent: float, served: float, count: int) -> None:
        nonlocal left
        left -= 1
        if left < 0:
            raise _OutOfNodes
        if k == n:
            leaf(k, spent, served, count)
            return
        if served + lo_cap[k] >= floor and count + lo_count[k] >= total_min:
            # Covered with every remaining pool at its least: any other completion costs at
            # least as much and has more replicas.
            leaf(k, spent, served, count)
            return
        c, priced_c, r, values = cost[k], priced[k], rate[k], dom[k]
        missing = floor - served - lo_cap[k + 1]
        enough = math.ceil(missing / r) if r > 0 and missing > 0 else 0
        start = min(bisect_left(values, enough), len(values) - 1)
        rest = lo_priced[k + 1] - price * (total_max - count)
        # Downwards from the value that covers what is missing (with the rest at its least),
        # the priced cover bound does not fall below that value's neighbour; upwards from it,
        # the plain cost rises by this pool's cost per replica: stop at the first bound above
        # the limit.
        for index in range(start, -1, -1):
            x = values[index]
            if spent + priced_c * x + rest + cover(k + 1, missing - r * x) > limit:
                if index < start:
                    break
                continue
            if bound(k + 1, spent + c * x, served + r * x, count + x) > limit:
                continue
            chosen[k] = x
            branch(k + 1, spent + c * x, served + r * x, count + x)
        for index in range(start + 1, len(values)):
            x = values[index]
            if spent + c * x + lo_cost[k + 1] > limit:
                break
            if bound(k + 1, spent + c * x, served + r * x, count + x) > limit:
                continue
            chosen[k] = x
            branch(k + 1, spent + c * x, served + r * x, count + x)

    if bound(0, 0.0, 0.0, 0) == math.inf:
        return []
    branch(0, 0.0, 0.0, 0)
    return [candidate for candidate in found if candidate[0] <= limit]


def _replica_price(
    cost: list[float], rate: list[float], lo: list[int], hi: list[int], missing: float, room: int
) -> float:
    """A price per replica for the Lagrangian bound of the replica cap: 0 when the fractional
    cover fits within ``room`` replicas (the cap does not bind), else about the price at which
    it just fits (by bisection: the cover's replicas fall as the price rises).

    For any price λ ≥ 0, cover(cost + λ) − λ·room is a lower bound on the cost of covering
    ``missing`` with at most ``room`` replicas (at the right λ, the LP optimum): any λ is
    valid, and a rough one prunes about as well as the exact one."""
    if missing <= 0 or room < 0:
        return 0.0
    usable = [j for j in range(len(cost)) if rate[j] > 0 and hi[j] > lo[j]]

    def replicas(price: float) -> float:
        left, used = missing, 0.0
        for j in sorted(usable, key=lambda j: ((cost[j] + price) / rate[j], j)):
            if left <= 0:
                break
            take = min(float(hi[j] - lo[j]), left / rate[j])
            used += take
            left -= take * rate[j]
        return used

    if replicas(0.0) <= room:
        return 0.0
    low, high = 0.0, max(max(cost, default=0.0), 1.0)
    for _ in range(20):
        if replicas(high) <= room:
            break
        high *= 8
    for _ in range(10):
        middle = (low + high) / 2
        if replicas(middle) > room:
            low = middle
        else:
            high = middle
    return high


def _branch_and_bound_max_capacity(
    terms: Sequence[PoolTerms], total_min: int, total_max: int, nodes: int
) -> float | None:
    """The most capacity any placement has (None: no placement), by branch-and-bound over the
    pools from the biggest replica down; the bound fills the replicas left by size."""
    domains = _domains(terms)
    if domains is None:
        return None
    n = len(terms)
    order = sorted(range(n), key=lambda i: (-terms[i].tokens_per_second, i))
    rate = [terms[i].tokens_per_second for i in order]
    dom = [domains[i] for i in order]
    lo = [d[0] for d in dom]
    hi = [d[-1] for d in dom]
    lo_cap = [0.0] * (n + 1)
    lo_count = [0] * (n + 1)
    hi_count = [0] * (n + 1)
    for k in range(n - 1, -1, -1):
        lo_cap[k] = lo_cap[k + 1] + rate[k] * lo[k]
        lo_count[k] = lo_count[k + 1] + lo[k]
        hi_count[k] = hi_count[k + 1] + hi[k]
    extra_count = [0] * (n + 1)
    extra_cap = [0.0] * (n + 1)
    for k in range(n):
        extra_count[k + 1] = extra_count[k] + hi[k] - lo[k]
        extra_cap[k + 1] = extra_cap[k] + rate[k] * (hi[k] - lo[k])

    def fill(k: int, room: int) -> float:
        """Most capacity `room` more replicas add on pools k.. above their least."""
        if room <= 0:
            return 0.0
        target = extra_count[k] + room
        if target >= extra_count[n]:
            return extra_cap[n] - extra_cap[k]
        m = bisect_left(extra_count, target, k + 1, n + 1) - 1
        return extra_cap[m] - extra_cap[k] + (target - extra_count[m]) * rate[m]

    best = -math.inf
    chosen = [0] * n
    left = nodes

    def branch(k: int, served: float, count: int) -> None:
        nonlocal best, left
        left -= 1
        if left < 0:
            raise _OutOfNodes
        if k == n:
            placement = [0] * n
            for position, i in enumerate(order):
                placement[i] = chosen[position]
            if total_min <= sum(placement) <= total_max:
                value = sum(t.tokens_per_second * x for t, x in zip(terms, placement, strict=True))
                best = max(best, value)
            return
        r = rate[k]
        # Downwards from the most replicas: the bound never rises as this pool gets fewer.
        for x in reversed(dom[k]):
            used = count + x
            if used + lo_count[k + 1] > total_max or used + hi_count[k + 1] < total_min:
                continue
            top = served + r * x + lo_cap[k + 1] + fill(k + 1, total_max - used - lo_count[k + 1])
            if top < best - 1e-9 * max(1.0, abs(best)):
                break
            chosen[k] = x
            branch(k + 1, served + r * x, used)

    branch(0, 0.0, 0)
    return None if best == -math.inf else best


def _search_min_cost(
    terms: Sequence[PoolTerms], floor: float, total_min: int, total_max: int
) -> tuple[bool, tuple[int, ...] | None]:
    """(whether the branch-and-bound finished within its budget, its answer)."""
    if BRANCH_AND_BOUND_NODES <= 0 or any(t.cost < 0 for t in terms):
        return False, None
    try:
        found = _branch_and_bound_min_cost(
            terms, floor, total_min, total_max, BRANCH_AND_BOUND_NODES
        )
    except _OutOfNodes:
        return False, None
    return True, found


MEMO_SIZE = 4096
"""Answers kept per solve kind (least recently used first out). A solve is a pure function of
its terms, bounds and this module's limits; a plan repeats some of its own solves (a trim, the
pre-warm plan at a window's boundary), and a demand that has not changed repeats them all."""


def solve_min_cost(
    terms: Sequence[PoolTerms], required: float, total_min: int, total_max: int
) -> tuple[int, ...] | None:
    """The cheapest placement meeting ``required`` tokens/s, or ``None`` if none exists."""
    return _min_cost_memo(
        tuple(terms), required, total_min, total_max, BRANCH_AND_BOUND_NODES, ENUMERATION_LIMIT
    )


@lru_cache(maxsize=MEMO_SIZE)
def _min_cost_memo(
    terms: tuple[PoolTerms, ...],
    required: float,
    total_min: int,
    total_max: int,
    nodes: int,
    enumeration_limit: int,
) -> tuple[int, ...] | None:
    return _solve_min_cost(terms, required, total_min, total_max)


def _solve_min_cost(
    terms: Sequence[PoolTerms], required: float, total_min: int, total_max: int
) -> tuple[int, ...] | None:
    floor = required - CAPACITY_TOLERANCE * max(1.0, required)
    searched, answer = _search_min_cost(terms, floor, total_min, total_max)
    if searched:
        return answer
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
    return _max_capacity_memo(
        tuple(terms), total_min, total_max, BRANCH_AND_BOUND_NODES, ENUMERATION_LIMIT
    )


@lru_cache(maxsize=MEMO_SIZE)
def _max_capacity_memo(
    terms: tuple[PoolTerms, ...], total_min: int, total_max: int, nodes: int, enumeration_limit: int
) -> tuple[int, ...] | None:
    return _solve_max_capacity(terms, total_min, total_max)


def _solve_max_capacity(
    terms: Sequence[PoolTerms], total_min: int, total_max: int
) -> tuple[int, ...] | None:
    if BRANCH_AND_BOUND_NODES > 0 and all(t.cost >= 0 for t in terms):
        try:
            most_served = _branch_and_bound_max_capacity(
                terms, total_min, total_max, BRANCH_AND_BOUND_NODES
            )
        except _OutOfNodes:
            pass
        else:
            if most_served is None:
                return None
            floor = most_served - CAPACITY_TOLERANCE * max(1.0, most_served)
            searched, answer = _search_min_cost(terms, floor, total_min, total_max)
            if searched:
                return answer
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
