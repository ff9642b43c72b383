"""The demand board: one poller reads every deployment's load, each reconcile takes its own.

A reconcile does not query Prometheus for its deployment. One task polls every `poll_seconds`
(default 1 s) with one batched query per Prometheus (`prometheus.read_batch`) for all the
deployments registered there, and keeps each one's reading. It wakes a deployment's loop at once, instead
of waiting for its `reconcileIntervalSeconds`, when a new reading may change its decision:
metrics turned available or unavailable (or another reason), the demand rose above what the
plan in force covers with its headroom (`reconcile.LoadBound`, from the last decision), or
tokens/s or the queue beyond its threshold moved by more than `TOLERANCE`. So the Deployment
patch follows a new sample within about one poll plus one reconcile, and the queries per
interval do not grow with the number of deployments.

A spec's own `tokensPerSecondQuery` or `queueDepthQuery` is evaluated when its deployment
reconciles (they cannot be batched); its poll readings still carry the per-pool figures and,
unless replaced, the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from deepseek_operator.adapters import prometheus
from deepseek_operator.adapters.metrics import OperatorMetrics
from deepseek_operator.adapters.prometheus import Client, Key, LoadSpec, Reading
from deepseek_operator.core.planning.reconcile import DemandReading, DemandUnavailable, LoadBound

POLL_SECONDS = 1.0
TOLERANCE = 0.05
"""Relative change of tokens/s (or of the queue beyond its threshold) that wakes a deployment
before its interval; smaller changes wait for the next regular reconcile."""
_SMALLEST = 0.01
"""Tokens/s (or requests) below which a change is noise."""

log = logging.getLogger("deepseek_operator")


@dataclass
class _Entry:
    spec: LoadSpec
    reading: Reading | None = None
    polled: int = -1
    """The poll that produced `reading` (-1: none yet since the spec was registered)."""
    used: Reading | None = None
    """The reading the deployment's last decision used."""
    bound: LoadBound | None = None
    """The demand that decision's plan covers."""


@dataclass
class DemandBoard:
    wake: Callable[[Key], None]
    metrics: OperatorMetrics | None = None
    poll_seconds: float = POLL_SECONDS
    timeout: float = prometheus.QUERY_TIMEOUT_SECONDS
    _entries: dict[Key, _Entry] = field(default_factory=dict)
    _clients: dict[str, Client] = field(default_factory=dict)
    _polls: int = 0
    _polled: asyncio.Condition | None = None
    _wanted: asyncio.Event | None = None

    # -- the poller ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Poll until cancelled: every `poll_seconds`, or at once when a new deployment waits."""
        wanted = self._wanted_event()
        next_at = time.monotonic()
        while True:
            if not self._entries:
                wanted.clear()
                await wanted.wait()
            delay = next_at - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wanted.wait(), timeout=delay)
            wanted.clear()
            next_at = time.monotonic() + self.poll_seconds
            try:
                await self.poll_once()
            except Exception:  # a defect must not stop the poller for every deployment
                log.exception("Polling Prometheus failed unexpectedly")

    async def poll_once(self) -> None:
        """One batched request per Prometheus; store, count, and wake whoever must decide."""
        by_address: dict[str, list[LoadSpec]] = {}
        for registered in self._entries.values():
            by_address.setdefault(registered.spec.address, []).append(registered.spec)
        if not by_address:
            return
        answers = await asyncio.gather(
            *(
                asyncio.to_thread(prometheus.read_batch, self._client(address), specs)
                for address, specs in by_address.items()
            )
        )
        self._polls += 1
        for _ in by_address:
            self._count_request("batched")
        for specs, readings in zip(by_address.values(), answers, strict=True):
            for spec in specs:
                found = self._entries.get(spec.key)
                if found is None or found.spec != spec:
                    continue  # re-registered with another spec while we were asking
                reading = readings[spec.key]
                found.reading, found.polled = reading, self._polls
                if isinstance(reading, DemandUnavailable) and spec.tokens_query is None:
                    self._count_error(spec, reading.reason)
                if spec.tokens_query is None and _differs(found, reading):
                    self.wake(spec.key)
        condition = self._condition()
        async with condition:
            condition.notify_all()

    # -- what a reconcile asks -----------------------------------------------------------------

    async def read(self, spec: LoadSpec, now: datetime | None = None) -> Reading:
        """This deployment's reading: the latest poll's (waiting for the next poll when it was
        registered since), completed with the spec's own queries."""
        entry = self._entries.get(spec.key)
        if entry is None or entry.spec != spec:
            entry = _Entry(spec)
            self._entries[spec.key] = entry
            self._wanted_event().set()
        if entry.polled < 0:
            await self._await_poll(entry)
        batch = entry.reading or DemandUnavailable(
            prometheus.REASON_TIMEOUT, f"no answer from {spec.address} yet"
        )
        if spec.tokens_query is None and spec.queue_query is None:
            return batch
        when = now or datetime.now(UTC)
        queries = (spec.tokens_query is not None) + (spec.queue_query is not None)
        reading = await asyncio.to_thread(
            prometheus.complete, spec, batch, self._client(spec.address), when
        )
        for _ in range(queries):
            self._count_request("query")
        if isinstance(reading, DemandUnavailable) and spec.tokens_query is not None:
            self._count_error(spec, reading.reason)
        return reading

    def used(self, key: Key, reading: Reading | None, bound: LoadBound | None = None) -> None:
        """The reading a decision was made with, and the demand its plan covers: later polls
        are compared with them."""
        entry = self._entries.get(key)
        if entry is not None:
            entry.used, entry.bound = reading, bound

    def forget(self, key: Key) -> None:
        self._entries.pop(key, None)

    @property
    def polls(self) -> int:
        return self._polls

    # -----------------------------------------------------------------------------------------

    async def _await_poll(self, entry: _Entry) -> None:
        condition = self._condition()
        bound = self.poll_seconds + self.timeout + 1.0
        with contextlib.suppress(TimeoutError):
            async with condition:
                await asyncio.wait_for(condition.wait_for(lambda: entry.polled >= 0), bound)

    def _client(self, address: str) -> Client:
        client = self._clients.get(address)
        if client is None:
            client = self._clients[address] = Client(address, self.timeout)
        return client

    def _condition(self) -> asyncio.Condition:
        if self._polled is None:
            self._polled = asyncio.Condition()
        return self._polled

    def _wanted_event(self) -> asyncio.Event:
        if self._wanted is None:
            self._wanted = asyncio.Event()
        return self._wanted

    def _count_request(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.prometheus_request(kind)

    def _count_error(self, spec: LoadSpec, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.source_error(spec.namespace, spec.name, reason)


def _differs(entry: _Entry, new: Reading) -> bool:
    """Whether `new` may change the decision made with the entry's last reading."""
    used, spec = entry.used, entry.spec
    if used is None:
        return False  # no decision yet: the reconcile that registered it is already running
    if isinstance(used, DemandUnavailable) or isinstance(new, DemandUnavailable):
        return type(used) is not type(new) or (
            isinstance(used, DemandUnavailable)
            and isinstance(new, DemandUnavailable)
            and used.reason != new.reason
        )
    assert isinstance(used, DemandReading) and isinstance(new, DemandReading)
    fresh = (used.tokens_per_second, used.queue_depth) != (new.tokens_per_second, new.queue_depth)
    above = entry.bound is not None and entry.bound.exceeded_by(
        new.tokens_per_second, new.queue_depth
    )
    if fresh and above:
        return True  # the plan in force no longer covers it: decide now
    if _moved(used.tokens_per_second, new.tokens_per_second):
        return True
    return _moved(_excess(used, spec), _excess(new, spec))


def _excess(reading: DemandReading, spec: LoadSpec) -> float:
    if reading.queue_depth is None:
        return 0.0
    return max(0.0, reading.queue_depth - spec.queue_threshold)


def _moved(before: float, after: float) -> bool:
    change = abs(after - before)
    if change <= _SMALLEST or not math.isfinite(change):
        return not math.isfinite(change)
    return change > TOLERANCE * max(abs(before), _SMALLEST)
