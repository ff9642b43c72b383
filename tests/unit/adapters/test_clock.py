"""The operator's clock: real by default; scaled and shifted only when asked (a demo aid)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from deepseek_operator.adapters import clock as clock_module
from deepseek_operator.adapters.clock import Clock
from deepseek_operator.core.planning.correction import PoolLoad
from deepseek_operator.core.planning.reconcile import DemandReading, DemandUnavailable

ANCHOR = 1_800_000_000.0
START = datetime(2026, 11, 25, 6, tzinfo=UTC)


def real(offset: float) -> datetime:
    return datetime.fromtimestamp(ANCHOR + offset, UTC)


def test_the_default_clock_is_real_time() -> None:
    clock = Clock()
    assert clock.real
    assert clock.at(real(5)) == real(5)
    reading = DemandReading(10.0, real(1))
    assert clock.demand(reading) is reading


def test_a_scaled_clock_starts_at_its_start_and_runs_faster() -> None:
    clock = Clock(scale=720, start=START, anchor=ANCHOR)
    assert clock.at(real(0)) == START
    assert clock.at(real(5)) == START + timedelta(hours=1)
    assert clock.at(real(-5)) == START - timedelta(hours=1)
    assert clock.real_seconds(3600) == 5


def test_demand_timestamps_move_onto_the_clock() -> None:
    clock = Clock(scale=720, start=START, anchor=ANCHOR)
    reading = DemandReading(10.0, real(10), 1.0, (PoolLoad("a100", 5.0, 1.0, real(5)),))
    moved = clock.demand(reading)
    assert isinstance(moved, DemandReading)
    assert moved.observed_at == START + timedelta(hours=2)
    assert moved.pools[0].observed_at == START + timedelta(hours=1)
    assert (moved.tokens_per_second, moved.queue_depth) == (10.0, 1.0)
    unavailable = DemandUnavailable("NoData", "none")
    assert clock.demand(unavailable) is unavailable


def test_run_hands_its_flags_over_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(clock_module.SCALE_ENV, "1440.0")
    monkeypatch.setenv(clock_module.START_ENV, "2026-11-25T14:00:00+08:00")
    monkeypatch.setenv(clock_module.ANCHOR_ENV, repr(ANCHOR))
    clock = Clock.from_environment()
    assert (clock.scale, clock.start, clock.anchor) == (1440.0, START, ANCHOR)
    monkeypatch.delenv(clock_module.SCALE_ENV)
    monkeypatch.delenv(clock_module.START_ENV)
    assert Clock.from_environment().real
