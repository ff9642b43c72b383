"""Every Prometheus answer becomes a value or *unavailable* with its reason, each case served
by a real HTTP server on 127.0.0.1 (tests/unit/adapters/fake_prometheus.py)."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deepseek_operator.adapters import prometheus
from deepseek_operator.adapters.prometheus import Client, LoadSpec
from deepseek_operator.core.planning.correction import PoolLoad
from deepseek_operator.core.planning.reconcile import DemandReading, DemandUnavailable
from deepseek_operator.core.workloads.engines import load_query
from tests.unit.adapters.fake_prometheus import (
    Answer,
    error,
    fake_prometheus,
    scalar,
    vector,
)


def spec(name: str = "r1", namespace: str = "ml", **changes: Any) -> LoadSpec:
    fields: dict[str, Any] = {
        "namespace": namespace,
        "name": name,
        "address": "",
        "engines": ("transformers",),
        **changes,
    }
    return LoadSpec(**fields)


def own_query(answer: Answer, timeout: float = 2.0) -> DemandReading | DemandUnavailable:
    """A spec's own tokensPerSecondQuery answered with `answer` (the batch has the pools)."""
    with fake_prometheus(lambda q: answer) as server:
        load = spec(address=server.address, tokens_query="sum(rate(my_tokens[1m]))")
        batch = DemandUnavailable("NoData", "no batch")
        now = datetime.now(UTC)
        return prometheus.complete(load, batch, Client(server.address, timeout), now)


def reason(reading: DemandReading | DemandUnavailable) -> str:
    assert isinstance(reading, DemandUnavailable), reading
    return reading.reason


# ---------------------------------------------------------------------------------------------
# A spec's own query: one number


def test_one_fresh_number_is_the_demand():
    now = time.time()
    got = own_query(vector(({}, now, "123.5")))
    assert isinstance(got, DemandReading) and got.tokens_per_second == 123.5
    assert abs(got.observed_at.timestamp() - now) < 1e-3
    assert isinstance(own_query(scalar(now, "7")), DemandReading)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (vector(), "NoData"),
        (
            vector(({"pod": "a"}, time.time(), "1"), ({"pod": "b"}, time.time(), "2")),
            "SeveralSeries",
        ),
        (vector(({}, time.time(), "NaN")), "NotANumber"),
        (vector(({}, time.time(), "+Inf")), "NotANumber"),
        (vector(({}, time.time(), "-3")), "NotANumber"),
        (vector(({}, time.time() - 3600, "5")), "StaleData"),
        (Answer(status=500, body=b"internal error"), "PrometheusError"),
        (Answer(status=503, body=b""), "PrometheusError"),
        (error(400), "QueryFailed"),
        (error(422, "execution", "many-to-many matching"), "QueryFailed"),
        (Answer(status=200, body=b"<html>"), "PrometheusError"),
    ],
    ids=[
        "empty",
        "several-series",
        "nan",
        "inf",
        "negative",
        "stale",
        "500",
        "503",
        "400",
        "422",
        "not-json",
    ],
)
def test_anything_else_is_unavailable_with_its_reason(answer: Answer, expected: str):
    got = own_query(answer)
    assert reason(got) == expected
    assert isinstance(got, DemandUnavailable) and got.message


def test_a_query_error_names_what_prometheus_said():
    got = own_query(error(400, message='1:5: parse error: unexpected "}"'))
    assert isinstance(got, DemandUnavailable) and 'unexpected "}"' in got.message


def test_a_slow_server_times_out():
    started = time.monotonic()
    got = own_query(Answer(delay=2.0, body=b"{}"), timeout=0.3)
    assert reason(got) == "PrometheusTimeout"
    assert time.monotonic() - started < 1.5  # no retries


def test_a_closed_port_is_unreachable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"http://127.0.0.1:{port}"
    load = spec(address=address, tokens_query="x")
    batch = DemandUnavailable("NoData", "")
    got = prometheus.complete(load, batch, Client(address, 0.5), datetime.now(UTC))
    assert reason(got) == "PrometheusUnreachable"
    assert "Connection refused" in got.message  # type: ignore[union-attr]


def test_a_broken_queue_query_never_hides_a_good_token_rate():
    def answer(query: str) -> Answer:
        return Answer(status=500) if query == "queue" else vector(({}, time.time(), "40"))

    with fake_prometheus(answer) as server:
        load = spec(address=server.address, tokens_query="tokens", queue_query="queue")
        batch = DemandUnavailable("NoData", "")
        got = prometheus.complete(load, batch, Client(server.address), datetime.now(UTC))
    assert isinstance(got, DemandReading) and got.tokens_per_second == 40.0
    assert got.queue_depth is None


# ---------------------------------------------------------------------------------------------
# The batched query: every deployment in one request


def series(namespace: str, deployment: str, pool: str, kind: str, at: float, value: str) -> Any:
    labels = {
        "namespace": namespace,
        "deployment": deployment,
        "pool": pool,
        "part": f"transformers/{kind}",
    }
    return (labels, at, value)


def fleet(now: float, **overrides: str) -> Answer:
    """r1 in ml on two pools and r2 in ops on one, every part present."""
    rows = []
    for namespace, name, pool, tokens, running, queue in (
        ("ml", "r1", "a100", "900", "12", "3"),
        ("ml", "r1", "cpu", "30", "4", "1"),
        ("ops", "r2", "cpu", "15", "2", "0"),
    ):
        figures = {"tokens": tokens, "running": running, "queue": queue, "at": str(now - 2)}
        for kind, value in figures.items():
            value = overrides.get(f"{namespace}/{name}/{pool}/{kind}", value)
            rows.append(series(namespace, name, pool, kind, now, value))
    return vector(*rows)


def batch(answer: Answer, *specs: LoadSpec) -> dict[Any, DemandReading | DemandUnavailable]:
    with fake_prometheus(lambda q: answer) as server:
        readings = prometheus.read_batch(Client(server.address, 0.5), specs)
        assert server.requests() == 1
    return readings


def test_one_request_reads_every_deployment_with_its_pools():
    now = time.time()
    readings = batch(fleet(now), spec("r1", "ml"), spec("r2", "ops"), spec("r1", "ops"))
    r1 = readings[("ml", "r1")]
    assert isinstance(r1, DemandReading)
    assert r1.tokens_per_second == 930.0 and r1.queue_depth == 4.0
    at = datetime.fromtimestamp(now - 2, UTC)
    assert r1.pools == (PoolLoad("a100", 900.0, 12.0, at), PoolLoad("cpu", 30.0, 4.0, at))
    assert r1.observed_at == at
    r2 = readings[("ops", "r2")]
    assert isinstance(r2, DemandReading) and r2.tokens_per_second == 15.0
    # same name, other namespace: not r1's figures
    assert reason(readings[("ops", "r1")]) == "NoData"


def test_the_batched_query_is_one_expression_per_engine_part():
    query = load_query(["vllm", "transformers", "vllm"])
    assert query.count(" or ") == 7  # 2 engines × 4 parts
    assert "sum by (namespace, deployment, pool) (rate(vllm:generation_tokens_total[1m]))" in query
    assert "timestamp(deepseek_server_generation_tokens_total)" in query
    assert '"part", "transformers/queue"' in query


def test_a_deployment_reads_only_its_own_engines_series():
    now = time.time()
    readings = batch(fleet(now), spec("r1", "ml", engines=("vllm",)))
    assert reason(readings[("ml", "r1")]) == "NoData"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"ml/r1/cpu/tokens": "NaN"}, "NotANumber"),
        ({"ml/r1/cpu/queue": "-1"}, "NotANumber"),
        ({"ml/r1/cpu/at": str(time.time() - 3600)}, "StaleData"),
    ],
    ids=["nan", "negative", "stale"],
)
def test_a_broken_figure_makes_only_its_deployment_unavailable(change: dict[str, str], expected):
    readings = batch(fleet(time.time(), **change), spec("r1", "ml"), spec("r2", "ops"))
    assert reason(readings[("ml", "r1")]) == expected
    assert isinstance(readings[("ops", "r2")], DemandReading)


def test_staleness_is_measured_on_prometheus_own_clock():
    # Prometheus' clock runs an hour behind the operator's: samples 2 s old are fresh.
    skewed = time.time() - 3600
    readings = batch(fleet(skewed), spec("r1", "ml"))
    assert isinstance(readings[("ml", "r1")], DemandReading)


def test_repeated_series_for_one_pool_are_ambiguous():
    now = time.time()
    rows = [series("ml", "r1", "cpu", "tokens", now, "1")] * 2
    readings = batch(vector(*rows), spec("r1", "ml"))
    assert reason(readings[("ml", "r1")]) == "SeveralSeries"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (Answer(status=500, body=b"boom"), "PrometheusError"),
        (Answer(delay=2.0, body=b"{}"), "PrometheusTimeout"),
        (vector(), "NoData"),
    ],
    ids=["500", "timeout", "empty"],
)
def test_a_failed_batch_makes_every_deployment_unavailable(answer: Answer, expected: str):
    readings = batch(answer, spec("r1", "ml"), spec("r2", "ops"))
    assert {reason(r) for r in readings.values()} == {expected}


def test_a_hundred_deployments_cost_one_request():
    specs = [spec(f"r{i}", "ml") for i in range(100)]
    readings = batch(fleet(time.time()), *specs)
    assert len(readings) == 100


def test_load_spec_from_a_resource():
    from tests.unit.planning.test_reconcile import example

    dsd = example(load={"prometheusAddress": "http://prometheus:9090/", "queueDepthThreshold": 3})
    load = LoadSpec.of("ml", dsd)
    assert load is not None
    assert load.address == "http://prometheus:9090" and load.engines == ("llamacpp", "vllm")
    assert load.queue_threshold == 3 and load.stale_after == timedelta(seconds=120)
    assert LoadSpec.of("ml", example()) is None
