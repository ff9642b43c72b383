"""Anti-flapping: stabilised demand, the move gate, and the history the planner needs between calls.

* **Demand** is stabilised the way the Kubernetes HPA stabilises replica recommendations, but in
  tokens/s: the level may rise only to the lowest demand seen over the scale-up window (0 s:
  at once) and fall only to the highest demand seen over the scale-down window. Between those
  two it stays where the previous plan put it.
* **Moves** between pools (replicas leave one pool while another grows, or the set of pools
  changes) are made for cost only when they save at least ``minSavingsPercent``, when the
  Karpenter "Balanced" score ``savings fraction ÷ disruption fraction ≥ 1/k`` (k = 2) holds,
  when the saving earns back what the new replicas cost while they start within the time the
  move is guaranteed to last (``max(minDwellSeconds, cooldownSeconds)``), after
  ``cooldownSeconds`` since the last move and never out of a pool entered less than
  ``minDwellSeconds`` ago. Window rules and demand that the running pools cannot serve are not
  cost moves: they pass without the gate.

``record`` returns the history after a plan; the operator and the simulator both keep it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

DISRUPTION_TOLERANCE_K = 2.0
"""Karpenter's Balanced consolidation k: act when savings ÷ disruption ≥ 1/k."""

_KEPT_MOVES = 32


DEFAULT_TOLERANCE = 0.1
"""The HorizontalPodAutoscaler's default tolerance: a capacity within 10 % of the target is kept."""


@dataclass(frozen=True)
class Load:
    """Stabilisation windows and tolerance (``load {scaleUpStabilizationSeconds,
    scaleDownStabilizationSeconds, toleranceFraction}``)."""

    scale_up_stabilization_seconds: int = 0
    scale_down_stabilization_seconds: int = 600
    tolerance_fraction: float = DEFAULT_TOLERANCE
    """A running placement whose capacity is within this fraction of the required capacity
    (demand × (1 + headroom)) is kept, as the HPA keeps replicas whose utilisation is within its
    tolerance of the target: the required capacity must exceed the running one by more than
    this before replicas are added."""

    def __post_init__(self) -> None:
        for name in ("scale_up_stabilization_seconds", "scale_down_stabilization_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"load.{_camel(name)} must be ≥ 0, got {getattr(self, name)}")
        if not 0 <= self.tolerance_fraction <= 1:
            raise ValueError(
                f"load.toleranceFraction must be in [0, 1], got {self.tolerance_fraction}"
            )


@dataclass(frozen=True)
class Migration:
    """How cost moves are paced (``migration {...}``); surge and availability are the actuator's."""

    min_available: int = 1
    max_surge_gpus: int = 8
    cooldown_seconds: int = 600
    min_savings_percent: float = 10.0
    min_dwell_seconds: int = 900

    def __post_init__(self) -> None:
        for name in ("min_available", "max_surge_gpus", "cooldown_seconds", "min_dwell_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"migration.{_camel(name)} must be ≥ 0, got {getattr(self, name)}")
        if not 0 <= self.min_savings_percent <= 100:
            raise ValueError(
                f"migration.minSavingsPercent must be in [0, 100], got {self.min_savings_percent}"
            )


MAX_DEMAND_SAMPLES = 128
"""Samples kept between plans (the history lives in the resource's status, which is bounded)."""


@dataclass(frozen=True)
class DemandSample:
    """Demand seen at `at`; after merging to fit, the highest and lowest of a span ending there."""

    at: datetime
    tokens_per_second: float
    low_tokens_per_second: float | None = None

    @property
    def low(self) -> float:
        return (
            self.tokens_per_second
            if self.low_tokens_per_second is None
            else self.low_tokens_per_second
        )


@dataclass(frozen=True)
class Move:
    """A change of pools: replicas per pool before and after, as sorted (pool, replicas) pairs."""

    at: datetime
    before: tuple[tuple[str, int], ...]
    after: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class History:
    """What the planner remembers between calls; empty at first start."""

    demand_samples: tuple[DemandSample, ...] = ()
    effective_demand: float | None = None
    moves: tuple[Move, ...] = ()
    pool_since: tuple[tuple[str, datetime], ...] = ()

    @property
    def last_move_at(self) -> datetime | None:
        return self.moves[-1].at if self.moves else None

    def entered(self, pool: str) -> datetime | None:
        """When this deployment last got its first replica on ``pool`` (None: unknown or long ago)."""
        return dict(self.pool_since).get(pool)


def effective_demand(
    history: History,
    demand: float,
    now: datetime,
    load: Load,
    capacity: float | None = None,
    headroom: float = 0.0,
) -> float:
    """HPA-style stabilised demand: rise to the up-window minimum, fall to the down-window maximum.

    The scale-up window keeps a short spike from adding replicas while the headroom absorbs
    it. Demand above `capacity` (what the placement in force serves) is not absorbed: it goes
    unserved now, and waiting cannot serve it, so the level rises at once far enough that
    level × (1 + `headroom`) serves it. The headroom above that is for a rise that lasts, and
    waits for the scale-up window like any rise."""

    def within(seconds: int) -> list[DemandSample]:
        start = now - timedelta(seconds=seconds)
        return [s for s in history.demand_samples if start < s.at < now]

    up_level = min([demand, *(s.low for s in within(load.scale_up_stabilization_seconds))])
    if capacity is not None and demand > capacity:
        up_level = max(up_level, demand / (1 + headroom))
    down_level = max(
        [demand, *(s.tokens_per_second for s in within(load.scale_down_stabilization_seconds))]
    )
    previous = history.effective_demand
    if previous is None:
        return demand
    return min(max(previous, up_level), down_level)


def settled(history: History, demand: float, now: datetime, load: Load) -> bool:
    """Whether the measured demand has settled: over the scale-down window it has been no higher,
    and over the scale-up window no lower, than the tolerance around what is measured now. A
    cost move made for a level still on its way somewhere is made for the wrong level."""
    band = 1 + load.tolerance_fraction
    down_start = now - timedelta(seconds=load.scale_down_stabilization_seconds)
    up_start = now - timedelta(seconds=load.scale_up_stabilization_seconds)
    for sample in history.demand_samples:
        if down_start < sample.at < now and sample.tokens_per_second > demand * band:
            return False
        if up_start < sample.at < now and sample.low * band < demand:
            return False
    return True


@dataclass(frozen=True)
class MoveVerdict:
    allowed: bool
    saving_fraction: float
    disruption_fraction: float
    why_not: str = ""
    rule: str = ""
    """The rule that refused the move, as a short code: ``minSavings``, ``disruption``,
    ``payback``, ``cooldown`` or ``dwell`` ("" when allowed)."""


def judge_move(
    base: Mapping[str, int],
    candidate: Mapping[str, int],
    base_cost: float,
    candidate_cost: float,
    history: History,
    now: datetime,
    migration: Migration,
    start_cost: Mapping[str, float] | None = None,
    tokens_per_replica: Mapping[str, float] | None = None,
    running: Mapping[str, int] | None = None,
) -> MoveVerdict:
    """Whether a cost move from ``base`` (what staying would look like) to ``candidate`` is worth it.

    ``start_cost`` is what one replica costs on each pool while it starts (cost per hour ×
    start-up time): a move must earn that back within the time it is guaranteed to last.
    ``tokens_per_replica`` weighs the disruption by the capacity the move stops, i.e. the share
    of traffic whose replicas go (without it, every replica counts the same): stopping three
    small CPU replicas that carry 2 % of the traffic disrupts 2 %, not half of six replicas.
    ``running`` is what runs now, when ``base`` is where staying would go (grown or trimmed):
    the disruption is the capacity of running replicas that staying would keep and the move
    stops, as a share of ``base`` (default: ``base`` runs). A replica staying would stop anyway,
    or one not started yet, is no disruption of the move's; counting them made a plan refuse a
    move from what runs and allow the same move once staying had been carried out.
    """
    saving = (base_cost - candidate_cost) / base_cost if base_cost > 0 else 0.0

    def weight(pool: str) -> float:
        return 1.0 if tokens_per_replica is None else tokens_per_replica.get(pool, 0.0)

    now_running = base if running is None else running
    total = math.fsum(n * weight(pool) for pool, n in base.items())
    stopped = math.fsum(
        max(0, min(n, base.get(pool, 0)) - candidate.get(pool, 0)) * weight(pool)
        for pool, n in now_running.items()
    )
    disruption = stopped / total if total > 0 else 0.0
    verdict = MoveVerdict(False, saving, disruption)
    if saving <= 0 or saving * 100 < migration.min_savings_percent:
        why = f"saves {saving:.0%} (< minSavingsPercent {migration.min_savings_percent:g}%)"
        return replace(verdict, why_not=why, rule="minSavings")
    if disruption > 0 and saving / disruption < 1 / DISRUPTION_TOLERANCE_K:
        why = (
            f"saves {saving:.0%} but disrupts {disruption:.0%} of "
            f"{'replicas' if tokens_per_replica is None else 'capacity'} "
            f"(score {saving / disruption:.2f} < {1 / DISRUPTION_TOLERANCE_K:.2f})"
        )
        return replace(verdict, why_not=why, rule="disruption")
    started = sum(
        max(0, n - base.get(pool, 0)) * (start_cost or {}).get(pool, 0.0)
        for pool, n in candidate.items()
    )
    horizon_hours = max(migration.min_dwell_seconds, migration.cooldown_seconds) / 3600
    earned = (base_cost - candidate_cost) * horizon_hours
    if horizon_hours > 0 and earned < started:
        why = (
            f"saves {base_cost - candidate_cost:.3g}/h, too little to earn back the "
            f"{started:.3g} its new replicas cost while starting within "
            f"{_ago(timedelta(hours=horizon_hours))}"
        )
        return replace(verdict, why_not=why, rule="payback")
    last = history.last_move_at
    if last is not None and now - last < timedelta(seconds=migration.cooldown_seconds):
        why = f"cooldown: last move {_ago(now - last)} ago (< {migration.cooldown_seconds}s)"
        return replace(verdict, why_not=why, rule="cooldown")
    for pool, n in sorted(base.items()):
        entered = history.entered(pool)
        dwell = timedelta(seconds=migration.min_dwell_seconds)
        if candidate.get(pool, 0) < n and entered is not None and now - entered < dwell:
            why = (
                f"dwell: {pool} entered {_ago(now - entered)} ago "
                f"(< minDwellSeconds {migration.min_dwell_seconds})"
            )
            return replace(verdict, why_not=why, rule="dwell")
    return replace(verdict, allowed=True)


def record(
    history: History,
    before: Mapping[str, int],
    after: Mapping[str, int],
    demand: float | None,
    effective: float | None,
    now: datetime,
    load: Load,
) -> History:
    """The history after carrying out a plan that took ``before`` to ``after`` at ``now``."""
    keep_from = now - timedelta(
        seconds=max(load.scale_up_stabilization_seconds, load.scale_down_stabilization_seconds)
    )
    samples = tuple(s for s in history.demand_samples if s.at > keep_from)
    if demand is not None:
        samples = (*samples, DemandSample(now, demand))
    used_before = {p for p, n in before.items() if n > 0}
    used_after = {p for p, n in after.items() if n > 0}
    moves = history.moves
    # A move shifts replicas between pools (cooldown counts from it). Entering a pool by a pure
    # scale-up or emptying one by a pure scale-down is not a move; dwell covers the pool entered.
    if is_move(before, after):
        move = Move(now, _pairs(before), _pairs(after))
        moves = (*moves, move)[-_KEPT_MOVES:]
    since = {p: t for p, t in history.pool_since if p in used_after}
    for pool in used_after - used_before:
        since[pool] = now
    return History(
        demand_samples=samples,
        effective_demand=effective if effective is not None else history.effective_demand,
        moves=moves,
        pool_since=tuple(sorted(since.items())),
    )


def compact_samples(
    samples: tuple[DemandSample, ...], limit: int = MAX_DEMAND_SAMPLES
) -> tuple[DemandSample, ...]:
    """At most `limit` samples: neighbours are merged in pairs, oldest first, each merge keeping
    the highest and lowest demand of both at the later instant. A merged span counts as seen at
    its end, so stabilisation may last a little longer than the windows say, never shorter."""
    kept = list(samples)
    while len(kept) > limit:
        merged = [
            DemandSample(
                at=newer.at,
                tokens_per_second=max(older.tokens_per_second, newer.tokens_per_second),
                low_tokens_per_second=min(older.low, newer.low),
            )
            for older, newer in zip(kept[0::2], kept[1::2], strict=False)
        ]
        if len(kept) % 2:
            merged.append(kept[-1])
        kept = merged
    return tuple(kept)


def is_move(before: Mapping[str, int], after: Mapping[str, int]) -> bool:
    """Replicas shift between pools: one pool grows while another shrinks."""
    pools = set(before) | set(after)
    grows = any(after.get(p, 0) > before.get(p, 0) for p in pools)
    shrinks = any(after.get(p, 0) < before.get(p, 0) for p in pools)
    return grows and shrinks


def _pairs(replicas: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted((p, n) for p, n in replicas.items() if n > 0))


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(word.title() for word in rest)
