"""The adapter against a real Prometheus: what it answers for an empty result, several series,
NaN, Inf, a refused query, and a pipeline whose samples arrive late, classified as the
operator's MetricsAvailable reasons. (A 500 and a timeout, which a healthy Prometheus does not
give, are served by a real HTTP server in tests/unit/adapters/test_prometheus.py.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deepseek_operator.adapters import prometheus
from deepseek_operator.adapters.prometheus import Client, LoadSpec
from deepseek_operator.core.planning.reconcile import DemandReading, DemandUnavailable
from tests.e2e.prometheus_support import LoadSource, PrometheusServer, running_prometheus


@pytest.fixture(scope="module")
def load_source() -> Iterator[LoadSource]:
    source = LoadSource()
    source.set("ml", "fresh", "cpu", tokens_per_second=12.0, running=3, queue=2)
    source.set("ml", "late", "cpu", tokens_per_second=12.0, running=3, lag=30)
    source.start()
    try:
        yield source
    finally:
        source.stop()


@pytest.fixture(scope="module")
def server(
    load_source: LoadSource, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    directory = tmp_path_factory.mktemp("prometheus")
    with running_prometheus(directory, [f"127.0.0.1:{load_source.port}"]) as running:
        yield running


def own(server: PrometheusServer, query: str) -> DemandReading | DemandUnavailable:
    spec = LoadSpec("ml", "r1", server.address, ("transformers",), tokens_query=query)
    batch = DemandUnavailable("NoData", "")
    return prometheus.complete(spec, batch, Client(server.address, 5.0), datetime.now(UTC))


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("sum(deepseek_server_no_such_series)", "NoData"),
        ('label_replace(vector(1), "a", "x", "", "") or label_replace(vector(2), "a", "y", "", "")', "SeveralSeries"),
        ("vector(0) / 0", "NotANumber"),
        ("vector(1) / 0", "NotANumber"),
        ("vector(-1)", "NotANumber"),
        ("sum(rate(deepseek_server_generation_tokens_total[1m]", "QueryFailed"),
    ],
    ids=["empty", "several-series", "nan", "inf", "negative", "parse-error"],
)  # fmt: skip
def test_a_real_prometheus_answer_is_classified(server: PrometheusServer, query: str, reason: str):
    got = own(server, query)
    assert isinstance(got, DemandUnavailable) and got.reason == reason, got


def test_a_number_is_the_demand(server: PrometheusServer):
    got = own(server, "vector(42)")
    assert isinstance(got, DemandReading) and got.tokens_per_second == 42.0


def test_the_batch_reads_a_fresh_deployment_and_calls_a_late_one_stale(server: PrometheusServer):
    specs = [
        LoadSpec("ml", name, server.address, ("transformers",), stale_after=timedelta(seconds=10))
        for name in ("fresh", "late", "absent")
    ]
    client = Client(server.address, 5.0)
    deadline = time.monotonic() + 60
    while True:
        readings = prometheus.read_batch(client, specs)
        if isinstance(readings[("ml", "fresh")], DemandReading) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    fresh = readings[("ml", "fresh")]
    assert isinstance(fresh, DemandReading), fresh
    assert 0 < fresh.tokens_per_second <= 12.5  # rate() reaches 12 once its window has filled
    assert fresh.queue_depth == 2.0 and fresh.pools[0].running_requests == 3.0
    late = readings[("ml", "late")]
    assert isinstance(late, DemandUnavailable) and late.reason == "StaleData", late
    assert "pool 'cpu' is 3" in late.message  # about 30 s old
    absent = readings[("ml", "absent")]
    assert isinstance(absent, DemandUnavailable) and absent.reason == "NoData"


def test_a_stopped_prometheus_is_unreachable(load_source: LoadSource, tmp_path: Path) -> None:
    with running_prometheus(tmp_path, [f"127.0.0.1:{load_source.port}"]) as own_server:
        address = own_server.address
    spec = LoadSpec("ml", "fresh", address, ("transformers",))
    readings = prometheus.read_batch(Client(address, 2.0), [spec])
    got = readings[("ml", "fresh")]
    assert isinstance(got, DemandUnavailable) and got.reason == "PrometheusUnreachable"
