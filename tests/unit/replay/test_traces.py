"""Trace readers: every format, strict validation with line numbers, reshaping, synthetic week."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepseek_operator.core.replay.traces import (
    DiurnalShape,
    TokenWeights,
    TraceError,
    TraceFormat,
    detect_format,
    parse_trace,
    scale_load,
    synthetic_diurnal,
    tile_to_days,
)
from tests.paths import TEST_DATA

AZURE_TRACE = TEST_DATA / "azure-llm-2023-code.csv"
AZURE_SHA256 = "54e9a6d2a4bd06ba1e060304b900abbc74cbea53de96506e60fe5bb4f2277fb6"

AZURE_SMALL = """TIMESTAMP,ContextTokens,GeneratedTokens
2023-11-16 18:00:00.0000000,100,10
2023-11-16 18:00:00.5000000,50,5
2023-11-16 18:00:02.2500000,7,3
"""


def test_azure_rows_land_in_their_arrival_second_with_both_token_kinds() -> None:
    series = parse_trace(AZURE_SMALL, "small.csv", tz="Europe/Berlin")
    assert series.start == datetime(2023, 11, 16, 18, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert series.bin_seconds == 1.0
    assert series.tokens.tolist() == [165.0, 0.0, 10.0]


def test_token_weights_count_only_generated_tokens() -> None:
    series = parse_trace(AZURE_SMALL, "small.csv", weights=TokenWeights(prompt=0.0, generated=1.0))
    assert series.tokens.tolist() == [15.0, 0.0, 3.0]


def test_time_scale_stretches_offsets_but_keeps_tokens() -> None:
    series = parse_trace(AZURE_SMALL, "small.csv", time_scale=2.0)
    # Offsets 0, 1.0, 4.5 s.
    assert series.tokens.tolist() == [110.0, 55.0, 0.0, 0.0, 10.0]
    assert series.total_tokens == 175.0


def test_rate_format_integrates_piecewise_constant_rates() -> None:
    text = "timestamp,tokens_per_second\n0,10\n2,4\n3,0\n5,1\n"
    series = parse_trace(text, "rates.csv")
    assert series.start == datetime(1970, 1, 1, tzinfo=ZoneInfo("UTC"))
    # 10/s for 2 s, 4/s for 1 s, 0 for 2 s, then 1/s for the median spacing (2 s).
    assert series.tokens.tolist() == [10.0, 10.0, 4.0, 0.0, 0.0, 1.0, 1.0]


def test_rate_format_reads_iso_timestamps_and_bins_wider() -> None:
    text = "timestamp,tokens_per_second\n2024-03-01T00:00:00+00:00,6\n2024-03-01T00:00:30+00:00,2\n"
    series = parse_trace(text, "rates.csv", bin_seconds=15.0, tz="America/New_York")
    assert series.start == datetime(2024, 3, 1, tzinfo=ZoneInfo("UTC"))
    assert series.start.utcoffset() == timedelta(hours=-5)
    assert series.tokens.tolist() == [90.0, 90.0, 30.0, 30.0]


def test_jsonl_with_a_byte_order_mark_and_a_line_separator_inside_a_string() -> None:
    # U+2028 is legal inside a JSON string; it must not split the record or shift line numbers.
    text = (
        '\ufeff{"timestamp": 0, "input_length": 1, "output_length": 2, "text": "a\u2028b"}\n'
        '{"timestamp": 1, "input_length": 1, "output_length": 2}\n'
        '{"timestamp": 2, "input_length": -1, "output_length": 2}\n'
    )
    with pytest.raises(TraceError, match=r"t.jsonl:3: input_length: must not be negative"):
        parse_trace(text, "t.jsonl")
    series = parse_trace(text.rsplit("{", 1)[0], "t.jsonl")
    assert series.tokens.tolist() == [3.0, 3.0]


def test_naive_local_timestamps_across_spring_forward_are_a_minute_apart() -> None:
    # 01:59 CET and 03:00 CEST are one real minute apart; wall-clock subtraction made it 61
    # minutes and inserted an hour of silence into the trace.
    text = (
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2024-03-31 01:59:00,1,0\n2024-03-31 03:00:00,2,0\n"
    )
    series = parse_trace(text, "dst.csv", tz="Europe/Berlin", bin_seconds=60.0)
    assert series.tokens.tolist() == [1.0, 2.0]
    skipped = text.replace("01:59:00", "02:30:00")
    with pytest.raises(TraceError, match=r"dst.csv:2: TIMESTAMP: '2024-03-31 02:30:00' does not"):
        parse_trace(skipped, "dst.csv", tz="Europe/Berlin")


def test_jsonl_with_millisecond_timestamps() -> None:
    text = (
        '{"timestamp": 0, "input_length": 10, "output_length": 2, "hash_ids": [1]}\n'
        "\n"
        '{"timestamp": 1500, "input_length": 4, "output_length": 1}\n'
    )
    series = parse_trace(text, "mooncake.jsonl", timestamp_unit_seconds=0.001)
    assert detect_format(text, "x") is TraceFormat.JSONL
    assert series.tokens.tolist() == [12.0, 5.0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the trace is empty"),
        ("\n\n", "the trace is empty"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n", "no data rows"),
        (
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:00,1,2\nyesterday,1,2\n",
            r"bad.csv:3: TIMESTAMP: 'yesterday' is neither ISO 8601",
        ),
        (
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:00,1,2\n"
            "2023-11-16 18:00:01,-5,2\n",
            r"bad.csv:3: ContextTokens: must not be negative",
        ),
        (
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:00,1,2.5\n",
            r"bad.csv:2: GeneratedTokens: expected a whole number",
        ),
        (
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:05,1,2\n"
            "2023-11-16 18:00:06,1,2\n2023-11-16 18:00:01,1,2\n",
            r"bad.csv:4: rows are not sorted by time",
        ),
        (
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:05,1\n",
            r"bad.csv:2: expected 3 columns",
        ),
        ("time,tokens\n1,2\n", r"bad.csv:1: unrecognised header"),
        ("timestamp,tokens_per_second\n0,5\n10,nan\n", r"bad.csv:3: tokens_per_second: .* finite"),
        ("timestamp,tokens_per_second\n0,5\n10,-1\n", r"bad.csv:3: tokens_per_second: must not"),
        ('{"timestamp": 0, "input_length": 1}\n', r"bad.csv:1: output_length: missing"),
        ('{"timestamp": 0, "input_length": 1, "output_length": 1}\n[1]\n', r"bad.csv:2: expected"),
        (
            '{"timestamp": 0, "input_length": 1, "output_length": 1}\n{oops\n',
            r"bad.csv:2: not valid",
        ),
        (
            '{"timestamp": "x", "input_length": 1, "output_length": 1}\n',
            r"bad.csv:1: timestamp: 'x' is neither",
        ),
        (
            '{"timestamp": 0, "input_length": true, "output_length": 1}\n',
            r"bad.csv:1: input_length: expected a number",
        ),
    ],
)
def test_malformed_traces_fail_whole_with_the_line_number(text: str, expected: str) -> None:
    with pytest.raises(TraceError, match=expected):
        parse_trace(text, "bad.csv")


def test_unknown_time_zone_is_named() -> None:
    with pytest.raises(TraceError, match="tz: unknown IANA time zone 'Mars/Olympus'"):
        parse_trace(AZURE_SMALL, "small.csv", tz="Mars/Olympus")


def test_tiling_repeats_back_to_back_and_cuts_at_the_day() -> None:
    series = parse_trace("timestamp,tokens_per_second\n0,1\n21600,3\n", "r.csv", bin_seconds=3600)
    # Rate 1/s for 6 h, then 3/s for the median spacing (6 h): a 12 h trace.
    assert len(series.tokens) == 12
    tiled = tile_to_days(series, 1.5)
    assert len(tiled.tokens) == 36
    assert np.array_equal(tiled.tokens[:12], series.tokens)
    assert np.array_equal(tiled.tokens[24:36], series.tokens)
    assert tiled.total_tokens == 3 * series.total_tokens


def test_scale_load_and_bad_arguments() -> None:
    series = parse_trace(AZURE_SMALL, "small.csv")
    assert scale_load(series, 2.0).total_tokens == 2 * series.total_tokens
    with pytest.raises(TraceError, match="load_scale"):
        scale_load(series, -1.0)
    with pytest.raises(TraceError, match="repeat_days"):
        tile_to_days(series, 0)
    with pytest.raises(TraceError, match="repeat_days: at most 400"):
        tile_to_days(series, 10_000)
    with pytest.raises(TraceError, match="time_scale"):
        parse_trace(AZURE_SMALL, "small.csv", time_scale=0.0)


def test_azure_trace_in_the_repository_is_the_published_file() -> None:
    if not AZURE_TRACE.exists():
        pytest.fail(f"{AZURE_TRACE} is missing; copy it from the Azure public dataset (README)")
    data = AZURE_TRACE.read_bytes()
    assert hashlib.sha256(data).hexdigest() == AZURE_SHA256
    series = parse_trace(data.decode(), str(AZURE_TRACE))
    # 57 min 16 s of requests, 8,819 of them.
    assert len(series.tokens) == 3436
    generated = parse_trace(data.decode(), "azure", weights=TokenWeights(prompt=0, generated=1))
    lines = data.decode().splitlines()[1:]
    assert generated.total_tokens == sum(int(line.rsplit(",", 1)[1]) for line in lines)
    assert len(lines) == 8819


def test_synthetic_week_is_deterministic_and_shaped_like_a_working_week() -> None:
    monday = datetime(2024, 1, 1, tzinfo=ZoneInfo("Europe/Berlin"))
    first = synthetic_diurnal(monday, 7, seed=3, bin_seconds=60)
    again = synthetic_diurnal(monday, 7, seed=3, bin_seconds=60)
    other = synthetic_diurnal(monday, 7, seed=4, bin_seconds=60)
    assert np.array_equal(first.tokens, again.tokens)
    assert not np.array_equal(first.tokens, other.tokens)
    assert len(first.tokens) == 7 * 24 * 60
    rates = first.rates.reshape(7, 24, 60).mean(axis=2)
    afternoon, night = rates[:, 13:16].mean(axis=1), rates[:, 2:5].mean(axis=1)
    assert (afternoon > 4 * night).all()
    weekdays, weekend = rates[:5, 10:18].mean(), rates[5:, 10:18].mean()
    assert weekend < 0.7 * weekdays


def test_synthetic_bursts_raise_load_above_the_smooth_shape() -> None:
    monday = datetime(2024, 1, 1, tzinfo=ZoneInfo("UTC"))
    calm = DiurnalShape(noise=0.0, bursts_per_day=0.0)
    bursty = DiurnalShape(noise=0.0, bursts_per_day=6.0, burst_factor=3.0)
    smooth = synthetic_diurnal(monday, 1, shape=calm, bin_seconds=60)
    spiky = synthetic_diurnal(monday, 1, shape=bursty, bin_seconds=60)
    ratio = spiky.tokens / smooth.tokens
    assert ratio.min() == pytest.approx(1.0)
    assert ratio.max() >= 3.0 - 1e-9


@settings(deadline=None, max_examples=40)
@given(
    gaps=st.lists(st.integers(min_value=0, max_value=5_000), min_size=1, max_size=30),
    sizes=st.lists(st.integers(min_value=0, max_value=10_000), min_size=30, max_size=30),
    bin_seconds=st.sampled_from([0.5, 1.0, 7.0, 60.0]),
)
def test_binning_keeps_every_token(gaps: list[int], sizes: list[int], bin_seconds: float) -> None:
    start = datetime(2024, 5, 1, 12, 0)
    lines = ["TIMESTAMP,ContextTokens,GeneratedTokens"]
    at = start
    for gap, size in zip(gaps, sizes, strict=False):
        lines.append(f"{at.isoformat(sep=' ')},{size},1")
        at += timedelta(milliseconds=gap)
    last = at - timedelta(milliseconds=gaps[-1])
    series = parse_trace("\n".join(lines), "gen.csv", bin_seconds=bin_seconds)
    assert series.total_tokens == sum(sizes[: len(gaps)]) + len(gaps)
    assert len(series.tokens) == int(((last - start).total_seconds()) // bin_seconds) + 1


def test_token_counts_that_overflow_are_refused_with_the_line() -> None:
    text = (
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:00,1,1e308\n"
        "2023-11-16 18:00:00,1,1e308\n2023-11-16 18:00:30,1,1\n"
    )
    with pytest.raises(TraceError, match=r"big.csv:3: .*too large"):
        parse_trace(text, "big.csv")
    series = parse_trace(text.replace("1e308", "1e300"), "big.csv")
    with pytest.raises(TraceError, match=r"load_scale: .*too large"):
        scale_load(series, 1e10)


def test_a_stray_timestamp_that_spans_years_is_refused_not_allocated() -> None:
    text = "timestamp,tokens_per_second\n0,5\n1700000000,5\n"
    with pytest.raises(TraceError, match=r"r.csv:3: the trace spans 19,676 days from line 2"):
        parse_trace(text, "r.csv")


def test_hourly_counts_become_rates_of_output_tokens_over_each_hour() -> None:
    from deepseek_operator.core.replay.traces import HOURLY_FIRST_DAY, TraceFormat

    text = "day,hour,conversation\n0,0,3600\n0,1,7200\n1,0,360\n"
    assert detect_format(text, "h.csv") is TraceFormat.HOURLY
    series = parse_trace(text, "h.csv", tz="Europe/Berlin", tokens_per_request=100.0)
    rates = series.rates
    # 3,600 requests in the hour × 100 tokens = 100 tok/s; 7,200 → 200; hour 2 to day 1 00:00
    # has no row, so the 200 tok/s of hour 1 hold until the next row (a piecewise rate).
    assert rates[0] == pytest.approx(100.0) and rates[3599] == pytest.approx(100.0)
    assert rates[3600] == pytest.approx(200.0)
    assert series.start == datetime(
        HOURLY_FIRST_DAY.year,
        HOURLY_FIRST_DAY.month,
        HOURLY_FIRST_DAY.day,
        tzinfo=ZoneInfo("Europe/Berlin"),
    )
    assert series.start.weekday() == 0  # day 0 is a Monday
    assert "100 output tokens per request" in series.source


def test_hourly_counts_with_dates_land_on_their_dates() -> None:
    text = "day,hour,date,conversation\n0,23,2024-05-12,36\n1,0,2024-05-13,72\n"
    series = parse_trace(text, "h.csv", tz="UTC", tokens_per_request=10.0)
    assert series.start == datetime(2024, 5, 12, 23, tzinfo=ZoneInfo("UTC"))
    assert series.rates[0] == pytest.approx(0.1) and series.rates[3600] == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("day,hour,a,b\n0,0,1,2\n", "one count column beside day/date and hour; found a, b"),
        ("day,hour,n\n0,24,1\n", "h.csv:2: hour: expected 0-23"),
        ("date,hour,n\n2024-13-01,0,1\n", "h.csv:2: date: '2024-13-01' is not a YYYY-MM-DD"),
        ("day,hour,n\n0,0,-5\n", "h.csv:2: n: must not be negative"),
    ],
)
def test_malformed_hourly_traces_name_line_and_column(text: str, expected: str) -> None:
    with pytest.raises(TraceError, match=re.escape(expected)):
        parse_trace(text, "h.csv")


def test_scaling_to_a_peak_uses_the_highest_minute() -> None:
    from deepseek_operator.core.replay.traces import peak_rate, scale_to_peak

    text = "day,hour,n\n0,0,3600\n0,1,7200\n"
    series = parse_trace(text, "h.csv", tokens_per_request=1.0)
    assert peak_rate(series) == pytest.approx(2.0)
    scaled, factor = scale_to_peak(series, 500.0)
    assert factor == pytest.approx(250.0)
    assert peak_rate(scaled) == pytest.approx(500.0)
    assert scaled.total_tokens == pytest.approx(series.total_tokens * 250.0)
