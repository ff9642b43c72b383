"""Every Prometheus answer becomes a value or *unavailable* with its reason.

The HTTP layer is faked with httpx's MockTransport: what is tested is the classification."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from deepseek_operator.adapters import prometheus
from deepseek_operator.api.deployment import Load
from deepseek_operator.core.planning.reconcile import DemandReading, DemandUnavailable

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
LOAD = Load(prometheus_address="http://prometheus:9090", tokens_per_second_query="tokens")


def vector(*values: tuple[float, str]) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": {}, "value": [at, value]} for at, value in values],
        },
    }


def read(handler: Any, load: Load = LOAD) -> DemandReading | DemandUnavailable:
    async def go() -> DemandReading | DemandUnavailable:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            return await prometheus.read_demand(load, NOW, http)

    return asyncio.run(go())


def answer(payload: Any, status: int = 200) -> Any:
    return lambda request: httpx.Response(status, json=payload)


def test_one_fresh_number_is_the_demand():
    got = read(answer(vector((NOW.timestamp() - 10, "123.5"))))
    assert got == DemandReading(123.5, NOW - timedelta(seconds=10))


@pytest.mark.parametrize(
    ("handler", "reason"),
    [
        (answer({}, status=503), "PrometheusError"),
        (answer({"status": "error", "error": "parse error"}), "QueryFailed"),
        (answer(vector()), "NoData"),
        (answer(vector((NOW.timestamp(), "1"), (NOW.timestamp(), "2"))), "SeveralSeries"),
        (answer(vector((NOW.timestamp(), "NaN"))), "NotANumber"),
        (answer(vector((NOW.timestamp(), "+Inf"))), "NotANumber"),
        (answer(vector((NOW.timestamp(), "-3"))), "NotANumber"),
        (answer(vector((NOW.timestamp() - 3600, "5"))), "StaleData"),
        (lambda request: httpx.Response(200, text="<html>"), "PrometheusError"),
    ],
)
def test_anything_else_is_unavailable_with_its_reason(handler: Any, reason: str):
    got = read(handler)
    assert isinstance(got, DemandUnavailable) and got.reason == reason, got


def test_unreachable_and_slow_servers_are_unavailable():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    assert read(refuse).reason == "PrometheusUnreachable"  # type: ignore[union-attr]
    assert read(slow).reason == "PrometheusTimeout"  # type: ignore[union-attr]


def test_a_broken_queue_query_never_hides_a_good_token_rate():
    load = Load(
        prometheus_address="http://prometheus:9090",
        tokens_per_second_query="tokens",
        queue_depth_query="queue",
    )

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params["query"] == "queue":
            return httpx.Response(500)
        return httpx.Response(200, json=vector((NOW.timestamp(), "40")))

    got = read(handler, load)
    assert isinstance(got, DemandReading) and got.queue_depth is None
    assert math.isclose(got.tokens_per_second, 40.0)
