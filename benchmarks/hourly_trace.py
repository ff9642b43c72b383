"""Write a synthetic hourly-count trace (day, hour, requests) for long replays.

Public multi-day traces are few; this one has what a long replay must stand: a 45x swing
between the quietest and the busiest hour, weekends at 55 % of weekdays, 30 % growth over the
period and 6 % noise per hour, deterministic for a seed. The acceptance table in
docs/simulate.md replays its 61 days:

    python benchmarks/hourly_trace.py --days 61 > /tmp/hourly-61d.csv
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np


def hourly_counts(days: int, seed: int = 61) -> list[tuple[int, int, int]]:
    """(day, hour, requests) rows; day 0 is a Monday."""
    rng = np.random.default_rng(seed)
    trough = 1 / 27  # with weekends, growth and noise: a 45x swing over 61 days
    rows = []
    for day in range(days):
        week = 0.55 if day % 7 >= 5 else 1.0
        growth = 1.0 + 0.3 * day / max(1, days - 1)
        for hour in range(24):
            daily = ((1 + math.cos(2 * math.pi * (hour - 14) / 24)) / 2) ** 3
            level = (trough + (1 - trough) * daily * week) * growth
            noise = math.exp(float(rng.normal(0.0, 0.06)))
            rows.append((day, hour, round(100_000 * level * noise)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=61)
    parser.add_argument("--seed", type=int, default=61)
    args = parser.parse_args()
    sys.stdout.write("day,hour,requests\n")
    for day, hour, count in hourly_counts(args.days, args.seed):
        sys.stdout.write(f"{day},{hour},{count}\n")


if __name__ == "__main__":
    main()
