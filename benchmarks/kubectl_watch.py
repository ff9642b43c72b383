"""kubectl as the benchmarks' client: the same binary and kubeconfig a user has, so a measured
latency includes nothing a user would not see."""

from __future__ import annotations

import json
import math
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import yaml

from deepseek_operator.controlplane.build import find_kubectl


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
        """When `name` first showed `replicas` at or after `after` (on the watch's clock)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, seen_name, count in list(self.seen):
                if at >= after and seen_name == name and count == replicas:
                    return at
            time.sleep(0.005)
        raise TimeoutError(f"{name} never showed {replicas} replicas")

    def close(self) -> None:
        self.process.terminate()


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: a value that was measured, never an interpolation."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]
