"""The policies a user would otherwise pick, to replay beside the operator's planner.

- static-gpu / static-cpu: the cheapest fixed mix of that kind's pools sized for the trace's
  peak demand x (1 + headroom), running all the time (what most clusters do today).
- time-only: a cron-like scaler: each schedule window gets a fixed mix sized for the peak seen in
  that window, switched by the clock alone.
- load-only: a HorizontalPodAutoscaler on one pool: replicas = ceil(current x utilisation /
  target), a 10 % tolerance, and a scale-down stabilisation window.

Sizing uses hindsight of the peak (a user sizes from past traffic); the policies then run blind
to the future. All of them are measured by the same engine as the planner.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
from scipy.optimize import Bounds, LinearConstraint, milp

from deepseek_operator.api.deployment import DeepSeekDeployment
from deepseek_operator.core.planning.reconcile import Decision as OperatorDecision
from deepseek_operator.core.planning.reconcile import (
    DemandReading,
    DemandUnavailable,
    PoolState,
    ReconcileHistory,
    Resolution,
    Snapshot,
    decide,
)
from deepseek_operator.core.replay.engine import (
    DemandTimeline,
    Explanation,
    Placement,
    ReplayPool,
    Rollout,
    StepView,
)

HPA_TOLERANCE = 0.1
"""The HorizontalPodAutoscaler's default tolerance."""
HPA_SCALE_DOWN_STABILIZATION_SECONDS = 300.0
"""The HorizontalPodAutoscaler's default scale-down stabilisation window (scale-up: 0 s)."""


@dataclass(frozen=True)
class Sizing:
    placement: dict[str, int]
    capacity_tokens_per_second: float
    covers_demand: bool


def cheapest_mix(
    tokens_per_second: float,
    pools: Sequence[ReplayPool],
    *,
    min_replicas: int = 0,
    max_replicas: int | None = None,
) -> Sizing:
    """Fewest-cost integer replicas over `pools` whose capacity covers the demand.

    When the pools cannot cover it, every pool runs at its limit (the most this kind can do).
    """
    if not pools:
        raise ValueError("cheapest_mix needs at least one pool")
    cost = np.array([p.cost_per_replica_hour for p in pools], dtype=np.float64)
    rate = np.array([p.tokens_per_second_per_replica for p in pools], dtype=np.float64)
    upper = np.array([p.max_replicas for p in pools], dtype=np.float64)
    total_cap = float(upper.sum()) if max_replicas is None else float(max_replicas)
    if float(rate @ upper) < tokens_per_second or upper.sum() < min_replicas:
        return Sizing({p.name: p.max_replicas for p in pools}, float(rate @ upper), False)
    rows = np.vstack([rate, np.ones(len(pools))])
    full = {p.name: p.max_replicas for p in pools}
    required = tokens_per_second
    # HiGHS accepts an integer within 1e-6 and a row within its feasibility tolerance, so the
    # rounded answer can fall a sliver short of the demand; ask for that sliver more and solve
    # again (the same guard as the oracle's).
    for _ in range(3):
        # A tiny tie-break towards fewer replicas keeps equal-cost answers deterministic.
        result = milp(
            cost + 1e-9 * (1 + np.arange(len(pools))),
            integrality=np.ones(len(pools)),
            bounds=Bounds(np.zeros(len(pools)), upper),
            constraints=LinearConstraint(
                rows, np.array([required, float(min_replicas)]), np.array([np.inf, total_cap])
            ),
            options={"disp": False},
        )
        margin = 1e-4 * float(rate.max())
        if result.x is None:
            # infeasible, or (seen at a demand a hair above a whole number of replicas) a
            # solve error: either way a slightly larger demand is the honest next question
            required += margin
            continue
        counts = np.rint(result.x).astype(int)
        capacity = float(rate @ counts)
        if capacity >= tokens_per_second:
            placement = {p.name: int(n) for p, n in zip(pools, counts, strict=True)}
            return Sizing(placement, capacity, True)
        required += (tokens_per_second - capacity) + margin
    return Sizing(full, float(rate @ upper), False)


class StaticPolicy:
    """The same placement at every step."""

    def __init__(self, name: str, placement: Placement) -> None:
        self.name = name
        self.placement = dict(placement)

    def decide(self, view: StepView) -> Placement:
        return self.placement

    def explain(self) -> Explanation:
        return Explanation("fixed")


def static_sizing(
    name: str,
    demand: DemandTimeline,
    pools: Sequence[ReplayPool],
    headroom: float,
    min_replicas: int,
) -> tuple[StaticPolicy, Sizing]:
    peak = float(demand.arriving_tokens_per_second.max())
    sizing = cheapest_mix(peak * (1.0 + headroom), pools, min_replicas=min_replicas)
    return StaticPolicy(name, sizing.placement), sizing


@dataclass(frozen=True)
class ClockRule:
    """One row of a cron-like table: while `active(at)`, run on these pools."""

    name: str
    active: Callable[[datetime], bool]
    pools: tuple[str, ...]


class TimeOnlyPolicy:
    """Switches between fixed placements by the clock alone (the first active rule wins)."""

    name = "time-only"

    def __init__(
        self,
        rules: Sequence[tuple[ClockRule, dict[str, int]]],
        fallback: dict[str, int],
        owner: npt.NDArray[np.int64] | None = None,
    ) -> None:
        self.rules = tuple(rules)
        self.fallback = fallback
        self.owner = owner
        self.rule = "clock:default"

    def decide(self, view: StepView) -> Placement:
        if self.owner is not None and view.index < len(self.owner):
            index = int(self.owner[view.index])
        else:
            index = next((i for i, (r, _) in enumerate(self.rules) if r.active(view.at)), -1)
        if index < 0:
            self.rule = "clock:default"
            return self.fallback
        rule, placement = self.rules[index]
        self.rule = f"clock:{rule.name}"
        return placement

    def explain(self) -> Explanation:
        return Explanation(self.rule)


def time_only_policy(
    demand: DemandTimeline,
    pools: Sequence[ReplayPool],
    rules: Sequence[ClockRule],
    fallback_pools: tuple[str, ...],
    headroom: float,
    min_replicas: int,
    owner: npt.NDArray[np.int64] | None = None,
) -> TimeOnlyPolicy:
    """Size each rule's placement for the peak demand seen while that rule is the active one.

    `owner` (optional) is the active rule's index per step (-1: none), when the caller knows it
    already; otherwise each step asks the rules."""
    by_name = {p.name: p for p in pools}
    rates = demand.arriving_tokens_per_second
    if owner is None:
        owner = np.full(demand.steps, -1, dtype=np.int64)
        for step in range(demand.steps):
            at = demand.at(step)
            for index, rule in enumerate(rules):
                if rule.active(at):
                    owner[step] = index
                    break

    def size(index: int, names: tuple[str, ...]) -> dict[str, int]:
        chosen = [by_name[n] for n in names if n in by_name] or list(pools)
        seen = rates[owner == index]
        peak = float(seen.max()) if len(seen) else 0.0
        placement = cheapest_mix(peak * (1 + headroom), chosen, min_replicas=min_replicas)
        return {p.name: placement.placement.get(p.name, 0) for p in pools}

    sized = [(rule, size(i, rule.pools)) for i, rule in enumerate(rules)]
    return TimeOnlyPolicy(sized, size(-1, fallback_pools), owner)


class LoadOnlyPolicy:
    """HPA-like scaling of one pool on the observed tokens per second.

    desired = ceil(desired x utilisation / target utilisation), where target utilisation is
    1 / (1 + headroom); changes within `tolerance` of the target are ignored; like the HPA's
    `behavior`, a scale-up takes the lowest recommendation of the last
    `scale_up_stabilization_seconds` (default 0: at once) and a scale-down the highest of the
    last `scale_down_stabilization_seconds` (default 300 s).
    """

    name = "load-only"

    def __init__(
        self,
        pool: ReplayPool,
        headroom: float,
        min_replicas: int,
        max_replicas: int,
        step_seconds: float,
        scale_down_stabilization_seconds: float = HPA_SCALE_DOWN_STABILIZATION_SECONDS,
        scale_up_stabilization_seconds: float = 0.0,
        tolerance: float = HPA_TOLERANCE,
    ) -> None:
        self.pool = pool
        self.target_utilisation = 1.0 / (1.0 + headroom)
        self.tolerance = tolerance
        self.min_replicas = max(1, min_replicas)
        self.max_replicas = min(max_replicas, pool.max_replicas)

        def steps(seconds: float) -> int:
            return max(1, math.ceil(seconds / step_seconds))

        self.keep_up = steps(scale_up_stabilization_seconds)
        self.keep_down = steps(scale_down_stabilization_seconds)
        self.recent: deque[int] = deque(maxlen=max(self.keep_up, self.keep_down))
        self.current: int | None = None
        self.said = Explanation("hpa:start")

    def _clamp(self, replicas: int) -> int:
        return max(self.min_replicas, min(self.max_replicas, replicas))

    def decide(self, view: StepView) -> Placement | None:
        observed = view.observed_tokens_per_second
        if observed is None:
            self.said = Explanation("hpa:noMetrics")
            return None  # no metrics: hold, as the HPA does
        per_replica = self.pool.tokens_per_second_per_replica
        if self.current is None:
            # Start where the HPA would settle for the demand seen at the start of the trace.
            self.current = self._clamp(
                math.ceil(observed / (per_replica * self.target_utilisation))
            )
            self.recent.append(self.current)
            self.said = Explanation("hpa:start", observed)
            return {self.pool.name: self.current}
        # Like the HPA, the ratio is taken over the desired replica count, not the ready ones.
        utilisation = observed / (self.current * per_replica)
        ratio = utilisation / self.target_utilisation
        recommendation = self.current
        rule = "hpa:steady"
        if abs(ratio - 1.0) > self.tolerance:
            recommendation = self._clamp(math.ceil(self.current * ratio - 1e-9))
        elif math.ceil(self.current * ratio - 1e-9) != self.current:
            rule = "hpa:tolerance"
        self.recent.append(recommendation)
        seen = list(self.recent)
        # The HPA's stabilizeRecommendationWithBehaviors: no higher than the scale-up window's
        # lowest recommendation, no lower than the scale-down window's highest.
        rise_to = min(seen[-self.keep_up :])
        fall_to = max(seen[-self.keep_down :])
        before = self.current
        self.current = min(max(before, rise_to), fall_to)
        if self.current > before:
            rule = "hpa:scaleUp"
        elif self.current < before:
            rule = "hpa:scaleDown"
        elif recommendation != before:
            rule = "hpa:stabilisation"
        self.said = Explanation(rule, observed)
        return {self.pool.name: self.current}

    def explain(self) -> Explanation:
        return self.said


class OperatorPolicy:
    """`ours`: the operator's whole decision (`reconcile.decide`) at every step, given what the
    operator would observe there: each pool's replicas asked for and Ready, and the demand
    Prometheus shows (unavailable until the rate window holds samples). Its history is kept
    between steps exactly as the operator keeps it in status; the deployment is replayed as if
    `mode: apply` and not paused, since the replay asks what applying it would do.
    """

    name = "ours"

    def __init__(self, deployment: DeepSeekDeployment, resolution: Resolution) -> None:
        spec = deployment.spec.model_copy(update={"mode": "apply", "paused": False})
        self.deployment = deployment.model_copy(update={"spec": spec, "status": None})
        self.resolution = resolution
        self.history: ReconcileHistory | None = None
        self.said = Explanation("")

    def decide(self, view: StepView) -> Rollout:
        desired = view.desired
        pools = {
            o.name: PoolState(
                o.name,
                desired=desired.get(o.name, 0),
                ready=view.ready.get(o.name, 0),
                pods=desired.get(o.name, 0),
                scheduled=desired.get(o.name, 0),
                deployment_exists=desired.get(o.name, 0) > 0,
            )
            for o in self.resolution.options
        }
        observed = view.observed_tokens_per_second
        demand: DemandReading | DemandUnavailable = (
            DemandUnavailable("NoData", "the rate window holds no samples yet")
            if observed is None
            else DemandReading(observed, view.at)
        )
        snapshot = Snapshot(self.deployment, {}, pools, demand, resolution=self.resolution)
        decision = decide(snapshot, view.at, self.history)
        self.history = decision.history
        writes = {w.pool: w.replicas for w in decision.writes or ()}
        self.said = _explained(decision)
        return Rollout(target=dict(decision.target), writes=writes)

    def explain(self) -> Explanation:
        return self.said


def _explained(decision: OperatorDecision) -> Explanation:
    """The plan's rule, or what decide() added on top of the plan: pre-warming before a window
    boundary, or holding what runs when the plan would place fewer than replicas.min."""
    planned = decision.plan
    if planned is None:
        return Explanation("specInvalid")
    rule = planned.rule
    wanted = planned.replicas
    if any(n > wanted.get(p, 0) for p, n in decision.target.items()):
        rule = "prewarm" if planned.total_replicas >= planned.replica_bounds.min else "held:minimum"
    return Explanation(rule, planned.planned_demand_tokens_per_second)
