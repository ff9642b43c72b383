"""From watched objects to what `decide()` sees: node room, pod counts, tolerations."""

from __future__ import annotations

from typing import Any

import yaml

from deepseek_operator.adapters import observe
from deepseek_operator.api.pool import PoolProfile
from deepseek_operator.core.planning.reconcile import NodeRoom
from tests.paths import EXAMPLES

PROFILES = {
    doc["metadata"]["name"]: PoolProfile.from_object(doc)
    for doc in yaml.safe_load_all((EXAMPLES / "pools.yaml").read_text())
}
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}


def node(name: str, labels: dict[str, str], gpus: int = 0, **extra: Any) -> dict[str, Any]:
    allocatable = {"cpu": "128", "memory": "1Ti"}
    if gpus:
        allocatable["nvidia.com/gpu"] = str(gpus)
    body: dict[str, Any] = {
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": [GPU_TAINT] if gpus else []},
        "status": {
            "allocatable": allocatable,
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    body["spec"].update(extra.get("spec", {}))
    if "status" in extra:
        body["status"].update(extra["status"])
    return body


def pod(
    node_name: str | None,
    requests: dict[str, str],
    *,
    labels: dict[str, str] | None = None,
    phase: str = "Running",
    ready: bool = True,
    deleting: bool = False,
    unschedulable: bool = False,
    limits: dict[str, str] | None = None,
) -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    if unschedulable:
        conditions.append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable"})
    metadata: dict[str, Any] = {"namespace": "ml", "labels": labels or {}}
    if deleting:
        metadata["deletionTimestamp"] = "2026-11-29T10:00:00Z"
    return {
        "metadata": metadata,
        "spec": {
            "nodeName": node_name,
            "containers": [{"resources": {"requests": requests, "limits": limits or {}}}],
        },
        "status": {"phase": phase, "conditions": conditions},
    }


OURS = {
    "app.kubernetes.io/instance": "r1",
    "serving.deepseek-operator.io/pool": "a100",
}


def test_requests_follow_the_scheduler_s_arithmetic():
    spec = {
        "containers": [
            {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
            {"resources": {"limits": {"nvidia.com/gpu": "2", "cpu": "1"}}},
        ],
        "initContainers": [{"resources": {"requests": {"cpu": "4", "memory": "512Mi"}}}],
        "overhead": {"memory": "100Mi"},
    }
    used = observe.pod_requests(spec)
    # containers: 1.5 cores, 1 Gi, 2 GPUs; the init container's 4 cores is the peak
    assert used == observe.Resources(2, 4000, 2**30 + 100 * 2**20)


def test_finished_and_unbound_pods_hold_nothing():
    assert observe.pod_usage(pod(None, {"cpu": "1"})) is None
    assert observe.pod_usage(pod("n", {"cpu": "1"}, phase="Succeeded")) is None
    assert observe.pod_usage(pod("n", {"cpu": "1"})) == observe.PodUsage(
        "n", observe.Resources(0, 1000, 0)
    )


def test_own_pods_count_ready_scheduled_and_unschedulable():
    assert observe.own_pod(pod("n", {}, labels=OURS)) == observe.OwnPod(
        "a100", True, True, False, False
    )
    waiting = observe.own_pod(
        pod(None, {}, labels=OURS, ready=False, phase="Pending", unschedulable=True)
    )
    assert waiting == observe.OwnPod("a100", False, False, True, False)
    leaving = observe.own_pod(pod("n", {}, labels=OURS, deleting=True))
    assert leaving is not None and leaving.terminating and not leaving.ready
    assert observe.own_pod(pod("n", {}, labels={})) is None
    assert observe.instance_key(pod("n", {}, labels=OURS)) == ("ml", "r1")


def test_pool_room_is_allocatable_minus_every_bound_pod():
    nodes = [
        observe.node_summary(node("a100-0", {"accelerator": "nvidia-a100"}, gpus=8)),
        observe.node_summary(node("a100-1", {"accelerator": "nvidia-a100"}, gpus=8)),
        observe.node_summary(node("cpu-0", {"accelerator": "none"})),
    ]
    usage = {
        "a100-0": [observe.PodUsage("a100-0", observe.Resources(6, 10_000, 2**30))],
    }
    pods = [observe.OwnPod("a100", True, True, False, False)]
    states = observe.pool_states(
        ["a100"], PROFILES, nodes, usage, pods, [observe.OwnDeployment("a100", 1)]
    )
    state = states["a100"]
    assert (
        state.node_count == 2 and state.desired == 1 and state.ready == 1 and state.scheduled == 1
    )
    assert state.rooms == (
        NodeRoom(2, 118_000, 2**40 - 2**30),
        NodeRoom(8, 128_000, 2**40),
    )


def test_nodes_the_pool_cannot_use_offer_no_room():
    cordoned = node("a100-0", {"accelerator": "nvidia-a100"}, gpus=8, spec={"unschedulable": True})
    not_ready = node(
        "a100-1",
        {"accelerator": "nvidia-a100"},
        gpus=8,
        status={"conditions": [{"type": "Ready", "status": "False"}]},
    )
    foreign_taint = node(
        "a100-2",
        {"accelerator": "nvidia-a100"},
        gpus=8,
        spec={"taints": [GPU_TAINT, {"key": "dedicated", "value": "x", "effect": "NoExecute"}]},
    )
    soft_taint = node(
        "a100-3",
        {"accelerator": "nvidia-a100"},
        gpus=8,
        spec={"taints": [GPU_TAINT, {"key": "maybe", "effect": "PreferNoSchedule"}]},
    )
    summaries = [observe.node_summary(n) for n in (cordoned, not_ready, foreign_taint, soft_taint)]
    states = observe.pool_states(["a100"], PROFILES, summaries, {}, [], [])
    assert states["a100"].node_count == 4
    assert states["a100"].rooms == (NodeRoom(8, 128_000, 2**40),)  # only the soft-tainted one


def test_a_cpu_pool_does_not_tolerate_the_gpu_taint():
    tainted = observe.node_summary(
        node("x", {"deepseek-operator.io/cpu-model": "intel-xeon-platinum-8380"}, gpus=8)
    )
    assert not observe.usable(PROFILES["cpu-xeon"], tainted)
    assert observe.usable(PROFILES["a100"], tainted)


def test_pools_it_still_runs_on_are_observed_even_when_the_spec_dropped_them():
    states = observe.pool_states(
        ["cpu-xeon"],
        PROFILES,
        [],
        {},
        [observe.OwnPod("rtx4090", True, True, False, False)],
        [observe.OwnDeployment("rtx4090", 1)],
    )
    assert set(states) == {"cpu-xeon", "rtx4090"}
    assert states["rtx4090"].deployment_exists and states["rtx4090"].ready == 1


def test_pool_profiles_that_do_not_parse_are_reported_not_dropped():
    good = next(yaml.safe_load_all((EXAMPLES / "pools.yaml").read_text()))
    bad = {
        "apiVersion": good["apiVersion"],
        "kind": "PoolProfile",
        "metadata": {"name": "bad"},
        "spec": {"hardware": {}},
    }
    valid, invalid = observe.parse_pool_profiles([good, bad])
    assert set(valid) == {"a100"}
    assert "spec" in invalid["bad"]


def test_a_status_the_models_refuse_does_not_block_the_spec():
    body = yaml.safe_load((EXAMPLES / "r1-7b-gpu-by-day-cpu-at-night.yaml").read_text())
    body["status"] = {"conditions": "not a list"}
    dsd = observe.parse_deployment(body)
    assert dsd.status is None and dsd.spec.model.catalog_key == "r1-distill-qwen-7b"


def test_the_arbiter_sees_arbitrated_deployments_pods_as_free():
    managed = {**OURS, "app.kubernetes.io/managed-by": "deepseek-operator"}
    ours = observe.pod_usage(pod("a100-0", {"nvidia.com/gpu": "2"}, labels=managed))
    theirs = observe.pod_usage(pod("a100-0", {"nvidia.com/gpu": "4"}, labels=OURS))
    assert ours is not None and ours.owner == ("ml", "r1")
    assert theirs is not None and theirs.owner is None  # not managed by the operator
    nodes = [
        observe.node_summary(node("a100-0", {"accelerator": "nvidia-a100"}, gpus=8)),
        observe.node_summary(node("a100-1", {"accelerator": "nvidia-a100"}, gpus=8)),
    ]
    usage = {"a100-0": [ours, theirs]}
    seen = observe.arbitrated_pools(PROFILES, nodes, usage, {("ml", "r1")})
    assert [r.gpus for r in seen["a100"].rooms or ()] == [4, 8]
    held = observe.arbitrated_pools(PROFILES, nodes, usage, set())  # r1 paused: its pods stay
    assert [r.gpus for r in held["a100"].rooms or ()] == [2, 8]
