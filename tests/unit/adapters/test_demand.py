"""The demand board: one batched request per poll for every deployment, and a wake-up for a
deployment whose load moved enough to change its decision."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from deepseek_operator.adapters.demand import DemandBoard
from deepseek_operator.adapters.metrics import OperatorMetrics
from deepseek_operator.adapters.prometheus import LoadSpec
from deepseek_operator.core.planning.reconcile import DemandReading, DemandUnavailable, LoadBound
from tests.unit.adapters.fake_prometheus import Answer, fake_prometheus, vector


class Load:
    """What the fake Prometheus reports: tokens/s per (namespace, deployment), or a failure."""

    def __init__(self) -> None:
        self.tokens: dict[tuple[str, str], float] = {}
        self.failing = False

    def answer(self, query: str) -> Answer:
        if self.failing:
            return Answer(status=503)
        if "part" not in query:  # a spec's own query
            return vector(({}, time.time(), "42"))
        now = time.time()
        rows = []
        for (namespace, name), tokens in self.tokens.items():
            for kind, value in (("tokens", tokens), ("queue", 0.0), ("at", now - 1)):
                labels = {
                    "namespace": namespace,
                    "deployment": name,
                    "pool": "cpu",
                    "part": f"transformers/{kind}",
                }
                rows.append((labels, now, str(value)))
        return vector(*rows)


def spec(address: str, name: str, **changes: Any) -> LoadSpec:
    return LoadSpec("ml", name, address, ("transformers",), **changes)


def test_every_deployment_is_read_with_one_request_per_poll():
    load = Load()
    load.tokens = {("ml", f"r{i}"): float(i) for i in range(50)}
    woken: list[tuple[str, str]] = []

    async def go() -> list[DemandReading | DemandUnavailable]:
        with fake_prometheus(load.answer) as server:
            metrics = OperatorMetrics()
            board = DemandBoard(woken.append, metrics, poll_seconds=0.2, timeout=1.0)
            poller = asyncio.create_task(board.run())
            readings = await asyncio.gather(
                *(board.read(spec(server.address, f"r{i}")) for i in range(50))
            )
            polls_before = board.polls
            await asyncio.sleep(1.0)
            poller.cancel()
            polls = board.polls
            # one request per poll (a poll cut short by the cancel may have asked already)
            assert server.requests() - polls in (0, 1), (server.requests(), polls)
            assert polls - polls_before >= 3
            batched = metrics.prometheus_requests.labels("batched")._value.get()
            assert batched == polls
        return readings

    readings = asyncio.run(go())
    assert [r.tokens_per_second for r in readings] == [float(i) for i in range(50)]  # type: ignore[union-attr]
    assert woken == []  # no decision was made yet: nothing to compare with


def test_a_material_change_wakes_its_deployment_and_a_small_one_does_not():
    load = Load()
    load.tokens = {("ml", "r1"): 100.0, ("ml", "r2"): 100.0}
    woken: list[tuple[str, str]] = []

    async def go() -> None:
        with fake_prometheus(load.answer) as server:
            board = DemandBoard(woken.append, poll_seconds=10.0, timeout=1.0)
            first = [asyncio.create_task(board.read(spec(server.address, n))) for n in ("r1", "r2")]
            await asyncio.sleep(0)  # both register
            await board.poll_once()
            readings = await asyncio.gather(*first)
            assert all(isinstance(r, DemandReading) for r in readings)
            for name, reading in zip(("r1", "r2"), readings, strict=True):
                board.used(("ml", name), reading)
            load.tokens = {("ml", "r1"): 103.0, ("ml", "r2"): 110.0}  # +3 % and +10 %
            await board.poll_once()
            assert woken == [("ml", "r2")]
            load.failing = True
            await board.poll_once()
            assert woken == [("ml", "r2"), ("ml", "r1"), ("ml", "r2")]
            board.used(("ml", "r1"), DemandUnavailable("PrometheusError", ""))
            await board.poll_once()  # still failing, same reason: r1 not woken again
            assert woken.count(("ml", "r1")) == 1

    asyncio.run(go())


def test_a_spec_s_own_query_is_asked_when_it_reconciles():
    load = Load()
    load.tokens = {("ml", "r1"): 5.0}

    async def go() -> DemandReading | DemandUnavailable:
        with fake_prometheus(load.answer) as server:
            metrics = OperatorMetrics()
            board = DemandBoard(lambda key: None, metrics, poll_seconds=0.1, timeout=1.0)
            poller = asyncio.create_task(board.run())
            reading = await board.read(spec(server.address, "r1", tokens_query="my_tokens"))
            poller.cancel()
            assert metrics.prometheus_requests.labels("query")._value.get() == 1
            return reading

    reading = asyncio.run(go())
    assert isinstance(reading, DemandReading) and reading.tokens_per_second == 42.0
    assert reading.pools and reading.pools[0].tokens_per_second == 5.0  # from the batch


def test_unavailable_readings_are_counted_by_reason_and_forgotten_deployments_are_not_read():
    load = Load()
    load.failing = True

    async def go() -> int:
        with fake_prometheus(load.answer) as server:
            metrics = OperatorMetrics()
            board = DemandBoard(lambda key: None, metrics, poll_seconds=0.05, timeout=1.0)
            poller = asyncio.create_task(board.run())
            reading = await board.read(spec(server.address, "r1"))
            assert isinstance(reading, DemandUnavailable)
            assert reading.reason == "PrometheusError"
            board.forget(("ml", "r1"))
            await asyncio.sleep(0.2)
            asked = server.requests()
            await asyncio.sleep(0.3)
            poller.cancel()
            assert server.requests() == asked  # nobody registered: no requests
            errors = metrics.source_errors.labels("ml", "r1", "PrometheusError")._value.get()
            return int(errors)

    assert asyncio.run(go()) >= 1


def test_crossing_what_the_plan_covers_wakes_even_on_a_small_change():
    load = Load()
    load.tokens = {("ml", "r1"): 98.0}
    woken: list[tuple[str, str]] = []

    async def go() -> None:
        with fake_prometheus(load.answer) as server:
            board = DemandBoard(woken.append, poll_seconds=10.0, timeout=1.0)
            first = asyncio.create_task(board.read(spec(server.address, "r1")))
            await asyncio.sleep(0)
            await board.poll_once()
            # the plan in force covers 100 tok/s with its headroom
            board.used(("ml", "r1"), await first, LoadBound(100.0, 10.0, 0.0))
            load.tokens = {("ml", "r1"): 99.0}  # +1 %, still covered
            await board.poll_once()
            assert woken == []
            load.tokens = {("ml", "r1"): 101.0}  # +3 %, beyond what the plan covers
            await board.poll_once()
            assert woken == [("ml", "r1")]

    asyncio.run(go())
