"""`deepseek-operator calibrate` against a live server: a progress bar, a table, a valid entry."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from deepseek_operator.api.pool import PoolProfile
from deepseek_operator.cli import _register_commands, app

from .conftest import RunningServer

pytestmark = pytest.mark.serving

REPO = Path(__file__).resolve().parents[2]


def invoke(*args: str):  # type: ignore[no-untyped-def]
    _register_commands()
    return CliRunner().invoke(app, ["calibrate", *args])


def test_calibrate_prints_a_throughput_entry(random_server: RunningServer) -> None:
    result = invoke(
        "--url", random_server.base_url, "--precision", "fp32", "--levels", "1,4",
        "--requests-per-level", "4", "--max-tokens", "8",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    entry = yaml.safe_load(result.stdout)["throughput"][0]
    assert entry["model"] == random_server.settings.served_model_name
    assert entry["precision"] == "fp32"
    assert 0 < entry["tokensPerSecondSingleStream"] <= entry["tokensPerSecondSaturated"]
    assert entry["timeToFirstTokenSeconds"] > 0


def test_calibrate_updates_a_pool_profile_file(
    random_server: RunningServer, tmp_path: Path
) -> None:
    first = next(yaml.safe_load_all((REPO / "examples" / "pools.yaml").read_text()))
    target = tmp_path / "pool.yaml"
    target.write_text(yaml.safe_dump(first))
    for _ in range(2):  # a second run replaces the entry for the same model and precision
        result = invoke(
            "--url", random_server.base_url, "--precision", "bf16", "--levels", "1,2",
            "--requests-per-level", "2", "--max-tokens", "4", "--model", "r1-distill-qwen-7b",
            "--pool-profile", str(target),
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    profile = PoolProfile.model_validate(yaml.safe_load(target.read_text()))
    assert [(t.model, t.precision) for t in profile.spec.throughput] == [
        ("r1-distill-qwen-7b", "bf16")
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--precision", "fp64"], "precision:"),
        (["--precision", "bf16", "--levels", "2,4"], "levels:"),
        (["--precision", "bf16", "--levels", "one"], "levels:"),
        (["--precision", "bf16", "--url", "http://127.0.0.1:9"], "url:"),
    ],
)
def test_calibrate_bad_input_names_the_option(args: list[str], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.output
