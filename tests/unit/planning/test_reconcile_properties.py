"""`decide()` driven tick by tick over random fleets where pods turn Ready after random delays.

Every tick the simulated cluster is observed, `decide` runs, its status (with the history in
it) is written back, and its replica counts are applied; the spec's policy and the demand change
at random ticks, which forces moves between GPU and CPU pools. Checked at every tick:

* Ready replicas never drop below minAvailable once they reached it;
* GPUs of replicas still starting never exceed maxSurgeGPUs (one replica may start alone);
* the same snapshot gives the same decision;
* once nothing changes any more, the fleet reaches the plan within a bounded number of ticks;
* a crash at any tick (the decision lost entirely, or its status written but its replica counts
  not) changes none of the above.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from deepseek_operator.api.deployment import DeepSeekDeployment
from deepseek_operator.api.pool import PoolProfile
from deepseek_operator.core.planning.reconcile import (
    DemandReading,
    Snapshot,
    decide,
    history_from_status,
)
from tests.paths import EXAMPLES
from tests.unit.planning.fleet import Fleet

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TICK = timedelta(seconds=15)
PROFILES = {
    doc["metadata"]["name"]: PoolProfile.from_object(doc)
    for doc in yaml.safe_load_all((EXAMPLES / "pools.yaml").read_text())
}
VARIANTS = {
    "a100": {"pool": "a100", "engine": "vllm", "precision": "bf16"},
    "rtx4090": {"pool": "rtx4090", "engine": "vllm", "precision": "bf16"},
    "cpu-xeon": {"pool": "cpu-xeon", "engine": "llamacpp", "precision": "int8"},
}
NODES = {"a100": 2, "rtx4090": 2, "cpu-xeon": 3}
POLICIES = ("costOptimal", "gpuOnly", "cpuOnly", "preferGPU", "preferCPU")
CONVERGE_TICKS = 60


def deployment(
    pools: list[str], low: int, high: int, min_available: int, surge: int, policy: str
) -> DeepSeekDeployment:
    spec: dict[str, Any] = {
        "model": {
            "name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
            "catalogKey": "r1-distill-qwen-7b",
            "weights": {"path": "/models/r1-7b"},
        },
        "variants": [VARIANTS[p] for p in pools],
        "replicas": {"min": low, "max": high},
        "slo": {"minTokensPerSecondPerRequest": 1, "maxTimeToFirstTokenSeconds": 60},
        "schedule": {"defaultPolicy": policy},
        "migration": {
            "minAvailable": min_available,
            "maxSurgeGPUs": surge,
            "cooldownSeconds": 0,
            "minDwellSeconds": 0,
            "minSavingsPercent": 0,
        },
    }
    meta = {"name": "r1", "namespace": "default", "uid": "u", "generation": 1}
    return DeepSeekDeployment.from_object({"metadata": meta, "spec": spec})


def with_policy(dsd: DeepSeekDeployment, policy: str) -> DeepSeekDeployment:
    schedule = dsd.spec.schedule.model_copy(update={"default_policy": policy})
    generation = int(dsd.metadata["generation"]) + 1
    return dsd.model_copy(
        update={
            "spec": dsd.spec.model_copy(update={"schedule": schedule}),
            "metadata": {**dsd.metadata, "generation": generation},
        }
    )


changes = st.lists(
    st.tuples(
        st.integers(0, 40), st.sampled_from(POLICIES), st.floats(min_value=0, max_value=4000)
    ),
    max_size=4,
)


@settings()
@given(
    pools=st.sets(st.sampled_from(sorted(VARIANTS)), min_size=2).map(sorted),
    low=st.integers(1, 3),
    extra=st.integers(0, 3),
    min_available=st.integers(0, 3),
    surge=st.integers(0, 4),
    delays=st.lists(st.integers(1, 6), min_size=1, max_size=6),
    plan=changes,
    crash=st.tuples(st.integers(0, 50), st.sampled_from(["lost", "status-only"])),
)
def test_decide_never_dips_never_over_surges_and_converges(
    pools: list[str],
    low: int,
    extra: int,
    min_available: int,
    surge: int,
    delays: list[int],
    plan: list[tuple[int, str, float]],
    crash: tuple[int, str],
) -> None:
    min_available = min(min_available, low)
    dsd = deployment(pools, low, low + extra, min_available, surge, "costOptimal")
    profiles = {p: PROFILES[p] for p in pools}
    fleet = Fleet(dsd, profiles, {p: NODES[p] for p in pools}, delays)
    demand = 500.0
    last_change = max((tick for tick, _, _ in plan), default=0)
    reached_min = False
    for tick in range(last_change + CONVERGE_TICKS):
        for when, policy, level in plan:
            if when == tick:
                dsd = with_policy(dsd, policy)
                demand = level
        now = START + tick * TICK
        snapshot = Snapshot(dsd, profiles, fleet.states(tick), DemandReading(demand, now - TICK))
        history = history_from_status(dsd.status)
        decision = decide(snapshot, now, history)
        again = decide(snapshot, now, history)
        assert (again.writes, again.deletes, again.target, again.status) == (
            decision.writes,
            decision.deletes,
            decision.target,
            decision.status,
        )
        before = fleet.ready_total(tick)
        if tick == crash[0] and crash[1] == "lost":
            continue
        dsd = dsd.model_copy(update={"status": decision.status})
        if tick == crash[0]:
            continue  # the status was written, the replica counts were not
        assert decision.writes is not None
        fleet.write({w.pool: w.replicas for w in decision.writes}, tick)
        fleet.delete(decision.deletes)
        after = fleet.ready_total(tick)
        reached_min = reached_min or before >= min_available
        if reached_min:
            assert after >= min_available, (tick, before, after)
        assert fleet.gpus_starting(tick) <= max(surge, 1)
        target = decision.target
        done = all(
            p.desired == target.get(p.name, 0) and p.ready(tick) == target.get(p.name, 0)
            for p in fleet
        )
        if tick > last_change + 1 and done and decision.plan is not None:
            progressing = {c.type: c for c in decision.status.conditions}["Progressing"]
            if progressing.reason == "PlacementReached":
                return
    raise AssertionError(
        f"no convergence: target {decision.target}, "
        f"fleet {[(p.name, p.desired, p.ready(tick)) for p in fleet]}"
    )
