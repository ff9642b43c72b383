"""Replay a load trace step by step through a placement policy, accounting cost and unmet demand.

The engine steps at the reconcile interval. At each step a policy sees demand as the operator
would (Prometheus scrapes every `scrape_interval_seconds`, `rate()` over `rate_window_seconds`),
decides a placement, and the engine rolls it out with the operator's own make-before-break step
(`planning.rollout.next_step`: new replicas start first, within `max_surge_gpus`; replicas the
target drops stop only once nothing is starting). The engine itself is only physics: a replica
is billed from the step it starts until the step it stops, and serves only once ready,
`startup_seconds` (rounded up to whole steps) after it started. `ours` is the operator's whole
decision (`planning.reconcile.decide`), which computes its step itself (`Rollout`).

Accounting per step: cost = billed replicas x cost per replica-second x step; unmet tokens =
max(0, tokens arriving in the step - ready capacity x step). A policy may also hand the engine
explicit starts and stops (the hindsight oracle does), which bypass the rollout rules but not
the accounting, so every policy is measured by the same code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import numpy as np
import numpy.typing as npt

from deepseek_operator.api.vocabulary import HardwareKind
from deepseek_operator.core.planning.rollout import PoolCounts, next_step
from deepseek_operator.core.replay.traces import TokenSeries

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

SECONDS_PER_HOUR = 3600.0
# Below a thousandth of a token a step counts as fully served (float noise from integration).
UNMET_EPSILON_TOKENS = 1e-3


@dataclass(frozen=True)
class ReplayPool:
    """What the replay needs to know about one pool for one deployment's variant on it."""

    name: str
    kind: HardwareKind
    cost_per_replica_hour: float
    tokens_per_second_per_replica: float
    startup_seconds: float
    max_replicas: int
    gpus_per_replica: int = 0

    def __post_init__(self) -> None:
        if self.tokens_per_second_per_replica <= 0:
            raise ValueError(f"pool {self.name}: tokens_per_second_per_replica must be positive")
        if self.cost_per_replica_hour < 0 or self.startup_seconds < 0 or self.max_replicas < 0:
            raise ValueError(f"pool {self.name}: cost, startup and max_replicas must be >= 0")


@dataclass(frozen=True)
class Observation:
    """How the operator sees demand: scraped counters and a PromQL rate() window."""

    scrape_interval_seconds: float = 15.0
    rate_window_seconds: float = 120.0


@dataclass(frozen=True)
class RolloutRules:
    """`migration.maxSurgeGPUs` (None: no limit); make-before-break itself keeps minAvailable."""

    max_surge_gpus: int | None = None


@dataclass(frozen=True)
class DemandTimeline:
    """Per-step demand: what arrives (for accounting) and what the operator observes."""

    start: datetime
    step_seconds: float
    arriving_tokens: FloatArray
    observed_tokens_per_second: FloatArray  # NaN where Prometheus would return nothing

    @property
    def steps(self) -> int:
        return len(self.arriving_tokens)

    @property
    def arriving_tokens_per_second(self) -> FloatArray:
        return self.arriving_tokens / self.step_seconds

    def at(self, index: int) -> datetime:
        """The step's instant in UTC: adding to a local start would step wall-clock time and
        drift an hour at a daylight-saving change (the schedule converts to its own zone)."""
        return self.start.astimezone(UTC) + timedelta(seconds=index * self.step_seconds)


def demand_timeline(
    series: TokenSeries, step_seconds: float, observation: Observation = Observation()
) -> DemandTimeline:
    """Turn a trace into per-step arriving tokens and the Prometheus-observed rate."""
    if step_seconds <= 0:
        raise ValueError("step_seconds must be positive")
    if observation.scrape_interval_seconds <= 0 or observation.rate_window_seconds <= 0:
        raise ValueError("scrape interval and rate window must be positive")
    steps = max(1, math.ceil(series.duration_seconds / step_seconds - 1e-9))
    edges = np.arange(len(series.tokens) + 1, dtype=np.float64) * series.bin_seconds
    totals = np.concatenate(([0.0], np.cumsum(series.tokens)))
    end = float(edges[-1])
    window = observation.rate_window_seconds
    lead_rate = float(np.interp(min(window, end), edges, totals)) / max(min(window, end), 1e-9)

    def counter(offsets: FloatArray) -> FloatArray:
        inside = np.interp(np.clip(offsets, 0.0, end), edges, totals)
        return np.where(offsets < 0.0, offsets * lead_rate, inside)

    step_edges = np.arange(steps + 1, dtype=np.float64) * step_seconds
    arriving = np.diff(counter(step_edges))

    scrape = observation.scrape_interval_seconds
    reconcile = step_edges[:-1]
    # Samples in (t - window, t]: the newest and the oldest scrape in that range.
    newest = np.floor(reconcile / scrape + 1e-9) * scrape
    oldest = (np.floor((reconcile - window) / scrape + 1e-9) + 1.0) * scrape
    span = newest - oldest
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = np.where(
            span > 0, (counter(newest) - counter(oldest)) / np.where(span > 0, span, 1.0), np.nan
        )
    # Rates below a billionth of a token per second are integration noise, not demand.
    observed = np.where(np.abs(observed) < 1e-9, 0.0, observed)
    return DemandTimeline(
        start=series.start,
        step_seconds=step_seconds,
        arriving_tokens=arriving,
        observed_tokens_per_second=observed.astype(np.float64),
    )


Placement = Mapping[str, int]


@dataclass(frozen=True)
class Actions:
    """Explicit starts and stops per pool at one step (stops take ready replicas)."""

    starts: Mapping[str, int] = field(default_factory=dict)
    stops: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Rollout:
    """A policy that steps itself, as the operator's `decide` does: the replicas each pool's
    Deployment asks for now, and the target the engine keeps stepping towards (with the same
    `next_step`) as replicas turn Ready within the step, as the operator does on Ready events."""

    target: Placement
    writes: Placement


@dataclass(frozen=True)
class StepView:
    """Everything a policy may look at when it decides: the operator's view at one step."""

    index: int
    at: datetime
    observed_tokens_per_second: float | None
    ready: Placement
    starting: Placement

    @property
    def desired(self) -> dict[str, int]:
        """Replicas each pool asks for: Ready plus starting (every one of them is billed)."""
        pools = set(self.ready) | set(self.starting)
        return {p: self.ready.get(p, 0) + self.starting.get(p, 0) for p in pools}


Decision = Placement | Rollout | Actions | None  # None: hold the current placement


@dataclass(frozen=True)
class Explanation:
    """Why a policy decided as it did at one step: the rule that held or made the change (a
    short code such as ``scaleUp`` or ``held:cooldown``, the same at every step it applies), and
    the demand it planned for (the stabilised demand; None when the policy plans none)."""

    rule: str
    planned_tokens_per_second: float | None = None


class ReplayPolicy(Protocol):
    name: str

    def decide(self, view: StepView) -> Decision: ...


class ExplainingPolicy(Protocol):
    """A policy that can say why it took its last decision (see `Explanation`)."""

    def explain(self) -> Explanation: ...


@dataclass(frozen=True)
class PolicyRun:
    """One policy's replay: per-step series and the totals the report shows."""

    name: str
    pools: tuple[ReplayPool, ...]
    step_seconds: float
    billed: IntArray  # [pool, step] replicas billed
    ready: IntArray  # [pool, step] replicas serving
    unmet_tokens: FloatArray  # [step]
    arriving_tokens: FloatArray  # [step]
    moves: int
    note: str = ""
    rules: tuple[str, ...] = ()
    """The distinct rules the policy gave, in order of first use; `rule_index` points here."""
    rule_index: IntArray | None = None  # [step] index into `rules`, -1 where none was given
    planned_tokens_per_second: FloatArray | None = None  # [step] NaN where none was planned

    @property
    def cost_per_step(self) -> FloatArray:
        """[pool, step] money spent."""
        rates = np.array([p.cost_per_replica_hour for p in self.pools]) / SECONDS_PER_HOUR
        cost: FloatArray = self.billed * rates[:, None] * self.step_seconds
        return cost

    @property
    def total_cost(self) -> float:
        return float(self.cost_per_step.sum())

    @property
    def capacity_tokens_per_second(self) -> FloatArray:
        """[pool, step] ready capacity."""
        rates = np.array([p.tokens_per_second_per_replica for p in self.pools], dtype=np.float64)
        capacity: FloatArray = self.ready * rates[:, None]
        return capacity

    @property
    def demand_tokens(self) -> float:
        return float(self.arriving_tokens.sum())

    @property
    def unmet(self) -> float:
        return float(self.unmet_tokens.sum())

    @property
    def served_tokens(self) -> float:
        return self.demand_tokens - self.unmet

    @property
    def unmet_percent(self) -> float:
        return 100.0 * self.unmet / self.demand_tokens if self.demand_tokens > 0 else 0.0

    @property
    def unmet_minutes(self) -> float:
        short = self.unmet_tokens > UNMET_EPSILON_TOKENS
        return float(short.sum()) * self.step_seconds / 60.0

    @property
    def cost_per_million_tokens(self) -> float | None:
        served = self.served_tokens
        return self.total_cost * 1e6 / served if served > UNMET_EPSILON_TOKENS else None

    @property
    def gpu_hours(self) -> float:
        gpus = np.array([p.gpus_per_replica if p.kind == "gpu" else 0 for p in self.pools])
        return float((self.billed * gpus[:, None]).sum()) * self.step_seconds / SECONDS_PER_HOUR


def startup_steps(pool: ReplayPool, step_seconds: float) -> int:
    return math.ceil(pool.startup_seconds / step_seconds - 1e-9)


class _Fleet:
    """Replicas per pool: ready ones, and starting ones with the step they become ready."""

    def __init__(self, pools: Sequence[ReplayPool]) -> None:
        self.pools = tuple(pools)
        self.ready = [0] * len(pools)
        self.starting: list[list[int]] = [[] for _ in pools]  # ready-at step per replica

    def promote(self, step: int) -> None:
        for index, queue in enumerate(self.starting):
            if queue and queue[0] <= step:
                done = sum(1 for ready_at in queue if ready_at <= step)
                self.ready[index] += done
                self.starting[index] = queue[done:]

    def billed(self, index: int) -> int:
        return self.ready[index] + len(self.starting[index])

    def view(self) -> tuple[dict[str, int], dict[str, int]]:
        ready = {p.name: n for p, n in zip(self.pools, self.ready, strict=True)}
        starting = {p.name: len(q) for p, q in zip(self.pools, self.starting, strict=True)}
        return ready, starting

    def counts(self) -> dict[str, PoolCounts]:
        return {
            pool.name: PoolCounts(desired=self.billed(index), ready=self.ready[index])
            for index, pool in enumerate(self.pools)
        }

    def ask(self, replicas: Placement, step: int, step_seconds: float) -> set[int]:
        """Each pool's Deployment now asks for `replicas`: missing ones start; surplus ones go,
        those still starting first (newest first), then Ready ones. Returns the pools changed."""
        changed: set[int] = set()
        for index, pool in enumerate(self.pools):
            if pool.name not in replicas:
                continue
            wanted = min(max(0, int(replicas[pool.name])), pool.max_replicas)
            billed = self.billed(index)
            if wanted > billed:
                ready_at = step + startup_steps(pool, step_seconds)
                self.starting[index].extend([ready_at] * (wanted - billed))
            elif wanted < billed:
                cancel = min(billed - wanted, len(self.starting[index]))
                if cancel:
                    self.starting[index] = self.starting[index][:-cancel]
                self.ready[index] -= billed - wanted - cancel
            if wanted != billed:
                changed.add(index)
        return changed


def _roll_out(
    fleet: _Fleet,
    target: Placement,
    first: Placement | None,
    step: int,
    step_seconds: float,
    rules: RolloutRules,
) -> int:
    """Ask each pool for `first` (or the next make-before-break step towards `target`), start and
    stop replicas as a ReplicaSet would, and step again while replicas turn Ready at once (no
    start-up time), as the operator does on Ready events. Returns the pools whose count changed.
    """
    names = [p.name for p in fleet.pools]
    wanted = {p.name: min(max(0, int(target.get(p.name, 0))), p.max_replicas) for p in fleet.pools}
    gpus = {p.name: p.gpus_per_replica if p.kind == "gpu" else 0 for p in fleet.pools}
    changed: set[int] = set()
    writes = first
    for _ in range(len(fleet.pools) + 2):
        if writes is None:
            writes = next_step(names, wanted, fleet.counts(), gpus, rules.max_surge_gpus)
        moved = fleet.ask(writes, step, step_seconds)
        fleet.promote(step)
        if not moved:
            break
        changed |= moved
        writes = None
    return len(changed)


def _apply_actions(fleet: _Fleet, actions: Actions, step: int, step_seconds: float) -> int:
    changed = 0
    for index, pool in enumerate(fleet.pools):
        stop = min(int(actions.stops.get(pool.name, 0)), fleet.ready[index])
        start = int(actions.starts.get(pool.name, 0))
        if stop > 0:
            fleet.ready[index] -= stop
        if start > 0:
            start = min(start, pool.max_replicas - fleet.billed(index))
            fleet.starting[index].extend([step + startup_steps(pool, step_seconds)] * start)
        changed += int(stop > 0 or start > 0)
    fleet.promote(step)
    return changed


def replay(
    policy: ReplayPolicy,
    demand: DemandTimeline,
    pools: Sequence[ReplayPool],
    rules: RolloutRules = RolloutRules(),
    progress: Callable[[int], None] | None = None,
) -> PolicyRun:
    """Replay `demand` through `policy`; the first decision is taken as already running."""
    fleet = _Fleet(pools)
    steps = demand.steps
    billed = np.zeros((len(pools), steps), dtype=np.int64)
    ready = np.zeros((len(pools), steps), dtype=np.int64)
    moves = 0
    throughput = np.array([p.tokens_per_second_per_replica for p in pools])
    explain = getattr(policy, "explain", None)
    said_rules: dict[str, int] = {}
    rule_index = np.full(steps, -1, dtype=np.int64)
    planned = np.full(steps, np.nan, dtype=np.float64)
    for step in range(steps):
        fleet.promote(step)
        observed = float(demand.observed_tokens_per_second[step])
        ready_now, starting_now = fleet.view()
        view = StepView(
            index=step,
            at=demand.at(step),
            observed_tokens_per_second=None if math.isnan(observed) else observed,
            ready=ready_now,
            starting=starting_now,
        )
        decision = policy.decide(view)
        if explain is not None:
            said: Explanation = explain()
            rule_index[step] = said_rules.setdefault(said.rule, len(said_rules))
            if said.planned_tokens_per_second is not None:
                planned[step] = said.planned_tokens_per_second
        if step == 0 and decision is not None and not isinstance(decision, Actions):
            # Warm start: the trace begins with the policy's placement already serving.
            placed = decision.target if isinstance(decision, Rollout) else decision
            for index, pool in enumerate(pools):
                fleet.ready[index] = min(max(0, int(placed.get(pool.name, 0))), pool.max_replicas)
        elif isinstance(decision, Actions):
            if step == 0:
                for index, pool in enumerate(pools):
                    fleet.ready[index] = min(
                        int(decision.starts.get(pool.name, 0)), pool.max_replicas
                    )
            else:
                moves += _apply_actions(fleet, decision, step, demand.step_seconds)
        elif isinstance(decision, Rollout):
            moves += _roll_out(
                fleet, decision.target, decision.writes, step, demand.step_seconds, rules
            )
        elif decision is not None:
            moves += _roll_out(fleet, decision, None, step, demand.step_seconds, rules)
        for index in range(len(pools)):
            billed[index, step] = fleet.billed(index)
            ready[index, step] = fleet.ready[index]
        if progress is not None:
            progress(step)
    capacity = (ready * throughput[:, None]).sum(axis=0) * demand.step_seconds
    unmet = np.maximum(0.0, demand.arriving_tokens - capacity)
    unmet[unmet <= UNMET_EPSILON_TOKENS] = 0.0
    return PolicyRun(
        name=policy.name,
        pools=tuple(pools),
        step_seconds=demand.step_seconds,
        billed=billed,
        ready=ready,
        unmet_tokens=unmet,
        arriving_tokens=demand.arriving_tokens.copy(),
        moves=moves,
        rules=tuple(said_rules),
        rule_index=rule_index,
        planned_tokens_per_second=planned,
    )
