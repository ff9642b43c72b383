"""The break-even chart: cumulative local cost against the cloud bill over time.

Local spending starts at the purchase price on day one and grows by the running cost; the cloud
line starts at zero and grows by the API bill. Where they cross, the hardware has paid for
itself. matplotlib is imported inside the function (Agg backend, no display needed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from deepseek_operator.api.vocabulary import Currency
from deepseek_operator.core.costing.cost import CloudComparison

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MONTHS_PER_YEAR = 12


@dataclass(frozen=True)
class Series:
    label: str
    comparison: CloudComparison


def plot_cumulative_cost(
    path: Path,
    series: list[Series],
    years: float,
    currency: Currency,
    title: str,
    cloud_label: str = "cloud API",
) -> None:
    """Write a PNG of cumulative local vs cloud cost with each break-even point marked."""
    import matplotlib.pyplot as plt

    figure = cumulative_cost_figure(series, years, currency, title, cloud_label)
    figure.savefig(path)
    plt.close(figure)


def cumulative_cost_figure(
    series: list[Series],
    years: float,
    currency: Currency,
    title: str,
    cloud_label: str = "cloud API",
) -> Figure:
    """The chart as a matplotlib Figure (Agg backend), for saving or inspection."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    months = max(round(years * MONTHS_PER_YEAR), 1)
    steps = [m / 4 for m in range(months * 4 + 1)]
    scale = 1000.0
    figure, axes = plt.subplots(figsize=(9, 5.5), dpi=120)
    if series:
        first = series[0].comparison
        cloud = [first.cumulative(m / MONTHS_PER_YEAR)[1] / scale for m in steps]
        axes.plot(steps, cloud, color="C0", linewidth=2, linestyle="--", label=cloud_label)
    for index, item in enumerate(series):
        colour = f"C{index + 1}"
        local = [item.comparison.cumulative(m / MONTHS_PER_YEAR)[0] / scale for m in steps]
        axes.plot(steps, local, color=colour, linewidth=2, label=item.label)
        payback = item.comparison.payback_years
        owned = item.comparison.local.hardware > 0
        if owned and payback is not None and payback * MONTHS_PER_YEAR <= months:
            month = payback * MONTHS_PER_YEAR
            value = item.comparison.cumulative(payback)[0] / scale
            axes.plot(
                [month], [value], marker="o", markersize=8, color=colour, markeredgecolor="black"
            )
            axes.annotate(
                f"break-even {month:.1f} months",
                xy=(month, value),
                xytext=(10, 10),
                textcoords="offset points",
                fontsize=9,
                color=colour,
                bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": colour},
            )
    axes.set_xlabel("Time since purchase (months)")
    axes.set_ylabel(f"Cumulative cost (thousand {currency})")
    axes.set_title(title)
    axes.set_xlim(0, months)
    axes.set_ylim(bottom=0)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper left", fontsize=9)
    figure.tight_layout()
    return figure
