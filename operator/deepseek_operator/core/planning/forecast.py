"""Forecast-aware planning: a daily demand profile learned from the demand the operator sees.

Traffic repeats daily. The profile keeps, per quarter-hour of the local day (96 bins in the
schedule's time zone), the mean demand seen in that quarter-hour on earlier days, smoothed over
days (the newest day weighs `PROFILE_WEIGHT`). A level, the ratio of what was seen to the
profile over the last closed quarter-hours (smoothed with `LEVEL_WEIGHT`), carries what differs
from the usual day (a weekend, growth) into the forecast:

    forecast(t) = profile[quarter-hour of t] × level

The planner asks for the *rise* the profile expects over a horizon: the highest forecast over
it divided by the forecast for now, applied to the demand measured now. The profile gives the
shape of the day, the measurement where on that shape today is, so a day at half the usual
level still gets its morning rise at the right time, in proportion. A rise counts only where
the newest day rose too (`newest`): the smoothed profile remembers a one-off burst for days,
halving each day, and replicas started for it would wait for a burst that does not come
again. How far it rises the profile says, not the newest day: after a quiet Sunday, Monday's
morning rise is still the usual weekday's. For a fall it asks the
other way round: the highest demand forecast over the scale-down window (`highest`), which
bounds how long the planner must keep capacity for a fall that might reverse.

The forecast is used only when it has earned it; otherwise the planner plans from the measured
(stabilised) demand alone, and the outlook says why:

* too little history: a quarter-hour in the horizon has not been seen on `MIN_DAYS` earlier
  days, or
  fewer than `MIN_CHECKED` closed quarter-hours have had their forecast checked yet;
* too inaccurate: the smoothed relative error of the checked forecasts,
  |seen − forecast| ÷ max(seen, forecast), is above `ERROR_BOUND`.

Everything it needs is a `DemandProfile`: 96 means, 96 day counts, the newest day's 96 means
and six numbers, which the operator keeps in `status.history.forecast`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

BIN_SECONDS = 900
BINS = 86_400 // BIN_SECONDS
PROFILE_WEIGHT = 0.5
"""Weight of the newest day in a quarter-hour's profile (exponential smoothing over days)."""
LEVEL_WEIGHT = 0.5
"""Weight of the newest closed quarter-hour in the level (seen ÷ profile)."""
ERROR_WEIGHT = 0.2
"""Weight of the newest checked quarter-hour in the smoothed forecast error."""
ERROR_BOUND = 0.2
"""The forecast is not used while its smoothed relative error is above this."""
MIN_CHECKED = 4
"""Quarter-hours whose forecast must have been checked against what came before it is used."""
MIN_DAYS = 2
"""A quarter-hour's profile is used once it has been seen on this many earlier days."""
MAX_DAYS_SEEN = 1000
LEVEL_LIMITS = (0.25, 4.0)
"""A single quarter-hour moves the level by at most this factor (a stray reading is damped)."""
MEASUREMENT_LAG_SECONDS = 120.0
"""How long after a quarter-hour begins the measured demand may still show the one before: it is
a rate() over the last minutes (the default queries take 1 m, the examples 2 m)."""


@dataclass(frozen=True)
class DemandProfile:
    """What the forecast remembers between decisions (all of it fits in status)."""

    means: tuple[float, ...] = (0.0,) * BINS
    """Smoothed mean demand (tokens/s) per quarter-hour of the local day."""
    days_seen: tuple[int, ...] = (0,) * BINS
    """On how many days each quarter-hour has been seen (0: never; its mean means nothing)."""
    bin_start: datetime | None = None
    """Start (UTC) of the quarter-hour being seen now."""
    bin_sum: float = 0.0
    bin_samples: int = 0
    level: float = 1.0
    error: float | None = None
    """Smoothed relative error of the forecasts checked so far (None: none checked yet)."""
    checked: int = 0
    """Quarter-hours whose forecast has been checked (capped at `MAX_DAYS_SEEN`)."""
    newest: tuple[float, ...] = (0.0,) * BINS
    """Mean demand per quarter-hour on the newest day it was seen (0: not seen)."""

    def __post_init__(self) -> None:
        if len(self.means) != BINS or len(self.days_seen) != BINS or len(self.newest) != BINS:
            raise ValueError(f"a demand profile has {BINS} quarter-hours")
        if any(not math.isfinite(m) or m < 0 for m in (*self.means, *self.newest)):
            raise ValueError("profile means must be finite numbers ≥ 0")
        if not math.isfinite(self.level) or self.level <= 0:
            raise ValueError(f"profile level must be a finite number > 0, got {self.level}")


def _bin_of(now: datetime, zone: ZoneInfo) -> tuple[int, datetime]:
    """The quarter-hour of the local day that `now` falls in, and when it began (UTC)."""
    local = now.astimezone(zone)
    seconds = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
    index = min(BINS - 1, int(seconds // BIN_SECONDS))
    began = local - timedelta(seconds=seconds - index * BIN_SECONDS)
    return index, began.astimezone(UTC)


def observe(profile: DemandProfile, demand: float, now: datetime, zone: ZoneInfo) -> DemandProfile:
    """The profile after seeing `demand` at `now`: a quarter-hour that has ended is checked
    against its forecast, then folded into the level and its day's mean."""
    if not math.isfinite(demand) or demand < 0:
        return profile
    _, began = _bin_of(now, zone)
    if profile.bin_start is not None and began == profile.bin_start:
        return replace(
            profile, bin_sum=profile.bin_sum + demand, bin_samples=profile.bin_samples + 1
        )
    closed = _close(profile, zone) if profile.bin_start is not None else profile
    return replace(closed, bin_start=began, bin_sum=demand, bin_samples=1)


def _close(profile: DemandProfile, zone: ZoneInfo) -> DemandProfile:
    if profile.bin_samples <= 0 or profile.bin_start is None:
        return profile
    index, _ = _bin_of(profile.bin_start, zone)
    seen = profile.bin_sum / profile.bin_samples
    means = list(profile.means)
    days = list(profile.days_seen)
    error, checked, level = profile.error, profile.checked, profile.level
    if days[index] > 0:
        forecast = means[index] * level
        if max(forecast, seen) > 0:
            miss = abs(seen - forecast) / max(forecast, seen)
            error = miss if error is None else ERROR_WEIGHT * miss + (1 - ERROR_WEIGHT) * error
            checked = min(MAX_DAYS_SEEN, checked + 1)
        if means[index] > 0:
            low, high = LEVEL_LIMITS
            ratio = min(high, max(low, seen / means[index] / level)) * level
            level = LEVEL_WEIGHT * ratio + (1 - LEVEL_WEIGHT) * level
        means[index] = PROFILE_WEIGHT * seen + (1 - PROFILE_WEIGHT) * means[index]
    else:
        means[index] = seen
    days[index] = min(MAX_DAYS_SEEN, days[index] + 1)
    newest = list(profile.newest)
    newest[index] = seen
    return replace(
        profile,
        means=tuple(means),
        newest=tuple(newest),
        days_seen=tuple(days),
        level=max(1e-6, level),
        error=error,
        checked=checked,
        bin_sum=0.0,
        bin_samples=0,
    )


@dataclass(frozen=True)
class Outlook:
    """The forecast as the planner asks it: the highest demand expected over a horizon."""

    profile: DemandProfile
    zone: ZoneInfo

    @property
    def error(self) -> float:
        """The forecast's smoothed relative error (0 before any check)."""
        return self.profile.error or 0.0

    @property
    def unusable(self) -> str:
        """Why the forecast is not used at all now ("" when it is)."""
        p = self.profile
        if p.checked < MIN_CHECKED or p.error is None:
            return (
                f"no forecast yet: {p.checked} of {MIN_CHECKED} quarter-hours checked "
                f"against an earlier day"
            )
        if p.error > ERROR_BOUND:
            return f"forecast error {p.error:.0%} above {ERROR_BOUND:.0%}: measured demand only"
        return ""

    def rise(self, now: datetime, seconds: float) -> float | None:
        """How much higher than now the demand is expected to be at most over [now, now +
        seconds], as a factor of the forecast for now (1: no rise); None when the forecast is
        not usable there (see `unusable`, or a quarter-hour never seen on an earlier day).
        A quarter-hour counts only if the newest day rose there too, where it saw both (a
        profile kept without the newest day, by an older version, uses its own rises).
        Within `MEASUREMENT_LAG_SECONDS` of a quarter-hour's start, the measurement may still
        show the previous one: the rise is then counted from the lower of the two (a rise due
        at the boundary does not vanish from the forecast before the measurement shows it).

        The planner multiplies the demand it measures by this factor: the profile says what
        shape the day takes, the measurement where on it today is."""
        if self.unusable:
            return None
        p = self.profile
        index, began = _bin_of(now, self.zone)
        if p.days_seen[index] < MIN_DAYS or p.means[index] <= 0:
            return None
        base, newest_base = p.means[index], p.newest[index]
        before, began_before = _bin_of(now - timedelta(seconds=MEASUREMENT_LAG_SECONDS), self.zone)
        if before != index and p.days_seen[before] >= MIN_DAYS and 0 < p.means[before] < base:
            base, began = p.means[before], began_before
            newest_base = p.newest[before] or newest_base
        highest = 1.0
        end = now + timedelta(seconds=max(0.0, seconds))
        at = began + timedelta(seconds=BIN_SECONDS)
        while at <= end:
            index, began = _bin_of(at, self.zone)
            if p.days_seen[index] < MIN_DAYS:
                return None
            rise = p.means[index] / base
            if 0 < p.newest[index] <= newest_base:
                rise = 1.0  # the newest day did not rise here: a one-off, not the day's shape
            highest = max(highest, rise)
            at = began + timedelta(seconds=BIN_SECONDS)
        return highest

    def highest(self, now: datetime, seconds: float) -> float | None:
        """The highest demand (tokens/s) the forecast expects over [now, now + seconds]: the
        profile's quarter-hours there times the level; None where `rise` would be None."""
        if self.unusable:
            return None
        p = self.profile
        highest = 0.0
        end = now + timedelta(seconds=max(0.0, seconds))
        at = now
        while at <= end:
            index, began = _bin_of(at, self.zone)
            if p.days_seen[index] < MIN_DAYS:
                return None
            highest = max(highest, p.means[index])
            at = began + timedelta(seconds=BIN_SECONDS)
        return highest * p.level

    def next_change(self, now: datetime) -> datetime:
        """When the forecast can next change: the next quarter-hour boundary."""
        _, began = _bin_of(now, self.zone)
        return began + timedelta(seconds=BIN_SECONDS)
