"""`deepseek-operator plan`: a what-if file, or a deployment and its pools, in; a plan out."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from deepseek_operator.cli import _register_commands, app
from deepseek_operator.cli.plan import load_what_if
from deepseek_operator.cli.resource_files import load_deployment
from deepseek_operator.core.planning.inputs import plan_spec
from tests.paths import EXAMPLES

EXAMPLE = EXAMPLES / "plan-what-if.yaml"
DEPLOYMENT = EXAMPLES / "r1-7b-gpu-by-day-cpu-at-night.yaml"
POOLS = EXAMPLES / "pools.yaml"
runner = CliRunner()
_register_commands()


def test_night_what_if_prints_the_plan_and_its_reason() -> None:
    result = runner.invoke(
        app, ["plan", str(EXAMPLE), "--demand", "14", "--at", "2026-11-28T23:00+08:00"]
    )
    assert result.exit_code == 0, result.output
    assert "cpu-xeon" in result.output
    assert "next window transition: 2026-11-29T07:00+08:00 (Asia/Shanghai)" in result.output
    assert "then outside windows (costOptimal)" in result.output
    assert "night window 22:00–07:00 Asia/Shanghai: 2 replicas on cpu-xeon" in result.output


def test_json_output_carries_the_numbers() -> None:
    result = runner.invoke(
        app,
        ["plan", str(EXAMPLE), "--demand", "300", "--at", "2026-11-30T10:00+08:00", "--json"],
    )
    assert result.exit_code == 0, result.output
    decided = json.loads(result.output)
    replicas = {p["pool"]: p["replicas"] for p in decided["pools"]}
    # Office window, preferGPU; the example runs 2 × rtx4090 and 360 tok/s are needed.
    assert replicas == {"a100": 0, "rtx4090": 3, "cpu-xeon": 0}
    assert decided["window"] == "office"
    assert decided["change"] == "scaleUp"
    assert decided["costPerHour"] == 24.0


def test_metrics_unavailable_when_demand_is_omitted() -> None:
    result = runner.invoke(app, ["plan", str(EXAMPLE), "--at", "2026-11-30T10:00+08:00", "--json"])
    assert result.exit_code == 0, result.output
    decided = json.loads(result.output)
    assert decided["demandTokensPerSecond"] is None
    assert "metrics unavailable" in decided["reason"]


def test_bad_file_names_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("replicaCostPerHour: 30", "replicaCostPerHour: -30"))
    result = runner.invoke(app, ["plan", str(bad), "--demand", "1", "--at", "2026-11-30T10:00Z"])
    assert result.exit_code == 2
    assert "pools[a100].replicaCostPerHour: Input should be greater than or equal to 0" in (
        result.output
    )
    bad.write_text(EXAMPLE.read_text().replace('end: "07:00"', 'end: "7am"'))
    result = runner.invoke(app, ["plan", str(bad), "--demand", "1", "--at", "2026-11-30T10:00Z"])
    assert result.exit_code == 2
    assert "windows[night].end" in result.output


def test_naive_instant_is_refused() -> None:
    result = runner.invoke(app, ["plan", str(EXAMPLE), "--demand", "1", "--at", "2026-11-30T10:00"])
    assert result.exit_code == 2
    assert "--at: needs a UTC offset" in result.output


# --- the what-if spec is the CRD's: its models, defaults, bounds and cross-field rules -----------


def _what_if(tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    document = yaml.safe_load(EXAMPLE.read_text())
    edit(document)
    path = tmp_path / "what-if.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _plan(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["plan", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_what_if_spec_is_read_as_the_deployment_spec_is() -> None:
    deployment = load_deployment(DEPLOYMENT)
    sections = deployment.spec.model_dump(
        by_alias=True, include={"replicas", "slo", "schedule", "load", "migration", "cost_model"}
    )
    pools = [{"name": "a100", "kind": "gpu", "variant": "v", "capacityReplicas": 1}]
    pools[0] |= {"replicaCostPerHour": 1, "tokensPerSecondPerReplica": 1}
    pools[0] |= {"tokensPerSecondPerRequest": 1}
    inputs = load_what_if({"spec": sections, "pools": pools})
    assert inputs.spec == plan_spec(deployment.spec)


def test_what_if_applies_the_crd_bounds_and_cross_field_rules(tmp_path: Path) -> None:
    def headroom(document: dict[str, Any]) -> None:
        document["spec"]["slo"]["headroomFraction"] = 2  # the CRD allows at most 1

    code, output = _plan(
        str(_what_if(tmp_path, headroom)), "--demand", "1", "--at", "2026-11-30T10:00Z"
    )
    assert code == 2
    assert "spec.slo.headroomFraction: Input should be less than or equal to 1" in output

    def min_available(document: dict[str, Any]) -> None:
        document["spec"]["migration"]["minAvailable"] = 9  # replicas.max is 8

    code, output = _plan(
        str(_what_if(tmp_path, min_available)), "--demand", "1", "--at", "2026-11-30T10:00Z"
    )
    assert code == 2
    assert (
        "spec.migration.minAvailable: migration.minAvailable must be less than or equal to "
        "replicas.max" in output
    )


def test_what_if_without_slo_takes_the_crd_default_speed(tmp_path: Path) -> None:
    def no_slo(document: dict[str, Any]) -> None:
        del document["spec"]["slo"]
        document["spec"]["schedule"]["windows"] = []
        document["running"] = {}

    code, output = _plan(
        str(_what_if(tmp_path, no_slo)), "--demand", "5", "--at", "2026-11-30T10:00Z", "--json"
    )
    assert code == 0, output
    decided = json.loads(output)
    # The CRD's default slo.minTokensPerSecondPerRequest is 10; cpu-xeon serves 9 per request.
    assert ["cpu-xeon", "9 tok/s per request < SLO 10"] in [
        [e["pool"], e["why"]] for e in decided["excluded"]
    ]


def test_what_if_baseline_pool_is_cost_models(tmp_path: Path) -> None:
    def baseline(document: dict[str, Any]) -> None:
        document["spec"]["costModel"] = {"baselinePool": "rtx4090"}

    code, output = _plan(
        str(_what_if(tmp_path, baseline)),
        "--demand",
        "14",
        "--at",
        "2026-11-28T23:00+08:00",
        "--json",
    )
    assert code == 0, output
    assert json.loads(output)["baselinePool"] == "rtx4090"


# --- a real DeepSeekDeployment and its PoolProfiles ---------------------------------------------


def _deployment_plan(at: str, *extra: str) -> dict[str, Any]:
    code, output = _plan(
        "--deployment", str(DEPLOYMENT), "--pools", str(POOLS), "--at", at, "--json", *extra
    )
    assert code == 0, output
    decided: dict[str, Any] = json.loads(output)
    return decided


def test_deployment_plans_gpu_by_day_and_cpu_at_night() -> None:
    day = _deployment_plan("2026-11-30T10:00+08:00", "--demand", "40")  # a Monday
    night = _deployment_plan("2026-11-30T23:00+08:00", "--demand", "40")
    used_by_day = {p["pool"] for p in day["pools"] if p["replicas"] > 0}
    used_at_night = {p["pool"] for p in night["pools"] if p["replicas"] > 0}
    assert (day["window"], day["policy"], used_by_day) == ("business-hours", "preferGPU", {"a100"})
    assert (night["window"], night["policy"], used_at_night) == ("night", "cpuOnly", {"cpu-xeon"})
    assert day["feasible"] and night["feasible"]
    assert day["currency"] == night["currency"] == "CNY"


def test_deployment_nodes_set_pool_capacity() -> None:
    def cpu_replicas(*extra: str) -> int:
        decided = _deployment_plan("2026-11-30T23:00+08:00", "--demand", "1000", *extra)
        assert not decided["feasible"]  # 1000 tok/s is more than the night's 3 CPU replicas give
        return {p["pool"]: p["replicas"] for p in decided["pools"]}["cpu-xeon"]

    one_node = cpu_replicas()
    assert cpu_replicas("--nodes", "cpu-xeon=2") == 3 > one_node  # 3 is the night's replicas.max


def test_deployment_running_replicas_are_the_starting_point() -> None:
    moved = _deployment_plan("2026-11-30T23:00+08:00", "--demand", "40", "--running", "a100=1")
    assert moved["change"] == "move"
    code, output = _plan(
        "--deployment", str(DEPLOYMENT), "--pools", str(POOLS), "--running", "h100=1"
    )
    assert code == 2
    assert "--running names pools that are not in pools: h100" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give a what-if FILE, or --deployment DSD.yaml with --pools POOLS.yaml"),
        (("--deployment", str(DEPLOYMENT)), "give a what-if FILE, or --deployment"),
        ((str(EXAMPLE), "--pools", str(POOLS)), "--pools: not with a what-if FILE"),
        (
            ("--deployment", str(DEPLOYMENT), "--pools", str(POOLS), "--nodes", "a100=1.5"),
            "--nodes: a100=1.5 is not a whole number of nodes",
        ),
        (
            ("--deployment", str(DEPLOYMENT), "--pools", str(POOLS), "--nodes", "gpu-x=2"),
            "nodes/startup given for unknown pools: gpu-x",
        ),
        (
            ("--deployment", str(EXAMPLE), "--pools", str(POOLS)),
            "must hold exactly one DeepSeekDeployment, found 0",
        ),
    ],
)
def test_bad_inputs_are_named(args: tuple[str, ...], message: str) -> None:
    code, output = _plan(*args, "--at", "2026-11-30T10:00Z")
    assert code == 2, output
    assert message in output


def test_a_pool_currency_without_a_rate_is_named_with_how_to_state_one(tmp_path: Path) -> None:
    documents = list(yaml.safe_load_all(POOLS.read_text()))
    documents[0]["spec"]["cost"]["currency"] = "EUR"
    pools = tmp_path / "pools.yaml"
    pools.write_text(yaml.safe_dump_all(documents))
    code, output = _plan("--deployment", str(DEPLOYMENT), "--pools", str(pools), "--demand", "5")
    assert code == 2, output
    assert "no exchange rate for EUR" in output and "(rates known: CNY, USD)" in output
    assert "spec.costModel.exchangeRates" in output
    assert "Traceback" not in output


def test_a_deployment_whose_time_zone_does_not_exist_is_named_not_a_traceback(
    tmp_path: Path,
) -> None:
    document = yaml.safe_load(DEPLOYMENT.read_text())
    document["spec"]["schedule"]["timeZone"] = "Mars/Olympus"
    deployment = tmp_path / "dsd.yaml"
    deployment.write_text(yaml.safe_dump(document))
    code, output = _plan("--deployment", str(deployment), "--pools", str(POOLS), "--demand", "5")
    assert code == 2, output
    assert "schedule.timeZone 'Mars/Olympus' is not an IANA zone" in output
    assert "Traceback" not in output


def test_repeated_pool_names_and_mixed_currencies_are_named_not_a_traceback(
    tmp_path: Path,
) -> None:
    def repeat(document: dict[str, Any]) -> None:
        document["pools"].append({**document["pools"][0], "kind": "cpu"})

    code, output = _plan(
        str(_what_if(tmp_path, repeat)), "--demand", "1", "--at", "2026-11-30T10:00Z"
    )
    assert code == 2, output
    assert "pools must have unique names; repeated: ['a100']" in output
    assert "Traceback" not in output

    def mix(document: dict[str, Any]) -> None:
        document["pools"][0]["currency"] = "USD"
        document["pools"][1]["currency"] = "CNY"

    code, output = _plan(str(_what_if(tmp_path, mix)), "--demand", "1", "--at", "2026-11-30T10:00Z")
    assert code == 2, output
    assert "pools[].currency" in output and "CNY" in output and "USD" in output
