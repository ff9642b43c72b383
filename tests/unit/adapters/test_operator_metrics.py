"""The operator's /metrics: what one decision sets, that a deployment's series go with it, and
that every name the dashboard and the alert rules read is served by the operator or by the
model server."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from deepseek_operator.adapters.metrics import OperatorMetrics
from deepseek_operator.core.planning.correction import PoolLoad, Steady
from deepseek_operator.core.planning.reconcile import (
    DemandReading,
    ReconcileHistory,
    Snapshot,
    decide,
)
from deepseek_operator.serving.metrics import ServerMetrics
from tests.monitoring import (
    dashboard_expressions,
    metric_names,
    recorded_names,
    rule_expressions,
)
from tests.unit.planning.test_reconcile import NIGHT_STARTS, PROFILES, example, pools
from tests.unit.planning.test_reconcile_load import a100

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
    "gauge": ("",),
}


def served_names(text: str) -> set[str]:
    """Every sample name a /metrics text can hold, from its families and their types."""
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names |= {family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    return names


def a_night_move() -> tuple[Snapshot, object]:
    """The night boundary moves an A100 replica to CPU, with load measured."""
    dsd = example(load={"prometheusAddress": "http://prometheus:9090"})
    history = ReconcileHistory(
        target={"a100": 1}, written={"a100": 1}, steady={"a100": Steady(1, NIGHT_STARTS)}
    )
    reading = DemandReading(
        10.0,
        NIGHT_STARTS - timedelta(seconds=3),
        2.0,
        (PoolLoad("a100", 10.0, 1.0, NIGHT_STARTS - timedelta(seconds=3)),),
    )
    snapshot = Snapshot(dsd, PROFILES, pools(a100=a100(1)), reading)
    return snapshot, decide(snapshot, NIGHT_STARTS, history)


def scrape(metrics: OperatorMetrics) -> str:
    port = metrics.serve(0, "127.0.0.1")
    return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text


def value(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def test_a_decision_becomes_series_joinable_on_namespace_deployment_and_pool():
    snapshot, decision = a_night_move()
    metrics = OperatorMetrics()
    metrics.observe("ml", "r1-7b", snapshot, decision, 0.012, NIGHT_STARTS)  # type: ignore[arg-type]
    text = scrape(metrics)
    ids = {"namespace": "ml", "deployment": "r1-7b"}
    moved = {**ids, "from_pool": "a100", "to_pool": "cpu-xeon", "reason": "Window"}
    assert value(text, "deepseek_operator_moves_total", **moved) == 1
    assert value(text, "deepseek_operator_desired_replicas", **ids, pool="cpu-xeon") == 1
    assert value(text, "deepseek_operator_desired_replicas", **ids, pool="a100") == 0
    assert value(text, "deepseek_operator_ready_replicas", **ids, pool="a100") == 1
    assert value(text, "deepseek_operator_min_available", **ids) == 1
    cost = value(text, "deepseek_operator_cost_per_hour", **ids, currency="CNY")
    assert cost == pytest.approx(3.3999, rel=1e-3)
    pool_cost = value(text, "deepseek_operator_pool_cost_per_hour", **ids, pool="cpu-xeon")
    assert pool_cost == pytest.approx(cost)
    assert value(text, "deepseek_operator_savings_ratio", **ids) is not None
    assert value(text, "deepseek_operator_demand_tokens_per_second", **ids) == 10.0
    assert value(text, "deepseek_operator_queue_tokens_per_second", **ids) == 10.0  # 2 × 5 tok/s
    assert value(text, "deepseek_operator_metrics_available", **ids) == 1
    ready = {**ids, "condition": "Ready"}
    assert value(text, "deepseek_operator_condition", **ready, status="True") == 1
    assert value(text, "deepseek_operator_condition", **ready, status="False") == 0
    assert value(text, "deepseek_operator_plan_duration_seconds_count") == 1
    assert value(text, "deepseek_operator_demand_age_seconds_count") == 1
    calibrated = {**ids, "pool": "a100", "figure": "calibrated"}
    assert value(text, "deepseek_operator_tokens_per_second_per_replica", **calibrated) == (
        pytest.approx(1255, rel=1e-3)
    )


def test_a_finished_deployment_leaves_no_series_behind():
    snapshot, decision = a_night_move()
    metrics = OperatorMetrics()
    metrics.observe("ml", "r1-7b", snapshot, decision, 0.01, NIGHT_STARTS)  # type: ignore[arg-type]
    metrics.source_error("ml", "r1-7b", "NoData")
    metrics.reconcile_failed("ml", "r1-7b", "api")
    metrics.forget("ml", "r1-7b")
    text = generate_latest(metrics.registry).decode()
    assert 'deployment="r1-7b"' not in text


def test_every_name_the_dashboard_and_the_alerts_read_is_served():
    snapshot, decision = a_night_move()
    operator = OperatorMetrics()
    operator.observe("ml", "r1-7b", snapshot, decision, 0.01, NIGHT_STARTS)  # type: ignore[arg-type]
    served = served_names(scrape(operator))
    server = ServerMetrics("r1-7b", "a100")
    served |= served_names(generate_latest(server.registry).decode())
    served |= recorded_names()
    expressions = {f"dashboard: {e}": e for e in dashboard_expressions()}
    expressions |= {f"alert {n}": e for n, e in rule_expressions().items()}
    assert len(expressions) > 20
    missing = {
        where: sorted(metric_names(expression) - served)
        for where, expression in expressions.items()
        if metric_names(expression) - served
    }
    assert not missing, missing
    used = set().union(*(metric_names(e) for e in expressions.values()))
    assert {"deepseek_operator_moves_total", "deepseek_server_queue_depth"} <= used


def test_the_name_check_catches_a_misspelt_metric():
    assert metric_names(
        'sum by (pool) (rate(deepseek_server_generation_tokens_totl{namespace=~"$namespace"}'
        "[$__rate_interval])) / on (pool) group_left deepseek_operator_ready_replicas"
    ) == {"deepseek_server_generation_tokens_totl", "deepseek_operator_ready_replicas"}
