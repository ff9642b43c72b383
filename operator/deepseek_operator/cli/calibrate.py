"""`deepseek-operator calibrate`: rising concurrency against a running server, then a PoolProfile entry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import Field
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from deepseek_operator.api.vocabulary import (
    MAX_CONTEXT_TOKENS,
    PRECISIONS,
    HttpAddress,
    ShortText,
)
from deepseek_operator.calibration.summary import (
    LevelResult,
    merge_into_pool_profile,
    summarise,
    throughput_entry,
)
from deepseek_operator.cli.inputs import (
    CommandOptions,
    InputError,
    read_yaml,
    stop,
    writable_file,
)


def register(app: typer.Typer) -> None:
    app.command(
        "calibrate",
        help="Measure a running model server and write its PoolProfile throughput entry.",
    )(calibrate)


def calibrate(
    precision: Annotated[
        str, typer.Option(help=f"Precision the server runs ({', '.join(PRECISIONS)}).")
    ],
    url: Annotated[
        str, typer.Option(help="Base URL of the running server.")
    ] = "http://127.0.0.1:8000",
    model: Annotated[
        str | None,
        typer.Option(help="Model name for the entry; defaults to the server's model id."),
    ] = None,
    levels: Annotated[
        str, typer.Option(help="Concurrency levels, comma-separated; must include 1.")
    ] = "1,2,4,8,16,32",
    requests_per_level: Annotated[
        int, typer.Option(help="Requests per level (at least 2 per concurrent stream are sent).")
    ] = 16,
    max_tokens: Annotated[int, typer.Option(help="Tokens generated per request.")] = 128,
    pool_profile: Annotated[
        Path | None,
        typer.Option(help="PoolProfile YAML file to update in place; otherwise print the entry."),
    ] = None,
    timeout_seconds: Annotated[float, typer.Option(help="Per-request timeout.")] = 600.0,
) -> None:
    console = Console(stderr=True)
    if precision not in PRECISIONS:
        stop(f"--precision: must be one of {', '.join(PRECISIONS)} (got {precision!r})")
    concurrencies = _parse_levels(levels)
    CalibrateOptions.check(
        url=url,
        model=model,
        requests_per_level=requests_per_level,
        max_tokens=max_tokens,
        timeout_seconds=timeout_seconds,
    )
    document: dict[str, Any] | None = None
    if pool_profile is not None:
        document = _read_pool_profile(pool_profile)

    results, model_name = asyncio.run(
        _measure(
            console, url, model, concurrencies, requests_per_level, max_tokens, timeout_seconds
        )
    )
    _print_levels(console, results)
    try:
        summary = summarise(results)
    except ValueError as error:
        stop(str(error))
    console.print(
        f"single stream [bold]{summary.single_stream_tokens_per_second:.1f}[/] tokens/s, "
        f"saturated [bold]{summary.saturated_tokens_per_second:.1f}[/] tokens/s "
        f"at concurrency {summary.saturation_concurrency} ({summary.gain:.1f}x), "
        f"time to first token {summary.time_to_first_token_seconds * 1000:.0f} ms"
    )
    entry = throughput_entry(
        summary, model=model_name, precision=precision, measured_at=datetime.now(UTC)
    )
    if document is None or pool_profile is None:
        typer.echo(yaml.safe_dump({"throughput": [entry]}, sort_keys=False), nl=False)
        return
    try:
        updated = merge_into_pool_profile(document, entry)
    except ValueError as error:
        stop(f"--pool-profile: {pool_profile}: the updated PoolProfile would be invalid: {error}")
    try:
        pool_profile.write_text(yaml.safe_dump(updated, sort_keys=False), encoding="utf-8")
    except OSError as error:
        stop(f"--pool-profile: cannot write {pool_profile}: {error.strerror or error}")
    console.print(f"wrote the {model_name} / {precision} entry to {pool_profile}")


async def _measure(
    console: Console,
    url: str,
    model: str | None,
    concurrencies: list[int],
    requests_per_level: int,
    max_tokens: int,
    timeout_seconds: float,
) -> tuple[list[LevelResult], str]:
    import httpx

    from deepseek_operator.calibration.measure import run_level, served_model

    limits = httpx.Limits(max_connections=max(concurrencies) + 4)
    async with httpx.AsyncClient(base_url=url, timeout=timeout_seconds, limits=limits) as client:
        try:
            served = await served_model(client)
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as error:
            stop(f"--url: could not list models at {url}/v1/models ({error})")
        counts = [max(requests_per_level, 2 * level) for level in concurrencies]
        results: list[LevelResult] = []
        columns = (
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("calibrating", total=sum(counts))
            for level, count in zip(concurrencies, counts, strict=True):
                progress.update(task, description=f"concurrency {level:>3}")
                results.append(
                    await run_level(
                        client,
                        model=served,
                        concurrency=level,
                        requests=count,
                        max_tokens=max_tokens,
                        on_request_done=lambda: progress.advance(task),
                    )
                )
    return results, model or served


def _print_levels(console: Console, results: list[LevelResult]) -> None:
    base = results[0].tokens_per_second if results and results[0].concurrency == 1 else None
    table = Table(title="Throughput by concurrency")
    for column in (
        "concurrency",
        "requests",
        "errors",
        "tokens",
        "seconds",
        "tokens/s",
        "vs 1",
        "TTFT p50 ms",
    ):
        table.add_column(column, justify="right")
    for level in results:
        ratio = f"{level.tokens_per_second / base:.2f}x" if base else "-"
        ttft = f"{level.median_ttft * 1000:.0f}" if level.median_ttft is not None else "-"
        table.add_row(
            str(level.concurrency),
            str(level.requests),
            str(level.errors),
            str(level.completion_tokens),
            f"{level.wall_seconds:.2f}",
            f"{level.tokens_per_second:.1f}",
            ratio,
            ttft,
        )
    console.print(table)


MAX_CONCURRENCY = 1024
"""Concurrent streams one level may open: the server's own batch bound (`serve
--max-batch-size`); more only queues."""


class CalibrateOptions(CommandOptions):
    """calibrate's options and their bounds."""

    url: HttpAddress
    model: ShortText | None = None
    # Each request is a full generation; a hundred thousand per level takes days.
    requests_per_level: int = Field(ge=1, le=100_000)
    max_tokens: int = Field(ge=1, le=MAX_CONTEXT_TOKENS)
    # A request that takes more than a day is a hung server, not a measurement.
    timeout_seconds: float = Field(gt=0, le=86_400)


def _parse_levels(text: str) -> list[int]:
    try:
        levels = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        stop(f"--levels: expected comma-separated integers (got {text!r})")
    if not levels or levels[0] != 1 or any(level < 1 for level in levels):
        stop(f"--levels: must be positive and include 1 (got {text!r})")
    if levels[-1] > MAX_CONCURRENCY:
        stop(f"--levels: at most {MAX_CONCURRENCY} concurrent requests (got {levels[-1]})")
    return levels


def _read_pool_profile(path: Path) -> dict[str, Any]:
    """The PoolProfile to update, read and checked writable before anything is measured."""
    try:
        document = read_yaml(path, "--pool-profile")
        writable_file(path, "--pool-profile")
    except InputError as error:
        stop(error)
    if not isinstance(document, dict) or document.get("kind") != "PoolProfile":
        stop(f"--pool-profile: {path} is not a PoolProfile document")
    return document
