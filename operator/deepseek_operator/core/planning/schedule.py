"""Recurring time windows in an IANA time zone: which one is active at an instant, and when that changes.

A window is written in wall-clock time ("22:00"–"07:00" in Asia/Shanghai) and starts on the listed
days of the week; when ``end`` is earlier than ``start`` it crosses midnight and ends on the next
day. Start is inclusive, end exclusive, to the second. The rules follow the zone's daylight
saving changes:

* a start or end that falls into the hour skipped in spring (02:30 on the last Sunday of March in
  Europe/Berlin) takes effect at the instant that wall-clock time would have had (03:30 CEST), as
  ``zoneinfo`` resolves it with ``fold=0``;
* a start or end in the hour repeated in autumn takes effect at its first occurrence.

An exception date (a holiday) cancels every window that would *start* on that local date; a
window that started the evening before runs to its normal end. When windows overlap, the first
listed wins. Everything here is pure: the instant is always an argument.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from deepseek_operator.api.resolution import UnknownTimeZone, lookup_time_zone
from deepseek_operator.api.vocabulary import POLICIES, Policy

WEEKDAYS: tuple[str, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
"""Day names as the API writes them, indexed like ``date.weekday()``."""

_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?$")
_SEARCH_DAYS = 400
"""How far ahead ``next_transition`` looks: a year of exception dates plus a week."""
_CHUNK_DAYS = 8


@dataclass(frozen=True)
class ReplicaBounds:
    """Bounds on the total replicas summed over pools (``replicas {min, max}``)."""

    min: int = 1
    max: int = 4

    def __post_init__(self) -> None:
        if self.min < 0:
            raise ValueError(f"replicas.min must be ≥ 0, got {self.min}")
        if self.max < self.min:
            raise ValueError(f"replicas.max ({self.max}) must be ≥ replicas.min ({self.min})")


@dataclass(frozen=True)
class SloOverride:
    """Per-window SLO changes; ``None`` keeps the deployment's value."""

    min_tokens_per_second_per_request: float | None = None
    max_time_to_first_token_seconds: float | None = None
    headroom_fraction: float | None = None


def parse_clock(text: str, field_name: str = "time") -> time:
    """ "HH:MM" (or "HH:MM:SS") → ``time``; the error names the field."""
    match = _CLOCK.match(text)
    if match is None:
        raise ValueError(f'{field_name} must be "HH:MM" (24 h), got {text!r}')
    hours, minutes, seconds = match.groups()
    return time(int(hours), int(minutes), int(seconds or 0))


def parse_weekday(name: str, field_name: str = "days") -> int:
    """ "Mon" … "Sun" (any case, full names too) → 0 … 6."""
    key = name.strip()[:3].title()
    if key not in WEEKDAYS or len(name.strip()) < 3:
        raise ValueError(f"{field_name} has {name!r}; expected one of {', '.join(WEEKDAYS)}")
    return WEEKDAYS.index(key)


def _check_policy(policy: str, field_name: str) -> None:
    if policy not in POLICIES:
        raise ValueError(f"{field_name} must be one of {', '.join(POLICIES)}, got {policy!r}")


@dataclass(frozen=True)
class Window:
    """One recurring window; ``start``/``end`` are "HH:MM" wall-clock strings as in the CRD."""

    name: str
    start: str
    end: str
    days: tuple[str, ...] = WEEKDAYS
    policy: Policy = "costOptimal"
    replicas: ReplicaBounds | None = None
    slo: SloOverride | None = None
    start_time: time = field(init=False, repr=False, compare=False)
    end_time: time = field(init=False, repr=False, compare=False)
    weekdays: frozenset[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = f"windows[{self.name}]"
        start = parse_clock(self.start, f"{where}.start")
        end = parse_clock(self.end, f"{where}.end")
        if start == end:
            raise ValueError(f"{where}.end must differ from start (both {self.start})")
        if not self.days:
            raise ValueError(f"{where}.days must name at least one day")
        _check_policy(self.policy, f"{where}.policy")
        object.__setattr__(self, "start_time", start)
        object.__setattr__(self, "end_time", end)
        weekdays = frozenset(parse_weekday(d, f"{where}.days") for d in self.days)
        object.__setattr__(self, "weekdays", weekdays)

    @property
    def crosses_midnight(self) -> bool:
        return self.end_time < self.start_time

    def label(self, time_zone: str) -> str:
        """ "night 22:00–07:00 Asia/Shanghai" for reasons and status."""
        return f"{self.name} {self.start}–{self.end} {time_zone}"


@dataclass(frozen=True)
class Schedule:
    """Windows in one time zone; outside every window ``default_policy`` applies."""

    time_zone: str = "UTC"
    windows: tuple[Window, ...] = ()
    exception_dates: tuple[str, ...] = ()
    default_policy: Policy = "costOptimal"
    zone: ZoneInfo = field(init=False, repr=False, compare=False)
    exceptions: frozenset[date] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            zone = lookup_time_zone(self.time_zone)
        except UnknownTimeZone as exc:
            raise ValueError(f"schedule.timeZone {self.time_zone!r} is not an IANA zone") from exc
        object.__setattr__(self, "zone", zone)
        _check_policy(self.default_policy, "schedule.defaultPolicy")
        object.__setattr__(self, "windows", tuple(self.windows))
        names = [w.name for w in self.windows]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"schedule.windows names must be unique; repeated: {duplicates}")
        dates: set[date] = set()
        for i, text in enumerate(self.exception_dates):
            try:
                dates.add(date.fromisoformat(text))
            except ValueError as exc:
                raise ValueError(
                    f'schedule.exceptionDates[{i}] must be "YYYY-MM-DD", got {text!r}'
                ) from exc
        object.__setattr__(self, "exceptions", frozenset(dates))


@dataclass(frozen=True)
class Occurrence:
    """One concrete run of a window, as UTC instants [start, end)."""

    window_index: int
    start: datetime
    end: datetime


def _require_aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (the planner never guesses a zone)")
    return now.astimezone(UTC)


def _wall_to_utc(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """Wall-clock time on a local date → UTC; gaps and folds resolve with fold=0 (see module doc)."""
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def occurrences_starting_on(schedule: Schedule, day: date) -> Iterator[Occurrence]:
    """The windows that start on a local date, in listed order (none on exception dates)."""
    if day in schedule.exceptions:
        return
    for index, window in enumerate(schedule.windows):
        if day.weekday() not in window.weekdays:
            continue
        end_day = day + timedelta(days=1) if window.crosses_midnight else day
        start = _wall_to_utc(day, window.start_time, schedule.zone)
        end = _wall_to_utc(end_day, window.end_time, schedule.zone)
        if end > start:  # a window shorter than a DST jump can vanish; then it never runs
            yield Occurrence(index, start, end)


def _local_days_around(schedule: Schedule, now_utc: datetime) -> Iterable[date]:
    today = now_utc.astimezone(schedule.zone).date()
    return (today - timedelta(days=1), today)


def active_occurrence(schedule: Schedule, now: datetime) -> Occurrence | None:
    """The occurrence in force at ``now``; the first listed window wins an overlap."""
    now_utc = _require_aware(now)
    live = [
        occ
        for day in _local_days_around(schedule, now_utc)
        for occ in occurrences_starting_on(schedule, day)
        if occ.start <= now_utc < occ.end
    ]
    return min(live, key=lambda occ: occ.window_index, default=None)


def active_window(schedule: Schedule, now: datetime) -> Window | None:
    """The window in force at ``now``, or ``None`` outside every window."""
    occ = active_occurrence(schedule, now)
    return None if occ is None else schedule.windows[occ.window_index]


def next_transition(schedule: Schedule, now: datetime) -> datetime | None:
    """The first instant after ``now`` at which the active window changes (UTC), if any within a year."""
    now_utc = _require_aware(now)
    if not schedule.windows:
        return None
    current = active_occurrence(schedule, now_utc)
    current_index = None if current is None else current.window_index
    first_day = now_utc.astimezone(schedule.zone).date() - timedelta(days=1)
    for chunk_start in range(0, _SEARCH_DAYS, _CHUNK_DAYS):
        # One day of overlap: a window starting the day before can still end inside this chunk.
        days = [first_day + timedelta(days=chunk_start - 1 + i) for i in range(_CHUNK_DAYS + 1)]
        # Edges before the next chunk's first local midnight are complete: later days start later.
        horizon = _wall_to_utc(days[-1] + timedelta(days=1), time(0), schedule.zone)
        edges = sorted(
            {
                edge
                for day in days
                for occ in occurrences_starting_on(schedule, day)
                for edge in (occ.start, occ.end)
                if now_utc < edge < horizon
            }
        )
        for edge in edges:
            after = active_occurrence(schedule, edge)
            if (None if after is None else after.window_index) != current_index:
                return edge
        now_utc = max(now_utc, horizon - timedelta(microseconds=1))
    return None


@dataclass(frozen=True)
class _Span:
    """From `since` until `until` (a transition) the same window is in force."""

    schedule: Schedule
    since: datetime
    until: datetime
    window: Window | None


_SPANS: dict[int, _Span] = {}
_MAX_SPANS = 256


def window_and_transition(
    schedule: Schedule, now: datetime
) -> tuple[Window | None, datetime | None]:
    """``active_window(schedule, now)`` and ``next_transition(schedule, now)``, remembered until
    that transition: both are the same at every instant between two transitions, and working
    them out (every occurrence of every window around now, up to a year ahead) was a fifth of
    a planner call, which the replay makes at every step of a long trace. The answer is
    exactly what the two functions give."""
    now_utc = _require_aware(now)
    span = _SPANS.get(id(schedule))
    if span is not None and span.schedule is schedule and span.since <= now_utc < span.until:
        return span.window, span.until
    window = active_window(schedule, now_utc)
    transition = next_transition(schedule, now_utc)
    if transition is not None:
        if len(_SPANS) >= _MAX_SPANS:
            _SPANS.clear()
        # Keyed by identity, holding the schedule so that its id is not reused meanwhile.
        _SPANS[id(schedule)] = _Span(schedule, now_utc, transition, window)
    return window, transition
