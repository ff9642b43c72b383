"""CustomResourceDefinitions generated from the pydantic models, so the two can never disagree.

pydantic writes JSON Schema (draft 2020-12); the API server wants a *structural* OpenAPI v3
schema: no `$ref`, no `type: null`, no `additionalProperties: false` beside `properties`, a
`type` on every node, and `exclusiveMinimum` as a boolean. `structural_schema` translates one
into the other and refuses anything it cannot translate faithfully.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from deepseek_operator.api import deployment, pool, status
from deepseek_operator.api.base import GROUP, VERSION, ApiModel, ApiResource

JsonSchema = dict[str, Any]

_DROPPED_KEYS = frozenset({"title"})


class UnsupportedSchemaError(ValueError):
    """The model uses a JSON Schema construct with no structural OpenAPI equivalent."""


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    type: str
    json_path: str
    description: str
    priority: int = 0
    format: str = ""

    def as_manifest(self) -> dict[str, Any]:
        column: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "jsonPath": self.json_path,
            "description": self.description,
        }
        if self.format:
            column["format"] = self.format
        if self.priority:
            column["priority"] = self.priority
        return column


@dataclass(frozen=True)
class KindDefinition:
    """Everything that names a kind and how kubectl shows it, next to its spec/status models."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    scope: str
    resource_model: type[ApiResource]
    spec_model: type[ApiModel]
    status_model: type[ApiModel]
    printer_columns: tuple[PrinterColumn, ...]

    @property
    def description(self) -> str:
        return (self.resource_model.__doc__ or "").strip()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"

    @property
    def file_name(self) -> str:
        return f"{GROUP}_{self.plural}.yaml"


_AGE = PrinterColumn("Age", "date", ".metadata.creationTimestamp", "Time since creation.")

DEEPSEEK_DEPLOYMENT = KindDefinition(
    kind=deployment.KIND,
    plural=deployment.PLURAL,
    short_names=deployment.SHORT_NAMES,
    scope="Namespaced",
    resource_model=deployment.DeepSeekDeployment,
    spec_model=deployment.DeepSeekDeploymentSpec,
    status_model=status.DeepSeekDeploymentStatus,
    printer_columns=(
        PrinterColumn("Model", "string", ".spec.model.name", "Model served."),
        PrinterColumn("Pools", "string", ".status.pools", "Pools in use, with replicas."),
        PrinterColumn("Ready", "integer", ".status.readyReplicas", "Replicas Ready."),
        PrinterColumn("Desired", "integer", ".status.desiredReplicas", "Replicas planned."),
        PrinterColumn("Window", "string", ".status.activeWindow", "Time window in force."),
        PrinterColumn("Cost/h", "number", ".status.costPerHour", "Cost per hour now."),
        PrinterColumn(
            "Savings%", "number", ".status.savingsPercent", "Savings against all-GPU, percent."
        ),
        PrinterColumn("Mode", "string", ".spec.mode", "apply or recommend.", priority=1),
        _AGE,
    ),
)

POOL_PROFILE = KindDefinition(
    kind=pool.KIND,
    plural=pool.PLURAL,
    short_names=pool.SHORT_NAMES,
    scope="Cluster",
    resource_model=pool.PoolProfile,
    spec_model=pool.PoolProfileSpec,
    status_model=status.PoolProfileStatus,
    printer_columns=(
        PrinterColumn("Kind", "string", ".spec.hardware.kind", "gpu or cpu."),
        PrinterColumn("Accelerator", "string", ".spec.hardware.acceleratorModel", "Device model."),
        PrinterColumn("GPUs/Node", "integer", ".spec.hardware.gpusPerNode", "GPUs per node."),
        PrinterColumn("Nodes", "integer", ".status.nodes", "Nodes matching the selector."),
        PrinterColumn("Cost/h", "number", ".status.costPerHour", "Cost per node-hour."),
        _AGE,
    ),
)

KINDS: tuple[KindDefinition, ...] = (DEEPSEEK_DEPLOYMENT, POOL_PROFILE)


def structural_schema(model: type[ApiModel]) -> JsonSchema:
    """The model's JSON schema as a structural OpenAPI v3 schema for a CRD."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    definitions: Mapping[str, JsonSchema] = raw.pop("$defs", {})
    return _translate(raw, definitions, path="")


def _translate(node: JsonSchema, definitions: Mapping[str, JsonSchema], path: str) -> JsonSchema:
    node = copy.deepcopy(node)
    if "anyOf" in node:
        choices = [choice for choice in node.pop("anyOf") if choice != {"type": "null"}]
        if len(choices) != 1:
            raise UnsupportedSchemaError(f"{path or '<root>'}: union types cannot be structural")
        node = {**choices[0], **node}
        if node.get("default", ...) is None:
            del node["default"]
    if "$ref" in node:
        referenced = definitions[node.pop("$ref").rsplit("/", 1)[-1]]
        node = {**referenced, **node}
    if "const" in node:
        node["enum"] = [node.pop("const")]
    for bound in ("exclusiveMinimum", "exclusiveMaximum"):
        if isinstance(node.get(bound), int | float) and not isinstance(node[bound], bool):
            node["minimum" if bound == "exclusiveMinimum" else "maximum"] = node[bound]
            node[bound] = True
    if node.get("additionalProperties") is False:
        del node["additionalProperties"]
    for key in _DROPPED_KEYS:
        node.pop(key, None)
    if "properties" in node:
        node["properties"] = {
            name: _translate(child, definitions, f"{path}.{name}")
            for name, child in node["properties"].items()
        }
    if isinstance(node.get("items"), dict):
        node["items"] = _translate(node["items"], definitions, f"{path}[*]")
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = _translate(
            node["additionalProperties"], definitions, f"{path}[*]"
        )
    if "type" not in node:
        raise UnsupportedSchemaError(f"{path or '<root>'}: schema node without a type")
    return _in_reading_order(node)


_KEY_ORDER = (
    "type",
    "format",
    "description",
    "default",
    "enum",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "maxProperties",
    "required",
    "properties",
    "items",
    "additionalProperties",
)


def _in_reading_order(node: JsonSchema) -> JsonSchema:
    """Type and description first, then bounds, then children: how a reader scans a CRD."""
    rank = {key: index for index, key in enumerate(_KEY_ORDER)}
    return dict(sorted(node.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0])))


def custom_resource_definition(kind: KindDefinition) -> dict[str, Any]:
    """The full apiextensions.k8s.io/v1 CustomResourceDefinition for one kind."""
    spec = structural_schema(kind.spec_model)
    status = structural_schema(kind.status_model)
    root: JsonSchema = {
        "type": "object",
        "description": kind.description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "API version of this object."},
            "kind": {"type": "string", "description": "Kind of this object."},
            "metadata": kind.resource_model.metadata_schema(),
            "spec": spec,
            "status": status,
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.crd_name,
            "labels": {"app.kubernetes.io/name": "deepseek-operator"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.kind.lower(),
                "shortNames": list(kind.short_names),
                "categories": ["deepseek"],
            },
            "scope": kind.scope,
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [c.as_manifest() for c in kind.printer_columns],
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


HEADER = "# Generated by `deepseek-operator crds` from deepseek_operator.api; do not edit.\n"


class _PlainDumper(yaml.SafeDumper):
    """Writes repeated sub-schemas out in full: anchors and aliases confuse readers and tools."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_yaml(manifest: Mapping[str, Any]) -> str:
    """Deterministic YAML (stable key order, no line folding) so drift shows as a clean diff."""
    body = yaml.dump(
        dict(manifest), Dumper=_PlainDumper, sort_keys=False, width=10_000, allow_unicode=True
    )
    return HEADER + body


PEERING_GROUP = "kopf.dev"
PEERING_FILE = "kopf.dev_peerings.yaml"


def peering_definitions() -> list[dict[str, Any]]:
    """kopf's peering kinds: operator processes meet in one of these objects, so that only the
    highest-priority one acts (`ClusterKopfPeering` cluster-wide, `KopfPeering` per namespace).
    kopf writes each peer under `status`, which is free-form."""
    definitions = []
    for kind, scope in (("ClusterKopfPeering", "Cluster"), ("KopfPeering", "Namespaced")):
        plural = f"{kind.lower()}s"
        definitions.append(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {
                    "name": f"{plural}.{PEERING_GROUP}",
                    "labels": {"app.kubernetes.io/name": "deepseek-operator"},
                },
                "spec": {
                    "group": PEERING_GROUP,
                    "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
                    "scope": scope,
                    "versions": [
                        {
                            "name": "v1",
                            "served": True,
                            "storage": True,
                            "schema": {
                                "openAPIV3Schema": {
                                    "type": "object",
                                    "description": "Operators peering: who is alive, at what "
                                    "priority (written by kopf).",
                                    "properties": {
                                        "status": {
                                            "type": "object",
                                            "x-kubernetes-preserve-unknown-fields": True,
                                        }
                                    },
                                }
                            },
                        }
                    ],
                },
            }
        )
    return definitions


def rendered_crds() -> dict[str, str]:
    """File name → YAML text for every kind: the content `crds/` must hold."""
    files = {kind.file_name: render_yaml(custom_resource_definition(kind)) for kind in KINDS}
    peering = peering_definitions()
    files[PEERING_FILE] = HEADER + "".join(
        "---\n" + render_yaml(d).removeprefix(HEADER) for d in peering
    )
    return files
