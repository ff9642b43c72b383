"""Catalog: every default carries a source, and lookups name the allowed values."""

from __future__ import annotations

import pytest

from deepseek_operator.core.costing.catalog import HARDWARE, MODELS, hardware_named, model_named
from tests.paths import REPO_ROOT

HARDWARE_SOURCED = (
    "memory_gib",
    "memory_bandwidth_gb_per_s",
    "board_power_watts",
    "purchase_price",
    "devices_per_node",
)
MODEL_SOURCED = (
    "parameters_billion",
    "active_parameters_billion",
    "layers",
    "kv_heads",
    "head_dim",
)


def test_catalog_holds_the_hardware_and_models_the_project_names() -> None:
    assert {
        "a100-80gb-sxm",
        "a100-80gb-pcie",
        "a100-40gb",
        "h100-sxm",
        "l40s",
        "rtx-4090",
        "mi300x",
        "xeon-8380",
        "epyc-9654",
    } <= set(HARDWARE)
    assert {
        "r1-distill-qwen-1.5b",
        "r1-distill-qwen-7b",
        "r1-distill-qwen-14b",
        "r1-distill-qwen-32b",
        "r1-distill-llama-8b",
        "r1-distill-llama-70b",
        "deepseek-r1",
    } <= set(MODELS)


@pytest.mark.parametrize("name", sorted(HARDWARE))
def test_every_hardware_default_has_a_source(name: str) -> None:
    spec = HARDWARE[name]
    needed = list(HARDWARE_SOURCED)
    if spec.cloud_price_per_hour_usd is not None:
        needed.append("cloud_price_per_hour_usd")
    for field in needed:
        assert spec.sources.get(field, "").strip(), f"{name}.{field} has no source"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_default_has_a_source(name: str) -> None:
    spec = MODELS[name]
    needed = list(MODEL_SOURCED)
    if spec.mla_latent_dim is not None:
        needed.append("mla_latent_dim")
    for field in needed:
        assert spec.sources.get(field, "").strip(), f"{name}.{field} has no source"


def test_moe_model_activates_fewer_parameters_than_it_holds() -> None:
    r1 = MODELS["deepseek-r1"]
    assert r1.active_parameters_billion == 37
    assert r1.parameters_billion == 671


def test_unknown_names_list_the_allowed_ones() -> None:
    with pytest.raises(KeyError, match=r"allowed: .*rtx-4090"):
        hardware_named("rtx-5090")
    with pytest.raises(KeyError, match=r"allowed: .*deepseek-r1"):
        model_named("llama-3")


def test_the_cost_model_doc_lists_every_catalog_entry() -> None:

    doc = (REPO_ROOT / "docs" / "cost-model.md").read_text()
    for name in (*HARDWARE, *MODELS):
        assert f"`{name}`" in doc, name
