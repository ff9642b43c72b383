"""Schedule properties: an independent wall-clock oracle, and next_transition never skips a change."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from deepseek_operator.core.planning.schedule import (
    WEEKDAYS,
    Schedule,
    Window,
    active_window,
    next_transition,
)

SETTINGS = settings(deadline=None, max_examples=int(os.environ.get("PLANNER_EXAMPLES", "40")))
START = datetime(2026, 1, 1, tzinfo=UTC)
QUARTER = timedelta(minutes=15)

clock = st.integers(0, 95).map(lambda q: f"{q // 4:02d}:{q % 4 * 15:02d}")


@st.composite
def windows(draw: st.DrawFn) -> tuple[Window, ...]:
    result = []
    for i in range(draw(st.integers(1, 3))):
        start, end = draw(clock), draw(clock)
        if start == end:
            continue
        days = draw(st.sets(st.sampled_from(WEEKDAYS), min_size=1))
        result.append(Window(f"w{i}", start, end, days=tuple(sorted(days))))
    return tuple(result)


def instants(around: datetime = START, days: int = 365) -> st.SearchStrategy[datetime]:
    return st.integers(0, days * 86_400).map(lambda s: around + timedelta(seconds=s))


def exception_dates(first: date) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.integers(-2, 10), max_size=3).map(
        lambda offsets: tuple(sorted({(first + timedelta(days=o)).isoformat() for o in offsets}))
    )


def wall_clock_oracle(schedule: Schedule, now: datetime) -> str | None:
    """Reads the local calendar and clock directly (exact where the zone has no DST)."""
    local = now.astimezone(ZoneInfo(schedule.time_zone))
    today, clock_now = local.date(), local.time().replace(tzinfo=None)
    yesterday = today - timedelta(days=1)
    holidays = {date.fromisoformat(d) for d in schedule.exception_dates}

    def starts_on(day: date, w: Window) -> bool:
        return WEEKDAYS[day.weekday()] in w.days and day not in holidays

    for w in schedule.windows:
        start, end = time.fromisoformat(w.start), time.fromisoformat(w.end)
        if start < end:
            if starts_on(today, w) and start <= clock_now < end:
                return w.name
        elif (starts_on(today, w) and clock_now >= start) or (
            starts_on(yesterday, w) and clock_now < end
        ):
            return w.name
    return None


@SETTINGS
@given(
    zone=st.sampled_from(["UTC", "Asia/Shanghai", "Asia/Kolkata"]),
    found=windows(),
    now=instants(),
    data=st.data(),
)
def test_active_window_matches_the_wall_clock_oracle(
    zone: str, found: tuple[Window, ...], now: datetime, data: st.DataObject
) -> None:
    local_day = now.astimezone(ZoneInfo(zone)).date()
    schedule = Schedule(zone, found, exception_dates=data.draw(exception_dates(local_day)))
    window = active_window(schedule, now)
    assert (window.name if window else None) == wall_clock_oracle(schedule, now)


@SETTINGS
@given(
    zone=st.sampled_from(
        ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Shanghai"]
    ),
    found=windows(),
    data=st.data(),
)
def test_next_transition_is_the_first_change(
    zone: str, found: tuple[Window, ...], data: st.DataObject
) -> None:
    # Half the instants fall within two days of a DST change in the northern zones.
    now = data.draw(
        instants()
        | instants(datetime(2026, 3, 27, tzinfo=UTC), 4)
        | instants(datetime(2026, 10, 23, tzinfo=UTC), 4)
        | instants(datetime(2026, 10, 31, tzinfo=UTC), 4)
    )
    local_day = now.astimezone(ZoneInfo(zone)).date()
    schedule = Schedule(zone, found, exception_dates=data.draw(exception_dates(local_day)))
    name = _name(schedule, now)
    transition = next_transition(schedule, now)
    horizon = transition if transition is not None else now + timedelta(days=9)
    assert horizon > now
    # Window edges lie on quarter hours in every zone used here, so checking every quarter
    # hour up to the transition finds any change it skipped.
    probe = START + (now - START) // QUARTER * QUARTER + QUARTER
    while probe < horizon:
        assert _name(schedule, probe) == name, (probe, transition)
        probe += QUARTER
    if transition is not None:
        assert _name(schedule, transition) != name
        assert _name(schedule, transition - timedelta(seconds=1)) == name


def _name(schedule: Schedule, at: datetime) -> str | None:
    window = active_window(schedule, at)
    return window.name if window else None


@SETTINGS
@given(
    zone=st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]),
    found=windows(),
    day=st.integers(0, 364),
    pick=st.integers(0, 5),
    seconds=st.integers(-7200, 7200),
    data=st.data(),
)
def test_daylight_saving_zones_match_the_oracle_away_from_a_change(
    zone: str,
    found: tuple[Window, ...],
    day: int,
    pick: int,
    seconds: int,
    data: st.DataObject,
) -> None:
    """Instants within two hours of a window edge on any day of the year, summer or winter."""
    assume(found)
    tz = ZoneInfo(zone)
    window = found[pick % len(found)]
    edge = time.fromisoformat(window.start if pick < 3 else window.end)
    local = datetime.combine(START.date() + timedelta(days=day), edge, tzinfo=tz)
    now = (local + timedelta(seconds=seconds)).astimezone(UTC)
    # Offsets change twice a year, months apart: equal offsets two days either side of `now`
    # mean no change touches the local days the oracle reads, so it is exact there too.
    assume(
        (now - timedelta(days=2)).astimezone(tz).utcoffset()
        == (now + timedelta(days=2)).astimezone(tz).utcoffset()
    )
    local_day = now.astimezone(tz).date()
    schedule = Schedule(zone, found, exception_dates=data.draw(exception_dates(local_day)))
    active = active_window(schedule, now)
    assert (active.name if active else None) == wall_clock_oracle(schedule, now)


@SETTINGS
@given(
    zone=st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]),
    found=windows(),
    first=instants(days=60),
    gaps=st.lists(st.integers(0, 6 * 3600), min_size=1, max_size=40),
)
def test_the_remembered_window_and_transition_are_those_worked_out_afresh(
    zone: str, found: tuple[Window, ...], first: datetime, gaps: list[int]
) -> None:
    """Walking forward in time, as the operator and the replay do, every answer the memo
    gives is the one `active_window` and `next_transition` give at that instant."""
    from deepseek_operator.core.planning.schedule import window_and_transition

    schedule = Schedule(zone, found, exception_dates=(first.date().isoformat(),))
    now = first
    for gap in gaps:
        now += timedelta(seconds=gap)
        assert window_and_transition(schedule, now) == (
            active_window(schedule, now),
            next_transition(schedule, now),
        )
