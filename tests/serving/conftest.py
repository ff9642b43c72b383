"""Tiny DeepSeek-architecture checkpoints built once per session, and servers running on them.

In-process servers run uvicorn in a thread on 127.0.0.1 with a free port; the SIGTERM test runs
the real command in a subprocess instead, because signals belong to a process.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import httpx
import uvicorn

from deepseek_operator.serving.app import create_app
from deepseek_operator.serving.settings import ServerSettings
from deepseek_operator.serving.testing import TinyModelSpec, build_tiny_model

MODEL_NAME = "deepseek-r1-tiny"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningServer:
    base_url: str
    settings: ServerSettings
    app: object

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=60)


def wait_ready(base_url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{base_url} did not become ready in {seconds} s")


@pytest.fixture(scope="session")
def scripted_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("scripted") / MODEL_NAME, scripted=True)


@pytest.fixture(scope="session")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(
        tmp_path_factory.mktemp("random") / MODEL_NAME, TinyModelSpec(context=256)
    )


@contextmanager
def serve_in_thread(settings: ServerSettings) -> Iterator[RunningServer]:
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{settings.port}"
    try:
        wait_ready(base_url)
        yield RunningServer(base_url=base_url, settings=settings, app=app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="session")
def scripted_server(scripted_weights: Path) -> Iterator[RunningServer]:
    settings = ServerSettings(
        weights=scripted_weights,
        served_model_name=MODEL_NAME,
        port=free_port(),
        max_batch_size=16,
        default_max_tokens=16,
        seed=0,
    )
    with serve_in_thread(settings) as server:
        yield server


@pytest.fixture(scope="session")
def random_server(random_weights: Path) -> Iterator[RunningServer]:
    settings = ServerSettings(
        weights=random_weights,
        served_model_name=MODEL_NAME,
        port=free_port(),
        max_batch_size=32,
        max_queue=128,
        default_max_tokens=16,
        seed=0,
    )
    with serve_in_thread(settings) as server:
        yield server


def metric_value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples called `name` whose labels include `labels`."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def run_serve(*args: str) -> subprocess.CompletedProcess[str]:
    """`deepseek-operator serve ARGS` as a user runs it, in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "deepseek_operator", "serve", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
