"""Prometheus (Debian's `prometheus` binary) beside the local cluster, for the demo: it scrapes
targets on 127.0.0.1 every second and listens on 127.0.0.1 only (the network rule: nothing
connects to a simulated pod, node or service address)."""

from __future__ import annotations

import contextlib
import shutil
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from deepseek_operator.controlplane.errors import ControlPlaneError

SCRAPE_SECONDS = 1


def find_prometheus() -> str | None:
    return shutil.which("prometheus")


def write_config(directory: Path, targets: list[str]) -> Path:
    """A configuration that scrapes `targets` every second, keeping their own labels."""
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "global": {
            "scrape_interval": f"{SCRAPE_SECONDS}s",
            "scrape_timeout": f"{SCRAPE_SECONDS}s",
            "evaluation_interval": f"{SCRAPE_SECONDS}s",
        },
        "scrape_configs": [
            {"job_name": "load", "honor_labels": True, "static_configs": [{"targets": targets}]}
        ],
    }
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def argv(binary: str, directory: Path, port: int) -> list[str]:
    return [
        binary,
        f"--config.file={directory / 'prometheus.yml'}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=2h",
        "--web.console.templates=/dev/null",
        "--web.console.libraries=/dev/null",
    ]


def wait_ready(address: str, alive: Callable[[], bool], timeout: float = 60.0) -> None:
    """Return once `address/-/ready` answers 200; raise if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise ControlPlaneError("Prometheus exited while starting")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{address}/-/ready", timeout=2) as answer,
        ):
            if answer.status == 200:
                return
        time.sleep(0.2)
    raise ControlPlaneError(f"Prometheus did not become ready within {timeout:.0f} s")


def serve_exposition(render: Callable[[], str], port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1 answering every GET with `render()` in Prometheus' text
    format: a stand-in for model servers' `/metrics` where simulated pods run no process. The
    caller runs `serve_forever`; port 0 picks a free one (see `server_address`)."""

    class Exposition(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Exposition)
    server.daemon_threads = True
    return server
