"""Arbiter benchmark: the cluster-wide split's cost against reconcile-order placement, and its time.

Run: ``.venv/bin/python benchmarks/arbiter.py [--deployments 100 200] [--orders 5] [--seed 16]
[--priorities 1]``

Each fleet is seeded and random: every deployment may use A100 (1.0/h per replica, 1,000 tok/s)
and one or two of L40S (2.0/h, 450 tok/s) and RTX 4090 (3.0/h, 500 tok/s), prices varied ±25 %
per deployment, a demand of 200–4,000 tok/s, and 1–64 replicas. The fallback pools are ample;
A100 holds half (then a quarter) of the GPUs the deployments would take alone. The baseline,
measured in the same run, is what per-deployment planning does: each deployment in a random
reconcile order taking its own optimum from what the ones before it left (`arbiter.sequential`),
over several orders. Reported: the arbiter's cost ÷ the baseline's (< 1 means it saves), and the
arbiter's solve time (which also depends on the machine) with its ratio to the baseline's.

``--priorities N`` gives each deployment a random priority 0 … N−1. The arbiter then keeps each
tier's optimum while a lower tier is solved (the higher deployments may move among equally good
placements to make room), and the baseline places the deployments highest priority first, in a
random order within a priority, as per-deployment planning that honours priorities would.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

from rich.console import Console
from rich.table import Table

from deepseek_operator.core.planning.arbiter import Claim, ClaimOption, arbitrate, sequential

PRICES = {"a100": 1.0, "l40s": 2.0, "rtx4090": 3.0}
TOKENS = {"a100": 1000.0, "l40s": 450.0, "rtx4090": 500.0}


def fleet(
    rng: random.Random, count: int, scarcity: float, priorities: int = 1
) -> tuple[dict[str, int], list[Claim]]:
    claims = []
    for index in range(count):
        pools = ["a100", *rng.sample(["l40s", "rtx4090"], rng.randint(1, 2))]
        options = tuple(
            ClaimOption(p, PRICES[p] * rng.uniform(0.8, 1.25), TOKENS[p], 1, 64) for p in pools
        )
        claims.append(
            Claim(
                f"ns/d{index:04d}",
                options,
                required=rng.uniform(200, 4000),
                min_replicas=1,
                max_replicas=64,
                priority=rng.randrange(priorities),
            )
        )
    wanted = sum(max(1, math.ceil(c.required / TOKENS["a100"])) for c in claims)
    return {"a100": int(wanted * scarcity), "l40s": 100_000, "rtx4090": 100_000}, claims


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, nargs="+", default=[100, 200])
    parser.add_argument("--orders", type=int, default=5)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--priorities", type=int, default=1, help="random priorities 0 … N−1")
    args = parser.parse_args()
    if args.priorities < 1 or args.orders < 1 or min(args.deployments) < 1:
        parser.error("--priorities, --orders and --deployments must be at least 1")
    rng = random.Random(args.seed)
    import scipy.optimize  # noqa: F401  (its import is not the arbiter's time)

    tiers = f", {args.priorities} priorities" if args.priorities > 1 else ""
    table = Table(title=f"Arbiter vs reconcile order (same fleets, same run{tiers})")
    for column in ("deployments", "A100 free / wanted", "arbiter $/h", "reconcile order $/h"):
        table.add_column(column, justify="right")
    table.add_column("arbiter ÷ order (mean, best)", justify="right")
    table.add_column("solve s (÷ order)", justify="right")
    for count in args.deployments:
        for scarcity in (0.5, 0.25):
            pools, claims = fleet(rng, count, scarcity, args.priorities)
            started = time.perf_counter()
            joint = arbitrate(pools, claims)
            seconds = time.perf_counter() - started
            costs, times = [], []
            priority = {c.key: c.priority for c in claims}
            for _ in range(args.orders):
                order = [c.key for c in claims]
                rng.shuffle(order)
                order.sort(key=lambda key: -priority[key])  # stable: random within a priority
                started = time.perf_counter()
                baseline = sequential(pools, claims, order)
                times.append(time.perf_counter() - started)
                assert baseline.shortfall == 0 and joint.shortfall == 0
                costs.append(baseline.cost)
            mean = statistics.mean(costs)
            table.add_row(
                str(count),
                f"{scarcity:.0%}",
                f"{joint.cost:,.1f}",
                f"{min(costs):,.1f}–{max(costs):,.1f}",
                f"{joint.cost / mean:.3f}, {joint.cost / min(costs):.3f}",
                f"{seconds:.2f} ({seconds / statistics.mean(times):.1f}×)",
            )
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
