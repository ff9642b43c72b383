"""Demand from Prometheus: one batched query for every deployment, classified per deployment
as a value or *unavailable*.

**The batched query** (`core.workloads.engines.load_query`). The engines' own series carry
`namespace`, `deployment` and `pool` labels, so one PromQL expression per Prometheus answers for
every deployment at once: per engine in use, four parts grouped by those labels, told apart by a
`part` label that `label_replace` adds, and joined with `or`:

* `<engine>/tokens`: output tokens/s, `sum(rate(<generated tokens>[1m]))`;
* `<engine>/running`: requests generating now, `sum(<running requests>)`;
* `<engine>/queue`: requests waiting, `sum(<queue depth>)`;
* `<engine>/at`: the newest scrape behind them, `max(timestamp(<generated tokens>))`.

A deployment's demand is its pools' tokens/s summed, its queue their queue summed; the per-pool
figures feed the capacity correction. So the operator makes one HTTP request per Prometheus per
poll, however many deployments it runs; a spec that names its own `tokensPerSecondQuery` or
`queueDepthQuery` adds one request per such query when that deployment reconciles.

**Unavailable**, with a reason the status shows on MetricsAvailable=False: the server cannot be
reached (`PrometheusUnreachable`) or times out (`PrometheusTimeout`), answers non-2xx or not
JSON (`PrometheusError`) or refuses the query (`QueryFailed`), has no series for the deployment
(`NoData`), several where one is expected (`SeveralSeries`), a value that is not a finite number
≥ 0 (`NotANumber`), or a newest sample older than `load.staleAfterSeconds` (`StaleData`; the
age is measured on Prometheus' own clock, so clock skew between it and the operator does not
count). The decision then holds the placement (windows still apply): the operator never moves
on stale or broken data.

Everything here blocks (prometheus-api-client speaks `requests`); the operator runs it in a
thread.
"""

from __future__ import annotations

import ast
import json
import math
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from deepseek_operator.api.deployment import DeepSeekDeployment
from deepseek_operator.core.planning.correction import PoolLoad
from deepseek_operator.core.planning.reconcile import DemandReading, DemandUnavailable
from deepseek_operator.core.workloads.engines import (
    AT,
    PART_LABEL,
    QUEUE,
    RUNNING,
    TOKENS,
    engine_profile,
    load_query,
)

QUERY_TIMEOUT_SECONDS = 5.0

REASON_UNREACHABLE = "PrometheusUnreachable"
REASON_TIMEOUT = "PrometheusTimeout"
REASON_HTTP_ERROR = "PrometheusError"
REASON_QUERY_FAILED = "QueryFailed"
REASON_NO_DATA = "NoData"
REASON_AMBIGUOUS = "SeveralSeries"
REASON_NOT_A_NUMBER = "NotANumber"
REASON_STALE = "StaleData"
REASONS = (
    REASON_UNREACHABLE,
    REASON_TIMEOUT,
    REASON_HTTP_ERROR,
    REASON_QUERY_FAILED,
    REASON_NO_DATA,
    REASON_AMBIGUOUS,
    REASON_NOT_A_NUMBER,
    REASON_STALE,
)

Reading = DemandReading | DemandUnavailable
Key = tuple[str, str]
"""(namespace, name) of a DeepSeekDeployment."""


class Unavailable(Exception):
    """A query gave nothing usable; `reason` is the MetricsAvailable reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason

    def reading(self) -> DemandUnavailable:
        return DemandUnavailable(self.reason, str(self))


# ---------------------------------------------------------------------------------------------
# What is read for one deployment


@dataclass(frozen=True)
class LoadSpec:
    """What the operator reads for one DeepSeekDeployment, from its spec.load and variants."""

    namespace: str
    name: str
    address: str
    engines: tuple[str, ...]
    tokens_query: str | None = None
    queue_query: str | None = None
    queue_threshold: float = 0.0
    stale_after: timedelta = timedelta(seconds=120)

    @property
    def key(self) -> Key:
        return (self.namespace, self.name)

    @classmethod
    def of(cls, namespace: str, dsd: DeepSeekDeployment) -> LoadSpec | None:
        load = dsd.spec.load
        if load is None:
            return None
        return cls(
            namespace=namespace,
            name=str(dsd.metadata.get("name", "")),
            address=load.prometheus_address.rstrip("/"),
            engines=tuple(sorted({v.engine for v in dsd.spec.variants})),
            tokens_query=load.tokens_per_second_query,
            queue_query=load.queue_depth_query,
            queue_threshold=float(load.queue_depth_threshold),
            stale_after=timedelta(seconds=load.stale_after_seconds),
        )


# ---------------------------------------------------------------------------------------------
# Asking Prometheus


@dataclass
class Client:
    """One Prometheus, asked without retries (the next poll is the retry)."""

    address: str
    timeout: float = QUERY_TIMEOUT_SECONDS
    _local: threading.local = field(default_factory=threading.local, repr=False)

    def _connection(self) -> PrometheusConnect:
        # One requests session per thread: a session is not meant to be shared between threads.
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = PrometheusConnect(
                url=self.address,
                retry=Retry(total=0, read=False),
                timeout=self.timeout,
            )
            self._local.connection = connection
        return connection

    def query(self, promql: str) -> list[Any]:
        """The result list of an instant query at Prometheus' own "now"; raises `Unavailable`."""
        url = f"{self.address}/api/v1/query"
        try:
            result = self._connection().custom_query(promql)
        except requests.JSONDecodeError as error:
            raise Unavailable(
                REASON_HTTP_ERROR, f"{url} answered something that is not JSON"
            ) from error
        except requests.Timeout as error:
            raise Unavailable(
                REASON_TIMEOUT, f"{url} did not answer within {self.timeout:g}s"
            ) from error
        except requests.RequestException as error:
            raise Unavailable(REASON_UNREACHABLE, f"{url}: {_first_line(error)}") from error
        except PrometheusApiClientException as error:
            raise _refused(url, promql, str(error)) from error
        except (ValueError, KeyError, TypeError) as error:
            raise Unavailable(
                REASON_HTTP_ERROR, f"{url} answered something that is not a query result"
            ) from error
        if not isinstance(result, list):
            raise Unavailable(REASON_HTTP_ERROR, f"{url} answered {type(result).__name__}")
        return result


def _refused(url: str, promql: str, text: str) -> Unavailable:
    """Prometheus' 400 and 422 refuse the query itself; any other status is the server's."""
    found = re.search(r"HTTP Status Code (\d+)", text)
    code = int(found.group(1)) if found else 0
    if code in (400, 422):
        why = _error_detail(text) or text[:200]
        return Unavailable(REASON_QUERY_FAILED, f"query {_short(promql)} failed: {why}")
    return Unavailable(REASON_HTTP_ERROR, f"{url} answered HTTP {code or '?'}")


def _error_detail(text: str) -> str | None:
    """The `error` of the JSON body that prometheus-api-client puts in its message as bytes."""
    found = re.search(r"\((b'.*'|b\".*\")\)\s*$", text, re.DOTALL)
    if found is None:
        return None
    try:
        payload = json.loads(ast.literal_eval(found.group(1)))
    except (ValueError, SyntaxError):
        return None
    detail = payload.get("error") if isinstance(payload, dict) else None
    return str(detail) if detail else None


# ---------------------------------------------------------------------------------------------
# Reading the answers


def single_value(result: list[Any], promql: str, now: datetime, stale_after: timedelta) -> float:
    """The one number a spec's own query must return, or `Unavailable`."""
    sample: Any
    if len(result) == 2 and not isinstance(result[0], dict):
        sample = result  # a scalar: [time, "value"]
    else:
        if not result:
            raise Unavailable(REASON_NO_DATA, f"query {_short(promql)} returned no series")
        if len(result) > 1:
            raise Unavailable(
                REASON_AMBIGUOUS,
                f"query {_short(promql)} returned {len(result)} series, expected one",
            )
        sample = (result[0] or {}).get("value") if isinstance(result[0], dict) else None
    at, value = _sample(sample, promql)
    if now - at > stale_after:
        raise Unavailable(
            REASON_STALE,
            f"query {_short(promql)}: newest sample is from {at.isoformat(timespec='seconds')}, "
            f"older than {int(stale_after.total_seconds())}s",
        )
    return value


def _sample(sample: Any, promql: str) -> tuple[datetime, float]:
    try:
        at = datetime.fromtimestamp(float(sample[0]), UTC)
        value = float(sample[1])
    except (TypeError, ValueError, IndexError, OverflowError) as error:
        raise Unavailable(
            REASON_NOT_A_NUMBER, f"query {_short(promql)} returned {sample!r}"
        ) from error
    if not math.isfinite(value) or value < 0:
        raise Unavailable(REASON_NOT_A_NUMBER, f"query {_short(promql)} returned {value}")
    return at, value


@dataclass
class _Row:
    value: float
    evaluated_at: datetime


@dataclass
class _Found:
    """One deployment's rows of the batched answer: {(pool, engine, kind): row}."""

    rows: dict[tuple[str, str, str], _Row] = field(default_factory=dict)
    repeated: set[tuple[str, str, str]] = field(default_factory=set)
    broken: list[str] = field(default_factory=list)


def split_batch(result: list[Any]) -> dict[Key, _Found]:
    """The batched answer by (namespace, deployment)."""
    found: dict[Key, _Found] = {}
    for series in result:
        if not isinstance(series, dict):
            continue
        labels = series.get("metric") or {}
        engine, _, kind = str(labels.get(PART_LABEL, "")).partition("/")
        key = (str(labels.get("namespace", "")), str(labels.get("deployment", "")))
        place = (str(labels.get("pool", "")), engine, kind)
        entry = found.setdefault(key, _Found())
        sample = series.get("value")
        try:
            evaluated = datetime.fromtimestamp(float(sample[0]), UTC)  # type: ignore[index]
            value = float(sample[1])  # type: ignore[index]
        except (TypeError, ValueError, IndexError, OverflowError):
            entry.broken.append(f"{kind} of pool {place[0] or '?'} is {sample!r}")
            continue
        if place in entry.rows:
            entry.repeated.add(place)
        entry.rows[place] = _Row(value, evaluated)
    return found


def reading_from_batch(spec: LoadSpec, found: Mapping[Key, _Found]) -> Reading:
    """One deployment's demand from the batched answer (its tokens/s and queue may still be
    replaced by its own queries, see `complete`)."""
    entry = found.get(spec.key)
    rows = {} if entry is None else {p: r for p, r in entry.rows.items() if p[1] in spec.engines}
    where = f"deployment={spec.name!r} in namespace {spec.namespace!r}"
    if entry is not None and entry.broken:
        return DemandUnavailable(REASON_NOT_A_NUMBER, f"{where}: {'; '.join(entry.broken)}")
    if not any(kind == TOKENS for _, _, kind in rows):
        names = ", ".join(engine_profile(e).metrics.generated_tokens_total for e in spec.engines)
        return DemandUnavailable(
            REASON_NO_DATA,
            f"no {names} series with {where} (are the model servers scraped with namespace, "
            "deployment and pool labels?)",
        )
    repeated = sorted(entry.repeated) if entry is not None else []
    if repeated:
        pool, engine, kind = repeated[0]
        return DemandUnavailable(
            REASON_AMBIGUOUS, f"{where}: several {engine} {kind} series for pool {pool!r}"
        )
    bad = sorted(
        f"{kind} of pool {pool or '?'} is {row.value}"
        for (pool, _, kind), row in rows.items()
        if not math.isfinite(row.value) or (kind != AT and row.value < 0)
    )
    if bad:
        return DemandUnavailable(REASON_NOT_A_NUMBER, f"{where}: {'; '.join(bad)}")
    pools: dict[str, dict[str, float]] = {}
    evaluated = max(row.evaluated_at for row in rows.values())
    for (pool, _, kind), row in rows.items():
        figures = pools.setdefault(pool, {})
        if kind == AT:
            figures[AT] = max(figures.get(AT, row.value), row.value)
        else:
            figures[kind] = figures.get(kind, 0.0) + row.value
    loads = []
    for pool, figures in sorted(pools.items()):
        if TOKENS not in figures:
            continue
        at = datetime.fromtimestamp(figures[AT], UTC) if AT in figures else evaluated
        age = evaluated - at
        if age > spec.stale_after:
            return DemandUnavailable(
                REASON_STALE,
                f"{where}: the newest sample of pool {pool!r} is {int(age.total_seconds())}s "
                f"old, older than {int(spec.stale_after.total_seconds())}s",
            )
        loads.append(PoolLoad(pool, figures[TOKENS], figures.get(RUNNING), at))
    queue = [f[QUEUE] for f in pools.values() if QUEUE in f]
    return DemandReading(
        tokens_per_second=math.fsum(load.tokens_per_second for load in loads),
        observed_at=max(load.observed_at for load in loads),
        queue_depth=math.fsum(queue) if queue else None,
        pools=tuple(loads),
    )


def complete(spec: LoadSpec, batch: Reading, client: Client, now: datetime) -> Reading:
    """The batch's reading with the spec's own queries in place of its figures, when it names
    them (blocking: one request per query). A broken queue query never hides a good token rate."""
    if spec.tokens_query is None and spec.queue_query is None:
        return batch
    pools = batch.pools if isinstance(batch, DemandReading) else ()
    queue = batch.queue_depth if isinstance(batch, DemandReading) else None
    if spec.queue_query is not None:
        try:
            result = client.query(spec.queue_query)
            queue = single_value(result, spec.queue_query, now, spec.stale_after)
        except Unavailable:
            queue = None
    if spec.tokens_query is None:
        if isinstance(batch, DemandUnavailable):
            return batch
        return DemandReading(batch.tokens_per_second, batch.observed_at, queue, pools)
    try:
        result = client.query(spec.tokens_query)
        tokens = single_value(result, spec.tokens_query, now, spec.stale_after)
    except Unavailable as problem:
        return problem.reading()
    observed = _evaluated_at(result) or now
    return DemandReading(tokens, observed, queue, pools)


def read_batch(client: Client, specs: Sequence[LoadSpec]) -> dict[Key, Reading]:
    """Every deployment's reading from one request (blocking)."""
    engines = {engine for spec in specs for engine in spec.engines}
    if not engines:
        return {}
    try:
        found = split_batch(client.query(load_query(engines)))
    except Unavailable as problem:
        return {spec.key: problem.reading() for spec in specs}
    return {spec.key: reading_from_batch(spec, found) for spec in specs}


def _evaluated_at(result: list[Any]) -> datetime | None:
    try:
        sample = result if not isinstance(result[0], dict) else result[0]["value"]
        return datetime.fromtimestamp(float(sample[0]), UTC)
    except (TypeError, ValueError, IndexError, KeyError):
        return None


def _short(promql: str) -> str:
    return repr(promql if len(promql) <= 200 else promql[:197] + "...")


def _first_line(error: BaseException) -> str:
    text = str(error)
    found = re.search(r"\[Errno \d+\] [^'\")]+", text)
    return found.group(0) if found else text.splitlines()[0][:200] if text else type(error).__name__
