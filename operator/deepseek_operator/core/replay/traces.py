"""Load traces for replay: strict readers for three formats, reshaping, and a synthetic week.

Every reader turns its input into one `TokenSeries`: tokens arriving per fixed-width bin from a
time-zone-aware start. Readers validate the whole input before returning anything, so a replay
never runs on half a trace; every error names the source, the line and the field.

Formats:
- Azure LLM inference (2023): CSV header `TIMESTAMP,ContextTokens,GeneratedTokens`, one request
  per row, naive local timestamps `YYYY-MM-DD HH:MM:SS.fffffff`.
- rate: CSV header `timestamp,tokens_per_second`; each row's rate holds until the next row.
- JSONL: one object per line with `timestamp`, `input_length`, `output_length` (one request each).

A timestamp is ISO 8601 (naive ones are read in the trace's time zone) or a number of seconds since
the Unix epoch (`timestamp_unit` scales it, e.g. milliseconds for Mooncake-style JSONL traces).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from deepseek_operator.api.resolution import UnknownTimeZone, lookup_time_zone
from deepseek_operator.api.vocabulary import instant_in_range

FloatArray = npt.NDArray[np.float64]

SECONDS_PER_DAY = 86_400.0
MAX_BINS = 400 * 86_400
"""400 days of one-second bins (~280 MB): longer spans are almost always a stray timestamp."""


class TraceError(ValueError):
    """A trace that cannot be replayed as given; the message names source, line and field."""


class TraceFormat(StrEnum):
    AZURE = "azure"
    RATE = "rate"
    JSONL = "jsonl"
    HOURLY = "hourly"
    """Requests counted per hour: `day` or `date`, `hour`, and one count column."""


DEFAULT_TOKENS_PER_REQUEST = 250.0
"""Output tokens per request assumed for an hourly-count trace unless told otherwise."""
HOURLY_FIRST_DAY = date(2024, 1, 1)
"""Day 0 of an hourly-count trace without dates: a Monday, so weekdays line up with windows."""
_HOURLY_KEYS = ("day", "date", "hour")


@dataclass(frozen=True)
class TokenWeights:
    """How much one prompt token and one generated token count towards demand.

    Capacity in the cost model is tokens per second of one kind; these weights make a request
    trace speak the same unit (e.g. prompt=0 counts only generated tokens).
    """

    prompt: float = 1.0
    generated: float = 1.0


@dataclass(frozen=True)
class TokenSeries:
    """Tokens arriving in each bin of `bin_seconds`, the first bin starting at `start`."""

    start: datetime
    bin_seconds: float
    tokens: FloatArray
    source: str

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("TokenSeries.start must be time-zone aware")
        if self.bin_seconds <= 0:
            raise ValueError("TokenSeries.bin_seconds must be positive")

    @property
    def duration_seconds(self) -> float:
        return float(len(self.tokens)) * self.bin_seconds

    @property
    def total_tokens(self) -> float:
        return float(self.tokens.sum())

    @property
    def rates(self) -> FloatArray:
        """Tokens per second in each bin."""
        return self.tokens / self.bin_seconds


@dataclass(frozen=True)
class _Event:
    """One parsed row: an instant and either a request's tokens or a rate."""

    at: datetime
    value: float
    line: int


def _trace_zone(name: str) -> ZoneInfo:
    """The trace's zone, or a TraceError naming the `tz` input."""
    try:
        return lookup_time_zone(name)
    except UnknownTimeZone as exc:
        raise TraceError(f"tz: {exc}") from exc


def _parse_timestamp(
    raw: object, tz: ZoneInfo, unit_seconds: float, where: str, field: str
) -> datetime:
    """A row's instant, within the range every instant must lie in (`instant_in_range`)."""
    at = _read_timestamp(raw, tz, unit_seconds, where, field)
    try:
        return instant_in_range(at, f"{where}: {field}")
    except ValueError as exc:
        raise TraceError(str(exc)) from None


def _read_timestamp(
    raw: object, tz: ZoneInfo, unit_seconds: float, where: str, field: str
) -> datetime:
    if isinstance(raw, bool):
        raise TraceError(f"{where}: {field}: expected a timestamp, got {raw!r}")
    if isinstance(raw, int | float):
        return _from_epoch(float(raw), unit_seconds, where, field)
    if not isinstance(raw, str) or not raw.strip():
        raise TraceError(f"{where}: {field}: expected a timestamp, got {raw!r}")
    text = raw.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return _from_epoch(number, unit_seconds, where, field)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise TraceError(
            f"{where}: {field}: {text!r} is neither ISO 8601 nor seconds since the epoch"
        ) from exc
    if parsed.tzinfo is not None:
        return parsed
    local = parsed.replace(tzinfo=tz)
    if local.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != parsed:
        raise TraceError(
            f"{where}: {field}: {text!r} does not exist in {tz.key} "
            "(the clock skips it at a daylight-saving change)"
        )
    return local


def _from_epoch(number: float, unit_seconds: float, where: str, field: str) -> datetime:
    if not math.isfinite(number):
        raise TraceError(f"{where}: {field}: {number!r} is not a finite number")
    try:
        return datetime.fromtimestamp(number * unit_seconds, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise TraceError(f"{where}: {field}: {number!r} is out of range") from exc


def _parse_count(raw: object, where: str, field: str, *, integral: bool) -> float:
    if isinstance(raw, bool):
        raise TraceError(f"{where}: {field}: expected a number, got {raw!r}")
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError as exc:
            raise TraceError(f"{where}: {field}: expected a number, got {raw!r}") from exc
    else:
        raise TraceError(f"{where}: {field}: expected a number, got {raw!r}")
    if not math.isfinite(value):
        raise TraceError(f"{where}: {field}: {raw!r} is not a finite number")
    if value < 0:
        raise TraceError(f"{where}: {field}: must not be negative, got {raw!r}")
    if integral and value != int(value):
        raise TraceError(f"{where}: {field}: expected a whole number of tokens, got {raw!r}")
    return value


_AZURE_HEADER = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
_RATE_HEADER = ("timestamp", "tokens_per_second")


def detect_format(text: str, source: str) -> TraceFormat:
    """Recognise a trace by its first non-blank line (a CSV header or a JSON object)."""
    for line in text.splitlines():
        stripped = line.strip().lstrip("\ufeff")
        if not stripped:
            continue
        if stripped.startswith("{"):
            return TraceFormat.JSONL
        header = tuple(cell.strip() for cell in stripped.split(","))
        names = {cell.lower() for cell in header}
        if "hour" in names and names & {"day", "date"}:
            return TraceFormat.HOURLY
        if header == _AZURE_HEADER:
            return TraceFormat.AZURE
        if header == _RATE_HEADER:
            return TraceFormat.RATE
        raise TraceError(
            f"{source}:1: unrecognised header {stripped!r}; expected "
            f"{','.join(_AZURE_HEADER)!r}, {','.join(_RATE_HEADER)!r}, hourly counts "
            "(day or date, hour, count) or JSON lines"
        )
    raise TraceError(f"{source}: the trace is empty")


def _csv_rows(
    text: str, source: str, header: Sequence[str]
) -> Iterable[tuple[int, dict[str, str]]]:
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    seen_header = False
    for row in reader:
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        cells = [cell.strip() for cell in row]
        if not seen_header:
            if tuple(cells) != tuple(header):
                raise TraceError(
                    f"{source}:{line}: header is {','.join(cells)!r}, expected {','.join(header)!r}"
                )
            seen_header = True
            continue
        if len(cells) != len(header):
            raise TraceError(
                f"{source}:{line}: expected {len(header)} columns "
                f"({','.join(header)}), got {len(cells)}"
            )
        yield line, dict(zip(header, cells, strict=True))


def _hourly_events(text: str, source: str, tz: ZoneInfo, tokens_per_request: float) -> list[_Event]:
    """Hourly request counts as rates: each hour's requests × output tokens per request,
    spread evenly over the hour. A `date` column (YYYY-MM-DD) places the hours; without it,
    `day` counts days from `HOURLY_FIRST_DAY`."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    columns: list[str] | None = None
    count_column = ""
    events: list[_Event] = []
    for row in reader:
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        cells = [cell.strip() for cell in row]
        if columns is None:
            columns = [cell.lower() for cell in cells]
            counts = [c for c in columns if c not in _HOURLY_KEYS]
            if len(counts) != 1:
                raise TraceError(
                    f"{source}:{line}: an hourly-count trace has one count column beside "
                    f"day/date and hour; found {', '.join(counts) or 'none'}"
                )
            count_column = counts[0]
            continue
        if len(cells) != len(columns):
            raise TraceError(f"{source}:{line}: expected {len(columns)} columns, got {len(cells)}")
        values = dict(zip(columns, cells, strict=True))
        where = f"{source}:{line}"
        hour = _parse_count(values["hour"], where, "hour", integral=True)
        if hour > 23:
            raise TraceError(f"{where}: hour: expected 0-23, got {values['hour']!r}")
        if "date" in values:
            try:
                day = date.fromisoformat(values["date"])
            except ValueError as exc:
                raise TraceError(
                    f"{where}: date: {values['date']!r} is not a YYYY-MM-DD date"
                ) from exc
        else:
            offset = _parse_count(values["day"], where, "day", integral=True)
            if offset > MAX_BINS / SECONDS_PER_DAY:
                raise TraceError(f"{where}: day: {values['day']!r} is too far from day 0")
            day = HOURLY_FIRST_DAY + timedelta(days=int(offset))
        at = datetime(day.year, day.month, day.day, int(hour), tzinfo=tz)
        try:
            instant_in_range(at, f"{where}: date")
        except ValueError as exc:
            raise TraceError(str(exc)) from None
        requests = _parse_count(values[count_column], where, count_column, integral=False)
        events.append(_Event(at, requests * tokens_per_request / 3600.0, line))
    if columns is None:
        raise TraceError(f"{source}: the trace is empty")
    return events


def _read_events(
    text: str,
    source: str,
    fmt: TraceFormat,
    tz: ZoneInfo,
    weights: TokenWeights,
    timestamp_unit_seconds: float,
    tokens_per_request: float = DEFAULT_TOKENS_PER_REQUEST,
) -> list[_Event]:
    events: list[_Event] = []
    if fmt is TraceFormat.HOURLY:
        events = _hourly_events(text, source, tz, tokens_per_request)
    elif fmt is TraceFormat.AZURE:
        for line, row in _csv_rows(text, source, _AZURE_HEADER):
            where = f"{source}:{line}"
            at = _parse_timestamp(row["TIMESTAMP"], tz, timestamp_unit_seconds, where, "TIMESTAMP")
            prompt = _parse_count(row["ContextTokens"], where, "ContextTokens", integral=True)
            generated = _parse_count(
                row["GeneratedTokens"], where, "GeneratedTokens", integral=True
            )
            events.append(_Event(at, weights.prompt * prompt + weights.generated * generated, line))
    elif fmt is TraceFormat.RATE:
        for line, row in _csv_rows(text, source, _RATE_HEADER):
            where = f"{source}:{line}"
            at = _parse_timestamp(row["timestamp"], tz, timestamp_unit_seconds, where, "timestamp")
            rate = _parse_count(
                row["tokens_per_second"], where, "tokens_per_second", integral=False
            )
            events.append(_Event(at, rate, line))
    else:
        # Split on newlines only: str.splitlines() also breaks at U+2028 and friends, which
        # JSON allows inside strings, and would shift every later line number.
        for index, raw_line in enumerate(text.lstrip("\ufeff").split("\n"), start=1):
            if not raw_line.strip():
                continue
            where = f"{source}:{index}"
            try:
                record = json.loads(raw_line)
            except json.JSONDecodeError as exc:
                raise TraceError(f"{where}: not valid JSON ({exc.msg})") from exc
            if not isinstance(record, dict):
                raise TraceError(f"{where}: expected a JSON object, got {type(record).__name__}")
            for field in ("timestamp", "input_length", "output_length"):
                if field not in record:
                    raise TraceError(f"{where}: {field}: missing")
            at = _parse_timestamp(
                record["timestamp"], tz, timestamp_unit_seconds, where, "timestamp"
            )
            prompt = _parse_count(record["input_length"], where, "input_length", integral=True)
            generated = _parse_count(record["output_length"], where, "output_length", integral=True)
            events.append(
                _Event(at, weights.prompt * prompt + weights.generated * generated, index)
            )
    if not events:
        raise TraceError(f"{source}: the trace has no data rows")
    for previous, current in itertools.pairwise(events):
        if current.at.astimezone(UTC) < previous.at.astimezone(UTC):
            raise TraceError(
                f"{source}:{current.line}: rows are not sorted by time: {current.at.isoformat()} "
                f"comes after {previous.at.isoformat()} (line {previous.line})"
            )
    return events


def parse_trace(
    text: str,
    source: str,
    *,
    fmt: TraceFormat | None = None,
    tz: str = "UTC",
    weights: TokenWeights = TokenWeights(),
    timestamp_unit_seconds: float = 1.0,
    time_scale: float = 1.0,
    bin_seconds: float = 1.0,
    tokens_per_request: float = DEFAULT_TOKENS_PER_REQUEST,
) -> TokenSeries:
    """Parse a whole trace and bin it; `time_scale` stretches every offset from the first row.
    `tokens_per_request`: output tokens per request of an hourly-count trace."""
    if tokens_per_request <= 0 or not math.isfinite(tokens_per_request):
        raise TraceError(
            f"tokens_per_request: must be a positive number, got {tokens_per_request!r}"
        )
    if time_scale <= 0 or not math.isfinite(time_scale):
        raise TraceError(f"time_scale: must be a positive number, got {time_scale!r}")
    if bin_seconds <= 0:
        raise TraceError(f"bin_seconds: must be positive, got {bin_seconds!r}")
    zone = _trace_zone(tz)
    chosen = fmt if fmt is not None else detect_format(text, source)
    events = _read_events(
        text, source, chosen, zone, weights, timestamp_unit_seconds, tokens_per_request
    )
    start = events[0].at.astimezone(zone)
    # In UTC: aware datetimes sharing a zone subtract as wall-clock times, which would add or
    # drop an hour at a daylight-saving change.
    first = events[0].at.astimezone(UTC)
    offsets = np.array(
        [(event.at.astimezone(UTC) - first).total_seconds() * time_scale for event in events],
        dtype=np.float64,
    )
    values = np.array([event.value for event in events], dtype=np.float64)
    with np.errstate(over="ignore"):
        running_total = np.cumsum(values)
    if not np.isfinite(running_total[-1]):
        overflow = int(np.argmax(~np.isfinite(running_total)))
        raise TraceError(
            f"{source}:{events[overflow].line}: the token total up to this row is too large "
            "to count (a stray value?)"
        )
    span = float(offsets[-1])
    if span / bin_seconds > MAX_BINS:
        raise TraceError(
            f"{source}:{events[-1].line}: the trace spans {span / SECONDS_PER_DAY:,.0f} days from "
            f"line {events[0].line}; at most {MAX_BINS * bin_seconds / SECONDS_PER_DAY:,.0f} days "
            f"can be replayed at {bin_seconds:g} s bins (a stray timestamp?)"
        )
    if chosen is TraceFormat.HOURLY:
        tokens = _bin_rates(offsets, values, bin_seconds)
        source = f"{source} (hourly requests × {tokens_per_request:,.4g} output tokens per request)"
    elif chosen is TraceFormat.RATE:
        tokens = _bin_rates(offsets, values, bin_seconds)
    else:
        tokens = _bin_requests(offsets, values, bin_seconds)
    return TokenSeries(start=start, bin_seconds=bin_seconds, tokens=tokens, source=source)


PEAK_SECONDS = 60.0
"""A trace's peak is its highest mean rate over this long (one-second bins are spiky)."""


def peak_rate(series: TokenSeries) -> float:
    """The highest mean tokens/s over `PEAK_SECONDS` (aligned windows; the whole trace if
    shorter)."""
    per = max(1, round(PEAK_SECONDS / series.bin_seconds))
    tokens = series.tokens
    whole = len(tokens) // per
    if whole == 0:
        return float(tokens.sum()) / max(series.duration_seconds, 1e-9)
    windows = tokens[: whole * per].reshape(whole, per).sum(axis=1)
    return float(windows.max()) / (per * series.bin_seconds)


def scale_to_peak(series: TokenSeries, peak: float) -> tuple[TokenSeries, float]:
    """The trace scaled so that its peak (`peak_rate`) is `peak` tokens/s, and the factor."""
    current = peak_rate(series)
    if current <= 0:
        raise TraceError("peak_tokens_per_second: the trace has no tokens to scale")
    factor = peak / current
    scaled = scale_load(series, factor)
    return replace(scaled, source=f"{series.source}, scaled to a peak of {peak:,.0f} tok/s"), factor


def _bin_requests(offsets: FloatArray, tokens: FloatArray, bin_seconds: float) -> FloatArray:
    """Each request's tokens land in the bin of its arrival."""
    indices = np.floor(offsets / bin_seconds).astype(np.int64)
    counts = int(indices[-1]) + 1
    return np.bincount(indices, weights=tokens, minlength=counts).astype(np.float64)


def _bin_rates(offsets: FloatArray, rates: FloatArray, bin_seconds: float) -> FloatArray:
    """Integrate a piecewise-constant rate; the last row holds for the median row spacing."""
    if len(offsets) > 1:
        spacing = float(np.median(np.diff(offsets)))
        if spacing <= 0:
            spacing = bin_seconds
    else:
        spacing = bin_seconds
    ends = np.append(offsets[1:], offsets[-1] + spacing)
    total = float(ends[-1])
    counts = max(1, math.ceil(total / bin_seconds - 1e-9))
    # Cumulative tokens at each row boundary, then sampled at bin edges by linear interpolation,
    # which is exact for a piecewise-constant rate.
    cumulative = np.concatenate(([0.0], np.cumsum(rates * (ends - offsets))))
    boundaries = np.concatenate((offsets[:1], ends))
    edges = np.arange(counts + 1, dtype=np.float64) * bin_seconds
    at_edges = np.interp(edges, boundaries, cumulative)
    return np.diff(at_edges)


PLAUSIBLE_FROM = datetime(2000, 1, 1, tzinfo=UTC)
"""A trace of LLM requests that starts before this was not recorded then: its clock is off."""


def implausible_clock(series: TokenSeries, timestamp_unit_seconds: float) -> str:
    """Why the trace's clock looks wrong, or "" when it does not.

    Numeric timestamps are read as units since 1970-01-01; timestamps that count from 0 (an
    offset into a recording) land in 1970, and milliseconds read as seconds stretch an hour
    into weeks. Both replay quietly on the wrong days and hours, so windows and weekdays would
    be wrong; the caller says so."""
    if series.start.astimezone(UTC) >= PLAUSIBLE_FROM:
        return ""
    hours = series.duration_seconds / 3600
    text = (
        f"the trace starts at {series.start:%Y-%m-%d %H:%M %Z} and spans {hours:,.1f} h: its "
        f"numeric timestamps were read as {timestamp_unit_seconds:g} s units since 1970-01-01"
    )
    if timestamp_unit_seconds >= 1.0 and hours > 24:
        text += (
            f"; if they are milliseconds (--timestamp-unit 0.001) it spans "
            f"{hours * 3600 / 1000 / 3600:,.2f} h"
        )
    return text + "; --start places the trace on a date (windows and weekdays follow it)"


def tile_to_days(series: TokenSeries, days: float) -> TokenSeries:
    """Repeat the trace back to back until it covers `days` days, cutting the last copy."""
    if days <= 0 or not math.isfinite(days):
        raise TraceError(f"repeat_days: must be a positive number, got {days!r}")
    bins = math.ceil(days * SECONDS_PER_DAY / series.bin_seconds - 1e-9)
    if bins > MAX_BINS:
        raise TraceError(
            f"repeat_days: at most {MAX_BINS * series.bin_seconds / SECONDS_PER_DAY:g}"
        )
    copies = math.ceil(bins / len(series.tokens))
    tiled = np.tile(series.tokens, copies)[:bins]
    return replace(series, tokens=tiled, source=f"{series.source} tiled to {days:g} days")


def scale_load(series: TokenSeries, factor: float) -> TokenSeries:
    if factor < 0 or not math.isfinite(factor):
        raise TraceError(f"load_scale: must be a non-negative number, got {factor!r}")
    with np.errstate(over="ignore"):
        scaled = series.tokens * factor
        total = float(scaled.sum())
    if not math.isfinite(total):
        raise TraceError(f"load_scale: {factor:g} makes the trace's token total too large")
    return replace(series, tokens=scaled)


def shift_start(series: TokenSeries, start: datetime) -> TokenSeries:
    """Place the first bin at `start` (e.g. to replay a trace on a given weekday)."""
    if start.tzinfo is None:
        start = start.replace(tzinfo=series.start.tzinfo)
    return replace(series, start=start)


def with_time_zone(series: TokenSeries, tz: str) -> TokenSeries:
    return replace(series, start=series.start.astimezone(_trace_zone(tz)))


@dataclass(frozen=True)
class DiurnalShape:
    """Parameters of the synthetic week; defaults give a business-hours peak and quiet weekends."""

    peak_tokens_per_second: float = 2_000.0
    trough_fraction: float = 0.08
    peak_hour: float = 14.0
    weekend_factor: float = 0.45
    noise: float = 0.08
    noise_minutes: float = 10.0
    bursts_per_day: float = 1.5
    burst_factor: float = 1.8
    burst_minutes: float = 12.0


def synthetic_diurnal(
    start: datetime,
    days: float = 7.0,
    *,
    shape: DiurnalShape = DiurnalShape(),
    seed: int = 0,
    bin_seconds: float = 1.0,
) -> TokenSeries:
    """A deterministic day/night, weekday/weekend load with slow noise and short bursts.

    The same `seed` gives the same series bit for bit, so tests and docs can quote its numbers.
    """
    if start.tzinfo is None:
        raise TraceError("start: the synthetic trace needs a time-zone-aware start")
    if days <= 0:
        raise TraceError(f"days: must be positive, got {days!r}")
    rng = np.random.default_rng(seed)
    bins = math.ceil(days * SECONDS_PER_DAY / bin_seconds - 1e-9)
    if bins > MAX_BINS:
        raise TraceError(f"days: at most {MAX_BINS * bin_seconds / SECONDS_PER_DAY:g}")
    offsets = np.arange(bins, dtype=np.float64) * bin_seconds
    # Local clock hours follow the start's UTC offset (a DST change inside the trace is ignored).
    local_start = start
    start_local_hours = local_start.hour + local_start.minute / 60.0 + local_start.second / 3600.0
    local_hours = start_local_hours + offsets / 3600.0
    hour_of_day = np.mod(local_hours, 24.0)
    day_index = np.floor(local_hours / 24.0).astype(np.int64)
    weekday = np.mod(local_start.weekday() + day_index, 7)

    # Day/night: a raised cosine peaking at `peak_hour`, sharpened so nights stay quiet.
    phase = 2.0 * np.pi * (hour_of_day - shape.peak_hour) / 24.0
    daily = ((1.0 + np.cos(phase)) / 2.0) ** 2
    weekly = np.where(weekday >= 5, shape.weekend_factor, 1.0)
    level = shape.trough_fraction + (1.0 - shape.trough_fraction) * daily * weekly

    # Slow multiplicative noise: one lognormal knot every `noise_minutes`, linearly interpolated.
    knot_spacing = shape.noise_minutes * 60.0
    knots = math.ceil(bins * bin_seconds / knot_spacing) + 2
    knot_values = rng.normal(0.0, shape.noise, size=knots)
    noise = np.exp(np.interp(offsets, np.arange(knots) * knot_spacing, knot_values))

    bursts = np.ones(bins, dtype=np.float64)
    count = int(rng.poisson(shape.bursts_per_day * days))
    for burst_start in np.sort(rng.uniform(0.0, bins * bin_seconds, size=count)):
        length = rng.exponential(shape.burst_minutes * 60.0)
        inside = (offsets >= burst_start) & (offsets < burst_start + length)
        bursts[inside] *= shape.burst_factor

    rates = shape.peak_tokens_per_second * level * noise * bursts
    return TokenSeries(
        start=start,
        bin_seconds=bin_seconds,
        tokens=rates * bin_seconds,
        source=f"synthetic diurnal ({days:g} days, seed {seed})",
    )
