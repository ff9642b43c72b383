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

from deepseek_operator.controlplane.errors import ClusterConfigError
from deepseek_operator.textfiles import FileProblem, parse_yaml, read_utf8

POOL_LABEL = "deepseek-operator.io/pool"
KIND_LABEL = "deepseek-operator.io/kind"
ACCELERATOR_LABEL = "accelerator"
GPU_RESOURCE = "nvidia.com/gpu"
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
RESERVED_LABELS = frozenset({POOL_LABEL, KIND_LABEL, "kubernetes.io/hostname", "type"})

_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def _check_label_key(key: str) -> str:
    """A qualified name, as the API server demands of label and taint keys."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        raise ValueError(f"{key!r}: the prefix before '/' must be a DNS subdomain")
    if len(name) > 63 or not _LABEL_NAME.match(name):
        raise ValueError(
            f"{key!r} is not a label key: at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit (optionally after a 'prefix/')"
        )
    return key


def _check_label_value(value: str) -> str:
    if value and (len(value) > 63 or not _LABEL_NAME.match(value)):
        raise ValueError(
            f"{value!r} is not a label value: at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return value


class Taint(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    key: str = Field(min_length=1, max_length=253)
    value: str = Field(default="", max_length=63)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]

    @field_validator("key")
    @classmethod
    def _key_syntax(cls, key: str) -> str:
        return _check_label_key(key)

    @field_validator("value")
    @classmethod
    def _value_syntax(cls, value: str) -> str:
        return _check_label_value(value)


class PoolNodes(BaseModel):
    """One pool of identical simulated nodes."""

    # strict: `nodes: "3"` or `gpus: true` is a typo to report, not a value to coerce
    model_config = ConfigDict(extra="forbid", strict=True)

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

    @field_validator("cpu", "memory", mode="before")
    @classmethod
    def _quantity(cls, value: object) -> str:
        # Kubernetes takes `cpu: 80` as well as `cpu: "80"`; YAML reads the former as a number.
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not _QUANTITY.match(value):
            raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. '80', '512Gi')")
        return value

    @field_validator("labels")
    @classmethod
    def _label_syntax(cls, labels: dict[str, str]) -> dict[str, str]:
        for key, value in labels.items():
            _check_label_key(key)
            _check_label_value(value)
            if key in RESERVED_LABELS:
                raise ValueError(
                    f"label {key!r} is set by the cluster itself and cannot be overridden"
                )
        return labels

    @model_validator(mode="after")
    def _gpus_match_kind(self) -> PoolNodes:
        if self.kind == "gpu" and self.gpus == 0:
            raise ValueError("a gpu pool needs gpus ≥ 1 per node")
        if self.kind == "cpu" and self.gpus:
            raise ValueError("a cpu pool cannot have gpus")
        return self


class ClusterTopology(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

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
    """The cluster file, validated; `ClusterConfigError` names the path and what is wrong."""
    if not path.exists():
        raise ClusterConfigError(
            f"Cluster file {path} does not exist.",
            hint="Pass --config with a file like examples/cluster.yaml.",
        )
    try:
        raw: Any = parse_yaml(read_utf8(path))
    except FileProblem as exc:
        raise ClusterConfigError(str(exc), hint="See examples/cluster.yaml.") from None
    except yaml.YAMLError as exc:
        raise ClusterConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ClusterConfigError(
            f"{path} must be a mapping with a `pools` list, got {type(raw).__name__}.",
            hint="See examples/cluster.yaml.",
        )
    try:
        return ClusterTopology.model_validate(raw)
    except ValidationError as exc:
        raise ClusterConfigError(
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
