"""Replay benchmark: seconds to replay one day at a 15 s step, and the oracle's solve time.

Run: ``.venv/bin/python benchmarks/simulate.py [--peak 3000] [--seed 0] [--week-oracle-steps 20160]``

Inputs are the repository's example deployment (A100s by day, Xeon CPUs at night) and pools,
with the node counts of examples/cluster.yaml, on the seeded synthetic diurnal trace. Printed:

1. one day at 15 s (5,760 steps): seconds per policy, and each as a ratio to the static-gpu
   replay measured in the same run (the engine alone, no decisions to make), plus how many
   times faster than real time the planner replay runs;
2. the oracle MILP: solve seconds for one day at the exact 15 s step and for one week (coarsened
   to at most `--week-oracle-steps` steps), with the week as a ratio to the day;
3. the fair oracle (the tolerance band, by dynamic programming over placements) on the same two
   traces at 15 s: seconds, the week as a ratio to the day, and each as a ratio to the MILP's.

Absolute seconds depend on the machine (this one may be shared); the ratios are the result.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from deepseek_operator.api.resolution import lookup_time_zone  # noqa: E402
from deepseek_operator.cli.resource_files import load_deployment, load_pools, node_counts  # noqa: E402
from deepseek_operator.core.planning.inputs import PoolSetup  # noqa: E402
from deepseek_operator.core.replay.band_oracle import solve_band_oracle  # noqa: E402
from deepseek_operator.core.replay.comparison import (  # noqa: E402
    ReplaySettings,
    build_policies,
    deployment_rules,
    fair_requirement,
)
from deepseek_operator.core.replay.engine import Observation, demand_timeline, replay  # noqa: E402
from deepseek_operator.core.replay.inputs import replay_inputs  # noqa: E402
from deepseek_operator.core.replay.oracle import DEFAULT_MAX_STEPS, solve_oracle  # noqa: E402
from deepseek_operator.core.replay.traces import DiurnalShape, synthetic_diurnal  # noqa: E402

STEP_SECONDS = 15.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peak", type=float, default=3000.0, help="synthetic peak tokens/s")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--week-oracle-steps", type=int, default=DEFAULT_MAX_STEPS)
    args = parser.parse_args()
    console = Console()

    deployment = load_deployment(ROOT / "examples" / "r1-7b-gpu-by-day-cpu-at-night.yaml")
    profiles = load_pools(ROOT / "examples" / "pools.yaml")
    counts = node_counts([], ROOT / "examples" / "cluster.yaml")
    inputs = replay_inputs(deployment, profiles, {n: PoolSetup(c) for n, c in counts.items()})
    zone = lookup_time_zone(deployment.spec.schedule.time_zone)
    monday = datetime(2024, 1, 1, tzinfo=zone)
    shape = DiurnalShape(peak_tokens_per_second=args.peak)
    observation = Observation(15.0, 120.0)

    day = synthetic_diurnal(monday, 1.0, shape=shape, seed=args.seed)
    demand = demand_timeline(day, STEP_SECONDS, observation)
    settings = ReplaySettings(STEP_SECONDS, observation)
    policies, _ = build_policies(inputs, demand, settings)
    seconds: dict[str, float] = {}
    for policy in policies:
        started = time.perf_counter()
        replay(policy, demand, inputs.pools, inputs.rules)
        seconds[policy.name] = time.perf_counter() - started

    table = Table(title=f"One day at a {STEP_SECONDS:g} s step ({demand.steps:,} steps)")
    table.add_column("policy")
    table.add_column("seconds", justify="right")
    table.add_column("x static-gpu", justify="right")
    table.add_column("x real time", justify="right")
    baseline = seconds["static-gpu"]
    for name, value in seconds.items():
        table.add_row(name, f"{value:.2f}", f"{value / baseline:.1f}", f"{86_400 / value:,.0f}")
    console.print(table)

    oracle_table = Table(title="Oracle MILP (HiGHS through scipy.optimize.milp)")
    oracle_table.add_column("trace")
    oracle_table.add_column("oracle step", justify="right")
    oracle_table.add_column("variables", justify="right")
    oracle_table.add_column("status")
    oracle_table.add_column("solve seconds", justify="right")
    oracle_table.add_column("x one day", justify="right")
    band_table = Table(title="Fair oracle: the tolerance band by dynamic programming")
    for column in ("trace", "step", "placements", "solve seconds", "x one day", "x the MILP"):
        band_table.add_column(column, justify="left" if column == "trace" else "right")
    day_seconds = None
    band_day_seconds = None
    for label, days, max_steps in (
        ("one day", 1.0, 6000),
        ("one week", 7.0, args.week_oracle_steps),
    ):
        series = synthetic_diurnal(monday, days, shape=shape, seed=args.seed)
        timeline = demand_timeline(series, STEP_SECONDS, observation)
        rules = deployment_rules(inputs, timeline)
        solution = solve_oracle(timeline, inputs.pools, rules=rules, max_steps=max_steps)
        day_seconds = day_seconds or solution.solve_seconds
        oracle_table.add_row(
            label,
            f"{solution.step_seconds:g} s",
            f"{solution.variables:,}",
            solution.status,
            f"{solution.solve_seconds:.2f}",
            f"{solution.solve_seconds / day_seconds:.1f}",
        )
        low, high = fair_requirement(inputs, timeline)
        band = solve_band_oracle(timeline, inputs.pools, low=low, high=high, rules=rules)
        band_day_seconds = band_day_seconds or band.solve_seconds
        band_table.add_row(
            label,
            f"{band.step_seconds:g} s",
            f"{band.variables:,}",
            f"{band.solve_seconds:.2f}",
            f"{band.solve_seconds / band_day_seconds:.1f}",
            f"{band.solve_seconds / solution.solve_seconds:.2f}",
        )
    console.print(oracle_table)
    console.print(band_table)


if __name__ == "__main__":
    main()
