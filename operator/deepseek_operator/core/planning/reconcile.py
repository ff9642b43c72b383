"""The operator's whole decision for one tick: `decide(snapshot, now, history) -> Decision`.

The kopf handlers call it at every reconcile with what they observed; the replay's `ours`
policy calls it at every step with what its simulated fleet shows. What `simulate` reports is
therefore what the operator does. Pure: the snapshot, the instant and the history are arguments.

1. **Resolve** what the schema cannot check: the time zone, the PoolProfiles the variants name,
   catalog keys, exchange rates, whether the model fits any pool. A broken reference gives
   Ready=False with its reason and touches nothing.
2. **Plan** with `planner.plan`: capacity per pool is this deployment's scheduled replicas there
   plus what fits into each usable node's free room; the running placement is the plan in force
   (kept in the history), so a half-finished move is not mistaken for a new placement.
3. **Pre-warm**: when the next window boundary needs replicas the plan does not run now, they
   start `startupSeconds` before the boundary, so they are Ready when it comes; the old pool
   shrinks only once the boundary has passed (the plan in force still wants it until then).
4. **Step** towards the target with `rollout.next_step`, from the observed counts alone.
5. **Report**: the status with every condition, the Events of this tick (each move with its
   cost effect), and the next history, which lives in `status.history`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cached_property
from typing import Literal

from deepseek_operator.api.conditions import (
    CAPACITY_AVAILABLE,
    CONTENDED,
    DEGRADED,
    METRICS_AVAILABLE,
    PROGRESSING,
    READY,
    REASON_MODEL_FITS_NO_POOL,
    REASON_NOT_YET_OBSERVED,
    REASON_PAUSED,
    REASON_RECOMMEND_ONLY,
    REASON_UNKNOWN_CURRENCY_RATE,
    find_condition,
    initial_conditions,
    set_condition,
)
from deepseek_operator.api.deployment import DeepSeekDeployment
from deepseek_operator.api.pool import PoolProfile
from deepseek_operator.api.resolution import find_spec_problems, lookup_time_zone
from deepseek_operator.api.status import (
    MAX_MOVES,
    Condition,
    ConditionStatus,
    DecisionHistory,
    DeepSeekDeploymentStatus,
    DemandForecast,
    MoveRecord,
    NextTransition,
    PoolEntered,
    PoolPlacement,
    PoolReplicas,
    PoolSteady,
    PoolThroughput,
    ThroughputMemory,
)
from deepseek_operator.api.status import Demand as DemandStatus
from deepseek_operator.api.status import DemandSample as DemandSampleStatus
from deepseek_operator.core.costing.catalog import HARDWARE, MODELS
from deepseek_operator.core.costing.cost import UnknownCurrencyRate
from deepseek_operator.core.costing.money import format_money
from deepseek_operator.core.planning import correction, inputs
from deepseek_operator.core.planning.arbiter import Allotment
from deepseek_operator.core.planning.correction import Learnt, PoolLoad, Steady
from deepseek_operator.core.planning.forecast import BINS, DemandProfile, Outlook, observe
from deepseek_operator.core.planning.planner import Plan, PlanSpec, PoolOption, Slo, plan
from deepseek_operator.core.planning.planner import PoolReplicas as PlannerReplicas
from deepseek_operator.core.planning.rollout import (
    PoolCounts,
    next_step,
    reached,
)
from deepseek_operator.core.planning.schedule import window_and_transition
from deepseek_operator.core.planning.stability import (
    DemandSample,
    History,
    Move,
    compact_samples,
    record,
)
from deepseek_operator.core.workloads.engines import RATE_WINDOW_SECONDS, engine_profile

REASON_INVALID_SPEC = "InvalidSpec"
"""The spec maps to no planner inputs (e.g. tensorParallel above a node's GPUs)."""
REASON_SERVING = "Serving"
REASON_SCALED_TO_ZERO = "ScaledToZero"
REASON_NO_READY_REPLICAS = "NoReadyReplicas"
REASON_BELOW_MIN_AVAILABLE = "BelowMinAvailable"
REASON_MOVING = "Moving"
REASON_PREWARMING = "Prewarming"
REASON_SCALING = "Scaling"
REASON_PLACEMENT_REACHED = "PlacementReached"
REASON_AS_PLANNED = "AsPlanned"
REASON_DEMAND_EXCEEDS_CAPACITY = "DemandExceedsCapacity"
REASON_BELOW_MIN_REPLICAS = "BelowMinReplicas"
REASON_METRICS_FRESH = "MetricsFresh"
REASON_NO_LOAD_SOURCE = "NoLoadSource"
REASON_CAPACITY_SUFFICIENT = "Sufficient"
REASON_POOL_FULL = "PoolFull"
REASON_UNSCHEDULABLE = "Unschedulable"
REASON_DISPLACED = "Displaced"
"""The arbiter placed this deployment below its preference: others needed the capacity."""
REASON_DISPLACING = "Displacing"
"""This deployment holds capacity that others wanted (they were placed below preference)."""
REASON_UNCONTENDED = "Uncontended"
REASON_POOL_INVALID = "PoolInvalid"
"""A PoolProfile the variants name exists but does not parse (written for another version)."""

EVENT_MOVING = "Moving"
EVENT_SCALING_UP = "ScalingUp"
EVENT_SCALING_DOWN = "ScalingDown"
EVENT_PREWARMING = "Prewarming"
EVENT_EXTERNAL_CHANGE = "ExternalChangeReverted"
EVENT_SPEC_INVALID = "SpecInvalid"
EVENT_CAPACITY_SHORT = "CapacityShort"
EVENT_METRICS_UNAVAILABLE = "MetricsUnavailable"
EVENT_METRICS_RESTORED = "MetricsRestored"
EVENT_MOVE_FAILED = "MoveFailed"
EVENT_CONTENDED = "Contended"

MOVE_WINDOW = "Window"
"""The pool left is excluded by the window's policy."""
MOVE_CAPACITY = "Capacity"
"""The pool left has no free capacity for this deployment's replicas."""
MOVE_SLO = "SLO"
"""The pool left misses the (window's) SLO per request or time to first token."""
MOVE_SPEC = "Spec"
"""The pool left cannot run the variant (it does not fit, or has no throughput figure)."""
MOVE_DEMAND = "Demand"
"""The placement left could not serve the demand (within replicas.max) where it ran."""
MOVE_COST = "Cost"
"""A cost move: the pool left is still allowed, and moving passed the savings gate."""
FAILED_UNSCHEDULABLE = "Unschedulable"
"""The move's new replicas could not be scheduled."""
FAILED_NO_CAPACITY = "NoCapacity"
"""The pool the move was heading for lost its free capacity before the move completed."""

# ---------------------------------------------------------------------------------------------
# What goes in


@dataclass(frozen=True)
class NodeRoom:
    """What one usable node of a pool can still take: allocatable minus its pods' requests."""

    gpus: int = 0
    cpu_millicores: int = 0
    memory_bytes: int = 0


@dataclass(frozen=True)
class PoolState:
    """This deployment on one pool, as observed."""

    pool: str
    desired: int = 0
    """spec.replicas of the pool's Deployment (0 when there is none)."""
    ready: int = 0
    """Pods Ready and not terminating."""
    pods: int = 0
    """Pods not terminating (Ready, starting and Pending alike)."""
    scheduled: int = 0
    """Pods bound to a node and not terminating: they hold capacity there."""
    unschedulable: int = 0
    """Pods the scheduler could not place (PodScheduled=False, reason Unschedulable)."""
    deployment_exists: bool = False
    node_count: int | None = None
    """Nodes of the pool, usable or not (spreads its staff cost); None: the pool's size is
    unknown here and its capacity comes from `PoolSetup` (the replay)."""
    rooms: tuple[NodeRoom, ...] | None = None
    """Free room per usable node; None: capacity from the pool's size (the replay)."""
    nodes_per_room: tuple[int, ...] | None = None
    """How many usable nodes each entry of `rooms` stands for (None: one each): a pool of a
    thousand identical nodes is a few distinct rooms."""

    @property
    def counts(self) -> PoolCounts:
        return PoolCounts(desired=self.desired, ready=self.ready)


@dataclass(frozen=True)
class DemandReading:
    """Demand measured at `observed_at`."""

    tokens_per_second: float
    observed_at: datetime
    queue_depth: float | None = None
    """Requests waiting; above `load.queueDepthThreshold` they count as unmet demand."""
    pools: tuple[PoolLoad, ...] = ()
    """Per pool: tokens/s and running requests, for the capacity correction."""


@dataclass(frozen=True)
class DemandUnavailable:
    """No usable measurement: the placement is held (windows still apply)."""

    reason: str
    message: str


Demand = DemandReading | DemandUnavailable | None
"""None: the spec has no load section, so each window is planned for its replicas.min."""


@dataclass(frozen=True)
class Snapshot:
    """Everything observed for one DeepSeekDeployment."""

    deployment: DeepSeekDeployment
    profiles: Mapping[str, PoolProfile]
    """PoolProfiles by name (the valid ones)."""
    pools: Mapping[str, PoolState] = field(default_factory=dict)
    """Observed state per pool; pools absent here have nothing of this deployment."""
    demand: Demand = None
    invalid_profiles: Mapping[str, str] = field(default_factory=dict)
    """PoolProfiles that exist but do not parse, with the problem."""
    setups: Mapping[str, inputs.PoolSetup] = field(default_factory=dict)
    """Pool sizes and start-up times given from outside (the replay's cluster file)."""
    resolution: Resolution | None = None
    """The spec and pools already resolved by `resolve` (the replay, whose pools never change,
    resolves once); None: resolve them now."""
    allotment: Allotment | None = None
    """This deployment's share of the cluster-wide arbiter's split (`arbitration.decide_fleet`):
    its per-pool replica caps bound each pool's capacity, and status says who it competes with;
    None: planned alone against the free capacity it sees (the replay, a single deployment)."""


@dataclass(frozen=True)
class ReconcileHistory:
    """The planner's history, the plan in force and the replicas last written."""

    planner: History = field(default_factory=History)
    target: Mapping[str, int] | None = None
    """The last plan's replicas per pool; None: unknown (first visit, or status lost)."""
    written: Mapping[str, int] = field(default_factory=dict)
    throughput: Mapping[str, Learnt] = field(default_factory=dict)
    """The capacity correction learnt per pool."""
    steady: Mapping[str, Steady] = field(default_factory=dict)
    """Ready replicas per pool and since when (a correction sample needs a steady pool)."""
    profile: DemandProfile = field(default_factory=DemandProfile)
    """The demand profile the forecast learns (`forecast.py`)."""


# ---------------------------------------------------------------------------------------------
# What comes out

EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class EventNote:
    """An Event to emit on the DeepSeekDeployment, with the cost effect when it has one."""

    type: EventType
    reason: str
    message: str
    cost_per_hour_before: float | None = None
    cost_per_hour_after: float | None = None


@dataclass(frozen=True)
class PoolWrite:
    """One pool's Deployment: replicas to write now, and the variant it runs."""

    pool: str
    replicas: int
    variant_index: int
    option: PoolOption


@dataclass(frozen=True)
class LoadBound:
    """The demand the plan in force covers with its headroom (tokens/s, the queue beyond its
    threshold counted at `tokens_per_waiting_request` each). A reading above it calls for a
    decision at once: the operator's demand poller uses it to wake the deployment's loop."""

    tokens_per_second: float
    tokens_per_waiting_request: float
    queue_threshold: float

    def exceeded_by(self, tokens_per_second: float, queue_depth: float | None) -> bool:
        waiting = max(0.0, (queue_depth or 0.0) - self.queue_threshold)
        return tokens_per_second + waiting * self.tokens_per_waiting_request > (
            self.tokens_per_second * (1 + 1e-9)
        )


@dataclass(frozen=True)
class PoolMove:
    """Replicas leaving `from_pool` for `to_pool`, and why (`MOVE_*` or `FAILED_*`)."""

    from_pool: str
    to_pool: str
    reason: str


@dataclass(frozen=True)
class Decision:
    """What to do now and what to report."""

    plan: Plan | None
    target: Mapping[str, int]
    """Replicas per pool once this tick's move completes (the plan, plus any pre-warm)."""
    writes: tuple[PoolWrite, ...] | None
    """Deployments to create or scale now; None: touch no workload (paused, recommend, a
    broken spec)."""
    deletes: tuple[str, ...]
    """Pools whose Deployment is no longer needed and already has no pods."""
    report_status: Callable[[], DeepSeekDeploymentStatus] = field(repr=False, compare=False)
    """Builds `status`: validating the whole status model is most of a tick's work, and the
    replay, which calls decide() at every step, never reads it."""
    events: tuple[EventNote, ...]
    history: ReconcileHistory
    wake_at: datetime | None
    """Look again no later than this (a pre-warm start or a window boundary)."""
    moves: tuple[PoolMove, ...] = ()
    """Moves decided this tick, one per (pool left, pool entered)."""
    failed_moves: tuple[PoolMove, ...] = ()
    """Moves given up this tick before they completed, with the cause."""
    load_bound: LoadBound | None = None
    """Demand beyond which the plan in force no longer suffices (None: no load source)."""

    @cached_property
    def status(self) -> DeepSeekDeploymentStatus:
        """The status to write, built on first use (the same every time)."""
        return self.report_status()


# ---------------------------------------------------------------------------------------------


def decide(snapshot: Snapshot, now: datetime, history: ReconcileHistory | None = None) -> Decision:
    """The next tick for one deployment; see the module docstring."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    dsd = snapshot.deployment
    spec = dsd.spec
    generation = int(dsd.metadata.get("generation") or 0)
    previous = dsd.status or DeepSeekDeploymentStatus()
    memory = history if history is not None else ReconcileHistory()
    conditions = initial_conditions(previous.conditions, observed_generation=generation, now=now)
    report = _Report(conditions, generation, now)

    problem = None if snapshot.resolution is not None else spec_problem(snapshot)
    resolved: Resolution | None = snapshot.resolution
    if problem is None and resolved is None:
        try:
            resolved = resolve(snapshot)
        except UnknownCurrencyRate as error:
            problem = (REASON_UNKNOWN_CURRENCY_RATE, str(error))
        except inputs.PlanningInputError as error:
            problem = (REASON_INVALID_SPEC, str(error))
    if resolved is not None and not any(o.fits for o in resolved.options):
        why = "; ".join(f"{o.name}: {o.fit_reason}" for o in resolved.options)
        problem = (REASON_MODEL_FITS_NO_POOL, f"the model fits no pool: {why}")
    if problem is not None or resolved is None:
        reason, message = problem or (REASON_INVALID_SPEC, "unresolved")
        return _stopped(snapshot, previous, report, memory, reason, message)

    if snapshot.allotment is not None:
        resolved = replace(resolved, options=_capped(resolved.options, snapshot.allotment))
    rules = correction_rules(snapshot)
    learnt = correction.Memory(memory.throughput, memory.steady)
    verdicts: dict[str, correction.Verdict] = {}
    if rules is not None:
        loads = snapshot.demand.pools if isinstance(snapshot.demand, DemandReading) else ()
        learnt = correction.learn(
            learnt,
            resolved.options,
            loads,
            {name: state.ready for name, state in snapshot.pools.items()},
            {name: state.desired for name, state in snapshot.pools.items()},
            now,
            rules,
        )
        verdicts = correction.verdicts(learnt, resolved.options, rules)
        resolved = replace(resolved, options=correction.corrected(resolved.options, verdicts))

    current = dict(memory.target) if memory.target is not None else _observed_desired(snapshot)
    queued = _queue_tokens_per_second(snapshot, resolved, now)
    measured_demand = _demand_value(snapshot.demand)
    demand = None if measured_demand is None else measured_demand + queued
    observed = [
        PlannerReplicas(pool=o.name, desired=current.get(o.name, 0), ready=_ready(snapshot, o.name))
        for o in resolved.options
        if current.get(o.name, 0) or _ready(snapshot, o.name)
    ]
    zone = lookup_time_zone(resolved.spec.schedule.time_zone)
    forecasting = spec.load is not None and spec.load.forecast
    outlook = Outlook(memory.profile, zone) if forecasting else None
    planned = plan(resolved.spec, resolved.options, observed, demand, now, memory.planner, outlook)
    if spec.paused:
        target = current  # frozen: what runs stays the plan in force
    elif _short_of_minimum(planned, current):
        # No allowed pool, or too little capacity for replicas.min: stopping what runs would
        # only turn a shortfall into an outage, so the placement is held (Degraded says why).
        target = {p: max(n, current.get(p, 0)) for p, n in {**current, **planned.replicas}.items()}
    else:
        target = dict(planned.replicas)
    # Without a load source there is no measurement to remember (the plan used 0 tok/s).
    measured = snapshot.demand is not None
    planner_history = record(
        memory.planner,
        {o.pool: o.desired for o in observed},
        target,
        planned.demand_tokens_per_second if measured else None,
        planned.effective_demand_tokens_per_second if measured else None,
        now,
        resolved.spec.load,
    )
    warm = _prewarm(resolved, planned, target, demand, now, planner_history)
    step_target = {**target, **{p: max(target.get(p, 0), n) for p, n in warm.extra.items()}}

    names = [o.name for o in resolved.options]
    counts = {name: state.counts for name, state in snapshot.pools.items()}
    gpus = {o.name: o.gpus_per_replica for o in resolved.options}
    acting = spec.mode == "apply" and not spec.paused
    surge = spec.migration.max_surge_gpus
    step = next_step(names, step_target, counts, gpus, surge) if acting else {}
    writes, deletes = _writes(snapshot, resolved, step, step_target) if acting else (None, ())

    events: list[EventNote] = []
    if acting:
        events += _external_changes(snapshot, memory)
    failed = _failed_moves(snapshot, resolved, memory, target) if acting else ()
    events += [_failure_event(snapshot, move, memory) for move in failed]
    events += _plan_events(resolved, current, target, planned, _arbiter_note(snapshot.allotment))
    was = find_condition(previous.conditions, PROGRESSING)
    if warm.extra and acting and (was is None or was.reason != REASON_PREWARMING):
        events.append(warm.event)  # once, when pre-warming begins
    reading = snapshot.demand
    next_memory = ReconcileHistory(
        planner=_compacted(planner_history),
        target=target,
        written=dict(step) if acting else dict(memory.written),
        throughput=learnt.learnt,
        steady=learnt.steady,
        profile=observe(memory.profile, reading.tokens_per_second, now, zone)
        if forecasting and isinstance(reading, DemandReading)
        else memory.profile,
    )
    build = _status(
        snapshot, resolved, planned, report, target, step_target, step, warm, next_memory
    )

    def status() -> DeepSeekDeploymentStatus:
        return build().model_copy(
            update={
                "demand": _demand_status(snapshot.demand, queued, previous),
                "capacity_correction": _correction_status(verdicts, target, snapshot),
            }
        )

    events += report.transition_events(previous.conditions)
    events += _contention_events(previous.conditions, report.conditions)
    return Decision(
        plan=planned,
        target=step_target,
        writes=writes,
        deletes=deletes,
        report_status=status,
        events=tuple(events),
        history=next_memory,
        wake_at=_wake_at(planned, warm, now),
        moves=_moves(resolved, planned, current, target),
        failed_moves=failed,
        load_bound=_load_bound(snapshot, resolved, target, now),
    )


# ---------------------------------------------------------------------------------------------
# Resolving the spec


@dataclass(frozen=True)
class Resolution:
    """The deployment as planner inputs: its rules, and each pool it names as plain numbers."""

    spec: PlanSpec
    options: tuple[PoolOption, ...]
    variant_index: Mapping[str, int]
    currency: str


def spec_problem(snapshot: Snapshot) -> tuple[str, str] | None:
    spec = snapshot.deployment.spec
    known = set(snapshot.profiles)
    problems = find_spec_problems(
        spec,
        pool_names=known,
        catalog_keys=set(MODELS),
        accelerators={
            n: p.spec.hardware.accelerator_model
            for n, p in snapshot.profiles.items()
            if p.spec.hardware.accelerator_model is not None  # custom nodes need no catalog
        },
        hardware_names=set(HARDWARE),
    )
    for index, variant in enumerate(spec.variants):
        broken = snapshot.invalid_profiles.get(variant.pool)
        if broken is not None:
            return (
                REASON_POOL_INVALID,
                f"spec.variants[{index}].pool: PoolProfile {variant.pool!r} is invalid: {broken}",
            )
    if problems:
        first = problems[0]
        text = "; ".join(f"{p.field}: {p.message}" for p in problems)
        return first.reason, text
    return None


def resolve(snapshot: Snapshot) -> Resolution:
    """Planner inputs from the spec, the PoolProfiles and the observed pools: capacity is this
    deployment's scheduled replicas on a pool plus what fits into its usable nodes' free room
    (or, without observed nodes, the pool's size from `setups`).

    Raises `PlanningInputError` or `UnknownCurrencyRate` naming what does not resolve."""
    dsd = snapshot.deployment
    spec = dsd.spec
    currency = inputs.report_currency(spec, snapshot.profiles.values())
    rates = inputs.exchange_rates(spec)
    options: list[PoolOption] = []
    index_of: dict[str, int] = {}
    for index, variant in enumerate(spec.variants):
        profile = snapshot.profiles[variant.pool]
        kind = profile.spec.hardware.kind
        engine = engine_profile(variant.engine)
        if not engine.supports(kind, variant.precision):
            allowed = ", ".join(engine.precisions.get(kind, ())) or "nothing"
            raise inputs.PlanningInputError(
                f"spec.variants[{index}]: {variant.engine} cannot run {variant.precision} on "
                f"pool {variant.pool}, a {kind} pool (it runs {allowed} there)"
            )
        state = snapshot.pools.get(variant.pool)
        setup = snapshot.setups.get(variant.pool, inputs.PoolSetup())
        if state is not None and state.node_count is not None:
            setup = replace(setup, nodes=max(1, state.node_count))
        option = inputs.pool_option(dsd, variant, index, profile, setup, currency, rates)
        if option.fits and state is not None and state.rooms is not None:
            need = inputs.replica_resources(dsd, variant, profile)
            counts = state.nodes_per_room or (1,) * len(state.rooms)
            free = sum(
                count * need.fitting(room.gpus, room.cpu_millicores, room.memory_bytes)
                for room, count in zip(state.rooms, counts, strict=True)
            )
            option = replace(option, capacity_replicas=state.scheduled + free)
        options.append(option)
        index_of[variant.pool] = index
    return Resolution(inputs.plan_spec(spec), tuple(options), index_of, currency)


def _capped(options: Sequence[PoolOption], allotment: Allotment) -> tuple[PoolOption, ...]:
    """Each pool's capacity bounded by the arbiter's cap for this deployment (pools it has no
    cap for, e.g. ones its window forbids now, are left as observed)."""
    return tuple(
        replace(o, capacity_replicas=min(o.capacity_replicas, allotment.caps[o.name]))
        if o.name in allotment.caps and o.capacity_replicas > allotment.caps[o.name]
        else o
        for o in options
    )


def _short_of_minimum(planned: Plan, current: Mapping[str, int]) -> bool:
    """The plan places fewer than replicas.min and fewer than run now."""
    total = planned.total_replicas
    return (
        not planned.feasible
        and total < planned.replica_bounds.min
        and total < sum(current.values())
    )


def _observed_desired(snapshot: Snapshot) -> dict[str, int]:
    return {name: s.desired for name, s in snapshot.pools.items() if s.desired > 0}


def _ready(snapshot: Snapshot, pool: str) -> int:
    state = snapshot.pools.get(pool)
    return state.ready if state is not None else 0


def _demand_value(demand: Demand) -> float | None:
    if demand is None:
        return 0.0
    if isinstance(demand, DemandUnavailable):
        return None
    return demand.tokens_per_second


def _slo_now(resolved: Resolution, now: datetime) -> Slo:
    window, _ = window_and_transition(resolved.spec.schedule, now)
    return resolved.spec.slo.overridden(window.slo if window else None)


def _queue_tokens_per_second(snapshot: Snapshot, resolved: Resolution, now: datetime) -> float:
    """Unmet demand the queue shows: each request waiting beyond `load.queueDepthThreshold`
    needs at least the SLO's tokens/s per request (the active window's) once it runs."""
    demand, load = snapshot.demand, snapshot.deployment.spec.load
    if not isinstance(demand, DemandReading) or demand.queue_depth is None or load is None:
        return 0.0
    waiting = demand.queue_depth - load.queue_depth_threshold
    if not math.isfinite(waiting) or waiting <= 0:
        return 0.0
    return waiting * (_slo_now(resolved, now).min_tokens_per_second_per_request or 0.0)


def _load_bound(
    snapshot: Snapshot, resolved: Resolution, target: Mapping[str, int], now: datetime
) -> LoadBound | None:
    """The demand the target placement covers with its headroom: above it, a new plan adds
    replicas, so a reading beyond it is worth deciding on at once."""
    load = snapshot.deployment.spec.load
    if load is None:
        return None
    slo = _slo_now(resolved, now)
    capacity = math.fsum(
        o.tokens_per_second_per_replica * target.get(o.name, 0) for o in resolved.options
    )
    return LoadBound(
        tokens_per_second=capacity / (1 + slo.headroom_fraction),
        tokens_per_waiting_request=slo.min_tokens_per_second_per_request or 0.0,
        queue_threshold=float(load.queue_depth_threshold),
    )


def _demand_status(
    demand: Demand, queued: float, previous: DeepSeekDeploymentStatus
) -> DemandStatus | None:
    """The demand measured now; while metrics are unavailable, the last one measured (its
    observedAt shows its age)."""
    if isinstance(demand, DemandUnavailable):
        return previous.demand
    if not isinstance(demand, DemandReading):
        return None
    return DemandStatus(
        tokens_per_second=max(0.0, demand.tokens_per_second),
        queue_depth=demand.queue_depth,
        queue_tokens_per_second=_shown(queued) if demand.queue_depth is not None else None,
        observed_at=demand.observed_at,
    )


def correction_rules(snapshot: Snapshot) -> correction.Rules | None:
    """`spec.load.capacityCorrection` as the correction's rules; None without a load source."""
    load = snapshot.deployment.spec.load
    if load is None:
        return None
    stated = load.capacity_correction
    return correction.Rules(
        enabled=stated.enabled,
        min_samples=stated.min_samples,
        min_factor=stated.min_factor,
        max_factor=stated.max_factor,
        window_seconds=float(RATE_WINDOW_SECONDS),
    )


def _correction_status(
    verdicts: Mapping[str, correction.Verdict], target: Mapping[str, int], snapshot: Snapshot
) -> list[PoolThroughput]:
    """Pools in use (planned or Ready) and pools with samples, each with both figures."""
    shown = []
    for pool, verdict in verdicts.items():
        state = snapshot.pools.get(pool)
        used = target.get(pool, 0) > 0 or (state is not None and state.ready > 0)
        if not used and verdict.samples == 0:
            continue
        factor = verdict.factor
        shown.append(
            PoolThroughput(
                pool=pool,
                calibrated_tokens_per_second=_shown(verdict.calibrated_tokens_per_second) or 0.0,
                measured_tokens_per_second=None
                if factor is None
                else _shown(verdict.calibrated_tokens_per_second * factor),
                factor=None if factor is None else float(f"{factor:.3g}"),
                samples=verdict.samples,
                planned_tokens_per_second=_shown(verdict.planned_tokens_per_second) or 0.0,
                state=verdict.state,
                message=verdict.message[:1024],
            )
        )
    return shown[:16]


# ---------------------------------------------------------------------------------------------
# Pre-warming before a window boundary


@dataclass(frozen=True)
class _Prewarm:
    extra: Mapping[str, int] = field(default_factory=dict)
    """Replicas per pool started ahead of the boundary (beyond what the plan runs now)."""
    starts_at: datetime | None = None
    """When pre-warming for the next boundary starts (None: nothing to pre-warm)."""
    boundary: datetime | None = None
    event: EventNote = field(default_factory=lambda: EventNote("Normal", EVENT_PREWARMING, ""))


def _prewarm(
    resolved: Resolution,
    planned: Plan,
    target: Mapping[str, int],
    demand: float | None,
    now: datetime,
    history: History,
) -> _Prewarm:
    boundary = planned.next_transition
    if boundary is None or boundary <= now:
        return _Prewarm()
    startup = {o.name: o.startup_seconds for o in resolved.options}
    longest = max(startup.values(), default=0.0)
    if boundary - now > timedelta(seconds=longest):
        # Nothing can need starting yet; look again when the earliest pre-warm could begin.
        return _Prewarm(starts_at=boundary - timedelta(seconds=longest), boundary=boundary)
    current = [PlannerReplicas(pool=p, desired=n, ready=n) for p, n in target.items() if n > 0]
    future = plan(resolved.spec, resolved.options, current, demand, boundary, history)
    grows = {
        p.pool: p.replicas - target.get(p.pool, 0)
        for p in future.pools
        if p.replicas > target.get(p.pool, 0)
    }
    due = {
        pool: n
        for pool, n in grows.items()
        if boundary - now <= timedelta(seconds=startup.get(pool, 0.0))
    }
    if not grows:
        return _Prewarm()
    starts = min(boundary - timedelta(seconds=startup.get(p, 0.0)) for p in grows)
    if not due:
        return _Prewarm(starts_at=starts, boundary=boundary)
    window = f"the {future.window} window" if future.window else "the default policy"
    started = ", ".join(f"{p}+{n}" for p, n in sorted(due.items()))
    lead = int((boundary - now).total_seconds())
    local = boundary.astimezone(lookup_time_zone(resolved.spec.schedule.time_zone))
    message = (
        f"starting {started} {lead}s before {window} ({future.policy}) at "
        f"{local.isoformat(timespec='minutes')}, so they are Ready when it begins"
    )
    note = EventNote("Normal", EVENT_PREWARMING, message)
    return _Prewarm(extra=due, starts_at=starts, boundary=boundary, event=note)


def _wake_at(planned: Plan, warm: _Prewarm, now: datetime) -> datetime | None:
    moments = [m for m in (warm.starts_at, planned.next_transition) if m is not None and m > now]
    return min(moments, default=None)


# ---------------------------------------------------------------------------------------------
# Acting


def _writes(
    snapshot: Snapshot, resolved: Resolution, step: Mapping[str, int], target: Mapping[str, int]
) -> tuple[tuple[PoolWrite, ...], tuple[str, ...]]:
    by_name = {o.name: o for o in resolved.options}
    writes: list[PoolWrite] = []
    deletes: list[str] = []
    for name, option in by_name.items():
        replicas = step.get(name, 0)
        state = snapshot.pools.get(name, PoolState(name))
        idle = replicas == 0 and target.get(name, 0) == 0
        if idle and state.desired == 0 and state.pods == 0:
            if state.deployment_exists:
                deletes.append(name)
            continue
        writes.append(PoolWrite(name, replicas, resolved.variant_index[name], option))
    # Deployments on pools the spec no longer names: scale to zero, then delete.
    for name, state in snapshot.pools.items():
        if name in by_name or not state.deployment_exists:
            continue
        if state.desired == 0 and state.pods == 0:
            deletes.append(name)
    return tuple(writes), tuple(sorted(deletes))


def _external_changes(snapshot: Snapshot, memory: ReconcileHistory) -> list[EventNote]:
    notes = []
    for name, state in sorted(snapshot.pools.items()):
        wrote = memory.written.get(name)
        if wrote is None or not state.deployment_exists or state.desired == wrote:
            continue
        notes.append(
            EventNote(
                "Warning",
                EVENT_EXTERNAL_CHANGE,
                f"the {name} pool's Deployment was set to {state.desired} replicas outside the "
                f"operator; the operator wrote {wrote} and steers it back to its plan",
            )
        )
    return notes


def _arbiter_note(allotment: Allotment | None) -> str:
    """Why a displaced deployment's plan leaves a pool it would choose alone."""
    if allotment is None or not allotment.displaced_by:
        return ""
    return (
        f"the cluster-wide arbiter gives {', '.join(allotment.lost_pools)} capacity to "
        f"{', '.join(allotment.displaced_by)}"
    )


def _plan_events(
    resolved: Resolution,
    current: Mapping[str, int],
    target: Mapping[str, int],
    planned: Plan,
    note: str = "",
) -> list[EventNote]:
    before = {p: n for p, n in current.items() if n > 0}
    after = {p: n for p, n in target.items() if n > 0}
    if before == after:
        return []
    cost = {o.name: o.replica_cost_per_hour for o in resolved.options}
    cost_before = math.fsum(cost.get(p, 0.0) * n for p, n in before.items())
    cost_after = math.fsum(cost.get(p, 0.0) * n for p, n in after.items())
    if set(before) == set(after) or not before:
        grows = sum(after.values()) >= sum(before.values())
        reason = EVENT_SCALING_UP if grows else EVENT_SCALING_DOWN
    else:
        reason = EVENT_MOVING
    effect = _cost_effect(cost_before, cost_after, resolved.currency)
    why = f"{note}; {planned.reason}" if note else planned.reason
    message = f"{_pools(before) or 'nothing'} -> {_pools(after) or 'nothing'}: {effect}; {why}"
    return [EventNote("Normal", reason, message[:1024], cost_before, cost_after)]


def _moves(
    resolved: Resolution, planned: Plan, current: Mapping[str, int], target: Mapping[str, int]
) -> tuple[PoolMove, ...]:
    """The plan changes the set of pools: one entry per (pool left, pool entered), with why the
    first was left. A pool that only shrinks moves to the pools that grow, or, when none does,
    to those that remain; pools only added come from the pools that ran before (Demand)."""
    before = {p: n for p, n in current.items() if n > 0}
    after = {p: n for p, n in target.items() if n > 0}
    if not before or not after or set(before) == set(after):
        return ()
    shrinking = sorted(p for p, n in before.items() if after.get(p, 0) < n)
    growing = sorted(p for p, n in after.items() if before.get(p, 0) < n)
    if not shrinking:
        return tuple(
            PoolMove(source, destination, MOVE_DEMAND)
            for source in sorted(before)
            for destination in growing
        )
    destinations = growing or sorted(after)
    excluded = dict(planned.excluded)
    by_name = {o.name: o for o in resolved.options}
    served = math.fsum(
        by_name[p].tokens_per_second_per_replica * n for p, n in before.items() if p in by_name
    )
    short = (planned.required_tokens_per_second or 0.0) > served * (1 + 1e-9)
    moves = []
    for source in shrinking:
        why = _leaving_reason(by_name.get(source), excluded.get(source), planned, short)
        moves += [PoolMove(source, destination, why) for destination in destinations]
    return tuple(moves)


def _leaving_reason(
    option: PoolOption | None, excluded: str | None, planned: Plan, short: bool
) -> str:
    if excluded is None:
        return MOVE_DEMAND if short else MOVE_COST
    if option is None or not option.fits or option.tokens_per_second_per_replica <= 0:
        return MOVE_SPEC
    if (planned.policy == "cpuOnly" and option.kind == "gpu") or (
        planned.policy == "gpuOnly" and option.kind == "cpu"
    ):
        return MOVE_WINDOW
    if option.capacity_replicas <= 0:
        return MOVE_CAPACITY
    return MOVE_SLO


def _failed_moves(
    snapshot: Snapshot, resolved: Resolution, memory: ReconcileHistory, target: Mapping[str, int]
) -> tuple[PoolMove, ...]:
    """The move in force, given up before it completed because its new pool could not take
    the replicas: they stayed Unschedulable, or the pool's free capacity went elsewhere."""
    moves = memory.planner.moves
    if memory.target is None or not moves:
        return ()
    last = moves[-1]
    heading = {p: n for p, n in memory.target.items() if n > 0}
    if dict(last.after) != heading or {p: n for p, n in target.items() if n > 0} == heading:
        return ()
    counts = {name: state.counts for name, state in snapshot.pools.items()}
    if reached(heading, counts):
        return ()
    before = dict(last.before)
    capacity = {o.name: o.capacity_replicas for o in resolved.options}
    failed = []
    for pool in sorted(p for p, n in heading.items() if before.get(p, 0) < n):
        state = snapshot.pools.get(pool, PoolState(pool))
        if state.ready >= heading[pool]:
            continue
        if state.unschedulable:
            cause = FAILED_UNSCHEDULABLE
        elif capacity.get(pool, 0) < heading[pool]:
            cause = FAILED_NO_CAPACITY
        else:
            continue  # superseded by a new plan, not a failure
        failed += [
            PoolMove(source, pool, cause)
            for source, n in sorted(before.items())
            if heading.get(source, 0) < n
        ]
    return tuple(failed)


def _failure_event(snapshot: Snapshot, move: PoolMove, memory: ReconcileHistory) -> EventNote:
    last = memory.planner.moves[-1]
    state = snapshot.pools.get(move.to_pool, PoolState(move.to_pool))
    if move.reason == FAILED_UNSCHEDULABLE:
        why = f"{state.unschedulable} pod(s) on {move.to_pool} Unschedulable"
    else:
        why = f"{move.to_pool} has no free capacity left for its replicas"
    message = (
        f"the move {_pairs_text(last.before) or 'nothing'} -> {_pairs_text(last.after)} "
        f"decided at {last.at.isoformat(timespec='seconds')} is given up: {why}"
    )
    return EventNote("Warning", EVENT_MOVE_FAILED, message[:1024])


def _contention_events(before: Sequence[Condition], after: Sequence[Condition]) -> list[EventNote]:
    """An Event when the deployment becomes contended, or contended with others than before."""
    now_, was = find_condition(after, CONTENDED), find_condition(before, CONTENDED)
    if now_ is None or now_.status != "True":
        return []
    if was is not None and (was.status, was.reason, was.message) == (
        now_.status,
        now_.reason,
        now_.message,
    ):
        return []
    kind: EventType = "Warning" if now_.reason == REASON_DISPLACED else "Normal"
    return [EventNote(kind, EVENT_CONTENDED, f"{now_.reason}: {now_.message}"[:1024])]


def _cost_effect(before: float, after: float, currency: str) -> str:
    def per_hour(amount: float) -> str:
        return f"{format_money(amount, currency)}/h" if amount > 0 else "nothing"

    money = f"cost {per_hour(before)} -> {per_hour(after)}"
    if before <= 0:
        return money
    change = (after - before) / before
    return f"{money} ({change:+.0%})"


def _pools(replicas: Mapping[str, int]) -> str:
    return ",".join(f"{p}={n}" for p, n in sorted(replicas.items()) if n > 0)


# ---------------------------------------------------------------------------------------------
# Reporting


class _Report:
    """Conditions being set this tick, and the Events their transitions call for."""

    def __init__(self, conditions: Sequence[Condition], generation: int, now: datetime) -> None:
        self.conditions = list(conditions)
        self.generation = generation
        self.now = now

    def set(self, type_: str, status: ConditionStatus, reason: str, message: str) -> None:
        self.conditions = set_condition(
            self.conditions,
            type=type_,
            status=status,
            reason=reason,
            message=message[:32768],
            observed_generation=self.generation,
            now=self.now,
        )

    def transition_events(self, before: Sequence[Condition]) -> list[EventNote]:
        """Warnings for conditions that turned bad (or changed reason while bad) this tick."""
        watched = {
            READY: ("False", EVENT_SPEC_INVALID),
            CAPACITY_AVAILABLE: ("False", EVENT_CAPACITY_SHORT),
            METRICS_AVAILABLE: ("False", EVENT_METRICS_UNAVAILABLE),
        }
        notes = []
        for type_, (bad, reason) in watched.items():
            now_ = find_condition(self.conditions, type_)
            was = find_condition(before, type_)
            if now_ is None or now_.status != bad or now_.reason == REASON_NO_LOAD_SOURCE:
                continue
            if type_ == READY and now_.reason in (
                REASON_NO_READY_REPLICAS,
                REASON_BELOW_MIN_AVAILABLE,
            ):
                continue
            if was is not None and was.status == now_.status and was.reason == now_.reason:
                continue
            notes.append(EventNote("Warning", reason, f"{now_.reason}: {now_.message}"[:1024]))
        restored = self._metrics_restored(find_condition(before, METRICS_AVAILABLE))
        return [*notes, *restored]

    def _metrics_restored(self, was: Condition | None) -> list[EventNote]:
        """A Normal Event when measured demand is back after being unavailable."""
        now_ = find_condition(self.conditions, METRICS_AVAILABLE)
        if now_ is None or now_.status != "True" or was is None or was.status != "False":
            return []
        if was.reason in (REASON_NO_LOAD_SOURCE, REASON_NOT_YET_OBSERVED):
            return []
        seconds = int((self.now - was.last_transition_time).total_seconds())
        message = (
            f"metrics are back after {seconds}s unavailable ({was.reason}): planning with "
            f"measured demand again; {now_.message}"
        )
        return [EventNote("Normal", EVENT_METRICS_RESTORED, message[:1024])]


def _stopped(
    snapshot: Snapshot,
    previous: DeepSeekDeploymentStatus,
    report: _Report,
    memory: ReconcileHistory,
    reason: str,
    message: str,
) -> Decision:
    """A spec that cannot be planned: say why on Ready=False and touch nothing."""
    report.set(READY, "False", reason, message)
    report.set(PROGRESSING, "False", reason, "nothing is changed until the spec is fixed")
    report.set(DEGRADED, "True", reason, message)
    counts = {n: s for n, s in snapshot.pools.items()}
    status = previous.model_copy(
        update={
            "observed_generation": report.generation,
            "conditions": report.conditions,
            "ready_replicas": min(1000, sum(s.ready for s in counts.values())),
            "reason": message[:1024],
            "history": history_to_status(memory),
        }
    )
    events = report.transition_events(previous.conditions)
    return Decision(
        plan=None,
        target=dict(memory.target or {}),
        writes=None,
        deletes=(),
        report_status=lambda: status,
        events=tuple(events),
        history=memory,
        wake_at=None,
    )


def _status(
    snapshot: Snapshot,
    resolved: Resolution,
    planned: Plan,
    report: _Report,
    target: Mapping[str, int],
    step_target: Mapping[str, int],
    step: Mapping[str, int],
    warm: _Prewarm,
    memory: ReconcileHistory,
) -> Callable[[], DeepSeekDeploymentStatus]:
    """Sets this tick's conditions on `report` now (the Events follow from them) and returns
    what builds the status model, which is only paid for when the status is read."""
    dsd = snapshot.deployment
    spec = dsd.spec
    states = snapshot.pools
    ready_total = sum(s.ready for s in states.values())
    target_total = sum(target.values())
    counts = {n: s.counts for n, s in states.items()}

    # Ready: serving with at least the replicas a move guarantees.
    floor = min(spec.migration.min_available, target_total)
    if target_total == 0 and ready_total == 0:
        report.set(READY, "True", REASON_SCALED_TO_ZERO, "the plan runs no replicas now")
    elif ready_total == 0:
        report.set(READY, "False", REASON_NO_READY_REPLICAS, "no replica is Ready yet")
    elif ready_total < floor:
        report.set(
            READY,
            "False",
            REASON_BELOW_MIN_AVAILABLE,
            f"{ready_total} Ready replicas, fewer than minAvailable {floor}",
        )
    else:
        report.set(READY, "True", REASON_SERVING, f"{ready_total} Ready replicas serve")

    # Progressing: paused, recommend-only, moving, or there.
    if spec.paused:
        report.set(PROGRESSING, "False", REASON_PAUSED, "spec.paused: placement is frozen")
    elif spec.mode == "recommend":
        report.set(
            PROGRESSING, "False", REASON_RECOMMEND_ONLY, "spec.mode recommend: plan reported only"
        )
    elif reached(step_target, counts):
        report.set(
            PROGRESSING, "False", REASON_PLACEMENT_REACHED, f"running {_pools(target) or 'nothing'}"
        )
    else:
        waiting = _waiting(states, step_target)
        leaving = any(s.ready > step_target.get(p, 0) for p, s in states.items())
        arriving = any(n > states.get(p, PoolState(p)).ready for p, n in step_target.items())
        if warm.extra:
            reason = REASON_PREWARMING
        elif leaving and arriving:
            reason = REASON_MOVING
        else:
            reason = REASON_SCALING
        report.set(
            PROGRESSING,
            "True",
            reason,
            f"towards {_pools(step_target) or 'nothing'}; {waiting}",
        )

    # Degraded: the plan cannot serve demand or replicas.min.
    if not planned.feasible:
        total = planned.total_replicas
        if total < planned.replica_bounds.min:
            report.set(DEGRADED, "True", REASON_BELOW_MIN_REPLICAS, planned.reason)
        else:
            report.set(DEGRADED, "True", REASON_DEMAND_EXCEEDS_CAPACITY, planned.reason)
    else:
        report.set(DEGRADED, "False", REASON_AS_PLANNED, "the plan meets demand and bounds")

    # MetricsAvailable.
    demand = snapshot.demand
    if demand is None:
        report.set(
            METRICS_AVAILABLE,
            "False",
            REASON_NO_LOAD_SOURCE,
            "spec.load is absent: each window runs its replicas.min",
        )
    elif isinstance(demand, DemandUnavailable):
        report.set(
            METRICS_AVAILABLE,
            "False",
            demand.reason,
            f"{demand.message}; holding the placement (windows still apply)",
        )
    else:
        report.set(
            METRICS_AVAILABLE,
            "True",
            REASON_METRICS_FRESH,
            f"{demand.tokens_per_second:.3g} tok/s at {demand.observed_at.isoformat()}",
        )

    # CapacityAvailable.
    short = _capacity_problems(resolved, states)
    if short:
        reason = (
            REASON_UNSCHEDULABLE if any("Unschedulable" in s for s in short) else REASON_POOL_FULL
        )
        report.set(CAPACITY_AVAILABLE, "False", reason, "; ".join(short))
    else:
        report.set(
            CAPACITY_AVAILABLE, "True", REASON_CAPACITY_SUFFICIENT, "every pool used has room"
        )

    if snapshot.allotment is not None:
        report.set(CONTENDED, *_contention(snapshot.allotment))
    elif find_condition(report.conditions, CONTENDED) is not None:
        report.set(
            CONTENDED,
            "False",
            REASON_UNCONTENDED,
            "takes no part in the cluster-wide split now (paused or recommend-only)",
        )

    generation, conditions = report.generation, list(report.conditions)
    return lambda: _status_model(
        snapshot, resolved, planned, target, memory, generation, conditions, ready_total
    )


def _status_model(
    snapshot: Snapshot,
    resolved: Resolution,
    planned: Plan,
    target: Mapping[str, int],
    memory: ReconcileHistory,
    generation: int,
    conditions: list[Condition],
    ready_total: int,
) -> DeepSeekDeploymentStatus:
    spec = snapshot.deployment.spec
    target_total = sum(target.values())
    placement = _placement(snapshot, resolved, target, planned)
    cloud = spec.cost_model.cloud_api_price_per_million_tokens if spec.cost_model else None
    per_million = planned.cost_per_million_tokens
    vs_cloud = None
    if cloud and per_million is not None:
        vs_cloud = max(-1_000_000.0, 100.0 * (1 - per_million / cloud))
    last_move = memory.planner.moves[-1] if memory.planner.moves else None
    return DeepSeekDeploymentStatus(
        observed_generation=generation,
        conditions=conditions,
        placement=placement,
        pools=_pools(target)[:1024],
        desired_replicas=min(1000, target_total),
        ready_replicas=min(1000, ready_total),
        active_window=planned.window or "",
        policy=planned.policy,
        currency=resolved.currency,
        cost_per_hour=_shown(planned.cost_per_hour),
        cost_per_million_tokens=_shown(per_million),
        baseline_cost_per_hour=_shown(planned.baseline_cost_per_hour),
        savings_percent=None
        if planned.savings_fraction is None
        else _shown(max(-1_000_000.0, 100.0 * planned.savings_fraction)),
        savings_vs_cloud_api_percent=_shown(vs_cloud),
        capacity_tokens_per_second=_shown(planned.capacity_tokens_per_second),
        reason=planned.reason[:1024],
        next_transition=None
        if planned.next_transition is None or planned.next_policy is None
        else NextTransition(
            at=planned.next_transition,
            window=planned.next_window or "",
            policy=planned.next_policy,
        ),
        last_move_time=last_move.at if last_move else None,
        last_move=_move_text(last_move) if last_move else "",
        history=history_to_status(memory),
    )


def _contention(allotment: Allotment) -> tuple[ConditionStatus, str, str]:
    """Contended: whether the arbiter placed this deployment below its preference because
    others needed the capacity, or placed others below theirs because this one holds it; the
    message names them."""
    if allotment.displaced_by:
        lost = ", ".join(
            f"{pool} ({allotment.replicas.get(pool, 0)} of the {allotment.preferred.get(pool, 0)} "
            "replicas it would take alone)"
            for pool in allotment.lost_pools
        )
        message = (
            f"placed below its preference on {lost}: the capacity went to "
            f"{', '.join(allotment.displaced_by)}, which the cluster-wide arbiter serves there at "
            "less total cost" + _by_priority(allotment)
        )
        if allotment.displacing:
            message += f"; it holds capacity {', '.join(allotment.displacing)} also wanted"
        return "True", REASON_DISPLACED, message
    if allotment.displacing:
        return (
            "True",
            REASON_DISPLACING,
            f"holds capacity that {', '.join(allotment.displacing)} also wanted: they fall back "
            "to their next-best pools, which the cluster-wide arbiter found cheaper in total",
        )
    return "False", REASON_UNCONTENDED, "the arbiter gives it the placement it would take alone"


def _by_priority(allotment: Allotment) -> str:
    return (
        f" or at higher priority (this one has {allotment.priority})" if allotment.priority else ""
    )


def _shown(value: float | None) -> float | None:
    """Four significant digits: what `kubectl get` shows, without float noise."""
    return None if value is None else float(f"{value:.4g}")


def _waiting(states: Mapping[str, PoolState], target: Mapping[str, int]) -> str:
    parts = []
    for pool in sorted(set(states) | set(target)):
        state = states.get(pool, PoolState(pool))
        want = target.get(pool, 0)
        if state.ready < want:
            parts.append(f"{pool} {state.ready}/{want} Ready")
        elif state.ready > want:
            parts.append(f"{pool} {state.ready - want} to stop")
    return ", ".join(parts) or "writing replica counts"


def _capacity_problems(resolved: Resolution, states: Mapping[str, PoolState]) -> list[str]:
    problems = []
    for option in resolved.options:
        state = states.get(option.name)
        if state is not None and state.unschedulable:
            problems.append(
                f"{option.name}: {state.unschedulable} pod(s) Unschedulable (no node has room)"
            )
        elif option.fits and option.capacity_replicas <= 0:
            problems.append(f"{option.name}: no free capacity for a replica")
    return problems


def _placement(
    snapshot: Snapshot, resolved: Resolution, target: Mapping[str, int], planned: Plan
) -> list[PoolPlacement]:
    spec = snapshot.deployment.spec
    cost = {p.pool: p.cost_per_hour for p in planned.pools}
    gpus = {o.name: o.gpus_per_replica for o in resolved.options}
    entries = []
    for variant in spec.variants:
        state = snapshot.pools.get(variant.pool)
        replicas = target.get(variant.pool, 0)
        if replicas == 0 and (state is None or state.ready == 0):
            continue
        model = variant.model or spec.model
        entries.append(
            PoolPlacement(
                pool=variant.pool,
                engine=variant.engine,
                precision=variant.precision,
                model=model.name,
                replicas=min(1000, replicas),
                ready_replicas=min(1000, state.ready if state else 0),
                gpus_per_replica=min(64, gpus.get(variant.pool, 0)),
                cost_per_hour=_shown(cost.get(variant.pool)),
            )
        )
    return entries[:16]


# ---------------------------------------------------------------------------------------------
# History in status


def history_to_status(memory: ReconcileHistory) -> DecisionHistory:
    planner = memory.planner
    return DecisionHistory(
        effective_demand_tokens_per_second=planner.effective_demand,
        demand_samples=[
            DemandSampleStatus(
                at=s.at,
                tokens_per_second=s.tokens_per_second,
                low_tokens_per_second=s.low_tokens_per_second,
            )
            for s in planner.demand_samples
        ],
        moves=[
            MoveRecord(at=m.at, before=_pairs_text(m.before), after=_pairs_text(m.after))
            for m in planner.moves[-MAX_MOVES:]
        ],
        pools_entered=[PoolEntered(pool=p, at=t) for p, t in planner.pool_since][:16],
        target=[
            PoolReplicas(pool=p, replicas=n)
            for p, n in sorted((memory.target or {}).items())
            if n > 0
        ][:16],
        written=[PoolReplicas(pool=p, replicas=n) for p, n in sorted(memory.written.items())][:16],
        throughput=[
            ThroughputMemory(
                pool=p, factor=m.factor, samples=m.samples, last_sample_at=m.last_sample_at
            )
            for p, m in sorted(memory.throughput.items())
        ][:16],
        steady=[
            PoolSteady(pool=p, ready_replicas=min(1000, s.ready), since=s.since)
            for p, s in sorted(memory.steady.items())
        ][:16],
        forecast=_profile_to_status(memory.profile),
    )


def history_from_status(status: DeepSeekDeploymentStatus | None) -> ReconcileHistory | None:
    """The history kept in status; None when there is none (first visit or status lost)."""
    if status is None or status.history is None:
        return None
    kept = status.history
    planner = History(
        demand_samples=tuple(
            DemandSample(s.at, s.tokens_per_second, s.low_tokens_per_second)
            for s in kept.demand_samples
        ),
        effective_demand=kept.effective_demand_tokens_per_second,
        moves=tuple(
            Move(m.at, _pairs_parsed(m.before), _pairs_parsed(m.after)) for m in kept.moves
        ),
        pool_since=tuple((e.pool, e.at) for e in kept.pools_entered),
    )
    return ReconcileHistory(
        planner=planner,
        target={e.pool: e.replicas for e in kept.target},
        written={e.pool: e.replicas for e in kept.written},
        throughput={e.pool: Learnt(e.factor, e.samples, e.last_sample_at) for e in kept.throughput},
        steady={e.pool: Steady(e.ready_replicas, e.since) for e in kept.steady},
        profile=_profile_from_status(kept.forecast),
    )


def _profile_to_status(profile: DemandProfile) -> DemandForecast | None:
    if profile.bin_start is None and not any(profile.days_seen):
        return None
    return DemandForecast(
        means=list(profile.means),
        days_seen=list(profile.days_seen),
        newest=list(profile.newest),
        bin_start=profile.bin_start,
        bin_sum=profile.bin_sum,
        bin_samples=profile.bin_samples,
        level=profile.level,
        error_fraction=profile.error,
        checked=profile.checked,
    )


def _profile_from_status(kept: DemandForecast | None) -> DemandProfile:
    """The profile kept in status; an empty one when there is none or it does not fit (a
    profile written by another version starts over rather than stop the operator)."""
    if kept is None:
        return DemandProfile()
    try:
        return DemandProfile(
            means=tuple(kept.means),
            days_seen=tuple(kept.days_seen),
            newest=tuple(kept.newest) if kept.newest else (0.0,) * BINS,
            bin_start=kept.bin_start,
            bin_sum=kept.bin_sum,
            bin_samples=kept.bin_samples,
            level=kept.level,
            error=kept.error_fraction,
            checked=kept.checked,
        )
    except ValueError:
        return DemandProfile()


def _compacted(history: History) -> History:
    """The history bounded as status holds it, so a restart decides exactly as before."""
    return replace(
        history,
        demand_samples=compact_samples(history.demand_samples),
        moves=history.moves[-MAX_MOVES:],
    )


def _pairs_text(pairs: Sequence[tuple[str, int]]) -> str:
    return ",".join(f"{p}={n}" for p, n in pairs)


def _pairs_parsed(text: str) -> tuple[tuple[str, int], ...]:
    pairs = []
    for item in text.split(","):
        pool, _, count = item.partition("=")
        if pool and count.isdigit():
            pairs.append((pool, int(count)))
    return tuple(pairs)


def _move_text(move: Move) -> str:
    return f"{_pairs_text(move.before) or 'nothing'} -> {_pairs_text(move.after) or 'nothing'}"
