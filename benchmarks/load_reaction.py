"""Load in the loop on the local cluster: reaction time, and Prometheus queries per interval.

Starts a local cluster, a real Prometheus on 127.0.0.1 scraping every second a load source that
speaks the model server's metric names, and `deepseek-operator run`, then measures:

* **reaction time**: a deployment on the example A100 pool (up to 16 replicas) whose demand
  ramps up and down across every replica threshold, --cycles times. For each threshold a
  watcher sees crossed in Prometheus (its query evaluated every 0.1 s, the same rate the
  operator's batched query reads), the time from that sample being queryable to the watch
  seeing the Deployment patched to the replica count it calls for. The operator's
  reconcileIntervalSeconds stays at 15: the reaction must not wait for it.
* **queries per interval**: --deployments DeepSeekDeployments (mode recommend: no pods) all
  reading load from the same Prometheus, for --seconds; Prometheus' own count of instant
  queries and the operator's, per 15 s interval.

With --dashboard PNG, Prometheus also scrapes the operator's /metrics, the deployment moves to
the CPU pool and back (its window's policy changed) after the reaction cycles, and the Grafana
dashboard is rendered from the run's data (benchmarks/render_dashboard.py).

    python benchmarks/load_reaction.py [--cycles 3] [--deployments 100] [--seconds 90]
        [--dashboard dashboard.png]
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.prometheus_support import (  # noqa: E402
    LoadSource,
    PrometheusServer,
    free_port,
)

from kubectl_watch import (  # noqa: E402
    Kube,
    ReplicaWatch,
    operator_metrics,
    percentile,
    sample_cluster,
    start_operator,
)
from render_dashboard import render  # noqa: E402

HEADROOM = 0.2
INTERVAL = 15


def dsd(name: str, address: str, *, policy: str, replicas: int, mode: str) -> dict[str, Any]:
    return {
        "apiVersion": "serving.deepseek-operator.io/v1alpha1",
        "kind": "DeepSeekDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {
                "name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
                "catalogKey": "r1-distill-qwen-7b",
                "weights": {"path": "/models/DeepSeek-R1-Distill-Qwen-7B"},
            },
            "variants": [
                {"pool": "a100", "engine": "transformers", "precision": "bf16"},
                {"pool": "cpu-xeon", "engine": "transformers", "precision": "int8"},
            ],
            "replicas": {"min": 1, "max": replicas},
            "slo": {
                "minTokensPerSecondPerRequest": 1,
                "maxTimeToFirstTokenSeconds": 60,
                "headroomFraction": HEADROOM,
            },
            "schedule": {"timeZone": "UTC", "defaultPolicy": policy},
            "load": {
                "prometheusAddress": address,
                "scaleUpStabilizationSeconds": 0,
                "scaleDownStabilizationSeconds": 0,
            },
            "migration": {
                "minAvailable": 1,
                "maxSurgeGPUs": 64,
                "cooldownSeconds": 0,
                "minDwellSeconds": 0,
            },
            "reconcileIntervalSeconds": INTERVAL,
            "mode": mode,
        },
    }


class Sampler:
    """Evaluates a query every 0.1 s in the background."""

    def __init__(self, prometheus: PrometheusServer, promql: str) -> None:
        import threading

        self.values: list[tuple[float, float]] = []
        self.stop = threading.Event()
        self.prometheus, self.promql = prometheus, promql
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                value = self.prometheus.value(self.promql)
            except OSError:
                value = None
            if value is not None:
                self.values.append((time.time(), value))
            time.sleep(0.1)


def replicas_for(tokens: float, per_replica: float, most: int) -> int:
    return max(1, min(most, math.ceil(tokens * (1 + HEADROOM) / per_replica - 1e-9)))


def reaction(
    kube: Kube, source: LoadSource, prometheus: PrometheusServer, cycles: int, moves: bool
) -> list[float]:
    most = 16
    source.set("default", "bench", "a100", tokens_per_second=1.0)
    kube.apply([dsd("bench", prometheus.address, policy="gpuOnly", replicas=most, mode="apply")])
    deadline = time.monotonic() + 120
    per_replica = 0.0
    while time.monotonic() < deadline and not per_replica:
        entries = kube.json("get", "dsd", "bench").get("status", {}).get("capacityCorrection", [])
        per_replica = next(
            (e["calibratedTokensPerSecond"] for e in entries if e["pool"] == "a100"), 0.0
        )
        time.sleep(1)
    assert per_replica, "no calibrated figure in status"
    query = 'sum(rate(deepseek_server_generation_tokens_total{deployment="bench"}[1m]))'
    watch, sampler = ReplicaWatch(kube, clock=time.time), Sampler(prometheus, query)
    high = (most - 0.5) * per_replica / (1 + HEADROOM)
    try:
        time.sleep(70)  # the rate window fills at the low level
        for _ in range(cycles):
            for level in (high, 1.0):
                source.set("default", "bench", "a100", tokens_per_second=level)
                time.sleep(75)  # the 1 m rate window ramps across every threshold
        if moves:  # to the CPU pool and back, for the dashboard's moves
            source.set("default", "bench", "a100", tokens_per_second=0.0)
            source.set("default", "bench", "cpu-xeon", tokens_per_second=20.0)
            for policy in ("cpuOnly", "gpuOnly"):
                patch = {"spec": {"schedule": {"timeZone": "UTC", "defaultPolicy": policy}}}
                kube("patch", "dsd", "bench", "--type=merge", "-p", json.dumps(patch))
                time.sleep(150)
    finally:
        sampler.stop.set()
        watch.close()
    # When each replica count became implied by a queryable sample, and when a count that
    # covers it was written: at least as many on the way up, at most as many on the way down
    # (a fast ramp may take the operator past a count without writing it).
    measured = []
    implied_before = None
    for at, value in sampler.values:
        implied = replicas_for(value, per_replica, most)
        if implied_before is not None and implied != implied_before:
            rising = implied > implied_before
            current = next(
                (c for t, name, c in reversed(watch.seen) if name == "bench-a100" and t < at - 2.0),
                None,
            )
            if current is not None and (current >= implied if rising else current <= implied):
                implied_before = implied
                continue  # what ran before the sample already covers it: nothing to wait for
            written = next(
                (
                    t
                    for t, name, count in watch.seen
                    if name == "bench-a100"
                    and (count >= implied if rising else count <= implied)
                    and t >= at - 2.0
                ),
                None,
            )
            if written is not None and written - at < 60:
                measured.append(written - at)
        implied_before = implied
    kube("delete", "dsd", "bench", "--wait=true", "--timeout=120s")
    return measured


def queries(
    kube: Kube,
    source: LoadSource,
    prometheus: PrometheusServer,
    metrics_port: int,
    deployments: int,
    seconds: float,
) -> tuple[float, float]:
    for index in range(deployments):
        source.set("default", f"fleet-{index}", "cpu-xeon", tokens_per_second=5.0)
    bodies = [
        dsd(f"fleet-{i}", prometheus.address, policy="cpuOnly", replicas=2, mode="recommend")
        for i in range(deployments)
    ]
    kube.apply(bodies)
    time.sleep(30)  # every loop registered with the poller
    asked = 'sum(prometheus_http_requests_total{handler="/api/v1/query"})'
    before_prometheus = prometheus.value(asked) or 0.0
    before_operator = operator_requests(metrics_port)
    time.sleep(seconds)
    after_prometheus = prometheus.value(asked) or 0.0
    after_operator = operator_requests(metrics_port)
    kube("delete", "dsd", "--all", "--wait=true", "--timeout=300s")
    intervals = seconds / INTERVAL
    return (
        (after_prometheus - before_prometheus) / intervals,
        (after_operator - before_operator) / intervals,
    )


def operator_requests(port: int) -> float:
    return sum(
        value
        for name, _, value in operator_metrics(port)
        if name == "deepseek_operator_prometheus_requests_total"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--deployments", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--dashboard", type=Path, help="render the dashboard to this PNG")
    args = parser.parse_args()
    with sample_cluster("load-bench-") as (tmp, kube, kubeconfig):
        source = LoadSource().start()
        port = free_port()
        prometheus = PrometheusServer(tmp / "prometheus", [f"127.0.0.1:{source.port}"], port=port)
        prometheus.targets.append(f"127.0.0.1:{port}")  # its own query count
        metrics_port = free_port()
        if args.dashboard:
            prometheus.targets.append(f"127.0.0.1:{metrics_port}")  # the operator's
        prometheus.start()
        started = time.time()
        operator = start_operator(
            kubeconfig,
            tmp / "operator.log",
            f"--metrics-port={metrics_port}",
            "--metrics-address=127.0.0.1",
        )
        try:
            times = reaction(kube, source, prometheus, args.cycles, bool(args.dashboard))
            if args.dashboard:
                render(prometheus.address, started, time.time(), args.dashboard)
            per_interval = queries(
                kube, source, prometheus, metrics_port, args.deployments, args.seconds
            )
        finally:
            operator.send_signal(signal.SIGTERM)
            operator.wait(timeout=30)
            prometheus.stop()
            source.stop()
    print(
        f"reaction (sample queryable -> Deployment patched), {len(times)} threshold crossings, "
        f"reconcileIntervalSeconds {INTERVAL}: median {statistics.median(times):.2f} s, "
        f"p99 {percentile(times, 0.99):.2f} s, max {max(times):.2f} s"
    )
    seen, counted = per_interval
    print(
        f"Prometheus instant queries per {INTERVAL} s interval with {args.deployments} "
        f"deployments: {seen:.1f} seen by Prometheus, {counted:.1f} counted by the operator "
        f"(a query per deployment and series would be {2 * args.deployments})"
    )


if __name__ == "__main__":
    main()
