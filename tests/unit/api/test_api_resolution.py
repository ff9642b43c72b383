"""Broken references the schema cannot see are found, with the documented reason and field."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from deepseek_operator.api import DeepSeekDeploymentSpec
from deepseek_operator.api.reference_page import render_reference
from deepseek_operator.api.resolution import UnknownTimeZone, find_spec_problems, lookup_time_zone
from tests import api_cases as cases

POOLS = {"a100", "cpu-xeon", "rtx4090"}
CATALOG = {"r1-distill-qwen-7b", "r1-distill-qwen-32b"}


def _spec(change: Any = None) -> DeepSeekDeploymentSpec:
    spec = copy.deepcopy(cases.deployment()["spec"])
    if change:
        change(spec)
    return DeepSeekDeploymentSpec.model_validate(spec)


def _found(spec: DeepSeekDeploymentSpec) -> set[tuple[str, str]]:
    return {
        (p.reason, p.field)
        for p in find_spec_problems(spec, pool_names=POOLS, catalog_keys=CATALOG)
    }


def test_a_resolvable_spec_has_no_problems() -> None:
    assert _found(_spec()) == set()


def test_time_zone_that_matches_the_pattern_but_does_not_exist() -> None:
    spec = _spec(lambda s: s["schedule"].update(timeZone="Mars/Olympus_Mons"))
    assert _found(spec) == {("UnknownTimeZone", "spec.schedule.timeZone")}


def test_a_time_zone_directory_is_a_problem_not_a_crash() -> None:
    spec = _spec(lambda s: s["schedule"].update(timeZone="America"))
    assert _found(spec) == {("UnknownTimeZone", "spec.schedule.timeZone")}


def test_lookup_time_zone_returns_the_zone() -> None:
    assert lookup_time_zone("Asia/Shanghai").key == "Asia/Shanghai"
    assert lookup_time_zone("UTC").key == "UTC"


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "America", "", "/etc/localtime", "../x"])
def test_lookup_time_zone_refuses_what_the_database_lacks(name: str) -> None:
    with pytest.raises(UnknownTimeZone, match="unknown IANA time zone") as raised:
        lookup_time_zone(name)
    assert raised.value.name == name
    assert isinstance(raised.value, ValueError)


def test_pool_that_does_not_exist() -> None:
    spec = _spec(lambda s: s["variants"][1].update(pool="h100"))
    assert _found(spec) == {("PoolNotFound", "spec.variants[1].pool")}


def test_a_baseline_pool_is_a_variant_so_a_missing_one_is_reported_at_its_variant() -> None:
    with pytest.raises(ValidationError, match="baselinePool must be the pool of one of"):
        _spec(lambda s: s.update(costModel={"baselinePool": "h100"}))
    spec = _spec(lambda s: s.update(costModel={"baselinePool": "cpu-xeon"}))
    found = {(p.reason, p.field) for p in find_spec_problems(spec, pool_names={"a100"})}
    assert found == {("PoolNotFound", "spec.variants[1].pool")}


def test_a_pool_whose_accelerator_is_not_in_the_hardware_catalog() -> None:
    problems = find_spec_problems(
        _spec(),
        pool_names=POOLS,
        accelerators={"a100": "a100-80gb-sxm", "cpu-xeon": "xeon-9999"},
        hardware_names={"a100-80gb-sxm", "xeon-8380"},
    )
    assert [(p.reason, p.field) for p in problems] == [
        ("UnknownAccelerator", "spec.variants[1].pool")
    ]
    assert "'xeon-9999'" in problems[0].message and "xeon-8380" in problems[0].message


def test_unknown_catalog_keys_in_model_and_fallback() -> None:
    def change(spec: dict[str, Any]) -> None:
        spec["model"]["catalogKey"] = "r1-distill-qwen-8b"
        spec["variants"][1]["model"] = {
            "name": "x",
            "catalogKey": "tiny",
            "weights": {"path": "/m.gguf"},
        }

    assert _found(_spec(change)) == {
        ("UnknownCatalogKey", "spec.model.catalogKey"),
        ("UnknownCatalogKey", "spec.variants[1].model.catalogKey"),
    }
    without_catalog = find_spec_problems(_spec(change), pool_names=POOLS)
    assert without_catalog == []


def test_every_reason_found_here_is_documented() -> None:
    page = render_reference()
    for reason in ("UnknownTimeZone", "PoolNotFound", "UnknownCatalogKey"):
        assert f"`{reason}`" in page
