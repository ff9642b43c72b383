"""SIGTERM: readiness fails first, new requests are refused, in-flight requests finish, exit 0.

The real `deepseek-operator serve` runs in a subprocess on 127.0.0.1, because signal handling
belongs to the process.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

import httpx
import pytest

from .conftest import MODEL_NAME, free_port, metric_value, wait_ready

pytestmark = pytest.mark.serving

IN_FLIGHT = 8
MAX_TOKENS = 64


def _serve(
    weights: Path, port: int, log: IO[str], max_batch_size: int = IN_FLIGHT
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-c",
        "from deepseek_operator.cli import main; main()",
        "serve",
        "--weights",
        str(weights),
        "--served-model-name",
        MODEL_NAME,
        "--port",
        str(port),
        "--max-batch-size",
        str(max_batch_size),
        "--drain-seconds",
        "120",
        "--log-level",
        "warning",
    ]
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def _wait_in_flight(base_url: str, count: int) -> None:
    deadline = time.monotonic() + 60
    while (
        metric_value(httpx.get(f"{base_url}/metrics").text, "deepseek_server_requests_in_flight")
        < count
    ):
        assert time.monotonic() < deadline, f"the {count} requests never were in flight together"
        time.sleep(0.02)


def test_sigterm_drains_in_flight_requests_then_exits(random_weights: Path, tmp_path: Path) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("w")
    process = _serve(random_weights, port, log)
    try:
        wait_ready(base_url)

        def long_request(index: int) -> tuple[httpx.Response, float]:
            body = {
                "model": MODEL_NAME,
                "prompt": f"story {index}",
                "max_tokens": MAX_TOKENS,
                "ignore_eos": True,
            }
            response = httpx.post(f"{base_url}/v1/completions", json=body, timeout=300)
            return response, time.monotonic()

        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            futures = [pool.submit(long_request, index) for index in range(IN_FLIGHT)]
            _wait_in_flight(base_url, IN_FLIGHT)

            process.send_signal(signal.SIGTERM)
            ready = httpx.get(f"{base_url}/health/ready", timeout=10)
            unready_at = time.monotonic()
            refused = httpx.post(
                f"{base_url}/v1/completions",
                json={"model": MODEL_NAME, "prompt": "late", "max_tokens": 2},
                timeout=10,
            )
            results = [future.result(timeout=300) for future in futures]

        assert ready.status_code == 503 and ready.json()["status"] == "draining"
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "server_draining"
        for response, finished_at in results:
            assert response.status_code == 200, response.text
            assert response.json()["usage"]["completion_tokens"] == MAX_TOKENS
            assert finished_at > unready_at, "readiness must fail before in-flight requests end"
        assert process.wait(timeout=60) == 0
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{base_url}/health/live", timeout=2)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()


def test_a_second_sigterm_answers_in_flight_requests_with_openai_errors(
    random_weights: Path, tmp_path: Path
) -> None:
    """The second signal exits at once, yet every client still gets an OpenAI-shaped reply
    (a 503 for an unfinished request, never a plain-text 500), and the log says so."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    log = log_path.open("w")
    # One sequence at a time: the 8 requests take 1,600 decoding steps in turn, so some are
    # unfinished when the second signal comes 0.3 s after the first, however fast the machine
    # (batched, the tiny model can finish all of them within that time).
    process = _serve(random_weights, port, log, max_batch_size=1)
    try:
        wait_ready(base_url)

        def long_request(index: int) -> httpx.Response:
            body = {"model": MODEL_NAME, "prompt": f"saga {index}", "max_tokens": 200}
            body["ignore_eos"] = True
            stream = index % 2 == 1
            if stream:
                body["stream"] = True
            return httpx.post(f"{base_url}/v1/completions", json=body, timeout=300)

        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            futures = [pool.submit(long_request, index) for index in range(IN_FLIGHT)]
            _wait_in_flight(base_url, IN_FLIGHT)
            process.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            process.send_signal(signal.SIGTERM)
            responses = [future.result(timeout=300) for future in futures]
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
    stopped = 0
    for response in responses:
        if "text/event-stream" in response.headers.get("content-type", ""):
            events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
            last = json.loads(events[-2] if events[-1] == "[DONE]" else events[-1])
            if "error" in last:
                assert last["error"]["code"] == "server_shutting_down"
                stopped += 1
            continue
        assert response.headers["content-type"].startswith("application/json"), response.text
        if response.status_code == 503:
            assert response.json()["error"]["code"] == "server_shutting_down"
            stopped += 1
        else:
            assert response.status_code == 200, response.text
    assert stopped > 0, "the second signal came after every request had finished"
    text = log_path.read_text()
    assert f"{stopped} requests in flight were answered 503" in text
    assert "drained: every admitted request finished" not in text
