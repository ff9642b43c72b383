"""A fleet on the local cluster: many DeepSeekDeployments on many nodes, and how the cost grows.

For each count in --deployments (default 100 and 1,000) a fresh local cluster is started with
--nodes kwok nodes spread over the sample pools (a100, rtx4090, cpu-xeon, in the proportions of
examples/cluster.yaml), the sample PoolProfiles (start-up shortened to --startup-seconds, so a
settle measures the operator and not the simulated weight loading), a real Prometheus scraping a
load source with a small steady demand for every deployment, and `deepseek-operator run` as its
own process. Then it measures:

* **settle from cold**: from the first `kubectl create` of the deployments until every one is
  healthy (Ready, CapacityAvailable and MetricsAvailable True; Degraded False; Progressing False
  with its placement reached) and every pod the operator owns is bound to a node and Running;
* **reconcile latency**: over --changes spec changes (replicas.min of a CPU deployment, 1 to 2),
  from the `kubectl patch` starting to a watch seeing the operator's Deployment write, p50 / p99;
* **resident memory** of the operator: peak over the whole run, and settled (end of the window);
* **API requests per second** against the API server over a --window of steady state, from its
  own `apiserver_request_total` (all clients; watches excluded), and the part on what only the
  operator writes (DeepSeekDeployments, PoolProfiles, its peering, Services, Deployment specs);
* **Prometheus queries per 15 s interval** (the reconcile interval) from the operator's own
  `deepseek_operator_prometheus_requests_total`;
* what limits: CPU seconds per second of the operator and of each cluster component over the
  window, and the operator's mean decide() time and decisions per second from its /metrics.

A table of every count, and the ratio of the largest to the smallest, is printed at the end.
Every phase has a hard timeout; one that runs out reports how far it got instead of hanging.

    python benchmarks/fleet.py [--deployments 100,1000] [--nodes 1000] [--changes 30]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.prometheus_support import LoadSource, PrometheusServer, free_port  # noqa: E402

from kubectl_watch import (  # noqa: E402
    EXAMPLES,
    Kube,
    ReplicaWatch,
    metric_samples,
    operator_metrics,
    percentile,
    sample_cluster,
    start_operator,
)
from resident import rss_mib  # noqa: E402

INTERVAL = 15
"""reconcileIntervalSeconds of every deployment (the default), and the Prometheus interval."""
TOKENS_PER_SECOND = 2.0
"""Each deployment's steady demand: well within one replica on any pool, so replicas.min rules."""
MIX = (("cpu", 0.6), ("rtx4090", 0.2), ("a100", 0.2))
"""Share of each kind of deployment: the 7B model on the CPU pool, on one RTX 4090, on one A100."""
OWNED = "app.kubernetes.io/managed-by=deepseek-operator"
OPERATOR_RESOURCES = {"deepseekdeployments", "poolprofiles", "clusterkopfpeerings", "services"}
"""Resources no one but the operator writes during the steady window (and kubectl reads)."""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------------------------------------
# The cluster and the fleet


def cluster_config(nodes: int, directory: Path) -> Path:
    """examples/cluster.yaml with `nodes` nodes in all, spread in the example's proportions."""
    config = yaml.safe_load((EXAMPLES / "cluster.yaml").read_text())
    pools = config["pools"]
    total = sum(pool["nodes"] for pool in pools)
    counts = [max(1, nodes * pool["nodes"] // total) for pool in pools]
    counts[-1] += nodes - sum(counts)
    for pool, count in zip(pools, counts, strict=True):
        pool["nodes"] = count
    path = directory / "fleet-cluster.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def pool_profiles(startup_seconds: float) -> list[dict[str, Any]]:
    """The sample PoolProfiles with a short start-up."""
    profiles = [doc for doc in yaml.safe_load_all((EXAMPLES / "pools.yaml").read_text()) if doc]
    for profile in profiles:
        profile["spec"]["startupSeconds"] = startup_seconds
    return profiles


def kind_of(index: int, count: int) -> str:
    """The kind of deployment `index` of `count`, so that every count has the same mix."""
    position = (index + 0.5) / count
    edge = 0.0
    for kind, share in MIX:
        edge += share
        if position < edge:
            return kind
    return MIX[-1][0]


POOL_OF = {"cpu": "cpu-xeon", "rtx4090": "rtx4090", "a100": "a100"}


def fleet_dsd(name: str, kind: str, address: str) -> dict[str, Any]:
    model = {
        "name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
        "catalogKey": "r1-distill-qwen-7b",
        "weights": {"path": "/models/DeepSeek-R1-Distill-Qwen-7B"},
    }
    if kind == "cpu":
        variants = [
            {"pool": "cpu-xeon", "engine": "transformers", "precision": "int8"},
            {"pool": "a100", "engine": "transformers", "precision": "bf16"},
        ]
        policy = "cpuOnly"
    else:
        variants = [
            {"pool": kind, "engine": "transformers", "precision": "bf16"},
            {"pool": "cpu-xeon", "engine": "transformers", "precision": "int8"},
        ]
        policy = "gpuOnly"
    return {
        "apiVersion": "serving.deepseek-operator.io/v1alpha1",
        "kind": "DeepSeekDeployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "model": model,
            "variants": variants,
            "replicas": {"min": 1, "max": 2},
            "slo": {"minTokensPerSecondPerRequest": 1, "maxTimeToFirstTokenSeconds": 60},
            "schedule": {"timeZone": "UTC", "defaultPolicy": policy},
            "load": {
                "prometheusAddress": address,
                "scaleUpStabilizationSeconds": 0,
                "scaleDownStabilizationSeconds": 0,
            },
            "migration": {"minAvailable": 1, "cooldownSeconds": 0, "minDwellSeconds": 0},
            "reconcileIntervalSeconds": INTERVAL,
        },
    }


def create_in_parallel(kube: Kube, bodies: list[dict[str, Any]], workers: int = 4) -> None:
    """`kubectl create` of `bodies` in `workers` processes at once (create, not apply: one
    request per object, no read first)."""
    chunks = [bodies[i::workers] for i in range(workers)]
    processes = [
        subprocess.Popen(
            [*kube.base, "create", "-f", "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for chunk in chunks
        if chunk
    ]
    for process, chunk in zip(processes, chunks, strict=False):
        _, errors = process.communicate(yaml.safe_dump_all(chunk))
        if process.returncode != 0:
            raise RuntimeError(f"kubectl create failed: {errors[-2000:]}")


# ---------------------------------------------------------------------------------------------
# What the run watches


class Sampler:
    """A background thread calling `probe` every `period` seconds; keeps (time, value)."""

    def __init__(self, probe: Callable[[], float], period: float = 0.5) -> None:
        self.values: list[tuple[float, float]] = []
        self._probe, self._period = probe, period
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.values.append((time.monotonic(), self._probe()))
            self._stop.wait(self._period)

    def peak(self) -> float:
        return max((v for _, v in self.values), default=0.0)

    def close(self) -> None:
        self._stop.set()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds `pid` has used (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cluster_pids(state_dir: Path) -> dict[str, int]:
    state = json.loads((state_dir / "state.json").read_text())
    return {record["name"]: record["pid"] for record in state["processes"]}


HEALTHY = {
    "Ready": "True",
    "CapacityAvailable": "True",
    "MetricsAvailable": "True",
    "Degraded": "False",
    "Progressing": "False",
}


@dataclass
class FleetState:
    healthy: int = 0
    deployments: int = 0
    pods_running: int = 0
    pods_ready: int = 0
    """Pods kwok has marked Ready (after the pool's start-up): what the Ready condition needs."""
    pods: int = 0
    unhealthy: dict[str, int] = field(default_factory=dict)
    """How many deployments have each condition other than healthy (type=status reason)."""


def fleet_state(kube: Kube) -> FleetState:
    """Every deployment's conditions and every owned pod's node and phase, in two requests."""
    conditions = kube(
        "get",
        "dsd",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}{range .status.conditions[*]} {.type}={.status}"
        '={.reason}{end}{"\\n"}{end}',
    )
    state = FleetState()
    for line in conditions.splitlines():
        parts = line.split()
        if not parts:
            continue
        state.deployments += 1
        seen = {}
        for part in parts[1:]:
            kind, status, reason = part.split("=", 2)
            seen[kind] = (status, reason)
        bad = [
            f"{kind}={seen.get(kind, ('absent', ''))[0]} {seen.get(kind, ('', ''))[1]}".strip()
            for kind, wanted in HEALTHY.items()
            if seen.get(kind, ("absent", ""))[0] != wanted
        ]
        if bad:
            for entry in bad:
                state.unhealthy[entry] = state.unhealthy.get(entry, 0) + 1
        else:
            state.healthy += 1
    pods = kube(
        "get",
        "pods",
        "-l",
        OWNED,
        "-o",
        "jsonpath={range .items[*]}{.spec.nodeName} {.status.phase} "
        '{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
    )
    for line in pods.splitlines():
        parts = line.split()
        if not parts:
            continue
        state.pods += 1
        if len(parts) >= 2 and parts[1] == "Running":
            state.pods_running += 1
        if len(parts) == 3 and parts[2] == "True":
            state.pods_ready += 1
    return state


def settle(
    kube: Kube, count: int, started: float, timeout: float
) -> tuple[float | None, FleetState]:
    """Seconds from `started` until all `count` deployments are healthy and every owned pod
    runs on a node; None when `timeout` runs out first (with the last state seen)."""
    last_report = 0.0
    state = FleetState()
    pause = 2.0
    while time.monotonic() - started < timeout:
        asked = time.monotonic()
        try:
            state = fleet_state(kube)
        except subprocess.CalledProcessError as error:
            log(f"  (kubectl get failed: {error.stderr.strip()[:200]})")
            time.sleep(pause)
            continue
        # a poll lists every deployment: at least twice its own time apart, so that the
        # benchmark's reads stay a small part of the API server's work
        pause = max(2.0, 2 * (time.monotonic() - asked))
        done = (
            state.deployments == count
            and state.healthy == count
            and state.pods > 0
            and state.pods_running == state.pods
        )
        if done:
            return time.monotonic() - started, state
        if time.monotonic() - last_report >= 10:
            last_report = time.monotonic()
            worst = ", ".join(
                f"{n} {what}"
                for what, n in sorted(state.unhealthy.items(), key=lambda x: -x[1])[:3]
            )
            log(
                f"  settling {time.monotonic() - started:.0f}s: {state.healthy}/{count} "
                f"deployments healthy, {state.pods_running}/{state.pods} pods running, "
                f"{state.pods_ready} Ready" + (f" (not yet: {worst})" if worst else "")
            )
        time.sleep(pause)
    return None, state


# ---------------------------------------------------------------------------------------------
# One count


@dataclass
class Result:
    deployments: int
    nodes: int
    settle_seconds: float | None = None
    settle_reached: str = ""
    latency: list[float] = field(default_factory=list)
    latency_missed: int = 0
    rss_peak: float = 0.0
    rss_settled: float = 0.0
    api_per_second: float = 0.0
    api_operator_per_second: float = 0.0
    api_top: list[tuple[str, float]] = field(default_factory=list)
    prometheus_per_interval: float = 0.0
    decisions_per_second: float = 0.0
    decide_ms: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds per second over the steady window, by process."""
    settle_cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds per second while settling, by process."""
    profile: list[tuple[str, float]] = field(default_factory=list)
    """The operator's functions by share of its samples while settling (with --py-spy)."""


def api_requests(kube: Kube) -> dict[tuple[str, str, str], float]:
    """apiserver_request_total by (resource, subresource, verb), watches left out."""
    totals: dict[tuple[str, str, str], float] = {}
    for name, labels, value in metric_samples(kube("get", "--raw", "/metrics")):
        if name != "apiserver_request_total" or labels.get("verb") == "WATCH":
            continue
        key = (labels.get("resource", ""), labels.get("subresource", ""), labels.get("verb", ""))
        totals[key] = totals.get(key, 0.0) + value
    return totals


def is_operators(key: tuple[str, str, str]) -> bool:
    resource, subresource, verb = key
    if verb in {"GET", "LIST"}:
        return False
    if resource in OPERATOR_RESOURCES:
        return True
    # Deployment specs: the operator's server-side applies (the controller writes only status)
    return resource == "deployments" and subresource == ""


def operator_figures(port: int) -> dict[str, float]:
    figures = {"prometheus": 0.0, "reconciles": 0.0, "plan_sum": 0.0, "plan_count": 0.0}
    for name, _, value in operator_metrics(port):
        if name == "deepseek_operator_prometheus_requests_total":
            figures["prometheus"] += value
        elif name == "deepseek_operator_reconciles_total":
            figures["reconciles"] += value
        elif name == "deepseek_operator_plan_duration_seconds_sum":
            figures["plan_sum"] += value
        elif name == "deepseek_operator_plan_duration_seconds_count":
            figures["plan_count"] += value
    return figures


class Profile:
    """py-spy sampling the operator (`--py-spy`), written as collapsed stacks."""

    def __init__(self, binary: str | None, pid: int, path: Path) -> None:
        self.path = path
        self.process = None
        if binary:
            self.process = subprocess.Popen(
                [
                    binary,
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    "10",
                    "--format",
                    "raw",
                    "--output",
                    str(path),
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    def stop(self) -> list[tuple[str, float]]:
        """The operator's own functions by share of the samples they are on (inclusive)."""
        if self.process is None:
            return []
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return []
        if not self.path.exists():
            return []
        total = 0
        inclusive: dict[str, int] = {}
        for line in self.path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            total += int(count)
            seen = set()
            for frame in stack.split(";"):
                name = frame.split(" (")[0]
                where = frame.split(" (")[-1]
                if ("deepseek_operator" in where or "kopf" in where) and name not in seen:
                    seen.add(name)
                    label = (
                        f"{name} ({'kopf' if 'kopf' in where else Path(where.split(':')[0]).name})"
                    )
                    inclusive[label] = inclusive.get(label, 0) + int(count)
        ranked = sorted(inclusive.items(), key=lambda item: -item[1])
        return [(name, n / total) for name, n in ranked[:15]] if total else []


def processes(state_dir: Path, operator: int, prometheus: int) -> dict[str, int]:
    return {
        "operator": operator,
        **cluster_pids(state_dir),
        "prometheus": prometheus,
        "benchmark (load source, watch)": os.getpid(),
    }


def cpu_use(pids: dict[str, int], before: dict[str, float], seconds: float) -> dict[str, float]:
    return {name: (cpu_seconds(pid) - before[name]) / seconds for name, pid in pids.items()}


def measure(count: int, args: argparse.Namespace) -> Result:
    result = Result(deployments=count, nodes=args.nodes)
    with tempfile.TemporaryDirectory(prefix="fleet-config-") as config_dir:
        config = cluster_config(args.nodes, Path(config_dir))
        log(f"{count} deployments: starting a cluster of {args.nodes} nodes")
        up = time.monotonic()
        with sample_cluster("fleet-bench-", config, args.phase_timeout) as (tmp, kube, kubeconfig):
            log(f"  cluster up in {time.monotonic() - up:.0f}s")
            schedulable(kube, args.phase_timeout)
            kube.apply(pool_profiles(args.startup_seconds))
            with load_and_operator(tmp, kubeconfig, count) as (source, prometheus, port, pid):
                run(kube, tmp, source, prometheus, port, pid, count, args, result)
    return result


NOT_READY_TAINT = "node.kubernetes.io/not-ready"


def schedulable(kube: Kube, timeout: float) -> None:
    """Wait until no node carries the not-ready taint. The node lifecycle controller takes it
    off each new node once the node is Ready, within its API rate limit (20 requests/s by
    default): a thousand new nodes stay unschedulable for a minute or more after `cluster up`
    sees them Ready, and a settle measured from then would time the controller, not the
    operator (which rightly reports those nodes' room as unusable meanwhile)."""
    started = time.monotonic()
    tainted = -1
    while time.monotonic() - started < timeout:
        taints = kube(
            "get", "nodes", "-o", 'jsonpath={range .items[*]}{.spec.taints[*].key}{"\\n"}{end}'
        )
        tainted = sum(1 for line in taints.splitlines() if NOT_READY_TAINT in line)
        if tainted == 0:
            log(f"  every node schedulable after {time.monotonic() - started:.0f}s more")
            return
        log(f"  {tainted} nodes still carry {NOT_READY_TAINT}")
        time.sleep(5)
    raise TimeoutError(f"{tainted} nodes still carry {NOT_READY_TAINT} after {timeout:.0f}s")


@contextlib.contextmanager
def load_and_operator(
    tmp: Path, kubeconfig: str, count: int
) -> Iterator[tuple[LoadSource, PrometheusServer, int, int]]:
    source = LoadSource().start()
    prometheus = PrometheusServer(tmp / "prometheus", [f"127.0.0.1:{source.port}"])
    port = free_port()
    operator = None
    try:
        for index in range(count):
            kind = kind_of(index, count)
            source.set(
                "default", f"fleet-{index}", POOL_OF[kind], tokens_per_second=TOKENS_PER_SECOND
            )
        prometheus.start()
        operator = start_operator(
            kubeconfig,
            tmp / "operator.log",
            f"--metrics-port={port}",
            "--metrics-address=127.0.0.1",
        )
        # the rate() of every series needs two samples, and the operator its start-up
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                counted = prometheus.value(
                    "count(rate(deepseek_server_generation_tokens_total[1m]))"
                )
                if counted == count:
                    with contextlib.suppress(OSError):
                        operator_metrics(port)
                        break
            time.sleep(1)
        yield source, prometheus, port, operator.pid
    finally:
        if operator is not None:
            operator.send_signal(signal.SIGTERM)
            try:
                operator.wait(timeout=60)
            except subprocess.TimeoutExpired:
                operator.kill()
                operator.wait()
        prometheus.stop()
        source.stop()


def run(
    kube: Kube,
    tmp: Path,
    source: LoadSource,
    prometheus: PrometheusServer,
    port: int,
    pid: int,
    count: int,
    args: argparse.Namespace,
    result: Result,
) -> None:
    assert prometheus.process is not None
    pids = processes(tmp, pid, prometheus.process.pid)
    memory = Sampler(lambda: rss_mib(pid))
    try:
        # --- settle from cold
        bodies = [
            fleet_dsd(f"fleet-{i}", kind_of(i, count), prometheus.address) for i in range(count)
        ]
        cpu_before = {name: cpu_seconds(p) for name, p in pids.items()}
        profile = Profile(args.py_spy, pid, tmp / "operator-profile.txt")
        started = time.monotonic()
        create_in_parallel(kube, bodies)
        log(f"  {count} deployments created in {time.monotonic() - started:.1f}s")
        seconds, state = settle(kube, count, started, args.phase_timeout)
        elapsed = time.monotonic() - started
        result.settle_cpu = cpu_use(pids, cpu_before, elapsed)
        result.profile = profile.stop()
        result.settle_seconds = seconds
        if seconds is None:
            result.settle_reached = (
                f"{state.healthy}/{count} healthy, {state.pods_running}/{state.pods} pods running, "
                f"{state.pods_ready} Ready, after {args.phase_timeout:.0f}s"
            )
            log(f"  NOT settled: {result.settle_reached}")
        else:
            log(f"  settled in {seconds:.1f}s ({state.pods} pods)")
        # --- reconcile latency after one spec change
        cpu_names = [f"fleet-{i}" for i in range(count) if kind_of(i, count) == "cpu"]
        watch = ReplicaWatch(kube)
        try:
            time.sleep(3)
            phase_end = time.monotonic() + args.phase_timeout
            for change in range(args.changes):
                if time.monotonic() > phase_end:
                    log(f"  changes stopped by the phase timeout after {change}")
                    break
                name = cpu_names[change % len(cpu_names)]
                replicas = 2 if (change // len(cpu_names)) % 2 == 0 else 1
                patch = {"spec": {"replicas": {"min": replicas, "max": 2}}}
                sent = time.monotonic()
                kube("patch", "dsd", name, "--type=merge", "-p", json.dumps(patch))
                try:
                    written = watch.wait(
                        f"{name}-cpu-xeon", replicas, sent, timeout=args.change_timeout
                    )
                    result.latency.append(written - sent)
                except TimeoutError:
                    result.latency_missed += 1
                if (change + 1) % 10 == 0:
                    log(
                        f"  {change + 1}/{args.changes} changes: median "
                        f"{statistics.median(result.latency) * 1000 if result.latency else 0:.0f} ms"
                    )
                time.sleep(args.change_pause)
        finally:
            watch.close()
        # --- steady state: requests, queries, CPU over a window
        time.sleep(INTERVAL)
        api_before = api_requests(kube)
        operator_before = operator_figures(port)
        cpu_before = {name: cpu_seconds(p) for name, p in pids.items()}
        window_start = time.monotonic()
        log(f"  steady window of {args.window:.0f}s")
        time.sleep(args.window)
        window = time.monotonic() - window_start
        api_after = api_requests(kube)
        operator_after = operator_figures(port)
        result.cpu = cpu_use(pids, cpu_before, window)
        result.rss_settled = rss_mib(pid)
    finally:
        memory.close()
    result.rss_peak = max(memory.peak(), result.rss_settled)
    deltas = {key: value - api_before.get(key, 0.0) for key, value in api_after.items()}
    # the window's own two reads of /metrics are GETs of a non-resource path: not counted above
    result.api_per_second = sum(deltas.values()) / window
    result.api_operator_per_second = sum(v for k, v in deltas.items() if is_operators(k)) / window
    top = sorted(deltas.items(), key=lambda item: -item[1])[:6]
    result.api_top = [("/".join(p for p in k if p), v / window) for k, v in top if v > 0]
    result.prometheus_per_interval = (
        (operator_after["prometheus"] - operator_before["prometheus"]) / window * INTERVAL
    )
    decisions = operator_after["plan_count"] - operator_before["plan_count"]
    result.decisions_per_second = decisions / window
    if decisions:
        result.decide_ms = (
            (operator_after["plan_sum"] - operator_before["plan_sum"]) / decisions * 1000
        )


# ---------------------------------------------------------------------------------------------
# The table


def rows(result: Result) -> dict[str, str]:
    latency = result.latency
    missed = f" ({result.latency_missed} missed)" if result.latency_missed else ""
    return {
        "nodes": f"{result.nodes}",
        "settle from cold (s)": (
            f"{result.settle_seconds:.1f}" if result.settle_seconds is not None else "not reached"
        ),
        "reconcile p50 (ms)": f"{statistics.median(latency) * 1000:.0f}" if latency else "-",
        "reconcile p99 (ms)": (
            f"{percentile(latency, 0.99) * 1000:.0f}{missed}" if latency else f"-{missed}"
        ),
        "operator memory peak (MiB)": f"{result.rss_peak:.0f}",
        "operator memory settled (MiB)": f"{result.rss_settled:.0f}",
        "API requests/s (all clients)": f"{result.api_per_second:.1f}",
        "API requests/s (operator's)": f"{result.api_operator_per_second:.1f}",
        "Prometheus queries / 15 s": f"{result.prometheus_per_interval:.1f}",
        "decisions/s (steady)": f"{result.decisions_per_second:.1f}",
        "decide() mean (ms)": f"{result.decide_ms:.1f}",
        "operator CPU settling (cores)": f"{result.settle_cpu.get('operator', 0):.2f}",
        "apiserver CPU settling (cores)": f"{result.settle_cpu.get('kube-apiserver', 0):.2f}",
        "operator CPU steady (cores)": f"{result.cpu.get('operator', 0):.2f}",
        "apiserver CPU steady (cores)": f"{result.cpu.get('kube-apiserver', 0):.2f}",
    }


def numeric(text: str) -> float | None:
    try:
        return float(text.split()[0])
    except (ValueError, IndexError):
        return None


def table(results: list[Result]) -> str:
    columns = [rows(r) for r in results]
    headers = ["", *[f"{r.deployments} deployments" for r in results]]
    ratio = len(results) >= 2
    if ratio:
        headers.append(f"{results[-1].deployments} / {results[0].deployments}")
    lines = []
    for key in columns[0]:
        cells = [key, *[column[key] for column in columns]]
        if ratio:
            first, last = numeric(columns[0][key]), numeric(columns[-1][key])
            cells.append(f"{last / first:.1f}x" if first and last is not None else "-")
        lines.append(cells)
    widths = [max(len(str(row[i])) for row in [headers, *lines]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(cells) for cells in lines]
    return "\n".join(out)


def details(result: Result) -> str:
    busy = sorted(result.settle_cpu.items(), key=lambda item: -item[1])
    steady = sorted(result.cpu.items(), key=lambda item: -item[1])
    parts = [
        f"{result.deployments} deployments:",
        "  CPU while settling (cores): " + ", ".join(f"{n} {v:.2f}" for n, v in busy),
        "  CPU in the steady window (cores): " + ", ".join(f"{n} {v:.2f}" for n, v in steady),
        "  busiest API requests/s: " + ", ".join(f"{k} {v:.1f}" for k, v in result.api_top),
    ]
    if result.profile:
        parts.append("  operator while settling, share of samples on the stack (py-spy):")
        parts += [f"    {share * 100:5.1f}%  {name}" for name, share in result.profile]
    if result.settle_reached:
        parts.append(f"  settle reached: {result.settle_reached}")
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--deployments",
        default="100,1000",
        help="counts to run, comma-separated (default 100,1000)",
    )
    parser.add_argument("--nodes", type=int, default=1000, help="kwok nodes (default 1000)")
    parser.add_argument("--changes", type=int, default=30, help="spec changes timed per count")
    parser.add_argument("--change-pause", type=float, default=2.0, help="seconds between changes")
    parser.add_argument("--change-timeout", type=float, default=60.0, help="wait per change")
    parser.add_argument("--window", type=float, default=60.0, help="steady window, seconds")
    parser.add_argument(
        "--phase-timeout", type=float, default=600.0, help="hard limit per phase, seconds"
    )
    parser.add_argument(
        "--startup-seconds", type=float, default=1.0, help="the pools' simulated start-up"
    )
    parser.add_argument(
        "--py-spy", metavar="BINARY", help="sample the operator with this py-spy while settling"
    )
    args = parser.parse_args()
    try:
        counts = [int(c) for c in args.deployments.split(",") if c.strip()]
    except ValueError:
        parser.error(f"--deployments takes counts separated by commas, not {args.deployments!r}")
    if not counts or min(counts) < 1 or args.nodes < 3:
        parser.error("--deployments needs counts of at least 1, --nodes at least 3")
    results = [measure(count, args) for count in counts]
    print()
    print(table(results))
    print()
    for result in results:
        print(details(result))


if __name__ == "__main__":
    main()
