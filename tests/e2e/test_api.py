"""The generated CRDs in a real API server: examples apply, kubectl shows and explains them, bad
resources are refused at the same field as by the pydantic models, and valid specs round-trip."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from pydantic import BaseModel, ValidationError

from deepseek_operator.api import (
    GROUP,
    VERSION,
    DeepSeekDeployment,
    DeepSeekDeploymentSpec,
    DeepSeekDeploymentStatus,
    PoolProfile,
    PoolProfileSpec,
    Schedule,
)
from deepseek_operator.api.crd import KINDS
from tests import api_cases as cases
from tests.e2e.conftest import ClusterHandle

REPO = Path(__file__).resolve().parents[2]
MODELS: dict[str, type[BaseModel]] = {
    "DeepSeekDeployment": DeepSeekDeployment,
    "PoolProfile": PoolProfile,
}
FEW = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="session")
def api_crds(cluster: ClusterHandle) -> ClusterHandle:
    """The CRDs from crds/, applied once and Established."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    for kind in KINDS:
        cluster.kubectl(
            "wait", "--for=condition=Established", f"crd/{kind.crd_name}", "--timeout=60s"
        )
    return cluster


@pytest.fixture(scope="module")
def api_namespace(api_crds: ClusterHandle) -> Iterator[str]:
    name = f"api-{uuid.uuid4().hex[:8]}"
    api_crds.kubectl("create", "namespace", name)
    yield name
    api_crds.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def custom_objects(api_crds: ClusterHandle) -> Any:
    from kubernetes import client

    return client.CustomObjectsApi(api_crds.api_client())


def _manifests() -> dict[Path, list[dict[str, Any]]]:
    """examples/ files that hold Kubernetes objects (cluster.yaml is the local cluster's topology)."""
    found = {}
    for path in sorted((REPO / "examples").glob("*.yaml")):
        documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        if all(isinstance(d, dict) and "apiVersion" in d and "kind" in d for d in documents):
            found[path] = documents
    return found


def _plural(kind: str) -> str:
    return next(k.plural for k in KINDS if k.kind == kind)


def _create(custom_objects: Any, namespace: str, body: dict[str, Any], dry_run: bool) -> Any:
    extra = {"dry_run": "All"} if dry_run else {}
    plural = _plural(body["kind"])
    if body["kind"] == "PoolProfile":
        return custom_objects.create_cluster_custom_object(
            GROUP, VERSION, plural, body, field_validation="Strict", **extra
        )
    return custom_objects.create_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, body, field_validation="Strict", **extra
    )


def _refusal(custom_objects: Any, namespace: str, body: dict[str, Any]) -> tuple[set[str], str]:
    """The field paths and message with which the API server refuses `body` (dry run)."""
    from kubernetes.client.rest import ApiException

    try:
        _create(custom_objects, namespace, body, dry_run=True)
    except ApiException as refused:
        status = json.loads(refused.body)
        message: str = status.get("message", "")
        fields = {
            cause["field"]
            for cause in (status.get("details") or {}).get("causes", [])
            if cause.get("field") not in (None, "<nil>", "")
        }
        # Strict field validation reports unknown fields in the message, not as causes.
        fields |= set(re.findall(r'unknown field "([^"]+)"', message))
        return fields, message
    raise AssertionError(f"the API server accepted {body['kind']} {json.dumps(body['spec'])}")


def test_every_example_applies_cleanly_and_reads_back_as_written(api_crds: ClusterHandle) -> None:
    manifests = _manifests()
    assert {p.name for p in manifests} >= {
        "pools.yaml",
        "r1-7b-gpu-by-day-cpu-at-night.yaml",
        "r1-32b-a100-with-4090-fallback.yaml",
        "r1-70b-tensor-parallel.yaml",
        "r1-14b-recommend-only.yaml",
    }
    # Objects that already exist belong to someone else in this session: leave them behind.
    created = [
        document
        for documents in manifests.values()
        for document in documents
        if not _exists(api_crds, document)
    ]
    try:
        for path, documents in manifests.items():
            applied = api_crds.kubectl("apply", "-f", str(path))
            assert "Warning" not in applied.stderr, applied.stderr
            for document in documents:
                stored = api_crds.get_json(*_address(document))
                model = MODELS[document["kind"]]
                # Server defaults and pydantic defaults agree: the stored object parses to the
                # same model as the file.
                assert model.model_validate(stored).spec == model.model_validate(document).spec
    finally:
        for document in created:
            api_crds.kubectl("delete", *_address(document), "--ignore-not-found", "--wait=false")


def _address(document: dict[str, Any]) -> list[str]:
    """kubectl arguments naming one example object: kind, name and (if namespaced) namespace."""
    address = [document["kind"].lower(), document["metadata"]["name"]]
    if document["kind"] != "PoolProfile":
        address += ["-n", document["metadata"].get("namespace", "default")]
    return address


def _exists(cluster: ClusterHandle, document: dict[str, Any]) -> bool:
    found = cluster.kubectl("get", *_address(document), "--ignore-not-found", "-o", "name")
    return bool(found.stdout.strip())


def test_get_dsd_shows_printer_columns_from_status(
    api_crds: ClusterHandle, api_namespace: str
) -> None:
    resource = cases.deployment("columns")
    api_crds.kubectl("apply", "-n", api_namespace, "-f", "-", input=yaml.safe_dump(resource))
    generation = api_crds.get_json("dsd", "columns", "-n", api_namespace)["metadata"]["generation"]
    status = DeepSeekDeploymentStatus.model_validate(
        {
            "observedGeneration": generation,
            "pools": "a100=2,cpu-xeon=1",
            "desiredReplicas": 3,
            "readyReplicas": 2,
            "activeWindow": "business-hours",
            "costPerHour": 12.5,
            "savingsPercent": 41.5,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Planned",
                    "message": "placement meets the SLO",
                    "observedGeneration": generation,
                    "lastTransitionTime": "2026-11-28T09:00:00Z",
                }
            ],
        }
    )
    api_crds.kubectl(
        "patch", "dsd", "columns", "-n", api_namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status.to_json_dict()}),
    )  # fmt: skip
    table = api_crds.kubectl("get", "dsd", "-n", api_namespace).stdout.splitlines()
    header = table[0].split()
    assert header == [
        "NAME",
        "MODEL",
        "POOLS",
        "READY",
        "DESIRED",
        "WINDOW",
        "COST/H",
        "SAVINGS%",
        "AGE",
    ]
    row = table[1].split()
    assert row[:8] == [
        "columns",
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
        "a100=2,cpu-xeon=1",
        "2",
        "3",
        "business-hours",
        "12.5",
        "41.5",
    ]
    wide = api_crds.kubectl("get", "dsd", "-n", api_namespace, "-o", "wide").stdout
    assert "MODE" in wide.splitlines()[0] and "apply" in wide
    stored = api_crds.get_json("dsd", "columns", "-n", api_namespace)
    # A status write does not bump the generation, and the status reads back unchanged.
    assert stored["metadata"]["generation"] == generation
    assert DeepSeekDeployment.model_validate(stored).status == status
    # A spec change does, and a spec write cannot touch status.
    api_crds.kubectl(
        "patch", "dsd", "columns", "-n", api_namespace, "--type=merge",
        "-p", json.dumps({"spec": {"replicas": {"max": 5}}, "status": {"pools": "x"}}),
    )  # fmt: skip
    changed = api_crds.get_json("dsd", "columns", "-n", api_namespace)
    assert changed["metadata"]["generation"] == generation + 1
    assert changed["status"]["pools"] == "a100=2,cpu-xeon=1"


def test_explain_prints_the_field_docs(api_crds: ClusterHandle) -> None:
    explained = api_crds.kubectl("explain", "deepseekdeployment.spec.schedule").stdout
    flat = " ".join(explained.split())
    for name, field in Schedule.model_fields.items():
        alias = field.alias or name
        assert alias in flat, alias
        assert " ".join((field.description or "").split()) in flat, alias
    pools = api_crds.kubectl("explain", "pool.spec.cost.pue").stdout
    assert "Power usage effectiveness" in pools


@pytest.mark.parametrize("case", cases.INVALID_CASES, ids=lambda case: case.id)
def test_invalid_resource_is_refused_at_the_same_field_as_pydantic(
    case: Any, custom_objects: Any, api_namespace: str
) -> None:
    body = case.resource(f"bad-{uuid.uuid4().hex[:8]}")
    fields, message = _refusal(custom_objects, api_namespace, body)
    assert fields == {case.path}, message
    assert case.path in message
    with pytest.raises(ValidationError) as refused:
        MODELS[case.kind].model_validate(body)
    assert cases.error_paths(refused.value) == fields


@FEW
@given(spec=cases.valid_specs())
def test_valid_specs_round_trip_through_the_api_server(
    spec: dict[str, Any], custom_objects: Any, api_namespace: str
) -> None:
    model = DeepSeekDeploymentSpec.model_validate(spec)
    name = f"rt-{uuid.uuid4().hex[:10]}"
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DeepSeekDeployment",
        "metadata": {"name": name},
        "spec": json.loads(json.dumps(model.to_json_dict())),
    }
    _create(custom_objects, api_namespace, body, dry_run=False)
    try:
        stored = custom_objects.get_namespaced_custom_object(
            GROUP, VERSION, api_namespace, "deepseekdeployments", name
        )
        assert DeepSeekDeployment.model_validate(stored).spec == model
    finally:
        custom_objects.delete_namespaced_custom_object(
            GROUP, VERSION, api_namespace, "deepseekdeployments", name
        )


@FEW
@given(case=cases.invalid_specs())
def test_generated_invalid_specs_are_refused_by_both(
    case: tuple[dict[str, Any], str], custom_objects: Any, api_namespace: str
) -> None:
    spec, path = case
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DeepSeekDeployment",
        "metadata": {"name": f"bad-{uuid.uuid4().hex[:10]}"},
        "spec": spec,
    }
    fields, message = _refusal(custom_objects, api_namespace, body)
    assert fields == {path}, message
    with pytest.raises(ValidationError) as refused:
        DeepSeekDeployment.model_validate(body)
    assert cases.error_paths(refused.value) == {path}


@FEW
@given(spec=cases.valid_pool_specs())
def test_valid_pool_specs_round_trip_through_the_api_server(
    spec: dict[str, Any], custom_objects: Any
) -> None:
    model = PoolProfileSpec.model_validate(spec)
    name = f"rt-{uuid.uuid4().hex[:10]}"
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PoolProfile",
        "metadata": {"name": name},
        "spec": json.loads(json.dumps(model.to_json_dict())),
    }
    _create(custom_objects, "", body, dry_run=False)
    try:
        stored = custom_objects.get_cluster_custom_object(GROUP, VERSION, "poolprofiles", name)
        assert PoolProfile.model_validate(stored).spec == model
    finally:
        custom_objects.delete_cluster_custom_object(GROUP, VERSION, "poolprofiles", name)


@FEW
@given(case=cases.invalid_pool_specs())
def test_generated_invalid_pool_specs_are_refused_by_both(
    case: tuple[dict[str, Any], str], custom_objects: Any
) -> None:
    spec, path = case
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PoolProfile",
        "metadata": {"name": f"bad-{uuid.uuid4().hex[:10]}"},
        "spec": spec,
    }
    fields, message = _refusal(custom_objects, "", body)
    assert fields == {path}, message
    with pytest.raises(ValidationError) as refused:
        PoolProfile.model_validate(body)
    assert cases.error_paths(refused.value) == {path}


def _gib(quantity: str) -> float:
    units = {"Ki": 2**-20, "Mi": 2**-10, "Gi": 1, "Ti": 2**10}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor
    return float(quantity) / 2**30


def _tolerated(taint: dict[str, Any], tolerations: list[dict[str, Any]]) -> bool:
    """core/v1 toleration matching, enough for the example pools."""
    for toleration in tolerations:
        key_matches = toleration.get("key") in (None, taint["key"])
        value_matches = toleration.get("operator", "Equal") == "Exists" or toleration.get(
            "value", ""
        ) == taint.get("value", "")
        effect_matches = toleration.get("effect") in (None, taint["effect"])
        if key_matches and value_matches and effect_matches:
            return True
    return False


def test_example_pools_describe_the_cluster_nodes(api_crds: ClusterHandle) -> None:
    """Each example PoolProfile selects its pool's nodes and states their real capacity."""
    if api_crds.local_state is None:
        pytest.skip(
            "compares with examples/cluster.yaml, which only the local cluster is built from"
        )
    profiles = [
        PoolProfile.model_validate(d)
        for d in yaml.safe_load_all((REPO / "examples" / "pools.yaml").read_text(encoding="utf-8"))
    ]
    topology = yaml.safe_load((REPO / "examples" / "cluster.yaml").read_text(encoding="utf-8"))
    expected_nodes = {pool["name"]: pool["nodes"] for pool in topology["pools"]}
    for profile in profiles:
        selector = ",".join(f"{k}={v}" for k, v in profile.spec.node_selector.items())
        nodes = api_crds.get_json("nodes", "-l", selector)["items"]
        name = profile.metadata["name"]
        assert len(nodes) == expected_nodes[name], name
        hardware = profile.spec.hardware
        tolerations = [t.to_json_dict() for t in profile.spec.tolerations]
        for node in nodes:
            capacity = node["status"]["capacity"]
            assert int(capacity.get("nvidia.com/gpu", "0")) == (hardware.gpus_per_node or 0), name
            assert int(capacity["cpu"]) == hardware.cpu_cores, name
            assert _gib(capacity["memory"]) == hardware.memory_gib, name
            for taint in node["spec"].get("taints", []):
                assert _tolerated(taint, tolerations), (name, taint)
