"""Demand from Prometheus: one instant query per series, classified as a value or *unavailable*.

Unavailable, with a reason the status shows on MetricsAvailable=False: the server cannot be
reached or times out, answers non-2xx or an error, returns no series or several where one is
expected, a value that is not a finite number ≥ 0, or a sample older than the staleness bound.
The planner then holds the placement (windows still apply): the operator never moves on stale
or broken data.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from deepseek_operator.api.deployment import Load
from deepseek_operator.core.planning.reconcile import DemandReading, DemandUnavailable

QUERY_TIMEOUT_SECONDS = 5.0
STALENESS = timedelta(minutes=5)
"""Prometheus' own lookback: a sample older than this would not be returned by a live series."""

REASON_UNREACHABLE = "PrometheusUnreachable"
REASON_TIMEOUT = "PrometheusTimeout"
REASON_HTTP_ERROR = "PrometheusError"
REASON_QUERY_FAILED = "QueryFailed"
REASON_NO_DATA = "NoData"
REASON_AMBIGUOUS = "SeveralSeries"
REASON_NOT_A_NUMBER = "NotANumber"
REASON_STALE = "StaleData"


class _Unavailable(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


async def read_demand(
    load: Load, now: datetime, http: httpx.AsyncClient | None = None
) -> DemandReading | DemandUnavailable:
    """Tokens/s (and queue depth, when a query is given) for one deployment."""
    owned = http is None
    session = http or httpx.AsyncClient(timeout=QUERY_TIMEOUT_SECONDS)
    try:
        tokens, at = await _instant(
            session, load.prometheus_address, load.tokens_per_second_query, now
        )
        queue = None
        if load.queue_depth_query:
            try:
                queue, _ = await _instant(
                    session, load.prometheus_address, load.queue_depth_query, now
                )
            except _Unavailable:
                queue = None  # a missing queue series never hides a good token rate
        return DemandReading(tokens_per_second=tokens, observed_at=at, queue_depth=queue)
    except _Unavailable as problem:
        return DemandUnavailable(problem.reason, str(problem))
    finally:
        if owned:
            await session.aclose()


async def _instant(
    session: httpx.AsyncClient, address: str, query: str, now: datetime
) -> tuple[float, datetime]:
    url = address.rstrip("/") + "/api/v1/query"
    try:
        response = await session.get(url, params={"query": query, "time": f"{now.timestamp():.3f}"})
    except httpx.TimeoutException as error:
        raise _Unavailable(
            REASON_TIMEOUT, f"{url} did not answer in {QUERY_TIMEOUT_SECONDS:g}s"
        ) from error
    except httpx.HTTPError as error:
        raise _Unavailable(REASON_UNREACHABLE, f"{url}: {error}") from error
    if not response.is_success:
        raise _Unavailable(REASON_HTTP_ERROR, f"{url} answered HTTP {response.status_code}")
    try:
        payload: Any = response.json()
    except ValueError as error:
        raise _Unavailable(
            REASON_HTTP_ERROR, f"{url} answered something that is not JSON"
        ) from error
    if not isinstance(payload, dict) or payload.get("status") != "success":
        detail = payload.get("error", "") if isinstance(payload, dict) else ""
        raise _Unavailable(REASON_QUERY_FAILED, f"query {query!r} failed: {detail}")
    data = payload.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        sample = result
    elif kind == "vector" and isinstance(result, list):
        if not result:
            raise _Unavailable(REASON_NO_DATA, f"query {query!r} returned no series")
        if len(result) > 1:
            raise _Unavailable(
                REASON_AMBIGUOUS, f"query {query!r} returned {len(result)} series, expected one"
            )
        sample = (result[0] or {}).get("value") or []
    else:
        raise _Unavailable(
            REASON_QUERY_FAILED, f"query {query!r} returned a {kind}, expected one number"
        )
    try:
        at = datetime.fromtimestamp(float(sample[0]), UTC)
        value = float(sample[1])
    except (TypeError, ValueError, IndexError) as error:
        raise _Unavailable(REASON_NOT_A_NUMBER, f"query {query!r} returned {sample!r}") from error
    if not math.isfinite(value) or value < 0:
        raise _Unavailable(REASON_NOT_A_NUMBER, f"query {query!r} returned {value}")
    if now - at > STALENESS:
        raise _Unavailable(REASON_STALE, f"query {query!r}: newest sample is from {at.isoformat()}")
    return value, at
