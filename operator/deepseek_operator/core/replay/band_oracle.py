"""The fair oracle: the hindsight optimum that keeps the same tolerance band as `ours`.

An autoscaler with a tolerance keeps a placement while its capacity is within the tolerance of
demand × (1 + headroom), but lands every change at the full requirement: it scales down only to
what still holds demand × (1 + headroom), and scales up to it. The fair oracle obeys the same:

    capacity[t] ≥ low[t] × demand[t]                          (the band's floor: ÷ (1 + tolerance))
    placement[t] ≠ placement[t-1]  ⇒  capacity[t] ≥ high[t] × demand[t]    (a change lands on top)

As a MILP the second rule needs a binary per step whose relaxation is too weak to solve (a
binary at 1/8 lets one of eight replicas stop with almost no requirement). Over the placements
themselves it is a shortest path: the state at a step is the Ready replicas per pool, few enough
for a deployment's variants (9 × 3 for the 32B example, 17 × 7 for the 7B), so a dynamic
programme over (step, placement) finds the exact optimum of this model in seconds.

The model is the MILP oracle's: a replica added at t was started `startup` steps before and is
billed from its start; stopping is free; the first step's placement is free (a warm start); the
deployment's windows, replica bounds and floor hold at every step. It differs in two details: a
start is never cancelled (hindsight has no use for it) and the rule is checked on what is Ready
when it changes (the planner checks what it asks for; a replica asked for at the start is Ready
at the arrival, so the two differ only by what demand does while it starts). Demand it cannot
serve is charged far above any cost, so it meets the least unmet demand first, as the MILP does.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence

import numpy as np

from deepseek_operator.core.replay.engine import (
    SECONDS_PER_HOUR,
    UNMET_EPSILON_TOKENS,
    DemandTimeline,
    FloatArray,
    IntArray,
    ReplayPool,
    startup_steps,
)
from deepseek_operator.core.replay.oracle import (
    OracleRules,
    OracleSolution,
    coarse_demand,
    coarse_requirement,
    coarsening_factor,
    schedule_totals,
)

MAX_PLACEMENTS = 4_096
"""Placements (products of each pool's 0..max replicas) beyond which the programme is not run."""
MAX_CELLS = 20_000_000
"""Steps × placements the programme keeps choices for (4 bytes each); a longer trace is solved
on a coarser step, like the MILP oracle's, against each coarse step's peak demand."""
UNMET_PRICE = 1e6
"""Cost charged per unmet token (scaled to the smallest pool's replica-step): above any schedule."""


def placements(pools: Sequence[ReplayPool]) -> int:
    return math.prod(p.max_replicas + 1 for p in pools)


def solve_band_oracle(
    demand: DemandTimeline,
    pools: Sequence[ReplayPool],
    *,
    low: float | FloatArray,
    high: float | FloatArray,
    min_ready: int = 0,
    rules: OracleRules | None = None,
    max_cells: int = MAX_CELLS,
) -> OracleSolution:
    """The cheapest schedule keeping `low` × demand at every step and `high` × demand at every
    change of placement (per replay step, like the MILP oracle's `requirement`)."""
    searched = placements(pools)
    if searched > MAX_PLACEMENTS:
        raise ValueError(
            f"{searched} placements, more than the {MAX_PLACEMENTS} the band oracle searches"
        )
    started = time.perf_counter()
    factor = coarsening_factor(demand.steps, max(1, max_cells // searched))
    dt = demand.step_seconds * factor
    base = coarse_demand(demand.arriving_tokens, factor)
    steps = len(base)
    floor_need = coarse_requirement(base, low, demand.steps, factor)
    floor_need = np.where(floor_need <= UNMET_EPSILON_TOKENS, 0.0, floor_need)
    change_need = np.maximum(coarse_requirement(base, high, demand.steps, factor), floor_need)
    count = len(pools)
    allowed, max_ready, floor = (rules or OracleRules()).coarse(factor, steps, count)
    floor = np.maximum(floor, float(min_ready))

    grid: IntArray = np.array(
        list(itertools.product(*(range(p.max_replicas + 1) for p in pools))), dtype=np.int64
    )
    tokens = np.array([p.tokens_per_second_per_replica for p in pools]) * dt
    cost_per_step = np.array([p.cost_per_replica_hour for p in pools]) / SECONDS_PER_HOUR * dt
    lags = np.array([startup_steps(p, dt) for p in pools], dtype=np.int64)
    capacity = grid @ tokens
    running = grid @ cost_per_step
    replicas = grid.sum(axis=1)
    added = np.maximum(0, grid[None, :, :] - grid[:, None, :])  # [from, to, pool]
    start_cost = (added * (cost_per_step * lags)).sum(axis=2)  # billed while starting
    unmet_price = UNMET_PRICE * float(cost_per_step.max()) / max(float(tokens.min()), 1e-9)

    value = np.zeros(len(grid))
    chosen = np.zeros((steps, len(grid)), dtype=np.int32)
    for t in range(steps):
        open_pools = np.all((grid == 0) | allowed[:, t][None, :], axis=1)
        fits = open_pools & (replicas >= floor[t] - 1e-9) & (replicas <= max_ready[t] + 1e-9)
        if not fits.any():  # the window's bounds leave nothing: the floor bound gives way
            fits = open_pools
        reachable = float(capacity[fits].max())
        lands = fits & (capacity >= min(change_need[t], reachable) * (1 - 1e-12))
        step_cost = running + unmet_price * np.maximum(0.0, floor_need[t] - capacity)
        if t == 0:
            value = np.where(lands, step_cost, np.inf)
            chosen[0] = np.arange(len(grid))
            continue
        move = value[:, None] + start_cost
        # A replica Ready at t was started at t - lag, which must be a step of the trace (≥ 1).
        late = lags >= t
        if late.any():
            move = np.where((added[:, :, late] > 0).any(axis=2), np.inf, move)
        best_from = np.argmin(move, axis=0)
        best_move = move[best_from, np.arange(len(grid))]
        stay = np.where(fits, value, np.inf)
        moved = np.where(lands, best_move, np.inf)
        if np.isinf(stay).all() and np.isinf(moved).all():
            # Nothing the rules allow is reachable (a window that opens a pool sooner than its
            # replicas can start): what runs stays one more step, as the replay would keep it.
            stay = value
        take_stay = stay <= moved
        chosen[t] = np.where(take_stay, np.arange(len(grid)), best_from)
        value = np.where(take_stay, stay, moved) + step_cost

    state = int(np.argmin(value))
    path = np.zeros(steps, dtype=np.int64)
    for t in range(steps - 1, -1, -1):
        path[t] = state
        state = int(chosen[t, state])
    ready: IntArray = grid[path].T.copy()
    starts: IntArray = np.zeros_like(ready)
    for p in range(count):
        rise = np.maximum(0, np.diff(ready[p]))
        for at in (np.flatnonzero(rise) + 1).tolist():
            starts[p, at - int(lags[p])] += rise[at - 1]
    objective, unmet = schedule_totals(ready, starts, cost_per_step, tokens, lags, floor_need)
    return OracleSolution(
        step_seconds=dt,
        factor=factor,
        ready=ready,
        starts=starts,
        objective_cost=objective,
        unmet_tokens=unmet,
        status="optimal",
        mip_gap=None,
        solve_seconds=time.perf_counter() - started,
        variables=len(grid),
        method="band",
    )
