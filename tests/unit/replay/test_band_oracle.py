"""The fair oracle keeps the tolerance band: checked against brute force and its two bounds."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import numpy as np
import pytest

from deepseek_operator.core.replay import band_oracle, comparison
from deepseek_operator.core.replay.band_oracle import solve_band_oracle
from deepseek_operator.core.replay.engine import (
    DemandTimeline,
    Observation,
    ReplayPool,
    demand_timeline,
    replay,
)
from deepseek_operator.core.replay.oracle import OraclePolicy, OracleRules, solve_oracle
from deepseek_operator.core.replay.traces import TokenSeries

START = datetime(2024, 1, 1, tzinfo=UTC)
GPU = ReplayPool("gpu", "gpu", 36.0, 100.0, 60.0, 3, gpus_per_replica=1)
CPU = ReplayPool("cpu", "cpu", 3.6, 10.0, 0.0, 2)
LOW, HIGH = 1.25 / 1.1, 1.25


def timeline(rates: list[float]) -> DemandTimeline:
    trace = TokenSeries(START, 60.0, np.array(rates) * 60.0, "hand")
    return demand_timeline(trace, 60.0, Observation(60, 120))


def brute_force(demand: DemandTimeline, pools: tuple[ReplayPool, ...], min_ready: int) -> float:
    """Every sequence of placements, the band's rules checked one by one."""
    need = demand.arriving_tokens
    tokens = [p.tokens_per_second_per_replica * 60.0 for p in pools]
    cost = [p.cost_per_replica_hour / 60.0 for p in pools]
    lags = [int(np.ceil(p.startup_seconds / 60.0)) for p in pools]
    placements = list(itertools.product(*(range(p.max_replicas + 1) for p in pools)))
    most = max(sum(n * k for n, k in zip(x, tokens, strict=True)) for x in placements)
    best = np.inf
    for path in itertools.product(placements, repeat=len(need)):
        total = 0.0
        for t, now in enumerate(path):
            capacity = sum(n * k for n, k in zip(now, tokens, strict=True))
            if sum(now) < min_ready or capacity < need[t] * LOW - 1e-9:
                break
            before = path[t - 1] if t else None
            if (t == 0 or now != before) and capacity < min(need[t] * HIGH, most) - 1e-9:
                break
            total += sum(n * c for n, c in zip(now, cost, strict=True))
            if t:
                for p, (n, m) in enumerate(zip(now, before, strict=True)):
                    if n > m and t - lags[p] < 1:
                        break
                    total += max(0, n - m) * cost[p] * lags[p]
                else:
                    continue
                break
        else:
            best = min(best, total)
    return best


@pytest.mark.parametrize(
    "rates",
    [
        [50.0, 50.0, 250.0, 250.0, 50.0, 50.0],
        [120.0, 90.0, 100.0, 80.0, 60.0],
        [30.0, 180.0, 170.0, 150.0, 20.0],
    ],
)
def test_the_programme_finds_what_brute_force_finds(rates: list[float]) -> None:
    demand = timeline(rates)
    pools = (GPU, CPU)
    band = solve_band_oracle(demand, pools, low=LOW, high=HIGH, rules=OracleRules(), min_ready=1)
    assert band.method == "band" and band.unmet_tokens == 0.0
    assert band.objective_cost == pytest.approx(brute_force(demand, pools, 1))


def test_every_change_lands_at_the_full_requirement_and_the_replay_costs_the_same() -> None:
    rng = np.random.default_rng(7)
    rates = list(100 + 150 * np.abs(np.sin(np.arange(40) / 6)) + rng.uniform(0, 20, 40))
    demand = timeline(rates)
    pools = (ReplayPool("gpu", "gpu", 36.0, 100.0, 120.0, 6), CPU)
    band = solve_band_oracle(demand, pools, low=LOW, high=HIGH)
    run = replay(OraclePolicy(band, pools, "fair-oracle"), demand, pools)
    assert run.total_cost == pytest.approx(band.objective_cost)
    capacity = run.capacity_tokens_per_second.sum(axis=0)
    need = np.array(rates)
    assert np.all(capacity >= need * LOW - 1e-9)
    changed = np.any(np.diff(run.ready, axis=1) != 0, axis=0)
    assert changed.sum() >= 2
    assert np.all(capacity[1:][changed] >= need[1:][changed] * HIGH - 1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_the_band_costs_between_its_floor_everywhere_and_its_top_everywhere(seed: int) -> None:
    """Holding the floor at every step is a relaxation of the band; holding the full
    requirement at every step is one way to keep it."""
    rng = np.random.default_rng(seed)
    rates = list(rng.uniform(20, 400, 30))
    demand = timeline(rates)
    pools = (ReplayPool("gpu", "gpu", 36.0, 100.0, 60.0, 6), CPU)
    floor = solve_oracle(demand, pools, requirement=LOW)
    top = solve_oracle(demand, pools, requirement=HIGH)
    band = solve_band_oracle(demand, pools, low=LOW, high=HIGH)
    assert floor.objective_cost - 1e-6 <= band.objective_cost <= top.objective_cost + 1e-6


def test_too_many_placements_fall_back_to_the_floor_and_say_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.unit.replay.test_oracle import flat_inputs

    inputs, trace = flat_inputs()
    demand = demand_timeline(trace, 60.0, Observation(60, 120))
    settings = comparison.ReplaySettings(60.0, Observation(60, 120))
    searched, note = comparison.fair_oracle(inputs, demand, settings)
    assert searched.method == "band" and note == ""
    monkeypatch.setattr(comparison, "MAX_PLACEMENTS", 1)
    floor, note = comparison.fair_oracle(inputs, demand, settings)
    assert floor.method == "milp" and "a lower bound" in note
    with pytest.raises(ValueError, match="placements"):
        monkeypatch.setattr(band_oracle, "MAX_PLACEMENTS", 1)
        solve_band_oracle(demand, inputs.pools, low=1.0, high=1.0)


def test_a_window_that_opens_a_pool_sooner_than_it_can_start_keeps_what_runs_a_step() -> None:
    demand = timeline([50.0] * 5)
    allowed = np.array([[True, False, False, False, False], [False, True, True, True, True]])
    rules = OracleRules(allowed=allowed, min_ready=np.ones(5, dtype=np.int64))
    slow_cpu = ReplayPool("cpu", "cpu", 3.6, 10.0, 60.0, 8)
    band = solve_band_oracle(demand, (GPU, slow_cpu), low=LOW, high=HIGH, rules=rules)
    assert np.isfinite(band.objective_cost)
    # Step 1 cannot have CPUs Ready (they start at step 1 at the earliest): the GPU stays.
    assert band.ready[:, :3].tolist() == [[1, 1, 0], [0, 0, 7]]
