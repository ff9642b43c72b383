"""Load in the loop: the operator, as its own process, reads demand from a real Prometheus on
127.0.0.1 that scrapes a load source speaking the model server's metric names.

The deployment here runs this project's model server (`engine: transformers`) on the tests'
A100 and CPU pools, so its demand comes from the engine's default, batched query. A CPU replica
of the 7B at int8 is estimated at 40.9 tok/s, an A100 one at bf16 at 1,255 tok/s; with
replicas.max 2 and 20 % headroom the CPU pool covers at most 2 × 40.9 / 1.2 = 68 tok/s, and the
A100 replica costs 1.0/h against 0.3/h for a CPU one.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from deepseek_operator.adapters.prometheus import REASONS as PROMETHEUS_REASONS
from deepseek_operator.api.deployment import DeepSeekDeployment
from deepseek_operator.api.pool import PoolProfile
from deepseek_operator.core.planning.inputs import (
    PoolSetup,
    exchange_rates,
    pool_option,
    report_currency,
)
from tests.e2e.conftest import ClusterHandle, StartOperator
from tests.e2e.operator_support import (
    condition,
    deployment,
    event_reasons,
    events,
    placed,
    pool_deployments,
    pool_profiles,
    status,
    wait_until,
)
from tests.e2e.prometheus_support import (
    LoadSource,
    PrometheusServer,
    free_port,
    running_prometheus,
)

INTERVAL = 15
"""reconcileIntervalSeconds of the deployments here: the reaction must not wait for it."""
LOW, HIGH = 10.0, 300.0
"""Tokens/s: one CPU replica's worth, and far beyond what the CPU pool may hold."""


@pytest.fixture
def load_source() -> Iterator[LoadSource]:
    source = LoadSource().start()
    try:
        yield source
    finally:
        source.stop()


@pytest.fixture
def prometheus(load_source: LoadSource, tmp_path: Path) -> Iterator[PrometheusServer]:
    with running_prometheus(tmp_path / "prometheus", [f"127.0.0.1:{load_source.port}"]) as server:
        yield server


def load_deployment(
    name: str,
    prometheus: PrometheusServer,
    *,
    policy: str = "costOptimal",
    replicas: tuple[int, int] = (1, 2),
    interval: int = INTERVAL,
    scale_down_seconds: int = 20,
    correction: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A DeepSeekDeployment on the A100 and CPU pools, in a window `policy` that holds now."""
    now = datetime.now(UTC)
    night = {
        "name": "night",
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=3)).strftime("%H:%M"),
        "policy": policy,
    }
    body = deployment(name, ["e2e-a100", "e2e-cpu"], policy="costOptimal", windows=[night])
    spec = body["spec"]
    spec["variants"] = [
        {"pool": "e2e-a100", "engine": "transformers", "precision": "bf16"},
        {"pool": "e2e-cpu", "engine": "transformers", "precision": "int8"},
    ]
    spec["replicas"] = {"min": replicas[0], "max": replicas[1]}
    spec["migration"]["minAvailable"] = 1
    spec["slo"] = {
        "minTokensPerSecondPerRequest": 1,
        "maxTimeToFirstTokenSeconds": 30,
        "headroomFraction": 0.2,
    }
    spec["load"] = {
        "prometheusAddress": prometheus.address,
        "scaleUpStabilizationSeconds": 0,
        "scaleDownStabilizationSeconds": scale_down_seconds,
    }
    if correction is not None:
        spec["load"]["capacityCorrection"] = correction
    spec["reconcileIntervalSeconds"] = interval
    return body


def start_loaded_operator(start_operator: StartOperator) -> int:
    port = free_port()
    start_operator(f"--metrics-port={port}", "--metrics-address=127.0.0.1")
    return port


def settle_on_cpu_with_metrics(
    cluster: ClusterHandle,
    namespace: str,
    start_operator: StartOperator,
    load_source: LoadSource,
    prometheus: PrometheusServer,
) -> int:
    """r1 on one Ready CPU replica at low load, its metrics read: where the load tests start.
    Returns the operator's metrics port."""
    load_source.set(namespace, "r1", "e2e-cpu", tokens_per_second=LOW)
    port = start_loaded_operator(start_operator)
    cluster.apply(load_deployment("r1", prometheus), namespace)
    wait_until(lambda: placed(cluster, namespace, "r1", "e2e-cpu", 1), 90, "1 Ready CPU pod")
    wait_until(
        lambda: condition(cluster, namespace, "r1", "MetricsAvailable").get("status") == "True",
        30,
        "MetricsAvailable=True",
    )
    return port


def estimated_tokens_per_second(body: dict[str, Any], pool: str) -> float:
    """The cost model's tokens/s for one replica of the deployment's variant on `pool`, from the
    same inputs the operator reads (the test's PoolProfiles), so the test follows the model."""
    dsd = DeepSeekDeployment.model_validate(body)
    profiles = [PoolProfile.model_validate(p) for p in pool_profiles()]
    (profile,) = [p for p in profiles if p.metadata.get("name") == pool]
    ((index, variant),) = [(i, v) for i, v in enumerate(dsd.spec.variants) if v.pool == pool]
    currency = report_currency(dsd.spec, profiles)
    option = pool_option(
        dsd, variant, index, profile, PoolSetup(), currency, exchange_rates(dsd.spec)
    )
    return option.tokens_per_second_per_replica


def operator_metric(port: int, name: str, **labels: str) -> float:
    """The sum of the operator's samples called `name` whose labels include `labels`."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def throughput(cluster: ClusterHandle, namespace: str, name: str, pool: str) -> dict[str, Any]:
    entries = status(cluster, namespace, name).get("capacityCorrection") or []
    return next((e for e in entries if e["pool"] == pool), {})


# ---------------------------------------------------------------------------------------------
# Watching what happens, with timestamps


@dataclass
class DeploymentWatch:
    """`kubectl get deployments -w` in the background: when each (name, replicas) first shows,
    on this machine's clock as the watch event arrives."""

    cluster: ClusterHandle
    namespace: str
    seen: list[tuple[float, str, int]] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None

    def __enter__(self) -> DeploymentWatch:
        self.process = subprocess.Popen(
            [
                self.cluster.kubectl_binary,
                f"--kubeconfig={self.cluster.kubeconfig}",
                "get",
                "deployments",
                "-n",
                self.namespace,
                "-w",
                "--output-watch-events",
                "-o",
                'jsonpath={.object.metadata.name} {.object.spec.replicas}{"\\n"}',
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                self.seen.append((time.time(), parts[0], int(parts[1])))

    def first(self, name: str, at_least: int = 1) -> float | None:
        return next((t for t, n, r in self.seen if n == name and r >= at_least), None)

    def __exit__(self, *_: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)


@dataclass
class QueryWatch:
    """Evaluates a PromQL expression every 0.1 s: when its value first exceeded a threshold,
    i.e. when the sample that makes it exceed it became queryable."""

    prometheus: PrometheusServer
    promql: str
    values: list[tuple[float, float | None]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> QueryWatch:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                self.values.append((time.time(), self.prometheus.value(self.promql)))
            time.sleep(0.1)

    def first_above(self, threshold: float) -> float | None:
        return next((t for t, v in self.values if v is not None and v > threshold), None)

    def first_below(self, threshold: float, after: float) -> float | None:
        return next(
            (t for t, v in self.values if t >= after and v is not None and v < threshold), None
        )

    def __exit__(self, *_: object) -> None:
        self._stop.set()


def demand_query(namespace: str, name: str) -> str:
    """What the operator's batched query reads for this deployment, summed over its pools."""
    return (
        "sum(rate(deepseek_server_generation_tokens_total"
        f'{{namespace="{namespace}",deployment="{name}"}}[1m]))'
    )


# ---------------------------------------------------------------------------------------------
# 1. and 2. Load rises onto the GPU, then falls back to the CPU


def test_load_rises_onto_a_gpu_within_seconds_and_falls_back_to_cpu(
    cluster: ClusterHandle,
    namespace: str,
    start_operator: StartOperator,
    load_source: LoadSource,
    prometheus: PrometheusServer,
    record_property: Any,
) -> None:
    port = settle_on_cpu_with_metrics(cluster, namespace, start_operator, load_source, prometheus)
    got = status(cluster, namespace, "r1")
    assert got["activeWindow"] == "night" and got["policy"] == "costOptimal"
    cpu = throughput(cluster, namespace, "r1", "e2e-cpu")["calibratedTokensPerSecond"]
    threshold = 2 * cpu / 1.2  # above it, two CPU replicas (replicas.max) cannot cover demand

    with (
        DeploymentWatch(cluster, namespace) as watch,
        QueryWatch(prometheus, demand_query(namespace, "r1")) as query,
    ):
        rose_at = load_source.set(namespace, "r1", "e2e-cpu", tokens_per_second=HIGH)
        wait_until(lambda: watch.first("r1-e2e-a100"), 90, "the A100 Deployment")
        time.sleep(0.5)
    patched = watch.first("r1-e2e-a100")
    queryable = query.first_above(threshold)
    assert patched is not None and queryable is not None
    reaction = patched - queryable
    record_property("reaction_seconds", round(reaction, 3))
    print(f"\nreaction: {reaction:.2f} s from the sample being queryable to the patch")
    assert -0.2 < reaction <= INTERVAL + 2, reaction  # what the operator promises
    assert reaction <= 5, reaction  # the load poller woke the loop: no wait for the interval
    assert queryable - rose_at < 30  # the rate() window fills within seconds at 1 s scrapes

    wait_until(
        lambda: pool_deployments(cluster, namespace, "r1").get("r1-e2e-a100", 0) >= 1,
        30,
        "an A100 replica",
    )
    wait_until(
        lambda: status(cluster, namespace, "r1").get("pools", "").count("e2e-a100=1"),
        30,
        "the A100 in status",
    )
    assert "ScalingUp" in event_reasons(cluster, namespace, "r1")

    # 2. Load falls: once one CPU replica covers it for the 20 s scale-down stabilisation
    # window, back to CPU alone.
    with QueryWatch(prometheus, demand_query(namespace, "r1")) as falling:
        fell_at = load_source.set(namespace, "r1", "e2e-cpu", tokens_per_second=LOW)
        wait_until(
            lambda: (
                placed(cluster, namespace, "r1", "e2e-cpu", 1)
                and "r1-e2e-a100" not in pool_deployments(cluster, namespace, "r1")
            ),
            180,
            "back on one CPU replica",
        )
    back = status(cluster, namespace, "r1")
    assert back["pools"] == "e2e-cpu=1"
    one_cpu_enough = falling.first_below(cpu / 1.2, after=fell_at)
    assert one_cpu_enough is not None
    moved_at = datetime.fromisoformat(back["lastMoveTime"]).timestamp()
    # The window runs over the demand samples the operator records, one per reconcile (here 1
    # to 5 s apart) and stamped when it decides, so it may close up to one gap early; without
    # it the move would follow within a poll.
    assert moved_at >= one_cpu_enough + 20 - 5, moved_at - one_cpu_enough
    moved = {"namespace": namespace, "deployment": "r1", "from_pool": "e2e-a100"}
    assert operator_metric(port, "deepseek_operator_moves_total", **moved, to_pool="e2e-cpu") == 1
    assert operator_metric(port, "deepseek_operator_metrics_available", deployment="r1") == 1


# ---------------------------------------------------------------------------------------------
# 3. Prometheus stops mid-test: hold, then recover


def generations(cluster: ClusterHandle, namespace: str) -> dict[str, int]:
    items = cluster.get_json("deployments", "-n", namespace)["items"]
    return {d["metadata"]["name"]: int(d["metadata"]["generation"]) for d in items}


def test_a_prometheus_outage_holds_the_placement_and_it_recovers_after_restart(
    cluster: ClusterHandle,
    namespace: str,
    start_operator: StartOperator,
    load_source: LoadSource,
    prometheus: PrometheusServer,
) -> None:
    port = settle_on_cpu_with_metrics(cluster, namespace, start_operator, load_source, prometheus)
    ids = {"namespace": namespace, "deployment": "r1"}
    moves = operator_metric(port, "deepseek_operator_moves_total", **ids)
    before = generations(cluster, namespace)

    stopped_at = datetime.now(UTC)
    prometheus.stop()
    # Demand rises while nobody can see it: the operator must not move on what it cannot read.
    load_source.set(namespace, "r1", "e2e-cpu", tokens_per_second=HIGH)
    down = wait_until(
        lambda: (
            condition(cluster, namespace, "r1", "MetricsAvailable").get("status") == "False"
            and condition(cluster, namespace, "r1", "MetricsAvailable")
        ),
        30,
        "MetricsAvailable=False",
    )
    assert down["reason"] == "PrometheusUnreachable", down
    assert "holding the placement" in down["message"]
    assert "MetricsUnavailable" in event_reasons(cluster, namespace, "r1")
    held_until = time.monotonic() + 2 * INTERVAL
    while time.monotonic() < held_until:
        assert generations(cluster, namespace) == before
        assert operator_metric(port, "deepseek_operator_moves_total", **ids) == moves
        time.sleep(1)
    assert operator_metric(port, "deepseek_operator_metrics_available", **ids) == 0
    errors = operator_metric(
        port, "deepseek_operator_metrics_source_errors_total", **ids, reason="PrometheusUnreachable"
    )
    assert errors > 0
    assert placed(cluster, namespace, "r1", "e2e-cpu", 1)

    prometheus.start()
    wait_until(
        lambda: condition(cluster, namespace, "r1", "MetricsAvailable").get("status") == "True",
        60,
        "MetricsAvailable=True again",
    )
    wait_until(
        lambda: pool_deployments(cluster, namespace, "r1").get("r1-e2e-a100", 0) >= 1,
        60,
        "the placement following the demand again",
    )
    outage = events(cluster, namespace, "r1")
    unavailable = [e["message"] for e in outage if e["reason"] == "MetricsUnavailable"]
    assert any(m.startswith("PrometheusUnreachable:") for m in unavailable), unavailable
    # A restarted Prometheus answers before it has scraped again, so the outage may end on
    # NoData or StaleData; the restore Event names the last reason and the whole outage's length.
    restored = [
        e["message"]
        for e in outage
        if e["reason"] == "MetricsRestored"
        and datetime.fromisoformat(e.get("eventTime") or e["lastTimestamp"]) > stopped_at
    ]
    assert len(restored) == 1, restored
    back = re.fullmatch(r"metrics are back after (\d+)s unavailable \((\w+)\): .*", restored[0])
    assert back and int(back[1]) >= 2 * INTERVAL and back[2] in PROMETHEUS_REASONS, restored
    assert operator_metric(port, "deepseek_operator_metrics_available", **ids) == 1


# ---------------------------------------------------------------------------------------------
# 5. Half the calibrated throughput: learnt within minSamples, replicas added; a factor outside
#    its bounds refused


def test_measured_throughput_corrects_the_plan_within_min_samples(
    cluster: ClusterHandle,
    namespace: str,
    start_operator: StartOperator,
    load_source: LoadSource,
    prometheus: PrometheusServer,
) -> None:
    min_samples = 4
    correction = {"minSamples": min_samples, "minFactor": 0.25, "maxFactor": 4}
    bodies = {
        name: load_deployment(
            name, prometheus, policy="cpuOnly", replicas=(2, 4), interval=5, correction=correction
        )
        for name in ("half", "tenth")
    }
    cpu = estimated_tokens_per_second(bodies["half"], "e2e-cpu")  # the operator's, checked below
    share = {"half": 0.5, "tenth": 0.1}
    for name in bodies:
        # Two replicas, each busy with 4 requests, each delivering `share` of the estimate.
        load_source.set(
            namespace, name, "e2e-cpu", tokens_per_second=share[name] * cpu * 2, running=8
        )
    start_loaded_operator(start_operator)
    for body in bodies.values():
        cluster.apply(body, namespace)
    for name in bodies:
        wait_until(lambda n=name: placed(cluster, namespace, n, "e2e-cpu", 2), 90, f"{name} placed")
    assert throughput(cluster, namespace, "half", "e2e-cpu")["calibratedTokensPerSecond"] == (
        pytest.approx(cpu, rel=1e-3)
    )

    applied = wait_until(
        lambda: (
            throughput(cluster, namespace, "half", "e2e-cpu").get("state") == "Applied"
            and throughput(cluster, namespace, "half", "e2e-cpu")
        ),
        180,
        "the correction applied",
    )
    assert applied["samples"] == min_samples
    assert applied["factor"] == pytest.approx(0.5, abs=0.03)
    assert applied["plannedTokensPerSecond"] == pytest.approx(cpu / 2, rel=0.06)
    assert applied["measuredTokensPerSecond"] == pytest.approx(cpu / 2, rel=0.06)
    # 2 × 20.4 tok/s of demand × 1.2 needs three replicas of 20.4: one more
    wait_until(
        lambda: pool_deployments(cluster, namespace, "half").get("half-e2e-cpu") == 3,
        30,
        "a third CPU replica",
    )

    refused = wait_until(
        lambda: (
            throughput(cluster, namespace, "tenth", "e2e-cpu").get("state") == "Refused"
            and throughput(cluster, namespace, "tenth", "e2e-cpu")
        ),
        60,
        "the out-of-bounds factor refused",
    )
    assert refused["factor"] == pytest.approx(0.1, abs=0.02)
    assert "outside [0.25, 4]" in refused["message"]
    assert refused["plannedTokensPerSecond"] == pytest.approx(cpu, rel=1e-3)
    assert pool_deployments(cluster, namespace, "tenth").get("tenth-e2e-cpu") == 2
