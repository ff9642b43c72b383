"""The cluster-wide arbiter, with the operator as its own process against the real control plane.

Two deployments want 12 A100 GPUs when 8 are free. `cheap` (8 replicas, A100 or L40S at 2.0/h,
a cheap fallback) comes first and takes all 8, as per-deployment planning would leave it. Then
`dear` (4 replicas, A100 or RTX 4090 at 3.0/h) arrives: cheap giving 4 A100 GPUs up for L40S
costs the cluster 4 + 4 + 8 = 16/h, against 8 + 12 = 20/h for dear on 4090s, so the arbiter moves
cheap's 4 and gives dear the A100s. Both statuses name the other. When the other A100 node's
GPUs free up, cheap returns to A100.

The L40S pool is this test's own: a PoolProfile and two simulated 4-GPU nodes, removed at the end.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from deepseek_operator.controlplane.topology import (
    ClusterTopology,
    PoolNodes,
    Taint,
    node_manifests,
)
from tests.e2e.conftest import ClusterHandle, StartOperator
from tests.e2e.operator_support import (
    GPU_TOLERATION,
    GROUP,
    condition,
    deployment,
    event_reasons,
    gpus_held,
    hog_gpus,
    is_ready,
    pods,
    status,
    wait_until,
)

L40S = "e2e-l40s"
L40S_VARIANT = {"pool": L40S, "engine": "vllm", "precision": "bf16"}
A100_SELECTOR = "accelerator=nvidia-a100"


@pytest.fixture
def l40s_pool(cluster: ClusterHandle, operator_api: None) -> Iterator[None]:
    """Two kwok nodes of 4 L40S GPUs each and their PoolProfile (2.0/h per replica)."""
    topology = ClusterTopology(
        pools=[
            PoolNodes(
                name=L40S,
                kind="gpu",
                nodes=2,
                gpus=4,
                cpu="64",
                memory="512Gi",
                labels={"accelerator": "nvidia-l40s"},
                taints=[Taint(key="nvidia.com/gpu", value="present", effect="NoSchedule")],
            )
        ]
    )
    nodes = node_manifests(topology)
    profile = {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "PoolProfile",
        "metadata": {"name": L40S},
        "spec": {
            "nodeSelector": {"accelerator": "nvidia-l40s"},
            "tolerations": [GPU_TOLERATION],
            "hardware": {
                "kind": "gpu",
                "acceleratorModel": "l40s",
                "gpusPerNode": 4,
                "gpuMemoryGiB": 48,
                "cpuCores": 64,
                "memoryGiB": 512,
            },
            "cost": {"currency": "USD", "hourlyPrice": 2.0},
            "startupSeconds": 20.0,
        },
    }
    cluster.apply([*nodes, profile])
    try:
        wait_until(
            lambda: all(
                any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in cluster.get_json("node", n["metadata"]["name"])["status"].get(
                        "conditions", []
                    )
                )
                for n in nodes
            ),
            60,
            "the L40S nodes Ready",
        )
        yield
    finally:
        names = [n["metadata"]["name"] for n in nodes]
        cluster.kubectl("delete", "node", *names, "--wait=false", check=False)
        cluster.kubectl("delete", "poolprofile", L40S, "--wait=false", check=False)


def a100_nodes(cluster: ClusterHandle) -> list[str]:
    items = cluster.get_json("nodes", "-l", A100_SELECTOR)["items"]
    return sorted(n["metadata"]["name"] for n in items)


def leave_eight_a100_gpus(cluster: ClusterHandle, namespace: str) -> None:
    """Every A100 node but the first taken whole by another workload's pod: 8 GPUs stay free."""
    first, *others = a100_nodes(cluster)
    wait_until(
        lambda: all(gpus_held(cluster, n) == 0 for n in (first, *others)),
        120,
        "earlier tests' pods gone from the A100 nodes",
    )
    for name in others:
        allocatable = int(cluster.get_json("node", name)["status"]["allocatable"]["nvidia.com/gpu"])
        hog_gpus(cluster, namespace, name, allocatable)


def live_pools(cluster: ClusterHandle, namespace: str, dsd: str) -> dict[str, tuple[int, int]]:
    """Per pool: (pods not terminating, of which Ready)."""
    counts: dict[str, tuple[int, int]] = {}
    for pod in pods(cluster, namespace, dsd):
        if pod["metadata"].get("deletionTimestamp"):
            continue
        pool = pod["metadata"]["labels"][f"{GROUP}/pool"]
        live, ready = counts.get(pool, (0, 0))
        counts[pool] = (live + 1, ready + int(is_ready(pod)))
    return counts


def settled(cluster: ClusterHandle, namespace: str, dsd: str, want: dict[str, int]) -> bool:
    return live_pools(cluster, namespace, dsd) == {p: (n, n) for p, n in want.items()}


def test_two_deployments_wanting_12_a100_gpus_of_8_share_at_the_least_total_cost(
    cluster: ClusterHandle, namespace: str, l40s_pool: None, start_operator: StartOperator
) -> None:
    leave_eight_a100_gpus(cluster, namespace)
    start_operator()
    cheap = deployment("cheap", ["e2e-a100"], replicas=8, min_available=1, policy="gpuOnly")
    cheap["spec"]["variants"].append(L40S_VARIANT)
    cluster.apply(cheap, namespace)
    wait_until(
        lambda: settled(cluster, namespace, "cheap", {"e2e-a100": 8}), 120, "cheap on 8 A100 GPUs"
    )
    assert condition(cluster, namespace, "cheap", "Contended")["reason"] == "Uncontended"

    dear = deployment(
        "dear", ["e2e-a100", "e2e-4090"], replicas=4, min_available=1, policy="gpuOnly"
    )
    cluster.apply(dear, namespace)
    wait_until(
        lambda: (
            settled(cluster, namespace, "dear", {"e2e-a100": 4})
            and settled(cluster, namespace, "cheap", {"e2e-a100": 4, L40S: 4})
        ),
        240,
        "dear on 4 A100 GPUs, cheap on 4 A100 + 4 L40S",
    )
    # The cheaper total: 4 + (4 + 8) = 16/h, not 8 + 12 = 20/h with cheap keeping all eight.
    costs = {d: status(cluster, namespace, d)["costPerHour"] for d in ("dear", "cheap")}
    assert costs == {"dear": pytest.approx(4.0), "cheap": pytest.approx(12.0)}
    displaced = condition(cluster, namespace, "cheap", "Contended")
    assert displaced["status"] == "True" and displaced["reason"] == "Displaced", displaced
    assert f"{namespace}/dear" in displaced["message"] and "e2e-a100" in displaced["message"]
    holding = condition(cluster, namespace, "dear", "Contended")
    assert holding["status"] == "True" and holding["reason"] == "Displacing", holding
    assert f"{namespace}/cheap" in holding["message"]
    assert "Contended" in event_reasons(cluster, namespace, "cheap")
    assert "Contended" in event_reasons(cluster, namespace, "dear")

    # Capacity frees up: the other A100 node's GPUs are released, and cheap returns to A100.
    cluster.kubectl("delete", "pod", "-n", namespace, "-l", "app=hog", "--wait=true")
    wait_until(
        lambda: settled(cluster, namespace, "cheap", {"e2e-a100": 8}),
        240,
        "cheap back on 8 A100 GPUs",
    )
    assert settled(cluster, namespace, "dear", {"e2e-a100": 4})
    wait_until(
        lambda: all(
            condition(cluster, namespace, d, "Contended").get("reason") == "Uncontended"
            for d in ("dear", "cheap")
        ),
        60,
        "both Uncontended",
    )
