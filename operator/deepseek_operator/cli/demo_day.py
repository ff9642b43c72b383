"""The demo's compressed day, as data: when it starts, how fast it runs, the load it carries, and
what one observation of the deployment and the whole day's summary are. Pure: no I/O, no clock.

The load is a business day's shape for r1-7b (examples/r1-7b-gpu-by-day-cpu-at-night.yaml):
a few tokens/s overnight, a morning rise, a lunch dip, an afternoon peak, an evening tail. Its
figures are chosen against the sample pools' capacity (an A100 replica of the 7B model serves
about 1,170 tokens/s, a Xeon one about 28), so the day shows one or two CPU replicas at night and
one to three A100 replicas by day.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY_SECONDS = 86_400.0
NAMESPACE = "default"
DEPLOYMENT = "r1-7b"
TIME_ZONE = ZoneInfo("Asia/Shanghai")
START_HOUR = 6
"""The day starts at 06:00, two hours before the business-hours window, and ends at 06:00."""

LOAD_CURVE: tuple[tuple[float, float], ...] = (
    (0.0, 14.0),
    (3.0, 8.0),
    (6.0, 10.0),
    (7.5, 20.0),
    (8.5, 350.0),
    (10.0, 1500.0),
    (12.0, 900.0),
    (13.5, 1000.0),
    (15.0, 2300.0),
    (17.0, 1600.0),
    (19.0, 500.0),
    (20.0, 40.0),
    (21.5, 30.0),
    (23.0, 18.0),
    (24.0, 14.0),
)
"""(hour of the day in TIME_ZONE, output tokens/s demanded), linearly interpolated."""


def demand_at(moment: datetime) -> float:
    """Output tokens/s the day's users demand at `moment` (aware)."""
    local = moment.astimezone(TIME_ZONE)
    hour = local.hour + local.minute / 60 + local.second / 3600
    for (h0, v0), (h1, v1) in itertools.pairwise(LOAD_CURVE):
        if h0 <= hour <= h1:
            return v0 + (v1 - v0) * (hour - h0) / (h1 - h0)
    return LOAD_CURVE[-1][1]


def day_start(today: date) -> datetime:
    """06:00 in TIME_ZONE on the first weekday from `today`: business hours then apply."""
    day = today
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime.combine(day, time(START_HOUR), TIME_ZONE)


def time_scale(day_seconds: float) -> float:
    """How much faster than real time the clock runs to walk a day in `day_seconds`."""
    return DAY_SECONDS / day_seconds


@dataclass(frozen=True)
class Sample:
    """The deployment as its status showed it at one moment of the day."""

    at: datetime
    """The demo clock's time."""
    window: str
    ready: dict[str, int]
    """Ready replicas per pool."""
    desired: dict[str, int]
    """Replicas the plan wants per pool."""
    cost_per_hour: float | None
    baseline_cost_per_hour: float | None
    savings_percent: float | None
    demand_tokens_per_second: float | None
    offered_tokens_per_second: float
    """What the load source offered at that moment (the curve)."""
    currency: str = "CNY"


def sample_from_status(
    at: datetime, status: dict[str, object], offered: float, currency: str = "CNY"
) -> Sample:
    """One Sample from a DeepSeekDeployment's status as the API returns it (camelCase)."""
    placement = status.get("placement") or []
    ready: dict[str, int] = {}
    desired: dict[str, int] = {}
    for item in placement if isinstance(placement, list) else []:
        pool = str(item.get("pool", ""))
        ready[pool] = int(item.get("readyReplicas") or 0)
        desired[pool] = int(item.get("replicas") or 0)
    demand = status.get("demand")
    tokens = demand.get("tokensPerSecond") if isinstance(demand, dict) else None
    return Sample(
        at=at,
        window=str(status.get("activeWindow") or "-"),
        ready=ready,
        desired=desired,
        cost_per_hour=_number(status.get("costPerHour")),
        baseline_cost_per_hour=_number(status.get("baselineCostPerHour")),
        savings_percent=_number(status.get("savingsPercent")),
        demand_tokens_per_second=_number(tokens),
        offered_tokens_per_second=offered,
        currency=str(status.get("currency") or currency),
    )


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


@dataclass(frozen=True)
class Summary:
    """The day in a few figures: money spent against the all-GPU baseline, and the moves."""

    hours: float
    cost: float
    baseline_cost: float
    moves: list[tuple[datetime, str, str]] = field(default_factory=list)
    """(when, placement before, placement after) each time the Ready placement changed."""
    currency: str = "CNY"

    @property
    def savings(self) -> float:
        return self.baseline_cost - self.cost

    @property
    def savings_percent(self) -> float:
        return 100.0 * self.savings / self.baseline_cost if self.baseline_cost > 0 else 0.0


def placement_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{pool}={n}" for pool, n in sorted(counts.items()) if n > 0) or "none"


def summarize(samples: Sequence[Sample]) -> Summary:
    """Cost and baseline integrated over the day (each sample's figures hold until the next);
    moves are the changes of the Ready placement."""
    cost = baseline = hours = 0.0
    moves: list[tuple[datetime, str, str]] = []
    for before, after in itertools.pairwise(samples):
        span = (after.at - before.at).total_seconds() / 3600
        if span <= 0:
            continue
        hours += span
        if before.cost_per_hour is not None and before.baseline_cost_per_hour is not None:
            cost += before.cost_per_hour * span
            baseline += before.baseline_cost_per_hour * span
        was, now = placement_text(before.ready), placement_text(after.ready)
        if was != now:
            moves.append((after.at, was, now))
    currency = samples[-1].currency if samples else "CNY"
    return Summary(hours, cost, baseline, moves, currency)
