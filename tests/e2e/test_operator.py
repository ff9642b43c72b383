"""The operator, as its own process, against the real control plane with simulated nodes.

Pools and prices are the tests' own (tests/e2e/operator_support.py): an A100 replica costs 1.0/h,
an RTX 4090 one 3.0/h and a CPU one 0.3/h, and replicas take 20 s (GPU) or 10 s (CPU) to turn
Ready, so make-before-break takes real time here.
"""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import ClusterHandle, StartOperator
from tests.e2e.operator_support import (
    PEERING_LIFETIME,
    STARTUP,
    ReadyEndpoints,
    condition,
    deployment,
    event_reasons,
    events,
    gpus_held,
    hog_gpus,
    node_label,
    placed,
    pods,
    pool_deployments,
    status,
    timeline,
    wait_until,
)


def apply_dsd(cluster: ClusterHandle, namespace: str, body: dict[str, Any]) -> None:
    cluster.apply(body, namespace)


def patch_spec(cluster: ClusterHandle, namespace: str, name: str, spec: dict[str, Any]) -> None:
    cluster.kubectl(
        "patch", "dsd", name, "-n", namespace, "--type=merge", "-p", json.dumps({"spec": spec})
    )


def on_pool_nodes(cluster: ClusterHandle, namespace: str, dsd: str, accelerator: str) -> bool:
    """Every pod is bound to a node whose labels say `accelerator`."""
    current = [
        p for p in pods(cluster, namespace, dsd) if not p["metadata"].get("deletionTimestamp")
    ]
    return bool(current) and all(
        node_label(cluster, p["spec"]["nodeName"], "accelerator") == accelerator for p in current
    )


# ---------------------------------------------------------------------------------------------
# 1. A policy change moves the replicas, make-before-break


def test_policy_change_moves_replicas_make_before_break(
    cluster: ClusterHandle, namespace: str, start_operator: StartOperator
) -> None:
    start_operator()
    apply_dsd(cluster, namespace, deployment("r1", ["e2e-a100", "e2e-cpu"], policy="cpuOnly"))
    wait_until(lambda: placed(cluster, namespace, "r1", "e2e-cpu", 2), 90, "2 Ready CPU pods")
    assert on_pool_nodes(cluster, namespace, "r1", "none")  # the CPU nodes' label

    with (
        ReadyEndpoints(cluster, namespace, "r1", floor=2) as endpoints,
        timeline(cluster, namespace, "r1") as seen,
    ):
        patch_spec(cluster, namespace, "r1", {"schedule": {"defaultPolicy": "gpuOnly"}})
        wait_until(
            lambda: (
                placed(cluster, namespace, "r1", "e2e-a100", 2)
                and seen.first_gone("e2e-cpu") is not None
            ),
            120,
            "2 A100 pods, and the recorder seeing a CPU pod end",
        )
        time.sleep(1)
    assert on_pool_nodes(cluster, namespace, "r1", "nvidia-a100")
    new_ready, old_gone = seen.last_ready("e2e-a100"), seen.first_gone("e2e-cpu")
    assert new_ready is not None and old_gone is not None
    assert new_ready <= old_gone, "a CPU pod stopped before the A100 pods were Ready"
    assert endpoints.samples > 10 and endpoints.fewest is not None and endpoints.fewest >= 2
    wait_until(
        lambda: pool_deployments(cluster, namespace, "r1") == {"r1-e2e-a100": 2},
        30,
        "the emptied CPU Deployment deleted",
    )
    wait_until(
        lambda: (
            condition(cluster, namespace, "r1", "Progressing").get("reason") == "PlacementReached"
        ),
        30,
        "Progressing=False PlacementReached",
    )
    assert "Moving" in event_reasons(cluster, namespace, "r1")
    got = status(cluster, namespace, "r1")
    assert got["pools"] == "e2e-a100=2" and got["readyReplicas"] == 2
    assert got["observedGeneration"] == 2
    assert {p["pool"]: p["model"] for p in got["placement"]} == {
        "e2e-a100": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
    }


# ---------------------------------------------------------------------------------------------
# 2. A window boundary moves the replicas by itself, pre-warmed


def test_window_boundary_moves_by_itself_and_is_ready_at_the_boundary(
    cluster: ClusterHandle, namespace: str, start_operator: StartOperator
) -> None:
    now = datetime.now(UTC)
    boundary = (now + timedelta(minutes=2)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    window = {
        "name": "day",
        "start": boundary.strftime("%H:%M"),
        "end": (boundary + timedelta(hours=2)).strftime("%H:%M"),
        "policy": "gpuOnly",
    }
    body = deployment(
        "r1",
        ["e2e-a100", "e2e-cpu"],
        replicas=1,
        min_available=1,
        policy="cpuOnly",
        windows=[window],
    )
    start_operator()
    apply_dsd(cluster, namespace, body)
    wait_until(lambda: placed(cluster, namespace, "r1", "e2e-cpu", 1), 90, "a Ready CPU pod")
    transition = status(cluster, namespace, "r1")["nextTransition"]
    assert transition["window"] == "day" and transition["policy"] == "gpuOnly"

    with timeline(cluster, namespace, "r1") as seen:
        # The recorder polls on its own: wait until it, too, has seen the CPU pod end.
        wait_until(
            lambda: (
                placed(cluster, namespace, "r1", "e2e-a100", 1)
                and seen.first_gone("e2e-cpu") is not None
            ),
            (boundary - datetime.now(UTC)).total_seconds() + 60,
            "the A100 pod after the boundary, and the CPU pod gone",
        )
    started = seen.first_created("e2e-a100")
    ready = seen.last_ready("e2e-a100")
    cpu_gone = seen.first_gone("e2e-cpu")
    assert started is not None and ready is not None and cpu_gone is not None
    edge = boundary.timestamp()
    lead = STARTUP["e2e-a100"]
    # started about startupSeconds ahead, Ready at the boundary, the CPU pod kept until then
    assert edge - lead - 10 <= started <= edge - lead + 5, started - edge
    assert ready <= edge + 3, f"A100 Ready {ready - edge:.1f}s after the boundary"
    assert cpu_gone >= edge - 1, f"CPU pod stopped {edge - cpu_gone:.1f}s before the boundary"
    reasons = event_reasons(cluster, namespace, "r1")
    assert "Prewarming" in reasons and "Moving" in reasons


# ---------------------------------------------------------------------------------------------
# 3. No capacity on the cheaper pool: fall back, then return


def take_every_a100_gpu(cluster: ClusterHandle, namespace: str) -> None:
    """Another workload: one pod per A100 node, bound to it, asking for all its free GPUs."""
    for node in cluster.get_json("nodes", "-l", "accelerator=nvidia-a100")["items"]:
        name = node["metadata"]["name"]
        allocatable = int(node["status"]["allocatable"]["nvidia.com/gpu"])
        free = allocatable - gpus_held(cluster, name)
        if free > 0:
            hog_gpus(cluster, namespace, name, free)


def test_capacity_fallback_and_return(
    cluster: ClusterHandle, namespace: str, start_operator: StartOperator
) -> None:
    take_every_a100_gpu(cluster, namespace)
    start_operator()
    body = deployment("r1", ["e2e-a100", "e2e-4090"], replicas=1, min_available=1, policy="gpuOnly")
    apply_dsd(cluster, namespace, body)
    wait_until(lambda: placed(cluster, namespace, "r1", "e2e-4090", 1), 90, "the 4090 fallback")
    assert on_pool_nodes(cluster, namespace, "r1", "nvidia-rtx-4090")
    capacity = condition(cluster, namespace, "r1", "CapacityAvailable")
    assert capacity["status"] == "False" and capacity["reason"] == "PoolFull"
    assert "e2e-a100" in capacity["message"]
    assert "CapacityShort" in event_reasons(cluster, namespace, "r1")

    cluster.kubectl("delete", "pod", "-n", namespace, "-l", "app=hog", "--wait=true")
    wait_until(lambda: placed(cluster, namespace, "r1", "e2e-a100", 1), 120, "back on A100")
    assert on_pool_nodes(cluster, namespace, "r1", "nvidia-a100")
    wait_until(
        lambda: condition(cluster, namespace, "r1", "CapacityAvailable").get("status") == "True",
        30,
        "CapacityAvailable=True",
    )
    wait_until(
        lambda: pool_deployments(cluster, namespace, "r1") == {"r1-e2e-a100": 1},
        30,
        "the emptied 4090 Deployment deleted",
    )


# ---------------------------------------------------------------------------------------------
# 4. SIGKILL in the middle of a move, at three points


@pytest.mark.parametrize("point", ["at-the-change", "while-starting", "before-the-stop"])
def test_crash_mid_move_converges_without_a_dip_and_keeps_its_cooldown(
    cluster: ClusterHandle, namespace: str, start_operator: StartOperator, point: str
) -> None:
    first = start_operator()
    body = deployment("r1", ["e2e-a100", "e2e-cpu"], policy="cpuOnly", cooldown=600)
    apply_dsd(cluster, namespace, body)
    wait_until(lambda: placed(cluster, namespace, "r1", "e2e-cpu", 2), 90, "2 Ready CPU pods")
    with ReadyEndpoints(cluster, namespace, "r1", floor=2) as endpoints:
        patch_spec(cluster, namespace, "r1", {"schedule": {"defaultPolicy": "gpuOnly"}})
        if point == "at-the-change":
            time.sleep(0.3)
        else:
            wait_until(
                lambda: pool_deployments(cluster, namespace, "r1").get("r1-e2e-a100") == 2,
                60,
                "the A100 Deployment",
            )
        first.kill()
        if point == "before-the-stop":
            # the new replicas turn Ready while no operator runs: the old ones still serve
            wait_until(
                lambda: (
                    sum(
                        1
                        for p in pods(cluster, namespace, "r1")
                        if p["metadata"]["labels"]["serving.deepseek-operator.io/pool"]
                        == "e2e-a100"
                        and p["status"].get("phase") == "Running"
                        and any(
                            c["type"] == "Ready" and c["status"] == "True"
                            for c in p["status"].get("conditions", [])
                        )
                    )
                    == 2
                ),
                60,
                "A100 pods Ready with the operator down",
            )
            assert (
                len(
                    [
                        p
                        for p in pods(cluster, namespace, "r1")
                        if p["metadata"]["labels"]["serving.deepseek-operator.io/pool"] == "e2e-cpu"
                    ]
                )
                == 2
            )
        start_operator(name="restarted")
        wait_until(lambda: placed(cluster, namespace, "r1", "e2e-a100", 2), 150, "the move done")
        time.sleep(1)
    assert endpoints.fewest is not None and endpoints.fewest >= 2, endpoints.fewest
    wait_until(
        lambda: pool_deployments(cluster, namespace, "r1") == {"r1-e2e-a100": 2},
        30,
        "no orphan Deployment",
    )
    history = status(cluster, namespace, "r1")["history"]
    assert [m["after"] for m in history["moves"]] == ["e2e-a100=2"]
    # The cooldown survived the crash: a cost move back to the cheaper CPUs is refused.
    patch_spec(cluster, namespace, "r1", {"schedule": {"defaultPolicy": "costOptimal"}})
    time.sleep(8)
    assert placed(cluster, namespace, "r1", "e2e-a100", 2)
    assert "cooldown" in status(cluster, namespace, "r1")["reason"]
    assert event_reasons(cluster, namespace, "r1").count("Moving") == 1


# ---------------------------------------------------------------------------------------------
# 5. Deletion, and references that do not resolve


def test_deletion_removes_everything_and_broken_references_are_reported(
    cluster: ClusterHandle, namespace: str, start_operator: StartOperator
) -> None:
    start_operator()
    healthy = deployment("ok", ["e2e-cpu"], replicas=1, min_available=1)
    missing_pool = deployment("no-pool", ["e2e-cpu"], replicas=1, min_available=1)
    missing_pool["spec"]["variants"] = [{"pool": "e2e-h100", "engine": "vllm"}]
    bad_zone = deployment("no-zone", ["e2e-cpu"], replicas=1, time_zone="Mars/Olympus_Mons")
    for body in (missing_pool, bad_zone, healthy):
        apply_dsd(cluster, namespace, body)
    wait_until(lambda: placed(cluster, namespace, "ok", "e2e-cpu", 1), 90, "the healthy one")
    for name, reason in (("no-pool", "PoolNotFound"), ("no-zone", "UnknownTimeZone")):
        ready = wait_until(
            lambda name=name: (
                condition(cluster, namespace, name, "Ready").get("reason") != "NotYetObserved"
                and condition(cluster, namespace, name, "Ready")
            ),
            30,
            f"{name} Ready condition",
        )
        assert ready["status"] == "False" and ready["reason"] == reason, ready
        assert pool_deployments(cluster, namespace, name) == {}
    service = cluster.get_json("service", "ok", "-n", namespace)
    assert service["spec"]["selector"]["app.kubernetes.io/instance"] == "ok"
    owner = service["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "DeepSeekDeployment" and owner["controller"] is True

    cluster.kubectl("delete", "dsd", "ok", "-n", namespace, "--timeout=60s")
    wait_until(
        lambda: (
            not pool_deployments(cluster, namespace, "ok")
            and not pods(cluster, namespace, "ok")
            and cluster.kubectl("get", "service", "ok", "-n", namespace, check=False).returncode
            != 0
        ),
        60,
        "the Deployment, pods and Service garbage-collected",
    )


# ---------------------------------------------------------------------------------------------
# 6. Recommend mode


def test_recommend_mode_reports_and_creates_nothing(
    cluster: ClusterHandle, namespace: str, start_operator: StartOperator
) -> None:
    start_operator()
    apply_dsd(cluster, namespace, deployment("advice", ["e2e-a100", "e2e-cpu"], mode="recommend"))
    progressing = wait_until(
        lambda: (
            condition(cluster, namespace, "advice", "Progressing").get("reason") == "RecommendOnly"
            and condition(cluster, namespace, "advice", "Progressing")
        ),
        30,
        "RecommendOnly",
    )
    assert progressing["status"] == "False"
    got = status(cluster, namespace, "advice")
    assert got["pools"] == "e2e-cpu=2" and got["costPerHour"] == pytest.approx(0.6)
    time.sleep(3)
    assert pool_deployments(cluster, namespace, "advice") == {}
    assert cluster.kubectl("get", "service", "advice", "-n", namespace, check=False).returncode != 0


# ---------------------------------------------------------------------------------------------
# 7. Two operators: one acts, the other stands by and takes over


def test_only_one_of_two_operators_acts_and_the_standby_takes_over(
    cluster: ClusterHandle, namespace: str, start_operator: StartOperator
) -> None:
    # Operators start paused and resume only once the peering shows none above them.
    active = start_operator("--priority=200", name="active")
    active.wait_for_log("Resuming operations after the pause")
    standby = start_operator("--priority=100", name="standby")
    standby.wait_for_log("peering 'deepseek-operator' with priority 100")
    apply_dsd(cluster, namespace, deployment("one", ["e2e-cpu"], replicas=1, min_available=1))
    wait_until(lambda: placed(cluster, namespace, "one", "e2e-cpu", 1), 90, "one placed")
    time.sleep(3)
    assert f"Applied Deployment {namespace}/one-e2e-cpu" in active.log()
    assert "Applied Deployment" not in standby.log()
    assert "Resuming operations after the pause" not in standby.log()

    active.kill()
    standby.wait_for_log("Resuming operations after the pause", timeout=PEERING_LIFETIME + 30)
    apply_dsd(cluster, namespace, deployment("two", ["e2e-cpu"], replicas=1, min_available=1))
    wait_until(lambda: placed(cluster, namespace, "two", "e2e-cpu", 1), 90, "two placed")
    assert f"Applied Deployment {namespace}/two-e2e-cpu" in standby.log()


# ---------------------------------------------------------------------------------------------
# 8. Changes made outside the operator


def test_foreign_scale_is_reverted_and_a_foreign_label_survives(
    cluster: ClusterHandle, namespace: str, start_operator: StartOperator
) -> None:
    start_operator()
    apply_dsd(cluster, namespace, deployment("r1", ["e2e-cpu"], replicas=2))
    wait_until(lambda: placed(cluster, namespace, "r1", "e2e-cpu", 2), 90, "2 Ready CPU pods")
    cluster.kubectl("label", "deployment", "r1-e2e-cpu", "-n", namespace, "team=ml")
    cluster.kubectl("scale", "deployment", "r1-e2e-cpu", "-n", namespace, "--replicas=4")
    wait_until(
        lambda: "ExternalChangeReverted" in event_reasons(cluster, namespace, "r1"),
        30,
        "the ExternalChangeReverted event",
    )
    wait_until(lambda: placed(cluster, namespace, "r1", "e2e-cpu", 2), 60, "back to 2 pods")
    message = next(
        e["message"]
        for e in events(cluster, namespace, "r1")
        if e["reason"] == "ExternalChangeReverted"
    )
    assert "set to 4 replicas outside the operator" in message
    deployed = cluster.get_json(
        "deployment", "r1-e2e-cpu", "-n", namespace, "--show-managed-fields"
    )
    assert deployed["spec"]["replicas"] == 2
    assert deployed["metadata"]["labels"]["team"] == "ml"
    managers = {m["manager"] for m in deployed["metadata"]["managedFields"]}
    assert "deepseek-operator" in managers


# ---------------------------------------------------------------------------------------------
# 9. The API server frozen mid-move


def test_a_frozen_api_server_mid_move_neither_crashes_nor_duplicates(
    cluster: ClusterHandle, namespace: str, start_operator: StartOperator
) -> None:
    if cluster.local_state is None:
        pytest.fail(
            "this test freezes the local cluster's kube-apiserver; run it without KUBECONFIG"
        )
    apiserver = next(p for p in cluster.local_state.processes if p.name == "kube-apiserver")
    operator = start_operator()
    apply_dsd(cluster, namespace, deployment("r1", ["e2e-a100", "e2e-cpu"], policy="cpuOnly"))
    wait_until(lambda: placed(cluster, namespace, "r1", "e2e-cpu", 2), 90, "2 Ready CPU pods")
    with ReadyEndpoints(cluster, namespace, "r1", floor=2) as endpoints:
        patch_spec(cluster, namespace, "r1", {"schedule": {"defaultPolicy": "gpuOnly"}})
        wait_until(
            lambda: pool_deployments(cluster, namespace, "r1").get("r1-e2e-a100") == 2,
            60,
            "the A100 Deployment",
        )
        os.kill(apiserver.pid, signal.SIGSTOP)
        try:
            time.sleep(30)
            assert operator.alive()
        finally:
            os.kill(apiserver.pid, signal.SIGCONT)
        wait_until(lambda: placed(cluster, namespace, "r1", "e2e-a100", 2), 180, "the move done")
        time.sleep(1)
    assert operator.alive()
    assert endpoints.fewest is not None and endpoints.fewest >= 2
    assert pool_deployments(cluster, namespace, "r1") == {"r1-e2e-a100": 2}
    services = cluster.get_json("services", "-n", namespace)["items"]
    assert [s["metadata"]["name"] for s in services] == ["r1"]
    retries = operator.log().count("Reconcile failed")
    assert retries <= 15, f"{retries} failed reconciles in a 30 s outage: a tight loop"


# ---------------------------------------------------------------------------------------------
# 10. kopf's own CLI runs the same handlers


def test_kopf_run_with_the_handlers_module_works_too(
    cluster: ClusterHandle, namespace: str, start_operator: StartOperator
) -> None:
    operator = start_operator(name="kopf", under_kopf=True)
    apply_dsd(cluster, namespace, deployment("r1", ["e2e-cpu"], replicas=1, min_available=1))
    wait_until(lambda: placed(cluster, namespace, "r1", "e2e-cpu", 1), 90, "placed under kopf")
    assert f"Applied Deployment {namespace}/r1-e2e-cpu" in operator.log()
    wait_until(
        lambda: condition(cluster, namespace, "r1", "Ready").get("status") == "True",
        30,
        "Ready=True in status",
    )
