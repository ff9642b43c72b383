"""The daily demand profile: when it is used, when it falls back, and that status keeps it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepseek_operator.api.status import DeepSeekDeploymentStatus
from deepseek_operator.core.planning.forecast import (
    BIN_SECONDS,
    BINS,
    ERROR_BOUND,
    MEASUREMENT_LAG_SECONDS,
    MIN_CHECKED,
    DemandProfile,
    Outlook,
    observe,
)
from deepseek_operator.core.planning.planner import (
    Load,
    PlanSpec,
    PoolOption,
    PoolReplicas,
    ReplicaBounds,
    Schedule,
    Slo,
    plan,
)
from deepseek_operator.core.planning.reconcile import (
    ReconcileHistory,
    history_from_status,
    history_to_status,
)
from deepseek_operator.core.planning.stability import History

ZONE = ZoneInfo("Europe/Berlin")
START = datetime(2026, 3, 2, 0, 0, tzinfo=ZONE)  # a Monday, local midnight


def shaped(hour: float) -> float:
    """Quiet at night, a step to the day's level at 09:00, back down at 18:00."""
    return 1_000.0 if 9 <= hour < 18 else 200.0


def learn(days: float, level: float = 1.0, step: float = 60.0) -> tuple[DemandProfile, datetime]:
    profile = DemandProfile()
    now = START
    end = START + timedelta(days=days)
    while now < end:
        local = now.astimezone(ZONE)
        profile = observe(profile, shaped(local.hour + local.minute / 60) * level, now, ZONE)
        now += timedelta(seconds=step)
    return profile, now


def test_no_forecast_before_a_quarter_hour_was_seen_on_two_earlier_days() -> None:
    profile, now = learn(1.0)
    outlook = Outlook(profile, ZONE)
    assert outlook.unusable  # a quarter-hour seen once cannot yet be checked against another day
    assert outlook.rise(now, 3600) is None


def test_after_two_days_the_forecast_expects_the_morning_rise_in_proportion() -> None:
    profile, _ = learn(2.0 + 8.5 / 24)  # Wednesday 08:30
    outlook = Outlook(profile, ZONE)
    assert outlook.unusable == ""
    at = START + timedelta(days=2, hours=8, minutes=30)
    rise = outlook.rise(at, 3600)
    assert rise is not None
    assert abs(rise - 5.0) < 1e-6  # 200 → 1000 tokens/s at 09:00
    assert outlook.rise(at, 600) == 1.0  # 08:30-08:40: no rise yet
    assert outlook.next_change(at) == at + timedelta(seconds=BIN_SECONDS)


def test_a_rise_at_a_quarter_hour_is_expected_until_the_measurement_can_show_it() -> None:
    # At 09:00 the profile steps from 200 to 1,000 tok/s. The measured demand is a rate over
    # the last minutes: just after 09:00 it still shows 08:59, so the rise is still expected
    # (counted from the quarter-hour before), and replicas started for it at 08:57 are not
    # stopped at 09:00 only to start again a minute later. Once the measurement has had time
    # to show the new quarter-hour, the rise is behind it.
    profile, _ = learn(2.0 + 8.5 / 24)
    outlook = Outlook(profile, ZONE)
    nine = START + timedelta(days=2, hours=9)
    assert outlook.rise(nine - timedelta(minutes=3), 180) == pytest.approx(5.0)
    assert outlook.rise(nine + timedelta(seconds=30), 180) == pytest.approx(5.0)
    assert outlook.rise(nine + timedelta(seconds=MEASUREMENT_LAG_SECONDS + 1), 180) == 1.0


def test_a_day_unlike_the_profile_makes_the_forecast_fall_back() -> None:
    profile, now = learn(3.0)
    assert Outlook(profile, ZONE).unusable == ""
    # A day at random levels (within a quarter-hour constant) breaks the checks.
    levels = [3.0, 0.2, 5.0, 0.1]
    for index in range(MIN_CHECKED * 8):
        for _ in range(BIN_SECONDS // 60):
            profile = observe(profile, 300.0 * levels[index % 4], now, ZONE)
            now += timedelta(seconds=60)
    why = Outlook(profile, ZONE).unusable
    assert profile.error is not None and profile.error > ERROR_BOUND
    assert "error" in why


@settings(max_examples=20, deadline=None)
@given(level=st.floats(0.3, 3.0))
def test_the_forecast_is_a_shape_so_a_day_at_another_level_gets_the_same_rise(
    level: float,
) -> None:
    """The profile says what shape the day takes, the measured demand where on it today is:
    two usual days, then a third at another level, still expects the same factor of rise."""
    profile, _ = learn(2.0)
    more, _ = learn(2.0 + 8.5 / 24)
    at = START + timedelta(days=2, hours=8, minutes=30)
    # The third day's night ran at `level` times the usual one.
    tilted = profile
    now = START + timedelta(days=2)
    while now < at:
        local = now.astimezone(ZONE)
        tilted = observe(tilted, shaped(local.hour + local.minute / 60) * level, now, ZONE)
        now += timedelta(seconds=60)
    assert Outlook(tilted, ZONE).rise(at, 3600) == Outlook(more, ZONE).rise(at, 3600)


def test_a_one_off_burst_is_not_forecast_again_but_a_rise_that_recurs_is() -> None:
    """Monday has a burst at 15:00-15:15 that Tuesday does not repeat. The smoothed profile
    still remembers half of it on Wednesday; the newest day (Tuesday) did not see it, so no
    replicas start for it. The 09:00 rise, seen every day, is still expected."""
    profile = DemandProfile()
    now = START
    while now < START + timedelta(days=2, hours=14, minutes=50):  # Wednesday 14:50
        local = now.astimezone(ZONE)
        hour = local.hour + local.minute / 60
        burst = local.weekday() == 0 and 15 <= hour < 15.25
        profile = observe(profile, 3_000.0 if burst else shaped(hour), now, ZONE)
        now += timedelta(seconds=60)
    outlook = Outlook(profile, ZONE)
    assert outlook.unusable == ""
    index = 15 * 4  # the quarter-hour from 15:00
    assert profile.means[index] > profile.means[index - 1]  # the profile remembers the burst
    assert outlook.rise(now, 900) == 1.0
    tomorrow_morning = START + timedelta(days=3, hours=8, minutes=30)
    assert outlook.rise(tomorrow_morning, 3600) == pytest.approx(5.0)


def test_a_lighter_newest_day_does_not_shrink_a_rise_that_recurs() -> None:
    """Monday and Tuesday rise from 200 to 1,000 tokens/s at 09:00, Wednesday only to 500 (a
    quiet day). Thursday still expects the profile's rise, not Wednesday's smaller one: the
    newest day says whether a rise recurs, the profile how far."""
    profile = DemandProfile()
    now = START
    while now < START + timedelta(days=3, hours=8, minutes=30):  # Thursday 08:30
        local = now.astimezone(ZONE)
        hour = local.hour + local.minute / 60
        demand = shaped(hour) if local.weekday() != 2 or hour < 9 else min(shaped(hour), 500.0)
        profile = observe(profile, demand, now, ZONE)
        now += timedelta(seconds=60)
    index = 9 * 4  # the quarter-hour from 09:00
    assert profile.newest[index] == 500.0
    expected = profile.means[index] / profile.means[index - 2]  # ≈ 750 / 200
    assert expected > 500.0 / 200.0
    assert Outlook(profile, ZONE).rise(now, 3600) == pytest.approx(expected)


def test_a_profile_kept_without_the_newest_day_forecasts_from_its_means() -> None:
    profile, _ = learn(2.0 + 8.5 / 24)
    older = replace(profile, newest=(0.0,) * BINS)
    at = START + timedelta(days=2, hours=8, minutes=30)
    assert Outlook(older, ZONE).rise(at, 3600) == pytest.approx(5.0)
    status = DeepSeekDeploymentStatus.model_validate(
        {
            "history": {
                "forecast": {"means": list(profile.means), "daysSeen": list(profile.days_seen)}
            }
        }
    )
    assert history_from_status(status).profile.newest == (0.0,) * BINS


def test_readings_that_are_not_numbers_or_negative_leave_the_profile_alone() -> None:
    profile, now = learn(0.5)
    assert observe(profile, float("nan"), now, ZONE) == profile
    assert observe(profile, -1.0, now, ZONE) == profile


def test_status_keeps_the_profile_so_a_restart_forecasts_as_before() -> None:
    profile, _ = learn(2.5)
    memory = ReconcileHistory(profile=profile)
    status = DeepSeekDeploymentStatus(history=history_to_status(memory))
    wire = DeepSeekDeploymentStatus.model_validate(status.model_dump(by_alias=True, mode="json"))
    back = history_from_status(wire).profile
    assert back.means == profile.means and back.days_seen == profile.days_seen
    assert back.newest == profile.newest and any(profile.newest)
    assert back.level == profile.level and back.error == profile.error
    assert profile.bin_start is not None and back.bin_start == profile.bin_start
    assert len(back.means) == BINS


def test_a_profile_that_does_not_fit_starts_over() -> None:
    status = DeepSeekDeploymentStatus.model_validate(
        {"history": {"forecast": {"means": [1.0, 2.0], "daysSeen": [1, 1]}}}
    )
    assert history_from_status(status).profile == DemandProfile()


def test_a_measurement_that_has_caught_up_with_a_rise_is_not_raised_by_it_again() -> None:
    # A minute after the 09:00 step the measurement may already show 1,000 tok/s, while the
    # rise is still counted from 08:45 (200 → 1,000, × 5). The plan goes no higher than what
    # the forecast itself expects over the horizon: 1,000 tok/s, not 5,000.
    profile, _ = learn(2.0 + 8.5 / 24)
    outlook = Outlook(profile, ZONE)
    pool = PoolOption("gpu", "gpu", "v", 100, 1.0, 100.0, 50.0, startup_seconds=120)
    spec = PlanSpec(
        replicas=ReplicaBounds(1, 60),
        schedule=Schedule("Europe/Berlin"),
        slo=Slo(headroom_fraction=0.2),
        load=Load(0, 0, 0.1),
    )
    now = START + timedelta(days=2, hours=9, minutes=1)
    running = [PoolReplicas("gpu", 12, 12)]  # 1,200 tok/s: 1,000 with the headroom
    result = plan(spec, [pool], running, 1_000.0, now, History(effective_demand=1_000.0), outlook)
    assert result.planned_demand_tokens_per_second is not None
    assert result.planned_demand_tokens_per_second <= 1_000.0 * (1 + outlook.error) + 1e-6
    assert result.replicas == {"gpu": 12}
