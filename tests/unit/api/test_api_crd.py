"""The generated CRDs are structural, bounded, complete, and identical to the files in the repo."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from deepseek_operator.api import ApiModel
from deepseek_operator.api.crd import (
    KINDS,
    KindDefinition,
    UnsupportedSchemaError,
    custom_resource_definition,
    rendered_crds,
    structural_schema,
)
from deepseek_operator.api.reference_page import render_reference
from deepseek_operator.cli import _register_commands, app
from deepseek_operator.cli.crds import generated_files
from tests.paths import REPO_ROOT


def _nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path or "<root>", schema
    for name, child in schema.get("properties", {}).items():
        yield from _nodes(child, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _nodes(schema["additionalProperties"], f"{path}{{}}")


def _root(kind: KindDefinition) -> dict[str, Any]:
    root: dict[str, Any] = custom_resource_definition(kind)["spec"]["versions"][0]["schema"][
        "openAPIV3Schema"
    ]
    return root


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_schema_is_structural(kind: KindDefinition) -> None:
    text = yaml.safe_dump(_root(kind))
    assert "$ref" not in text and "$defs" not in text and "anyOf" not in text
    for path, node in _nodes(_root(kind)):
        if path.startswith(".metadata"):
            continue
        assert "type" in node, path
        assert node["type"] != "null", path
        assert "title" not in node, path
        assert not ("properties" in node and "additionalProperties" in node), path
        assert node.get("uniqueItems") is not True, path
        assert "default" not in node or node["default"] is not None, path
        assert isinstance(node.get("exclusiveMinimum", False), bool), path


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_every_list_and_string_is_bounded_and_every_field_described(kind: KindDefinition) -> None:
    for path, node in _nodes(_root(kind)):
        if path in ("<root>", ".metadata") or path.endswith("{}"):
            continue
        if node["type"] == "array":
            assert "maxItems" in node, path
        if node["type"] == "string" and not path.endswith("[]"):
            assert (
                "maxLength" in node
                or "enum" in node
                or "format" in node
                or path
                in (
                    ".apiVersion",
                    ".kind",
                )
            ), path
        if node["type"] == "object" and "additionalProperties" in node:
            assert "maxProperties" in node, path
        if not path.endswith("[]"):
            assert node.get("description"), f"{path} has no description"


def _models(model: type[ApiModel]) -> Iterator[type[ApiModel]]:
    yield model
    for info in model.model_fields.values():
        for candidate in _annotation_models(info.annotation):
            yield from _models(candidate)


def _annotation_models(annotation: Any) -> Iterator[type[ApiModel]]:
    if isinstance(annotation, type) and issubclass(annotation, ApiModel):
        yield annotation
    for argument in getattr(annotation, "__args__", ()):
        yield from _annotation_models(argument)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_every_cross_field_rule_reaches_the_crd(kind: KindDefinition) -> None:
    text = yaml.safe_dump(_root(kind), width=10_000)
    rules = {rule for model in _models(kind.spec_model) for rule in model.cross_field_rules}
    assert rules, "each kind has cross-field rules"
    for rule in rules:
        assert rule.cel in text
        assert rule.message in text


def test_deployment_crd_names_columns_and_subresource() -> None:
    crd = custom_resource_definition(KINDS[0])
    assert crd["metadata"]["name"] == "deepseekdeployments.serving.deepseek-operator.io"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"]["shortNames"] == ["dsd"]
    version = crd["spec"]["versions"][0]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    columns = [column["name"] for column in version["additionalPrinterColumns"]]
    assert columns == [
        "Model",
        "Pools",
        "Ready",
        "Desired",
        "Window",
        "Cost/h",
        "Savings%",
        "Mode",
        "Age",
    ]


def test_printer_columns_point_at_fields_that_exist() -> None:
    for kind in KINDS:
        root = _root(kind)
        for column in custom_resource_definition(kind)["spec"]["versions"][0][
            "additionalPrinterColumns"
        ]:
            node = root
            for step in column["jsonPath"].strip(".").split("."):
                node = (
                    node["properties"][step] if step != "creationTimestamp" else {"type": "string"}
                )
                if step == "metadata":
                    break
            if "metadata" not in column["jsonPath"]:
                expected = {"integer": "integer", "number": "number", "string": "string"}[
                    column["type"]
                ]
                assert node["type"] == expected, column


def test_pool_profile_is_cluster_scoped_with_short_name_pool() -> None:
    crd = custom_resource_definition(KINDS[1])
    assert crd["spec"]["scope"] == "Cluster"
    assert crd["spec"]["names"]["shortNames"] == ["pool"]


def test_conditions_are_a_map_keyed_by_type() -> None:
    for kind in KINDS:
        conditions = _root(kind)["properties"]["status"]["properties"]["conditions"]
        assert conditions["x-kubernetes-list-type"] == "map"
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]
        assert set(conditions["items"]["required"]) == {
            "type",
            "status",
            "lastTransitionTime",
            "reason",
        }


def test_unions_are_refused_rather_than_emitted() -> None:
    class Ambiguous(ApiModel):
        value: int | str

    with pytest.raises(UnsupportedSchemaError, match=r"\.value"):
        structural_schema(Ambiguous)


def test_committed_files_match_the_models() -> None:
    """Drift guard: run `deepseek-operator crds` after changing deepseek_operator.api."""
    chart_crds = REPO_ROOT / "charts" / "deepseek-operator" / "crds"
    for name, text in rendered_crds().items():
        assert (REPO_ROOT / "crds" / name).read_text(encoding="utf-8") == text, name
        assert (chart_crds / name).read_text(encoding="utf-8") == text, f"chart: {name}"
    assert sorted(p.name for p in chart_crds.iterdir()) == sorted(rendered_crds())
    assert (REPO_ROOT / "docs/reference/api.md").read_text(encoding="utf-8") == render_reference()


def test_crds_command_writes_and_checks(tmp_path: Path) -> None:
    _register_commands()
    runner = CliRunner()
    arguments = [
        "crds",
        "--output-dir",
        str(tmp_path / "crds"),
        "--chart-crds",
        str(tmp_path / "chart-crds"),
        "--reference",
        str(tmp_path / "api.md"),
    ]
    stale = runner.invoke(app, [*arguments, "--check"])
    assert stale.exit_code == 1
    written = runner.invoke(app, arguments)
    assert written.exit_code == 0, written.output
    for path, text in generated_files(
        tmp_path / "crds", tmp_path / "api.md", tmp_path / "chart-crds"
    ).items():
        assert path.read_text(encoding="utf-8") == text
    fresh = runner.invoke(app, [*arguments, "--check"])
    assert fresh.exit_code == 0, fresh.output


def test_reference_documents_every_spec_field_and_what_the_schema_cannot_check() -> None:
    page = render_reference()
    for kind in KINDS:
        for path, _ in _nodes(_root(kind)["properties"]["spec"], "spec"):
            if path != "spec" and not path.endswith(("[]", "{}")):
                assert f"`{path}`" in page, path
    assert "## What the schema cannot check" in page
    for reason in ("UnknownTimeZone", "PoolNotFound", "ModelFitsNoPool"):
        assert reason in page
