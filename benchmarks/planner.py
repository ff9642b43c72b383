"""Planner benchmark: plan() latency by pool count against the MILP path, and exact vs greedy cost.

Run: ``.venv/bin/python benchmarks/planner.py [--instances 200] [--seed 7] [--clock cpu]``

Both parts use the same seeded random instances. Each instance is planned twice, alternately:
with the solver as it ships (branch-and-bound, enumeration, HiGHS only past the node budget)
and with the branch-and-bound switched off (``solver.BRANCH_AND_BOUND_NODES = 0``: enumeration
of small grids, HiGHS for the rest, as before). Latency is CPU time of the calling thread by
default (``--clock wall`` for wall-clock time; on a shared machine wall time mostly measures
the neighbours), reported as median, p95 and p99 and as a ratio to the MILP path measured in the
same run; "same plans" counts instances where both paths return the identical ``Plan``. Cost is
reported as greedy cost ÷ exact cost on instances both can solve (≥ 1 means the greedy pays
more), plus how often the greedy finds no placement where the exact solver does, and how often
the exact solver's cost equals HiGHS's.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


GOAL_POOLS = 10
GOAL_MEDIAN_MS = 2.0
GOAL_P99_MS = 5.0


@contextmanager
def milp_path() -> Iterator[None]:
    """The solver without its branch-and-bound: enumeration of small grids, HiGHS otherwise."""
    saved = solver.BRANCH_AND_BOUND_NODES
    solver.BRANCH_AND_BOUND_NODES = 0
    try:
        yield
    finally:
        solver.BRANCH_AND_BOUND_NODES = saved


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


Timings = dict[int, tuple[list[float], list[float], int]]


def measure_latency(instances: int, seed: int, clock: Callable[[], float]) -> Timings:
    """Per pool count: (samples as shipped, samples on the MILP path, plans that agree)."""
    rng = random.Random(seed)
    timings: Timings = {}
    # The first plan() imports scipy (~0.3 s); keep that out of the samples.
    warm_up = random_pools(random.Random(seed - 1), 3)
    warm_demand = random_demand(random.Random(seed - 1), warm_up)
    for count in (1, 3, 10):
        pools = random_pools(random.Random(seed - 1), count)
        with milp_path():
            plan(spec_for(count), pools, [], random_demand(random.Random(seed), pools), NOW)
    plan(spec_for(3), warm_up, [], warm_demand, NOW)
    for count in POOL_COUNTS:
        spec = spec_for(count)
        fast: list[float] = []
        milp: list[float] = []
        same = 0
        for index in track(range(instances), description=f"plan() with {count:>2} pools"):
            pools = random_pools(rng, count)
            running = [PoolReplicas(pools[0].name, 1, 1)]
            demand = random_demand(rng, pools)
            results = {}
            # Alternate which path goes first, so that neither always finds the caches warm.
            for path in ("fast", "milp") if index % 2 == 0 else ("milp", "fast"):
                if path == "milp":
                    with milp_path():
                        start = clock()
                        results[path] = plan(spec, pools, running, demand, NOW)
                        milp.append(clock() - start)
                else:
                    start = clock()
                    results[path] = plan(spec, pools, running, demand, NOW)
                    fast.append(clock() - start)
            same += results["fast"] == results["milp"]
        timings[count] = (fast, milp, same)
    return timings


def compare_costs(instances: int, seed: int) -> dict[int, tuple[list[float], int, int, int]]:
    rng = random.Random(seed + 1)
    results: dict[int, tuple[list[float], int, int, int]] = {}
    for count in POOL_COUNTS:
        ratios: list[float] = []
        greedy_missed = 0
        solved = 0
        as_highs = 0
        for _ in track(range(instances), description=f"exact vs greedy, {count:>2} pools"):
            pools = random_pools(rng, count)
            required = random_demand(rng, pools) * 1.2
            terms = [
                solver.PoolTerms(
                    p.replica_cost_per_hour, p.tokens_per_second_per_replica, 0, p.capacity_replicas
                )
                for p in pools
            ]
            exact = solver.solve_min_cost(terms, required, 1, 8 * count)
            with milp_path():
                highs = solver.solve_min_cost(terms, required, 1, 8 * count)
            if exact is None:
                as_highs += highs is None
                continue
            solved += 1
            if highs is not None:
                cheapest = solver.objective(terms, highs)
                as_highs += math.isclose(
                    solver.objective(terms, exact), cheapest, rel_tol=1e-9, abs_tol=1e-9
                )
            greedy = solver.greedy_min_cost(terms, required, 1, 8 * count)
            if greedy is None:
                greedy_missed += 1
                continue
            ratios.append(solver.objective(terms, greedy) / solver.objective(terms, exact))
        results[count] = (ratios, greedy_missed, solved, as_highs)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=200, help="random instances per size")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="CPU time of this thread (default) or wall-clock time",
    )
    args = parser.parse_args()
    console = Console(width=132)
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter

    timings = measure_latency(args.instances, args.seed, clock)
    table = Table(
        title=f"plan() latency, {args.clock} time: as shipped, and as a ratio to the MILP path "
        "(same instances, same run)"
    )
    columns = ("pools", "median ms", "p95 ms", "p99 ms", "MILP median ms", "MILP p99 ms")
    for column in (*columns, "median ÷ MILP", "p99 ÷ MILP", "same plans"):
        table.add_column(column, justify="right")
    for count, (fast, milp, same) in timings.items():
        median, p95, p99 = (statistics.median(fast), percentile(fast, 0.95), percentile(fast, 0.99))
        milp_median, milp_p99 = statistics.median(milp), percentile(milp, 0.99)
        table.add_row(
            str(count),
            f"{median * 1e3:.2f}",
            f"{p95 * 1e3:.2f}",
            f"{p99 * 1e3:.2f}",
            f"{milp_median * 1e3:.2f}",
            f"{milp_p99 * 1e3:.2f}",
            f"{median / milp_median:.3f}",
            f"{p99 / milp_p99:.3f}",
            f"{same}/{len(fast)}",
        )
    console.print(table)
    fast, milp, same = timings[GOAL_POOLS]
    median, p99 = statistics.median(fast) * 1e3, percentile(fast, 0.99) * 1e3
    met = median < GOAL_MEDIAN_MS and p99 < GOAL_P99_MS
    console.print(
        f"Goal at {GOAL_POOLS} pools (median < {GOAL_MEDIAN_MS:g} ms, p99 < {GOAL_P99_MS:g} ms): "
        f"{'met' if met else 'NOT met'}: median {median:.2f} ms, p99 {p99:.2f} ms; "
        f"{statistics.median(milp) / statistics.median(fast):.0f}× faster than the MILP path at "
        f"the median, {percentile(milp, 0.99) / percentile(fast, 0.99):.0f}× at p99; "
        f"{same}/{len(fast)} plans identical"
    )

    costs = compare_costs(args.instances, args.seed)
    table = Table(title="greedy cost ÷ exact cost on the same instances (1.00 = as cheap)")
    columns = ("pools", "solved", "mean", "max", "greedy worse", "greedy found none")
    for column in (*columns, "exact = HiGHS"):
        table.add_column(column, justify="right")
    for count, (ratios, missed, solved, as_highs) in costs.items():
        worse = sum(r > 1 + 1e-9 for r in ratios)
        table.add_row(
            str(count),
            str(solved),
            f"{statistics.fmean(ratios):.3f}" if ratios else "-",
            f"{max(ratios):.3f}" if ratios else "-",
            f"{worse}/{len(ratios)}",
            str(missed),
            f"{as_highs}/{args.instances}",
        )
    console.print(table)


if __name__ == "__main__":
    main()
