"""`deepseek-operator simulate`: replay a load trace through every policy and compare them.

Inputs are read and validated completely (trace, deployment, pools) before anything is
replayed, so a bad line or field stops the command with one clear error and no partial table.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import Field
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from deepseek_operator.api.deployment import DeepSeekDeployment
from deepseek_operator.api.resolution import UnknownTimeZone, lookup_time_zone
from deepseek_operator.api.vocabulary import (
    MAX_DEMAND_TOKENS_PER_SECOND,
    MAX_SEED,
    instant_in_range,
)
from deepseek_operator.cli.inputs import (
    CommandOptions,
    InputError,
    missing_rate_message,
    read_text,
    stop,
    writable_file,
)
from deepseek_operator.cli.resource_files import (
    ClusterOption,
    NodesOption,
    StartupOption,
    load_deployment,
    load_pools,
    pool_setups,
)
from deepseek_operator.core.costing.cost import UnknownCurrencyRate
from deepseek_operator.core.costing.money import format_money
from deepseek_operator.core.planning.inputs import PlanningInputError
from deepseek_operator.core.replay.comparison import (
    POLICY_NAMES,
    Comparison,
    LoadOnlyRules,
    ReplaySettings,
    compare,
    timeline,
)
from deepseek_operator.core.replay.engine import DemandTimeline, Observation, PolicyRun
from deepseek_operator.core.replay.inputs import ReplayInputs, replay_inputs
from deepseek_operator.core.replay.oracle import DEFAULT_MAX_STEPS, OracleSolution
from deepseek_operator.core.replay.traces import (
    DEFAULT_TOKENS_PER_REQUEST,
    MAX_BINS,
    SECONDS_PER_DAY,
    DiurnalShape,
    TokenSeries,
    TokenWeights,
    TraceError,
    TraceFormat,
    detect_format,
    implausible_clock,
    parse_trace,
    scale_load,
    scale_to_peak,
    shift_start,
    synthetic_diurnal,
    tile_to_days,
)
from deepseek_operator.core.workloads.engines import RATE_WINDOW_SECONDS

TRACE_MAX_BYTES = 1024 * 1024 * 1024
"""Public request traces run to a few hundred megabytes for a week; a gigabyte is the most a
replay is meant to hold in memory at once."""

PROGRESS_MIN_STEPS = 2_000
"""Replays shorter than this finish in a blink; longer ones show a progress bar."""

REPLAY_MAX_DAYS = MAX_BINS / SECONDS_PER_DAY
"""The longest replay: the trace readers' bound (400 days of one-second bins)."""


class SimulateOptions(CommandOptions):
    """simulate's numeric options and their bounds; each refused by its flag name."""

    # Numeric timestamps come in nanoseconds (1e-9) up to days (86 400 s) in public traces.
    timestamp_unit: float = Field(ge=1e-9, le=86_400)
    # A millionfold stretch turns one minute into two years; beyond is a unit error.
    time_scale: float = Field(ge=1e-6, le=1e6)
    repeat_days: float | None = Field(default=None, gt=0, le=REPLAY_MAX_DAYS)
    # Load scaled a millionfold exceeds every pool; zero is allowed (an idle replay).
    load_scale: float = Field(ge=0, le=1e6)
    # Token weights compare prompt and generated tokens: beyond 1000 : 1 is a typo.
    prompt_weight: float = Field(ge=0, le=1000)
    generated_weight: float = Field(ge=0, le=1000)
    days: float = Field(gt=0, le=REPLAY_MAX_DAYS)
    seed: int = Field(ge=0, le=MAX_SEED)
    peak_tokens_per_second: float | None = Field(
        default=None, ge=0, le=MAX_DEMAND_TOKENS_PER_SECOND
    )
    # A request's output runs from one token to a long reasoning trace of ~10^5.
    mean_output_tokens: float = Field(ge=1, le=1e6)
    # The trace's bins are one second and the reconcile interval is at most an hour.
    step: float | None = Field(default=None, ge=1, le=3600)
    # Prometheus scrapes every few seconds to minutes; an hour is the far end of practice.
    scrape_interval: float = Field(ge=1, le=3600)
    # rate() windows longer than a day average the day/night cycle away.
    rate_window: float | None = Field(default=None, ge=1, le=86_400)
    # The oracle MILP has pools x steps variables; a million steps is already hours of solving.
    oracle_max_steps: int = Field(ge=1, le=1_000_000)
    oracle_time_limit: float = Field(gt=0, le=86_400)


class Synthetic(StrEnum):
    DIURNAL = "diurnal"


class FormatChoice(StrEnum):
    AUTO = "auto"
    AZURE = "azure"
    RATE = "rate"
    JSONL = "jsonl"
    HOURLY = "hourly"


def register(app: typer.Typer) -> None:
    app.command(name="simulate")(simulate)


def rate_window_from_query(deployment: DeepSeekDeployment) -> float | None:
    """The `[2m]` of the deployment's rate() query, which is the window the operator sees;
    the default queries' window when the spec names no query."""
    if deployment.spec.load is None:
        return None
    query = deployment.spec.load.tokens_per_second_query
    if query is None:
        return float(RATE_WINDOW_SECONDS)
    match = re.search(r"\[(\d+)([smh])\]", query)
    if match is None:
        return None
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]


def build_series(
    trace: Path | None,
    synthetic: Synthetic | None,
    *,
    fmt: FormatChoice,
    tz: str,
    timestamp_unit_seconds: float,
    time_scale: float,
    prompt_weight: float,
    generated_weight: float,
    start: str | None,
    days: float,
    seed: int,
    peak: float | None,
    tokens_per_request: float = DEFAULT_TOKENS_PER_REQUEST,
) -> TokenSeries:
    if (trace is None) == (synthetic is None):
        raise InputError("give either --trace FILE or --synthetic diurnal")
    try:
        zone = lookup_time_zone(tz)
    except UnknownTimeZone as exc:
        raise InputError(f"--tz: {exc}") from exc
    begin = None
    if start is not None:
        try:
            begin = datetime.fromisoformat(start)
        except ValueError as exc:
            raise InputError(f"--start: {start!r} is not an ISO 8601 date-time") from exc
        if begin.tzinfo is None:
            begin = begin.replace(tzinfo=zone)
        try:
            instant_in_range(begin, "--start")
        except ValueError as exc:
            raise InputError(str(exc)) from None
    if synthetic is not None:
        monday = begin or datetime(2024, 1, 1, tzinfo=zone)
        shape = DiurnalShape(peak_tokens_per_second=2_000.0 if peak is None else peak)
        return synthetic_diurnal(monday, days, shape=shape, seed=seed)
    assert trace is not None
    text = read_text(trace, "--trace", TRACE_MAX_BYTES)

    def read(per_request: float) -> TokenSeries:
        return parse_trace(
            text,
            str(trace),
            fmt=None if fmt is FormatChoice.AUTO else TraceFormat(fmt.value),
            tz=tz,
            weights=TokenWeights(prompt=prompt_weight, generated=generated_weight),
            timestamp_unit_seconds=timestamp_unit_seconds,
            time_scale=time_scale,
            tokens_per_request=per_request,
        )

    try:
        series = read(tokens_per_request)
        if peak is not None:
            hourly = (
                detect_format(text, str(trace)) is TraceFormat.HOURLY
                if fmt is FormatChoice.AUTO
                else fmt is FormatChoice.HOURLY
            )
            scaled, factor = scale_to_peak(series, peak)
            # An hourly-count trace states the output tokens per request that give the peak.
            series = read(tokens_per_request * factor) if hourly and factor > 0 else scaled
    except TraceError as exc:
        raise InputError(f"--trace: {exc}") from None
    return series if begin is None else shift_start(series, begin)


def plot_window(
    series: TokenSeries, step_seconds: float, first: str | None, last: str | None, tz: str
) -> tuple[int, int] | None:
    """The replay steps [first, last) between the ISO instants `--from` and `--to` (either
    may be absent: the trace's start or end); instants without a zone are read in `tz`."""
    if first is None and last is None:
        return None
    steps = math.ceil(series.duration_seconds / step_seconds)
    end = series.start + timedelta(seconds=steps * step_seconds)

    def instant(text: str | None, flag: str, default: datetime) -> datetime:
        if text is None:
            return default
        try:
            at = datetime.fromisoformat(text)
        except ValueError as exc:
            raise InputError(f"{flag}: {text!r} is not an ISO 8601 date-time") from exc
        if at.tzinfo is None:
            at = at.replace(tzinfo=lookup_time_zone(tz))
        if not series.start <= at <= end:
            raise InputError(
                f"{flag}: {text} is outside the replay ({series.start.isoformat()} to "
                f"{end.isoformat()})"
            )
        return at

    begin = instant(first, "--from", series.start)
    stop_at = instant(last, "--to", end)
    if stop_at <= begin:
        raise InputError(f"--to: {stop_at.isoformat()} is not after --from {begin.isoformat()}")
    lo = math.floor((begin - series.start).total_seconds() / step_seconds)
    hi = math.ceil((stop_at - series.start).total_seconds() / step_seconds - 1e-9)
    return lo, max(lo + 1, min(steps, hi))


def _percent(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    value = round(value, 1 if signed else 2) + 0.0  # no "-0.0 %"
    return f"{value:+.1f} %" if signed else f"{value:.2f} %"


def comparison_table(result: Comparison, currency: str, title: str) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAVY, title_justify="left")
    table.add_column("policy", style="bold")
    table.add_column(f"cost ({currency})", justify="right")
    table.add_column(f"{currency} / M tokens", justify="right")
    table.add_column("unmet demand", justify="right")
    table.add_column("min unmet", justify="right")
    table.add_column("moves", justify="right")
    table.add_column("GPU-hours", justify="right")
    table.add_column("vs static-gpu", justify="right")
    table.add_column("vs oracle", justify="right")
    table.add_column("vs fair oracle", justify="right")
    for row in result.summaries:
        table.add_row(
            row.name,
            format_money(row.cost, digits=2),
            format_money(row.cost_per_million_tokens, digits=3),
            _percent(row.unmet_percent),
            f"{row.unmet_minutes:,.1f}",
            str(row.moves),
            f"{row.gpu_hours:,.1f}",
            _percent(
                None
                if row.savings_vs_static_gpu_percent is None
                else -row.savings_vs_static_gpu_percent,
                signed=True,
            ),
            _percent(row.gap_to_oracle_percent, signed=True),
            _percent(row.gap_to_fair_oracle_percent, signed=True),
        )
    return table


def comparison_json(
    result: Comparison, inputs: ReplayInputs, series: TokenSeries, settings: ReplaySettings
) -> dict[str, Any]:
    demand = result.demand
    return {
        "trace": {
            "source": series.source,
            "start": series.start.isoformat(),
            "durationSeconds": demand.steps * demand.step_seconds,
            "tokens": float(demand.arriving_tokens.sum()),
            "peakTokensPerSecond": float(demand.arriving_tokens_per_second.max()),
            "meanTokensPerSecond": float(demand.arriving_tokens_per_second.mean()),
        },
        "stepSeconds": settings.step_seconds,
        "scrapeIntervalSeconds": settings.observation.scrape_interval_seconds,
        "rateWindowSeconds": settings.observation.rate_window_seconds,
        "currency": inputs.currency,
        "pools": [
            {
                "name": p.name,
                "kind": p.kind,
                "costPerReplicaHour": p.cost_per_replica_hour,
                "tokensPerSecondPerReplica": p.tokens_per_second_per_replica,
                "startupSeconds": p.startup_seconds,
                "maxReplicas": p.max_replicas,
                "gpusPerReplica": p.gpus_per_replica,
            }
            for p in inputs.pools
        ],
        "policies": [
            {
                "name": s.name,
                "cost": s.cost,
                "costPerMillionTokens": s.cost_per_million_tokens,
                "unmetPercent": s.unmet_percent,
                "unmetMinutes": s.unmet_minutes,
                "moves": s.moves,
                "gpuHours": s.gpu_hours,
                "savingsVsStaticGpuPercent": s.savings_vs_static_gpu_percent,
                "gapToOraclePercent": s.gap_to_oracle_percent,
                "gapToFairOraclePercent": s.gap_to_fair_oracle_percent,
            }
            for s in result.summaries
        ],
        "oracle": _oracle_json(result.oracle),
        "fairOracle": _oracle_json(result.fair_oracle),
        "notes": list(result.notes),
        "timeline": {run.name: _timeline_json(run, demand) for run in result.runs},
    }


def _oracle_json(solution: OracleSolution | None) -> dict[str, Any] | None:
    if solution is None:
        return None
    return {
        "status": solution.status,
        "stepSeconds": solution.step_seconds,
        "coarsening": solution.factor,
        "windows": solution.windows,
        "solveSeconds": solution.solve_seconds,
        "mipGap": solution.mip_gap,
        "method": solution.method,
        # The MILP's variables, or the placements the band oracle searched.
        "variables": solution.variables,
    }


def _timeline_json(run: PolicyRun, demand: DemandTimeline) -> list[dict[str, Any]]:
    """Each step at which the policy's replicas or rule changed (see `timeline`)."""
    return [
        {
            "step": e.step,
            "at": e.at.astimezone(demand.start.tzinfo).isoformat(),
            "billed": e.billed,
            "ready": e.ready,
            "demandSeenTokensPerSecond": e.demand_seen_tokens_per_second,
            "demandPlannedTokensPerSecond": e.demand_planned_tokens_per_second,
            "rule": e.rule,
        }
        for e in timeline(run, demand)
    ]


def simulate(
    deployment: Annotated[
        Path, typer.Option("--deployment", "-d", help="DeepSeekDeployment YAML to replay.")
    ],
    pools: Annotated[Path, typer.Option("--pools", "-p", help="PoolProfile YAML (one or more).")],
    trace: Annotated[
        Path | None,
        typer.Option(
            "--trace", "-t", help="Trace file: Azure LLM CSV, rate CSV or JSONL (see docs)."
        ),
    ] = None,
    synthetic: Annotated[
        Synthetic | None,
        typer.Option("--synthetic", help="Generate a deterministic trace instead of reading one."),
    ] = None,
    trace_format: Annotated[
        FormatChoice, typer.Option("--format", help="Trace format; auto reads the header.")
    ] = FormatChoice.AUTO,
    tz: Annotated[
        str | None,
        typer.Option(
            "--tz", help="IANA zone of naive trace timestamps; default: the schedule's zone."
        ),
    ] = None,
    start: Annotated[
        str | None, typer.Option("--start", help="Move the trace to start at this ISO instant.")
    ] = None,
    timestamp_unit: Annotated[
        float,
        typer.Option(help="Seconds per unit of numeric timestamps (0.001 for milliseconds)."),
    ] = 1.0,
    time_scale: Annotated[
        float, typer.Option(help="Stretch the trace in time by this factor (tokens are kept).")
    ] = 1.0,
    repeat_days: Annotated[
        float | None,
        typer.Option(help="Tile the trace back to back until it covers this many days."),
    ] = None,
    load_scale: Annotated[
        float, typer.Option(help="Multiply every request's tokens (the load) by this factor.")
    ] = 1.0,
    prompt_weight: Annotated[
        float,
        typer.Option(help="Weight of a prompt token in demand (capacity is output tokens/s)."),
    ] = 0.0,
    generated_weight: Annotated[float, typer.Option(help="Weight of a generated token.")] = 1.0,
    days: Annotated[float, typer.Option(help="Length of the synthetic trace, in days.")] = 7.0,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic trace.")] = 0,
    peak_tokens_per_second: Annotated[
        float | None,
        typer.Option(
            help="Scale the trace so its highest one-minute rate is this many tok/s (the "
            "synthetic trace's weekday afternoon level; default 2,000 there, unscaled for a "
            "trace file)."
        ),
    ] = None,
    mean_output_tokens: Annotated[
        float,
        typer.Option(
            help="Output tokens per request of an hourly-count trace (day or date, hour, count); "
            "with --peak-tokens-per-second, the mean that gives that peak is used and stated."
        ),
    ] = DEFAULT_TOKENS_PER_REQUEST,
    nodes: NodesOption = None,
    cluster: ClusterOption = None,
    startup: StartupOption = None,
    step: Annotated[
        float | None,
        typer.Option(help="Replay step in seconds; default the reconcile interval."),
    ] = None,
    scrape_interval: Annotated[
        float, typer.Option(help="Prometheus scrape interval, seconds.")
    ] = 15.0,
    rate_window: Annotated[
        float | None,
        typer.Option(
            help="rate() window, seconds; default: the load query's (60 for the default "
            "queries), else 120."
        ),
    ] = None,
    policies: Annotated[
        str, typer.Option(help=f"Comma-separated subset of: {', '.join(POLICY_NAMES)}.")
    ] = ",".join(POLICY_NAMES),
    load_only_pool: Annotated[
        str | None,
        typer.Option(help="Pool the load-only HPA scales; default the cheapest GPU per token."),
    ] = None,
    load_only_rules: Annotated[
        LoadOnlyRules,
        typer.Option(
            help="Stabilisation windows and tolerance of the load-only HPA: the deployment's "
            "load settings (as ours), or the HPA's defaults (300 s down, 0 s up, 10 %).",
        ),
    ] = LoadOnlyRules.DEPLOYMENT,
    oracle_max_steps: Annotated[
        int,
        typer.Option(help="Solve the oracle on a coarser step when the trace has more steps."),
    ] = DEFAULT_MAX_STEPS,
    oracle_time_limit: Annotated[
        float, typer.Option(help="Seconds the oracle MILP may take (best schedule after).")
    ] = 300.0,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write a PNG: demand vs capacity, cost.")
    ] = None,
    plot_from: Annotated[
        str | None,
        typer.Option("--from", help="With --plot: draw from this ISO instant (zoom a long trace)."),
    ] = None,
    plot_to: Annotated[
        str | None,
        typer.Option("--to", help="With --plot: draw up to this ISO instant."),
    ] = None,
    plot_policy: Annotated[
        str, typer.Option(help="Policy whose capacity per pool the plot stacks.")
    ] = "ours",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Replay a load trace through static, clock, HPA, planner and hindsight-optimal policies."""
    console = Console(stderr=as_json)
    bounds = SimulateOptions.check(
        timestamp_unit=timestamp_unit,
        time_scale=time_scale,
        repeat_days=repeat_days,
        load_scale=load_scale,
        prompt_weight=prompt_weight,
        generated_weight=generated_weight,
        days=days,
        seed=seed,
        peak_tokens_per_second=peak_tokens_per_second,
        mean_output_tokens=mean_output_tokens,
        step=step,
        scrape_interval=scrape_interval,
        rate_window=rate_window,
        oracle_max_steps=oracle_max_steps,
        oracle_time_limit=oracle_time_limit,
    )
    if plot is not None:
        writable_file(plot, "--plot", suffix=".png")
    try:
        dsd = load_deployment(deployment)
        profiles = load_pools(pools)
        inputs = replay_inputs(dsd, profiles, pool_setups(nodes or [], cluster, startup or []))
        zone = tz or dsd.spec.schedule.time_zone
        series = build_series(
            trace,
            synthetic,
            fmt=trace_format,
            tz=zone,
            timestamp_unit_seconds=bounds.timestamp_unit,
            time_scale=bounds.time_scale,
            prompt_weight=bounds.prompt_weight,
            generated_weight=bounds.generated_weight,
            start=start,
            days=bounds.days,
            seed=bounds.seed,
            peak=bounds.peak_tokens_per_second,
            tokens_per_request=bounds.mean_output_tokens,
        )
        clock = implausible_clock(series, bounds.timestamp_unit) if trace is not None else ""
        if clock:
            Console(stderr=True).print(f"warning: {clock}", highlight=False, soft_wrap=True)
        if bounds.repeat_days is not None:
            series = tile_to_days(series, bounds.repeat_days)
        if bounds.load_scale != 1.0:
            series = scale_load(series, bounds.load_scale)
        if plot_policy not in POLICY_NAMES:
            raise InputError(
                f"--plot-policy: {plot_policy!r} is not one of {', '.join(POLICY_NAMES)}"
            )
        pool_names = [p.name for p in inputs.pools]
        if load_only_pool is not None and load_only_pool not in pool_names:
            raise InputError(
                f"--load-only-pool: {load_only_pool!r} is not a pool of the deployment "
                f"({', '.join(pool_names)})"
            )
        window = bounds.rate_window or rate_window_from_query(dsd) or 120.0
        chosen = tuple(p.strip() for p in policies.split(",") if p.strip())
        if not chosen:
            raise InputError(f"--policies: name at least one of {', '.join(POLICY_NAMES)}")
        unknown = [p for p in chosen if p not in POLICY_NAMES]
        if unknown:
            raise InputError(
                f"--policies: unknown {', '.join(unknown)}; choose from {', '.join(POLICY_NAMES)}"
            )
        settings = ReplaySettings(
            step_seconds=(
                bounds.step if bounds.step is not None else inputs.reconcile_interval_seconds
            ),
            observation=Observation(bounds.scrape_interval, window),
            policies=chosen,
            load_only_pool=load_only_pool,
            load_only_rules=load_only_rules,
            oracle_max_steps=bounds.oracle_max_steps,
            oracle_time_limit_seconds=bounds.oracle_time_limit,
        )
    except UnknownCurrencyRate as exc:
        stop(f"{deployment}: {missing_rate_message(exc)}")
    except (InputError, PlanningInputError, TraceError) as exc:
        stop(exc)

    steps = math.ceil(series.duration_seconds / settings.step_seconds)
    try:
        if plot is None and (plot_from is not None or plot_to is not None):
            raise InputError("--from/--to: they choose what --plot draws; give --plot too")
        drawn = plot_window(series, settings.step_seconds, plot_from, plot_to, zone)
    except InputError as exc:
        stop(exc)
    result = _run_with_progress(inputs, series, settings, console, show=steps >= PROGRESS_MIN_STEPS)

    if plot is not None:
        from deepseek_operator.cli.simulate_plot import write_plot

        try:
            write_plot(result, inputs.currency, plot, plot_policy, drawn)
        except OSError as error:
            stop(f"--plot: cannot write {plot}: {error.strerror or error}")
    if as_json:
        payload = comparison_json(result, inputs, series, settings)
        if plot is not None:
            payload["plot"] = str(plot)
        typer.echo(json.dumps(payload, indent=2))
        return
    demand = result.demand
    hours = demand.steps * demand.step_seconds / 3600
    title = (
        f"{series.source}: {hours:,.1f} h from {series.start:%Y-%m-%d %H:%M %Z}, "
        f"{demand.arriving_tokens.sum() / 1e6:,.2f} M tokens, peak "
        f"{demand.arriving_tokens_per_second.max():,.0f} tok/s, step {settings.step_seconds:g} s"
    )
    console.print(comparison_table(result, inputs.currency, title))
    console.print(
        "vs static-gpu: cost change against the all-GPU pool sized for the peak; vs oracle: cost "
        "above the hindsight optimum under the deployment's rules (windows, SLO, bounds) that "
        "only covers demand; vs fair oracle: the same optimum keeping ours's tolerance band "
        "(every change lands at demand × (1 + headroom), between changes ÷ (1 + tolerance) is "
        "enough)."
    )
    for note in result.notes:
        console.print(f"• {note}")
    if plot is not None:
        console.print(f"plot written to {plot}")


def _run_with_progress(
    inputs: ReplayInputs,
    series: TokenSeries,
    settings: ReplaySettings,
    console: Console,
    *,
    show: bool,
) -> Comparison:
    if not show:
        return compare(inputs, series, settings)
    log = Console(stderr=True)
    if not log.is_terminal:
        # A bar redrawn in place means nothing in a log file or a pipe, and rich draws none
        # there: a long replay would print nothing for minutes. Lines with an ETA instead.
        return compare(inputs, series, settings, _progress_lines(log))
    with Progress(
        TextColumn("{task.description:>10}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} steps"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def report(name: str, step: int, steps: int) -> None:
            if name not in tasks:
                label = f"{name} MILP" if name.endswith("oracle") else name
                tasks[name] = progress.add_task(label, total=steps)
            if step == steps or step % 200 == 0:
                progress.update(tasks[name], completed=step)

        return compare(inputs, series, settings, report)


PROGRESS_LINE_SECONDS = 10.0
"""Least time between two progress lines of one policy when stderr is not a terminal."""


def _progress_lines(log: Console) -> Callable[[str, int, int], None]:
    """A progress reporter that writes a line per policy when it starts, every
    `PROGRESS_LINE_SECONDS` after, and when it ends: steps done, elapsed time and the time
    left at the rate so far."""
    started: dict[str, float] = {}
    said: dict[str, float] = {}

    def report(name: str, step: int, steps: int) -> None:
        now = time.monotonic()
        began = started.setdefault(name, now)
        if step < steps and name in said and now - said[name] < PROGRESS_LINE_SECONDS:
            return
        said[name] = now
        elapsed = now - began
        # One step says nothing of the rate: the ETA waits for a second of work to go on.
        known = step > 0 and elapsed >= 1.0
        left = f"ETA {elapsed * (steps - step) / step:,.0f} s" if known else "ETA unknown"
        if step >= steps:
            left = "done"
        share = step / steps if steps else 1.0
        log.print(
            f"{name}: {step:,}/{steps:,} steps ({share:.0%}), {elapsed:,.0f} s elapsed, {left}",
            highlight=False,
            soft_wrap=True,
        )

    return report
