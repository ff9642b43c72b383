"""What the operator's e2e tests share: the operator as a separate process, resources to apply,
and watchers that record what happened while a test waits (Ready endpoints, pod lifecycles)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.conftest import ClusterHandle
from tests.paths import REPO_ROOT

GROUP = "serving.deepseek-operator.io"
POOL_LABEL = "serving.deepseek-operator.io/pool"
PEERING_LIFETIME = 10
"""Seconds a killed operator counts as alive: a standby (or a restart) acts after this."""

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
STARTUP = {"e2e-a100": 20.0, "e2e-4090": 20.0, "e2e-cpu": 10.0}
"""Seconds a replica takes to turn Ready on each test pool (kwok honours the operator's
start-up annotation), long enough for make-before-break to be seen."""


def pool_profiles() -> list[dict[str, Any]]:
    """Test pools over the local cluster's nodes, with plain hourly prices: an A100 replica
    1.0/h, an RTX 4090 one 3.0/h (returning to A100 saves 67 %, enough to pass the planner's
    savings-over-disruption gate for a single replica), a CPU replica (half a node) 0.3/h."""

    def pool(
        name: str, selector: dict[str, str], hardware: dict[str, Any], price: float
    ) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "nodeSelector": selector,
            "hardware": hardware,
            "cost": {"currency": "USD", "hourlyPrice": price},
            "startupSeconds": STARTUP[name],
        }
        if hardware["kind"] == "gpu":
            spec["tolerations"] = [GPU_TOLERATION]
        return {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "PoolProfile",
            "metadata": {"name": name},
            "spec": spec,
        }

    return [
        pool(
            "e2e-a100",
            {"accelerator": "nvidia-a100"},
            {
                "kind": "gpu",
                "acceleratorModel": "a100-80gb-sxm",
                "gpusPerNode": 8,
                "gpuMemoryGiB": 80,
                "cpuCores": 128,
                "memoryGiB": 1024,
            },
            1.0,
        ),
        pool(
            "e2e-4090",
            {"accelerator": "nvidia-rtx-4090"},
            {
                "kind": "gpu",
                "acceleratorModel": "rtx-4090",
                "gpusPerNode": 2,
                "gpuMemoryGiB": 24,
                "cpuCores": 32,
                "memoryGiB": 128,
            },
            3.0,
        ),
        pool(
            "e2e-cpu",
            {"deepseek-operator.io/cpu-model": "intel-xeon-platinum-8380"},
            {"kind": "cpu", "acceleratorModel": "xeon-8380", "cpuCores": 80, "memoryGiB": 512},
            0.6,
        ),
    ]


VARIANTS = {
    "e2e-a100": {"pool": "e2e-a100", "engine": "vllm", "precision": "bf16"},
    "e2e-4090": {"pool": "e2e-4090", "engine": "vllm", "precision": "bf16"},
    "e2e-cpu": {"pool": "e2e-cpu", "engine": "llamacpp", "precision": "int8"},
}


def deployment(
    name: str,
    pools: list[str],
    *,
    replicas: int = 2,
    policy: str = "cpuOnly",
    windows: list[dict[str, Any]] | None = None,
    min_available: int = 2,
    cooldown: int = 0,
    mode: str = "apply",
    time_zone: str = "UTC",
) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "DeepSeekDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {
                "name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
                "catalogKey": "r1-distill-qwen-7b",
                "weights": {"path": "/models/DeepSeek-R1-Distill-Qwen-7B"},
            },
            "variants": [VARIANTS[p] for p in pools],
            "replicas": {"min": replicas, "max": max(replicas, 4)},
            "slo": {"minTokensPerSecondPerRequest": 5, "maxTimeToFirstTokenSeconds": 30},
            "schedule": {
                "timeZone": time_zone,
                "defaultPolicy": policy,
                "windows": windows or [],
            },
            "migration": {
                "minAvailable": min_available,
                "maxSurgeGPUs": 8,
                "cooldownSeconds": cooldown,
                "minSavingsPercent": 10,
                "minDwellSeconds": 0,
            },
            "reconcileIntervalSeconds": 5,
            "mode": mode,
        },
    }


# ---------------------------------------------------------------------------------------------
# The operator process


@dataclass
class OperatorProcess:
    """`deepseek-operator run` in its own process (its own session, so a SIGKILL is a crash)."""

    cluster: ClusterHandle
    log_path: Path
    args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    under_kopf: bool = False
    """Run the handlers with kopf's own CLI (`kopf run -m deepseek_operator.handlers`)."""

    def start(self) -> OperatorProcess:
        log = self.log_path.open("ab")
        if self.under_kopf:
            command = [
                sys.executable,
                "-m",
                "kopf",
                "run",
                "-m",
                "deepseek_operator.handlers",
                "--all-namespaces",
                *self.args,
            ]
        else:
            # Several operators run at once here: /metrics only where a test asks for it.
            metrics = (
                []
                if any(a.startswith("--metrics-port") for a in self.args)
                else ["--metrics-port=0"]
            )
            command = [
                sys.executable,
                "-m",
                "deepseek_operator",
                "run",
                f"--kubeconfig={self.cluster.kubeconfig}",
                f"--peering-lifetime={PEERING_LIFETIME}",
                *metrics,
                *self.args,
            ]
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "KUBECONFIG": str(self.cluster.kubeconfig),
            "DEEPSEEK_OPERATOR_PEERING_LIFETIME": str(PEERING_LIFETIME),
            "DEEPSEEK_OPERATOR_METRICS_PORT": "0",
        }
        self.process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            env=env,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no peering goodbye: a crash."""
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            assert self.alive(), f"operator exited:\n{self.log()[-3000:]}"
            time.sleep(0.3)
        raise AssertionError(f"{text!r} not in the operator's log:\n{self.log()[-3000:]}")


# ---------------------------------------------------------------------------------------------
# Reading the cluster


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def gpus_held(cluster: ClusterHandle, node: str) -> int:
    """GPUs the pods bound to ``node`` (and not finished) ask for."""
    bound = cluster.get_json("pods", "-A", "--field-selector", f"spec.nodeName={node}")["items"]
    return sum(
        int(c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", 0))
        for p in bound
        if p["status"].get("phase") not in ("Succeeded", "Failed")
        for c in p["spec"]["containers"]
    )


def hog_gpus(cluster: ClusterHandle, namespace: str, node: str, gpus: int) -> None:
    """Another workload: a pod bound to ``node`` holding ``gpus`` of its GPUs."""
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"hog-{node}", "labels": {"app": "hog"}},
            "spec": {
                "nodeName": node,
                "tolerations": [GPU_TOLERATION],
                "containers": [
                    {
                        "name": "hog",
                        "image": "registry.invalid/hog:1",
                        "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                    }
                ],
            },
        },
        namespace,
    )


def pods(cluster: ClusterHandle, namespace: str, dsd: str) -> list[dict[str, Any]]:
    selector = f"app.kubernetes.io/instance={dsd}"
    return list(cluster.get_json("pods", "-n", namespace, "-l", selector)["items"])


def is_ready(pod: dict[str, Any]) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in pod.get("status", {}).get("conditions", [])
    )


def ready_pools(cluster: ClusterHandle, namespace: str, dsd: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for pod in pods(cluster, namespace, dsd):
        if is_ready(pod):
            pool = pod["metadata"]["labels"][POOL_LABEL]
            counts[pool] = counts.get(pool, 0) + 1
    return counts


def node_label(cluster: ClusterHandle, node: str, key: str) -> str:
    return str(cluster.get_json("node", node)["metadata"]["labels"].get(key, ""))


def status(cluster: ClusterHandle, namespace: str, dsd: str) -> dict[str, Any]:
    body = cluster.get_json("deepseekdeployment", dsd, "-n", namespace)
    return dict(body.get("status") or {})


def condition(cluster: ClusterHandle, namespace: str, dsd: str, type_: str) -> dict[str, Any]:
    found = {c["type"]: c for c in status(cluster, namespace, dsd).get("conditions", [])}
    return dict(found.get(type_, {}))


def pool_deployments(cluster: ClusterHandle, namespace: str, dsd: str) -> dict[str, int]:
    selector = f"app.kubernetes.io/instance={dsd}"
    items = cluster.get_json("deployments", "-n", namespace, "-l", selector)["items"]
    return {d["metadata"]["name"]: int(d["spec"]["replicas"]) for d in items}


def events(cluster: ClusterHandle, namespace: str, dsd: str) -> list[dict[str, Any]]:
    items = cluster.get_json(
        "events", "-n", namespace, "--field-selector", f"involvedObject.name={dsd}"
    )["items"]
    return list(items)


def event_reasons(cluster: ClusterHandle, namespace: str, dsd: str) -> list[str]:
    return [e["reason"] for e in events(cluster, namespace, dsd)]


def placed(cluster: ClusterHandle, namespace: str, dsd: str, pool: str, count: int) -> bool:
    """Exactly `count` pods, all Ready, all on `pool`'s nodes, and nothing else."""
    current = pods(cluster, namespace, dsd)
    live = [p for p in current if not p["metadata"].get("deletionTimestamp")]
    return (
        len(live) == count
        and all(is_ready(p) for p in live)
        and all(p["metadata"]["labels"][POOL_LABEL] == pool for p in live)
    )


# ---------------------------------------------------------------------------------------------
# Watching while a test waits


@dataclass
class ReadyEndpoints:
    """Polls the Service's EndpointSlices every 0.2 s and keeps the fewest Ready endpoints seen
    since the count first reached `floor`."""

    cluster: ClusterHandle
    namespace: str
    service: str
    floor: int
    fewest: int | None = None
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def count(self) -> int:
        result = self.cluster.kubectl(
            "get",
            "endpointslices",
            "-n",
            self.namespace,
            "-l",
            f"kubernetes.io/service-name={self.service}",
            "-o",
            'jsonpath={range .items[*].endpoints[*]}{.conditions.ready}{"\\n"}{end}',
            check=False,
            timeout=10,
        )
        return sum(1 for line in result.stdout.splitlines() if line.strip() == "true")

    def _run(self) -> None:
        reached = False
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                ready = self.count()
                reached = reached or ready >= self.floor
                if reached:
                    self.samples += 1
                    self.fewest = ready if self.fewest is None else min(self.fewest, ready)
            time.sleep(0.2)

    def __enter__(self) -> ReadyEndpoints:
        wait_until(lambda: self.count() >= self.floor, 90, f"{self.floor} ready endpoints")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)


@dataclass
class PodTimeline:
    """Polls the deployment's pods and records when each turned Ready and when each started
    terminating (or vanished), by pool."""

    cluster: ClusterHandle
    namespace: str
    dsd: str
    ready_at: dict[str, tuple[str, float]] = field(default_factory=dict)
    created_at: dict[str, tuple[str, float]] = field(default_factory=dict)
    gone_at: dict[str, tuple[str, float]] = field(default_factory=dict)
    _seen: dict[str, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                now = time.time()
                current = pods(self.cluster, self.namespace, self.dsd)
                names = set()
                for pod in current:
                    name = pod["metadata"]["name"]
                    pool = pod["metadata"]["labels"][POOL_LABEL]
                    names.add(name)
                    self._seen[name] = pool
                    self.created_at.setdefault(name, (pool, now))
                    if pod["metadata"].get("deletionTimestamp"):
                        self.gone_at.setdefault(name, (pool, now))
                    elif is_ready(pod):
                        self.ready_at.setdefault(name, (pool, now))
                for name, pool in self._seen.items():
                    if name not in names:
                        self.gone_at.setdefault(name, (pool, now))
            time.sleep(0.2)

    def start(self) -> PodTimeline:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def first_gone(self, pool: str) -> float | None:
        times = [t for p, t in self.gone_at.values() if p == pool]
        return min(times) if times else None

    def last_ready(self, pool: str) -> float | None:
        times = [t for p, t in self.ready_at.values() if p == pool]
        return max(times) if times else None

    def first_created(self, pool: str, after: float = 0.0) -> float | None:
        times = [t for p, t in self.created_at.values() if p == pool and t >= after]
        return min(times) if times else None


@contextlib.contextmanager
def timeline(cluster: ClusterHandle, namespace: str, dsd: str) -> Iterator[PodTimeline]:
    recorder = PodTimeline(cluster, namespace, dsd).start()
    try:
        yield recorder
    finally:
        recorder.stop()
