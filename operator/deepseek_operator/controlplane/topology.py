"""Simulated node pools for the local cluster: the `cluster.yaml` schema and the Node objects it yields.

The nodes are plain API objects managed by kwok; their capacity (including `nvidia.com/gpu`) is
whatever the file says, so the real scheduler places pods on them exactly as it would on real
hardware of that shape.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from deepseek_operator.controlplane.errors import ControlPlaneError

POOL_LABEL = "deepseek-operator.io/pool"
KIND_LABEL = "deepseek-operator.io/kind"
ACCELERATOR_LABEL = "accelerator"
GPU_RESOURCE = "nvidia.com/gpu"
KWOK_ANNOTATION = "kwok.x-k8s.io/node"

_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class Taint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=253)
    value: str = Field(default="", max_length=63)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class PoolNodes(BaseModel):
    """One pool of identical simulated nodes."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=40, description="Pool name, a DNS label.")
    kind: Literal["gpu", "cpu"]
    nodes: int = Field(ge=1, le=500, description="How many identical nodes.")
    gpus: int = Field(default=0, ge=0, le=64, description="nvidia.com/gpu per node.")
    cpu: str = Field(description="CPU capacity per node, a Kubernetes quantity such as '80'.")
    memory: str = Field(description="Memory per node, a Kubernetes quantity such as '512Gi'.")
    pods: int = Field(default=110, ge=1, le=10000)
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[Taint] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not _DNS_LABEL.match(value):
            raise ValueError("must be a DNS label: lower-case letters, digits and '-'")
        return value

    @field_validator("cpu", "memory")
    @classmethod
    def _quantity(cls, value: str) -> str:
        if not _QUANTITY.match(str(value)):
            raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. '80', '512Gi')")
        return str(value)

    @model_validator(mode="after")
    def _gpus_match_kind(self) -> PoolNodes:
        if self.kind == "gpu" and self.gpus == 0:
            raise ValueError("a gpu pool needs gpus ≥ 1 per node")
        if self.kind == "cpu" and self.gpus:
            raise ValueError("a cpu pool cannot have gpus")
        return self


class ClusterTopology(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pools: list[PoolNodes] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _unique_names(self) -> ClusterTopology:
        names = [pool.name for pool in self.pools]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"pool names must be unique; repeated: {', '.join(duplicates)}")
        return self


def _format_validation_error(path: Path, error: ValidationError) -> str:
    lines = [f"{path} is not a valid cluster file:"]
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"  {location}: {item['msg']}")
    return "\n".join(lines)


def load_topology(path: Path) -> ClusterTopology:
    try:
        raw: Any = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ControlPlaneError(
            f"Cluster file {path} does not exist.",
            hint="Pass --config with a file like examples/cluster.yaml.",
        ) from None
    except yaml.YAMLError as exc:
        raise ControlPlaneError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ControlPlaneError(
            f"{path} must be a mapping with a `pools` list, got {type(raw).__name__}.",
            hint="See examples/cluster.yaml.",
        )
    try:
        return ClusterTopology.model_validate(raw)
    except ValidationError as exc:
        raise ControlPlaneError(
            _format_validation_error(path, exc), hint="See examples/cluster.yaml."
        ) from None


def node_manifests(topology: ClusterTopology) -> list[dict[str, Any]]:
    """Node objects, with capacity in status so kwok's initialise stage keeps it as is."""
    manifests: list[dict[str, Any]] = []
    for pool in topology.pools:
        for index in range(pool.nodes):
            name = f"{pool.name}-{index}"
            capacity = {"cpu": pool.cpu, "memory": pool.memory, "pods": str(pool.pods)}
            if pool.gpus:
                capacity[GPU_RESOURCE] = str(pool.gpus)
            labels = {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                POOL_LABEL: pool.name,
                KIND_LABEL: pool.kind,
                **pool.labels,
            }
            manifests.append(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "labels": labels,
                        "annotations": {KWOK_ANNOTATION: "fake"},
                    },
                    "spec": {
                        "taints": [taint.model_dump() for taint in pool.taints],
                    },
                    "status": {
                        "capacity": capacity,
                        "allocatable": dict(capacity),
                        "nodeInfo": {
                            "kubeletVersion": "fake",
                            "architecture": "amd64",
                            "operatingSystem": "linux",
                        },
                    },
                }
            )
    return manifests
