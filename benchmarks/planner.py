"""Planner benchmark: plan() latency by pool count, and the exact MILP's cost against the greedy's.

Run: ``.venv/bin/python benchmarks/planner.py [--instances 40] [--seed 7]``

Both parts use the same seeded random instances. Latency is reported as a ratio to the 1-pool
median measured in the same run (absolute milliseconds are printed too, but they depend on the
machine); cost is reported as greedy cost ÷ MILP cost on instances both can solve (≥ 1 means the
greedy pays more), plus how often the greedy finds no placement where the MILP does.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

from rich.console import Console
from rich.progress import track
from rich.table import Table

from deepseek_operator.core.planning import solver
from deepseek_operator.core.planning.planner import (
    Load,
    PlanSpec,
    PoolOption,
    PoolReplicas,
    ReplicaBounds,
    Slo,
    plan,
)

POOL_COUNTS = (1, 3, 10, 30)
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def random_pools(rng: random.Random, count: int) -> list[PoolOption]:
    """A ladder of pools: GPUs fast and dear, CPUs slow and cheap, with noise."""
    pools = []
    for i in range(count):
        gpu = rng.random() < 0.6
        tokens = rng.uniform(100, 800) if gpu else rng.uniform(5, 40)
        price_per_token = rng.uniform(0.04, 0.12) if gpu else rng.uniform(0.03, 0.2)
        pools.append(
            PoolOption(
                name=f"{'gpu' if gpu else 'cpu'}-{i}",
                kind="gpu" if gpu else "cpu",  # type: ignore[arg-type]
                variant="r1",
                capacity_replicas=rng.randint(1, 16),
                replica_cost_per_hour=round(tokens * price_per_token, 2),
                tokens_per_second_per_replica=round(tokens, 1),
                tokens_per_second_per_request=rng.uniform(5, 60),
            )
        )
    return pools


def random_demand(rng: random.Random, pools: list[PoolOption]) -> float:
    total = sum(p.tokens_per_second_per_replica * p.capacity_replicas for p in pools)
    return rng.uniform(0.05, 0.6) * total


def spec_for(count: int) -> PlanSpec:
    return PlanSpec(
        replicas=ReplicaBounds(1, 8 * count),
        slo=Slo(min_tokens_per_second_per_request=None, headroom_fraction=0.2),
        load=Load(0, 0),
    )


def measure_latency(instances: int, seed: int) -> dict[int, list[float]]:
    rng = random.Random(seed)
    timings: dict[int, list[float]] = {}
    # The first plan() imports scipy (~0.3 s); keep that out of the 1-pool samples.
    warm_up = random_pools(random.Random(seed - 1), 1)
    plan(spec_for(1), warm_up, [], random_demand(random.Random(seed - 1), warm_up), NOW)
    for count in POOL_COUNTS:
        spec = spec_for(count)
        samples = []
        for _ in track(range(instances), description=f"plan() with {count:>2} pools"):
            pools = random_pools(rng, count)
            running = [PoolReplicas(pools[0].name, 1, 1)]
            demand = random_demand(rng, pools)
            start = time.perf_counter()
            plan(spec, pools, running, demand, NOW)
            samples.append(time.perf_counter() - start)
        timings[count] = samples
    return timings


def compare_costs(instances: int, seed: int) -> dict[int, tuple[list[float], int, int]]:
    rng = random.Random(seed + 1)
    results: dict[int, tuple[list[float], int, int]] = {}
    for count in POOL_COUNTS:
        ratios: list[float] = []
        greedy_missed = 0
        solved = 0
        for _ in track(range(instances), description=f"MILP vs greedy, {count:>2} pools"):
            pools = random_pools(rng, count)
            required = random_demand(rng, pools) * 1.2
            terms = [
                solver.PoolTerms(
                    p.replica_cost_per_hour, p.tokens_per_second_per_replica, 0, p.capacity_replicas
                )
                for p in pools
            ]
            exact = solver.solve_min_cost(terms, required, 1, 8 * count)
            if exact is None:
                continue
            solved += 1
            greedy = solver.greedy_min_cost(terms, required, 1, 8 * count)
            if greedy is None:
                greedy_missed += 1
                continue
            ratios.append(solver.objective(terms, greedy) / solver.objective(terms, exact))
        results[count] = (ratios, greedy_missed, solved)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=40, help="random instances per size")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    console = Console()

    timings = measure_latency(args.instances, args.seed)
    base = statistics.median(timings[POOL_COUNTS[0]])
    table = Table(title="plan() latency (ratio to the 1-pool median in this run)")
    for column in ("pools", "median ms", "p95 ms", "median ratio", "p95 ratio"):
        table.add_column(column, justify="right")
    for count, samples in timings.items():
        ordered = sorted(samples)
        median = statistics.median(ordered)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        table.add_row(
            str(count),
            f"{median * 1e3:.2f}",
            f"{p95 * 1e3:.2f}",
            f"{median / base:.2f}×",
            f"{p95 / base:.2f}×",
        )
    console.print(table)

    costs = compare_costs(args.instances, args.seed)
    table = Table(title="greedy cost ÷ MILP cost on the same instances (1.00 = as cheap)")
    for column in ("pools", "solved", "mean", "max", "greedy worse", "greedy found none"):
        table.add_column(column, justify="right")
    for count, (ratios, missed, solved) in costs.items():
        worse = sum(r > 1 + 1e-9 for r in ratios)
        table.add_row(
            str(count),
            str(solved),
            f"{statistics.fmean(ratios):.3f}" if ratios else "-",
            f"{max(ratios):.3f}" if ratios else "-",
            f"{worse}/{len(ratios)}",
            str(missed),
        )
    console.print(table)


if __name__ == "__main__":
    main()
