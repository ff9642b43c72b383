"""Window tables: which window is active at an instant, to the second, across DST and midnight."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from deepseek_operator.core.planning.schedule import (
    Schedule,
    Window,
    active_window,
    next_transition,
)

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


SHANGHAI = Schedule(
    "Asia/Shanghai",
    (
        Window("night", "22:00", "07:00", policy="cpuOnly"),
        Window("office", "09:00", "18:00", days=WEEKDAYS, policy="gpuOnly"),
    ),
    exception_dates=("2026-12-25",),
)

# Asia/Shanghai is UTC+8 all year. 2026-11-27 is a Friday, 2026-12-25 a Friday (holiday).
SHANGHAI_TABLE = [
    ("2026-11-27T13:59:59", None),  # Fri 21:59:59
    ("2026-11-27T14:00:00", "night"),  # Fri 22:00:00: start is inclusive
    ("2026-11-27T16:00:00", "night"),  # Sat 00:00: crossed midnight
    ("2026-11-27T22:59:59", "night"),  # Sat 06:59:59
    ("2026-11-27T23:00:00", None),  # Sat 07:00:00: end is exclusive
    ("2026-11-27T00:59:59", None),  # Fri 08:59:59
    ("2026-11-27T01:00:00", "office"),  # Fri 09:00:00
    ("2026-11-27T09:59:59", "office"),  # Fri 17:59:59
    ("2026-11-27T10:00:00", None),  # Fri 18:00:00
    ("2026-11-28T02:00:00", None),  # Sat 10:00: weekday-only window
    ("2026-11-29T02:00:00", None),  # Sun 10:00
    ("2026-11-30T02:00:00", "office"),  # Mon 10:00
    ("2026-12-25T02:00:00", None),  # holiday Fri 10:00: office does not start
    ("2026-12-24T17:00:00", "night"),  # holiday 01:00: Thursday's night runs on
    ("2026-12-25T14:30:00", None),  # holiday 22:30: no night window starts
    ("2026-12-25T20:00:00", None),  # Sat 04:00 after the holiday: still none
    ("2026-12-26T14:00:00", "night"),  # Sat 22:00: back to normal
]


@pytest.mark.parametrize(("instant", "expected"), SHANGHAI_TABLE)
def test_shanghai_windows(instant: str, expected: str | None) -> None:
    window = active_window(SHANGHAI, utc(instant))
    assert (window.name if window else None) == expected


BERLIN = Schedule(
    "Europe/Berlin",
    (
        Window("weekend-night", "22:00", "06:00", days=("Sat",)),
        Window("early", "02:30", "04:00", days=("Sun",)),
        Window("day", "08:00", "20:00"),
    ),
)

# 2026-03-29 (Sun): 02:00 CET → 03:00 CEST at 01:00 UTC. 2026-10-25 (Sun): 03:00 CEST → 02:00 CET
# at 01:00 UTC.
BERLIN_TABLE = [
    # Spring: Saturday night 22:00 CET (21:00 UTC) to Sunday 06:00 CEST (04:00 UTC), 7 real hours.
    ("2026-03-28T18:59:59", "day"),  # 19:59:59 CET
    ("2026-03-28T19:00:00", None),  # 20:00 CET
    ("2026-03-28T20:59:59", None),
    ("2026-03-28T21:00:00", "weekend-night"),
    ("2026-03-29T00:59:59", "weekend-night"),
    ("2026-03-29T01:00:00", "weekend-night"),  # the jump itself
    ("2026-03-29T03:59:59", "weekend-night"),
    ("2026-03-29T04:00:00", None),
    # 02:30 does not exist that day: it takes effect at 02:30 CET = 01:30 UTC (03:30 CEST), but
    # the weekend night is listed first and still covers it.
    ("2026-03-29T05:59:59", None),
    ("2026-03-29T06:00:00", "day"),  # 08:00 CEST
    ("2026-03-29T17:59:59", "day"),
    ("2026-03-29T18:00:00", None),  # 20:00 CEST
    # Autumn: Saturday 22:00 CEST (20:00 UTC) to Sunday 06:00 CET (05:00 UTC), 9 real hours.
    ("2026-10-24T17:59:59", "day"),  # 19:59:59 CEST
    ("2026-10-24T18:00:00", None),
    ("2026-10-24T19:59:59", None),
    ("2026-10-24T20:00:00", "weekend-night"),
    ("2026-10-25T00:59:59", "weekend-night"),
    ("2026-10-25T01:00:00", "weekend-night"),  # clocks go back
    ("2026-10-25T04:59:59", "weekend-night"),
    ("2026-10-25T05:00:00", None),
    ("2026-10-25T06:59:59", None),
    ("2026-10-25T07:00:00", "day"),  # 08:00 CET
    ("2026-10-25T19:00:00", None),  # 20:00 CET
]


@pytest.mark.parametrize(("instant", "expected"), BERLIN_TABLE)
def test_berlin_windows_across_both_dst_transitions(instant: str, expected: str | None) -> None:
    window = active_window(BERLIN, utc(instant))
    assert (window.name if window else None) == expected


EARLY_ONLY = Schedule("Europe/Berlin", (Window("early", "02:30", "04:00", days=("Sun",)),))


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        # Spring: 02:30 is skipped; the window opens at 01:30 UTC (03:30 CEST), ends 04:00 CEST.
        ("2026-03-29T01:29:59", None),
        ("2026-03-29T01:30:00", "early"),
        ("2026-03-29T01:59:59", "early"),
        ("2026-03-29T02:00:00", None),
        # Autumn: 02:30 happens twice; the first (CEST, 00:30 UTC) counts, end 04:00 CET.
        ("2026-10-25T00:29:59", None),
        ("2026-10-25T00:30:00", "early"),
        ("2026-10-25T02:59:59", "early"),
        ("2026-10-25T03:00:00", None),
    ],
)
def test_start_in_the_skipped_and_the_repeated_hour(instant: str, expected: str | None) -> None:
    window = active_window(EARLY_ONLY, utc(instant))
    assert (window.name if window else None) == expected


@pytest.mark.parametrize(
    ("schedule", "instant", "expected"),
    [
        (SHANGHAI, "2026-11-27T12:00:00", "2026-11-27T14:00:00"),  # Fri 20:00 → night 22:00
        (SHANGHAI, "2026-11-27T14:00:00", "2026-11-27T23:00:00"),  # in night → 07:00
        (SHANGHAI, "2026-11-27T23:00:00", "2026-11-28T14:00:00"),  # Sat: no office, next night
        (SHANGHAI, "2026-11-29T23:00:00", "2026-11-30T01:00:00"),  # Mon 07:00 → office 09:00
        (SHANGHAI, "2026-12-24T23:00:00", "2026-12-26T14:00:00"),  # holiday skipped entirely
        (BERLIN, "2026-03-28T12:00:00", "2026-03-28T19:00:00"),  # day ends 20:00 CET
        (BERLIN, "2026-03-28T19:00:00", "2026-03-28T21:00:00"),  # weekend night 22:00 CET
        (BERLIN, "2026-03-29T04:00:00", "2026-03-29T06:00:00"),  # 08:00 CEST
        (BERLIN, "2026-10-25T05:00:00", "2026-10-25T07:00:00"),  # 08:00 CET
        (EARLY_ONLY, "2026-03-22T12:00:00", "2026-03-29T01:30:00"),  # a week ahead, through DST
    ],
)
def test_next_transition(schedule: Schedule, instant: str, expected: str) -> None:
    assert next_transition(schedule, utc(instant)) == utc(expected)


def test_next_transition_is_none_without_windows_and_when_every_start_is_an_exception() -> None:
    assert next_transition(Schedule("UTC"), utc("2026-01-01T00:00:00")) is None
    one_day = Schedule(
        "UTC",
        (Window("x", "10:00", "11:00", days=("Thu",)),),
        exception_dates=tuple(
            f"2026-{m:02d}-{d:02d}"
            for m in range(1, 13)
            for d in range(1, 32)
            if _valid(2026, m, d)
        )
        + tuple(f"2027-{m:02d}-{d:02d}" for m in range(1, 3) for d in range(1, 29)),
    )
    assert next_transition(one_day, utc("2026-01-01T00:00:00")) is None


def test_first_listed_window_wins_an_overlap() -> None:
    overlap = Schedule(
        "UTC",
        (
            Window("narrow", "10:00", "11:00", policy="cpuOnly"),
            Window("wide", "09:00", "12:00"),
        ),
    )
    assert active_window(overlap, utc("2026-06-01T10:30:00")).name == "narrow"  # type: ignore[union-attr]
    assert active_window(overlap, utc("2026-06-01T09:30:00")).name == "wide"  # type: ignore[union-attr]
    assert next_transition(overlap, utc("2026-06-01T09:30:00")) == utc("2026-06-01T10:00:00")
    assert next_transition(overlap, utc("2026-06-01T10:30:00")) == utc("2026-06-01T11:00:00")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Schedule("Mars/Olympus"), "schedule.timeZone 'Mars/Olympus'"),
        (lambda: Window("w", "24:00", "01:00"), r"windows\[w\]\.start"),
        (lambda: Window("w", "01:00", "1:00"), r"windows\[w\]\.end"),
        (lambda: Window("w", "01:00", "01:00"), "must differ"),
        (lambda: Window("w", "01:00", "02:00", days=("Funday",)), r"windows\[w\]\.days"),
        (lambda: Schedule("UTC", exception_dates=("2026-13-01",)), r"exceptionDates\[0\]"),
        (lambda: Schedule("UTC", (Window("a", "01:00", "02:00"),) * 2), "unique"),
        (lambda: Window("w", "01:00", "02:00", policy="cheapest"), r"windows\[w\]\.policy"),  # type: ignore[arg-type]
        (lambda: Schedule("UTC", default_policy="gpuFirst"), "schedule.defaultPolicy"),  # type: ignore[arg-type]
    ],
)
def test_bad_schedules_name_the_field(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        active_window(SHANGHAI, datetime(2026, 1, 1, 12))


def _valid(year: int, month: int, day: int) -> bool:
    try:
        datetime(year, month, day)
    except ValueError:
        return False
    return True
