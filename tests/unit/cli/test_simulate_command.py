"""`deepseek-operator simulate` end to end: real files in, table / JSON / PNG out, clear errors."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from deepseek_operator.cli import _register_commands, app
from deepseek_operator.cli.resource_files import load_deployment, load_pools
from deepseek_operator.core.planning.inputs import (
    DEFAULT_STARTUP_SECONDS,
    PlanningInputError,
    PoolSetup,
)
from deepseek_operator.core.replay.comparison import POLICY_NAMES
from deepseek_operator.core.replay.inputs import replay_inputs
from tests.paths import EXAMPLES, REPO_ROOT

DEPLOYMENT = EXAMPLES / "r1-7b-gpu-by-day-cpu-at-night.yaml"
POOLS = EXAMPLES / "pools.yaml"
CLUSTER = EXAMPLES / "cluster.yaml"
AZURE_TRACE = REPO_ROOT / "tests" / "data" / "azure-llm-2023-code.csv"

_register_commands()
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["simulate", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def base_args() -> list[str]:
    return ["-d", str(DEPLOYMENT), "-p", str(POOLS), "--cluster", str(CLUSTER)]


def test_example_inputs_become_pools_with_node_capacity_and_startup() -> None:
    inputs = replay_inputs(
        load_deployment(DEPLOYMENT),
        load_pools(POOLS),
        {"a100": PoolSetup(nodes=2), "cpu-xeon": PoolSetup(nodes=3, startup_seconds=45)},
    )
    by_name = {p.name: p for p in inputs.pools}
    assert set(by_name) == {"a100", "cpu-xeon"}
    # A 7B bf16 replica fits one 80 GB A100: 8 per node, 2 nodes.
    assert by_name["a100"].max_replicas == 16
    assert by_name["a100"].gpus_per_replica == 1
    assert by_name["a100"].startup_seconds == DEFAULT_STARTUP_SECONDS["gpu"]
    assert by_name["cpu-xeon"].startup_seconds == 45
    assert by_name["cpu-xeon"].gpus_per_replica == 0
    assert inputs.currency == "CNY"
    assert inputs.reconcile_interval_seconds == 15
    assert inputs.rules.max_surge_gpus == 2
    # Owned A100: 100,000 / (3 x 8760) capex + 0.4 kW x 1.3 x 1.2 power + 400,000 / 16 GPUs staff.
    expected = 100_000 / (3 * 8760) + 0.4 * 1.3 * 1.2 + 400_000 / 16 / 8760
    assert by_name["a100"].cost_per_replica_hour == pytest.approx(expected)


def test_unknown_pool_in_a_variant_is_named() -> None:
    deployment = load_deployment(DEPLOYMENT)
    with pytest.raises(PlanningInputError, match=r"spec.variants\[0\].pool: no PoolProfile"):
        replay_inputs(
            deployment, [p for p in load_pools(POOLS) if p.metadata["name"] != "a100"], {}
        )


def test_synthetic_day_prints_every_policy_with_the_oracle_note() -> None:
    code, output = invoke(*base_args(), "--synthetic", "diurnal", "--days", "0.25", "--step", "60")
    assert code == 0, output
    for name in POLICY_NAMES:
        assert name in output
    assert "oracle: optimal" in output
    assert "load-only: an HPA on pool a100" in output


def test_json_output_carries_each_policy_and_the_oracle(tmp_path: Path) -> None:
    plot = tmp_path / "replay.png"
    code, output = invoke(*base_args(), "--trace", str(AZURE_TRACE), "--json", "--plot", str(plot))
    assert code == 0, output
    payload = json.loads(output)
    names = [p["name"] for p in payload["policies"]]
    assert names == list(POLICY_NAMES)
    assert payload["rateWindowSeconds"] == 60  # the default load query's rate window
    assert payload["trace"]["durationSeconds"] == pytest.approx(3436, abs=15)
    # 247,000-odd generated tokens in the hour: the trace's GeneratedTokens column.
    generated = sum(
        int(line.rsplit(",", 1)[1]) for line in AZURE_TRACE.read_text().splitlines()[1:]
    )
    assert payload["trace"]["tokens"] == pytest.approx(generated)
    by_name = {p["name"]: p for p in payload["policies"]}
    oracle = by_name["oracle"]["cost"]
    for name, row in by_name.items():
        if row["unmetPercent"] <= by_name["oracle"]["unmetPercent"]:
            assert oracle <= row["cost"] * (1 + 1e-6), name
    assert payload["oracle"]["status"] == "optimal"
    assert (payload["oracle"]["method"], payload["fairOracle"]["method"]) == ("milp", "band")
    assert plot.stat().st_size > 10_000
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_json_timeline_gives_each_change_with_its_rule_and_demand() -> None:
    code, output = invoke(
        *base_args(), "--synthetic", "diurnal", "--days", "1", "--step", "60", "--json"
    )
    assert code == 0, output
    payload = json.loads(output)
    timeline = payload["timeline"]
    assert set(timeline) == set(POLICY_NAMES)
    ours = timeline["ours"]
    assert ours[0]["step"] == 0
    steps = [entry["step"] for entry in ours]
    assert steps == sorted(set(steps))
    rules = {entry["rule"] for entry in ours}
    # The example's night window cannot carry the night (3 CPU replicas at most).
    assert ours[0]["rule"] == "capacityShort"
    assert {"scaleUp", "scaleDown", "window"} <= rules
    for before, after in itertools.pairwise(ours):
        # every entry is a change of replicas or of rule
        assert (before["billed"], before["ready"], before["rule"]) != (
            after["billed"],
            after["ready"],
            after["rule"],
        )
    assert all(entry["demandPlannedTokensPerSecond"] is not None for entry in ours)
    # The replicas at each change add up to the policy's billed GPU-hours.
    gpu_steps = 0
    for entry, following in zip(ours, [*ours[1:], None], strict=True):
        last = following["step"] if following else int(payload["trace"]["durationSeconds"] / 60)
        gpu_steps += entry["billed"]["a100"] * (last - entry["step"])
    by_name = {p["name"]: p for p in payload["policies"]}
    assert gpu_steps / 60 == pytest.approx(by_name["ours"]["gpuHours"])
    assert {entry["rule"] for entry in timeline["oracle"]} == {"hindsight"}
    assert {entry["rule"] for entry in timeline["static-gpu"]} == {"fixed"}
    assert {e["rule"] for e in timeline["load-only"]} <= {
        "hpa:start",
        "hpa:steady",
        "hpa:tolerance",
        "hpa:stabilisation",
        "hpa:scaleUp",
        "hpa:scaleDown",
        "hpa:noMetrics",
    }


def test_a_bad_trace_stops_before_anything_is_simulated(tmp_path: Path) -> None:
    trace = tmp_path / "bad.csv"
    trace.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2024-01-01 10:00:00,10,5\n"
        "2024-01-01 10:00:01,10,-5\n"
    )
    code, output = invoke(*base_args(), "--trace", str(trace))
    assert code == 2
    assert "bad.csv:3: GeneratedTokens: must not be negative" in output
    assert "static-gpu" not in output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--nodes", "a100=two"], "--nodes: expected POOL=NUMBER"),
        (["--nodes", "gpu-x=2"], "nodes/startup given for unknown pools: gpu-x"),
        (["--policies", "static-gpu,magic"], "policies: unknown magic"),
        (["--load-only-pool", "nowhere"], "--load-only-pool: 'nowhere' is not a pool"),
        (["--tz", "Mars/Base"], "unknown IANA time zone 'Mars/Base'"),
    ],
)
def test_bad_options_are_named(extra: list[str], message: str) -> None:
    code, output = invoke(*base_args(), "--synthetic", "diurnal", "--days", "0.1", *extra)
    assert code == 2, output
    assert message in output


def _pools_with_a_eur_pool(tmp_path: Path) -> Path:
    documents = list(yaml.safe_load_all(POOLS.read_text()))
    for document in documents:
        if document["metadata"]["name"] == "cpu-xeon":
            document["spec"]["cost"]["currency"] = "EUR"
    path = tmp_path / "pools.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    return path


def test_a_pool_currency_without_a_rate_stops_with_how_to_state_one(tmp_path: Path) -> None:
    pools = _pools_with_a_eur_pool(tmp_path)
    code, output = invoke("-d", str(DEPLOYMENT), "-p", str(pools), "--synthetic", "diurnal")
    assert code == 2, output
    assert "no exchange rate for EUR, the currency of PoolProfile cpu-xeon's prices" in output
    assert "spec.costModel.exchangeRates" in output and "unitsPerUSD" in output
    assert "Traceback" not in output and "static-gpu" not in output

    document = yaml.safe_load(DEPLOYMENT.read_text())
    document["spec"]["costModel"] = {
        "currency": "CNY",
        "exchangeRates": [{"currency": "EUR", "unitsPerUSD": 0.5}],
    }
    stated = tmp_path / "dsd.yaml"
    stated.write_text(yaml.safe_dump(document))
    code, output = invoke(
        "-d", str(stated), "-p", str(pools), "--synthetic", "diurnal", "--days", "0.1", "--json"
    )
    assert code == 0, output
    costs = {p["name"]: p["costPerReplicaHour"] for p in json.loads(output)["pools"]}
    cny = replay_inputs(load_deployment(DEPLOYMENT), load_pools(POOLS), {})
    cpu_cny = next(p.cost_per_replica_hour for p in cny.pools if p.name == "cpu-xeon")
    # The same figure, now read as EUR: to USD at 0.5 EUR per USD, to CNY at 7.0.
    assert costs["cpu-xeon"] == pytest.approx(cpu_cny / 0.5 * 7.0)


def test_a_deployment_with_a_bad_field_names_it(tmp_path: Path) -> None:
    document = yaml.safe_load(DEPLOYMENT.read_text())
    document["spec"]["slo"]["headroomFraction"] = 3
    broken = tmp_path / "dsd.yaml"
    broken.write_text(yaml.safe_dump(document))
    code, output = invoke("-d", str(broken), "-p", str(POOLS), "--synthetic", "diurnal")
    assert code == 2
    assert "spec.slo.headroomFraction" in output


def test_trace_options_tile_scale_and_shift(tmp_path: Path) -> None:
    trace = tmp_path / "rate.csv"
    trace.write_text(
        "timestamp,tokens_per_second\n2024-01-01T09:00:00,100\n2024-01-01T10:00:00,300\n"
    )
    code, output = invoke(
        *base_args(),
        "--trace",
        str(trace),
        "--repeat-days",
        "0.5",
        "--load-scale",
        "2",
        "--step",
        "300",
        "--policies",
        "static-gpu,ours",
        "--json",
    )
    assert code == 0, output
    payload = json.loads(output)
    # Two hours (100 then 300 tok/s for the median spacing) tiled to 12 h, doubled.
    assert payload["trace"]["durationSeconds"] == 12 * 3600
    assert payload["trace"]["tokens"] == pytest.approx(2 * 6 * (100 + 300) * 3600)
    assert payload["trace"]["start"].startswith("2024-01-01T09:00:00+08:00")  # schedule's zone


def test_oracle_rules_follow_the_example_windows_and_slo() -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    import numpy as np

    from deepseek_operator.core.replay.comparison import deployment_rules
    from deepseek_operator.core.replay.engine import demand_timeline
    from deepseek_operator.core.replay.traces import TokenSeries

    inputs = replay_inputs(
        load_deployment(DEPLOYMENT),
        load_pools(POOLS),
        {"a100": PoolSetup(2), "cpu-xeon": PoolSetup(3)},
    )
    monday = datetime(2024, 1, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
    hourly = demand_timeline(TokenSeries(monday, 3600.0, np.zeros(24), "zero"), 3600.0)
    rules = deployment_rules(inputs, hourly)
    assert rules.allowed is not None and rules.max_ready is not None
    names = [p.name for p in inputs.pools]
    gpu, cpu = rules.allowed[names.index("a100")], rules.allowed[names.index("cpu-xeon")]
    # Night (20:00-08:00) is cpuOnly with at most 3 replicas; business hours prefer GPUs and the
    # 20 tok/s per-request SLO excludes the ~14 tok/s CPU variant.
    assert gpu.tolist() == [False] * 8 + [True] * 12 + [False] * 4
    assert cpu.tolist() == [True] * 8 + [False] * 12 + [True] * 4
    assert rules.max_ready.tolist() == [3] * 8 + [4] * 12 + [3] * 4


def test_jsonl_trace_in_milliseconds_and_a_long_replay_with_progress(tmp_path: Path) -> None:
    trace = tmp_path / "requests.jsonl"
    lines = [
        json.dumps({"timestamp": ms, "input_length": 900, "output_length": 300})
        for ms in range(0, 9 * 3600 * 1000, 10_000)  # one request every 10 s for 9 hours
    ]
    trace.write_text("\n".join(lines) + "\n")
    plot = tmp_path / "cpu.png"
    code, output = invoke(
        *base_args(),
        "--trace",
        str(trace),
        "--timestamp-unit",
        "0.001",
        "--start",
        "2024-01-02T09:00:00",
        "--policies",
        "static-gpu,static-cpu,load-only",
        "--plot",
        str(plot),
        "--plot-policy",
        "static-cpu",
        "--json",
    )
    assert code == 0, output
    payload = json.loads(output[output.index("{") :])
    # 30 generated tokens/s (prompt tokens weigh 0 by default), over 2,160 steps of 15 s.
    assert payload["trace"]["meanTokensPerSecond"] == pytest.approx(30.0, rel=0.01)
    assert payload["trace"]["start"] == "2024-01-02T09:00:00+08:00"
    assert [p["name"] for p in payload["policies"]] == ["static-gpu", "static-cpu", "load-only"]
    assert plot.exists()


def test_the_rate_window_follows_the_load_query():
    from deepseek_operator.cli.simulate import rate_window_from_query
    from tests.unit.planning.test_reconcile import example

    address = {"prometheusAddress": "http://prometheus:9090"}
    assert rate_window_from_query(example()) is None
    assert rate_window_from_query(example(load=address)) == 60.0
    own = {**address, "tokensPerSecondQuery": "sum(rate(my_tokens_total[2m]))"}
    assert rate_window_from_query(example(load=own)) == 120.0


def test_a_long_replay_logs_progress_lines_with_an_eta_when_stderr_is_no_terminal(
    tmp_path: Path,
) -> None:
    """A replay into a log file or a pipe still says how far it is and how long is left."""
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            *base_args(),
            "--synthetic",
            "diurnal",
            "--days",
            "1",
            "--policies",
            "load-only",
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("load-only: ")]
    assert lines, result.stderr
    assert "steps" in lines[0] and ("ETA" in lines[0] or "done" in lines[0])
    assert lines[-1].startswith("load-only: 5,760/5,760 steps (100%)") and "done" in lines[-1]


def test_millisecond_timestamps_read_as_seconds_are_named_not_replayed_quietly(
    tmp_path: Path,
) -> None:
    """One hour of requests stamped in milliseconds from 0, read as seconds, would replay 41
    days of 1970: the command says so and how to read them."""
    trace = tmp_path / "requests.jsonl"
    lines = [
        json.dumps({"timestamp": ms, "input_length": 900, "output_length": 300})
        for ms in range(0, 3600 * 1000, 60_000)
    ]
    trace.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(
        app,
        ["simulate", *base_args(), "--trace", str(trace), "--policies", "static-gpu", "--json"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "1970-01-01" in result.stderr
    assert "--timestamp-unit 0.001" in result.stderr and "spans 0.98 h" in result.stderr
    fixed = CliRunner().invoke(
        app,
        [
            "simulate",
            *base_args(),
            "--trace",
            str(trace),
            "--timestamp-unit",
            "0.001",
            "--start",
            "2024-01-02T09:00:00",
            "--policies",
            "static-gpu",
            "--json",
        ],
        env={"COLUMNS": "200"},
    )
    assert fixed.exit_code == 0, fixed.output
    assert "warning" not in fixed.stderr


def test_an_hourly_count_trace_scaled_to_a_peak_states_its_output_tokens_per_request(
    tmp_path: Path,
) -> None:
    trace = tmp_path / "hourly.csv"
    rows = [f"{h // 24},{h % 24},{1000 + 500 * (h % 24 >= 9)}" for h in range(48)]
    trace.write_text("day,hour,conversation\n" + "\n".join(rows) + "\n")
    code, output = invoke(
        *base_args(),
        "--trace",
        str(trace),
        "--peak-tokens-per-second",
        "300",
        "--policies",
        "static-gpu",
        "--json",
    )
    assert code == 0, output
    payload = json.loads(output[output.index("{") :])
    assert payload["trace"]["peakTokensPerSecond"] == pytest.approx(300.0)
    # 1,500 requests in the busiest hour at 300 tok/s: 720 output tokens per request.
    assert "hourly requests × 720 output tokens per request" in payload["trace"]["source"]
    assert payload["trace"]["durationSeconds"] == 48 * 3600


def test_plot_from_to_zooms_into_a_window_of_a_long_trace(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    import numpy as np

    from deepseek_operator.cli.simulate import plot_window
    from deepseek_operator.core.replay.traces import TokenSeries

    start = datetime(2024, 5, 12, tzinfo=UTC)
    series = TokenSeries(start, 60.0, np.ones(6 * 24 * 60), "six days")
    assert plot_window(series, 15.0, None, None, "UTC") is None
    # Day 2 from 06:00 to 18:00 at 15 s steps; a zone-less instant is read in the zone given.
    assert plot_window(series, 15.0, "2024-05-14T06:00", "2024-05-14T18:00", "UTC") == (
        (2 * 24 + 6) * 240,
        (2 * 24 + 18) * 240,
    )
    assert plot_window(series, 15.0, "2024-05-17T12:00+00:00", None, "UTC") == (
        (5 * 24 + 12) * 240,
        6 * 24 * 240,
    )

    plot = tmp_path / "zoom.png"
    code, output = invoke(
        *base_args(),
        "--synthetic",
        "diurnal",
        "--days",
        "2",
        "--policies",
        "load-only",
        "--plot",
        str(plot),
        "--plot-policy",
        "load-only",
        "--from",
        "2024-01-02T06:00",
        "--to",
        "2024-01-02T18:00",
    )
    assert code == 0, output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for args, refusal in (
        (["--from", "2024-01-02T06:00"], "give --plot too"),
        (["--plot", str(plot), "--from", "2023-01-01T00:00"], "outside the replay"),
        (
            ["--plot", str(plot), "--from", "2024-01-02T06:00", "--to", "2024-01-02T05:00"],
            "not after",
        ),
    ):
        code, output = invoke(
            *base_args(), "--synthetic", "diurnal", "--days", "2", "--policies", "load-only", *args
        )
        assert code != 0 and refusal in output, output
