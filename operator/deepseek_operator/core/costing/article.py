"""The source article's section-4 worked example, recomputed from its own inputs.

The article (seed/SUMMARY.md) gives a TCO formula and numbers for a 4 x A100 and an 8 x 4090
cluster over three years, an ROI against a cloud API, and per-card figures earlier on. Here every
figure is rebuilt from the inputs the article states, with the cost model's functions, and each
place where the article's figure does not follow from them is listed with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from deepseek_operator.core.costing.catalog import HARDWARE, MODELS
from deepseek_operator.core.costing.cost import (
    HOURS_PER_YEAR,
    TOKENS_PER_MILLION,
    USD_RATE,
    CloudComparison,
    CurrencyRate,
    ExchangeRates,
    TotalCostOfOwnership,
    break_even_requests_per_day,
    energy_kwh,
)
from deepseek_operator.core.costing.fit import FitRequest, fit_replica, weights_bytes
from deepseek_operator.core.costing.throughput import roofline_single_stream_tokens_per_s

Verdict = Literal["agrees", "diverges"]


@dataclass(frozen=True)
class ArticleCluster:
    """One of the article's two clusters, with its stated 3-year components (CNY)."""

    name: str
    cards: int
    hardware: str
    hardware_cny: float
    power_cny: float
    staff_cny: float
    stated_total_cny: float


@dataclass(frozen=True)
class ArticleInputs:
    """Every input the article states for its cost model, in its units (CNY unless named)."""

    years: float = 3.0
    a100_cluster: ArticleCluster = ArticleCluster(
        "4 x A100 80GB", 4, "a100-80gb-sxm", 400_000, 180_000, 1_200_000, 1_780_000
    )
    rtx_cluster: ArticleCluster = ArticleCluster(
        "8 x RTX 4090", 8, "rtx-4090", 120_000, 72_000, 900_000, 1_092_000
    )
    a100_watts: float = 600.0
    power_example_cards: int = 8
    electricity_cny_per_kwh: float = 1.2
    stated_power_example_kwh: float = 42_048
    stated_power_example_cny: float = 50_500
    # Staff ranges per person-year (section 2.3): (low, high, head count).
    staff: tuple[tuple[str, float, float, float], ...] = (
        ("AI engineer", 400_000, 600_000, 1.0),
        ("sysadmin", 200_000, 300_000, 1.0),
        ("security engineer", 300_000, 500_000, 0.5),
    )
    stated_staff_share_of_hardware: tuple[float, float] = (0.6, 0.8)
    requests_per_day: float = 100_000
    cloud_usd_per_million_tokens: float = 0.5
    stated_cloud_usd_per_year: float = 180_000
    stated_cloud_cny_per_year: float = 1_260_000
    stated_local_cny_per_year: float = 590_000
    stated_payback_years: float = 2.1
    stated_saving_cny_per_year: float = 670_000
    stated_break_even_requests_per_day: float = 50_000
    r1_input_usd_per_million: float = 0.55
    r1_output_usd_per_million: float = 2.19
    rtx_tokens_per_s_7b: float = 20.0
    a100_tokens_per_s_7b: float = 120.0
    a100_cluster_tokens_per_s: float = 480.0
    xeon_tokens_per_s_7b: float = 5.0
    a100_fp16_tflops: float = 19.5
    params_7b: float = 7.0e9
    stated_7b_fp16_gb: float = 14.0
    stated_7b_int8_gb: float = 7.0
    params_65b: float = 65e9
    stated_65b_fp16_gb: float = 130.0


@dataclass(frozen=True)
class Divergence:
    """One line of the comparison: what the article says, what its inputs give, and why."""

    item: str
    article: str
    from_inputs: str
    verdict: Verdict
    why: str


@dataclass(frozen=True)
class ArticleReport:
    inputs: ArticleInputs
    a100_tco: TotalCostOfOwnership
    rtx_tco: TotalCostOfOwnership
    power_example_kwh: float
    power_example_cny: float
    roi: CloudComparison
    implied_cny_per_usd: float
    lines: tuple[Divergence, ...] = field(default=())


def _k(value: float) -> str:
    return f"{value / 1000:,.1f} k"


def _cluster_tco(cluster: ArticleCluster, years: float) -> TotalCostOfOwnership:
    return TotalCostOfOwnership(
        hardware=cluster.hardware_cny,
        power_per_year=cluster.power_cny / years,
        staff_per_year=cluster.staff_cny / years,
        years=years,
    )


def article_report(inputs: ArticleInputs | None = None) -> ArticleReport:
    """Recompute section 4 (and the per-card claims it rests on) from the article's inputs."""
    a = inputs or ArticleInputs()
    hours = a.years * HOURS_PER_YEAR
    a100_tco = _cluster_tco(a.a100_cluster, a.years)
    rtx_tco = _cluster_tco(a.rtx_cluster, a.years)
    example_kwh = energy_kwh(a.a100_watts, HOURS_PER_YEAR, a.power_example_cards)
    example_cny = example_kwh * a.electricity_cny_per_kwh
    lines: list[Divergence] = []

    def add(item: str, article: str, computed: str, agrees: bool, why: str) -> None:
        lines.append(Divergence(item, article, computed, "agrees" if agrees else "diverges", why))

    # 1. The power example.
    add(
        "Power, 8 x A100 for a year",
        f"{a.stated_power_example_kwh:,.0f} kWh, {a.stated_power_example_cny:,.0f} CNY",
        f"{a.power_example_cards} x {a.a100_watts:g} W x {HOURS_PER_YEAR:,} h = "
        f"{example_kwh:,.0f} kWh; x {a.electricity_cny_per_kwh:g} = {example_cny:,.0f} CNY",
        abs(example_cny - a.stated_power_example_cny) < 100,
        "Arithmetic holds (rounded). It assumes full load all year and no cooling (PUE 1).",
    )
    a100 = HARDWARE["a100-80gb-sxm"]
    real_kwh = energy_kwh(a100.board_power_watts, HOURS_PER_YEAR, a.power_example_cards)
    add(
        "A100 board power",
        f"{a.a100_watts:g} W per card",
        f"{a100.board_power_watts:g} W (SXM; PCIe 250-300 W): {real_kwh:,.0f} kWh, "
        f"{real_kwh * a.electricity_cny_per_kwh:,.0f} CNY for 8 cards",
        a.a100_watts == a100.board_power_watts,
        "No A100 is rated 600 W; the figure may be a per-card share of the server.",
    )
    # 2. The clusters' 3-year power.
    for cluster in (a.a100_cluster, a.rtx_cluster):
        watts = a.a100_watts if cluster.hardware == "a100-80gb-sxm" else None
        card_watts = watts or HARDWARE[cluster.hardware].board_power_watts
        cards_cny = energy_kwh(card_watts, hours, cluster.cards) * a.electricity_cny_per_kwh
        implied_w = cluster.power_cny / a.electricity_cny_per_kwh / hours * 1000 / cluster.cards
        add(
            f"{cluster.name}: {a.years:g}-year power",
            f"{_k(cluster.power_cny)} CNY",
            f"{cluster.cards} x {card_watts:g} W x {hours:,.0f} h x "
            f"{a.electricity_cny_per_kwh:g} = {_k(cards_cny)} CNY",
            abs(cards_cny - cluster.power_cny) < 0.05 * cluster.power_cny,
            f"The article's figure implies {implied_w:,.0f} W per card around the clock; "
            "it does not say what besides the cards (host, cooling, load) it includes.",
        )
    # 3. Staff against the article's own team.
    low = sum(lo * heads for _, lo, _, heads in a.staff)
    high = sum(hi * heads for _, _, hi, heads in a.staff)
    for cluster in (a.a100_cluster, a.rtx_cluster):
        add(
            f"{cluster.name}: {a.years:g}-year staff",
            f"{_k(cluster.staff_cny)} CNY ({_k(cluster.staff_cny / a.years)}/yr)",
            f"its own team (1 + 1 + 0.5 people) = {low / 1e3:,.0f}-{high / 1e3:,.0f} k/yr, "
            f"{low * a.years / 1e3:,.0f}-{high * a.years / 1e3:,.0f} k over {a.years:g} years",
            low * a.years <= cluster.staff_cny <= high * a.years,
            "The staff line is below the team the article itself lists; either the team is "
            "shared with other work or the figure is understated.",
        )
        share = cluster.staff_cny / cluster.hardware_cny
        lo_share, hi_share = a.stated_staff_share_of_hardware
        add(
            f"{cluster.name}: staff as share of hardware",
            f"{lo_share:.0%}-{hi_share:.0%} over {a.years:g} years",
            f"{_k(cluster.staff_cny)} / {_k(cluster.hardware_cny)} = {share:.0%}",
            lo_share <= share <= hi_share,
            "Section 2.3's share contradicts section 4's own components.",
        )
    # 4. The totals (these do follow from their components).
    for cluster, tco in ((a.a100_cluster, a100_tco), (a.rtx_cluster, rtx_tco)):
        add(
            f"{cluster.name}: {a.years:g}-year total",
            f"{_k(cluster.stated_total_cny)} CNY",
            f"{_k(tco.hardware)} + {_k(tco.power)} + {_k(tco.staff)} = {_k(tco.total)} CNY",
            abs(tco.total - cluster.stated_total_cny) < 1,
            "Sum of the stated components; it inherits their problems above.",
        )
    # 5. ROI.
    cloud_tokens_per_year = a.stated_cloud_usd_per_year / a.cloud_usd_per_million_tokens * 1e6
    tokens_per_request = cloud_tokens_per_year / 365 / a.requests_per_day
    add(
        "Cloud volume behind USD 180 k/yr",
        f"{a.requests_per_day:,.0f} requests/day at USD {a.cloud_usd_per_million_tokens:g}/M",
        f"USD {a.stated_cloud_usd_per_year:,.0f} / {a.cloud_usd_per_million_tokens:g} per M = "
        f"{cloud_tokens_per_year / 1e9:,.0f} B tokens/yr = {tokens_per_request:,.0f} "
        "tokens per request",
        True,
        "Consistent, but the article never states tokens per request.",
    )
    all_input = cloud_tokens_per_year * a.r1_input_usd_per_million / TOKENS_PER_MILLION
    all_output = cloud_tokens_per_year * a.r1_output_usd_per_million / TOKENS_PER_MILLION
    add(
        "Cloud price per million tokens",
        f"USD {a.cloud_usd_per_million_tokens:g} flat",
        f"DeepSeek R1 API: USD {a.r1_input_usd_per_million:g} in / "
        f"{a.r1_output_usd_per_million:g} out -> USD {_k(all_input)}-{_k(all_output)}/yr "
        "for the same tokens",
        False,
        "The flat price is roughly the input price; R1 output costs ~4x more, so the split "
        "between input and output tokens decides the bill.",
    )
    implied_rate = a.stated_cloud_cny_per_year / a.stated_cloud_usd_per_year
    rate = ExchangeRates.of(
        USD_RATE, CurrencyRate("CNY", implied_rate, "implied by the article's CNY and USD bills")
    )
    add(
        "Cloud bill in CNY",
        f"{_k(a.stated_cloud_cny_per_year)} CNY/yr",
        f"USD {_k(a.stated_cloud_usd_per_year)} x {implied_rate:g} CNY/USD = "
        f"{_k(rate.convert(a.stated_cloud_usd_per_year, 'USD', 'CNY'))} CNY",
        True,
        "Implies 7.0 CNY per USD; the rate is an input, so it is shown.",
    )
    roi = CloudComparison(a100_tco, a.stated_cloud_cny_per_year)
    add(
        "Local A100 cost per year",
        f"{_k(a.stated_local_cny_per_year)} CNY",
        f"{_k(a100_tco.total)} / {a.years:g} = {_k(a100_tco.per_year)} CNY",
        abs(a100_tco.per_year - a.stated_local_cny_per_year) < 0.01 * a100_tco.per_year,
        "Capex amortised over the 3-year period.",
    )
    add(
        "Saving per year",
        f"{_k(a.stated_saving_cny_per_year)} CNY",
        f"{_k(roi.cloud_per_year)} - {_k(a100_tco.per_year)} = "
        f"{_k(roi.cloud_per_year - a100_tco.per_year)} CNY (with capex amortised)",
        abs(roi.cloud_per_year - a100_tco.per_year - a.stated_saving_cny_per_year) < 5_000,
        "Holds with capex spread over the period. Once bought, the cash saved each year is "
        f"cloud - running = {_k(roi.yearly_saving)} CNY.",
    )
    add(
        "Payback period",
        f"{a.stated_payback_years:g} years",
        f"cost ratio {_k(roi.cloud_per_year)} / {_k(a100_tco.per_year)} = "
        f"{roi.cost_ratio or float('nan'):.2f}; payback = capex / (cloud - running) = {_k(a100_tco.hardware)} "
        f"/ {_k(roi.yearly_saving)} = {roi.payback_years or float('nan'):.2f} years",
        False,
        "2.1 is the ratio of yearly costs, not a time. With 400 k capex and ~800 k/yr less "
        "spent than the cloud, the hardware pays for itself in about half a year.",
    )
    cloud_per_request = rate.convert(
        tokens_per_request * a.cloud_usd_per_million_tokens / TOKENS_PER_MILLION, "USD", "CNY"
    )
    break_even = break_even_requests_per_day(a100_tco.per_year, cloud_per_request) or 0.0
    add(
        "Local pays off above",
        f"~{a.stated_break_even_requests_per_day:,.0f} requests/day",
        f"{_k(a100_tco.per_year)} CNY/yr / ({tokens_per_request:,.0f} tokens x USD "
        f"{a.cloud_usd_per_million_tokens:g}/M x {implied_rate:g} x 365) = "
        f"{break_even:,.0f} requests/day",
        abs(break_even - a.stated_break_even_requests_per_day)
        < 0.1 * a.stated_break_even_requests_per_day,
        "Consistent with its own ROI inputs (4 x A100, flat API price, implied request size).",
    )
    # 6. Per-card claims the totals rest on.
    model_7b = MODELS["r1-distill-qwen-7b"]
    rtx = HARDWARE["rtx-4090"]
    rtx_estimate = roofline_single_stream_tokens_per_s(model_7b, "fp16", rtx, 1, 1024)
    add(
        "RTX 4090, 7B fp16 speed",
        f"{a.rtx_tokens_per_s_7b:g} tokens/s per card",
        f"bandwidth roofline x 0.75 = {rtx_estimate:,.0f} tokens/s single stream; "
        "llama.cpp measured 60.8 (Llama-2-7B f16)",
        False,
        "About 3x too low for one stream, and batching serves ~1,000+ tokens/s per card, "
        "so '5 cards for 100 tokens/s' overstates the cards needed.",
    )
    a100_estimate = roofline_single_stream_tokens_per_s(model_7b, "fp16", a100, 1, 1024)
    add(
        "A100, 7B speed; 4 x A100 = 480 tokens/s",
        f"{a.a100_tokens_per_s_7b:g} tokens/s per card; {a.a100_cluster_tokens_per_s:g} for 4",
        f"roofline x 0.75 = {a100_estimate:,.0f} tokens/s single stream; batched capacity "
        "1.5-3.5 k tokens/s per card (vLLM, TensorRT-LLM)",
        False,
        "Plausible as one stream's speed, 10-30x too low as a card's capacity; the article "
        "multiplies single-stream speed by card count.",
    )
    xeon = HARDWARE["xeon-8380"]
    xeon_estimate = roofline_single_stream_tokens_per_s(model_7b, "bf16", xeon, 1, 1024)
    add(
        "Xeon 8380, 7B speed",
        f"{a.xeon_tokens_per_s_7b:g} tokens/s",
        f"roofline x 0.55 = {xeon_estimate:,.1f} tokens/s (bf16, one socket)",
        a.xeon_tokens_per_s_7b <= xeon_estimate * 1.5,
        "Plausible for bf16; int4 would be ~3-4x faster.",
    )
    add(
        "A100 FP16 compute",
        f"{a.a100_fp16_tflops:g} TFLOPS",
        "312 TFLOPS FP16 tensor (dense); 19.5 is the FP32 / FP64-tensor figure",
        False,
        "Wrong column of the spec sheet. Decode speed follows memory bandwidth, not TFLOPS.",
    )
    w16 = weights_bytes(a.params_7b, "fp16") / 1e9
    w8 = weights_bytes(a.params_7b, "int8") / 1e9
    qwen16 = weights_bytes(model_7b.parameters, "fp16") / 1e9
    add(
        "7B weights, fp16 and 8-bit",
        f"{a.stated_7b_fp16_gb:g} GB and {a.stated_7b_int8_gb:g} GB",
        f"7.0 B x 2 B = {w16:g} GB; x 1 B = {w8:g} GB; the R1-Distill-Qwen-7B has "
        f"{model_7b.parameters_billion:g} B -> {qwen16:.1f} GB at fp16",
        w16 == a.stated_7b_fp16_gb and w8 == a.stated_7b_int8_gb,
        "Weights only; the KV cache and runtime come on top (a 4090 still fits it).",
    )
    w65 = weights_bytes(a.params_65b, "fp16") / 1e9
    add(
        "65B weights, fp16",
        f"{a.stated_65b_fp16_gb:g} GB",
        f"65 B x 2 B = {w65:g} GB",
        w65 == a.stated_65b_fp16_gb,
        "Weights only.",
    )
    fit_70b = fit_replica(FitRequest(MODELS["r1-distill-llama-70b"], "bf16"), a100)
    add(
        "65B+ needs 8 x A100",
        "tensor parallel over 8 cards",
        f"70B bf16 at 4k context: {fit_70b.reason}",
        fit_70b.devices == 8,
        "Two 80 GB cards hold the weights; more cards buy KV-cache room and speed, not fit.",
    )
    return ArticleReport(
        inputs=a,
        a100_tco=a100_tco,
        rtx_tco=rtx_tco,
        power_example_kwh=example_kwh,
        power_example_cny=example_cny,
        roi=roi,
        implied_cny_per_usd=implied_rate,
        lines=tuple(lines),
    )
