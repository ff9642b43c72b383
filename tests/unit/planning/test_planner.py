"""Planner behaviour on hand-checked cases: windows, policies, SLO, stability gates, infeasibility."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from deepseek_operator.core.planning import solver as placement_solver
from deepseek_operator.core.planning.planner import (
    Change,
    History,
    Load,
    Migration,
    PlanSpec,
    PoolOption,
    PoolReplicas,
    ReplicaBounds,
    Schedule,
    Slo,
    SloOverride,
    Window,
    plan,
)

SHANGHAI = "Asia/Shanghai"
# 2026-11-28 is a Saturday. 23:00 in Shanghai is 15:00 UTC; 13:00 in Shanghai is 05:00 UTC.
NIGHT = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
DAY = datetime(2026, 11, 28, 5, 0, tzinfo=UTC)


def pools(capacity: int = 8) -> list[PoolOption]:
    return [
        PoolOption(
            "a100",
            "gpu",
            "r1-bf16",
            4,
            30.0,
            400.0,
            40.0,
            startup_seconds=300,
            gpus_per_replica=8,
            currency="CNY",
        ),
        PoolOption(
            "rtx4090", "gpu", "r1-awq", 6, 8.0, 120.0, 30.0, gpus_per_replica=2, currency="CNY"
        ),
        PoolOption("cpu-xeon", "cpu", "distill-int8", capacity, 1.6, 9.0, 9.0, currency="CNY"),
    ]


def spec(**changes: object) -> PlanSpec:
    night = Window(
        "night",
        "22:00",
        "07:00",
        policy="cpuOnly",
        replicas=ReplicaBounds(0, 8),
        slo=SloOverride(min_tokens_per_second_per_request=5),
    )
    base = PlanSpec(
        replicas=ReplicaBounds(1, 8),
        slo=Slo(min_tokens_per_second_per_request=10, headroom_fraction=0.2),
        schedule=Schedule(SHANGHAI, (night,)),
        load=Load(0, 0),
        migration=Migration(cooldown_seconds=600, min_savings_percent=10, min_dwell_seconds=900),
    )
    return PlanSpec(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def test_night_window_puts_replicas_on_cpu_and_explains_it() -> None:
    result = plan(spec(), pools(), [], 14.0, NIGHT)
    assert result.replicas == {"a100": 0, "rtx4090": 0, "cpu-xeon": 2}
    assert result.window == "night"
    assert result.policy == "cpuOnly"
    assert result.capacity_tokens_per_second == pytest.approx(18.0)
    assert result.cost_per_hour == pytest.approx(3.2)
    assert result.reason.startswith(
        "night window 22:00–07:00 Asia/Shanghai: 2 replicas on cpu-xeon cover 14 tok/s demand"
        " at ¥3.2/h, 89% below a100"
    )
    assert ("a100", "cpuOnly window excludes gpu pools") in result.excluded
    # Next transition: 07:00 Shanghai = 23:00 UTC.
    assert result.next_transition == datetime(2026, 11, 28, 23, 0, tzinfo=UTC)
    assert result.next_window is None
    assert result.next_policy == "costOptimal"


def test_cost_per_million_tokens_and_savings_against_the_baseline() -> None:
    result = plan(spec(), pools(), [], 14.0, NIGHT)
    assert result.cost_per_million_tokens == pytest.approx(3.2 / (14 * 3600 / 1e6))
    # Baseline: the priciest GPU pool sized for 14 × 1.2 tok/s → 1 × a100 at 30/h.
    assert result.baseline_pool == "a100"
    assert result.baseline_cost_per_hour == pytest.approx(30.0)
    assert result.savings_fraction == pytest.approx(1 - 3.2 / 30.0)


def test_day_slo_excludes_slow_cpu_and_picks_the_cheapest_gpu_mix() -> None:
    result = plan(spec(), pools(), [], 300.0, DAY)
    # 360 tok/s needed; 4090 at 8/h per 120 tok/s beats a100 at 30/h per 400 tok/s.
    assert result.replicas == {"a100": 0, "rtx4090": 3, "cpu-xeon": 0}
    assert any("9 tok/s per request < SLO 10" in why for _, why in result.excluded)


def test_gpu_only_and_prefer_policies() -> None:
    gpu_only = Schedule("UTC", (Window("all", "00:00", "23:59", policy="gpuOnly"),))
    result = plan(spec(schedule=gpu_only, slo=Slo()), pools(), [], 5.0, DAY)
    assert result.replicas["cpu-xeon"] == 0
    prefer_gpu = Schedule("UTC", default_policy="preferGPU")
    result = plan(spec(schedule=prefer_gpu, slo=Slo()), pools(), [], 5.0, DAY)
    assert result.replicas == {"a100": 0, "rtx4090": 1, "cpu-xeon": 0}
    # 72 tok/s needed: one 4090 (8/h) is cheaper than eight CPU replicas (12.8/h) …
    result = plan(spec(schedule=Schedule("UTC"), slo=Slo()), pools(), [], 60.0, DAY)
    assert result.replicas == {"a100": 0, "rtx4090": 1, "cpu-xeon": 0}
    # … but preferCPU fills the CPU pool first while it has room.
    prefer_cpu = Schedule("UTC", default_policy="preferCPU")
    result = plan(spec(schedule=prefer_cpu, slo=Slo()), pools(), [], 60.0, DAY)
    assert result.replicas == {"a100": 0, "rtx4090": 0, "cpu-xeon": 8}


def test_scale_up_is_immediate_and_scale_down_waits_for_the_window() -> None:
    s = spec(load=Load(scale_up_stabilization_seconds=0, scale_down_stabilization_seconds=600))
    first = plan(s, pools(), [], 300.0, DAY)
    observed = [PoolReplicas(p, n, n) for p, n in first.replicas.items()]
    history = first.next_history(History(), [], DAY, s.load)
    up = plan(s, pools(), observed, 500.0, DAY + timedelta(seconds=15), history)
    assert up.capacity_tokens_per_second >= 600.0
    assert up.change is Change.SCALE_UP
    assert (first.rule, up.rule) == ("initial", "scaleUp")
    observed = [PoolReplicas(p, n, n) for p, n in up.replicas.items()]
    history = up.next_history(history, observed, DAY + timedelta(seconds=15), s.load)
    early = plan(s, pools(), observed, 100.0, DAY + timedelta(seconds=300), history)
    assert early.replicas == up.replicas, "demand fell 5 min ago: the 10 min window holds"
    assert early.rule == "held:stabilisation"
    late = plan(s, pools(), observed, 100.0, DAY + timedelta(seconds=700), history)
    assert late.total_replicas < up.total_replicas
    assert late.change is Change.SCALE_DOWN
    assert late.rule == "scaleDown"


def test_cost_move_waits_for_savings_cooldown_and_dwell() -> None:
    s = spec(schedule=Schedule("UTC"), slo=Slo())
    running = [PoolReplicas("a100", 1, 1)]
    # 14 tok/s: a100 (30/h) vs 2 × cpu (3.2/h) saves 89% → move, history empty.
    assert plan(s, pools(), running, 14.0, DAY).replicas["cpu-xeon"] == 2
    recent = History(pool_since=(("a100", DAY - timedelta(seconds=60)),))
    held = plan(s, pools(), running, 14.0, DAY, recent)
    assert held.replicas["a100"] == 1 and "dwell" in held.reason
    assert held.rule == "held:dwell"
    cooling = History(moves=(_move(DAY - timedelta(seconds=120)),))
    held = plan(s, pools(), running, 14.0, DAY, cooling)
    assert held.replicas["a100"] == 1 and "cooldown" in held.reason
    assert held.rule == "held:cooldown"
    greedy_saver = spec(
        schedule=Schedule("UTC"), slo=Slo(), migration=Migration(min_savings_percent=95)
    )
    held = plan(greedy_saver, pools(), running, 14.0, DAY)
    assert held.replicas["a100"] == 1 and "minSavingsPercent" in held.reason
    assert held.rule == "held:minSavings"
    assert plan(s, pools(), running, 14.0, DAY).rule == "move"


def test_window_forbidding_a_pool_forces_the_move_despite_cooldown() -> None:
    running = [PoolReplicas("a100", 1, 1)]
    cooling = History(
        moves=(_move(NIGHT - timedelta(seconds=30)),),
        pool_since=(("a100", NIGHT - timedelta(seconds=30)),),
    )
    result = plan(spec(), pools(), running, 14.0, NIGHT, cooling)
    assert result.replicas == {"a100": 0, "rtx4090": 0, "cpu-xeon": 2}
    assert "leaving a100 (cpuOnly window excludes gpu pools)" in result.reason
    assert result.rule == "window"


def test_metrics_unavailable_holds_but_obeys_the_window() -> None:
    running = [PoolReplicas("rtx4090", 2, 2)]
    held = plan(spec(), pools(), running, None, DAY)
    assert held.replicas == {"a100": 0, "rtx4090": 2, "cpu-xeon": 0}
    assert "metrics unavailable" in held.reason
    at_night = plan(spec(), pools(), running, None, NIGHT)
    # 2 × 4090 served 240 tok/s; the cpu pool holds at most 8 × 9 = 72 of it.
    assert at_night.replicas == {"a100": 0, "rtx4090": 0, "cpu-xeon": 8}


def test_infeasible_demand_gives_the_biggest_placement_and_names_the_shortfall() -> None:
    result = plan(spec(), pools(capacity=2), [], 100.0, NIGHT)
    assert not result.feasible
    assert result.replicas["cpu-xeon"] == 2
    assert result.shortfall_tokens_per_second == pytest.approx(120.0 - 18.0)
    assert "cover only 18 of 120 tok/s needed (short 102 tok/s)" in result.reason


def test_model_that_fits_no_allowed_pool_is_explained() -> None:
    unfit = [
        PoolOption("a100", "gpu", "r1", 4, 30.0, 400.0, 40.0),
        PoolOption(
            "cpu-xeon",
            "cpu",
            "r1",
            4,
            1.6,
            9.0,
            9.0,
            fits=False,
            fit_reason="needs 1.3 TB RAM, node has 512 GB",
        ),
    ]
    result = plan(spec(), unfit, [], 10.0, NIGHT)
    assert result.total_replicas == 0 and not result.feasible
    assert "no allowed pool can run the model" in result.reason
    assert "needs 1.3 TB RAM, node has 512 GB" in result.reason
    assert "cpuOnly window excludes gpu pools" in result.reason


def test_solver_failure_falls_back_to_greedy_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise placement_solver.SolverFailed("HiGHS status 1: time limit reached")

    monkeypatch.setattr(placement_solver, "solve_min_cost", broken)
    result = plan(spec(), pools(), [], 14.0, NIGHT)
    assert result.solver == "greedy"
    assert "greedy fallback" in result.reason
    assert result.capacity_tokens_per_second >= 14.0 * 1.2


def test_bad_inputs_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"pools\[x\]\.replicaCostPerHour"):
        PoolOption("x", "gpu", "v", 1, -1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="repeated"):
        plan(spec(), [*pools(), pools()[0]], [], 1.0, DAY)
    with pytest.raises(ValueError, match="timezone-aware"):
        plan(spec(), pools(), [], 1.0, datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="demand"):
        plan(spec(), pools(), [], -3.0, DAY)
    with pytest.raises(ValueError, match=r"replicas\.max"):
        ReplicaBounds(3, 2)
    with pytest.raises(ValueError, match=r"pools\[x\]\.kind must be gpu or cpu"):
        PoolOption("x", "tpu", "v", 1, 1.0, 1.0, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"slo\.minTokensPerSecondPerRequest"):
        Slo(min_tokens_per_second_per_request=0)
    with pytest.raises(ValueError, match=r"migration\.minSavingsPercent"):
        Migration(min_savings_percent=120)
    with pytest.raises(ValueError, match=r"load\.scaleDownStabilizationSeconds"):
        Load(0, -1)


def _move(at: datetime):  # type: ignore[no-untyped-def]
    from deepseek_operator.core.planning.stability import Move

    return Move(at, (("rtx4090", 1),), (("a100", 1),))


def test_replicas_on_a_pool_no_longer_offered_are_moved_off() -> None:
    running = [PoolReplicas("old-pool", 2, 2)]
    result = plan(spec(), pools(), running, 14.0, NIGHT)
    assert result.replicas == {"a100": 0, "rtx4090": 0, "cpu-xeon": 2}
    assert "leaving old-pool (not offered)" in result.reason
    assert result.change is Change.MOVE


def test_scale_to_zero_is_a_move_that_waits_for_dwell() -> None:
    running = [PoolReplicas("cpu-xeon", 2, 2)]
    fresh = History(pool_since=(("cpu-xeon", NIGHT - timedelta(seconds=60)),))
    held = plan(spec(), pools(), running, 0.0, NIGHT, fresh)
    assert held.replicas["cpu-xeon"] == 1, "trimmed, but the pool keeps a replica"
    assert "dwell" in held.reason
    settled = History(pool_since=(("cpu-xeon", NIGHT - timedelta(hours=2)),))
    assert plan(spec(), pools(), running, 0.0, NIGHT, settled).total_replicas == 0


def test_a_scale_down_empties_a_settled_pool_but_not_one_just_entered() -> None:
    s = spec(schedule=Schedule("UTC"), slo=Slo())
    running = [PoolReplicas("a100", 1, 1), PoolReplicas("rtx4090", 2, 2)]  # 640 tok/s
    # Demand fell to 200 tok/s (240 with headroom): 2 × 4090 alone carry it.
    settled = History(effective_demand=500.0, pool_since=(("a100", DAY - timedelta(hours=2)),))
    result = plan(s, pools(), running, 200.0, DAY, settled)
    assert result.replicas == {"a100": 0, "rtx4090": 2, "cpu-xeon": 0}
    assert result.change is Change.SCALE_DOWN and result.rule == "scaleDown"
    history = result.next_history(settled, running, DAY, s.load)
    assert history.moves == (), "emptying a pool by a pure scale-down is not a move"
    assert history.entered("a100") is None
    # The a100 replica started a minute ago: minDwellSeconds keeps the pool.
    fresh = History(effective_demand=500.0, pool_since=(("a100", DAY - timedelta(seconds=60)),))
    kept = plan(s, pools(), running, 200.0, DAY, fresh)
    assert kept.replicas["a100"] == 1


def test_disruption_is_measured_against_what_runs_not_the_placement_staying_would_grow_to() -> None:
    big = PoolOption("big", "gpu", "v", 8, 14.57, 102.5, 50.0, currency="CNY")
    small = PoolOption("small", "gpu", "v", 2, 11.1, 65.8, 50.0, currency="CNY")
    s = spec(schedule=Schedule("UTC"), slo=Slo(headroom_fraction=0.2), load=Load(0, 0, 0.0))
    running = [PoolReplicas("big", 3, 3), PoolReplicas("small", 1, 1)]  # 373 tok/s
    # 341 tok/s needs 409: growing adds a second small replica (65.91/h); 4 big ones cost
    # 58.26/h (12 % less). Against the grown placement that stops 2 small replicas (30 % of
    # its capacity, score 0.39); against what runs it stops one (18 %, score 0.66): allowed.
    result = plan(s, [big, small], running, 341.0, DAY, History(effective_demand=300.0))
    assert result.replicas == {"big": 4, "small": 0}
    assert result.rule == "move"


def test_cost_moves_wait_until_the_stabilised_demand_has_settled() -> None:
    from deepseek_operator.core.planning.stability import DemandSample

    s = spec(schedule=Schedule("UTC"), load=Load(0, 600))
    running = [PoolReplicas("a100", 1, 1)]  # 400 tok/s at 30/h
    # Demand fell from 300 to 100 tok/s a minute ago: the plan still holds 300 (360 with
    # headroom), for which 3 × 4090 (24/h) would be 20 % cheaper than the a100.
    falling = History(
        demand_samples=(DemandSample(DAY - timedelta(seconds=60), 300.0),),
        effective_demand=300.0,
    )
    held = plan(s, pools(), running, 100.0, DAY, falling)
    assert held.replicas["a100"] == 1
    assert held.rule == "held:stabilisation"
    assert "demand still settling (100 tok/s measured, 300 stabilised)" in held.reason
    # Once the stabilised demand has caught up, the move is judged as usual: 1 × 4090.
    settled = History(effective_demand=100.0)
    moved = plan(s, pools(), running, 100.0, DAY, settled)
    assert moved.replicas == {"a100": 0, "rtx4090": 1, "cpu-xeon": 0}
    assert moved.rule == "move"


def test_trims_when_demand_falls_but_consolidates_only_through_the_gate() -> None:
    running = [PoolReplicas("cpu-xeon", 8, 8)]  # 72 tok/s of capacity for 14 tok/s
    recent_move = (_move(NIGHT - timedelta(seconds=60)),)
    steady = History(effective_demand=14.0, moves=recent_move)
    held = plan(spec(), pools(), running, 14.0, NIGHT, steady)
    assert held.replicas["cpu-xeon"] == 8
    assert "stays over 2×cpu-xeon: cooldown" in held.reason
    fell = History(effective_demand=60.0, moves=recent_move)
    trimmed = plan(spec(), pools(), running, 14.0, NIGHT, fell)
    assert trimmed.replicas["cpu-xeon"] == 2
    assert trimmed.change is Change.SCALE_DOWN


def test_short_spikes_wait_for_the_scale_up_window() -> None:
    from deepseek_operator.core.planning.stability import DemandSample, effective_demand

    load = Load(scale_up_stabilization_seconds=60, scale_down_stabilization_seconds=600)
    calm = History(
        demand_samples=(DemandSample(DAY - timedelta(seconds=30), 10.0),), effective_demand=10.0
    )
    assert effective_demand(calm, 100.0, DAY, load) == 10.0
    busy = History(
        demand_samples=(
            DemandSample(DAY - timedelta(seconds=90), 10.0),
            DemandSample(DAY - timedelta(seconds=45), 120.0),
        ),
        effective_demand=10.0,
    )
    assert effective_demand(busy, 100.0, DAY, load) == 100.0
    # Beyond what the placement in force serves, waiting serves nothing: the level rises at once
    # as far as serves the demand; the headroom above it waits for the window.
    assert effective_demand(calm, 100.0, DAY, load, capacity=150.0) == 10.0
    assert effective_demand(calm, 100.0, DAY, load, capacity=80.0) == 100.0
    assert effective_demand(calm, 100.0, DAY, load, capacity=80.0, headroom=0.25) == 80.0
    # Falling: held at the highest demand of the last 600 s.
    assert effective_demand(busy, 5.0, DAY, load) == 10.0
    assert effective_demand(History(effective_demand=50.0), 5.0, DAY, Load(0, 0)) == 5.0


THREE_4090S = [PoolReplicas("rtx4090", 3, 3)]  # 360 tok/s


def calm_at_250() -> History:
    """250 tok/s seen 30 s ago, inside a 60 s scale-up window."""
    from deepseek_operator.core.planning.stability import DemandSample

    return History(
        demand_samples=(DemandSample(DAY - timedelta(seconds=30), 250.0),), effective_demand=250.0
    )


def test_demand_above_what_runs_is_served_at_once_and_its_headroom_after_the_window() -> None:
    from deepseek_operator.core.planning.stability import DemandSample

    s = spec(schedule=Schedule("UTC"), load=Load(60, 600, 0.0))
    # 320 tok/s (384 with headroom) is still served, within the headroom: the 60 s window holds.
    held = plan(s, pools(), THREE_4090S, 320.0, DAY, calm_at_250())
    assert held.replicas["rtx4090"] == 3 and held.effective_demand_tokens_per_second == 250.0
    # 470 tok/s is more than 3 replicas serve at all: what serves it is added at once (4 × 120),
    # not yet its 20 % headroom (564 tok/s, 5 replicas), which may be a spike's.
    burst = plan(s, pools(), THREE_4090S, 470.0, DAY, calm_at_250())
    assert burst.rule == "scaleUp"
    assert burst.replicas == {"a100": 0, "rtx4090": 4, "cpu-xeon": 0}
    # Once the rise has lasted the scale-up window, the headroom follows.
    lasted = History(
        demand_samples=(DemandSample(DAY + timedelta(seconds=45), 470.0),),
        effective_demand=burst.effective_demand_tokens_per_second,
    )
    after = plan(
        s, pools(), [PoolReplicas("rtx4090", 4, 4)], 470.0, DAY + timedelta(seconds=75), lasted
    )
    assert after.rule == "scaleUp" and after.capacity_tokens_per_second >= 564.0


def test_the_tolerance_does_not_keep_demand_beyond_what_runs_waiting() -> None:
    s = spec(schedule=Schedule("UTC"), load=Load(60, 600, 0.1))
    # 370 tok/s: 360 is within 10 % of it, but 10 tok/s would go unserved.
    short = plan(s, pools(), THREE_4090S, 370.0, DAY, calm_at_250())
    assert short.rule == "scaleUp" and short.capacity_tokens_per_second >= 370.0


def test_history_records_moves_and_when_pools_were_entered() -> None:
    running = [PoolReplicas("a100", 1, 1)]
    moved = plan(spec(), pools(), running, 14.0, NIGHT)
    history = moved.next_history(History(), running, NIGHT, spec().load)
    assert history.last_move_at == NIGHT
    assert history.moves[-1].before == (("a100", 1),)
    assert history.moves[-1].after == (("cpu-xeon", 2),)
    assert history.entered("cpu-xeon") == NIGHT
    assert history.entered("a100") is None
    assert history.effective_demand == 14.0


def test_a_move_must_earn_back_what_its_new_replicas_cost_while_starting() -> None:
    from dataclasses import replace

    s = spec(schedule=Schedule("UTC"), slo=Slo())
    running = [PoolReplicas("a100", 1, 1)]
    # Moving 1 × a100 (30/h) to 2 × cpu (3.2/h) saves 26.8/h, 6.7 over the 900 s dwell.
    slow = [replace(p, startup_seconds=3 * 3600) if p.kind == "cpu" else p for p in pools()]
    held = plan(s, slow, running, 14.0, DAY)
    assert held.replicas["a100"] == 1
    assert "too little to earn back the 9.6 its new replicas cost while starting" in held.reason
    quick = [replace(p, startup_seconds=300) if p.kind == "cpu" else p for p in pools()]
    assert plan(s, quick, running, 14.0, DAY).replicas["cpu-xeon"] == 2


@pytest.mark.parametrize("demand", [5e-324, 2.225073858507e-311, 1e-310, 0.0])
def test_vanishing_demand_has_no_cost_per_million_and_does_not_crash(demand: float) -> None:
    result = plan(spec(), pools(), [], demand, DAY)
    per_million = result.cost_per_million_tokens
    assert per_million is None or 0 < per_million < math.inf


def test_a_move_that_disrupts_more_than_twice_what_it_saves_is_refused() -> None:
    from deepseek_operator.core.planning.stability import judge_move

    free = Migration(cooldown_seconds=0, min_savings_percent=10, min_dwell_seconds=0)
    # Every replica stops (disruption 100 %) to save 20 %: score 0.2 < 1/k = 0.5.
    verdict = judge_move({"a": 4}, {"b": 4}, 100.0, 80.0, History(), DAY, free)
    assert not verdict.allowed
    assert verdict.disruption_fraction == 1.0
    assert "disrupts 100% of replicas (score 0.20 < 0.50)" in verdict.why_not
    # Half the replicas stop to save 30 %: score 0.6 passes.
    half = judge_move({"a": 2, "b": 2}, {"b": 3}, 100.0, 70.0, History(), DAY, free)
    assert half.allowed and half.disruption_fraction == 0.5


def test_disruption_counts_the_capacity_a_move_stops_not_its_replicas() -> None:
    from deepseek_operator.core.planning.stability import judge_move

    free = Migration(cooldown_seconds=0, min_savings_percent=5, min_dwell_seconds=0)
    # 3 big replicas (1,000 tok/s each) and 3 small ones (28 tok/s): consolidating onto a 4th
    # big one stops half the replicas but under 3 % of the capacity, to save 9 %.
    rates = {"big": 1000.0, "small": 28.0}
    before, after = {"big": 3, "small": 3}, {"big": 4}
    by_count = judge_move(before, after, 32.0, 29.1, History(), DAY, free)
    assert not by_count.allowed and by_count.rule == "disruption"
    weighed = judge_move(before, after, 32.0, 29.1, History(), DAY, free, tokens_per_replica=rates)
    assert weighed.allowed
    assert weighed.disruption_fraction == pytest.approx(84 / 3084)
    # The planner weighs by capacity: 2 × 4090 + 8 slow CPU replicas (28.8/h) consolidate onto
    # 3 × 4090 (24/h, 17 % less) although 8 of 10 replicas stop: they carry 72 of 312 tok/s.
    s = spec(
        schedule=Schedule("UTC"),
        slo=Slo(),
        replicas=ReplicaBounds(1, 12),
        migration=Migration(0, 8, 0, 10, 0),
    )
    running = [PoolReplicas("rtx4090", 2, 2), PoolReplicas("cpu-xeon", 8, 8)]
    moved = plan(s, pools(), running, 250.0, DAY, History(effective_demand=250.0))
    assert moved.replicas == {"a100": 0, "rtx4090": 3, "cpu-xeon": 0}
    assert moved.rule == "move"


def test_running_replicas_just_short_of_demand_scale_up_only_past_the_tolerance() -> None:
    # 3 × 4090 give 360 tok/s; 310 tok/s × 1.2 headroom needs 372: 3 % short.
    running = [PoolReplicas("rtx4090", 3, 3)]
    strict = spec(load=Load(0, 0, tolerance_fraction=0.0))
    result = plan(strict, pools(), running, 310.0, DAY)
    assert result.feasible
    assert result.capacity_tokens_per_second >= 372.0
    assert result.replicas == {"a100": 0, "rtx4090": 4, "cpu-xeon": 0}
    assert result.change is Change.SCALE_UP
    # The HPA's 10 % tolerance keeps the 3 replicas: no replica comes and goes at the boundary.
    kept = plan(spec(), pools(), running, 310.0, DAY)
    assert kept.replicas == {"a100": 0, "rtx4090": 3, "cpu-xeon": 0}
    assert kept.change is Change.NONE and kept.rule == "held:tolerance"
    assert kept.feasible and kept.shortfall_tokens_per_second == 0
    # 340 tok/s needs 408, 13 % above 360: past the tolerance, replicas are added.
    grown = plan(spec(), pools(), running, 340.0, DAY)
    assert grown.capacity_tokens_per_second >= 408.0
    assert grown.change is Change.SCALE_UP and grown.rule == "scaleUp"


def test_capacity_just_below_the_requirement_is_not_feasible() -> None:
    terms = [placement_solver.PoolTerms(1.0, 100.0, 0, 4)]
    assert placement_solver.is_feasible(terms, (1,), 100.0, 0, 4)
    assert not placement_solver.is_feasible(terms, (1,), 100.001, 0, 4)


def test_the_partial_placement_is_the_cheapest_of_the_biggest() -> None:
    equal = [
        PoolOption("dear", "cpu", "v", 2, 5.0, 9.0, 9.0, currency="CNY"),
        PoolOption("cheap", "cpu", "v", 2, 1.0, 9.0, 9.0, currency="CNY"),
        PoolOption("mid", "cpu", "v", 2, 3.0, 9.0, 9.0, currency="CNY"),
    ]
    capped = spec(replicas=ReplicaBounds(1, 3), schedule=Schedule("UTC"), slo=Slo())
    result = plan(capped, equal, [], 100.0, DAY)
    assert not result.feasible
    assert result.capacity_tokens_per_second == pytest.approx(27.0)
    assert result.replicas == {"dear": 0, "cheap": 2, "mid": 1}


def test_pools_priced_in_different_currencies_are_refused() -> None:
    from dataclasses import replace

    mixed = [*pools()[:2], replace(pools()[2], currency="USD")]
    with pytest.raises(
        ValueError, match=r"pools\[\]\.currency .*CNY \(a100, rtx4090\); USD \(cpu-xeon\)"
    ):
        plan(spec(), mixed, [], 14.0, NIGHT)


@pytest.mark.parametrize("demand", [2e-9, 1e-8, 5e-8])
def test_a_tiny_demand_above_the_tolerance_still_gets_a_replica(demand: float) -> None:
    # HiGHS accepts a row 1e-7 short; the plan's own check allows 1e-9: the answer must pass both.
    scale_to_zero = spec(schedule=Schedule("UTC"), slo=Slo(), replicas=ReplicaBounds(0, 8))
    result = plan(scale_to_zero, pools(), [], demand, DAY)
    assert result.feasible, result.reason
    assert result.replicas == {"a100": 0, "rtx4090": 0, "cpu-xeon": 1}


def test_a_move_made_for_a_preference_reports_the_real_cost_change() -> None:
    prefer_gpu = spec(schedule=Schedule("UTC", default_policy="preferGPU"), slo=Slo())
    # 2 × cpu (3.2/h) → 1 × 4090 (8/h): the bias makes the move, but it costs more, not less.
    result = plan(prefer_gpu, pools(), [PoolReplicas("cpu-xeon", 2, 2)], 14.0, DAY)
    assert result.replicas == {"a100": 0, "rtx4090": 1, "cpu-xeon": 0}
    assert "moving for preferGPU costs 150% more" in result.reason
    assert "saves" not in result.reason
    # Without a preference the reason is the saving in money.
    plain = spec(schedule=Schedule("UTC"), slo=Slo())
    moved = plan(plain, pools(), [PoolReplicas("a100", 1, 1)], 14.0, DAY)
    assert "moving saves 89%" in moved.reason


@pytest.mark.parametrize("ttft", [float("nan"), float("inf"), -1.0])
def test_a_bad_time_to_first_token_is_named_not_let_through_the_slo(ttft: float) -> None:
    with pytest.raises(ValueError, match=r"pools\[x\]\.timeToFirstTokenSeconds"):
        PoolOption("x", "gpu", "v", 1, 1.0, 1.0, 1.0, time_to_first_token_seconds=ttft)


def test_no_pools_at_all_says_so() -> None:
    result = plan(spec(), [], [], 10.0, DAY)
    assert not result.feasible and result.total_replicas == 0
    assert "no pools offered" in result.reason
    assert "run the model: )" not in result.reason


def test_savings_compare_placements_that_serve_the_same_demand() -> None:
    """A placement short of demand does not claim the saving of leaving demand unserved: the
    all-GPU baseline it is compared with serves what it serves."""
    only_a100 = pools()[:1]  # the baseline pool itself, 4 replicas at most
    result = plan(spec(), only_a100, [], 4_000.0, DAY)
    assert result.shortfall_tokens_per_second > 0
    assert result.replicas["a100"] == 4
    assert result.baseline_cost_per_hour == pytest.approx(4 * 30.0)
    assert result.savings_fraction == pytest.approx(0.0)
    assert "0% below a100 serving the same 1,600 tok/s" in result.reason


def _plan_twice(
    s: PlanSpec, options: list[PoolOption], running: list[PoolReplicas], demand: float, h: History
) -> tuple[dict[str, int], dict[str, int]]:
    """The plan, and the plan again once the first has been carried out: same demand, and the
    history with the stabilised demand the first recorded."""
    first = plan(s, options, running, demand, DAY, h)
    own = [PoolReplicas(p, n, n) for p, n in first.replicas.items() if n > 0]
    recorded = first.effective_demand_tokens_per_second
    after = replace(h, effective_demand=recorded) if recorded is not None else h
    return first.replicas, plan(s, options, own, demand, DAY, after).replicas


EAGER = Migration(cooldown_seconds=0, min_savings_percent=0, min_dwell_seconds=0)


def _bounds_spec(most: int, scale_up_seconds: int = 0, headroom: float = 0.0) -> PlanSpec:
    """UTC, no SLO speed, `EAGER` moves, 0 to `most` replicas, no scale-down window."""
    return spec(
        schedule=Schedule("UTC"),
        slo=Slo(headroom_fraction=headroom),
        migration=EAGER,
        replicas=ReplicaBounds(0, most),
        load=Load(scale_up_seconds, 0),
    )


def _held_back() -> History:
    """Demand was 0 a second ago: a 60 s scale-up window holds the stabilised demand there."""
    from deepseek_operator.core.planning.stability import DemandSample

    return History((DemandSample(DAY - timedelta(seconds=1), 0.0),), effective_demand=0.0)


def test_a_move_from_a_placement_too_small_for_demand_is_decided_once() -> None:
    # 1 × small runs (0.5 tok/s) under 1 tok/s: staying would add a big replica (1.5 tok/s,
    # 0.3/h), moving runs the big one alone (0.2/h). Against what runs the move stopped all of it
    # and was refused; once staying had grown, the same move was allowed: two plans, one demand.
    small = PoolOption("small", "gpu", "v", 1, 0.1, 0.5, 1.0)
    big = PoolOption("big", "gpu", "v", 1, 0.2, 1.0, 1.0)
    first, again = _plan_twice(
        _bounds_spec(2),
        [small, big],
        [PoolReplicas("small", 1, 1)],
        1.0,
        History(effective_demand=0.0),
    )
    assert first == again == {"small": 0, "big": 1}


def test_replicas_a_scale_down_would_stop_anyway_are_no_disruption_of_a_move() -> None:
    # 4 × wide run (134 tok/s) for 61 tok/s (67 needed): staying trims to 3; moving to 1 narrow
    # + 2 wide (74 tok/s) stops one wide replica more than staying does, a quarter of what runs.
    narrow = PoolOption("narrow", "cpu", "v", 4, 0.1, 7.0, 31.0, startup_seconds=3600)
    wide = PoolOption("wide", "cpu", "v", 5, 0.2, 33.5, 30.0, startup_seconds=3600)
    s = _bounds_spec(4, headroom=0.1)
    first, again = _plan_twice(s, [narrow, wide], [PoolReplicas("wide", 4, 4)], 61.0, History())
    assert first == again == {"narrow": 1, "wide": 2}


def test_a_rebalance_forced_by_bounds_keeps_the_measured_demand_a_scale_up_window_holds_back() -> (
    None
):
    # 3 replicas run where replicas.max is 2; demand rose to 1 tok/s but the 60 s scale-up window
    # keeps the stabilised demand at 0. Cutting to 1 replica (0.5 tok/s) would be undone by the
    # next plan at once (demand above what runs scales up without waiting).
    pool = PoolOption("gpu", "gpu", "v", 3, 0.1, 0.5, 1.0)
    first, again = _plan_twice(
        _bounds_spec(2, scale_up_seconds=60), [pool], [PoolReplicas("gpu", 3, 3)], 1.0, _held_back()
    )
    assert first == again == {"gpu": 2}


def test_a_pool_that_does_not_run_enters_with_at_least_the_tolerance_s_share() -> None:
    # Per token the small pool is cheaper (0.009/h against 0.01/h per tok/s), so the cheapest
    # cover of 1,050 tok/s is 1 big + 5 small. 5 small replicas (50 tok/s) are less than the
    # tolerance's share of what is required (10 % of 1,050): capacity the tolerance already
    # forgives, bought with a pool to start, dwell in and leave. The small pool enters with at
    # least 105 tok/s (11 replicas), or not at all.
    big = PoolOption("big", "gpu", "v", 4, 10.0, 1000.0, 50.0, currency="CNY")
    small = PoolOption("small", "cpu", "v", 40, 0.09, 10.0, 10.0, currency="CNY")
    s = spec(
        schedule=Schedule("UTC"),
        slo=Slo(headroom_fraction=0.2),
        load=Load(0, 0, 0.1),
        replicas=ReplicaBounds(1, 20),
    )
    running = [PoolReplicas("big", 2, 2)]
    result = plan(s, [big, small], running, 875.0, DAY)  # 1,050 tok/s with the headroom
    assert result.rule == "move"
    assert result.replicas == {"big": 1, "small": 11}
    # With nothing running the first placement is the plain optimum.
    first = plan(s, [big, small], [], 875.0, DAY)
    assert first.replicas == {"big": 1, "small": 5}


def test_a_rebalance_that_cannot_keep_every_pool_leaves_one_rather_than_the_demand() -> None:
    # 4 replicas on three pools run where replicas.max is 3, for 411.5 tok/s. Keeping one
    # replica on each pool gives 372 tok/s, below what is measured, and the next plan would
    # scale up at once; leaving the small pool, 1 + 2 replicas carry 451.5.
    one = PoolOption("one", "gpu", "v", 1, 0.1, 166.5, 1.0)
    small = PoolOption("small", "cpu", "v", 4, 0.1, 63.0, 1.0)
    wide = PoolOption("wide", "cpu", "v", 8, 0.8, 142.5, 1.0)
    running = [PoolReplicas("one", 1, 1), PoolReplicas("small", 1, 1), PoolReplicas("wide", 2, 2)]
    first, again = _plan_twice(
        _bounds_spec(3, scale_up_seconds=60), [one, small, wide], running, 411.5, _held_back()
    )
    assert first == again == {"one": 1, "small": 0, "wide": 2}


def test_demand_beyond_what_the_bounds_hold_is_planned_at_the_tolerated_floor() -> None:
    # 3 replicas run where replicas.max is 2, for 493.5 tok/s: no 2 replicas carry it. The next
    # plan, seeing demand above what runs, would take the cheapest placement within the
    # tolerance (2 × cheap, 492 tok/s), so the rebalance goes there, not to the dearer 493.
    cheap = PoolOption("cheap", "cpu", "v", 8, 0.8, 246.0, 1.0)
    dear = PoolOption("dear", "cpu", "v", 5, 1.6, 246.5, 1.0)
    running = [PoolReplicas("cheap", 1, 1), PoolReplicas("dear", 2, 2)]
    first, again = _plan_twice(_bounds_spec(2), [cheap, dear], running, 493.5, History())
    assert first == again == {"cheap": 2, "dear": 0}


def test_demand_beyond_what_the_bounds_hold_is_not_given_up_to_a_scale_up_window() -> None:
    # 2 replicas run where replicas.max is 1, for 99.5 tok/s (the stabilised demand is held at 0
    # by the scale-up window). One replica of 99 tok/s is within the tolerance; stopping both
    # would be undone by the next plan at once.
    big = PoolOption("big", "gpu", "v", 1, 0.1, 99.0, 1.0)
    tiny = PoolOption("tiny", "gpu", "v", 1, 0.1, 0.5, 1.0)
    running = [PoolReplicas("big", 1, 1), PoolReplicas("tiny", 1, 1)]
    first, again = _plan_twice(
        _bounds_spec(1, scale_up_seconds=60), [big, tiny], running, 99.5, _held_back()
    )
    assert first == again == {"big": 1, "tiny": 0}


# An A100-like pool (cheaper per token) and an RTX 4090-like one (cheaper per replica), as in the
# 32B example: 105 tok/s for 14.57/h against 67 tok/s for 11.11/h.
BIG = PoolOption("big", "gpu", "bf16", 8, 14.57, 105.0, 20.0, currency="CNY")
SMALL = PoolOption("small", "gpu", "int4", 4, 11.11, 67.0, 20.0, currency="CNY")


def _two_sizes() -> PlanSpec:
    return spec(
        schedule=Schedule("UTC"),
        slo=Slo(headroom_fraction=0.2),
        load=Load(0, 0, 0.1),
        replicas=ReplicaBounds(1, 12),
    )


def test_growth_stays_in_the_pools_that_run_while_they_have_room() -> None:
    # 293 tok/s (351.6 with the headroom) outgrows 3 big replicas (315) by more than the
    # tolerance. A small replica on top (382 tok/s, 54.82/h) adds capacity for less than a
    # fourth big one (420 tok/s, 58.28/h), but leaves a mixed placement whose consolidation is
    # a move of its own; a saving under minSavingsPercent (6 %) is not worth entering a pool.
    grown = plan(_two_sizes(), [BIG, SMALL], [PoolReplicas("big", 3, 3)], 293.0, DAY)
    assert grown.rule == "scaleUp"
    assert grown.replicas == {"big": 4, "small": 0}


def test_full_pools_serve_demand_and_enter_no_pool_for_headroom_alone() -> None:
    running = [PoolReplicas("big", 8, 8)]  # the pool is full: 840 tok/s
    # 800 tok/s wants 960 with its headroom. The pool that runs is full but serves the demand:
    # no small replicas start for the headroom alone (an HPA at maxReplicas runs above its
    # target the same way).
    held = plan(_two_sizes(), [BIG, SMALL], running, 800.0, DAY)
    assert held.rule == "held:full"
    assert held.replicas == {"big": 8, "small": 0}
    assert "full" in held.reason
    # Demand beyond what the full pool serves enters the other pool, with the headroom then
    # (1,020 tok/s: 3 small replicas on top of the 8 big ones).
    entered = plan(_two_sizes(), [BIG, SMALL], running, 850.0, DAY)
    assert entered.rule == "scaleUp"
    assert entered.replicas == {"big": 8, "small": 3}
