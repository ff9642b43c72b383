"""The local control plane schedules by node affinity, GPU capacity and taints like a real cluster."""

from __future__ import annotations

import time
from typing import Any

from tests.e2e.conftest import ClusterHandle

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def _deployment(
    name: str, replicas: int, affinity_key: str, values: list[str], gpus: int = 0
) -> dict[str, Any]:
    resources: dict[str, Any] = {"requests": {"cpu": "1", "memory": "1Gi"}}
    if gpus:
        resources["limits"] = {"nvidia.com/gpu": str(gpus)}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {
                                        "matchExpressions": [
                                            {
                                                "key": affinity_key,
                                                "operator": "In",
                                                "values": values,
                                            }
                                        ]
                                    }
                                ]
                            }
                        }
                    },
                    "tolerations": [GPU_TOLERATION] if gpus else [],
                    "containers": [
                        {
                            "name": "server",
                            "image": "registry.invalid/model-server:test",
                            "ports": [{"containerPort": 8000, "name": "http"}],
                            "resources": resources,
                        }
                    ],
                },
            },
        },
    }


def _pods(cluster: ClusterHandle, namespace: str, app: str) -> list[dict[str, Any]]:
    return list(cluster.get_json("pods", "-n", namespace, "-l", f"app={app}")["items"])


def _wait_pods(
    cluster: ClusterHandle, namespace: str, app: str, count: int, ready: bool
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 90
    pods: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        pods = _pods(cluster, namespace, app)

        def is_ready(pod: dict[str, Any]) -> bool:
            return any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in pod.get("status", {}).get("conditions", [])
            )

        if len(pods) == count and (not ready or all(is_ready(p) for p in pods)):
            return pods
        time.sleep(0.5)
    raise AssertionError(f"expected {count} pods of {app} (ready={ready}), got {pods}")


def _node_labels(cluster: ClusterHandle, node: str) -> dict[str, str]:
    return dict(cluster.get_json("node", node)["metadata"]["labels"])


def test_gpu_affinity_lands_on_a100_nodes(cluster: ClusterHandle, namespace: str) -> None:
    cluster.apply(_deployment("on-a100", 3, "accelerator", ["nvidia-a100"], gpus=1), namespace)
    pods = _wait_pods(cluster, namespace, "on-a100", 3, ready=True)
    for pod in pods:
        node = pod["spec"]["nodeName"]
        labels = _node_labels(cluster, node)
        assert labels["accelerator"] == "nvidia-a100", (node, labels)
        assert labels["deepseek-operator.io/pool"] == "a100"
        assert pod["status"]["phase"] == "Running"


def test_cpu_pool_affinity_lands_on_cpu_nodes(cluster: ClusterHandle, namespace: str) -> None:
    cluster.apply(_deployment("on-cpu", 3, "deepseek-operator.io/pool", ["cpu-xeon"]), namespace)
    pods = _wait_pods(cluster, namespace, "on-cpu", 3, ready=True)
    for pod in pods:
        labels = _node_labels(cluster, pod["spec"]["nodeName"])
        assert labels["deepseek-operator.io/kind"] == "cpu"
        assert (
            "nvidia.com/gpu"
            not in cluster.get_json("node", pod["spec"]["nodeName"])["status"]["capacity"]
        )


def test_gpu_request_without_toleration_never_lands_on_tainted_gpu_nodes(
    cluster: ClusterHandle, namespace: str
) -> None:
    deployment = _deployment("no-toleration", 1, "accelerator", ["nvidia-a100"], gpus=1)
    deployment["spec"]["template"]["spec"]["tolerations"] = []
    cluster.apply(deployment, namespace)
    _assert_unschedulable(cluster, namespace, "no-toleration", "taint")


def test_more_gpus_than_any_node_stays_pending_unschedulable(
    cluster: ClusterHandle, namespace: str
) -> None:
    cluster.apply(_deployment("too-big", 1, "accelerator", ["nvidia-a100"], gpus=9), namespace)
    _assert_unschedulable(cluster, namespace, "too-big", "nvidia.com/gpu")


def _assert_unschedulable(cluster: ClusterHandle, namespace: str, app: str, why: str) -> None:
    deadline = time.monotonic() + 60
    conditions: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        pods = _pods(cluster, namespace, app)
        if pods:
            pod = pods[0]
            conditions = pod.get("status", {}).get("conditions", [])
            scheduled = next((c for c in conditions if c["type"] == "PodScheduled"), None)
            if scheduled and scheduled["status"] == "False":
                assert scheduled["reason"] == "Unschedulable"
                assert why in scheduled["message"], scheduled["message"]
                assert not pod["spec"].get("nodeName")
                assert pod["status"]["phase"] == "Pending"
                return
        time.sleep(0.5)
    raise AssertionError(f"{app} never reported Unschedulable: {conditions}")


def test_endpointslice_lists_ready_pods(cluster: ClusterHandle, namespace: str) -> None:
    cluster.apply(_deployment("served", 2, "deepseek-operator.io/pool", ["cpu-xeon"]), namespace)
    pods = _wait_pods(cluster, namespace, "served", 2, ready=True)
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "served"},
            "spec": {"selector": {"app": "served"}, "ports": [{"port": 80, "targetPort": "http"}]},
        },
        namespace,
    )
    pod_ips = {pod["status"]["podIP"] for pod in pods}
    deadline = time.monotonic() + 60
    ready_ips: set[str] = set()
    while time.monotonic() < deadline:
        slices = cluster.get_json(
            "endpointslices", "-n", namespace, "-l", "kubernetes.io/service-name=served"
        )["items"]
        ready_ips = {
            address
            for item in slices
            for endpoint in item.get("endpoints") or []
            if endpoint.get("conditions", {}).get("ready")
            for address in endpoint["addresses"]
        }
        if ready_ips == pod_ips:
            return
        time.sleep(0.5)
    raise AssertionError(f"EndpointSlice ready addresses {ready_ips} != pod IPs {pod_ips}")
