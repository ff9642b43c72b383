"""`decide()` with measured load: unavailable metrics, queue depth, the capacity correction,
and the moves it reports for the operator's metrics."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from deepseek_operator.api.status import DeepSeekDeploymentStatus
from deepseek_operator.core.planning.correction import HORIZON, Learnt, PoolLoad, Steady
from deepseek_operator.core.planning.reconcile import (
    Decision,
    DemandReading,
    DemandUnavailable,
    PoolMove,
    PoolState,
    ReconcileHistory,
    history_from_status,
    history_to_status,
)
from deepseek_operator.core.planning.stability import History, Move
from tests.unit.planning.test_reconcile import (
    A100_ROOMS,
    MONDAY_10,
    NIGHT_STARTS,
    XEON_ROOMS,
    condition,
    example,
    pools,
    run,
    writes,
)

LOAD = {"prometheusAddress": "http://prometheus:9090"}
NIGHT = NIGHT_STARTS + timedelta(hours=2)
CPU_PER_REPLICA = 40.87666435604901
"""The roofline estimate for cpu-xeon's replica of r1-7b int8 (llama.cpp)."""


def with_load(**load: Any) -> Any:
    return example(load={**LOAD, **load})


def a100(n: int) -> PoolState:
    return PoolState("a100", n, n, n, n, node_count=2, rooms=A100_ROOMS, deployment_exists=True)


def cpu(n: int, ready: int | None = None) -> PoolState:
    ready = n if ready is None else ready
    return PoolState(
        "cpu-xeon", n, ready, n, n, node_count=3, rooms=XEON_ROOMS, deployment_exists=True
    )


def reading(
    tokens: float, at: datetime, queue: float | None = None, *loads: PoolLoad
) -> DemandReading:
    return DemandReading(tokens, at - timedelta(seconds=5), queue, tuple(loads))


def status_of(decision: Decision, type_: str) -> Any:
    return {c.type: c for c in decision.status.conditions}[type_]


def after(decision: Decision, dsd: Any) -> Any:
    """The resource as the next tick sees it: with this tick's status."""
    return dsd.model_copy(update={"status": decision.status})


# ---------------------------------------------------------------------------------------------
# Unavailable metrics: hold, windows still apply, resume


def test_an_outage_holds_the_placement_keeps_the_last_demand_and_resumes_with_an_event():
    dsd = with_load()
    history = ReconcileHistory(target={"a100": 2}, written={"a100": 2})
    states = pools(a100=a100(2))
    fresh = run(dsd, states, MONDAY_10, history, reading(1500.0, MONDAY_10))
    assert condition(fresh, "MetricsAvailable") == ("True", "MetricsFresh")
    assert fresh.target == {"a100": 2, "cpu-xeon": 0}

    # Prometheus goes away; even a demand that would now need one replica changes nothing.
    down_at = MONDAY_10 + timedelta(seconds=15)
    gone = DemandUnavailable("PrometheusUnreachable", "connection refused")
    down = run(after(fresh, dsd), states, down_at, fresh.history, gone)
    assert down.target == {"a100": 2, "cpu-xeon": 0} and writes(down) == {"a100": 2}
    assert condition(down, "MetricsAvailable") == ("False", "PrometheusUnreachable")
    assert "holding the placement" in status_of(down, "MetricsAvailable").message
    assert "metrics unavailable: holding placement" in down.status.reason
    (warning,) = [e for e in down.events if e.reason == "MetricsUnavailable"]
    assert warning.type == "Warning" and "connection refused" in warning.message
    assert down.status.demand == fresh.status.demand  # the last measured demand, with its time
    assert down.history.planner.demand_samples == fresh.history.planner.demand_samples
    assert down.moves == ()

    # Still down a tick later: no second Warning.
    still = run(after(down, dsd), states, down_at + timedelta(seconds=15), down.history, gone)
    assert not [e for e in still.events if e.reason == "MetricsUnavailable"]

    # Back: planned from measured demand again, and an Event says so.
    back_at = down_at + timedelta(seconds=95)
    back = run(after(still, dsd), states, back_at, still.history, reading(1500.0, back_at))
    assert condition(back, "MetricsAvailable") == ("True", "MetricsFresh")
    (restored,) = [e for e in back.events if e.reason == "MetricsRestored"]
    assert restored.type == "Normal"
    assert "after 95s unavailable (PrometheusUnreachable)" in restored.message


def test_while_metrics_are_unavailable_a_window_that_forbids_the_pool_still_moves_it():
    dsd = with_load()
    history = ReconcileHistory(target={"a100": 1}, written={"a100": 1})
    gone = DemandUnavailable("NoData", "no series")
    decision = run(dsd, pools(a100=a100(1)), NIGHT_STARTS, history, gone)
    # The A100's capacity is replaced by the most the night window allows on CPUs.
    assert decision.target == {"a100": 0, "cpu-xeon": 3}
    assert condition(decision, "MetricsAvailable") == ("False", "NoData")
    assert decision.moves == (PoolMove("a100", "cpu-xeon", "Window"),)
    assert any(e.reason == "Moving" for e in decision.events)


# ---------------------------------------------------------------------------------------------
# Queue depth counts as unmet demand


def test_a_queue_above_its_threshold_scales_up_before_the_token_rate_does():
    dsd = with_load(queueDepthThreshold=10)
    history = ReconcileHistory(target={"a100": 1}, written={"a100": 1})
    states = pools(a100=a100(1))
    calm = run(dsd, states, MONDAY_10, history, reading(500.0, MONDAY_10, 10.0))
    assert calm.target["a100"] == 1
    assert calm.status.demand is not None and calm.status.demand.queue_tokens_per_second == 0
    # 110 waiting: 100 beyond the threshold, each needing the SLO's 20 tok/s = 2,000 tok/s more.
    spike = run(dsd, states, MONDAY_10, history, reading(500.0, MONDAY_10, 110.0))
    assert spike.status.demand is not None
    assert spike.status.demand.tokens_per_second == 500.0
    assert spike.status.demand.queue_tokens_per_second == 2000.0
    # (500 + 2,000) × 1.25 headroom = 3,125 tok/s: three A100 replicas of 1,255.
    assert spike.target["a100"] == 3 and writes(spike) == {"a100": 3}
    assert "2,500 tok/s demand" in spike.status.reason
    # The poller wakes the loop once a reading leaves what the plan in force covers.
    bound = calm.load_bound
    assert bound is not None
    assert bound.tokens_per_second == pytest.approx(1255.219 / 1.25, rel=1e-6)
    assert not bound.exceeded_by(500.0, 30.0) and bound.exceeded_by(500.0, 40.0)
    assert bound.exceeded_by(1010.0, None)


def test_the_window_s_slo_prices_a_waiting_request():
    dsd = with_load()
    history = ReconcileHistory(target={"cpu-xeon": 1}, written={"cpu-xeon": 1})
    night = run(dsd, pools(**{"cpu-xeon": cpu(1)}), NIGHT, history, reading(5.0, NIGHT, 8.0))
    assert night.status.demand is not None
    assert night.status.demand.queue_tokens_per_second == 40.0  # the night window's 5 tok/s
    # (5 + 40) × 1.25 = 56.25 tok/s: two CPU replicas of 40.88.
    assert night.target["cpu-xeon"] == 2


# ---------------------------------------------------------------------------------------------
# The capacity correction


def cpu_load(at: datetime, replicas: int, per_replica: float, running: float = 8.0) -> PoolLoad:
    return PoolLoad("cpu-xeon", per_replica * replicas, running * replicas, at)


def night_ticks(
    per_replica: float,
    ticks: int,
    replicas: int = 2,
    demand: float | None = None,
    **correction: Any,
) -> list[Decision]:
    """`ticks` reconciles 15 s apart at night, two steady CPU replicas, each new sample saying
    that a replica delivers `per_replica` tok/s with eight requests running on it."""
    dsd = with_load(capacityCorrection=correction) if correction else with_load()
    history = ReconcileHistory(
        target={"cpu-xeon": replicas},
        written={"cpu-xeon": replicas},
        steady={"cpu-xeon": Steady(replicas, NIGHT - timedelta(minutes=10))},
    )
    decisions = []
    for tick in range(ticks):
        now = NIGHT + timedelta(seconds=15 * tick)
        tokens = per_replica * replicas if demand is None else demand
        sample = reading(tokens, now, 0.0, cpu_load(now, replicas, per_replica))
        decision = run(dsd, pools(**{"cpu-xeon": cpu(replicas)}), now, history, sample)
        history = decision.history
        dsd = after(decision, dsd)
        decisions.append(decision)
    return decisions


def throughput(decision: Decision) -> Any:
    (entry,) = [e for e in decision.status.capacity_correction if e.pool == "cpu-xeon"]
    return entry


def test_half_the_calibrated_throughput_is_learnt_in_min_samples_and_adds_replicas():
    half = CPU_PER_REPLICA / 2
    ticks = night_ticks(half, 8)
    learning = throughput(ticks[6])
    assert learning.state == "Learning" and learning.samples == 7
    assert learning.planned_tokens_per_second == pytest.approx(CPU_PER_REPLICA, rel=1e-3)
    # Two replicas serve 40.9 tok/s, below their 81.8 at the calibrated figure: no change yet.
    assert ticks[6].target["cpu-xeon"] == 2
    applied = throughput(ticks[7])
    assert applied.state == "Applied" and applied.samples == 8
    assert applied.factor == pytest.approx(0.5, rel=1e-3)
    assert applied.calibrated_tokens_per_second == pytest.approx(CPU_PER_REPLICA, rel=1e-3)
    assert applied.measured_tokens_per_second == pytest.approx(half, rel=1e-3)
    assert applied.planned_tokens_per_second == pytest.approx(half, rel=1e-3)
    assert "0.5× the calibrated" in applied.message
    # 40.9 tok/s × 1.25 = 51.1 needs three replicas of 20.4: one more.
    assert ticks[7].target["cpu-xeon"] == 3 and writes(ticks[7]) == {"cpu-xeon": 3}
    assert ticks[7].status.capacity_tokens_per_second == pytest.approx(3 * half, rel=1e-3)


def test_a_factor_outside_its_bounds_is_refused_with_the_reason():
    tenth = night_ticks(CPU_PER_REPLICA / 10, 8, demand=40.0)[-1]
    refused = throughput(tenth)
    assert refused.state == "Refused" and refused.factor == pytest.approx(0.1, rel=1e-3)
    assert refused.planned_tokens_per_second == pytest.approx(CPU_PER_REPLICA, rel=1e-3)
    assert "outside [0.25, 4]" in refused.message
    assert tenth.target["cpu-xeon"] == 2  # 40 tok/s × 1.25 on two replicas of 40.9 tok/s

    loose = night_ticks(CPU_PER_REPLICA / 10, 8, minFactor=0.05)[-1]
    assert throughput(loose).state == "Applied"


def test_a_disabled_correction_learns_nothing():
    last = night_ticks(CPU_PER_REPLICA / 2, 10, enabled=False)[-1]
    entry = throughput(last)
    assert entry.state == "Disabled" and entry.samples == 0 and last.target["cpu-xeon"] == 2


def test_the_factor_follows_a_changed_figure_within_its_horizon():
    decisions = night_ticks(CPU_PER_REPLICA * 2, 3 * HORIZON, demand=10.0)
    assert throughput(decisions[-1]).factor == pytest.approx(2.0, rel=1e-3)


def sampled(state: PoolState, load: PoolLoad, history: ReconcileHistory, now: datetime) -> int:
    decision = run(
        with_load(), pools(**{"cpu-xeon": state}), now, history, reading(20, now, 0, load)
    )
    learnt = decision.history.throughput.get("cpu-xeon")
    return learnt.samples if learnt else 0


def test_samples_are_taken_only_from_a_steady_busy_pool_and_each_once():
    steady = {"cpu-xeon": Steady(2, NIGHT - timedelta(minutes=10))}
    history = ReconcileHistory(target={"cpu-xeon": 2}, written={"cpu-xeon": 2}, steady=steady)
    busy = cpu_load(NIGHT, 2, 10.0)
    assert sampled(cpu(2), busy, history, NIGHT) == 1
    # one replica still starting: the Ready count does not describe the rate
    assert sampled(cpu(3, ready=2), busy, history, NIGHT) == 0
    # fewer than one running request per replica: an idle replica says nothing
    assert sampled(cpu(2), cpu_load(NIGHT, 2, 10.0, running=0.5), history, NIGHT) == 0
    # no running-requests series
    blind = PoolLoad("cpu-xeon", 20.0, None, NIGHT)
    assert sampled(cpu(2), blind, history, NIGHT) == 0
    # the Ready count changed 30 s ago: the 60 s rate window still covers the old count
    recent = {"cpu-xeon": Steady(2, NIGHT - timedelta(seconds=30))}
    fresh_history = ReconcileHistory(target={"cpu-xeon": 2}, steady=recent)
    assert sampled(cpu(2), busy, fresh_history, NIGHT) == 0
    # the same Prometheus sample seen twice counts once
    once = ReconcileHistory(
        target={"cpu-xeon": 2},
        steady=steady,
        throughput={"cpu-xeon": Learnt(1.0, 3, NIGHT)},
    )
    assert sampled(cpu(2), busy, once, NIGHT) == 3


def test_the_correction_memory_survives_a_restart():
    decisions = night_ticks(CPU_PER_REPLICA / 2, 4)
    kept = DeepSeekDeploymentStatus(history=history_to_status(decisions[-1].history))
    wire = DeepSeekDeploymentStatus.model_validate(kept.to_json_dict())
    restored = history_from_status(wire)
    assert restored is not None
    assert restored.throughput == decisions[-1].history.throughput
    assert restored.steady == decisions[-1].history.steady


def test_without_a_load_source_status_shows_no_correction():
    assert run().status.capacity_correction == []


# ---------------------------------------------------------------------------------------------
# Moves and failed moves, for the operator's metrics


def test_a_move_whose_new_pool_stays_unschedulable_is_reported_as_failed():
    dsd = example(
        variants=[
            {"pool": "a100", "engine": "vllm", "precision": "bf16"},
            {"pool": "rtx4090", "engine": "vllm", "precision": "bf16"},
        ],
        schedule={"timeZone": "UTC", "defaultPolicy": "gpuOnly"},
    )
    moved = Move(MONDAY_10 - timedelta(minutes=2), (("rtx4090", 1),), (("a100", 1),))
    history = ReconcileHistory(
        planner=History(moves=(moved,)), target={"a100": 1}, written={"a100": 1, "rtx4090": 1}
    )
    full = PoolState("a100", 1, 0, 1, 0, 1, deployment_exists=True, node_count=2, rooms=())
    old = PoolState(
        "rtx4090", 1, 1, 1, 1, deployment_exists=True, node_count=2, rooms=A100_ROOMS[:0]
    )
    decision = run(dsd, {"a100": full, "rtx4090": old}, MONDAY_10, history)
    assert decision.failed_moves == (PoolMove("rtx4090", "a100", "Unschedulable"),)
    (event,) = [e for e in decision.events if e.reason == "MoveFailed"]
    assert event.type == "Warning" and "1 pod(s) on a100 Unschedulable" in event.message
    assert decision.target == {"a100": 0, "rtx4090": 1}


def test_a_move_superseded_by_a_new_plan_is_not_a_failure():
    dsd = with_load()
    moved = Move(NIGHT_STARTS, (("a100", 1),), (("cpu-xeon", 1),))
    history = ReconcileHistory(
        planner=History(moves=(moved,)), target={"cpu-xeon": 1}, written={"cpu-xeon": 1}
    )
    starting = cpu(1, ready=0)
    decision = run(dsd, pools(**{"cpu-xeon": starting}), NIGHT, history, reading(45.0, NIGHT))
    assert decision.target["cpu-xeon"] == 2  # 45 × 1.25 = 56.25 tok/s: two replicas of 40.88
    assert decision.failed_moves == ()


def day_and_night_alike(**load: Any) -> Any:
    """Cost decides alone: no windows, and an SLO the CPU pool meets."""
    return example(
        load={**LOAD, **load},
        schedule={"timeZone": "UTC", "defaultPolicy": "costOptimal"},
        slo={"minTokensPerSecondPerRequest": 5, "headroomFraction": 0.25},
        replicas={"min": 1, "max": 2},
    )


def test_moves_say_why_the_pool_was_left():
    dsd = day_and_night_alike()
    # Demand beyond two CPU replicas (replicas.max): leaving the CPU pool is for demand.
    history = ReconcileHistory(target={"cpu-xeon": 2}, written={"cpu-xeon": 2})
    rise = run(dsd, pools(**{"cpu-xeon": cpu(2)}), MONDAY_10, history, reading(100, MONDAY_10))
    assert rise.moves == (PoolMove("cpu-xeon", "a100", "Demand"),)
    # Demand back to a trickle: the A100 leaves for cost, onto the CPU replica that stays.
    both = ReconcileHistory(target={"a100": 1, "cpu-xeon": 1}, written={"a100": 1, "cpu-xeon": 1})
    states = pools(a100=a100(1), **{"cpu-xeon": cpu(1)})
    fall = run(dsd, states, MONDAY_10, both, reading(5, MONDAY_10))
    assert fall.target == {"a100": 0, "cpu-xeon": 1}
    assert fall.moves == (PoolMove("a100", "cpu-xeon", "Cost"),)
    # Pure scaling within the same pools is no move.
    grow = run(
        dsd,
        pools(a100=a100(1)),
        MONDAY_10,
        ReconcileHistory(target={"a100": 1}),
        reading(1500, MONDAY_10),
    )
    assert grow.target["a100"] == 2 and grow.moves == ()
