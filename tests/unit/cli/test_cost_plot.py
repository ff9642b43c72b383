"""The break-even chart: labelled axes with units, a legend, and break-even points where they fall."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from deepseek_operator.cli.cost_plot import Series, cumulative_cost_figure
from deepseek_operator.core.costing.cost import CloudComparison, TotalCostOfOwnership


def _series() -> list[Series]:
    cloud = 1_260_000
    return [
        Series(
            "4 x A100", CloudComparison(TotalCostOfOwnership(400_000, 60_000, 400_000, 3), cloud)
        ),
        Series("rented", CloudComparison(TotalCostOfOwnership(0, 700_000, 0, 3), cloud)),
        Series("too dear", CloudComparison(TotalCostOfOwnership(100_000, 2e6, 0, 3), cloud)),
    ]


def test_chart_is_labelled_with_units_and_a_legend() -> None:
    figure = cumulative_cost_figure(_series(), 3, "CNY", "title")
    try:
        (axes,) = figure.axes
        assert "months" in axes.get_xlabel()
        assert "CNY" in axes.get_ylabel()
        assert axes.get_title() == "title"
        legend_box = axes.get_legend()
        assert legend_box is not None
        legend = [text.get_text() for text in legend_box.get_texts()]
        assert legend == ["cloud API", "4 x A100", "rented", "too dear"]
    finally:
        plt.close(figure)


def test_break_even_is_marked_only_for_owned_pools_that_pay_back() -> None:
    figure = cumulative_cost_figure(_series(), 3, "CNY", "title")
    try:
        (axes,) = figure.axes
        notes = [child.get_text() for child in axes.texts]
        # 400 k capex / (1,260 k - 460 k running) per year = 0.5 years = 6 months.
        assert notes == ["break-even 6.0 months"]
        cloud = list(axes.get_lines()[0].get_ydata())  # type: ignore[arg-type]
        assert cloud[-1] == pytest.approx(3 * 1_260)  # thousand CNY after 3 years
    finally:
        plt.close(figure)
