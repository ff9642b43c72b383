"""The article's section-4 example, recomputed from its inputs, with its divergences."""

from __future__ import annotations

from dataclasses import replace

import pytest

from deepseek_operator.core.costing.article import ArticleInputs, Divergence, article_report


def _line(item_start: str) -> Divergence:
    report = article_report()
    matches = [line for line in report.lines if line.item.startswith(item_start)]
    assert len(matches) == 1, item_start
    return matches[0]


def test_totals_follow_from_their_components() -> None:
    report = article_report()
    assert report.a100_tco.total == pytest.approx(1_780_000)
    assert report.rtx_tco.total == pytest.approx(1_092_000)
    assert report.power_example_kwh == 42_048
    assert round(report.power_example_cny) == 50_458


def test_payback_is_not_the_cost_ratio() -> None:
    report = article_report()
    assert report.roi.cost_ratio == pytest.approx(2.12, abs=0.01)
    assert report.roi.payback_years == pytest.approx(0.5)
    line = _line("Payback period")
    assert line.verdict == "diverges"
    assert "0.50 years" in line.from_inputs


def test_power_lines_show_what_the_inputs_give() -> None:
    a100 = _line("4 x A100 80GB: 3-year power")
    assert a100.verdict == "diverges"
    assert "75.7 k CNY" in a100.from_inputs
    assert _line("Power, 8 x A100").verdict == "agrees"


def test_implied_exchange_rate_is_seven() -> None:
    assert article_report().implied_cny_per_usd == pytest.approx(7.0)


def test_every_line_explains_itself() -> None:
    report = article_report()
    assert len(report.lines) >= 15
    for line in report.lines:
        assert line.why and line.article and line.from_inputs


def test_report_is_computed_from_inputs_not_copied() -> None:
    inputs = ArticleInputs()
    cheaper = replace(inputs, electricity_cny_per_kwh=0.6)
    assert article_report(cheaper).power_example_cny == pytest.approx(
        article_report(inputs).power_example_cny / 2
    )
    bigger = replace(inputs, a100_cluster=replace(inputs.a100_cluster, hardware_cny=800_000))
    assert article_report(bigger).a100_tco.total == pytest.approx(2_180_000)
    assert article_report(bigger).roi.payback_years == pytest.approx(1.0)


def test_the_break_even_load_claim_follows_from_its_inputs() -> None:
    line = _line("Local pays off above")
    assert line.verdict == "agrees"
    assert "47,090 requests/day" in line.from_inputs
