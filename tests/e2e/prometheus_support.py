"""A real Prometheus (Debian's `prometheus`) on 127.0.0.1, and a load source it scrapes there:
an exporter that speaks the model server's metric names (`deepseek_server_*`) with figures a
test sets per namespace, deployment and pool.

Both bind 127.0.0.1 only (the network rule: nothing connects to a pod, node or service IP).
Prometheus scrapes every second, so a sample is queryable within about a second of a change.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from deepseek_operator.controlplane import prometheus as local_prometheus
from deepseek_operator.controlplane.errors import ControlPlaneError
from deepseek_operator.controlplane.prometheus import serve_exposition
from deepseek_operator.core.workloads.engines import TRANSFORMERS

NAMES = TRANSFORMERS.metrics


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        pytest.fail(
            "the prometheus binary is not installed: `apt-get install prometheus` "
            "(.ci/run installs it on a fresh machine)"
        )
    return found


# ---------------------------------------------------------------------------------------------
# The load source


@dataclass
class _Pool:
    tokens_per_second: float = 0.0
    running: float = 0.0
    queue: float = 0.0
    total: float = 0.0
    since: float = field(default_factory=time.monotonic)
    lag: float = 0.0
    """Seconds behind now that each sample is stamped (a late pipeline); 0: not stamped."""

    def counter(self, now: float) -> float:
        return self.total + self.tokens_per_second * (now - self.since)


class LoadSource:
    """Counters that grow at the tokens/s a test sets, and the queue and running gauges."""

    def __init__(self) -> None:
        self._pools: dict[tuple[str, str, str], _Pool] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    def set(
        self,
        namespace: str,
        deployment: str,
        pool: str,
        *,
        tokens_per_second: float | None = None,
        running: float | None = None,
        queue: float | None = None,
        lag: float | None = None,
    ) -> float:
        """Change one pool's figures from now on; returns the wall-clock time of the change."""
        with self._lock:
            now = time.monotonic()
            entry = self._pools.setdefault((namespace, deployment, pool), _Pool(since=now))
            if tokens_per_second is not None:
                entry.total = entry.counter(now)
                entry.since = now
                entry.tokens_per_second = tokens_per_second
            if running is not None:
                entry.running = running
            if queue is not None:
                entry.queue = queue
            if lag is not None:
                entry.lag = lag
        return time.time()

    def exposition(self) -> str:
        lines = [
            f"# TYPE {NAMES.generated_tokens_total} counter",
            f"# TYPE {NAMES.running_requests} gauge",
            f"# TYPE {NAMES.queue_depth} gauge",
        ]
        with self._lock:
            now = time.monotonic()
            for (namespace, deployment, pool), entry in sorted(self._pools.items()):
                labels = f'namespace="{namespace}",deployment="{deployment}",pool="{pool}"'
                counter = entry.counter(now - entry.lag)
                stamp = f" {int((time.time() - entry.lag) * 1000)}" if entry.lag else ""
                lines.append(f"{NAMES.generated_tokens_total}{{{labels}}} {counter}{stamp}")
                lines.append(f"{NAMES.running_requests}{{{labels}}} {entry.running}{stamp}")
                lines.append(f"{NAMES.queue_depth}{{{labels}}} {entry.queue}{stamp}")
        return "\n".join(lines) + "\n"

    def start(self) -> LoadSource:
        self._server = serve_exposition(self.exposition)
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, args=(0.1,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


# ---------------------------------------------------------------------------------------------
# Prometheus


@dataclass
class PrometheusServer:
    """`prometheus` scraping `targets` every second, on a port of 127.0.0.1; `stop` and `start`
    keep its data directory, as a restarted server would."""

    directory: Path
    targets: list[str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PrometheusServer:
        local_prometheus.write_config(self.directory, self.targets)
        log = (self.directory / "prometheus.log").open("ab")
        process = subprocess.Popen(
            local_prometheus.argv(prometheus_binary(), self.directory, self.port),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.process = process
        log.close()
        try:
            local_prometheus.wait_ready(self.address, lambda: process.poll() is None)
        except ControlPlaneError as error:
            raise AssertionError(f"{error}:\n{self.log()[-2000:]}") from error
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def log(self) -> str:
        path = self.directory / "prometheus.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def query(self, promql: str) -> dict[str, Any]:
        """The JSON answer of an instant query (raises on HTTP errors)."""
        url = f"{self.address}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as answer:
            return dict(json.load(answer))

    def value(self, promql: str) -> float | None:
        """The single value of an instant query, or None when it has no series."""
        result = self.query(promql)["data"]["result"]
        return float(result[0]["value"][1]) if result else None


@contextlib.contextmanager
def running_prometheus(directory: Path, targets: list[str]) -> Iterator[PrometheusServer]:
    server = PrometheusServer(directory, targets).start()
    try:
        yield server
    finally:
        server.stop()
