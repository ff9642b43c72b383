"""Readiness waits for the weights and a warm-up; metrics carry the pod's deployment and pool."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from deepseek_operator.serving.app import create_app
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
