"""`deepseek-operator demo` run to completion as a user runs it, with a shorter day: its own
local cluster, the chart installed with the real helm, the operator on the chart's
ServiceAccount token, a real Prometheus scraping the load source; then the PNG and the data it
was drawn from, and nothing of it left running."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.image

from deepseek_operator.controlplane import cluster
from deepseek_operator.controlplane.prometheus import find_prometheus
from tests.paths import REPO_ROOT

DAY_SECONDS = 60
"""The test's day: half the default, still long enough for every move the day has."""


def test_the_demo_walks_a_day_and_draws_it(tmp_path: Path) -> None:
    assert find_prometheus() is not None, "apt-get install prometheus (.ci/run does)"
    state, png = tmp_path / "state", tmp_path / "day.png"
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepseek_operator",
            "demo",
            f"--state-dir={state}",
            f"--day-seconds={DAY_SECONDS}",
            f"--output={png}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    took = time.monotonic() - started
    print(result.stdout[-4000:], result.stderr[-4000:], f"demo took {took:.0f} s", sep="\n")
    try:
        assert result.returncode == 0
        out = " ".join(result.stdout.split())  # rich wraps lines at the terminal's width
        assert "chart installed with the real helm" in out
        assert "as a local process" in out
        assert "system:serviceaccount:deepseek-system:deepseek-operator" in out
        assert "load from Prometheus" in out
        assert "saved" in out

        image = matplotlib.image.imread(png)
        assert image.ndim == 3 and image.shape[0] > 400 and image.shape[1] > 600
        data = json.loads(png.with_suffix(".json").read_text())
        hours = data["hours"]
        assert hours[0] < 2 and hours[-1] > 22, "the whole day was observed"
        ready = data["ready_replicas"]
        assert set(ready) == {"a100", "cpu-xeon"}

        def during(first: float, last: float, series: list[int]) -> list[int]:
            return [v for h, v in zip(hours, series, strict=True) if first <= h < last]

        # 06:00 is hour 0: business hours (08-20) are 2-14, the night from 14 on.
        assert max(during(5, 13, ready["a100"])) >= 2, "the day's load took a second A100"
        assert max(during(16, 24, ready["a100"])) == 0, "no A100 at night"
        assert min(during(16, 24, ready["cpu-xeon"])) >= 1, "the night on Xeon"
        assert max(during(5, 13, ready["cpu-xeon"])) == 0, "no Xeon in business hours"
        demand = [v for v in data["demand_tokens_per_second"] if v is not None]
        assert max(demand) > 1000 and min(demand) < 50, "the operator read the day's load"
        costs = [v for v in data["cost_per_hour"] if v is not None]
        baseline = [v for v in data["baseline_cost_per_hour"] if v is not None]
        assert costs and baseline and min(costs) < min(baseline)
        summary = data["summary"]
        assert summary["savings_percent"] > 0 and summary["cost"] < summary["baseline_cost"]
        assert len(summary["moves"]) >= 3
    finally:
        leftover = [c for c in cluster.status(state).components if c.running]
        if leftover:
            cluster.down(state)
    assert leftover == [], "the demo stops what it started"


def test_the_demo_is_run_from_the_repository() -> None:
    """`make demo` and the README run it from the clone, where the chart and samples are."""
    assert (REPO_ROOT / "charts" / "deepseek-operator" / "Chart.yaml").is_file()
