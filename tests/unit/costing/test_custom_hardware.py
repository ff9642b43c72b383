"""A machine the catalog does not list, described by its numbers: in a cost scenario and in a
PoolProfile, through `cost`, `plan` and `simulate`; a malformed one is named by field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from deepseek_operator.api.pool import PoolProfile
from deepseek_operator.cli import _register_commands, app
from deepseek_operator.core.costing.catalog import model_named
from deepseek_operator.core.costing.comparison import compare_pools, pool_hardware
from deepseek_operator.core.costing.scenario import ScenarioError, parse_scenario
from deepseek_operator.core.costing.throughput import bytes_read_per_output_token
from tests.paths import EXAMPLES

_register_commands()
runner = CliRunner()
DEPLOYMENT = EXAMPLES / "r1-7b-gpu-by-day-cpu-at-night.yaml"
POOLS = EXAMPLES / "pools.yaml"

MY_SERVER: dict[str, Any] = {
    "name": "my-epyc-box",
    "kind": "cpu",
    "memory_gib": 256,
    "memory_bandwidth_gb_per_s": 300,
    "cores": 64,
    "cpu_features": ["avx512f", "avx512_bf16", "avx512_vnni"],
    "price": 9000,
    "watts": 500,
}


def _scenario(hardware: object = None, **pool: object) -> dict[str, Any]:
    return {
        "currency": "USD",
        "cny_per_usd": 7.2,
        "period_years": 3,
        "demand": {
            "requests_per_day": 20000,
            "input_tokens_per_request": 500,
            "output_tokens_per_request": 300,
        },
        "cloud_api": {"input_price_per_million": 0.55, "output_price_per_million": 2.19},
        "pools": [
            {
                "name": "mine",
                "hardware": dict(MY_SERVER) if hardware is None else hardware,
                "model": "r1-distill-qwen-7b",
                "precision": "bf16",
                "devices": 2,
                "electricity_price_per_kwh": 0.15,
                **pool,
            }
        ],
    }


def _problems(data: object) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data)
    return caught.value.problems


def test_custom_hardware_is_priced_and_sized_from_its_own_numbers() -> None:
    scenario = parse_scenario(_scenario())
    pool = scenario.pools[0]
    hardware = pool_hardware(pool, scenario.currency)
    assert (hardware.name, hardware.kind, hardware.memory_bandwidth_gb_per_s) == (
        "my-epyc-box",
        "cpu",
        300,
    )
    assert (hardware.purchase_price, hardware.board_power_watts) == (9000, 500)
    result = compare_pools(scenario).pools[0]
    assert result.throughput is not None
    single = result.throughput.single_stream_tokens_per_s.value
    # native bf16 (avx512_bf16): the CPU bf16 efficiency, over the bytes one token reads
    ceiling = 300e9 / bytes_read_per_output_token(
        model_named("r1-distill-qwen-7b"), "bf16", 4096, "bf16"
    )
    assert 0.5 * ceiling < single <= ceiling
    without = parse_scenario(_scenario({**MY_SERVER, "cpu_features": []}))
    slower = compare_pools(without).pools[0].throughput
    assert slower is not None and slower.single_stream_tokens_per_s.value < single
    # twice the bandwidth, twice the speed: nothing comes from a catalog entry
    faster = parse_scenario(_scenario({**MY_SERVER, "memory_bandwidth_gb_per_s": 600}))
    doubled = compare_pools(faster).pools[0].throughput
    assert doubled is not None
    assert doubled.single_stream_tokens_per_s.value == pytest.approx(2 * single)


@pytest.mark.parametrize(
    ("hardware", "pool", "named"),
    [
        (
            {**MY_SERVER, "memory_bandwidth_gb_per_s": "fast"},
            {},
            "pools[0].hardware.memory_bandwidth_gb_per_s:",
        ),
        (
            {k: v for k, v in MY_SERVER.items() if k != "memory_gib"},
            {},
            "pools[0].hardware.memory_gib: required",
        ),
        ({**MY_SERVER, "cpu_features": ["sse9"]}, {}, "pools[0].hardware.cpu_features[0]:"),
        ({**MY_SERVER, "kind": "tpu"}, {}, "pools[0].hardware.kind:"),
        ({**MY_SERVER, "bandwidth": 1}, {}, "pools[0].hardware.bandwidth: unknown field"),
        ({k: v for k, v in MY_SERVER.items() if k != "price"}, {}, "pools[0]: hardware.price"),
        ({k: v for k, v in MY_SERVER.items() if k != "watts"}, {}, "pools[0]: hardware.watts"),
        (42, {}, "pools[0].hardware: Input should be a valid string"),
    ],
)
def test_malformed_custom_hardware_names_the_field(
    hardware: object, pool: dict[str, object], named: str
) -> None:
    problems = _problems(_scenario(hardware, **pool))
    assert any(p.startswith(named) for p in problems), problems


def test_a_rented_or_separately_priced_custom_pool_needs_no_hardware_price() -> None:
    bare = {k: v for k, v in MY_SERVER.items() if k not in ("price", "watts")}
    parse_scenario(_scenario(bare, purchase_price=8000, watts=450))
    rented = _scenario(bare, cloud_price_per_hour=1.2)
    del rented["pools"][0]["electricity_price_per_kwh"]
    parse_scenario(rented)


def test_cost_command_reads_custom_hardware_and_names_a_bad_field(tmp_path: Path) -> None:
    scenario = tmp_path / "mine.yaml"
    scenario.write_text(yaml.safe_dump(_scenario()))
    result = runner.invoke(app, ["cost", "--scenario", str(scenario), "--json"])
    assert result.exit_code == 0, result.output
    pool = json.loads(result.stdout)["pools"][0]
    assert pool["hardware"] == "my-epyc-box" and pool["fits"]
    scenario.write_text(yaml.safe_dump(_scenario({**MY_SERVER, "memory_gib": -1})))
    result = runner.invoke(app, ["cost", "--scenario", str(scenario)])
    assert result.exit_code == 2
    assert "pools[0].hardware.memory_gib" in result.output
    assert "Traceback" not in result.output


def _custom_pools(tmp_path: Path, **hardware: object) -> Path:
    """examples/pools.yaml with the CPU pool's catalog name replaced by its own numbers."""
    documents = list(yaml.safe_load_all(POOLS.read_text()))
    for document in documents:
        node = document["spec"]["hardware"]
        if node["kind"] == "cpu":
            del node["acceleratorModel"]
            node["cpuFeatures"] = ["avx512f", "avx512_vnni"]
            node.update(hardware)
            for key in [k for k, v in node.items() if v is None]:
                del node[key]
    path = tmp_path / "pools.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    return path


def test_pool_profile_without_a_catalog_name_needs_the_bandwidth() -> None:
    spec = yaml.safe_load(POOLS.read_text().split("---")[-1])["spec"]
    del spec["hardware"]["acceleratorModel"]
    PoolProfile.model_validate({"metadata": {"name": "mine"}, "spec": spec})
    del spec["hardware"]["memoryBandwidthGBps"]
    with pytest.raises(ValueError, match="memoryBandwidthGBps"):
        PoolProfile.model_validate({"metadata": {"name": "mine"}, "spec": spec})


def test_plan_places_replicas_on_a_custom_cpu_pool(tmp_path: Path) -> None:
    pools = _custom_pools(tmp_path)
    args = ["plan", "--deployment", str(DEPLOYMENT), "-p", str(pools), "--demand", "14"]
    result = runner.invoke(app, [*args, "--at", "2026-11-28T23:00+08:00", "--json"])
    assert result.exit_code == 0, result.output
    replicas = {p["pool"]: p["replicas"] for p in json.loads(result.stdout)["pools"]}
    assert replicas["cpu-xeon"] >= 1
    bad = _custom_pools(tmp_path, memoryBandwidthGBps=None)
    result = runner.invoke(app, ["plan", "--deployment", str(DEPLOYMENT), "-p", str(bad)])
    assert result.exit_code == 2
    assert "spec.hardware.memoryBandwidthGBps" in result.output
    assert "Traceback" not in result.output


def test_simulate_replays_a_custom_cpu_pool(tmp_path: Path) -> None:
    pools = _custom_pools(tmp_path)
    base = ["simulate", "-d", str(DEPLOYMENT), "-p", str(pools), "--synthetic", "diurnal"]
    result = runner.invoke(app, [*base, "--days", "0.25", "--policies", "ours", "--json"])
    assert result.exit_code == 0, result.output
    assert "ours" in result.stdout
    bad = _custom_pools(tmp_path, cpuFeatures=["sse9"])
    result = runner.invoke(app, [*base[:4], str(bad), "--synthetic", "diurnal", "--days", "1"])
    assert result.exit_code == 2
    assert "spec.hardware.cpuFeatures[0]" in result.output
    assert "Traceback" not in result.output
