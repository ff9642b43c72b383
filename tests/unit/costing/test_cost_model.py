"""Cost model: hand-computed values and monotonicity properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepseek_operator.core.costing.catalog import HARDWARE, MODELS
from deepseek_operator.core.costing.cost import (
    DEFAULT_EXCHANGE_RATES,
    USD_RATE,
    CloudApiPrice,
    CloudComparison,
    CurrencyRate,
    DoesNotFit,
    ExchangeRates,
    OwnedDeviceCost,
    RentedDeviceCost,
    TotalCostOfOwnership,
    UnknownCurrencyRate,
    break_even_requests_per_day,
    cloud_api_cost,
    cost_per_million_output_tokens,
    cost_to_serve_per_hour,
    device_cost_per_hour,
    energy_kwh,
    replica_cost_per_hour,
    replica_economics,
    replicas_needed,
)
from deepseek_operator.core.costing.fit import FitRequest, fit_replica
from deepseek_operator.core.costing.throughput import (
    CPU_STEP_CURVE,
    Calibration,
    batching_gain,
    check_step_curve,
    machine_efficiencies,
    replica_throughput,
    roofline_single_stream_tokens_per_s,
)

SETTINGS = settings(deadline=None, max_examples=60)


def test_article_power_line_8_cards_600_w_a_year() -> None:
    kwh = energy_kwh(600, 8760, devices=8)
    assert kwh == 42_048
    assert round(kwh * 1.2) == 50_458


def test_device_cost_per_hour_splits_capex_power_staff() -> None:
    hourly = device_cost_per_hour(
        OwnedDeviceCost(
            purchase_price=100_000,
            amortisation_years=3,
            watts=400,
            pue=1.5,
            electricity_price_per_kwh=1.2,
            staff_cost_per_year=8_760,
        )
    )
    assert hourly.capex == pytest.approx(100_000 / 26_280)
    assert hourly.power == pytest.approx(0.4 * 1.5 * 1.2)
    assert hourly.staff == pytest.approx(1.0)
    assert hourly.total == pytest.approx(3.805175 + 0.72 + 1.0, rel=1e-6)
    assert replica_cost_per_hour(hourly, 2).total == pytest.approx(2 * hourly.total)


def test_rented_device_is_its_hourly_price() -> None:
    assert device_cost_per_hour(RentedDeviceCost(3.67)).total == 3.67


def test_cost_per_million_output_tokens() -> None:
    # 1,000 tokens/s busy half the time = 1.8 M tokens per hour; 10 per hour -> 5.56 per M.
    assert cost_per_million_output_tokens(10.0, 1000.0, 0.5) == pytest.approx(10 / 1.8)
    with pytest.raises(ValueError, match="positive"):
        cost_per_million_output_tokens(10.0, 0.0, 0.5)


def test_article_three_year_totals_from_components() -> None:
    a100 = TotalCostOfOwnership(400_000, 180_000 / 3, 1_200_000 / 3, years=3)
    rtx = TotalCostOfOwnership(120_000, 72_000 / 3, 900_000 / 3, years=3)
    assert a100.total == pytest.approx(1_780_000)
    assert rtx.total == pytest.approx(1_092_000)
    assert a100.per_year == pytest.approx(593_333.33, rel=1e-6)


def test_payback_is_capex_over_yearly_saving_and_the_ratio_is_separate() -> None:
    a100 = TotalCostOfOwnership(400_000, 60_000, 400_000, years=3)
    roi = CloudComparison(a100, cloud_per_year=1_260_000)
    assert roi.yearly_saving == pytest.approx(800_000)
    assert roi.payback_years == pytest.approx(0.5)
    assert roi.cost_ratio == pytest.approx(1_260_000 / 593_333.33, rel=1e-6)
    assert roi.cumulative(0.5) == pytest.approx((630_000, 630_000))


def test_no_payback_when_local_running_costs_exceed_the_cloud() -> None:
    roi = CloudComparison(TotalCostOfOwnership(100, 500, 500, years=3), cloud_per_year=900)
    assert roi.payback_years is None


def test_free_local_pool_has_no_cost_ratio_instead_of_dividing_by_zero() -> None:
    roi = CloudComparison(TotalCostOfOwnership(0, 0, 0, years=3), cloud_per_year=900)
    assert roi.cost_ratio is None
    assert roi.payback_years == 0


def test_currency_conversion_is_explicit() -> None:
    rate = DEFAULT_EXCHANGE_RATES
    assert rate.convert(180_000, "USD", "CNY") == pytest.approx(1_260_000)
    assert rate.convert(1_260_000, "CNY", "USD") == pytest.approx(180_000)
    price = CloudApiPrice(0.55, 2.19, "USD")
    assert cloud_api_cost(1e6, 1e6, price, rate, "USD") == pytest.approx(2.74)
    assert cloud_api_cost(1e6, 1e6, price, rate, "CNY") == pytest.approx(19.18)


def test_the_default_rates_are_only_the_sourced_ones() -> None:
    assert DEFAULT_EXCHANGE_RATES.currencies == ("CNY", "USD")
    cny = DEFAULT_EXCHANGE_RATES.rate("CNY")
    assert cny.units_per_usd == 7.0
    assert "USD 180 k ≈ CNY 1,260 k" in cny.source and "4.2" in cny.source
    assert DEFAULT_EXCHANGE_RATES.rate("USD").units_per_usd == 1.0


def test_a_currency_without_a_rate_is_an_error_never_another_currency() -> None:
    with pytest.raises(UnknownCurrencyRate, match="no exchange rate for EUR") as raised:
        DEFAULT_EXCHANGE_RATES.convert(100.0, "EUR", "USD")
    assert raised.value.currency == "EUR"
    assert raised.value.known == ("CNY", "USD")
    assert isinstance(raised.value, ValueError)
    with pytest.raises(UnknownCurrencyRate, match="EUR"):
        DEFAULT_EXCHANGE_RATES.convert(100.0, "CNY", "EUR")
    # An amount already in the target currency needs no rate.
    assert DEFAULT_EXCHANGE_RATES.convert(100.0, "EUR", "EUR") == 100.0


def test_stated_rates_extend_and_replace_the_table() -> None:
    rates = DEFAULT_EXCHANGE_RATES.with_rates(
        [CurrencyRate("EUR", 0.8, "test"), CurrencyRate("CNY", 8.0, "test")]
    )
    assert rates.convert(100.0, "EUR", "USD") == pytest.approx(125.0)
    assert rates.convert(100.0, "EUR", "CNY") == pytest.approx(1000.0)
    assert rates.rate("CNY").units_per_usd == 8.0
    assert DEFAULT_EXCHANGE_RATES.rate("CNY").units_per_usd == 7.0  # the default is untouched
    assert ExchangeRates.of(USD_RATE).currencies == ("USD",)


@pytest.mark.parametrize(
    ("currency", "units"), [("EUR", 0.0), ("EUR", -1.0), ("EUR", float("nan")), ("USD", 2.0)]
)
def test_a_rate_must_be_positive_and_usd_is_one(currency: str, units: float) -> None:
    with pytest.raises(ValueError, match="per USD"):
        CurrencyRate(currency, units, "test")


def test_break_even_load_is_local_yearly_cost_over_cloud_cost_per_request() -> None:
    # 365,000 per year against 0.01 per request: 100,000 requests a day.
    assert break_even_requests_per_day(365_000, 0.01) == pytest.approx(100_000)
    assert break_even_requests_per_day(365_000, 0.0) is None


def test_replicas_needed_rounds_up() -> None:
    assert replicas_needed(1000, 300) == 4
    assert replicas_needed(900, 300) == 3
    assert replicas_needed(0, 300) == 0


def test_roofline_single_stream_by_hand() -> None:
    model = MODELS["r1-distill-qwen-7b"]
    rtx = HARDWARE["rtx-4090"]
    estimate = roofline_single_stream_tokens_per_s(model, "bf16", rtx, 1, context_tokens=0)
    # the input embedding (152,064 x 3,584) is a lookup, not read per token
    assert estimate == pytest.approx(0.75 * 1008e9 / ((7.62 - 0.545) * 2e9))


def test_moe_reads_only_its_active_parameters() -> None:
    r1 = MODELS["deepseek-r1"]
    mi300x = HARDWARE["mi300x"]
    estimate = roofline_single_stream_tokens_per_s(r1, "fp8", mi300x, 1, context_tokens=0)
    assert estimate == pytest.approx(0.75 * 5300e9 / ((37 - 0.9267) * 1e9))


def test_batching_gain_matches_the_anchor_and_is_capped() -> None:
    assert batching_gain("gpu", 1) == 1.0
    assert batching_gain("gpu", 8) == pytest.approx(6.6)
    assert batching_gain("gpu", 200) == 12.0


def test_cpu_batching_gain_follows_the_measured_step_curve() -> None:
    # a kernel switch from 1 to 2 sequences doubles the step, then arithmetic grows slowly
    curve = ((1, 1.0), (2, 2.0), (4, 2.2), (16, 4.0))
    assert batching_gain("cpu", 1, curve) == 1.0
    assert batching_gain("cpu", 2, curve) == pytest.approx(1.0)
    assert batching_gain("cpu", 4, curve) == pytest.approx(4 / 2.2)
    assert batching_gain("cpu", 10, curve) == pytest.approx(10 / 3.1)  # halfway from 4 to 16
    assert batching_gain("cpu", 16, curve) == pytest.approx(4.0)
    # beyond the last measured batch, no more gain is promised than was measured there
    assert batching_gain("cpu", 64, curve) == pytest.approx(4.0)
    assert batching_gain("cpu", 10_000, curve) == pytest.approx(4.0)


def test_the_default_cpu_curves_gain_from_batching_and_have_the_fp32_kink() -> None:
    for key, curve in CPU_STEP_CURVE.items():
        check_step_curve(curve)
        assert batching_gain("cpu", 16, curve) > 3, key
    # fp32's batched kernel costs twice the single-stream one: 4 sequences gain under 2x
    assert batching_gain("cpu", 4, CPU_STEP_CURVE["fp32"]) < 2
    assert batching_gain("cpu", 4, CPU_STEP_CURVE["int8"]) > 3


@pytest.mark.parametrize(
    "curve",
    [(), ((2, 1.0),), ((1, 1.0), (4, 2.0), (2, 1.5)), ((1, 1.0), (2, 0.0)), ((1, 1.2), (2, 2.0))],
)
def test_a_malformed_step_curve_is_refused(curve: tuple[tuple[int, float], ...]) -> None:
    with pytest.raises(ValueError, match="step curve"):
        batching_gain("cpu", 3, curve)


def test_machine_efficiencies_turn_probed_steps_into_an_efficiency_and_a_curve() -> None:
    efficiency, curves = machine_efficiencies(
        10.0, {"bf16": {"weight_bytes": 1e9, "seconds_1": 0.2, "seconds_4": 0.3, "seconds_2": 0.4}}
    )
    assert efficiency["bf16"] == pytest.approx(1e9 / 0.2 / 10e9)
    assert [size for size, _ in curves["bf16"]] == [1, 2, 4]
    assert [ratio for _, ratio in curves["bf16"]] == pytest.approx([1.0, 2.0, 1.5])


def test_bf16_on_a_cpu_with_native_bf16_reads_faster_than_without() -> None:
    model = MODELS["r1-distill-qwen-7b"]
    epyc, xeon = HARDWARE["epyc-9654"], HARDWARE["xeon-8380"]
    per_gb = {
        name: roofline_single_stream_tokens_per_s(model, p, hw, 1, 0) / hw.memory_bandwidth_gb_per_s
        for name, hw in (("epyc", epyc), ("xeon", xeon))
        for p in ("bf16",)
    }
    assert per_gb["epyc"] > 1.5 * per_gb["xeon"]


def test_calibration_wins_and_every_figure_says_where_it_came_from() -> None:
    request = FitRequest(MODELS["r1-distill-qwen-7b"], "bf16")
    fit = fit_replica(request, HARDWARE["rtx-4090"])
    estimated = replica_throughput(request, fit)
    assert estimated.capacity_tokens_per_s.provenance == "estimated"
    assert estimated.single_stream_tokens_per_s.provenance == "estimated"
    assert estimated.capacity_tokens_per_s.value > estimated.single_stream_tokens_per_s.value
    measured = replica_throughput(
        request, fit, Calibration("rtx-4090", "r1-distill-qwen-7b", "bf16", 1190.0)
    )
    assert measured.capacity_tokens_per_s.value == 1190.0
    assert measured.capacity_tokens_per_s.provenance == "measured"
    assert measured.single_stream_tokens_per_s.provenance == "estimated"


def test_replica_economics_for_the_planner() -> None:
    inputs = OwnedDeviceCost(100_000, 3, 400, 1.58, 1.2, 0)
    economics = replica_economics(
        MODELS["r1-distill-llama-70b"], "bf16", HARDWARE["a100-80gb-sxm"], inputs
    )
    assert economics.devices == 2
    assert economics.cost_per_hour.total == pytest.approx(2 * device_cost_per_hour(inputs).total)
    assert economics.tokens_per_s.provenance == "estimated"
    with pytest.raises(DoesNotFit, match="rtx-4090"):
        replica_economics(MODELS["deepseek-r1"], "int4", HARDWARE["rtx-4090"], inputs)


prices = st.floats(min_value=0, max_value=1e6, allow_nan=False)
positive = st.floats(min_value=0.01, max_value=1e4, allow_nan=False)


@SETTINGS
@given(
    purchase=prices,
    years=st.floats(min_value=0.5, max_value=10),
    watts=st.floats(min_value=0, max_value=2000),
    pue=st.floats(min_value=1, max_value=3),
    tariff=st.floats(min_value=0, max_value=5),
    staff=prices,
    field=st.sampled_from(
        ["purchase_price", "watts", "pue", "electricity_price_per_kwh", "staff_cost_per_year"]
    ),
    increase=st.floats(min_value=0, max_value=1e5),
)
def test_a_higher_price_never_lowers_cost(
    purchase: float,
    years: float,
    watts: float,
    pue: float,
    tariff: float,
    staff: float,
    field: str,
    increase: float,
) -> None:
    from dataclasses import replace

    base = OwnedDeviceCost(purchase, years, watts, pue, tariff, staff)
    dearer = replace(base, **{field: getattr(base, field) + increase})
    assert device_cost_per_hour(dearer).total >= device_cost_per_hour(base).total
    assert cost_per_million_output_tokens(
        device_cost_per_hour(dearer).total, 100.0, 0.5
    ) >= cost_per_million_output_tokens(device_cost_per_hour(base).total, 100.0, 0.5)


@SETTINGS
@given(
    demand=st.floats(min_value=0, max_value=1e6),
    more=st.floats(min_value=0, max_value=1e6),
    replica_tokens=positive,
    replica_cost=positive,
)
def test_more_demand_never_lowers_cost(
    demand: float, more: float, replica_tokens: float, replica_cost: float
) -> None:
    assert cost_to_serve_per_hour(demand + more, replica_tokens, replica_cost) >= (
        cost_to_serve_per_hour(demand, replica_tokens, replica_cost)
    )
    price = CloudApiPrice(0.55, 2.19)
    rate = DEFAULT_EXCHANGE_RATES
    assert cloud_api_cost(demand + more, demand + more, price, rate, "CNY") >= cloud_api_cost(
        demand, demand, price, rate, "CNY"
    )


def test_model_updates_count_in_the_total_and_in_the_yearly_running_cost() -> None:
    tco = TotalCostOfOwnership(400_000, 60_000, 400_000, years=3, model_updates=300_000)
    assert tco.total == pytest.approx(400_000 + 180_000 + 1_200_000 + 300_000)
    assert tco.running_per_year == pytest.approx(60_000 + 400_000 + 100_000)
    roi = CloudComparison(tco, cloud_per_year=1_260_000)
    assert roi.yearly_saving == pytest.approx(700_000)
    assert roi.payback_years == pytest.approx(400_000 / 700_000)


def test_tensor_parallel_replicas_add_bandwidth_less_all_reduce_losses() -> None:
    model = MODELS["r1-distill-llama-70b"]
    a100 = HARDWARE["a100-80gb-sxm"]
    two = roofline_single_stream_tokens_per_s(model, "bf16", a100, 2, context_tokens=0)
    assert two == pytest.approx(0.75 * 0.9 * 2 * 2039e9 / (2 * (70.55 - 1.0507) * 1e9))
