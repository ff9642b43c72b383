"""The hindsight optimum: the cheapest replica schedule over a whole trace, as one MILP.

With perfect knowledge of future demand and the same startup times, no policy can do better, so
the gap to it measures how much a real policy leaves on the table. Variables per pool p and
step t: ready replicas r[p,t] and replicas started s[p,t] (ready L_p steps later, billed from
the start). Stopping is free and takes ready replicas:

    minimise   sum c_p * dt * (r[p,t] + starting[p,t])
    subject to r[p,t] <= r[p,t-1] + s[p,t-L_p]                 (ready only after startup)
               r[p,t] + sum_{j=t-L_p+1..t} s[p,j] <= max_p      (pool capacity, billed)
               sum_p r[p,t] * tps_p * dt >= min(demand[t], all pools at max * dt)
               sum_p r[p,t] >= min_ready
               r[p,0] free in [0, max_p]                        (warm start, like every policy)

Keeping every pool at its limit from the first step is always possible, so no schedule can
leave fewer tokens unmet than the demand above that ceiling: the oracle meets the least unmet
demand exactly, then spends least. For long traces the model is solved on a coarser step
(a multiple of the replay step) against each coarse step's peak fine-step demand; that schedule
is feasible at the fine step and its cost is an upper bound on the fine-step optimum.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from deepseek_operator.core.planning.constraint_rows import ConstraintRows
from deepseek_operator.core.replay.engine import (
    SECONDS_PER_HOUR,
    UNMET_EPSILON_TOKENS,
    Actions,
    DemandTimeline,
    Explanation,
    FloatArray,
    IntArray,
    ReplayPool,
    StepView,
    startup_steps,
)

DEFAULT_MAX_STEPS = 20_160
SLIP_RETRIES = 3
SECONDS_PER_DAY = 86_400.0
WINDOW_AFTER_DAYS = 8.0
"""Traces longer than this are solved a day at a time instead of as one MILP."""
WINDOW_MAX_STEPS = 1_440
"""Steps per day of a windowed solve (a day at 60 s): the replay step is coarsened to fit."""
WINDOW_LOOKAHEAD_SECONDS = 7_200.0
"""Each day's solve looks this far into the next day, so it starts replicas for it in time."""


@dataclass(frozen=True)
class OracleSolution:
    """The schedule, at the oracle's own step, and how the solver got there."""

    step_seconds: float
    factor: int  # oracle step = factor x replay step
    ready: IntArray  # [pool, oracle step]
    starts: IntArray  # [pool, oracle step]
    objective_cost: float
    unmet_tokens: float
    status: str
    mip_gap: float | None
    solve_seconds: float
    variables: int
    windows: int = 0
    """Days solved one after another (0: the whole trace as one MILP)."""
    method: str = "milp"
    """"milp", or "band": the dynamic programme over placements (`band_oracle`), whose
    `variables` are the placements it searched."""

    @property
    def optimal(self) -> bool:
        return self.status == "optimal"

    def describe(self) -> str:
        gap = "" if self.mip_gap is None else f", MIP gap {100 * self.mip_gap:.3g}%"
        step = f"{self.step_seconds:g} s step"
        coarse = (
            f" (coarsened {self.factor}x: an upper bound on the optimum)" if self.factor > 1 else ""
        )
        if self.method == "band":
            return (
                f"{self.status} at a {step}{coarse}, by dynamic programming over "
                f"{self.variables} placements, solved in {self.solve_seconds:.2f} s"
            )
        if self.windows:
            hours = WINDOW_LOOKAHEAD_SECONDS / 3600
            return (
                f"{self.status} at a {step}, solved a day at a time ({self.windows} days, each "
                f"looking {hours:g} h ahead: an upper bound on the optimum), up to "
                f"{self.variables} variables a day, {self.solve_seconds:.2f} s in all{gap}"
            )
        return (
            f"{self.status} at a {step}{coarse}, {self.variables} variables, "
            f"solved in {self.solve_seconds:.2f} s{gap}"
        )


class OracleError(RuntimeError):
    """The solver returned no schedule at all (e.g. the time limit hit before any incumbent)."""


def coarsening_factor(steps: int, max_steps: int) -> int:
    return max(1, math.ceil(steps / max_steps))


def coarse_demand(arriving_tokens: FloatArray, factor: int) -> FloatArray:
    """Per coarse step: the peak fine-step demand, held for the whole coarse step."""
    if factor == 1:
        return arriving_tokens.astype(np.float64)
    steps = len(arriving_tokens)
    padded = np.zeros(math.ceil(steps / factor) * factor)
    padded[:steps] = arriving_tokens
    peak: FloatArray = padded.reshape(-1, factor).max(axis=1) * factor
    return peak


def coarse_requirement(
    need: FloatArray, multiplier: float | FloatArray, fine_steps: int, factor: int
) -> FloatArray:
    """`need` per coarse step times the highest of `multiplier` (one per replay step, or one for
    all) over each coarse step's replay steps."""
    per_step = np.broadcast_to(np.asarray(multiplier, dtype=np.float64), (fine_steps,))
    if np.all(per_step == 1.0):
        return need
    padded = np.ones(len(need) * factor)
    padded[:fine_steps] = per_step
    scaled: FloatArray = need * padded.reshape(len(need), factor).max(axis=1)
    return scaled


def start_cost(
    cost_per_step: FloatArray, lags: Sequence[int] | IntArray, first: int, last: int, total: int
) -> FloatArray:
    """[pool, step] what a start at steps [first, last) costs: billed until Ready, or until the
    trace (`total` steps) ends."""
    t = np.arange(first, last)
    billed = np.minimum(np.asarray(lags)[:, None], total - t[None, :])
    cost: FloatArray = cost_per_step[:, None] * billed
    return cost


def schedule_totals(
    ready: IntArray,
    starts: IntArray,
    cost_per_step: FloatArray,
    tokens_per_step: FloatArray,
    lags: Sequence[int] | IntArray,
    need: FloatArray,
) -> tuple[float, float]:
    """What a schedule ([pool, step] Ready replicas and starts) costs, and the tokens of `need`
    it leaves unmet (ignoring shortfalls below UNMET_EPSILON_TOKENS, the solver's rounding)."""
    steps = ready.shape[1]
    cost = float((ready * cost_per_step[:, None]).sum()) + float(
        (starts * start_cost(cost_per_step, lags, 0, steps, steps)).sum()
    )
    shortfall = np.maximum(0.0, need - (ready * tokens_per_step[:, None]).sum(axis=0))
    return cost, float(shortfall[shortfall > UNMET_EPSILON_TOKENS].sum())


@dataclass(frozen=True)
class OracleRules:
    """The deployment's rules per replay step, which the oracle must obey like the planner.

    `allowed[p, t]`: pool p may hold ready replicas at step t (window policy, SLO); `max_ready[t]`:
    the most ready replicas summed over pools (the window's replica bounds).
    """

    allowed: npt.NDArray[np.bool_] | None = None
    max_ready: IntArray | None = None
    min_ready: IntArray | None = None

    def coarse(
        self, factor: int, steps: int, pools: int
    ) -> tuple[npt.NDArray[np.bool_], FloatArray, FloatArray]:
        """A pool is allowed in a coarse step if allowed in all of its fine steps (see below)."""
        fine_steps = steps * factor
        allowed = np.ones((pools, fine_steps), dtype=bool)
        limit = np.full(fine_steps, np.inf)
        floor = np.zeros(fine_steps)
        if self.allowed is not None:
            allowed[:, : self.allowed.shape[1]] = self.allowed
        if self.max_ready is not None:
            limit[: len(self.max_ready)] = self.max_ready
        if self.min_ready is not None:
            floor[: len(self.min_ready)] = self.min_ready
        grouped = allowed.reshape(pools, steps, factor)
        coarse_allowed = np.asarray(grouped.all(axis=2), dtype=bool)
        # A window edge inside a coarse step can leave no pool allowed throughout it; there the
        # pools of either side may serve (the schedule overlaps the edge by under one step).
        edge = ~coarse_allowed.any(axis=0)
        coarse_allowed[:, edge] = np.asarray(grouped.any(axis=2), dtype=bool)[:, edge]
        coarse_limit: FloatArray = limit.reshape(steps, factor).min(axis=1)
        coarse_floor: FloatArray = floor.reshape(steps, factor).max(axis=1)
        return coarse_allowed, coarse_limit, coarse_floor


def solve_oracle(
    demand: DemandTimeline,
    pools: Sequence[ReplayPool],
    *,
    min_ready: int = 0,
    rules: OracleRules | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
    time_limit_seconds: float = 300.0,
    mip_rel_gap: float = 1e-6,
    requirement: float | FloatArray = 1.0,
    window_after_days: float = WINDOW_AFTER_DAYS,
) -> OracleSolution:
    """The cheapest schedule that serves `requirement` × demand at every step (1: the demand
    itself; the fair oracle's fallback, when its band has too many placements to search, passes
    (1 + headroom) ÷ (1 + tolerance) per step).

    A trace of at most `window_after_days` is one MILP, coarsened to at most `max_steps` steps;
    a longer one is solved a day at a time (each day looking `WINDOW_LOOKAHEAD_SECONDS` ahead,
    coarsened to at most `WINDOW_MAX_STEPS` steps a day), each day starting from the replicas
    Ready and starting where the day before ended. Both give a feasible schedule, so their cost
    is an upper bound on the optimum."""
    day_steps = SECONDS_PER_DAY / demand.step_seconds
    windowed = demand.steps * demand.step_seconds > window_after_days * SECONDS_PER_DAY
    if windowed:
        factor = max(1, math.ceil(day_steps / WINDOW_MAX_STEPS - 1e-9))
    else:
        factor = coarsening_factor(demand.steps, max_steps)
    dt = demand.step_seconds * factor
    need = coarse_requirement(
        coarse_demand(demand.arriving_tokens, factor), requirement, demand.steps, factor
    )
    steps = len(need)
    count = len(pools)
    constrained = rules is not None and any(
        part is not None for part in (rules.allowed, rules.max_ready, rules.min_ready)
    )
    allowed, max_ready, floor = (rules or OracleRules()).coarse(factor, steps, count)
    floor = np.maximum(floor, float(min_ready))
    model = _Model(
        pools=tuple(pools),
        lags=tuple(startup_steps(pool, dt) for pool in pools),
        cost_per_step=np.array([p.cost_per_replica_hour for p in pools]) / SECONDS_PER_HOUR * dt,
        tokens_per_step=np.array([p.tokens_per_second_per_replica for p in pools]) * dt,
        need=np.where(need <= UNMET_EPSILON_TOKENS, 0.0, need),
        allowed=allowed,
        max_ready=max_ready,
        floor=floor,
        constrained=constrained,
        options={"time_limit": time_limit_seconds, "mip_rel_gap": mip_rel_gap, "disp": False},
    )
    started = time.perf_counter()
    ready = np.zeros((count, steps), dtype=np.int64)
    starts = np.zeros((count, steps), dtype=np.int64)
    statuses: list[int] = []
    gaps: list[float] = []
    variables = 0
    if windowed:
        span = max(1, round(day_steps / factor))
        ahead = math.ceil(WINDOW_LOOKAHEAD_SECONDS / dt)
        windows = list(range(0, steps, span))
    else:
        span, ahead, windows = steps, 0, [0]
    for first in windows:
        last = min(steps, first + span + ahead)
        part = model.solve_span(first, last, ready, starts)
        keep = min(steps, first + span) - first
        ready[:, first : first + keep] = part.ready[:, :keep]
        starts[:, first : first + keep] = part.starts[:, :keep]
        statuses.append(part.status)
        if part.gap is not None:
            gaps.append(part.gap)
        variables = max(variables, part.variables)
    elapsed = time.perf_counter() - started
    billed_cost, unmet = schedule_totals(
        ready, starts, model.cost_per_step, model.tokens_per_step, model.lags, model.need
    )
    status = (
        "optimal" if all(code == 0 for code in statuses) else "time limit (best schedule found)"
    )
    return OracleSolution(
        step_seconds=dt,
        factor=factor,
        ready=ready,
        starts=starts,
        objective_cost=billed_cost,
        unmet_tokens=unmet,
        status=status,
        mip_gap=max(gaps) if gaps else None,
        solve_seconds=elapsed,
        variables=variables,
        windows=len(windows) if windowed else 0,
    )


@dataclass(frozen=True)
class _Span:
    ready: IntArray
    starts: IntArray
    status: int
    gap: float | None
    variables: int


@dataclass(frozen=True)
class _Model:
    """The oracle's arrays at its own step; `solve_span` solves any stretch of them."""

    pools: tuple[ReplayPool, ...]
    lags: tuple[int, ...]
    cost_per_step: FloatArray
    tokens_per_step: FloatArray
    need: FloatArray
    allowed: npt.NDArray[np.bool_]
    max_ready: FloatArray
    floor: FloatArray
    constrained: bool
    options: dict[str, Any]

    @property
    def steps(self) -> int:
        return len(self.need)

    def start_cost(self, first: int, last: int) -> FloatArray:
        """[pool, step] what a start costs: billed until Ready, or until the trace ends."""
        return start_cost(self.cost_per_step, self.lags, first, last, self.steps)

    def solve_span(self, first: int, last: int, ready: IntArray, starts: IntArray) -> _Span:
        """Steps [first, last): at `first` > 0 the replicas Ready at first - 1 and the starts
        still under way come from `ready` and `starts` (the schedule so far); at 0 the warm
        start, as every policy has, leaves the first step's replicas free."""
        count, n, total = len(self.pools), last - first, self.steps
        need = self.need[first:last]
        allowed = self.allowed[:, first:last]
        max_ready, floor = self.max_ready[first:last], self.floor[first:last]
        tokens_per_step = self.tokens_per_step
        ceiling = (
            tokens_per_step[:, None]
            * np.array([p.max_replicas for p in self.pools])[:, None]
            * allowed
        ).sum(axis=0)
        # Demand rows count in replica-steps of the smallest pool: coefficients >= 1 and the
        # least demand that matters (UNMET_EPSILON_TOKENS) stays far above the solver's tolerance.
        scale = max(float(tokens_per_step.min()), 1e-9)

        def r_index(p: int, k: int) -> int:
            return p * n + k

        def s_index(p: int, k: int) -> int:
            return count * n + p * n + k

        u_offset = 2 * count * n
        variables = u_offset + n
        cost = np.zeros(variables)
        lower = np.zeros(variables)
        upper = np.zeros(variables)
        integrality = np.zeros(variables)
        start_cost = self.start_cost(first, last)
        for p, pool in enumerate(self.pools):
            for k in range(n):
                t = first + k
                cost[r_index(p, k)] = self.cost_per_step[p]
                upper[r_index(p, k)] = pool.max_replicas if allowed[p, k] else 0
                integrality[r_index(p, k)] = 1
                # Starts that could never serve within the trace (and starts at t=0, the warm
                # start) stay at 0.
                cost[s_index(p, k)] = start_cost[p, k]
                serves = t >= 1 and t + self.lags[p] <= total - 1
                upper[s_index(p, k)] = pool.max_replicas if serves else 0
                integrality[s_index(p, k)] = 1
        if self.constrained:
            upper[u_offset:] = need / scale
        else:
            # Every pool at its limit all along is a valid schedule here, so the least unmet
            # demand is known in closed form: fix it.
            least = np.maximum(0.0, need - ceiling) / scale
            lower[u_offset:] = least
            upper[u_offset:] = least
            # HiGHS takes a replica count within 1e-6 of an integer as whole, so a sliver of
            # demand could pass as served by "0" replicas and show up as unmet once rounded.
            # Where all of a step's demand must be met, so many replicas must be Ready that even
            # the fastest allowed pool leaves at most UNMET_EPSILON_TOKENS unmet: a valid cut.
            fastest = (tokens_per_step[:, None] * allowed).max(axis=0)
            cover = np.ceil((need - UNMET_EPSILON_TOKENS) / np.maximum(fastest, 1e-300) - 1e-9)
            floor = np.where(least > 0, floor, np.maximum(floor, cover))

        rows = ConstraintRows()
        for p, pool in enumerate(self.pools):
            lag = self.lags[p]
            for k in range(n):
                t = first + k
                if t == 0:
                    continue  # warm start: the first step's replicas are free
                # Ready only after start-up: r[t] <= r[t-1] + s[t-lag] (starts at t=0 are none).
                entries = [(r_index(p, k), 1.0)]
                constant = 0.0
                if k >= 1:
                    entries.append((r_index(p, k - 1), -1.0))
                else:
                    constant += float(ready[p, t - 1])
                arriving = t - lag if lag > 0 else t
                if arriving >= 1:
                    if arriving >= first:
                        entries.append((s_index(p, arriving - first), -1.0))
                    else:
                        constant += float(starts[p, arriving])
                rows.add(entries, -np.inf, constant)
                if lag > 0:
                    # Ready plus starting within the pool's replicas.
                    window = [(r_index(p, k), 1.0)]
                    pending = 0.0
                    for j in range(max(1, t - lag + 1), t + 1):
                        if j >= first:
                            window.append((s_index(p, j - first), 1.0))
                        else:
                            pending += float(starts[p, j])
                    rows.add(window, -np.inf, float(pool.max_replicas) - pending)
        demand_rows: list[int] = []
        for k in range(n):
            entries = [(r_index(p, k), tokens_per_step[p] / scale) for p in range(count)]
            demand_rows.append(
                rows.add(
                    [*entries, (u_offset + k, 1.0)], float(need[k]) / scale * (1 - 1e-12), np.inf
                )
            )
            everyone = [(r_index(p, k), 1.0) for p in range(count)]
            if floor[k] > 0 or np.isfinite(max_ready[k]):
                rows.add(everyone, float(floor[k]), float(max_ready[k]))

        matrix = rows.matrix(variables)
        options = self.options

        def solve(demand_low: FloatArray, upper_now: FloatArray) -> Any:
            bounds = Bounds(lower, upper_now)
            constraints = [LinearConstraint(matrix, demand_low, np.array(rows.high))]

            def minimise(objective: FloatArray) -> Any:
                found = milp(
                    objective,
                    integrality=integrality,
                    bounds=bounds,
                    constraints=constraints,
                    options=options,
                )
                if found.x is None:
                    raise OracleError(f"oracle MILP found no schedule: {found.message}")
                return found

            if self.constrained:
                # Phase 1: the least unmet demand any schedule under these rules can reach.
                unmet_only = np.zeros(variables)
                unmet_only[u_offset:] = 1.0
                least_unmet = float(minimise(unmet_only).x[u_offset:].sum())
                pick_u = sparse.csr_array(unmet_only[None, :])
                slack = max(1e-9 * least_unmet, UNMET_EPSILON_TOKENS / scale)
                constraints.append(LinearConstraint(pick_u, -np.inf, least_unmet + slack))
            # Phase 2: the cheapest schedule that leaves no more unmet.
            return minimise(cost)

        row_low_now = np.array(rows.low)
        upper_now = upper.copy()
        result = solve(row_low_now, upper_now)
        if self.constrained:
            # HiGHS works to 1e-6 of a replica (integrality, and presolve rounding a demand row
            # that sits that close to whole replicas), so a step's last sliver of demand, up to
            # 1e-6 of a replica-step per pool, can be left unmet or pass as served and then show
            # up unmet once rounded. A shortfall that small is the solver's tolerance, not a
            # choice: those steps ask for `margin` more than their demand and the model is solved
            # again (a real shortfall stays what it was).
            margin = 1e-5 * float(tokens_per_step.sum())
            target = need.astype(np.float64)
            for _ in range(SLIP_RETRIES):
                rounded = np.rint(result.x[: count * n]).reshape(count, n)
                honest = np.maximum(0.0, need - (rounded * tokens_per_step[:, None]).sum(axis=0))
                slipped = (honest > UNMET_EPSILON_TOKENS) & (honest <= margin)
                if not slipped.any():
                    break
                target = np.where(slipped, target + margin, target)
                row_low_now[demand_rows] = target / scale * (1 - 1e-12)
                upper_now[u_offset:] = target / scale
                result = solve(row_low_now, upper_now)
        solution = np.rint(result.x[:u_offset]).astype(np.int64)
        span_ready = solution[: count * n].reshape(count, n)
        span_starts = solution[count * n :].reshape(count, n).copy()
        for p in range(count):
            if self.lags[p] == 0:
                # Instant starts cost nothing extra, so the solver may leave slack in them; keep
                # only the starts the ready count needs.
                before = np.concatenate(
                    ([ready[p, first - 1] if first > 0 else span_ready[p, 0]], span_ready[p, :-1])
                )
                span_starts[p] = np.maximum(0, span_ready[p] - before)
                if first == 0:
                    span_starts[p, 0] = 0
        gap = getattr(result, "mip_gap", None)
        return _Span(
            ready=span_ready,
            starts=span_starts,
            status=int(result.status),
            gap=None if gap is None else float(gap),
            variables=variables,
        )


class OraclePolicy:
    """Replays an oracle schedule as explicit starts and stops at the replay step."""

    def __init__(
        self, solution: OracleSolution, pools: Sequence[ReplayPool], name: str = "oracle"
    ) -> None:
        self.name = name
        self.solution = solution
        self.pools = tuple(pools)

    def explain(self) -> Explanation:
        return Explanation("hindsight")

    def decide(self, view: StepView) -> Actions | None:
        factor = self.solution.factor
        if view.index % factor:
            return None
        t = view.index // factor
        ready = self.solution.ready
        starts = self.solution.starts
        if t >= ready.shape[1]:
            return None
        if t == 0:
            return Actions(starts={p.name: int(ready[i, 0]) for i, p in enumerate(self.pools)})
        lags = [startup_steps(pool, self.solution.step_seconds) for pool in self.pools]
        stops: dict[str, int] = {}
        begun: dict[str, int] = {}
        for i, pool in enumerate(self.pools):
            arriving = int(starts[i, t - lags[i]]) if t - lags[i] >= 1 else 0
            if lags[i] == 0:
                arriving = int(starts[i, t])
            stop = int(ready[i, t - 1]) + arriving - int(ready[i, t])
            if stop > 0:
                stops[pool.name] = stop
            if starts[i, t] > 0:
                begun[pool.name] = int(starts[i, t])
        if not stops and not begun:
            return None
        return Actions(starts=begun, stops=stops)
