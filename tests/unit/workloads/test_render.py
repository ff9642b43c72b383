"""The rendered Deployment and Service: placement, resources, lifecycle, ownership, labels."""

from __future__ import annotations

from typing import Any

import yaml

from deepseek_operator.api.deployment import DeepSeekDeployment
from deepseek_operator.api.pool import PoolProfile
from deepseek_operator.core.planning.inputs import replica_resources
from deepseek_operator.core.workloads.render import (
    ReplicaResources,
    render_deployment,
    render_service,
    spec_digest,
)
from tests.paths import EXAMPLES

PROFILES = {
    doc["metadata"]["name"]: PoolProfile.from_object(doc)
    for doc in yaml.safe_load_all((EXAMPLES / "pools.yaml").read_text())
}


def example() -> DeepSeekDeployment:
    body = yaml.safe_load((EXAMPLES / "r1-7b-gpu-by-day-cpu-at-night.yaml").read_text())
    body["metadata"].update(uid="uid-1")
    return DeepSeekDeployment.from_object(body)


def rendered(pool: str, replicas: int = 2) -> dict[str, Any]:
    dsd = example()
    variant = next(v for v in dsd.spec.variants if v.pool == pool)
    profile = PROFILES[pool]
    return render_deployment(
        dsd, variant, profile, replica_resources(dsd, variant, profile), replicas, 120.0
    )


def container(manifest: dict[str, Any]) -> dict[str, Any]:
    (only,) = manifest["spec"]["template"]["spec"]["containers"]
    return dict(only)


def test_a_gpu_pool_deployment_is_pinned_to_its_nodes_with_its_gpus():
    manifest = rendered("a100")
    assert manifest["metadata"]["name"] == "r1-7b-a100"
    pod = manifest["spec"]["template"]["spec"]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"] == [
        {"matchExpressions": [{"key": "accelerator", "operator": "In", "values": ["nvidia-a100"]}]}
    ]
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}
    ]
    resources = container(manifest)["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == "1" == resources["requests"]["nvidia.com/gpu"]
    # one GPU of eight: an eighth of the node's 128 cores and 1 TiB
    assert resources["requests"]["cpu"] == "16000m"
    assert resources["requests"]["memory"] == str(128 * 2**30)
    assert manifest["spec"]["replicas"] == 2


def test_a_cpu_pool_deployment_asks_for_its_share_of_a_node_and_runs_the_variant_model():
    manifest = rendered("cpu-xeon")
    resources = container(manifest)["resources"]
    assert "nvidia.com/gpu" not in resources["requests"]
    assert resources["requests"]["cpu"] == "40000m"  # one socket of two
    assert resources["requests"]["memory"] == str(256 * 2**30)
    server = container(manifest)
    assert server["image"].startswith("ghcr.io/ggml-org/llama.cpp:server-")
    assert "/models/DeepSeek-R1-Distill-Qwen-7B-Q8_0.gguf" in server["args"]
    annotations = manifest["spec"]["template"]["metadata"]["annotations"]
    assert annotations["serving.deepseek-operator.io/startup-seconds"] == "120"


def test_the_vllm_variant_gets_its_model_precision_and_engine():
    server = container(rendered("a100"))
    args = server["args"]
    assert args[args.index("--model") + 1] == "/models/DeepSeek-R1-Distill-Qwen-7B"
    assert args[args.index("--dtype") + 1] == "bfloat16"
    assert server["image"].startswith("vllm/vllm-openai:")
    assert {"name": "HF_HUB_OFFLINE", "value": "1"} in server["env"]


def test_lifecycle_probes_drain_and_rollout_keep_replicas_available():
    manifest = rendered("a100")
    server = container(manifest)
    assert (
        server["startupProbe"]["periodSeconds"] * server["startupProbe"]["failureThreshold"] >= 600
    )
    assert server["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert server["lifecycle"]["preStop"] == {"sleep": {"seconds": 5}}
    grace = manifest["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > 5 + 25  # the pause plus the model server's drain
    strategy = manifest["spec"]["strategy"]["rollingUpdate"]
    assert strategy == {"maxSurge": 1, "maxUnavailable": 0}


def test_every_object_is_owned_labelled_and_restricted():
    manifest, service = rendered("a100"), render_service(example())
    for obj in (manifest, service):
        (owner,) = obj["metadata"]["ownerReferences"]
        assert owner["kind"] == "DeepSeekDeployment" and owner["uid"] == "uid-1"
        assert owner["controller"] is True
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "r1-7b"
        assert labels["app.kubernetes.io/managed-by"] == "deepseek-operator"
        assert labels["app.kubernetes.io/name"] and labels["app.kubernetes.io/component"]
    assert manifest["metadata"]["labels"]["serving.deepseek-operator.io/pool"] == "a100"
    pod = manifest["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container(manifest)["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    # the Service selects every pool's pods: its selector is a subset of each pod's labels
    pod_labels = manifest["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert manifest["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_only_the_replica_count_leaves_the_digest_unchanged():
    assert spec_digest(rendered("a100", 1)) == spec_digest(rendered("a100", 3))
    assert spec_digest(rendered("a100")) != spec_digest(rendered("cpu-xeon"))


def test_a_replica_fits_the_smallest_of_its_resources():
    need = ReplicaResources(gpus=2, cpu_millicores=8000, memory_bytes=64)
    assert need.fitting(8, 64_000, 1024) == 4
    assert need.fitting(8, 16_000, 1024) == 2
    assert need.fitting(1, 64_000, 1024) == 0
    assert need.fitting(-2, 64_000, 1024) == 0
