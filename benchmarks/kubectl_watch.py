"""The benchmarks' cluster and client: the local cluster of examples/cluster.yaml with the CRDs
and sample pools, the operator as its own process, and kubectl (the binary and kubeconfig a user
has, so a measured latency includes nothing a user would not see)."""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from deepseek_operator.controlplane import cluster
from deepseek_operator.controlplane.build import ensure_binaries, find_kubectl

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


class Kube:
    def __init__(self, kubeconfig: str) -> None:
        self.base = [str(find_kubectl()), f"--kubeconfig={kubeconfig}"]

    def __call__(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [*self.base, *args], input=stdin, capture_output=True, text=True, check=True
        )
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json"))

    def apply(self, documents: list[dict[str, Any]], namespace: str = "default") -> None:
        self("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump_all(documents))


@contextlib.contextmanager
def sample_cluster(
    prefix: str, config: Path = EXAMPLES / "cluster.yaml", timeout_seconds: float = 180.0
) -> Iterator[tuple[Path, Kube, str]]:
    """(state directory, kubectl, kubeconfig) of a fresh local cluster with the CRDs and the
    sample PoolProfiles applied; everything is stopped and removed on exit. `config` may hold
    more nodes than the example's (a scale test), `timeout_seconds` bounds each start-up step."""
    ensure_binaries()
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        options = cluster.UpOptions(
            config=config, state_dir=Path(tmp), timeout_seconds=timeout_seconds
        )
        with cluster.running_cluster(options) as state:
            kube = Kube(str(state.kubeconfig))
            kube("apply", "-f", str(ROOT / "crds"))
            kube("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
            kube("apply", "-f", str(EXAMPLES / "pools.yaml"))
            yield Path(tmp), kube, str(state.kubeconfig)


def start_operator(kubeconfig: str, log_path: Path, *options: str) -> subprocess.Popen[bytes]:
    """`deepseek-operator run` as its own process, as in a cluster, logging to `log_path`."""
    with log_path.open("w") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "deepseek_operator",
                "run",
                f"--kubeconfig={kubeconfig}",
                *options,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )


class ReplicaWatch:
    """`kubectl get deployments -w` in the background: (time, name, replicas) of each event.

    `clock` stamps the events: monotonic for durations measured here, wall time where they are
    compared with a Prometheus sample's timestamp."""

    def __init__(
        self, kube: Kube, namespace: str = "default", clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.clock = clock
        self.seen: list[tuple[float, str, int]] = []
        self.process = subprocess.Popen(
            [
                *kube.base,
                "get",
                "deployments",
                "-n",
                namespace,
                "-w",
                "--output-watch-events",
                "-o",
                'jsonpath={.object.metadata.name} {.object.spec.replicas}{"\\n"}',
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                self.seen.append((self.clock(), parts[0], int(parts[1])))

    def wait(self, name: str, replicas: int, after: float, timeout: float = 30) -> float:
        """When `name` first showed `replicas` at or after `after` (on the watch's clock).

        Only the events since `after` are looked at (from the newest back), so a watch of a
        thousand Deployments costs no more per check than one of a single Deployment."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = None
            for at, seen_name, count in reversed(list(self.seen)):
                if at < after:
                    break
                if seen_name == name and count == replicas:
                    found = at
            if found is not None:
                return found
            time.sleep(0.005)
        raise TimeoutError(f"{name} never showed {replicas} replicas")

    def close(self) -> None:
        self.process.terminate()


def metric_samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample in a Prometheus text exposition: the operator's
    /metrics, or the API server's (`kubectl get --raw /metrics`)."""
    from prometheus_client.parser import text_string_to_metric_families

    return [
        (sample.name, dict(sample.labels), float(sample.value))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def operator_metrics(port: int) -> list[tuple[str, dict[str, str], float]]:
    """The samples of the operator's own /metrics on 127.0.0.1:`port`."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        return metric_samples(answer.read().decode())


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: a value that was measured, never an interpolation."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]
