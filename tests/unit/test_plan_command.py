"""`deepseek-operator plan`: the what-if file in, the planner's decision out (table or JSON)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from deepseek_operator.cli import _register_commands, app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plan-what-if.yaml"
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
    assert "pools.0.replicaCostPerHour" in result.output
    bad.write_text(EXAMPLE.read_text().replace('end: "07:00"', 'end: "7am"'))
    result = runner.invoke(app, ["plan", str(bad), "--demand", "1", "--at", "2026-11-30T10:00Z"])
    assert result.exit_code == 2
    assert "windows[night].end" in result.output


def test_naive_instant_is_refused() -> None:
    result = runner.invoke(app, ["plan", str(EXAMPLE), "--demand", "1", "--at", "2026-11-30T10:00"])
    assert result.exit_code == 2
    assert "--at needs a UTC offset" in result.output
