"""docs/reference/api.md, rendered from the same structural schemas as the CRDs.

Generating the reference from the CRD schema (not from the pydantic classes directly) means the
page documents exactly what `kubectl explain` and the API server see.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from deepseek_operator.api import conditions
from deepseek_operator.api.base import API_VERSION
from deepseek_operator.api.crd import KINDS, JsonSchema, KindDefinition, structural_schema


@dataclass(frozen=True)
class FieldRow:
    path: str
    type: str
    required: bool
    default: str
    constraints: str
    description: str


@dataclass(frozen=True)
class RuleRow:
    path: str
    message: str
    cel: str


def field_rows(schema: JsonSchema, prefix: str) -> Iterator[FieldRow]:
    """One row per field, depth first, in declaration order."""
    required = set(schema.get("required", []))
    for name, child in schema.get("properties", {}).items():
        path = f"{prefix}.{name}"
        yield FieldRow(
            path=path,
            type=_type_name(child),
            required=name in required,
            default=_literal(child["default"]) if "default" in child else "",
            constraints=_constraints(child),
            description=child.get("description", ""),
        )
        yield from _nested_rows(child, path)


def _nested_rows(schema: JsonSchema, path: str) -> Iterator[FieldRow]:
    if schema.get("type") == "object":
        yield from field_rows(schema, path)
    elif schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        yield from _nested_rows(schema["items"], f"{path}[]")


def rule_rows(schema: JsonSchema, path: str) -> Iterator[RuleRow]:
    """Every CEL rule with the field it reports on."""
    for rule in schema.get("x-kubernetes-validations", []):
        yield RuleRow(f"{path}{rule.get('fieldPath', '')}", rule["message"], rule["rule"])
    for name, child in schema.get("properties", {}).items():
        yield from rule_rows(child, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from rule_rows(schema["items"], f"{path}[]")


def _type_name(schema: JsonSchema) -> str:
    kind = str(schema["type"])
    if kind == "array":
        return f"[]{_type_name(schema['items'])}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"map[string]{_type_name(schema['additionalProperties'])}"
    if "format" in schema:
        return f"{kind} ({schema['format']})"
    return kind


def _constraints(schema: JsonSchema) -> str:
    parts: list[str] = []
    if "enum" in schema:
        parts.append("one of " + ", ".join(_literal(value) for value in schema["enum"]))
    if "minimum" in schema:
        parts.append(
            f"{'>' if schema.get('exclusiveMinimum') else '≥'} {_number(schema['minimum'])}"
        )
    if "maximum" in schema:
        parts.append(
            f"{'<' if schema.get('exclusiveMaximum') else '≤'} {_number(schema['maximum'])}"
        )
    if "minLength" in schema:
        parts.append(f"length ≥ {schema['minLength']}")
    if "maxLength" in schema:
        parts.append(f"length ≤ {schema['maxLength']}")
    if "pattern" in schema:
        parts.append(f"matches `{schema['pattern']}`")
    if "minItems" in schema:
        parts.append(f"items ≥ {schema['minItems']}")
    if "maxItems" in schema:
        parts.append(f"items ≤ {schema['maxItems']}")
    if "minProperties" in schema:
        parts.append(f"entries ≥ {schema['minProperties']}")
    if "maxProperties" in schema:
        parts.append(f"entries ≤ {schema['maxProperties']}")
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "map":
        keys = ", ".join(schema.get("x-kubernetes-list-map-keys", []))
        parts.append(f"unique by {keys}")
    elif list_type == "set":
        parts.append("unique items")
    return "; ".join(parts)


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{}" if not value else str(value)
    return _number(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _field_table(rows: Iterator[FieldRow]) -> list[str]:
    lines = [
        "| Field | Type | Required | Default | Constraints | Description |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        default = f"`{row.default}`" if row.default else ""
        lines.append(
            f"| `{row.path}` | {row.type} | {'yes' if row.required else ''} | "
            f"{_cell(default)} | {_cell(row.constraints)} | {_cell(row.description)} |"
        )
    return lines


def _kind_section(kind: KindDefinition) -> list[str]:
    spec = structural_schema(kind.spec_model)
    status = structural_schema(kind.status_model)
    short = ", ".join(f"`{name}`" for name in kind.short_names)
    lines = [
        f"## {kind.kind}",
        "",
        kind.description.strip(),
        "",
        f"`apiVersion: {API_VERSION}`, `kind: {kind.kind}`, scope {kind.scope}, "
        f"plural `{kind.plural}`, short name {short}. Status is a subresource.",
        "",
        f"`kubectl get {kind.short_names[0]}` shows: "
        + ", ".join(
            f"{column.name}{' (with -o wide)' if column.priority else ''}"
            for column in kind.printer_columns
        )
        + ".",
        "",
        f"`metadata.name`: at most {kind.resource_model.name_max_length} characters matching "
        f"`{kind.resource_model.name_pattern}` (the operator derives object names and labels "
        "from it).",
        "",
        "### spec",
        "",
        *_field_table(field_rows(spec, "spec")),
        "",
    ]
    rules = list(rule_rows(spec, "spec"))
    if rules:
        lines += [
            "### Cross-field rules",
            "",
            "Checked by the API server (CEL) and by the operator's models, with the same message"
            " at the same field.",
            "",
            "| Reported at | Message | CEL |",
            "| --- | --- | --- |",
            *(f"| `{rule.path}` | {_cell(rule.message)} | `{_cell(rule.cel)}` |" for rule in rules),
            "",
        ]
    lines += ["### status", "", *_field_table(field_rows(status, "status")), ""]
    return lines


_INTRO = """\
# API reference

<!-- Generated by `deepseek-operator crds` from deepseek_operator.api; do not edit. -->

Two kinds in the API group `serving.deepseek-operator.io`, version `v1alpha1`. The pydantic
models in `deepseek_operator.api` are the single source: the CRDs in `crds/`, this page, and
the operator's own parsing all come from them, so a resource the API server accepts is one the
operator can read, and a resource it refuses is refused with the same message at the same field
by `kubectl apply` and by the operator's models.

Units are in the field names (`...Seconds`, `...GiB`, `...PerHour`, `...PerKWh`). Money is in
the PoolProfile's `cost.currency`; a deployment's figures are in `spec.costModel.currency`
(absent: its pools' shared currency, else USD), converted at the rates in
`spec.costModel.exchangeRates` and the operator's own table (USD, and CNY at the source
article's 7.0 per USD). Lists and strings are bounded so that the API server can price the
validation rules.
"""

_SCHEMA_MISTAKES: tuple[tuple[str, str], ...] = (
    (
        "`spec.schedule.timeZone` is well-formed but not in the IANA time zone database "
        "(e.g. `Mars/Olympus`)",
        conditions.REASON_UNKNOWN_TIME_ZONE,
    ),
    (
        "`spec.variants[].pool` names a PoolProfile that does not exist",
        conditions.REASON_POOL_NOT_FOUND,
    ),
    (
        "`spec.model.catalogKey` (or a variant's) is not in the model catalog",
        conditions.REASON_UNKNOWN_CATALOG_KEY,
    ),
    (
        "a variant's PoolProfile names a `hardware.acceleratorModel` that is not in the hardware "
        "catalog",
        conditions.REASON_UNKNOWN_ACCELERATOR,
    ),
    (
        "the model, at the variant's precision and context length, fits no listed pool (too "
        "large for its GPUs or memory even at the largest `tensorParallel`)",
        conditions.REASON_MODEL_FITS_NO_POOL,
    ),
    (
        "a pool's `cost.currency` is not the currency the deployment reports in and one of the "
        "two has no exchange rate (the operator's table holds USD and CNY; state others in "
        "`spec.costModel.exchangeRates`)",
        conditions.REASON_UNKNOWN_CURRENCY_RATE,
    ),
)
"""Mistakes only the operator can see, with the Ready=False reason it reports for each."""


def _mistakes_table() -> str:
    rows = ["| Mistake | Reason |", "| --- | --- |"]
    rows += [f"| {mistake} | `{reason}` |" for mistake, reason in _SCHEMA_MISTAKES]
    return "\n".join(rows)


_SCHEMA_CANNOT_CHECK = f"""\
## What the schema cannot check

Some mistakes depend on things outside the resource, which the API server cannot see when it
validates. The resource is accepted; the operator then reports the problem on the condition
`{conditions.READY}` with status `False`, one of these reasons, and a message naming the field:

{_mistakes_table()}

Every condition reason, with what to do about it, is in
[Troubleshooting](../troubleshooting.md).

A pool that exists but has no free capacity now is not a mistake: it is reported as
`{conditions.CAPACITY_AVAILABLE}=False` and the operator falls back to the next pool that fits.

## Conditions

A DeepSeekDeployment carries these condition types from the operator's first visit on (status
`Unknown` until decided): {", ".join(f"`{t}`" for t in conditions.DEPLOYMENT_CONDITION_TYPES)}.
`lastTransitionTime` changes only when a condition's `status` changes; `observedGeneration` is
the `metadata.generation` the decision was made from.
"""


def render_reference() -> str:
    """The whole Markdown page."""
    lines = [_INTRO]
    for kind in KINDS:
        lines += _kind_section(kind)
    lines.append(_SCHEMA_CANNOT_CHECK)
    return "\n".join(lines).rstrip("\n") + "\n"
