"""The demo's day as data: its load curve, its start, one status read, the day's summary."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from deepseek_operator.cli import demo_day
from deepseek_operator.cli.demo_day import Sample, demand_at, summarize

ZONE = demo_day.TIME_ZONE


def at(hour: float, day: int = 25) -> datetime:
    return datetime(2026, 11, day, tzinfo=ZONE) + timedelta(hours=hour)


def test_the_curve_is_light_at_night_and_heavy_by_day() -> None:
    assert demand_at(at(3)) == pytest.approx(8.0)
    assert demand_at(at(15)) == pytest.approx(2300.0)
    assert demand_at(at(11)) == pytest.approx((1500 + 900) / 2)  # halfway between 10:00 and 12:00
    night = [demand_at(at(h)) for h in (20.5, 22, 1, 4, 6)]
    assert max(night) < 2 * 28 / 1.25  # at most two Xeon replicas with the sample's headroom


def test_the_day_starts_at_six_on_a_weekday() -> None:
    assert demo_day.day_start(date(2026, 11, 25)) == at(6)  # a Wednesday
    assert demo_day.day_start(date(2026, 11, 28)) == datetime(2026, 11, 30, 6, tzinfo=ZONE)
    assert demo_day.time_scale(120) == 720


def test_a_status_becomes_a_sample() -> None:
    status = {
        "placement": [
            {"pool": "a100", "replicas": 2, "readyReplicas": 1},
            {"pool": "cpu-xeon", "replicas": 0, "readyReplicas": 1},
        ],
        "activeWindow": "business-hours",
        "costPerHour": 14.5,
        "baselineCostPerHour": 14.5,
        "savingsPercent": 0,
        "currency": "CNY",
        "demand": {"tokensPerSecond": 1200.0},
    }
    sample = demo_day.sample_from_status(at(9), status, 1234.0)
    assert sample.ready == {"a100": 1, "cpu-xeon": 1}
    assert sample.desired == {"a100": 2, "cpu-xeon": 0}
    assert (sample.window, sample.cost_per_hour, sample.demand_tokens_per_second) == (
        "business-hours",
        14.5,
        1200.0,
    )
    empty = demo_day.sample_from_status(at(9), {}, 0.0)
    assert (empty.ready, empty.cost_per_hour, empty.window) == ({}, None, "-")


def _sample(hour: float, ready: dict[str, int], cost: float, baseline: float) -> Sample:
    return Sample(at(hour), "w", ready, ready, cost, baseline, None, None, 0.0)


def test_the_summary_integrates_cost_and_counts_moves() -> None:
    samples = [
        _sample(6, {"cpu-xeon": 1}, 3.0, 7.0),
        _sample(8, {"cpu-xeon": 1}, 7.0, 7.0),  # 2 h at 3 against 7
        _sample(9, {"a100": 1}, 7.0, 7.0),  # 1 h at 7 against 7
        _sample(10, {"a100": 1}, 7.0, 7.0),
    ]
    summary = summarize(samples)
    assert summary.hours == pytest.approx(4.0)
    assert summary.cost == pytest.approx(2 * 3 + 1 * 7 + 1 * 7)
    assert summary.baseline_cost == pytest.approx(4 * 7)
    assert summary.savings_percent == pytest.approx(100 * 8 / 28)
    assert [(m[1], m[2]) for m in summary.moves] == [("cpu-xeon=1", "a100=1")]
