"""One replay of a trace through every policy, and the numbers the report compares.

`compare` builds the policies from the deployment (static-gpu, static-cpu, time-only, load-only,
ours, oracle), runs each through the same engine and returns per-policy summaries: cost, cost
per million served tokens, share of demand unmet, minutes with unmet demand, moves, GPU-hours,
savings against static-gpu and the gap to the oracle.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import numpy as np

from deepseek_operator.api.vocabulary import HardwareKind, Policy
from deepseek_operator.core.planning.planner import Schedule, Window, plan
from deepseek_operator.core.planning.schedule import active_window, next_transition
from deepseek_operator.core.replay.band_oracle import (
    MAX_PLACEMENTS,
    placements,
    solve_band_oracle,
)
from deepseek_operator.core.replay.engine import (
    DemandTimeline,
    FloatArray,
    IntArray,
    Observation,
    PolicyRun,
    ReplayPolicy,
    ReplayPool,
    demand_timeline,
    replay,
)
from deepseek_operator.core.replay.inputs import ReplayInputs
from deepseek_operator.core.replay.oracle import (
    DEFAULT_MAX_STEPS,
    OracleError,
    OraclePolicy,
    OracleRules,
    OracleSolution,
    solve_oracle,
)
from deepseek_operator.core.replay.policies import (
    HPA_SCALE_DOWN_STABILIZATION_SECONDS,
    HPA_TOLERANCE,
    ClockRule,
    LoadOnlyPolicy,
    OperatorPolicy,
    static_sizing,
    time_only_policy,
)
from deepseek_operator.core.replay.traces import TokenSeries

POLICY_NAMES: tuple[str, ...] = (
    "static-gpu",
    "static-cpu",
    "time-only",
    "load-only",
    "ours",
    "oracle",
    "fair-oracle",
)


class LoadOnlyRules(StrEnum):
    """Whose stabilisation windows and tolerance the HPA-like policy uses: the deployment's
    `load` (the same rules as `ours`), or the HorizontalPodAutoscaler's defaults (300 s down,
    0 s up, 10 %)."""

    DEPLOYMENT = "deployment"
    KUBERNETES = "kubernetes"


@dataclass(frozen=True)
class ReplaySettings:
    step_seconds: float
    observation: Observation = field(default_factory=Observation)
    policies: tuple[str, ...] = POLICY_NAMES
    load_only_pool: str | None = None
    load_only_rules: str = LoadOnlyRules.DEPLOYMENT
    oracle_max_steps: int = DEFAULT_MAX_STEPS
    oracle_time_limit_seconds: float = 300.0

    def __post_init__(self) -> None:
        unknown = [p for p in self.policies if p not in POLICY_NAMES]
        if unknown:
            raise ValueError(
                f"policies: unknown {', '.join(unknown)}; choose from {', '.join(POLICY_NAMES)}"
            )
        if self.load_only_rules not in set(LoadOnlyRules):
            raise ValueError(
                f"load-only-rules: {self.load_only_rules!r} is not one of "
                f"{', '.join(LoadOnlyRules)}"
            )


@dataclass(frozen=True)
class PolicySummary:
    name: str
    cost: float
    cost_per_million_tokens: float | None
    unmet_percent: float
    unmet_minutes: float
    moves: int
    gpu_hours: float
    savings_vs_static_gpu_percent: float | None
    gap_to_oracle_percent: float | None
    gap_to_fair_oracle_percent: float | None
    detail: str


@dataclass(frozen=True)
class Comparison:
    demand: DemandTimeline
    runs: tuple[PolicyRun, ...]
    summaries: tuple[PolicySummary, ...]
    oracle: OracleSolution | None
    notes: tuple[str, ...] = field(default=())
    fair_oracle: OracleSolution | None = None

    def run(self, name: str) -> PolicyRun | None:
        return next((r for r in self.runs if r.name == name), None)


@dataclass(frozen=True)
class TimelineEntry:
    """One change in a policy's replay: from `step` on (until the next entry), these replicas
    per pool were billed and Ready, under this rule. The demand is the value at `step`."""

    step: int
    at: datetime
    billed: dict[str, int]
    ready: dict[str, int]
    demand_seen_tokens_per_second: float | None
    demand_planned_tokens_per_second: float | None
    rule: str


def timeline(run: PolicyRun, demand: DemandTimeline) -> list[TimelineEntry]:
    """The steps at which the run's billed or Ready replicas, or its rule, changed (the first step
    always): a per-step record without repeating the steps in between, which are the same."""
    steps = demand.steps
    changed = np.zeros(steps, dtype=bool)
    changed[0] = True
    if steps > 1:
        changed[1:] |= (np.diff(run.billed, axis=1) != 0).any(axis=0)
        changed[1:] |= (np.diff(run.ready, axis=1) != 0).any(axis=0)
        if run.rule_index is not None:
            changed[1:] |= np.diff(run.rule_index) != 0
    names = [p.name for p in run.pools]
    entries = []
    for step in np.flatnonzero(changed):
        seen = float(demand.observed_tokens_per_second[step])
        planned = (
            float("nan")
            if run.planned_tokens_per_second is None
            else float(run.planned_tokens_per_second[step])
        )
        index = -1 if run.rule_index is None else int(run.rule_index[step])
        entries.append(
            TimelineEntry(
                step=int(step),
                at=demand.at(int(step)),
                billed={n: int(run.billed[i, step]) for i, n in enumerate(names)},
                ready={n: int(run.ready[i, step]) for i, n in enumerate(names)},
                demand_seen_tokens_per_second=None if np.isnan(seen) else seen,
                demand_planned_tokens_per_second=None if np.isnan(planned) else planned,
                rule=run.rules[index] if index >= 0 else "",
            )
        )
    return entries


def _kind_pools(pools: Sequence[ReplayPool], kind: HardwareKind) -> list[ReplayPool]:
    return [p for p in pools if p.kind == kind]


def _pools_for(policy: Policy, pools: Sequence[ReplayPool]) -> tuple[str, ...]:
    if policy in ("gpuOnly", "preferGPU"):
        chosen = _kind_pools(pools, "gpu")
    elif policy in ("cpuOnly", "preferCPU"):
        chosen = _kind_pools(pools, "cpu")
    else:
        chosen = list(pools)
    return tuple(p.name for p in (chosen or pools))


def clock_rules(schedule: Schedule, pools: Sequence[ReplayPool]) -> list[ClockRule]:
    """One rule per schedule window: the window's policy decides which pools it runs on."""

    def is_active(window: Window) -> Callable[[datetime], bool]:
        return lambda at: active_window(schedule, at) == window

    return [
        ClockRule(window.name, is_active(window), _pools_for(window.policy, pools))
        for window in schedule.windows
    ]


def deployment_rules(inputs: ReplayInputs, demand: DemandTimeline) -> OracleRules:
    """Per step: which pools the planner may use and its replica bounds, for the oracle."""
    spec = inputs.spec
    names = [p.name for p in inputs.pools]
    owner = window_per_step(spec.schedule, demand)
    allowed = np.ones((len(names), demand.steps), dtype=bool)
    low = np.zeros(demand.steps, dtype=np.int64)
    high = np.zeros(demand.steps, dtype=np.int64)
    for index in np.unique(owner):
        steps = owner == index
        first = int(np.argmax(steps))
        # The planner's own verdict for this window: which pools it excludes and why, and the
        # replica bounds in force (a plan for zero demand computes both).
        verdict = plan(spec, inputs.options, [], 0.0, demand.at(first))
        excluded = {pool for pool, _ in verdict.excluded}
        allowed[:, steps] = np.array([name not in excluded for name in names])[:, None]
        low[steps] = verdict.replica_bounds.min
        high[steps] = verdict.replica_bounds.max
    return OracleRules(allowed=allowed, max_ready=high, min_ready=low)


def window_per_step(schedule: Schedule, demand: DemandTimeline) -> IntArray:
    """Per step, the index of the schedule window in force (-1: none), found by walking from one
    window transition to the next instead of asking at every step."""
    index = np.full(demand.steps, -1, dtype=np.int64)
    step = 0
    start = demand.at(0)
    while step < demand.steps:
        at = demand.at(step)
        window = active_window(schedule, at)
        change = next_transition(schedule, at)
        if change is None:
            following = demand.steps
        else:
            offset = (change - start).total_seconds() / demand.step_seconds
            following = min(demand.steps, max(step + 1, math.ceil(offset - 1e-9)))
        if window is not None:
            index[step:following] = schedule.windows.index(window)
        step = following
    return index


def fair_requirement(inputs: ReplayInputs, demand: DemandTimeline) -> tuple[FloatArray, FloatArray]:
    """Per step, the tolerance band the planner's rules keep around demand: (1 + the window's
    headroomFraction) ÷ (1 + the load's toleranceFraction) between changes, the least that
    `ours` keeps before it adds replicas, and (1 + headroomFraction) where the placement changes,
    where `ours` lands every scale-up and scale-down."""
    spec = inputs.spec
    tolerance = spec.load.tolerance_fraction
    windows = spec.schedule.windows
    per_window = np.array(
        [
            1.0 + spec.slo.overridden(w.slo if w else None).headroom_fraction
            for w in (*windows, None)
        ]
    )
    high: FloatArray = per_window[window_per_step(spec.schedule, demand)]
    return high / (1.0 + tolerance), high


def fair_oracle(
    inputs: ReplayInputs, demand: DemandTimeline, settings: ReplaySettings
) -> tuple[OracleSolution, str]:
    """The optimum that keeps `ours`'s tolerance band (`band_oracle`), and a note when it
    cannot be searched (too many placements): then the MILP oracle holding the band's floor at
    every step, a lower bound on it."""
    low, high = fair_requirement(inputs, demand)
    rules = deployment_rules(inputs, demand)
    searched = placements(inputs.pools)
    if searched <= MAX_PLACEMENTS:
        band = solve_band_oracle(demand, inputs.pools, low=low, high=high, rules=rules)
        return band, ""
    floor = solve_oracle(
        demand,
        inputs.pools,
        rules=rules,
        max_steps=settings.oracle_max_steps,
        time_limit_seconds=settings.oracle_time_limit_seconds,
        requirement=low,
    )
    return floor, (
        f"fair-oracle: {searched} placements are too many to search for the "
        "tolerance band; it holds the band's floor at every step instead (a lower bound)"
    )


def cheapest_per_token(pools: Sequence[ReplayPool]) -> ReplayPool:
    return min(
        pools, key=lambda p: (p.cost_per_replica_hour / p.tokens_per_second_per_replica, p.name)
    )


def build_policies(
    inputs: ReplayInputs, demand: DemandTimeline, settings: ReplaySettings
) -> tuple[list[ReplayPolicy], list[str]]:
    pools = inputs.pools
    headroom = inputs.spec.slo.headroom_fraction
    low = inputs.spec.replicas.min
    policies: list[ReplayPolicy] = []
    notes: list[str] = []
    wanted = set(settings.policies)
    statics: tuple[tuple[str, HardwareKind], ...] = (("static-gpu", "gpu"), ("static-cpu", "cpu"))
    for name, kind in statics:
        if name not in wanted:
            continue
        chosen = _kind_pools(pools, kind)
        if not chosen:
            notes.append(f"{name}: skipped, the deployment has no {kind} pool that fits")
            continue
        policy, sizing = static_sizing(name, demand, chosen, headroom, low)
        peak = float(demand.arriving_tokens_per_second.max()) if demand.steps else 0.0
        # Sized for peak × (1 + headroom): missing that is not missing the peak itself.
        if sizing.capacity_tokens_per_second < peak:
            notes.append(f"{name}: the {kind} pools cannot carry the peak; all their replicas run")
        elif not sizing.covers_demand:
            notes.append(
                f"{name}: the {kind} pools carry the peak but not its {headroom:.0%} headroom; "
                "all their replicas run"
            )
        policies.append(policy)
    if "time-only" in wanted:
        schedule = inputs.spec.schedule
        rules = clock_rules(schedule, pools)
        fallback = _pools_for(schedule.default_policy, pools)
        if not rules:
            notes.append("time-only: the schedule has no windows, so it is one fixed placement")
        owner = window_per_step(schedule, demand)
        policies.append(time_only_policy(demand, pools, rules, fallback, headroom, low, owner))
    if "load-only" in wanted:
        if settings.load_only_pool is not None:
            chosen_pool = next((p for p in pools if p.name == settings.load_only_pool), None)
            if chosen_pool is None:
                raise ValueError(
                    f"load-only-pool: {settings.load_only_pool!r} is not a pool of the "
                    f"deployment ({', '.join(p.name for p in pools)})"
                )
        else:
            chosen_pool = cheapest_per_token(_kind_pools(pools, "gpu") or list(pools))
        load = inputs.spec.load
        if settings.load_only_rules == LoadOnlyRules.DEPLOYMENT:
            down = float(load.scale_down_stabilization_seconds)
            up = float(load.scale_up_stabilization_seconds)
            tolerance = load.tolerance_fraction
            rules_note = "the deployment's stabilisation windows and tolerance"
        else:
            down, up, tolerance = HPA_SCALE_DOWN_STABILIZATION_SECONDS, 0.0, HPA_TOLERANCE
            rules_note = "the HPA's default windows and tolerance"
        notes.append(
            f"load-only: an HPA on pool {chosen_pool.name} with {rules_note} "
            f"(scale-down {down:g} s, scale-up {up:g} s, {tolerance:.0%})"
        )
        policies.append(
            LoadOnlyPolicy(
                chosen_pool,
                headroom,
                low,
                inputs.spec.replicas.max,
                demand.step_seconds,
                scale_down_stabilization_seconds=down,
                scale_up_stabilization_seconds=up,
                tolerance=tolerance,
            )
        )
    if "ours" in wanted:
        policies.append(OperatorPolicy(inputs.deployment, inputs.resolution))
    return policies, notes


def summarise(runs: Sequence[PolicyRun]) -> tuple[PolicySummary, ...]:
    by_name = {r.name: r for r in runs}
    baseline = by_name.get("static-gpu")
    oracle = by_name.get("oracle")
    fair = by_name.get("fair-oracle")
    summaries = []

    def above(run: PolicyRun, reference: PolicyRun | None) -> float | None:
        if reference is None or reference.total_cost <= 0:
            return None
        return 100.0 * (run.total_cost / reference.total_cost - 1.0)

    for run in runs:
        savings = None
        if baseline is not None and baseline.total_cost > 0:
            savings = 100.0 * (1.0 - run.total_cost / baseline.total_cost)
        summaries.append(
            PolicySummary(
                name=run.name,
                cost=run.total_cost,
                cost_per_million_tokens=run.cost_per_million_tokens,
                unmet_percent=run.unmet_percent,
                unmet_minutes=run.unmet_minutes,
                moves=run.moves,
                gpu_hours=run.gpu_hours,
                savings_vs_static_gpu_percent=savings,
                gap_to_oracle_percent=above(run, oracle),
                gap_to_fair_oracle_percent=above(run, fair),
                detail=run.note,
            )
        )
    return tuple(summaries)


def compare(
    inputs: ReplayInputs,
    series: TokenSeries,
    settings: ReplaySettings,
    progress: Callable[[str, int, int], None] | None = None,
) -> Comparison:
    """Replay `series` through every chosen policy; `progress(policy, step, steps)` is optional."""
    demand = demand_timeline(series, settings.step_seconds, settings.observation)
    policies, notes = build_policies(inputs, demand, settings)
    runs: list[PolicyRun] = []
    for policy in policies:
        report = None
        if progress is not None:
            name = policy.name

            def report(step: int, name: str = name) -> None:
                progress(name, step + 1, demand.steps)

        runs.append(replay(policy, demand, inputs.pools, inputs.rules, report))
    solutions: dict[str, OracleSolution] = {}
    for name in ("oracle", "fair-oracle"):
        if name not in settings.policies:
            continue
        if progress is not None:
            progress(name, 0, demand.steps)
        try:
            if name == "fair-oracle":
                solution, how = fair_oracle(inputs, demand, settings)
                if how:
                    notes.append(how)
            else:
                solution = solve_oracle(
                    demand,
                    inputs.pools,
                    rules=deployment_rules(inputs, demand),
                    max_steps=settings.oracle_max_steps,
                    time_limit_seconds=settings.oracle_time_limit_seconds,
                )
        except OracleError as exc:
            notes.append(f"{name}: {exc}")
        else:
            solutions[name] = solution
            notes.append(f"{name}: {solution.describe()}")
            runs.append(replay(OraclePolicy(solution, inputs.pools, name), demand, inputs.pools))
        if progress is not None:
            progress(name, demand.steps, demand.steps)
    return Comparison(
        demand=demand,
        runs=tuple(runs),
        summaries=summarise(runs),
        oracle=solutions.get("oracle"),
        notes=tuple(notes),
        fair_oracle=solutions.get("fair-oracle"),
    )
