"""The objects that run a plan: one Deployment per pool in use, one Service over every pool.

Pure: a DeepSeekDeployment, the PoolProfile, the variant and the replica count in, plain
Kubernetes manifests out, ready for server-side apply. Nothing here depends on the replica
count except `spec.replicas`, so scaling never rolls the pods.

* **Placement** is required node affinity built from the PoolProfile's `nodeSelector` (one
  `In` expression per label), plus its tolerations.
* **Resources**: `nvidia.com/gpu` × tensor-parallel degree on GPU pools, with the host CPU and
  memory that go with those GPUs; on CPU pools the replica's share of a node's cores and memory,
  the share the cost model bills.
* **Lifecycle**: a startup probe with room for loading the weights, readiness on the engine's
  ready path, a `preStop` pause so endpoints drop the pod before the server drains, and a grace
  period longer than that pause plus the server's drain time.
* **Rolling updates** surge one pod and take none away (`maxUnavailable: 0`), so a template
  change (a new image) can never break `minAvailable` either.
* **Ownership**: every object has the DeepSeekDeployment as its controller owner, so deleting
  it deletes them, and the labels `app.kubernetes.io/{name,instance,component,managed-by}` plus
  the pool label.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from deepseek_operator.api.base import API_VERSION
from deepseek_operator.api.deployment import DeepSeekDeployment, Variant
from deepseek_operator.api.pool import PoolProfile
from deepseek_operator.core.workloads.engines import (
    container_args,
    container_env,
    engine_profile,
)

APP_NAME = "deepseek-model-server"
COMPONENT = "model-server"
MANAGED_BY = "deepseek-operator"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_POOL = "serving.deepseek-operator.io/pool"
ANNOTATION_STARTUP_SECONDS = "serving.deepseek-operator.io/startup-seconds"
ANNOTATION_MODEL = "serving.deepseek-operator.io/model"

SERVICE_PORT = 80
PORT_NAME = "http"
CONTAINER_NAME = "server"
PRE_STOP_SECONDS = 5
"""Pause before SIGTERM, so EndpointSlices drop the pod before the server stops taking work."""
SERVER_DRAIN_SECONDS = 25
"""How long the model server lets in-flight requests finish after SIGTERM (`--drain-seconds`)."""
GRACE_MARGIN_SECONDS = 15
"""The server's own shutdown after the drain (docs/model-server.md: drain + 15 s)."""
TERMINATION_GRACE_SECONDS = PRE_STOP_SECONDS + SERVER_DRAIN_SECONDS + GRACE_MARGIN_SECONDS
STARTUP_PROBE_PERIOD_SECONDS = 10
MIN_STARTUP_BUDGET_SECONDS = 600
"""Weights can take minutes to load from a cold disk: never fail a start sooner than this."""
WEIGHTS_VOLUME = "weights"
WEIGHTS_MOUNT = "/weights"
RUN_AS = 10001


@dataclass(frozen=True)
class ReplicaResources:
    """What one replica requests: GPUs, CPU and memory (GPUs also as limits)."""

    gpus: int
    cpu_millicores: int
    memory_bytes: int

    def fitting(self, gpus: int, cpu_millicores: int, memory_bytes: int) -> int:
        """How many replicas fit into this much free room on one node."""
        counts = []
        if self.gpus > 0:
            counts.append(max(0, gpus) // self.gpus)
        if self.cpu_millicores > 0:
            counts.append(max(0, cpu_millicores) // self.cpu_millicores)
        if self.memory_bytes > 0:
            counts.append(max(0, memory_bytes) // self.memory_bytes)
        return min(counts) if counts else 0


def deployment_name(deployment: str, pool: str) -> str:
    return f"{deployment}-{pool}"


def selector_labels(deployment: str) -> dict[str, str]:
    """The labels every pod of this DeepSeekDeployment carries, whatever its pool."""
    return {
        LABEL_NAME: APP_NAME,
        LABEL_INSTANCE: deployment,
        LABEL_COMPONENT: COMPONENT,
    }


def common_labels(deployment: str) -> dict[str, str]:
    return {**selector_labels(deployment), LABEL_MANAGED_BY: MANAGED_BY}


def owner_reference(dsd: DeepSeekDeployment) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "DeepSeekDeployment",
        "name": dsd.metadata["name"],
        "uid": dsd.metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def render_service(dsd: DeepSeekDeployment) -> dict[str, Any]:
    """One Service `<dsd>` over the pods of every pool (each pod names its port `http`)."""
    name = dsd.metadata["name"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": dsd.metadata["namespace"],
            "labels": common_labels(name),
            "ownerReferences": [owner_reference(dsd)],
        },
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(name),
            "ports": [
                {
                    "name": PORT_NAME,
                    "port": SERVICE_PORT,
                    "targetPort": PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }


def render_deployment(
    dsd: DeepSeekDeployment,
    variant: Variant,
    profile: PoolProfile,
    resources: ReplicaResources,
    replicas: int,
    startup_seconds: float,
) -> dict[str, Any]:
    """The Deployment `<dsd>-<pool>` running `replicas` of the variant on the pool's nodes.

    Raises ValueError naming the field when the engine cannot run the variant on this pool.
    """
    name = dsd.metadata["name"]
    pool = variant.pool
    kind = profile.spec.hardware.kind
    engine = engine_profile(variant.engine)
    model = variant.model or dsd.spec.model
    weights_path, volume, mount = _weights(model.weights.volume, model.weights.path)
    args = container_args(
        engine,
        weights_path=weights_path,
        served_model_name=dsd.spec.model.name,
        precision=variant.precision,
        kind=kind,
        tensor_parallel=variant.tensor_parallel,
        context_length=model.context_length,
    )
    env = {
        **container_env(engine, deployment=name, pool=pool),
        "HOME": "/tmp",
        "XDG_CACHE_HOME": "/tmp/.cache",
    }
    labels = {**common_labels(name), LABEL_POOL: pool}
    match = {**selector_labels(name), LABEL_POOL: pool}
    probe = {"port": PORT_NAME}
    startup_budget = max(MIN_STARTUP_BUDGET_SECONDS, 3 * startup_seconds)
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": engine.image_for(kind),
        "args": args,
        "env": [{"name": key, "value": value} for key, value in sorted(env.items())],
        "ports": [{"name": PORT_NAME, "containerPort": engine.port, "protocol": "TCP"}],
        "resources": _resources(resources),
        "startupProbe": {
            "httpGet": {"path": engine.readiness_path, **probe},
            "periodSeconds": STARTUP_PROBE_PERIOD_SECONDS,
            "failureThreshold": math.ceil(startup_budget / STARTUP_PROBE_PERIOD_SECONDS),
        },
        "readinessProbe": {
            "httpGet": {"path": engine.readiness_path, **probe},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": engine.liveness_path, **probe},
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}},
        "volumeMounts": [
            {"name": WEIGHTS_VOLUME, "mountPath": mount, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    volumes: list[dict[str, Any]] = [volume, {"name": "tmp", "emptyDir": {}}]
    if variant.tensor_parallel > 1:
        # NCCL exchanges tensors through shared memory between the replica's GPU workers.
        container["volumeMounts"].append({"name": "dshm", "mountPath": "/dev/shm"})
        volumes.append({"name": "dshm", "emptyDir": {"medium": "Memory"}})
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "volumes": volumes,
        "tolerations": [t.to_json_dict() for t in profile.spec.tolerations],
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "enableServiceLinks": False,
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    affinity = _node_affinity(profile.spec.node_selector)
    if affinity:
        pod_spec["affinity"] = affinity
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(name, pool),
            "namespace": dsd.metadata["namespace"],
            "labels": labels,
            "ownerReferences": [owner_reference(dsd)],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": match},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "revisionHistoryLimit": 3,
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        ANNOTATION_STARTUP_SECONDS: f"{startup_seconds:g}",
                        ANNOTATION_MODEL: model.name,
                    },
                },
                "spec": pod_spec,
            },
        },
    }


def spec_digest(manifest: dict[str, Any]) -> str:
    """A short digest of everything rendered but the replica count: when it is unchanged and the
    count matches, there is nothing to apply."""
    material = {
        "metadata": {k: v for k, v in manifest["metadata"].items() if k != "annotations"},
        "spec": {k: v for k, v in manifest["spec"].items() if k != "replicas"},
    }
    text = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _weights(volume: str | None, path: str) -> tuple[str, dict[str, Any], str]:
    """The path the engine loads, the volume, and where it is mounted."""
    if volume is not None:
        claim = {
            "name": WEIGHTS_VOLUME,
            "persistentVolumeClaim": {"claimName": volume, "readOnly": True},
        }
        return f"{WEIGHTS_MOUNT}{path}", claim, WEIGHTS_MOUNT
    host = {"name": WEIGHTS_VOLUME, "hostPath": {"path": path}}
    return path, host, path


def _resources(resources: ReplicaResources) -> dict[str, Any]:
    requests: dict[str, str] = {
        "cpu": f"{resources.cpu_millicores}m",
        "memory": str(resources.memory_bytes),
    }
    limits: dict[str, str] = {"memory": str(resources.memory_bytes)}
    if resources.gpus > 0:
        requests["nvidia.com/gpu"] = str(resources.gpus)
        limits["nvidia.com/gpu"] = str(resources.gpus)
    return {"requests": requests, "limits": limits}


def _node_affinity(selector: dict[str, str]) -> dict[str, Any]:
    if not selector:
        return {}
    expressions = [
        {"key": key, "operator": "In", "values": [value]} for key, value in sorted(selector.items())
    ]
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": expressions}]
            }
        }
    }
