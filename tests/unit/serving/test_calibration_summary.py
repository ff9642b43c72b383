"""Calibration figures from per-level measurements: pure arithmetic on what was measured."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deepseek_operator.calibration.summary import LevelResult, summarise, throughput_entry


def level(concurrency: int, tokens: int, seconds: float, ttft: float = 0.2) -> LevelResult:
    return LevelResult(concurrency, 8, tokens, seconds, (ttft, ttft * 2, ttft * 3))


def test_single_stream_saturation_and_knee() -> None:
    summary = summarise([level(1, 100, 10), level(8, 640, 10), level(32, 660, 10)])
    assert summary.single_stream_tokens_per_second == 10
    assert summary.saturated_tokens_per_second == 66
    assert summary.saturation_concurrency == 8  # 64 is within 95 % of 66
    assert summary.gain == pytest.approx(6.6)
    assert summary.time_to_first_token_seconds == pytest.approx(0.4)


def test_concurrency_one_is_required() -> None:
    with pytest.raises(ValueError, match="concurrency 1"):
        summarise([level(2, 100, 1), level(4, 200, 1)])


def test_no_tokens_is_an_error() -> None:
    with pytest.raises(ValueError, match="no concurrency level"):
        summarise([LevelResult(1, 4, 0, 1.0, (), errors=4)])


@given(
    speeds=st.lists(st.floats(min_value=0.1, max_value=1e4), min_size=1, max_size=6),
)
def test_saturated_is_never_below_single_stream(speeds: list[float]) -> None:
    levels = [level(2**i, max(1, round(speed * 10)), 10.0) for i, speed in enumerate(speeds)]
    summary = summarise(levels)
    assert summary.saturated_tokens_per_second >= summary.single_stream_tokens_per_second
    entry = throughput_entry(
        summary, model="m", precision="bf16", measured_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert entry["tokensPerSecondSaturated"] >= entry["tokensPerSecondSingleStream"]
