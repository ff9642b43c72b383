"""`decide()` on hand-built snapshots: what it writes, reports and remembers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from deepseek_operator.api.deployment import DeepSeekDeployment
from deepseek_operator.api.pool import PoolProfile
from deepseek_operator.core.planning.reconcile import (
    Decision,
    DemandReading,
    DemandUnavailable,
    NodeRoom,
    PoolState,
    ReconcileHistory,
    Snapshot,
    decide,
    history_from_status,
    history_to_status,
)
from deepseek_operator.core.planning.stability import DemandSample, History, Move
from tests.paths import EXAMPLES

PROFILES = {
    doc["metadata"]["name"]: PoolProfile.from_object(doc)
    for doc in yaml.safe_load_all((EXAMPLES / "pools.yaml").read_text())
}
A100_ROOMS = (NodeRoom(8, 128_000, 1024 * 2**30),) * 2
XEON_ROOMS = (NodeRoom(0, 80_000, 512 * 2**30),) * 3
GPU_4090_ROOMS = (NodeRoom(2, 32_000, 128 * 2**30),) * 2
# Monday 2026-11-30 in Asia/Shanghai (UTC+8): business hours 08:00-20:00, night from 20:00.
MONDAY_10 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
NIGHT_STARTS = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def example(**changes: Any) -> DeepSeekDeployment:
    body = yaml.safe_load((EXAMPLES / "r1-7b-gpu-by-day-cpu-at-night.yaml").read_text())
    body["metadata"].update(uid="uid-1", generation=3)
    body["spec"].pop("load")
    body["spec"]["migration"].update(cooldownSeconds=0, minDwellSeconds=0)
    for key, value in changes.items():
        body["spec"][key] = value
    return DeepSeekDeployment.from_object(body)


def pools(**states: PoolState) -> dict[str, PoolState]:
    base = {
        "a100": PoolState("a100", node_count=2, rooms=A100_ROOMS),
        "cpu-xeon": PoolState("cpu-xeon", node_count=3, rooms=XEON_ROOMS),
    }
    return {**base, **states}


def run(
    dsd: DeepSeekDeployment | None = None,
    states: dict[str, PoolState] | None = None,
    now: datetime = MONDAY_10,
    history: ReconcileHistory | None = None,
    demand: DemandReading | DemandUnavailable | None = None,
    profiles: dict[str, PoolProfile] | None = None,
) -> Decision:
    snapshot = Snapshot(dsd or example(), profiles or PROFILES, states or pools(), demand=demand)
    return decide(snapshot, now, history)


def condition(decision: Decision, type_: str) -> tuple[str, str]:
    found = {c.type: c for c in decision.status.conditions}[type_]
    return found.status, found.reason


def writes(decision: Decision) -> dict[str, int]:
    assert decision.writes is not None
    return {w.pool: w.replicas for w in decision.writes}


def test_first_visit_places_the_window_s_replicas_and_reports_every_condition():
    decision = run()
    assert writes(decision) == {"a100": 1}
    status = decision.status
    assert status.observed_generation == 3
    assert {c.type for c in status.conditions} == {
        "Ready",
        "Progressing",
        "Degraded",
        "MetricsAvailable",
        "CapacityAvailable",
    }
    assert condition(decision, "Ready") == ("False", "NoReadyReplicas")
    assert condition(decision, "Progressing") == ("True", "Scaling")
    assert condition(decision, "MetricsAvailable") == ("False", "NoLoadSource")
    assert status.pools == "a100=1" and status.desired_replicas == 1
    assert status.active_window == "business-hours" and status.policy == "preferGPU"
    assert status.cost_per_hour == pytest.approx(7.283, rel=1e-3)
    assert status.next_transition is not None and status.next_transition.window == "night"
    (event,) = decision.events
    assert event.reason == "ScalingUp" and "cost nothing -> ¥7.3/h" in event.message


def test_a_ready_placement_is_left_alone():
    history = ReconcileHistory(target={"a100": 1}, written={"a100": 1})
    states = pools(
        a100=PoolState("a100", 1, 1, 1, 1, node_count=2, rooms=A100_ROOMS, deployment_exists=True)
    )
    decision = run(states=states, history=history)
    assert writes(decision) == {"a100": 1}
    assert condition(decision, "Ready") == ("True", "Serving")
    assert condition(decision, "Progressing") == ("False", "PlacementReached")
    assert decision.events == ()


def test_the_window_boundary_moves_make_before_break():
    history = ReconcileHistory(target={"a100": 1}, written={"a100": 1})
    running = PoolState("a100", 1, 1, 1, 1, node_count=2, rooms=A100_ROOMS, deployment_exists=True)
    decision = run(states=pools(a100=running), now=NIGHT_STARTS, history=history)
    assert decision.target == {"a100": 0, "cpu-xeon": 1}
    assert writes(decision) == {"a100": 1, "cpu-xeon": 1}  # the a100 replica waits
    (event,) = decision.events
    assert event.reason == "Moving" and event.message.startswith("a100=1 -> cpu-xeon=1")
    assert event.cost_per_hour_before > event.cost_per_hour_after
    # once the CPU replica is Ready, the A100 one stops
    cpu = PoolState("cpu-xeon", 1, 1, 1, 1, node_count=3, rooms=XEON_ROOMS, deployment_exists=True)
    later = run(
        states=pools(a100=running, **{"cpu-xeon": cpu}),
        now=NIGHT_STARTS + timedelta(minutes=1),
        history=decision.history,
    )
    assert writes(later) == {"a100": 0, "cpu-xeon": 1}
    assert later.status.last_move == "a100=1 -> cpu-xeon=1"


def test_replicas_start_startup_seconds_before_the_boundary():
    history = ReconcileHistory(target={"a100": 1}, written={"a100": 1})
    running = PoolState("a100", 1, 1, 1, 1, node_count=2, rooms=A100_ROOMS, deployment_exists=True)
    early = run(
        states=pools(a100=running), now=NIGHT_STARTS - timedelta(minutes=5), history=history
    )
    assert writes(early) == {"a100": 1}
    # no pool starts in more than 120 s: nothing can be due before two minutes ahead
    assert early.wake_at == NIGHT_STARTS - timedelta(seconds=120)
    # cpu-xeon starts in 60 s by default: pre-warming begins a minute before the window
    close = run(
        states=pools(a100=running), now=NIGHT_STARTS - timedelta(seconds=90), history=history
    )
    assert writes(close) == {"a100": 1}
    assert close.wake_at == NIGHT_STARTS - timedelta(seconds=60)
    warm = run(
        states=pools(a100=running), now=NIGHT_STARTS - timedelta(seconds=50), history=history
    )
    assert writes(warm) == {"a100": 1, "cpu-xeon": 1}
    assert warm.target == {"a100": 1, "cpu-xeon": 1}
    assert warm.history.target == {"a100": 1, "cpu-xeon": 0}  # the plan in force is unchanged
    assert condition(warm, "Progressing") == ("True", "Prewarming")
    assert any(e.reason == "Prewarming" and "20:00+08:00" in e.message for e in warm.events)
    # the Event says it once, not at every tick of the pre-warm
    dsd = example().model_copy(update={"status": warm.status})
    again = run(dsd, pools(a100=running), NIGHT_STARTS - timedelta(seconds=35), warm.history)
    assert writes(again) == {"a100": 1, "cpu-xeon": 1}
    assert not any(e.reason == "Prewarming" for e in again.events)


def test_a_pool_s_startup_seconds_sets_the_pre_warm_lead():
    profiles = dict(PROFILES)
    xeon = PROFILES["cpu-xeon"]
    profiles["cpu-xeon"] = xeon.model_copy(
        update={"spec": xeon.spec.model_copy(update={"startup_seconds": 300.0})}
    )
    history = ReconcileHistory(target={"a100": 1}, written={"a100": 1})
    running = PoolState("a100", 1, 1, 1, 1, node_count=2, rooms=A100_ROOMS, deployment_exists=True)
    decision = run(
        states=pools(a100=running),
        now=NIGHT_STARTS - timedelta(seconds=290),
        history=history,
        profiles=profiles,
    )
    assert writes(decision)["cpu-xeon"] == 1


def test_no_capacity_on_the_preferred_pool_falls_back_and_says_why():
    dsd = example(
        variants=[
            {"pool": "a100", "engine": "vllm", "precision": "bf16"},
            {"pool": "rtx4090", "engine": "vllm", "precision": "bf16"},
        ],
        schedule={"timeZone": "UTC", "defaultPolicy": "gpuOnly"},
    )
    full = (NodeRoom(0, 128_000, 1024 * 2**30),) * 2
    states = {
        "a100": PoolState("a100", node_count=2, rooms=full),
        "rtx4090": PoolState("rtx4090", node_count=2, rooms=GPU_4090_ROOMS),
    }
    decision = run(dsd, states)
    assert decision.target == {"a100": 0, "rtx4090": 1}
    status, reason = condition(decision, "CapacityAvailable")
    assert (status, reason) == ("False", "PoolFull")
    assert (
        "a100: no free capacity"
        in {c.type: c for c in decision.status.conditions}["CapacityAvailable"].message
    )
    assert any(e.reason == "CapacityShort" for e in decision.events)


def test_unschedulable_pods_are_missing_capacity():
    dsd = example(schedule={"timeZone": "UTC", "defaultPolicy": "gpuOnly"})
    pending = PoolState(
        "a100", 1, 0, 1, 0, 1, deployment_exists=True, node_count=2, rooms=(NodeRoom(),) * 2
    )
    decision = run(dsd, pools(a100=pending), history=ReconcileHistory(target={"a100": 1}))
    assert condition(decision, "CapacityAvailable") == ("False", "Unschedulable")
    # no pool can take it: the placement is held rather than stopped
    assert {p: n for p, n in decision.target.items() if n} == {"a100": 1}
    assert condition(decision, "Degraded")[0] == "True"


def test_a_replica_count_changed_outside_is_reverted_with_an_event():
    history = ReconcileHistory(target={"a100": 1}, written={"a100": 1})
    scaled = PoolState("a100", 5, 1, 5, 5, node_count=2, rooms=A100_ROOMS, deployment_exists=True)
    decision = run(states=pools(a100=scaled), history=history)
    assert writes(decision) == {"a100": 1}
    (event,) = [e for e in decision.events if e.reason == "ExternalChangeReverted"]
    assert "set to 5 replicas outside the operator" in event.message and event.type == "Warning"


def test_an_empty_pool_deployment_is_deleted():
    history = ReconcileHistory(target={"cpu-xeon": 1}, written={"a100": 0, "cpu-xeon": 1})
    gone = PoolState("a100", 0, 0, 0, 0, node_count=2, rooms=A100_ROOMS, deployment_exists=True)
    cpu = PoolState("cpu-xeon", 1, 1, 1, 1, node_count=3, rooms=XEON_ROOMS, deployment_exists=True)
    decision = run(states=pools(a100=gone, **{"cpu-xeon": cpu}), now=NIGHT_STARTS, history=history)
    assert decision.deletes == ("a100",)
    assert writes(decision) == {"cpu-xeon": 1}


def test_recommend_mode_plans_and_touches_nothing():
    decision = run(example(mode="recommend"))
    assert decision.writes is None and decision.deletes == ()
    assert decision.status.pools == "a100=1"
    assert condition(decision, "Progressing") == ("False", "RecommendOnly")


def test_paused_freezes_the_placement_but_reports():
    history = ReconcileHistory(target={"a100": 1}, written={"a100": 1})
    running = PoolState("a100", 1, 1, 1, 1, node_count=2, rooms=A100_ROOMS, deployment_exists=True)
    decision = run(example(paused=True), pools(a100=running), NIGHT_STARTS, history)
    assert decision.writes is None
    assert decision.history.target == {"a100": 1}
    assert condition(decision, "Progressing") == ("False", "Paused")
    assert condition(decision, "Ready") == ("True", "Serving")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"schedule": {"timeZone": "Mars/Olympus_Mons"}}, "UnknownTimeZone"),
        ({"variants": [{"pool": "h100", "engine": "vllm"}]}, "PoolNotFound"),
        ({"variants": [{"pool": "cpu-xeon", "engine": "vllm"}]}, "InvalidSpec"),
        ({"costModel": {"currency": "EUR"}}, "UnknownCurrencyRate"),
    ],
)
def test_a_broken_reference_stops_nothing_and_says_why(change, reason):
    decision = run(example(**change))
    assert decision.writes is None and decision.plan is None
    assert condition(decision, "Ready") == ("False", reason)
    assert any(e.reason == "SpecInvalid" and reason in e.message for e in decision.events)


def test_a_pool_with_an_accelerator_outside_the_catalog_stops_nothing_and_says_why():
    xeon = PROFILES["cpu-xeon"]
    hardware = xeon.spec.hardware.model_copy(update={"accelerator_model": "xeon-9999"})
    profiles = {
        **PROFILES,
        "cpu-xeon": xeon.model_copy(
            update={"spec": xeon.spec.model_copy(update={"hardware": hardware})}
        ),
    }
    decision = run(example(), profiles=profiles)
    assert decision.writes is None and decision.plan is None
    assert condition(decision, "Ready") == ("False", "UnknownAccelerator")
    ready = next(c for c in decision.status.conditions if c.type == "Ready")
    assert "spec.variants[1].pool" in ready.message and "'xeon-9999'" in ready.message


def test_a_stated_exchange_rate_converts_a_eur_pool():
    profiles = dict(PROFILES)
    xeon = PROFILES["cpu-xeon"]
    cost = xeon.spec.cost.model_copy(update={"currency": "EUR"})
    profiles["cpu-xeon"] = xeon.model_copy(
        update={"spec": xeon.spec.model_copy(update={"cost": cost})}
    )
    rates = {"exchangeRates": [{"currency": "EUR", "unitsPerUSD": 0.5}], "currency": "CNY"}
    priced = run(example(costModel=rates), now=NIGHT_STARTS, profiles=profiles)
    plain = run(example(), now=NIGHT_STARTS)
    # EUR 1 = USD 2 = CNY 14: the same numbers in EUR cost 14 times as much in CNY.
    assert priced.status.cost_per_hour == pytest.approx(14 * plain.status.cost_per_hour)


def test_unavailable_metrics_hold_the_placement_and_say_why():
    dsd = example(
        load={
            "prometheusAddress": "http://prometheus:9090",
            "tokensPerSecondQuery": "sum(rate(x[1m]))",
        }
    )
    history = ReconcileHistory(target={"a100": 2}, written={"a100": 2})
    running = PoolState("a100", 2, 2, 2, 2, node_count=2, rooms=A100_ROOMS, deployment_exists=True)
    gone = DemandUnavailable("PrometheusUnreachable", "connection refused")
    decision = run(dsd, pools(a100=running), history=history, demand=gone)
    assert decision.target == {"a100": 2, "cpu-xeon": 0}
    assert condition(decision, "MetricsAvailable") == ("False", "PrometheusUnreachable")
    fresh = DemandReading(100.0, MONDAY_10 - timedelta(seconds=15))
    later = run(dsd, pools(a100=running), history=history, demand=fresh)
    assert condition(later, "MetricsAvailable") == ("True", "MetricsFresh")
    assert later.status.demand is not None and later.status.demand.tokens_per_second == 100.0


def test_the_same_snapshot_gives_the_same_decision():
    history = ReconcileHistory(target={"a100": 1}, written={"a100": 1})
    running = PoolState("a100", 1, 1, 1, 1, node_count=2, rooms=A100_ROOMS, deployment_exists=True)
    first = run(states=pools(a100=running), now=NIGHT_STARTS, history=history)
    second = run(states=pools(a100=running), now=NIGHT_STARTS, history=history)
    assert first == second


instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)
counts = st.dictionaries(st.sampled_from(["a100", "cpu-xeon", "rtx4090"]), st.integers(0, 9))


@given(
    samples=st.lists(
        st.tuples(instants, st.floats(0, 1e6), st.none() | st.floats(0, 1e6)), max_size=20
    ),
    effective=st.none() | st.floats(0, 1e6),
    moves=st.lists(st.tuples(instants, counts, counts), max_size=8),
    entered=st.dictionaries(st.sampled_from(["a100", "cpu-xeon"]), instants),
    target=counts,
    written=counts,
)
def test_history_survives_status_unchanged(samples, effective, moves, entered, target, written):
    def pairs(c: dict[str, int]) -> tuple[tuple[str, int], ...]:
        return tuple(sorted((p, n) for p, n in c.items() if n > 0))

    history = ReconcileHistory(
        planner=History(
            demand_samples=tuple(DemandSample(at, high, low) for at, high, low in samples),
            effective_demand=effective,
            moves=tuple(Move(at, pairs(b), pairs(a)) for at, b, a in moves),
            pool_since=tuple(sorted(entered.items())),
        ),
        target={p: n for p, n in target.items() if n > 0},
        written=written,
    )
    from deepseek_operator.api.status import DeepSeekDeploymentStatus

    status = DeepSeekDeploymentStatus(history=history_to_status(history))
    wire = DeepSeekDeploymentStatus.model_validate(status.to_json_dict())
    assert history_from_status(wire) == history


@given(values=st.lists(st.floats(0, 1e6), max_size=600))
def test_demand_history_fits_status_and_keeps_its_extremes(values):
    from deepseek_operator.core.planning.stability import compact_samples

    samples = tuple(
        DemandSample(MONDAY_10 + timedelta(seconds=15 * i), v) for i, v in enumerate(values)
    )
    kept = compact_samples(samples, 128)
    assert len(kept) <= 128
    if values:
        assert max(s.tokens_per_second for s in kept) == max(values)
        assert min(s.low for s in kept) == min(values)
        assert kept[-1].at == samples[-1].at
    if len(values) <= 128:
        assert kept == samples


def test_without_a_load_source_an_idle_tick_changes_nothing_in_status():
    history = ReconcileHistory(target={"a100": 1}, written={"a100": 1})
    running = PoolState("a100", 1, 1, 1, 1, node_count=2, rooms=A100_ROOMS, deployment_exists=True)
    first = run(states=pools(a100=running), history=history)
    dsd = example().model_copy(update={"status": first.status})
    later = run(dsd, pools(a100=running), MONDAY_10 + timedelta(seconds=15), first.history)
    assert later.status == first.status  # nothing to write: no API call on an idle tick
