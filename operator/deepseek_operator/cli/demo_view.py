"""What the demo shows while the day runs and when it ends: a rich table per moment, a summary."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.table import Table

from deepseek_operator.cli.demo_day import TIME_ZONE, Sample, Summary, placement_text


def _money(value: float | None, currency: str) -> str:
    return "-" if value is None else f"{value:,.2f} {currency}"


def live_table(sample: Sample | None, progress: float, load_note: str) -> Table:
    """Where the replicas are now, the window, the cost per hour and the savings."""
    table = Table(title=f"r1-7b, a compressed day: {progress:.0%} walked ({load_note})")
    for column in ("time (demo clock)", "window", "Ready", "planned", "load tok/s", "cost/h",
                   "all-GPU cost/h", "savings"):  # fmt: skip
        table.add_column(column)
    if sample is None:
        table.add_row("waiting for the first status…", *[""] * 7)
        return table
    demand = sample.demand_tokens_per_second
    table.add_row(
        local_time(sample.at),
        sample.window,
        placement_text(sample.ready),
        placement_text(sample.desired),
        "-" if demand is None else f"{demand:,.0f}",
        _money(sample.cost_per_hour, sample.currency),
        _money(sample.baseline_cost_per_hour, sample.currency),
        "-" if sample.savings_percent is None else f"{sample.savings_percent:.0f}%",
    )
    return table


def summary_lines(summary: Summary, samples: Sequence[Sample]) -> list[str]:
    currency = summary.currency
    lines = [
        f"{summary.hours:.1f} hours walked in {len(samples)} observations",
        f"spent {summary.cost:,.0f} {currency}; on all-GPU the same demand would have cost "
        f"{summary.baseline_cost:,.0f} {currency}: saved {summary.savings:,.0f} {currency} "
        f"({summary.savings_percent:.0f}%)",
        f"{len(summary.moves)} changes of the Ready placement:",
    ]
    for at, before, after in summary.moves:
        lines.append(f"  {local_time(at)}  {before} -> {after}")
    return lines


def local_time(at: datetime) -> str:
    """The demo clock's time where the deployment's windows are (its schedule's zone)."""
    return at.astimezone(TIME_ZONE).strftime("%a %H:%M")
