"""SIGTERM: readiness fails first, new requests are refused, in-flight requests finish, exit 0.

The real `deepseek-operator serve` runs in a subprocess on 127.0.0.1, because signal handling
belongs to the process.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from .conftest import MODEL_NAME, free_port, metric_value, wait_ready

pytestmark = pytest.mark.serving

IN_FLIGHT = 8
MAX_TOKENS = 64


def test_sigterm_drains_in_flight_requests_then_exits(random_weights: Path, tmp_path: Path) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("w")
    command = [
        sys.executable,
        "-c",
        "from deepseek_operator.cli import main; main()",
        "serve",
        "--weights",
        str(random_weights),
        "--served-model-name",
        MODEL_NAME,
        "--port",
        str(port),
        "--max-batch-size",
        "8",
        "--drain-seconds",
        "120",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
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
            deadline = time.monotonic() + 60
            while (
                metric_value(
                    httpx.get(f"{base_url}/metrics").text, "deepseek_server_requests_in_flight"
                )
                < IN_FLIGHT
            ):
                assert time.monotonic() < deadline, "the 8 requests never were in flight together"
                time.sleep(0.02)

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
