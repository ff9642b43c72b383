"""The operator on the local cluster: reaction time, API calls, memory, and a real move.

Starts a local cluster and `deepseek-operator run` as its own process, then measures:

* the time from a spec change (`kubectl patch` started) to the operator's first write of the
  pool Deployment, seen by a watch, over --changes changes; beside it, in the same run, the
  time from a plain `kubectl scale` of an ordinary Deployment to the same watch seeing it (the
  floor: a kubectl process, one API write, one watch event), their ratio, and their difference:
  the operator's own reaction;
* API calls per reconcile, from the operator's debug log: in steady state and when it acts;
* the operator's resident memory with --deployments DeepSeekDeployments;
* a 7B move from CPU to A100 with the example pools (default start-up: 120 s on A100), from the
  spec change to the last CPU pod gone, and the part of it that is not the model's start-up.

    python benchmarks/reconcile_loop.py [--changes 50] [--deployments 50]
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import statistics
import time
from pathlib import Path
from typing import Any

import yaml

from kubectl_watch import EXAMPLES, Kube, ReplicaWatch, percentile, sample_cluster, start_operator
from resident import rss_mib


def dsd(name: str, replicas: int, mode: str = "apply", policy: str = "cpuOnly") -> dict[str, Any]:
    body = yaml.safe_load((EXAMPLES / "r1-7b-gpu-by-day-cpu-at-night.yaml").read_text())
    body["metadata"] = {"name": name}
    spec = body["spec"]
    spec.pop("load")
    spec["schedule"] = {"timeZone": "UTC", "defaultPolicy": policy}
    spec["replicas"] = {"min": replicas, "max": 4}
    spec["slo"] = {"minTokensPerSecondPerRequest": 5, "maxTimeToFirstTokenSeconds": 30}
    spec["migration"].update(cooldownSeconds=0, minDwellSeconds=0, minAvailable=min(1, replicas))
    spec["mode"] = mode
    return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--deployments", type=int, default=50)
    parser.add_argument("--skip-move", action="store_true", help="skip the 7B CPU to A100 move")
    args = parser.parse_args()
    with sample_cluster("operator-bench-") as (tmp, kube, kubeconfig):
        log_path = tmp / "operator.log"
        operator = start_operator(kubeconfig, log_path, "--verbose")
        try:
            run(kube, args, operator.pid, log_path)
        finally:
            operator.send_signal(signal.SIGTERM)
            operator.wait(timeout=30)


def run(kube: Kube, args: argparse.Namespace, pid: int, log_path: Path) -> None:
    watch = ReplicaWatch(kube, "default")
    try:
        # --- reaction time: spec change -> the Deployment written
        kube.apply([dsd("bench", 1)])
        watch.wait("bench-cpu-xeon", 1, 0.0, timeout=60)
        time.sleep(2)
        operator_latency = []
        for change in range(args.changes):
            replicas = 2 if change % 2 == 0 else 1
            patch = {"spec": {"replicas": {"min": replicas, "max": 4}}}
            sent = time.monotonic()
            kube("patch", "dsd", "bench", "--type=merge", "-p", json.dumps(patch))
            operator_latency.append(watch.wait("bench-cpu-xeon", replicas, sent) - sent)
            time.sleep(0.5)
        # --- the floor: a plain scale of an ordinary Deployment, seen by the same watch
        kube.apply([plain_deployment()])
        watch.wait("plain", 1, 0.0, timeout=60)
        floor = []
        for change in range(args.changes):
            replicas = 2 if change % 2 == 0 else 1
            sent = time.monotonic()
            kube("scale", "deployment", "plain", f"--replicas={replicas}")
            floor.append(watch.wait("plain", replicas, sent) - sent)
            time.sleep(0.2)
        kube("delete", "deployment", "plain")
        # --- API calls per reconcile, from the debug log
        time.sleep(12)  # at least one idle reconcile
        calls = [
            int(n) for n in re.findall(r"Reconciled with (\d+) API writes", log_path.read_text())
        ]
        # --- memory with many deployments (scaled to zero: idle loops, indexes, status)
        kube.apply([dsd(f"fleet-{i}", 0) for i in range(args.deployments)])
        time.sleep(30)
        memory = rss_mib(pid)
        kube("delete", "dsd", "--all", "--wait=true", "--timeout=120s")
        # --- a real move: 7B from CPU to A100 with the example pools' start-up times
        move = None if args.skip_move else measure_move(kube, watch)
    finally:
        watch.close()

    median, p99 = statistics.median(operator_latency), percentile(operator_latency, 0.99)
    floor_median = statistics.median(floor)
    print(
        f"spec change -> Deployment written, {len(operator_latency)} changes: "
        f"median {median * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
    )
    print(
        f"kubectl scale -> Deployment seen (floor), {len(floor)} changes: "
        f"median {floor_median * 1000:.0f} ms, p99 {percentile(floor, 0.99) * 1000:.0f} ms"
    )
    print(
        f"operator / floor (median): {median / floor_median:.1f}x; the operator's own "
        f"reaction: {(median - floor_median) * 1000:.0f} ms"
    )
    idle = sum(1 for n in calls if n == 0)
    acting = [n for n in calls if n > 0]
    print(
        f"API writes per reconcile: {len(calls)} reconciles, {idle} wrote nothing; those that "
        f"acted wrote {min(acting, default=0)}-{max(acting, default=0)} (LIST calls: none)"
    )
    print(f"operator resident memory with {args.deployments} deployments: {memory:.0f} MiB")
    if move is not None:
        total, startup = move
        print(
            f"7B move cpu-xeon -> a100 (2 replicas): {total:.1f} s end to end, of which "
            f"{startup:.0f} s is the A100 replicas' start-up; {total - startup:.1f} s other"
        )


def plain_deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "plain"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "plain"}},
            "template": {
                "metadata": {"labels": {"app": "plain"}},
                "spec": {"containers": [{"name": "c", "image": "registry.invalid/plain:1"}]},
            },
        },
    }


def measure_move(kube: Kube, watch: ReplicaWatch) -> tuple[float, float]:
    kube.apply([dsd("move", 2, policy="cpuOnly")])
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready = kube.json("get", "dsd", "move").get("status", {}).get("readyReplicas", 0)
        if ready == 2:
            break
        time.sleep(1)
    patch = {"spec": {"schedule": {"timeZone": "UTC", "defaultPolicy": "gpuOnly"}}}
    kube("patch", "dsd", "move", "--type=merge", "-p", json.dumps(patch))
    started = time.monotonic()
    while time.monotonic() - started < 600:
        pods = kube.json("get", "pods", "-l", "app.kubernetes.io/instance=move")["items"]
        pools = [p["metadata"]["labels"]["serving.deepseek-operator.io/pool"] for p in pods]
        ready = all(
            any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p["status"].get("conditions", [])
            )
            for p in pods
        )
        if pools == ["a100", "a100"] and ready:
            break
        time.sleep(0.5)
    total = time.monotonic() - started
    kube("delete", "dsd", "move", "--wait=true")
    return total, 120.0


if __name__ == "__main__":
    main()
