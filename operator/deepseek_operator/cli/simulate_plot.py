"""The replay as a picture: demand against each pool's ready capacity, and cost over time."""

from __future__ import annotations

from pathlib import Path

from deepseek_operator.core.replay.comparison import Comparison


def write_plot(
    result: Comparison,
    currency: str,
    path: Path,
    policy: str = "ours",
    window: tuple[int, int] | None = None,
) -> None:
    """Top: demand and `policy`'s ready capacity per pool (stacked); bottom: cumulative cost.
    `window`: the steps [first, last) to draw (a long trace's week is a blur at full length);
    the hours stay counted from the trace's start, the cost from the window's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    demand = result.demand
    first, last = window if window is not None else (0, demand.steps)
    part = slice(first, last)
    hours = np.arange(first, last) * demand.step_seconds / 3600.0
    shown = result.run(policy) or result.runs[0]
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(15, 8), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    capacity = shown.capacity_tokens_per_second
    top.stackplot(
        hours,
        capacity[:, part],
        labels=[f"{shown.name}: ready capacity on {p.name} ({p.kind})" for p in shown.pools],
        alpha=0.45,
        step="post",
    )
    top.step(
        hours,
        demand.arriving_tokens_per_second[part],
        where="post",
        color="black",
        lw=0.8,
        label="demand (arriving)",
    )
    top.step(
        hours,
        demand.observed_tokens_per_second[part],
        where="post",
        color="tab:red",
        lw=0.8,
        ls="--",
        label="demand as the operator sees it (scrape + rate window)",
    )
    for name, color in (("oracle", "tab:green"), ("fair-oracle", "tab:olive")):
        oracle = result.run(name)
        if oracle is not None and oracle is not shown:
            top.step(
                hours,
                oracle.capacity_tokens_per_second.sum(axis=0)[part],
                where="post",
                color=color,
                lw=0.8,
                ls=":",
                label=f"{name}: total ready capacity",
            )
    top.set_ylabel("output tokens per second")
    top.set_title(f"Demand and ready capacity per pool (policy: {shown.name})")
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    top.grid(alpha=0.3)

    for run in result.runs:
        cumulative = np.cumsum(run.cost_per_step.sum(axis=0)[part])
        bottom.plot(hours, cumulative, label=f"{run.name} ({cumulative[-1]:,.0f} {currency})")
    bottom.set_ylabel(f"cumulative cost ({currency})")
    bottom.set_xlabel(f"hours since {demand.start:%Y-%m-%d %H:%M %Z}")
    bottom.set_title(
        "Cumulative cost per policy"
        + ("" if window is None else f" over hours {hours[0]:,.1f}–{hours[-1]:,.1f}")
    )
    bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    bottom.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
