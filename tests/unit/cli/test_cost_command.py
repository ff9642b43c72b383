"""`deepseek-operator cost`: tables at 100 columns, JSON, the chart, and clean failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from deepseek_operator.cli import cost as cost_command
from tests.paths import EXAMPLES

EXAMPLE = EXAMPLES / "cost-scenario.yaml"
ENV = {"COLUMNS": "100", "NO_COLOR": "1"}


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    application = typer.Typer()
    cost_command.register(application)

    @application.command()
    def other() -> None:  # a second command keeps `cost` a named sub-command
        """Placeholder so the app has sub-commands like the real CLI."""

    return application


def _run(app: typer.Typer, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["cost", *args], env=ENV)
    return result.exit_code, result.stdout, result.stderr


def test_article_is_readable_at_100_columns(app: typer.Typer) -> None:
    code, out, err = _run(app, "--article")
    assert code == 0, err
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert "1,780.0 k" in out and "1,092.0 k" in out
    assert "Payback period" in out and "6.0 months" in out
    assert "75.7 k CNY" in out


def test_scenario_tables_fit_100_columns(app: typer.Typer) -> None:
    code, out, err = _run(app, "--scenario", str(EXAMPLE))
    assert code == 0, err
    assert max(len(line) for line in out.splitlines()) <= 100
    for heading in ("Fit and throughput", "Cost (CNY)", "TCO over 3 years"):
        assert heading in out
    assert "1,190 M" in out  # the calibrated pool is marked measured


def test_json_output_is_machine_readable(app: typer.Typer) -> None:
    code, out, _ = _run(app, "--scenario", str(EXAMPLE), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["currency"] == "CNY"
    pools = {pool["name"]: pool for pool in data["pools"]}
    assert pools["rtx4090"]["tokens_per_s_per_replica"]["provenance"] == "measured"
    assert pools["a100"]["tokens_per_s_per_replica"]["provenance"] == "estimated"
    article = json.loads(_run(app, "--article", "--json")[1])
    assert article["a100_cluster"]["total"] == pytest.approx(1_780_000)
    assert article["payback_years"] == pytest.approx(0.5)


def test_flags_make_a_one_pool_scenario(app: typer.Typer) -> None:
    code, out, _ = _run(
        app, "--hardware", "rtx-4090", "--model", "r1-distill-qwen-7b", "--devices", "2", "--json"
    )
    assert code == 0
    pool = json.loads(out)["pools"][0]
    assert pool["devices_per_replica"] == 1 and pool["replicas"] == 2


def test_plot_writes_a_png(app: typer.Typer, tmp_path: Path) -> None:
    target = tmp_path / "cost.png"
    code, _, err = _run(app, "--scenario", str(EXAMPLE), "--plot", str(target))
    assert code == 0, err
    with Image.open(target) as image:
        assert image.format == "PNG"
        assert image.size[0] >= 800 and image.size[1] >= 500
    article = tmp_path / "article.png"
    assert _run(app, "--article", "--plot", str(article))[0] == 0
    assert article.stat().st_size > 10_000


def test_bad_scenario_fails_before_printing_anything(app: typer.Typer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    text = EXAMPLE.read_text().replace("hardware: rtx-4090", "hardware: rtx-5090")
    bad.write_text(text.replace("input_price_per_million: 0.55", "input_price_per_million: -1"))
    target = tmp_path / "never.png"
    code, out, err = _run(app, "--scenario", str(bad), "--plot", str(target))
    assert code == 2
    assert out == ""
    assert not target.exists()
    assert "pools[1].hardware" in err and "rtx-4090" in err
    assert "cloud_api.input_price_per_million" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give exactly one of"),
        (("--article", "--hardware", "l40s"), "give exactly one of"),
        (("--scenario", "/nonexistent/scenario.yaml"), "--scenario: cannot read"),
        (("--article", "--plot", "chart.svg"), "must name a .png"),
        (("--hardware", "l40s", "--precision", "int3"), "--precision: Input should be"),
        (("--hardware", "l40s", "--devices", "0"), "--devices: Input should be greater than 0"),
        (("--hardware", "l40s", "--requests-per-day", "inf"), "--requests-per-day: Input should"),
        (("--hardware", "l40s", "--input-price", "1e308"), "--input-price: Input should be less"),
    ],
)
def test_input_errors_are_clear(app: typer.Typer, args: tuple[str, ...], message: str) -> None:
    code, out, err = _run(app, *args)
    assert code == 2
    assert out == ""
    assert message in err


def test_a_currency_without_a_rate_says_how_to_state_one(app: typer.Typer, tmp_path: Path) -> None:
    code, out, err = _run(app, "--hardware", "h100-sxm", "--currency", "EUR")
    assert code == 2
    assert out == ""
    assert "no exchange rate for EUR (rates known: CNY, USD)" in err
    assert "exchange_rates" in err and "Traceback" not in err

    scenario = tmp_path / "eur.yaml"
    scenario.write_text(
        EXAMPLE.read_text().replace(
            "currency: CNY\n", "currency: EUR\nexchange_rates: {EUR: 0.8}\n"
        )
    )
    code, out, err = _run(app, "--scenario", str(scenario))
    assert code == 0, err
    assert "(at 7 CNY/USD, 0.8 EUR/USD)" in " ".join(out.split())
    code, out, err = _run(app, "--scenario", str(scenario), "--json")
    assert code == 0, err
    assert json.loads(out)["exchange_rates"] == {"EUR": 0.8}


def test_usd_reports_keep_working(app: typer.Typer) -> None:
    code, out, err = _run(app, "--hardware", "h100-sxm", "--currency", "USD", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["currency"] == "USD"
    # deepseek-reasoner at USD 0.55 in / 2.19 out, 100,000 requests of 1,000 + 500 tokens a day.
    assert report["cloud_per_year"] == pytest.approx(100_000 * 365 * (0.55e-3 + 2.19 * 0.5e-3))


def test_catalog_lists_every_default_with_its_source(app: typer.Typer) -> None:
    code, out, _ = _run(app, "--catalog", "--json")
    assert code == 0
    data = json.loads(out)
    names = {spec["name"] for spec in data["hardware"]} | {spec["name"] for spec in data["models"]}
    assert {"rtx-4090", "xeon-8380", "deepseek-r1", "r1-distill-qwen-7b"} <= names
    assert all(spec["sources"]["purchase_price"] for spec in data["hardware"])
    code, out, _ = _run(app, "--catalog")
    assert code == 0
    assert "rtx-4090.purchase_price" in out and max(len(line) for line in out.splitlines()) <= 100


def test_break_even_beyond_capacity_is_marked_as_the_legend_says(app: typer.Typer) -> None:
    code, out, err = _run(app, "--scenario", str(EXAMPLE))
    assert code == 0, err
    # The example's cpu-night pool breaks even only above what it can carry: marked and explained.
    cpu_night = next(
        line for line in out.splitlines() if line.lstrip().startswith("cpu-night ") and "k*" in line
    )
    assert cpu_night.rstrip().endswith("*")
    assert "*: more than the pool can carry" in " ".join(out.split())


def test_default_tariff_follows_the_report_currency(app: typer.Typer) -> None:
    """The article's 1.2 CNY/kWh must not become 1.2 USD/kWh when the report is in USD."""

    def power(*extra: str) -> float:
        code, out, err = _run(app, "--hardware", "rtx-4090", "--json", *extra)
        assert code == 0, err
        return float(json.loads(out)["pools"][0]["tco"]["power_or_rent"])

    cny = power()
    assert power("--currency", "USD") == pytest.approx(cny / 7.0)
    assert power("--currency", "USD", "--cny-per-usd", "8") == pytest.approx(cny / 8.0)
    assert power("--currency", "USD", "--electricity-price", "0.12") == pytest.approx(cny / 10.0)
