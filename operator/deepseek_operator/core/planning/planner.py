"""The placement planner: how many replicas of which variant on which pool, now.

Stable entry point (the replay, the CLI and the operator call exactly this)::

    plan(spec: PlanSpec, pools: Sequence[PoolOption], observed: Sequence[PoolReplicas],
         demand: float | None, now: datetime, history: History = History()) -> Plan

* ``spec``: the deployment's rules, field for field the CRD spec in snake_case
  (``replicas``, ``slo``, ``schedule``, ``load``, ``migration``, ``baseline_pool``).
* ``pools``: every pool the deployment may use, as plain numbers (see ``PoolOption``).
* ``observed``: desired/ready replicas per pool now (empty at first start).
* ``demand``: output tokens/s demanded now, or ``None`` when metrics are unavailable.
* ``now``: a timezone-aware instant. ``history``: from ``stability.record`` after the last plan;
  ``Plan.next_history(...)`` builds it.

It is pure and deterministic. It picks the cheapest placement whose capacity covers the
stabilised demand × (1 + headroom) within the active window's policy, replica bounds and SLO
(an exact integer programme, see `solver`), then decides whether getting there is worth a move:

1. pools that do not fit, that the window's policy forbids, that miss the SLO per request or
   have no free capacity are excluded (each with a reason);
2. demand unavailable → hold the running placement, except replicas on excluded pools, whose
   capacity is replaced by the cheapest allowed capacity;
3. the stabilised demand is adjusted by the forecast (`forecast.Outlook`), when it has one that
   is usable: raised for a rise due before new replicas would be Ready that the headroom would
   not cover, lowered at once to the highest demand forecast over the scale-down window;
4. *staying* never stops a replica to start another: the running placement grows if it
   cannot serve demand (within the pools that run while they have room; when they are full,
   another pool enters for demand they cannot hold, not for headroom), is trimmed if the
   stabilised demand fell (each running pool keeps ≥ 1 replica), and is otherwise kept as it
   is;
5. the global optimum replaces staying only if ``stability.judge_move`` allows it
   (minSavingsPercent, savings ÷ disruption, start-up payback, cooldown, dwell);
6. if no placement meets demand: the placement with the most capacity, and the shortfall.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cached_property

from deepseek_operator.api.vocabulary import HARDWARE_KINDS, HardwareKind, Policy
from deepseek_operator.core.costing.money import format_money
from deepseek_operator.core.planning import solver
from deepseek_operator.core.planning.forecast import Outlook
from deepseek_operator.core.planning.schedule import (
    ReplicaBounds,
    Schedule,
    SloOverride,
    Window,
    active_window,
    window_and_transition,
)
from deepseek_operator.core.planning.solver import PoolTerms, SolverFailed
from deepseek_operator.core.planning.stability import (
    History,
    Load,
    Migration,
    effective_demand,
    is_move,
    judge_move,
    record,
    settled,
)

__all__ = [
    "Candidates",
    "Change",
    "History",
    "Load",
    "Migration",
    "Plan",
    "PlanSpec",
    "PlannedPool",
    "PoolOption",
    "PoolReplicas",
    "ReplicaBounds",
    "Rule",
    "Schedule",
    "Slo",
    "SloOverride",
    "Window",
    "candidates",
    "check_pools",
    "plan",
]

PREFERENCE_FACTOR = 100.0
"""prefer* policies price the other kind's replicas 100× in the objective (a cost bias, not a hard
order): at real prices that kind is used only where the preferred one lacks capacity, replica
room or SLO. Reported costs are always the real ones."""

_PREFERRED_KIND: Mapping[Policy, HardwareKind] = {"preferGPU": "gpu", "preferCPU": "cpu"}


@dataclass(frozen=True)
class PoolOption:
    """One pool as the planner sees it for this deployment: plain numbers, already computed."""

    name: str
    kind: HardwareKind
    variant: str
    capacity_replicas: int
    """Replicas of this deployment the pool can hold now, counting the ones it already runs there."""
    replica_cost_per_hour: float
    tokens_per_second_per_replica: float
    """Output tokens/s one replica sustains at full batch (capacity)."""
    tokens_per_second_per_request: float
    """Output tokens/s one request sees (the SLO's per-request speed)."""
    startup_seconds: float = 0.0
    time_to_first_token_seconds: float | None = None
    gpus_per_replica: int = 0
    fits: bool = True
    fit_reason: str = ""
    """Why the variant does not fit the pool's hardware (when ``fits`` is false)."""
    currency: str = "USD"

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("pools[].name must not be empty")
        if self.kind not in HARDWARE_KINDS:
            raise ValueError(f"pools[{self.name}].kind must be gpu or cpu, got {self.kind!r}")
        where = f"pools[{self.name}]"
        checks = {
            "capacityReplicas": self.capacity_replicas,
            "replicaCostPerHour": self.replica_cost_per_hour,
            "tokensPerSecondPerReplica": self.tokens_per_second_per_replica,
            "tokensPerSecondPerRequest": self.tokens_per_second_per_request,
            "startupSeconds": self.startup_seconds,
            "gpusPerReplica": self.gpus_per_replica,
        }
        if self.time_to_first_token_seconds is not None:
            checks["timeToFirstTokenSeconds"] = self.time_to_first_token_seconds
        for name, value in checks.items():
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{where}.{name} must be a finite number ≥ 0, got {value}")


@dataclass(frozen=True)
class Slo:
    """``slo {minTokensPerSecondPerRequest, maxTimeToFirstTokenSeconds, headroomFraction}``."""

    min_tokens_per_second_per_request: float | None = None
    max_time_to_first_token_seconds: float | None = None
    headroom_fraction: float = 0.2

    def __post_init__(self) -> None:
        if not 0 <= self.headroom_fraction <= 10:
            raise ValueError(
                f"slo.headroomFraction must be in [0, 10], got {self.headroom_fraction}"
            )
        limits = {
            "minTokensPerSecondPerRequest": self.min_tokens_per_second_per_request,
            "maxTimeToFirstTokenSeconds": self.max_time_to_first_token_seconds,
        }
        for name, value in limits.items():
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"slo.{name} must be a finite number > 0, got {value}")

    def overridden(self, override: SloOverride | None) -> Slo:
        if override is None:
            return self
        return Slo(
            min_tokens_per_second_per_request=_first(
                override.min_tokens_per_second_per_request, self.min_tokens_per_second_per_request
            ),
            max_time_to_first_token_seconds=_first(
                override.max_time_to_first_token_seconds, self.max_time_to_first_token_seconds
            ),
            headroom_fraction=(
                self.headroom_fraction
                if override.headroom_fraction is None
                else override.headroom_fraction
            ),
        )


@dataclass(frozen=True)
class PlanSpec:
    """The planning part of a DeepSeekDeployment spec."""

    replicas: ReplicaBounds = field(default_factory=ReplicaBounds)
    slo: Slo = field(default_factory=Slo)
    schedule: Schedule = field(default_factory=Schedule)
    load: Load = field(default_factory=Load)
    migration: Migration = field(default_factory=Migration)
    baseline_pool: str | None = None
    """``costModel.baselinePool``; absent: the most expensive GPU pool per replica."""


@dataclass(frozen=True)
class PoolReplicas:
    """Observed replicas of this deployment on one pool."""

    pool: str
    desired: int
    ready: int = 0


class Change(StrEnum):
    """What the plan does to the running placement."""

    NONE = "none"
    SCALE_UP = "scaleUp"
    SCALE_DOWN = "scaleDown"
    MOVE = "move"


class Rule(StrEnum):
    """The rule that made the plan, or held a better placement back, as a short code (what
    `simulate --json` reports per step). A refused move reads ``held:`` and the gate's rule."""

    NO_POOL = "noPool"
    """No allowed pool can run the model."""
    METRICS_UNAVAILABLE = "metricsUnavailable"
    """No demand figure: the placement is held."""
    CAPACITY_SHORT = "capacityShort"
    """No placement meets demand: the most capacity the bounds allow."""
    INITIAL = "initial"
    """Nothing runs: the cheapest placement."""
    STEADY = "steady"
    """What runs serves the demand and is the cheapest placement (or no move is worth it)."""
    TOLERANCE = "held:tolerance"
    """What runs is short of demand × (1 + headroom) by less than the load's tolerance: kept."""
    STABILISING = "held:stabilisation"
    """Demand fell, but not for the scale-down stabilisation window yet: nothing stops."""
    SCALE_UP = "scaleUp"
    """What runs cannot serve demand: replicas are added (see `_Context.grow`)."""
    FULL = "held:full"
    """The pools that run are full and serve the demand, short of its headroom: no other pool
    is entered for headroom alone (an HPA at maxReplicas likewise runs above its target)."""
    SCALE_DOWN = "scaleDown"
    """The stabilised demand fell: the cheapest placement within what runs."""
    SCALE_UP_FORECAST = "scaleUp:forecast"
    """Replicas start ahead of a rise the forecast expects before they would be Ready."""
    HELD_FORECAST = "held:forecast"
    """A scale-down would cut into a rise the forecast expects within minDwellSeconds."""
    REBALANCE = "rebalance"
    """Replica bounds force replicas from one pool to another."""
    MOVE = "move"
    """The cheapest placement replaces what runs: the move gate allows it."""
    WINDOW = "window"
    """The window's policy or SLO forbids a running pool: its replicas leave."""


@dataclass(frozen=True)
class PlannedPool:
    pool: str
    kind: HardwareKind
    variant: str
    replicas: int
    cost_per_hour: float
    tokens_per_second: float


@dataclass(frozen=True)
class Plan:
    """The decision and everything status needs to explain it."""

    pools: tuple[PlannedPool, ...]
    """Every input pool, in input order, with its replicas (0 where unused)."""
    cost_per_hour: float
    cost_per_million_tokens: float | None
    capacity_tokens_per_second: float
    demand_tokens_per_second: float | None
    effective_demand_tokens_per_second: float | None
    planned_demand_tokens_per_second: float | None
    """The level planned for: the stabilised demand, or higher where the forecast expects a rise
    before new replicas would be Ready."""
    required_tokens_per_second: float | None
    baseline_pool: str | None
    baseline_cost_per_hour: float | None
    savings_fraction: float | None
    window: str | None
    policy: Policy
    replica_bounds: ReplicaBounds
    next_transition: datetime | None
    next_window: str | None
    """Window in force from ``next_transition`` on (None: outside every window)."""
    next_policy: Policy | None
    """Policy in force from ``next_transition`` on (None when there is no transition)."""
    change: Change
    feasible: bool
    shortfall_tokens_per_second: float
    solver: str
    """"milp": solved exactly (by `solver`'s branch-and-bound, or HiGHS behind it; the name
    is kept, as ``plan --json`` reports it), "greedy" (solver failed) or "none" (nothing to
    solve)."""
    excluded: tuple[tuple[str, str], ...]
    """(pool, why) for every pool the planner could not use."""
    reason: str
    currency: str
    rule: str = ""
    """What made the plan or held a better one back: a `Rule`, or ``held:`` + the move gate's
    rule (``held:minSavings``, ``held:disruption``, ``held:payback``, ``held:cooldown``,
    ``held:dwell``)."""

    @property
    def replicas(self) -> dict[str, int]:
        return {p.pool: p.replicas for p in self.pools}

    @property
    def total_replicas(self) -> int:
        return sum(p.replicas for p in self.pools)

    def next_history(
        self, history: History, observed: Sequence[PoolReplicas], now: datetime, load: Load
    ) -> History:
        """The history to pass to the next ``plan`` once this plan is carried out."""
        before = {o.pool: o.desired for o in observed}
        return record(
            history,
            before,
            self.replicas,
            self.demand_tokens_per_second,
            self.effective_demand_tokens_per_second,
            now,
            load,
        )


# --------------------------------------------------------------------------------------------


def plan(
    spec: PlanSpec,
    pools: Sequence[PoolOption],
    observed: Sequence[PoolReplicas],
    demand: float | None,
    now: datetime,
    history: History | None = None,
    outlook: Outlook | None = None,
) -> Plan:
    """Plan the placement at ``now``; see the module docstring for the rules. ``outlook``: the
    demand forecast (`forecast.Outlook`), when the caller keeps a demand profile."""
    history = History() if history is None else history
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if demand is not None and (not math.isfinite(demand) or demand < 0):
        raise ValueError(f"demand must be a finite number ≥ 0 tokens/s or None, got {demand}")
    check_pools(pools)
    names = [p.name for p in pools]
    ctx = _Context.build(spec, pools, observed, now, outlook)
    if not ctx.allowed:
        note = (
            "no allowed pool can run the model: " + ctx.why_excluded(names)
            if names
            else "no pools offered"
        )
        effective = (
            None if demand is None else effective_demand(history, demand, ctx.now, spec.load)
        )
        found = _assemble(ctx, {}, demand, effective, "none", ctx.bounds.min == 0, note)
        return replace(found, rule=Rule.NO_POOL)
    try:
        return _decide(ctx, demand, history, _EXACT)
    except SolverFailed as failure:
        return _decide(ctx, demand, history, _GREEDY, failure=str(failure))


def check_pools(pools: Sequence[PoolOption]) -> None:
    """Refuse pools the optimiser cannot compare: repeated names, or prices in mixed currencies."""
    names = [p.name for p in pools]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"pools must have unique names; repeated: {repeated}")
    by_currency: dict[str, list[str]] = {}
    for p in pools:
        by_currency.setdefault(p.currency, []).append(p.name)
    if len(by_currency) > 1:
        found = "; ".join(f"{c} ({', '.join(n)})" for c, n in sorted(by_currency.items()))
        raise ValueError(
            "pools[].currency must be the same for every pool (convert prices first): " + found
        )


@dataclass(frozen=True)
class _Method:
    name: str
    exact: bool


_EXACT = _Method("milp", exact=True)
_GREEDY = _Method("greedy", exact=False)


def _decide(
    ctx: _Context, demand: float | None, history: History, method: _Method, failure: str = ""
) -> Plan:
    fallback = f"solver failed ({failure}); greedy fallback" if failure else ""
    forced = sorted(p for p, n in ctx.current.items() if n > 0 and p not in ctx.allowed_names)
    forced_note = f"leaving {ctx.why_excluded(forced)}" if forced else ""

    def finish_plain(
        target: Mapping[str, int],
        effective: float | None,
        feasible: bool,
        rule: str,
        *notes: str,
        planned: float | None = None,
    ) -> Plan:
        note = "; ".join(n for n in (*notes, forced_note, fallback) if n)
        found = _assemble(ctx, target, demand, effective, method.name, feasible, note, planned)
        if forced and rule in (Rule.STEADY, Rule.SCALE_DOWN):
            rule = Rule.WINDOW
        return replace(found, rule=str(rule))

    if demand is None:
        return finish_plain(
            ctx.hold(method),
            None,
            True,
            Rule.METRICS_UNAVAILABLE,
            "metrics unavailable: holding placement",
        )

    running = ctx.running_allowed()
    running_capacity = ctx.capacity(running)
    effective = effective_demand(
        history,
        demand,
        ctx.now,
        ctx.spec.load,
        capacity=running_capacity,
        headroom=ctx.slo.headroom_fraction,
    )
    ahead = ctx.foresee(effective, demand)
    effective = min(effective, ahead.settled)
    planned = max(effective, ahead.rise)
    headroom = 1 + ctx.slo.headroom_fraction
    floor = planned * headroom / (1 + ctx.tolerance)
    required = planned * headroom
    keep_for = max(required, ahead.within_dwell * headroom)

    def finish(
        target: Mapping[str, int],
        effective: float | None,
        feasible: bool,
        rule: str,
        *notes: str,
    ) -> Plan:
        return finish_plain(target, effective, feasible, rule, *notes, ahead.note, planned=planned)

    # A pool that does not run enters only with at least the tolerance's share of what is
    # required: a thinner sliver buys capacity the tolerance already forgives, at the price of
    # a pool to start, dwell in and leave again (without it, the plan may use any pool). A
    # first placement, with nothing running, is the plain optimum.
    sliver = required * ctx.tolerance if running else 0.0
    best = ctx.cheapest(method, required, sliver)
    if best is None:
        # No placement holds demand × (1 + headroom): aim for the tolerated floor instead, as a
        # running placement within the tolerance would be kept; failing that, the most capacity.
        best = ctx.solve(method, ctx.terms(), floor)
        if best is None:
            return finish(ctx.most_capacity(method), effective, False, Rule.CAPACITY_SHORT)
        required = floor
        keep_for = max(keep_for, floor)

    if not running:
        return finish(
            best,
            effective,
            True,
            Rule.WINDOW if forced else Rule.INITIAL,
            "" if forced else "initial placement",
        )

    # Staying: grow the running placement if it cannot serve demand (pure scale-up, new pools
    # only where cheapest), then, if the stabilised demand fell, trim it (pure scale-down; each
    # running pool keeps ≥ 1 replica). Neither half stops a replica in order to start another.
    notes: list[str] = []
    rule: str = Rule.STEADY
    # Demand beyond what runs goes unserved now: the tolerance does not keep it waiting (the
    # stabilised level already asks for no more than serves it until the scale-up window ends).
    unserved = demand > running_capacity
    grown = running if ctx.serves(running, floor) and not unserved else None
    if grown is not None and not ctx.serves(running, required):
        rule = Rule.TOLERANCE
    if grown is None:
        rule = Rule.SCALE_UP_FORECAST if planned > effective else Rule.SCALE_UP
        grown, short = ctx.grow(method, running, required, max(demand, planned), sliver)
        if grown is not None and set(grown) - set(running):
            notes.append("running pools cannot serve demand: adding pools")
        if grown is not None and short:
            rule = Rule.FULL if grown == running else rule
            notes.append(
                f"the running pools are full: {_rate(ctx.capacity(grown))} of "
                f"{_rate(required)} tok/s required; another pool enters for demand, not headroom"
            )
    if grown is None:
        # Fewer replicas than run: never below what runs of the measured demand (as far as the
        # bounds allow), which a scale-up window may not have let into the stabilised one yet:
        # the next plan would add back at once what this one removed.
        # Keeping every running pool comes second to that: if they cannot all stay and serve
        # it, a pool is left (a move) rather than the measured demand given up. Demand beyond
        # what the bounds can hold is what the next plan sees above what runs; it plans for it
        # as for any demand × headroom out of reach: the tolerated floor, else the most capacity.
        level = min(demand, ctx.capacity(running))
        top = ctx.top_capacity(method)
        if level > top:
            level = min(demand * headroom / (1 + ctx.tolerance), top)
        kept = max(required, level)
        grown = ctx.solve(method, ctx.terms(keep=list(running)), kept, reference=running)
        moved = ctx.solve(method, ctx.terms(), kept) if grown is None and kept > required else None
        if grown is None and moved is None:
            grown = ctx.solve(method, ctx.terms(keep=list(running)), required, reference=running)
        if grown is None:
            return finish(
                moved or best,
                effective,
                True,
                Rule.MOVE,
                "running pools cannot serve demand within bounds",
            )
        rule = Rule.REBALANCE
        notes.append("replica bounds force a rebalance")
    fell = history.effective_demand is None or effective < history.effective_demand
    stay = grown
    if fell:
        # A pure scale-down may empty a pool entered at least minDwellSeconds ago; emptying the
        # last one (scaling to zero) is a move, left to the gate below. It keeps what the
        # forecast expects within the dwell time (a rise due then is not scaled down into).
        stay = ctx.trim(method, grown, keep_for, history)
        if stay != grown:
            rule = Rule.SCALE_DOWN
        if keep_for > required and ctx.trim(method, grown, required, history) != stay:
            rule = Rule.HELD_FORECAST if stay == grown else rule
    if rule == Rule.STEADY and ctx.could_shed(stay, demand, effective):
        rule = Rule.STABILISING
    if stay == best or ctx.objective(stay) <= ctx.objective(best):
        return finish(stay, effective, True, rule, *notes)
    if not math.isclose(effective, demand, rel_tol=1e-9, abs_tol=1e-12) or not settled(
        history, demand, ctx.now, ctx.spec.load
    ):
        # The stabilised demand has not caught up with the measured one, or the measured one
        # is still moving: the level a move would be made for is about to change. Cost moves
        # wait for a settled demand (as Karpenter consolidates only after pods have been stable
        # for consolidateAfter); pure scale-downs do not wait for it.
        if rule in (Rule.STEADY, Rule.STABILISING, Rule.TOLERANCE):
            rule = Rule.STABILISING
        cheaper = " + ".join(f"{n}×{p}" for p, n in best.items())
        return finish(
            stay,
            effective,
            True,
            rule,
            *notes,
            f"stays over {cheaper or 'none'}: demand still settling "
            f"({_rate(demand)} tok/s measured, {_rate(effective)} stabilised)",
        )
    verdict = judge_move(
        stay,
        best,
        ctx.objective(stay),
        ctx.objective(best),
        history,
        ctx.now,
        ctx.spec.migration,
        start_cost={p.name: ctx.biased_cost(p) * p.startup_seconds / 3600 for p in ctx.allowed},
        tokens_per_replica={p.name: p.tokens_per_second_per_replica for p in ctx.allowed},
        running=running,
    )
    if verdict.allowed:
        return finish(best, effective, True, Rule.MOVE, ctx.move_note(stay, best))
    cheaper = " + ".join(f"{n}×{p}" for p, n in best.items())
    if rule in (Rule.STEADY, Rule.STABILISING, Rule.TOLERANCE):
        rule = f"held:{verdict.rule}"
    return finish(
        stay, effective, True, rule, *notes, f"stays over {cheaper or 'none'}: {verdict.why_not}"
    )


FORECAST_LEAD_MARGIN = 60.0
"""Replicas for a forecast rise start this long before they must be Ready (beyond start-up),
so that a reconcile or two of delay does not make them late."""


@dataclass(frozen=True)
class _Foresight:
    """The forecast's say in one plan (see `_Context.foresee`)."""

    rise: float
    """Highest demand expected before replicas started now are Ready (plan at least for it):
    the stabilised demand times the rise the profile expects."""
    within_dwell: float
    """Highest demand expected within minDwellSeconds (a scale-down keeps capacity for it)."""
    settled: float
    """The stabilised demand, lowered to the measured one when the forecast expects no rise
    over the scale-down window."""
    note: str


@dataclass(frozen=True)
class _Context:
    """Everything derived from the inputs before optimising: window, SLO, exclusions, costs."""

    spec: PlanSpec
    pools: tuple[PoolOption, ...]
    current: Mapping[str, int]
    now: datetime
    window: Window | None
    policy: Policy
    bounds: ReplicaBounds
    slo: Slo
    transition: datetime | None
    exclusions: Mapping[str, str]
    outlook: Outlook | None = None

    @staticmethod
    def build(
        spec: PlanSpec,
        pools: Sequence[PoolOption],
        observed: Sequence[PoolReplicas],
        now: datetime,
        outlook: Outlook | None = None,
    ) -> _Context:
        window, transition = window_and_transition(spec.schedule, now)
        policy = window.policy if window else spec.schedule.default_policy
        bounds = window.replicas if window and window.replicas else spec.replicas
        slo = spec.slo.overridden(window.slo if window else None)
        current: dict[str, int] = {}
        for o in observed:
            if o.desired < 0 or o.ready < 0:
                raise ValueError(f"observed[{o.pool}] replicas must be ≥ 0")
            current[o.pool] = current.get(o.pool, 0) + o.desired
        exclusions = {p.name: why for p in pools if (why := _exclusion(p, policy, slo))}
        return _Context(
            spec=spec,
            pools=tuple(pools),
            current=current,
            now=now.astimezone(UTC),
            window=window,
            policy=policy,
            bounds=bounds,
            slo=slo,
            transition=transition,
            exclusions=exclusions,
            outlook=outlook,
        )

    @cached_property
    def allowed(self) -> tuple[PoolOption, ...]:
        """The pools that may take replicas (computed once: every solve and check reads it)."""
        return tuple(p for p in self.pools if p.name not in self.exclusions)

    @cached_property
    def allowed_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.allowed)

    def why_excluded(self, names: Sequence[str]) -> str:
        return "; ".join(f"{n} ({self.exclusions.get(n, 'not offered')})" for n in names)

    def biased_cost(self, pool: PoolOption) -> float:
        preferred = _PREFERRED_KIND.get(self.policy)
        factor = PREFERENCE_FACTOR if preferred is not None and pool.kind != preferred else 1.0
        return pool.replica_cost_per_hour * factor

    def terms(
        self,
        keep: Sequence[str] = (),
        at_least: Mapping[str, int] | None = None,
        at_most: Mapping[str, int] | None = None,
        sliver: float = 0.0,
    ) -> list[PoolTerms]:
        """Columns for the allowed pools: ``keep`` pools hold ≥ 1; optional per-pool floors/caps.
        A pool that does not run now enters only with at least ``sliver`` tokens/s."""
        columns = []
        for p in self.allowed:
            upper = p.capacity_replicas
            if at_most is not None:
                upper = min(upper, at_most.get(p.name, 0))
            lower = max(1 if p.name in keep else 0, (at_least or {}).get(p.name, 0))
            least = 0
            if sliver > 0 and self.current.get(p.name, 0) <= 0:
                least = math.ceil(sliver / p.tokens_per_second_per_replica - 1e-9)
            columns.append(
                PoolTerms(
                    self.biased_cost(p),
                    p.tokens_per_second_per_replica,
                    min(lower, upper),
                    upper,
                    least,
                )
            )
        return columns

    def solve(
        self,
        method: _Method,
        terms: Sequence[PoolTerms],
        required: float,
        reference: Mapping[str, int] | None = None,
    ) -> dict[str, int] | None:
        """Cheapest answer; an equally cheap ``reference`` placement wins ties (no churn)."""
        low, high = self.bounds.min, self.bounds.max
        if method.exact:
            found = solver.solve_min_cost(terms, required, low, high)
        else:
            found = solver.greedy_min_cost(terms, required, low, high)
        if found is None:
            return None
        if reference is not None:
            kept = self.vector(reference)
            best = solver.objective(terms, found)
            as_cheap = solver.objective(terms, kept) <= best + 1e-9 * max(1.0, abs(best))
            if as_cheap and solver.is_feasible(terms, kept, required, low, high):
                found = kept
        return self.as_map(found)

    def running_allowed(self) -> dict[str, int]:
        """What runs now on pools still allowed, capped at what each pool can hold."""
        capacity = {p.name: p.capacity_replicas for p in self.allowed}
        return {
            name: min(n, capacity[name])
            for name, n in self.current.items()
            if name in capacity and min(n, capacity[name]) > 0
        }

    def could_shed(self, replicas: Mapping[str, int], demand: float, effective: float) -> bool:
        """Whether the demand measured now, below the stabilised one, could do with a replica
        less: the scale-down stabilisation is what keeps it (a diagnostic, not a decision)."""
        if demand >= effective or sum(replicas.values()) <= self.bounds.min:
            return False
        need = demand * (1 + self.slo.headroom_fraction)
        by_name = {p.name: p for p in self.allowed}
        capacity = math.fsum(
            by_name[p].tokens_per_second_per_replica * n for p, n in replicas.items()
        )
        smallest = min(
            by_name[p].tokens_per_second_per_replica for p, n in replicas.items() if n > 0
        )
        return capacity - smallest >= need

    def grow(
        self,
        method: _Method,
        running: Mapping[str, int],
        required: float,
        demand: float,
        sliver: float,
    ) -> tuple[dict[str, int] | None, bool]:
        """The running placement grown to serve `required`, and whether it falls short of it.

        The pools that run grow first, while they have room, even where a new pool would add
        capacity for less: entering a pool for a step of growth leaves a mixed placement that
        later costs a move (two changes) to consolidate; the move gate still takes the
        cheapest placement, new pools included, when it saves `minSavingsPercent`. When the
        pools that run are full, they serve `demand` without all of its headroom, as an HPA at
        `maxReplicas` runs above its target; another pool enters only for demand beyond them
        (with the headroom then), since replicas on it for headroom alone are a pool to start,
        dwell in and leave for capacity that serves no request unless a burst comes."""
        room = {p.name: p.capacity_replicas for p in self.allowed if p.name in running}
        inside = self.terms(at_least=running, at_most=room)
        for level in (required, min(demand, required)):
            found = self.solve(method, inside, level)
            if found is not None:
                return found, level < required
        return self.cheapest(method, required, sliver, at_least=running), False

    def cheapest(
        self,
        method: _Method,
        required: float,
        sliver: float,
        at_least: Mapping[str, int] | None = None,
    ) -> dict[str, int] | None:
        """The cheapest placement serving `required` where a pool that does not run enters
        with at least `sliver` tokens/s, or, if none does, without that floor."""
        return self.solve(
            method, self.terms(at_least=at_least, sliver=sliver), required
        ) or self.solve(method, self.terms(at_least=at_least), required)

    def trim(
        self, method: _Method, grown: dict[str, int], required: float, history: History
    ) -> dict[str, int]:
        """The cheapest placement within `grown` that still serves `required` (a pure
        scale-down); a pool entered less than minDwellSeconds ago keeps a replica."""
        settled = self.settled_pools(history)
        keep = [p for p in grown if p not in settled]
        trimmed = self.solve(method, self.terms(keep=keep, at_most=grown), required, grown)
        if trimmed is None or not trimmed:
            trimmed = self.solve(
                method, self.terms(keep=list(grown), at_most=grown), required, reference=grown
            )
        return trimmed or grown

    def foresee(self, effective: float, demand: float) -> _Foresight:
        """What the forecast changes in the stabilised demand: the rise it expects before
        replicas started now would be Ready, and within minDwellSeconds; and, when it expects no
        rise over the scale-down window, a fall that need not wait for that window (nothing
        without a usable forecast, or for a rise within its own usual error)."""
        if self.outlook is None:
            return _Foresight(effective, effective, effective, "")
        why_not = self.outlook.unusable
        if why_not:
            return _Foresight(effective, effective, effective, why_not)
        lead = max((p.startup_seconds for p in self.allowed), default=0.0) + FORECAST_LEAD_MARGIN
        dwell = float(self.spec.migration.min_dwell_seconds)
        window = float(self.spec.load.scale_down_stabilization_seconds)
        soon = self.outlook.rise(self.now, lead)
        later = self.outlook.rise(self.now, max(lead, dwell))
        within_window = self.outlook.highest(self.now, window)
        top_soon = self.outlook.highest(self.now, lead)
        top_later = self.outlook.highest(self.now, max(lead, dwell))
        if (
            soon is None
            or later is None
            or within_window is None
            or top_soon is None
            or top_later is None
        ):
            return _Foresight(
                effective, effective, effective, "no forecast for the next quarter-hours"
            )
        error = self.outlook.error
        # The scale-down window holds the highest demand it saw in case the fall reverses; the
        # forecast knows better whether it will: the level may fall at once to the highest
        # demand it expects over that window (with its error as margin), or to the measured
        # demand if that is higher.
        settled = min(effective, max(demand, within_window) * (1 + error))
        # The headroom is there for what nobody foresaw; the forecast adds capacity only for a
        # rise, with the forecast's error as margin, that the headroom would not cover.
        cover = 1 + self.slo.headroom_fraction
        soon = max(1.0, soon * (1 + error) / cover)
        later = max(1.0, later * (1 + error) / cover)
        base = min(effective, settled)
        # The rise scales what is measured by the day's shape; it plans no higher than the
        # forecast's own level over the horizon (with its error), so a measurement that has
        # already caught up with a rise is not raised by it a second time.
        rise = max(base, min(base * soon, top_soon * (1 + error)))
        within_dwell = max(base, min(base * later, top_later * (1 + error)))
        notes = []
        if soon > 1:
            notes.append(f"forecast rise to {_rate(rise)} tok/s within {lead:.0f}s")
        if settled < effective:
            notes.append(f"forecast: at most {_rate(settled)} tok/s within {window:.0f}s")
        return _Foresight(rise, within_dwell, settled, "; ".join(notes))

    def capacity(self, replicas: Mapping[str, int]) -> float:
        by_name = {p.name: p for p in self.allowed}
        return math.fsum(
            by_name[p].tokens_per_second_per_replica * n
            for p, n in replicas.items()
            if p in by_name
        )

    def settled_pools(self, history: History) -> set[str]:
        """Running pools entered at least minDwellSeconds ago (or before the history began)."""
        dwell = timedelta(seconds=self.spec.migration.min_dwell_seconds)
        settled = set()
        for pool in self.current:
            entered = history.entered(pool)
            if entered is None or self.now - entered >= dwell:
                settled.add(pool)
        return settled

    @property
    def tolerance(self) -> float:
        return self.spec.load.tolerance_fraction

    def within_tolerance(self, capacity: float, required: float) -> bool:
        """Capacity short of `required` by no more than the tolerance (then nothing is added)."""
        floor = required / (1 + self.tolerance)
        return capacity >= floor - solver.CAPACITY_TOLERANCE * max(1.0, floor)

    def serves(self, replicas: Mapping[str, int], required: float) -> bool:
        return solver.is_feasible(
            self.terms(), self.vector(replicas), required, self.bounds.min, self.bounds.max
        )

    def vector(self, replicas: Mapping[str, int]) -> tuple[int, ...]:
        return tuple(replicas.get(name, 0) for name in self.allowed_names)

    def as_map(self, replicas: Sequence[int]) -> dict[str, int]:
        return {name: n for name, n in zip(self.allowed_names, replicas, strict=True) if n > 0}

    def objective(self, replicas: Mapping[str, int]) -> float:
        return math.fsum(self.biased_cost(p) * replicas.get(p.name, 0) for p in self.allowed)

    def real_cost(self, replicas: Mapping[str, int]) -> float:
        return math.fsum(p.replica_cost_per_hour * replicas.get(p.name, 0) for p in self.allowed)

    def move_note(self, stay: Mapping[str, int], best: Mapping[str, int]) -> str:
        """What a move does to the real cost per hour (prefer* biases decide, but do not bill)."""
        before, after = self.real_cost(stay), self.real_cost(best)
        change = (before - after) / before if before > 0 else 0.0
        if change >= 0:
            return f"moving saves {change:.0%}"
        return f"moving for {self.policy} costs {-change:.0%} more"

    def hold(self, method: _Method) -> dict[str, int]:
        """No demand figure: keep what runs on allowed pools; replace capacity on excluded ones."""
        by_name = {p.name: p for p in self.pools}
        served = math.fsum(
            by_name[name].tokens_per_second_per_replica * n
            for name, n in self.current.items()
            if name in by_name
        )
        keep = self.running_allowed()
        for terms in (self.terms(at_least=keep), self.terms()):
            found = self.solve(method, terms, served, reference=keep)
            if found is not None:
                return found
        return self.most_capacity(method)

    def top_capacity(self, method: _Method) -> float:
        """The most tokens/s the replica bounds allow on the allowed pools."""
        return self.capacity(self.most_capacity(method))

    def most_capacity(self, method: _Method) -> dict[str, int]:
        """No placement meets demand: the most capacity the bounds allow, cheapest first."""
        terms = self.terms()
        for low in (self.bounds.min, 0):
            if method.exact:
                found = solver.solve_max_capacity(terms, low, self.bounds.max)
            else:
                found = solver.greedy_max_capacity(terms, low, self.bounds.max)
            if found is not None:
                return self.as_map(found)
        return {}


def _exclusion(pool: PoolOption, policy: Policy, slo: Slo) -> str:
    """Why a pool cannot take replicas now ("" when it can)."""
    if not pool.fits:
        return f"model does not fit: {pool.fit_reason}" if pool.fit_reason else "model does not fit"
    if policy == "cpuOnly" and pool.kind == "gpu":
        return "cpuOnly window excludes gpu pools"
    if policy == "gpuOnly" and pool.kind == "cpu":
        return "gpuOnly window excludes cpu pools"
    floor = slo.min_tokens_per_second_per_request
    if floor is not None and pool.tokens_per_second_per_request < floor:
        return f"{pool.tokens_per_second_per_request:g} tok/s per request < SLO {floor:g}"
    ceiling = slo.max_time_to_first_token_seconds
    ttft = pool.time_to_first_token_seconds
    if ceiling is not None and ttft is not None and ttft > ceiling:
        return f"time to first token {ttft:g}s > SLO {ceiling:g}s"
    if pool.tokens_per_second_per_replica <= 0:
        return "no throughput figure"
    if pool.capacity_replicas <= 0:
        return "no free capacity"
    return ""


def _first(override: float | None, default: float | None) -> float | None:
    return default if override is None else override


# --------------------------------------------------------------------------------------------
# Assembling the answer: numbers, baseline, one-line reason.


def _assemble(
    ctx: _Context,
    target: Mapping[str, int],
    demand: float | None,
    effective: float | None,
    solver_used: str,
    feasible: bool,
    note: str,
    planned_demand: float | None = None,
) -> Plan:
    planned = tuple(
        PlannedPool(
            pool=p.name,
            kind=p.kind,
            variant=p.variant,
            replicas=target.get(p.name, 0),
            cost_per_hour=p.replica_cost_per_hour * target.get(p.name, 0),
            tokens_per_second=p.tokens_per_second_per_replica * target.get(p.name, 0),
        )
        for p in ctx.pools
    )
    cost = math.fsum(p.cost_per_hour for p in planned)
    capacity = math.fsum(p.tokens_per_second for p in planned)
    level = effective if planned_demand is None else planned_demand
    required = None if level is None else level * (1 + ctx.slo.headroom_fraction)
    shortfall = 0.0 if required is None else max(0.0, required - capacity)
    if required is not None and shortfall <= 1e-9 * max(1.0, required):
        shortfall = 0.0
    if required is not None and ctx.within_tolerance(capacity, required):
        shortfall = 0.0  # kept on purpose: within the tolerance of what is required
    served = capacity if demand is None else min(demand, capacity)
    served_millions_per_hour = served * 3600 / 1e6
    per_million = cost / served_millions_per_hour if served_millions_per_hour > 0 else None
    if per_million is not None and not math.isfinite(per_million):
        per_million = None  # a denormal demand: too little served for a price per token
    # Savings compare placements that serve the same demand: a placement short of demand is
    # compared with the baseline serving what it serves, not the demand it leaves unmet.
    baseline_name, baseline_cost = _baseline(
        ctx, required if required is not None and shortfall == 0 else capacity
    )
    savings = 1 - cost / baseline_cost if baseline_cost else None
    currency = ctx.pools[0].currency if ctx.pools else "USD"
    next_window = (
        None if ctx.transition is None else active_window(ctx.spec.schedule, ctx.transition)
    )
    change = _change(ctx.current, target)
    feasible = feasible and shortfall == 0.0
    total = sum(target.values())
    if total < ctx.bounds.min:
        feasible = False
        short_of_min = f"only {total} of replicas.min {ctx.bounds.min} fit"
        note = f"{short_of_min}; {note}" if note else short_of_min
    plan_ = Plan(
        pools=planned,
        cost_per_hour=cost,
        cost_per_million_tokens=per_million,
        capacity_tokens_per_second=capacity,
        demand_tokens_per_second=demand,
        effective_demand_tokens_per_second=effective,
        planned_demand_tokens_per_second=level,
        required_tokens_per_second=required,
        baseline_pool=baseline_name,
        baseline_cost_per_hour=baseline_cost,
        savings_fraction=savings,
        window=ctx.window.name if ctx.window else None,
        policy=ctx.policy,
        replica_bounds=ctx.bounds,
        next_transition=ctx.transition,
        next_window=next_window.name if next_window else None,
        next_policy=(
            None
            if ctx.transition is None
            else next_window.policy
            if next_window
            else ctx.spec.schedule.default_policy
        ),
        change=change,
        feasible=feasible,
        shortfall_tokens_per_second=shortfall,
        solver=solver_used,
        excluded=tuple(sorted(ctx.exclusions.items())),
        reason="",
        currency=currency,
    )
    return _with_reason(ctx, plan_, note)


def _baseline(ctx: _Context, required: float) -> tuple[str | None, float | None]:
    """All-GPU baseline: the named pool, else the priciest GPU pool per replica, sized for demand."""
    gpus = [p for p in ctx.pools if p.kind == "gpu" and p.fits]
    chosen = next((p for p in ctx.pools if p.name == ctx.spec.baseline_pool), None)
    if chosen is None and gpus:
        chosen = max(gpus, key=lambda p: (p.replica_cost_per_hour, p.name))
    if chosen is None or chosen.tokens_per_second_per_replica <= 0:
        return None, None
    replicas = max(
        ctx.bounds.min, math.ceil(required / chosen.tokens_per_second_per_replica - 1e-9)
    )
    return chosen.name, replicas * chosen.replica_cost_per_hour


def _change(current: Mapping[str, int], target: Mapping[str, int]) -> Change:
    pools = set(current) | set(target)
    if all(current.get(p, 0) == target.get(p, 0) for p in pools):
        return Change.NONE
    if is_move(current, target):
        return Change.MOVE
    grows = any(target.get(p, 0) > current.get(p, 0) for p in pools)
    return Change.SCALE_UP if grows else Change.SCALE_DOWN


def _rate(tokens_per_second: float) -> str:
    return f"{tokens_per_second:.3g}" if tokens_per_second < 100 else f"{tokens_per_second:,.0f}"


def _with_reason(ctx: _Context, p: Plan, note: str) -> Plan:
    if ctx.window is not None:
        w = ctx.window
        where = f"{w.name} window {w.start}–{w.end} {ctx.spec.schedule.time_zone}"
    else:
        where = f"outside windows ({ctx.policy})"
    used = [q for q in p.pools if q.replicas > 0]
    if not used:
        placed = "0 replicas"
    elif len(used) == 1:
        placed = f"{used[0].replicas} replica{'s' * (used[0].replicas != 1)} on {used[0].pool}"
    else:
        placed = f"{p.total_replicas} replicas on " + " + ".join(
            f"{q.pool} ({q.replicas})" for q in used
        )
    if p.demand_tokens_per_second is None:
        serves = f"serve {_rate(p.capacity_tokens_per_second)} tok/s"
    elif p.shortfall_tokens_per_second > 0:
        needed = p.required_tokens_per_second or 0.0
        serves = (
            f"cover only {_rate(p.capacity_tokens_per_second)} of {_rate(needed)} tok/s needed "
            f"(short {_rate(p.shortfall_tokens_per_second)} tok/s)"
        )
    else:
        serves = f"cover {_rate(p.demand_tokens_per_second)} tok/s demand"
    text = f"{where}: {placed} {serves} at {format_money(p.cost_per_hour, p.currency, grouping=False)}/h"
    if p.savings_fraction is not None and p.baseline_pool is not None and used:
        direction = "below" if p.savings_fraction >= 0 else "above"
        text += f", {abs(p.savings_fraction):.0%} {direction} {p.baseline_pool}"
        if p.shortfall_tokens_per_second > 0:
            text += f" serving the same {_rate(p.capacity_tokens_per_second)} tok/s"
    if note:
        text += f" ({note})"
    return _replace_reason(p, text)


def _replace_reason(p: Plan, reason: str) -> Plan:
    return replace(p, reason=reason)


@dataclass(frozen=True)
class Candidates:
    """What the planner would weigh at ``now`` before optimising (the arbiter's view of one
    deployment): the pools it may use with the cost its objective gives them (prefer* biases
    included), the replica bounds and headroom in force, and when they next change."""

    pools: tuple[tuple[PoolOption, float], ...]
    bounds: ReplicaBounds
    headroom_fraction: float
    transition: datetime | None


def candidates(spec: PlanSpec, pools: Sequence[PoolOption], now: datetime) -> Candidates:
    """The allowed pools, bounds and headroom `plan` would use at ``now`` (same rules)."""
    ctx = _Context.build(spec, pools, (), now)
    return Candidates(
        pools=tuple((p, ctx.biased_cost(p)) for p in ctx.allowed),
        bounds=ctx.bounds,
        headroom_fraction=ctx.slo.headroom_fraction,
        transition=ctx.transition,
    )
