"""The pydantic models refuse every bad resource of the shared table at the expected field, and
accept and round-trip every generated valid spec."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from pydantic import BaseModel, ValidationError

from deepseek_operator.api import (
    DeepSeekDeployment,
    DeepSeekDeploymentSpec,
    PoolProfile,
    PoolProfileSpec,
)
from tests import api_cases as cases
from tests.paths import REPO_ROOT

MODELS: dict[str, type[BaseModel]] = {
    "DeepSeekDeployment": DeepSeekDeployment,
    "PoolProfile": PoolProfile,
}


def test_bases_are_valid() -> None:
    DeepSeekDeployment.model_validate(cases.deployment())
    PoolProfile.model_validate(cases.pool())


def test_the_table_is_large_enough() -> None:
    assert len(cases.INVALID_CASES) >= 25
    assert len({case.id for case in cases.INVALID_CASES}) == len(cases.INVALID_CASES)


@pytest.mark.parametrize("case", cases.INVALID_CASES, ids=lambda case: case.id)
def test_invalid_resource_is_refused_at_the_field(case: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        MODELS[case.kind].model_validate(case.resource("bad"))
    assert cases.error_paths(refused.value) == {case.path}


def test_cross_field_error_carries_the_shared_message() -> None:
    bad = cases.deployment()
    bad["spec"]["replicas"] = {"min": 5, "max": 2}
    with pytest.raises(ValidationError) as refused:
        DeepSeekDeployment.model_validate(bad)
    assert refused.value.errors()[0]["msg"] == "min must be less than or equal to max"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=cases.valid_specs())
def test_valid_specs_round_trip_through_json(spec: dict[str, Any]) -> None:
    model = DeepSeekDeploymentSpec.model_validate(spec)
    wire = json.loads(json.dumps(model.to_json_dict()))
    again = DeepSeekDeploymentSpec.model_validate(wire)
    assert again == model
    assert again.to_json_dict() == wire


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases.invalid_specs())
def test_generated_invalid_specs_are_refused_at_the_field(case: tuple[dict[str, Any], str]) -> None:
    spec, path = case
    with pytest.raises(ValidationError) as refused:
        DeepSeekDeploymentSpec.model_validate(spec)
    assert path in {f"spec.{p}" for p in cases.error_paths(refused.value)}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=cases.valid_pool_specs())
def test_valid_pool_specs_round_trip_through_json(spec: dict[str, Any]) -> None:
    model = PoolProfileSpec.model_validate(spec)
    wire = json.loads(json.dumps(model.to_json_dict()))
    again = PoolProfileSpec.model_validate(wire)
    assert again == model
    assert again.to_json_dict() == wire


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases.invalid_pool_specs())
def test_generated_invalid_pool_specs_are_refused_at_the_field(
    case: tuple[dict[str, Any], str],
) -> None:
    spec, path = case
    with pytest.raises(ValidationError) as refused:
        PoolProfileSpec.model_validate(spec)
    assert {f"spec.{p}" for p in cases.error_paths(refused.value)} == {path}


def test_defaults_fill_a_minimal_spec() -> None:
    spec = DeepSeekDeploymentSpec.model_validate(
        {
            "model": {"name": "m", "catalogKey": "r1-distill-qwen-7b", "weights": {"path": "/m"}},
            "variants": [{"pool": "a100"}],
        }
    )
    assert (spec.replicas.min, spec.replicas.max) == (1, 4)
    assert spec.variants[0].engine == "vllm" and spec.variants[0].precision == "bf16"
    assert spec.schedule.time_zone == "UTC" and spec.schedule.windows == []
    assert spec.migration.min_available == 1 and spec.reconcile_interval_seconds == 15
    assert spec.mode == "apply" and spec.paused is False


def _example_documents() -> list[tuple[str, dict[str, Any]]]:
    documents = []
    for path in sorted((REPO_ROOT / "examples").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(document, dict) and "apiVersion" in document:
                documents.append((f"{path.name}:{document['metadata']['name']}", document))
    return documents


@pytest.mark.parametrize(
    "document", [d for _, d in _example_documents()], ids=[n for n, _ in _example_documents()]
)
def test_examples_are_valid(document: dict[str, Any]) -> None:
    MODELS[document["kind"]].model_validate(document)


def test_examples_cover_both_kinds_and_every_documented_scenario() -> None:
    documents = [d for _, d in _example_documents()]
    pools = {d["metadata"]["name"] for d in documents if d["kind"] == "PoolProfile"}
    assert pools == {"a100", "rtx4090", "cpu-xeon"}
    deployments = [
        DeepSeekDeployment.model_validate(d) for d in documents if d["kind"] == "DeepSeekDeployment"
    ]
    assert any(v.tensor_parallel == 4 for d in deployments for v in d.spec.variants)
    assert any(d.spec.mode == "recommend" for d in deployments)
    for deployment in deployments:
        assert {v.pool for v in deployment.spec.variants} <= pools


def test_cluster_example_pools_match_pool_profiles() -> None:
    cluster = yaml.safe_load((REPO_ROOT / "examples" / "cluster.yaml").read_text(encoding="utf-8"))
    node_labels = {p["name"]: {**p.get("labels", {})} for p in cluster["pools"]}
    for name, document in _example_documents():
        if document["kind"] != "PoolProfile":
            continue
        profile = PoolProfile.model_validate(document)
        pool = document["metadata"]["name"]
        labels = node_labels[pool]
        assert profile.spec.node_selector.items() <= labels.items(), name
        other_pools = [p for p in node_labels if p != pool]
        for other in other_pools:
            assert not profile.spec.node_selector.items() <= node_labels[other].items(), name


class _ReadOnlyView(Mapping[str, Any]):
    """A mapping that is not a dict, like the body views an operator framework hands out."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        return _ReadOnlyView(value) if isinstance(value, dict) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def test_from_object_accepts_mappings_that_are_not_dicts() -> None:
    view = _ReadOnlyView(cases.deployment())
    with pytest.raises(ValidationError):
        DeepSeekDeployment.model_validate(view)
    assert DeepSeekDeployment.from_object(view) == DeepSeekDeployment.model_validate(
        cases.deployment()
    )
