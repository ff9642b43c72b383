"""Readiness waits for the weights and a warm-up; metrics carry the pod's deployment and pool."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from deepseek_operator.serving.app import create_app
from deepseek_operator.serving.engine import Engine
from deepseek_operator.serving.settings import ServerSettings

from .conftest import MODEL_NAME, RunningServer, metric_value

pytestmark = pytest.mark.serving


def test_before_loading_finishes_the_server_is_alive_but_not_ready(
    random_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPSEEK_DEPLOYMENT", "r1-7b")
    monkeypatch.setenv("DEEPSEEK_POOL", "cpu-xeon")
    app = create_app(ServerSettings(weights=random_weights, served_model_name=MODEL_NAME))
    client = TestClient(app)  # no lifespan: the weights never start loading
    assert client.get("/health/live").status_code == 200
    ready = client.get("/health/ready")
    assert ready.status_code == 503 and ready.json()["status"] == "loading"
    busy = client.post(
        "/v1/completions", json={"model": MODEL_NAME, "prompt": "hi", "max_tokens": 2}
    )
    assert busy.status_code == 503
    assert busy.json()["error"]["code"] == "model_loading" and busy.headers["retry-after"]
    metrics = client.get("/metrics").text
    assert metric_value(metrics, "deepseek_server_ready", deployment="r1-7b", pool="cpu-xeon") == 0
    assert (
        metric_value(
            metrics,
            "deepseek_server_requests_total",
            deployment="r1-7b",
            pool="cpu-xeon",
            status="503",
        )
        == 1
    )


def test_a_loaded_server_is_ready_after_its_warm_up(random_server: RunningServer) -> None:
    with random_server.client() as http:
        assert http.get("/health/ready").json() == {"status": "ready"}
        metrics = http.get("/metrics").text
    assert metric_value(metrics, "deepseek_server_ready") == 1


class _SilentManager:
    """Takes requests like transformers' batching manager and generates only when told to."""

    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}
        self.background_thread_status = SimpleNamespace(fatal_error=None)
        self.output_router = SimpleNamespace(_lock=threading.Lock(), result_handlers={})

    def is_running(self) -> bool:
        return True

    def register_result_handler(self, request_id: str, callback: Any) -> None:
        self.handlers[request_id] = callback

    def add_request(self, input_ids: list[int], request_id: str, **kwargs: Any) -> str:
        return request_id

    def cancel_request(self, request_id: str) -> None:
        pass

    def stop(self, block: bool = True, timeout: float | None = None) -> None:
        pass

    def finish_all(self) -> None:
        for callback in self.handlers.values():
            callback(SimpleNamespace(generated_tokens=[7, 8], error=None, is_finished=lambda: True))


def test_loaded_weights_alone_do_not_make_the_server_ready(
    random_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = _SilentManager()
    monkeypatch.setattr(Engine, "start", lambda engine: engine.attach(manager))
    settings = ServerSettings(weights=random_weights, served_model_name=MODEL_NAME, max_wait_ms=0)
    app = create_app(settings)
    state = app.state.server
    with TestClient(app) as client:
        deadline = time.monotonic() + 60
        while not manager.handlers:  # the weights are loaded and the warm-up was submitted
            assert state.load_error is None, state.load_error
            assert time.monotonic() < deadline, "the warm-up generation was never submitted"
            time.sleep(0.02)
        time.sleep(0.2)
        assert client.get("/health/ready").status_code == 503
        assert metric_value(client.get("/metrics").text, "deepseek_server_ready") == 0
        assert client.portal is not None
        client.portal.call(manager.finish_all)  # the warm-up generation ends, on the event loop
        while client.get("/health/ready").status_code != 200:
            assert time.monotonic() < deadline, "the finished warm-up did not make it ready"
            time.sleep(0.02)
