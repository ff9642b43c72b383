"""From per-concurrency measurements to the two figures the planner uses.

Single-stream speed is what one user sees; saturated throughput is what one replica delivers
when its batch is full. Both are measured, never derived from each other: the gap between them
is exactly what batching buys on that hardware.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

SATURATION_FRACTION = 0.95
"""The smallest concurrency within this fraction of the best throughput is where the knee is."""


@dataclass(frozen=True)
class LevelResult:
    """What one concurrency level produced."""

    concurrency: int
    requests: int
    completion_tokens: int
    wall_seconds: float
    time_to_first_token_seconds: tuple[float, ...]
    errors: int = 0

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def median_ttft(self) -> float | None:
        return (
            statistics.median(self.time_to_first_token_seconds)
            if self.time_to_first_token_seconds
            else None
        )


@dataclass(frozen=True)
class CalibrationSummary:
    single_stream_tokens_per_second: float
    saturated_tokens_per_second: float
    saturation_concurrency: int
    time_to_first_token_seconds: float
    gain: float


def summarise(levels: Sequence[LevelResult]) -> CalibrationSummary:
    """The single-stream and saturated speeds; raises ValueError when a level is missing or failed."""
    usable = [level for level in levels if level.completion_tokens > 0]
    if not usable:
        raise ValueError("no concurrency level produced any tokens")
    single = min(usable, key=lambda level: level.concurrency)
    if single.concurrency != 1:
        raise ValueError("levels: concurrency 1 is needed for the single-stream speed")
    best = max(level.tokens_per_second for level in usable)
    knee = min(
        (level for level in usable if level.tokens_per_second >= SATURATION_FRACTION * best),
        key=lambda level: level.concurrency,
    )
    ttft = single.median_ttft
    if ttft is None:
        raise ValueError("the single-stream level recorded no time to first token")
    single_tps = single.tokens_per_second
    return CalibrationSummary(
        single_stream_tokens_per_second=single_tps,
        saturated_tokens_per_second=max(best, single_tps),
        saturation_concurrency=knee.concurrency,
        time_to_first_token_seconds=ttft,
        gain=best / single_tps,
    )


def throughput_entry(
    summary: CalibrationSummary, *, model: str, precision: str, measured_at: datetime
) -> dict[str, Any]:
    """A PoolProfile `spec.throughput` entry, validated by the API model."""
    from deepseek_operator.api.pool import ThroughputMeasurement

    entry = ThroughputMeasurement.model_validate(
        {
            "model": model,
            "precision": precision,
            "tokensPerSecondSingleStream": round(summary.single_stream_tokens_per_second, 3),
            "tokensPerSecondSaturated": round(summary.saturated_tokens_per_second, 3),
            "timeToFirstTokenSeconds": max(round(summary.time_to_first_token_seconds, 4), 0.0001),
            "measuredAt": measured_at,
        }
    )
    return entry.model_dump(mode="json", by_alias=True)


def merge_into_pool_profile(document: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """`document` (a PoolProfile) with `entry` replacing the one for the same (model, precision)."""
    from deepseek_operator.api.pool import PoolProfile

    spec = dict(document.get("spec") or {})
    kept = [
        existing
        for existing in spec.get("throughput") or []
        if (existing.get("model"), existing.get("precision"))
        != (entry["model"], entry["precision"])
    ]
    spec["throughput"] = [*kept, entry]
    updated = {**document, "spec": spec}
    PoolProfile.model_validate(updated)  # refuse to write a profile the API server would reject
    return updated
