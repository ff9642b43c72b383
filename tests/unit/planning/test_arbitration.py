"""The arbiter wired to the CRDs: claims built from DeepSeekDeployments as `decide()` sees them,
and `decide()` planning within its share and saying whom it competes with.

The e2e case on paper: x (4 replicas, A100 or RTX 4090 at 3/h) and y (8 replicas, A100 or
L40S at 2/h) want 12 A100 GPUs when 8 are free. Giving x its 4 and y the other 4 plus 4 L40S
costs 4 + 4 + 8 = 16/h; y taking all 8 (as it does when it reconciles first) leaves x on the
4090s: 8 + 12 = 20/h.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from deepseek_operator.api.deployment import DeepSeekDeployment
from deepseek_operator.api.pool import PoolProfile
from deepseek_operator.api.status import DeepSeekDeploymentStatus
from deepseek_operator.core.planning.arbitration import decide_fleet, key_of, recorded_demand
from deepseek_operator.core.planning.reconcile import (
    Decision,
    NodeRoom,
    PoolState,
    ReconcileHistory,
    Snapshot,
    decide,
)

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
GROUP = "serving.deepseek-operator.io"


def profile(name: str, hardware: dict[str, Any], price: float) -> PoolProfile:
    return PoolProfile.from_object(
        {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "PoolProfile",
            "metadata": {"name": name},
            "spec": {
                "nodeSelector": {"accelerator": name},
                "hardware": hardware,
                "cost": {"currency": "USD", "hourlyPrice": price},
            },
        }
    )


def gpu(model: str, per_node: int, memory: int) -> dict[str, Any]:
    return {
        "kind": "gpu",
        "acceleratorModel": model,
        "gpusPerNode": per_node,
        "gpuMemoryGiB": memory,
        "cpuCores": 128,
        "memoryGiB": 1024,
    }


PROFILES = {
    "a100": profile("a100", gpu("a100-80gb-sxm", 8, 80), 1.0),
    "rtx4090": profile("rtx4090", gpu("rtx-4090", 2, 24), 3.0),
    "l40s": profile("l40s", gpu("l40s", 4, 48), 2.0),
}


def dsd(name: str, pools: list[str], replicas: int, **spec: Any) -> DeepSeekDeployment:
    return DeepSeekDeployment.from_object(
        {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "DeepSeekDeployment",
            "metadata": {"name": name, "namespace": "ns", "generation": 1},
            "spec": {
                "model": {
                    "name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
                    "catalogKey": "r1-distill-qwen-7b",
                    "weights": {"path": "/models/DeepSeek-R1-Distill-Qwen-7B"},
                },
                "variants": [{"pool": p, "engine": "vllm", "precision": "bf16"} for p in pools],
                "replicas": {"min": replicas, "max": replicas},
                "schedule": {"timeZone": "UTC", "defaultPolicy": "gpuOnly"},
                "migration": {
                    "minAvailable": 1,
                    "maxSurgeGPUs": 8,
                    "cooldownSeconds": 0,
                    "minSavingsPercent": 10,
                    "minDwellSeconds": 0,
                },
                **spec,
            },
        }
    )


X = dsd("x", ["a100", "rtx4090"], 4)
Y = dsd("y", ["a100", "l40s"], 8)


def room(gpus: int) -> NodeRoom:
    return NodeRoom(gpus, 128_000, 1024 * 2**30)


def arbitrated(a100_free: int = 8) -> dict[str, PoolState]:
    """The arbiter's view: one A100 node free for DeepSeekDeployments (the other held by
    someone else's pod), two 2-GPU 4090 nodes, two 4-GPU L40S nodes."""
    return {
        "a100": PoolState("a100", node_count=2, rooms=(room(a100_free), room(0))),
        "rtx4090": PoolState("rtx4090", node_count=2, rooms=(room(2), room(2))),
        "l40s": PoolState("l40s", node_count=2, rooms=(room(4), room(4))),
    }


def conditions(decision: Decision) -> dict[str, tuple[str, str, str]]:
    return {c.type: (c.status, c.reason, c.message) for c in decision.status.conditions}


def test_the_cheaper_total_wins_and_both_sides_are_named() -> None:
    fleet = decide_fleet([Y, X], PROFILES, arbitrated(), NOW)
    shares = fleet.arbitration.allotments
    assert shares["ns/x"].replicas == {"a100": 4}
    assert shares["ns/y"].replicas == {"a100": 4, "l40s": 4}
    assert fleet.arbitration.cost == pytest.approx(16.0)
    assert shares["ns/y"].displaced_by == ("ns/x",) and shares["ns/x"].displacing == ("ns/y",)
    assert shares["ns/y"].caps["a100"] == 4

    # y runs all 8 A100 replicas (it came first): its share makes it give 4 up, make-before-break.
    running = PoolState(
        "a100", 8, 8, 8, 8, deployment_exists=True, node_count=2, rooms=(room(0), room(0))
    )
    states = {"a100": running, "l40s": arbitrated()["l40s"]}
    history = ReconcileHistory(target={"a100": 8}, written={"a100": 8})
    y = decide(Snapshot(Y, PROFILES, states, allotment=shares["ns/y"]), NOW, history)
    assert y.plan is not None and y.plan.replicas == {"a100": 4, "l40s": 4}
    assert y.writes is not None
    assert {w.pool: w.replicas for w in y.writes} == {"a100": 8, "l40s": 4}  # L40S starts first
    status, reason, message = conditions(y)["Contended"]
    assert (status, reason) == ("True", "Displaced") and "ns/x" in message and "a100" in message
    (moving,) = [e for e in y.events if e.reason == "Moving"]
    assert "the cluster-wide arbiter gives a100 capacity to ns/x" in moving.message
    contended = [e for e in y.events if e.reason == "Contended"]
    assert len(contended) == 1 and contended[0].type == "Warning" and "ns/x" in contended[0].message

    x = decide(Snapshot(X, PROFILES, arbitrated(0), allotment=shares["ns/x"]), NOW)
    status, reason, message = conditions(x)["Contended"]
    assert (status, reason) == ("True", "Displacing") and "ns/y" in message

    # The same conditions next tick: no second Event.
    again = decide(
        Snapshot(
            Y.model_copy(update={"status": y.status}),
            PROFILES,
            states,
            allotment=shares["ns/y"],
        ),
        NOW,
        y.history,
    )
    assert not [e for e in again.events if e.reason == "Contended"]


def test_freed_capacity_brings_the_displaced_deployment_back() -> None:
    freed = {**arbitrated(), "a100": PoolState("a100", node_count=2, rooms=(room(8), room(8)))}
    fleet = decide_fleet([Y, X], PROFILES, freed, NOW)
    share = fleet.arbitration.allotments["ns/y"]
    assert share.replicas == {"a100": 8} and not share.displaced_by
    states = {
        "a100": PoolState(
            "a100", 4, 4, 4, 4, deployment_exists=True, node_count=2, rooms=(room(0), room(8))
        ),
        "l40s": PoolState(
            "l40s", 4, 4, 4, 4, deployment_exists=True, node_count=2, rooms=(room(0), room(4))
        ),
    }
    history = ReconcileHistory(target={"a100": 4, "l40s": 4}, written={"a100": 4, "l40s": 4})
    y = decide(Snapshot(Y, PROFILES, states, allotment=share), NOW, history)
    assert y.plan is not None and y.plan.replicas == {"a100": 8, "l40s": 0}
    assert conditions(y)["Contended"][:2] == ("False", "Uncontended")


def test_priority_keeps_the_scarce_pool() -> None:
    first = Y.model_copy(update={"spec": Y.spec.model_copy(update={"priority": 5})})
    shares = decide_fleet([first, X], PROFILES, arbitrated(), NOW).arbitration.allotments
    assert shares["ns/y"].replicas == {"a100": 8}
    assert shares["ns/x"].replicas == {"rtx4090": 4} and shares["ns/x"].displaced_by == ("ns/y",)


def test_who_takes_part_and_with_what_demand() -> None:
    paused = X.model_copy(update={"spec": X.spec.model_copy(update={"paused": True})})
    fleet = decide_fleet([paused, Y], PROFILES, arbitrated(), NOW)
    assert set(fleet.arbitration.allotments) == {"ns/y"}
    assert key_of(Y) == "ns/y"
    assert recorded_demand(Y) == 0.0  # no load source: its replicas.min is the claim
    loaded = dsd("z", ["a100"], 1, load={"prometheusAddress": "http://127.0.0.1:9090"})
    status = DeepSeekDeploymentStatus.model_validate(
        {"history": {"effectiveDemandTokensPerSecond": 120.0}}
    )
    assert recorded_demand(loaded.model_copy(update={"status": status})) == 120.0


def test_leaving_the_split_clears_contended() -> None:
    shares = decide_fleet([Y, X], PROFILES, arbitrated(), NOW).arbitration.allotments
    y = decide(Snapshot(Y, PROFILES, arbitrated(), allotment=shares["ns/y"]), NOW)
    assert conditions(y)["Contended"][:2] == ("True", "Displaced")
    paused = Y.model_copy(
        update={"spec": Y.spec.model_copy(update={"paused": True}), "status": y.status}
    )
    later = decide(Snapshot(paused, PROFILES, arbitrated()), NOW, y.history)
    assert conditions(later)["Contended"][:2] == ("False", "Uncontended")
