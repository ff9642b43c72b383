"""Warm `cluster up` time and the local cluster's resident memory.

Runs N up/down cycles of the example cluster with the binaries already built, and prints the
median time to a ready cluster, each phase's share of it (so a regression shows where it is,
whatever the machine's speed), and the resident memory of each component after the cluster
settles.

    python benchmarks/cluster_up.py [--runs 5] [--settle 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from deepseek_operator.controlplane import cluster
from deepseek_operator.controlplane.build import ensure_binaries
from resident import rss_mib

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cluster.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--settle", type=float, default=20.0, help="seconds before reading RSS")
    args = parser.parse_args()
    ensure_binaries()  # builds are not what this measures

    totals: list[float] = []
    phases: dict[str, list[float]] = {}
    rss: dict[str, float] = {}
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp:
            marks: list[tuple[str, float]] = []
            started = time.monotonic()

            def mark(message: str, marks: list[tuple[str, float]] = marks) -> None:
                marks.append((message, time.monotonic()))

            options = cluster.UpOptions(config=EXAMPLE, state_dir=Path(tmp))
            with cluster.running_cluster(options, progress=mark) as state:
                ready_at = time.monotonic()
                totals.append(ready_at - started)
                # each step lasts from its own message to the next one
                ends = [at for _, at in marks[1:]] + [ready_at]
                for (message, at), end in zip(marks, ends, strict=True):
                    phases.setdefault(message.split(":")[0], []).append(end - at)
                if run == args.runs - 1:
                    time.sleep(args.settle)
                    rss = {p.name: rss_mib(p.pid) for p in state.processes}
        print(f"run {run + 1}: ready in {totals[-1]:.2f} s")

    median = statistics.median(totals)
    print(f"\nwarm cluster up, median of {args.runs}: {median:.2f} s")
    print("step                                            median s   share of total")
    for message, values in phases.items():
        label = message if len(message) <= 45 else message[:42] + "..."
        print(
            f"  {label:45} {statistics.median(values):8.2f}   {statistics.median(values) / median:6.1%}"
        )
    print(f"\nresident memory after {args.settle:.0f} s idle:")
    for name, mib in rss.items():
        print(f"  {name:25} {mib:7.0f} MiB")
    print(f"  {'total':25} {sum(rss.values()):7.0f} MiB")


if __name__ == "__main__":
    main()
