"""`deepseek-operator cost`: compare pools with a cloud API, or recompute the article's example.

Everything is validated and computed before the first character is printed, so a bad scenario
produces one error listing every bad field and no partial tables.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from deepseek_operator.api.vocabulary import PRECISIONS
from deepseek_operator.cli.inputs import (
    InputError,
    missing_rate_message,
    read_yaml,
    stop,
    writable_file,
)
from deepseek_operator.core.costing.article import ArticleReport, article_report
from deepseek_operator.core.costing.catalog import HARDWARE, MODELS
from deepseek_operator.core.costing.comparison import PoolResult, ScenarioReport, compare_pools
from deepseek_operator.core.costing.cost import (
    HOURS_PER_YEAR,
    TotalCostOfOwnership,
    UnknownCurrencyRate,
)
from deepseek_operator.core.costing.money import format_money
from deepseek_operator.core.costing.scenario import Scenario, ScenarioError, parse_scenario


def register(app: typer.Typer) -> None:
    app.command(name="cost")(cost)


def cost(
    scenario: Annotated[
        Path | None,
        typer.Option("--scenario", "-s", help="Scenario YAML (see examples/cost-scenario.yaml)."),
    ] = None,
    article: Annotated[
        bool,
        typer.Option("--article", help="Recompute the source article's section-4 example."),
    ] = False,
    catalog: Annotated[
        bool,
        typer.Option("--catalog", help="List the hardware and model defaults with their sources."),
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Write a PNG of cumulative local vs cloud cost."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    hardware: Annotated[
        str | None, typer.Option(help=f"One pool from flags: {', '.join(HARDWARE)}.")
    ] = None,
    model: Annotated[str, typer.Option(help=f"Model: {', '.join(MODELS)}.")] = (
        "r1-distill-qwen-7b"
    ),
    precision: Annotated[str, typer.Option(help=f"Weights: {', '.join(PRECISIONS)}.")] = "bf16",
    devices: Annotated[int, typer.Option(help="Devices in the pool.")] = 1,
    electricity_price: Annotated[
        float | None,
        typer.Option(
            help="Price per kWh in --currency (default: the article's 1.2 CNY, converted to "
            "--currency at --cny-per-usd)."
        ),
    ] = None,
    pue: Annotated[float, typer.Option(help="Power usage effectiveness (>= 1).")] = 1.58,
    staff_cost: Annotated[float, typer.Option(help="Staff cost per year for the pool.")] = 0.0,
    context_tokens: Annotated[int, typer.Option(help="Context length per sequence.")] = 4096,
    utilisation: Annotated[float, typer.Option(help="Busy fraction, for cost per token.")] = 0.5,
    requests_per_day: Annotated[float, typer.Option(help="Demand, requests per day.")] = 100_000,
    input_tokens: Annotated[float, typer.Option(help="Input tokens per request.")] = 1000,
    output_tokens: Annotated[float, typer.Option(help="Output tokens per request.")] = 500,
    input_price: Annotated[
        float, typer.Option(help="Cloud API USD per million input tokens.")
    ] = 0.55,
    output_price: Annotated[
        float, typer.Option(help="Cloud API USD per million output tokens.")
    ] = 2.19,
    currency: Annotated[
        str, typer.Option(help="Currency of the report and of flag prices: CNY or USD.")
    ] = "CNY",
    cny_per_usd: Annotated[float, typer.Option(help="Exchange rate, CNY per USD.")] = 7.0,
    years: Annotated[
        float, typer.Option(help="Years for TCO and the chart (with --hardware).")
    ] = 3.0,
) -> None:
    """Cost per hour, per million tokens, TCO and payback of GPU/CPU pools against a cloud API."""
    out = Console()
    payload: Any
    renderable: RenderableType
    try:
        chosen = sum([scenario is not None, article, catalog, hardware is not None])
        if chosen != 1:
            raise InputError(
                "give exactly one of --scenario FILE, --article, --catalog, or --hardware NAME "
                "(with --model, --precision, --devices ...)"
            )
        if catalog and plot is not None:
            raise InputError("--plot needs --scenario, --hardware or --article")
        if plot is not None:
            writable_file(plot, "--plot", suffix=".png")
        if catalog:
            payload = catalog_json()
            renderable = render_catalog()
        elif article:
            report = article_report()
            payload = article_json(report)
            renderable = render_article(report)
            if plot is not None:
                _plot_article(plot, report)
        else:
            if scenario is not None:
                parsed = parse_scenario(read_yaml(scenario, "--scenario"))
            else:
                parsed = _parse_flags_scenario(
                    hardware=hardware,
                    model=model,
                    precision=precision,
                    devices=devices,
                    electricity_price=electricity_price,
                    pue=pue,
                    staff_cost=staff_cost,
                    context_tokens=context_tokens,
                    utilisation=utilisation,
                    requests_per_day=requests_per_day,
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    input_price=input_price,
                    output_price=output_price,
                    currency=currency,
                    cny_per_usd=cny_per_usd,
                    years=years,
                )
            scenario_report = compare_pools(parsed)
            payload = scenario_json(scenario_report)
            renderable = render_scenario(scenario_report)
            if plot is not None:
                _plot_scenario(plot, scenario_report)
    except UnknownCurrencyRate as error:
        stop(missing_rate_message(error, scenario=True))
    except (ScenarioError, InputError) as error:
        stop(error)
    if as_json:
        out.out(json.dumps(payload, indent=2), highlight=False)
    else:
        out.print(renderable)
        if plot is not None:
            out.print(f"chart written to {plot}")


ARTICLE_TARIFF_CNY_PER_KWH = 1.2  # the article's electricity price


SCENARIO_FLAGS = {
    "currency": "--currency",
    "cny_per_usd": "--cny-per-usd",
    "period_years": "--years",
    "demand.requests_per_day": "--requests-per-day",
    "demand.input_tokens_per_request": "--input-tokens",
    "demand.output_tokens_per_request": "--output-tokens",
    "cloud_api.input_price_per_million": "--input-price",
    "cloud_api.output_price_per_million": "--output-price",
    "pools[0].name": "--hardware",
    "pools[0].hardware": "--hardware",
    "pools[0].model": "--model",
    "pools[0].precision": "--precision",
    "pools[0].devices": "--devices",
    "pools[0].electricity_price_per_kwh": "--electricity-price",
    "pools[0].pue": "--pue",
    "pools[0].staff_cost_per_year": "--staff-cost",
    "pools[0].context_tokens": "--context-tokens",
    "pools[0].utilisation": "--utilisation",
}
"""Which flag set each field of the scenario built from flags, so an error names the flag."""


def _parse_flags_scenario(*, hardware: str | None, **flags: Any) -> Scenario:
    """The scenario the flags describe, validated as a YAML one is; errors name the flags."""
    try:
        return parse_scenario(_flags_scenario(hardware=hardware, **flags))
    except ScenarioError as error:
        problems = []
        for problem in error.problems:
            field, _, message = problem.partition(": ")
            problems.append(f"{SCENARIO_FLAGS.get(field, field)}: {message}")
        raise InputError("\n".join(problems)) from None


def _flags_scenario(*, hardware: str | None, **flags: Any) -> dict[str, Any]:
    """The same scenario document a YAML file would hold, so validation is identical."""
    return {
        "currency": flags["currency"],
        "cny_per_usd": flags["cny_per_usd"],
        "period_years": flags["years"],
        "demand": {
            "requests_per_day": flags["requests_per_day"],
            "input_tokens_per_request": flags["input_tokens"],
            "output_tokens_per_request": flags["output_tokens"],
        },
        "cloud_api": {
            "currency": "USD",
            "input_price_per_million": flags["input_price"],
            "output_price_per_million": flags["output_price"],
        },
        "pools": [
            {
                "name": hardware,
                "hardware": hardware,
                "model": flags["model"],
                "precision": flags["precision"],
                "devices": flags["devices"],
                "electricity_price_per_kwh": (
                    flags["electricity_price"]
                    if flags["electricity_price"] is not None
                    else _article_tariff(flags["currency"], flags["cny_per_usd"])
                ),
                "pue": flags["pue"],
                "staff_cost_per_year": flags["staff_cost"],
                "context_tokens": flags["context_tokens"],
                "utilisation": flags["utilisation"],
            }
        ],
    }


def _article_tariff(currency: str, cny_per_usd: float) -> float:
    """The article's 1.2 CNY per kWh in `currency` (as is when the rate itself is refused)."""
    if currency == "USD" and math.isfinite(cny_per_usd) and cny_per_usd > 0:
        return ARTICLE_TARIFF_CNY_PER_KWH / cny_per_usd
    return ARTICLE_TARIFF_CNY_PER_KWH


def _plot_scenario(path: Path, report: ScenarioReport) -> None:
    from deepseek_operator.cli.cost_plot import Series, plot_cumulative_cost

    series = [
        Series(f"{r.pool.name}: {r.pool.devices} x {r.pool.hardware_name}", r.versus_cloud)
        for r in report.pools
        if r.serves_demand
    ]
    if not series:
        raise InputError("nothing to plot: no pool in the scenario carries the demand")
    _checked_plot(
        path,
        lambda: plot_cumulative_cost(
            path,
            series,
            report.scenario.period_years,
            report.currency,
            "Cumulative cost of pools that carry the demand vs the cloud API",
            f"cloud API ({report.scenario.cloud_api.name})",
        ),
    )


def _plot_article(path: Path, report: ArticleReport) -> None:
    from deepseek_operator.cli.cost_plot import Series, plot_cumulative_cost
    from deepseek_operator.core.costing.cost import CloudComparison

    cloud = report.roi.cloud_per_year
    series = [
        Series(report.inputs.a100_cluster.name, report.roi),
        Series(
            f"{report.inputs.rtx_cluster.name} (runs 7B only)",
            CloudComparison(report.rtx_tco, cloud),
        ),
    ]
    _checked_plot(
        path,
        lambda: plot_cumulative_cost(
            path,
            series,
            report.inputs.years,
            "CNY",
            "The article's clusters vs its cloud bill (USD 180 k/yr at 7.0 CNY/USD)",
        ),
    )


def _checked_plot(path: Path, draw: Any) -> None:
    if path.suffix.lower() != ".png":
        raise InputError(f"--plot must name a .png file, got {path}")
    if not path.parent.exists():
        raise InputError(f"--plot directory {path.parent} does not exist")
    try:
        draw()
    except OSError as error:
        raise InputError(f"cannot write {path}: {error.strerror}") from None


# ----------------------------------------------------------------------------- rendering


def _rates(report: ScenarioReport) -> str:
    """The exchange rates the scenario states, as "7 CNY/USD, 0.92 EUR/USD"."""
    scenario = report.scenario
    rates = {"CNY": scenario.cny_per_usd, **scenario.exchange_rates}
    return ", ".join(f"{units:g} {currency}/USD" for currency, units in rates.items())


def _years(value: float | None) -> str:
    if value is None:
        return "never"
    if value < 1:
        return f"{value * 12:.1f} months"
    return f"{value:.2f} years"


def _provenance(label: str) -> str:
    return "M" if label == "measured" else "E"


def _table(title: str, columns: list[str], left: int = 1) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
    )
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index < left else "right")
    return table


def render_scenario(report: ScenarioReport) -> RenderableType:
    c = report.currency
    scenario = report.scenario
    cloud_period = report.cloud_per_year * scenario.period_years
    per_year = format_money(report.cloud_per_year, digits=0, thousands=True)
    over_period = format_money(cloud_period, digits=0, thousands=True)
    head = Text.assemble(
        ("Demand: ", "bold"),
        f"{scenario.demand.requests_per_day:,.0f} requests/day = "
        f"{report.demand_output_tokens_per_s:,.1f} output tokens/s on average.\n",
        ("Cloud:  ", "bold"),
        f"{scenario.cloud_api.name} costs {per_year} {c} per year, "
        f"{over_period} {c} over {scenario.period_years:g} years "
        f"(at {_rates(report)}).",
    )
    fit = _table(
        "Fit and throughput",
        ["pool", "hardware", "model", "prec.", "devices", "replicas", "tok/s"],
        left=4,
    )
    fit.add_column("demand", justify="left")
    money = _table(
        f"Cost ({c})",
        ["pool", "device-hour", "replica-hour", "pool-hour", "per M output", "per year"],
    )
    tco = _table(
        f"TCO over {scenario.period_years:g} years ({c}) and against the cloud",
        [
            "pool",
            "hardware",
            "power/rent",
            "staff",
            "total",
            "saving",
            "payback",
            "ratio",
            "break-even",
        ],
    )
    problems = []
    for result in report.pools:
        _add_pool_rows(result, fit, money, tco)
        if not result.fit.fits:
            problems.append(f"{result.pool.name}: {result.fit.reason}")
    notes = Text(
        "\n".join(
            [
                "replicas: count x devices each; tok/s per replica: E = estimated (roofline), "
                "M = measured.",
                "per M output: cost of a million output tokens at the pool's utilisation.",
                "saving: cloud minus local over the period. payback = capex / (cloud - local "
                "running cost) per year.",
                "ratio = cloud / local per year, capex amortised. saving, payback and ratio are "
                "shown for pools",
                "that carry the demand. break-even: requests/day above which the pool costs "
                "less than the API",
                "(*: more than the pool can carry). Formulas and sources: docs/cost-model.md.",
            ]
        ),
        style="dim",
    )
    parts: list[RenderableType] = [head, fit, money, tco, notes]
    if problems:
        parts.append(Text("\n".join(problems), style="yellow"))
    return Group(*parts)


def _add_pool_rows(result: PoolResult, fit: Table, money: Table, tco: Table) -> None:
    pool = result.pool
    if result.throughput is None:
        fit.add_row(
            pool.name, pool.hardware_name, pool.model, pool.precision, str(pool.devices),
            "no fit", "-", "no",
        )  # fmt: skip
    else:
        tput = result.throughput.capacity_tokens_per_s
        fit.add_row(
            pool.name,
            pool.hardware_name,
            pool.model,
            pool.precision,
            str(pool.devices),
            f"{result.replicas} x {result.fit.devices} dev",
            f"{tput.value:,.0f} {_provenance(tput.provenance)}",
            "yes" if result.serves_demand else f"no, needs {result.replicas_for_demand}",
        )
    replica_hour = result.replica_hourly.total if result.replica_hourly else None
    money.add_row(
        pool.name,
        format_money(result.device_hourly.total, digits=2, thousands=True),
        format_money(replica_hour, digits=2, thousands=True),
        format_money(result.pool_hourly.total, digits=2, thousands=True),
        format_money(result.cost_per_million_output, digits=2, thousands=True),
        format_money(result.pool_hourly.total * HOURS_PER_YEAR, digits=0, thousands=True),
    )
    t: TotalCostOfOwnership = result.tco
    comparison = result.versus_cloud
    if not result.serves_demand:
        saving, payback, ratio = "-", "-", "-"
    else:
        saving = format_money(comparison.saving_over_period, digits=0, thousands=True)
        payback = "no capex" if t.hardware == 0 else _years(comparison.payback_years)
        ratio = "-" if comparison.cost_ratio is None else f"{comparison.cost_ratio:.2f}"
    tco.add_row(
        pool.name,
        format_money(t.hardware, digits=0, thousands=True),
        format_money(t.power, digits=0, thousands=True),
        format_money(t.staff, digits=0, thousands=True),
        format_money(t.total, digits=0, thousands=True),
        saving,
        payback,
        ratio,
        _break_even(result),
    )


def _break_even(result: PoolResult) -> str:
    """Requests/day above which the pool beats the API; flagged when beyond its capacity."""
    load = result.break_even_requests_per_day
    if load is None:
        return "-"
    text = format_money(load, digits=0, thousands=True)
    capacity = result.max_requests_per_day
    if capacity is not None and load > capacity:
        return f"{text}*"
    return text


def render_article(report: ArticleReport) -> RenderableType:
    a = report.inputs
    tco = Table(
        title=f"Article section 4: {a.years:g}-year cost, recomputed from its components (CNY)",
        title_justify="left",
    )
    for column in ("cluster", "hardware", "power", "staff", "total", "per year"):
        tco.add_column(column, justify="left" if column == "cluster" else "right")
    for cluster, t in ((a.a100_cluster, report.a100_tco), (a.rtx_cluster, report.rtx_tco)):
        tco.add_row(
            cluster.name,
            format_money(t.hardware, digits=0, thousands=True),
            format_money(t.power, digits=0, thousands=True),
            format_money(t.staff, digits=0, thousands=True),
            format_money(t.total, digits=0, thousands=True),
            format_money(t.per_year, digits=0, thousands=True),
        )
    roi = report.roi
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row(
        "cloud per year", format_money(roi.cloud_per_year, digits=0, thousands=True) + " CNY"
    )
    summary.add_row(
        "local per year",
        format_money(report.a100_tco.per_year, digits=0, thousands=True) + " CNY (4 x A100)",
    )
    summary.add_row("cost ratio", f"{roi.cost_ratio or 0:.2f}  (the article calls this a payback)")
    summary.add_row("payback", f"{_years(roi.payback_years)}  (capex / yearly saving)")
    lines = Table(title="Where the article's figures differ from its inputs", title_justify="left")
    lines.add_column("", width=1)
    lines.add_column("item / article says", ratio=2)
    lines.add_column("from its inputs / why", ratio=3)
    for line in report.lines:
        mark = Text("✓", style="green") if line.verdict == "agrees" else Text("✗", style="red")
        lines.add_row(
            mark,
            Text.assemble((line.item, "bold"), "\n", line.article),
            Text.assemble(line.from_inputs, "\n", (line.why, "dim")),
            end_section=True,
        )
    return Group(tco, summary, Text(""), lines)


def render_catalog() -> RenderableType:
    hardware = _table(
        "Hardware (per device: a GPU, or a CPU socket with its DRAM)",
        ["name", "kind", "memory GiB", "GB/s", "watts", "price", "cloud $/h", "per node"],
        left=2,
    )
    for spec in HARDWARE.values():
        hardware.add_row(
            spec.name,
            spec.kind,
            f"{spec.memory_gib:g}",
            f"{spec.memory_bandwidth_gb_per_s:g}",
            f"{spec.board_power_watts:g}",
            f"{spec.purchase_price:,.0f} {spec.purchase_currency}",
            "-" if spec.cloud_price_per_hour_usd is None else f"{spec.cloud_price_per_hour_usd:g}",
            str(spec.devices_per_node),
        )
    models = _table(
        "Models",
        ["name", "params B", "active B", "layers", "KV heads", "head dim", "KV/token"],
    )
    for model in MODELS.values():
        mla = model.mla_latent_dim is not None
        models.add_row(
            model.name,
            f"{model.parameters_billion:g}",
            f"{model.active_parameters_billion:g}",
            str(model.layers),
            "MLA" if mla else str(model.kv_heads),
            str(model.mla_latent_dim if mla else model.head_dim),
            f"{model.kv_bytes_per_token() / 1024:.1f} KiB",
        )
    sources = Table.grid(padding=(0, 1))
    sources.add_column(style="bold", no_wrap=True)
    sources.add_column()
    named_sources = [(h.name, h.sources) for h in HARDWARE.values()]
    named_sources += [(m.name, m.sources) for m in MODELS.values()]
    for name, by_field in named_sources:
        for field_name, source in by_field.items():
            sources.add_row(f"{name}.{field_name}", source)
    return Group(hardware, models, Text("Sources", style="bold"), sources)


# ----------------------------------------------------------------------------- JSON


def catalog_json() -> dict[str, Any]:
    from dataclasses import asdict

    return {
        "hardware": [{**asdict(spec), "sources": dict(spec.sources)} for spec in HARDWARE.values()],
        "models": [
            {
                **asdict(spec),
                "sources": dict(spec.sources),
                "kv_bytes_per_token_bf16": (spec.kv_bytes_per_token()),
            }
            for spec in MODELS.values()
        ],
    }


def scenario_json(report: ScenarioReport) -> dict[str, Any]:
    def pool(result: PoolResult) -> dict[str, Any]:
        throughput = result.throughput
        return {
            "name": result.pool.name,
            "hardware": result.pool.hardware_name,
            "model": result.pool.model,
            "precision": result.pool.precision,
            "devices": result.pool.devices,
            "fits": result.fit.fits,
            "fit_reason": result.fit.reason,
            "devices_per_replica": result.fit.devices,
            "replicas": result.replicas,
            "tokens_per_s_per_replica": None
            if throughput is None
            else {
                "value": throughput.capacity_tokens_per_s.value,
                "provenance": throughput.capacity_tokens_per_s.provenance,
                "basis": throughput.capacity_tokens_per_s.basis,
            },
            "single_stream_tokens_per_s": None
            if throughput is None
            else {
                "value": throughput.single_stream_tokens_per_s.value,
                "provenance": throughput.single_stream_tokens_per_s.provenance,
            },
            "cost_per_device_hour": result.device_hourly.total,
            "cost_per_replica_hour": result.replica_hourly.total if result.replica_hourly else None,
            "cost_per_pool_hour": result.pool_hourly.total,
            "cost_per_million_output_tokens": result.cost_per_million_output,
            "replicas_for_demand": result.replicas_for_demand,
            "serves_demand": result.serves_demand,
            "tco": {
                "hardware": result.tco.hardware,
                "power_or_rent": result.tco.power,
                "staff": result.tco.staff,
                "model_updates": result.tco.model_updates,
                "total": result.tco.total,
            },
            "payback_years": result.versus_cloud.payback_years,
            "break_even_requests_per_day": result.break_even_requests_per_day,
            "max_requests_per_day": result.max_requests_per_day,
            "cost_ratio": result.versus_cloud.cost_ratio,
        }

    rates = (
        {"exchange_rates": dict(report.scenario.exchange_rates)}
        if report.scenario.exchange_rates
        else {}
    )
    return {
        "currency": report.currency,
        "cny_per_usd": report.scenario.cny_per_usd,
        **rates,
        "period_years": report.scenario.period_years,
        "demand_output_tokens_per_s": report.demand_output_tokens_per_s,
        "cloud_per_year": report.cloud_per_year,
        "pools": [pool(result) for result in report.pools],
    }


def article_json(report: ArticleReport) -> dict[str, Any]:
    def tco(t: TotalCostOfOwnership) -> dict[str, float]:
        return {"hardware": t.hardware, "power": t.power, "staff": t.staff, "total": t.total}

    return {
        "currency": "CNY",
        "a100_cluster": tco(report.a100_tco),
        "rtx_cluster": tco(report.rtx_tco),
        "power_example_kwh": report.power_example_kwh,
        "power_example_cny": report.power_example_cny,
        "cloud_per_year": report.roi.cloud_per_year,
        "cost_ratio": report.roi.cost_ratio,
        "payback_years": report.roi.payback_years,
        "implied_cny_per_usd": report.implied_cny_per_usd,
        "lines": [
            {
                "item": line.item,
                "article": line.article,
                "from_inputs": line.from_inputs,
                "verdict": line.verdict,
                "why": line.why,
            }
            for line in report.lines
        ],
    }
