"""Scenarios: strict validation naming the field, and the pool comparison built from them."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from deepseek_operator.core.costing.comparison import compare_pools
from deepseek_operator.core.costing.cost import HOURS_PER_YEAR, UnknownCurrencyRate
from deepseek_operator.core.costing.scenario import ScenarioError, parse_scenario
from tests.paths import EXAMPLES

EXAMPLE = EXAMPLES / "cost-scenario.yaml"


def _example() -> dict[str, Any]:
    data = yaml.safe_load(EXAMPLE.read_text())
    assert isinstance(data, dict)
    return data


def _problems(data: object) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data)
    return caught.value.problems


def test_shipped_example_is_valid() -> None:
    scenario = parse_scenario(_example())
    assert [pool.name for pool in scenario.pools] == ["a100", "rtx4090", "cpu-night", "h100-rented"]


def test_missing_field_is_named() -> None:
    data = _example()
    del data["pools"][1]["devices"]
    assert _problems(data) == ["pools[1].devices: required field is missing"]


def test_negative_price_is_named() -> None:
    data = _example()
    data["cloud_api"]["output_price_per_million"] = -2.19
    data["pools"][0]["electricity_price_per_kwh"] = -1
    problems = _problems(data)
    assert any(p.startswith("cloud_api.output_price_per_million:") for p in problems)
    assert any(p.startswith("pools[0].electricity_price_per_kwh:") for p in problems)
    assert all("greater than or equal to 0" in p for p in problems)


def test_unknown_hardware_and_model_list_the_allowed_names() -> None:
    data = _example()
    data["pools"][0]["hardware"] = "rtx-5090"
    data["pools"][2]["model"] = "llama-3"
    problems = _problems(data)
    hardware = next(p for p in problems if p.startswith("pools[0].hardware:"))
    assert "'rtx-5090'" in hardware and "allowed:" in hardware and "rtx-4090" in hardware
    model = next(p for p in problems if p.startswith("pools[2].model:"))
    assert "'llama-3'" in model and "r1-distill-qwen-7b" in model


def test_unknown_precision_and_malformed_currency_are_named() -> None:
    data = _example()
    data["pools"][0]["precision"] = "int3"
    data["currency"] = "eur"
    problems = _problems(data)
    assert any(p.startswith("pools[0].precision:") and "'int4'" in p for p in problems)
    assert any(p.startswith("currency:") and "[A-Z]{3}" in p for p in problems)


def test_a_report_currency_without_a_rate_is_an_error_naming_it() -> None:
    data = _example()
    data["currency"] = "EUR"
    with pytest.raises(UnknownCurrencyRate, match="no exchange rate for EUR") as raised:
        compare_pools(parse_scenario(data))
    assert raised.value.known == ("CNY", "USD")


def test_stated_exchange_rates_convert_into_the_report_currency() -> None:
    data = _example()
    cny = compare_pools(parse_scenario(data))
    data["currency"] = "EUR"
    data["exchange_rates"] = {"EUR": 0.8}
    for pool in data["pools"]:  # the example's pool prices are CNY amounts: restate them
        for key in ("electricity_price_per_kwh", "staff_cost_per_year", "cloud_price_per_hour"):
            if key in pool:
                pool[key] = pool[key] / 7.0 * 0.8
    eur = compare_pools(parse_scenario(data))
    assert eur.cloud_per_year == pytest.approx(cny.cloud_per_year / 7.0 * 0.8)
    by_name = {r.pool.name: r for r in eur.pools}
    # The catalog prices an A100 at 100,000 CNY: 100,000 / 7.0 USD, 0.8 EUR per USD.
    assert by_name["a100"].tco.hardware == pytest.approx(8 * 100_000 / 7.0 * 0.8)
    for before, after in zip(cny.pools, eur.pools, strict=True):
        assert after.tco.total == pytest.approx(before.tco.total / 7.0 * 0.8)


def test_exchange_rates_list_only_further_currencies() -> None:
    data = _example()
    data["exchange_rates"] = {"CNY": 7.2}
    assert _problems(data) == [
        "exchange_rates: CNY: USD is 1 per USD and CNY is cny_per_usd; list other currencies here"
    ]
    data["exchange_rates"] = {"EUR": 0.0}
    assert _problems(data)[0].startswith("exchange_rates.EUR: Input should be greater than 0")


def test_misspelt_key_is_rejected_not_ignored() -> None:
    data = _example()
    data["pools"][0]["electricity_price"] = 1.2
    assert "pools[0].electricity_price: unknown field" in _problems(data)[0]


def test_owned_pool_needs_a_tariff() -> None:
    data = _example()
    del data["pools"][0]["electricity_price_per_kwh"]
    assert "electricity_price_per_kwh is required" in _problems(data)[0]


def test_every_problem_is_reported_at_once() -> None:
    data = _example()
    del data["demand"]
    data["pools"][0]["devices"] = 0
    assert len(_problems(data)) == 2


def test_top_level_must_be_a_mapping() -> None:
    assert _problems(["not", "a", "mapping"])[0].startswith("(top level)")


def test_comparison_of_the_example() -> None:
    report = compare_pools(parse_scenario(_example()))
    # 100,000 requests x 500 output tokens per day.
    assert report.demand_output_tokens_per_s == pytest.approx(100_000 * 500 / 86_400)
    # (1,000 x 0.55 + 500 x 2.19) USD per million, x 7 CNY/USD, x 365 days.
    assert report.cloud_per_year == pytest.approx(100_000 * 365 * 1645e-6 * 7)
    by_name = {result.pool.name: result for result in report.pools}
    rtx = by_name["rtx4090"]
    assert rtx.throughput is not None
    assert rtx.throughput.capacity_tokens_per_s.provenance == "measured"
    assert rtx.replicas == 8 and rtx.serves_demand
    # Catalog price 15,000 CNY per card, 8 cards; 450 W x 1.58 PUE x 1.2 CNY/kWh per hour.
    assert rtx.tco.hardware == pytest.approx(120_000)
    assert rtx.tco.power_per_year == pytest.approx(8 * 0.45 * 1.58 * 1.2 * HOURS_PER_YEAR)
    assert rtx.tco.staff_per_year == pytest.approx(300_000)
    cpu = by_name["cpu-night"]
    assert not cpu.serves_demand
    rented = by_name["h100-rented"]
    assert rented.tco.hardware == 0
    assert rented.pool_hourly.total == pytest.approx(27.93)


def test_pool_that_does_not_fit_has_a_reason_and_no_costs_per_token() -> None:
    data = _example()
    data["pools"][1]["model"] = "deepseek-r1"
    result = compare_pools(parse_scenario(data)).pools[1]
    assert not result.fit.fits
    assert "does not fit" in result.fit.reason
    assert result.cost_per_million_output is None
    assert result.throughput is None


@settings(deadline=None, max_examples=25)
@given(
    tariff=st.floats(min_value=0, max_value=5),
    more=st.floats(min_value=0.01, max_value=5),
    requests=st.floats(min_value=0, max_value=1e6),
    more_requests=st.floats(min_value=1, max_value=1e6),
)
def test_scenario_costs_are_monotone_in_price_and_demand(
    tariff: float, more: float, requests: float, more_requests: float
) -> None:
    base = _example()
    for pool in base["pools"]:
        if "electricity_price_per_kwh" in pool:
            pool["electricity_price_per_kwh"] = tariff
    base["demand"]["requests_per_day"] = requests
    dearer = copy.deepcopy(base)
    for pool in dearer["pools"]:
        if "electricity_price_per_kwh" in pool:
            pool["electricity_price_per_kwh"] = tariff + more
    busier = copy.deepcopy(base)
    busier["demand"]["requests_per_day"] = requests + more_requests
    low, high, heavy = (compare_pools(parse_scenario(d)) for d in (base, dearer, busier))
    for a, b in zip(low.pools, high.pools, strict=True):
        assert b.tco.total >= a.tco.total
        if a.cost_per_million_output is not None and b.cost_per_million_output is not None:
            assert b.cost_per_million_output >= a.cost_per_million_output
    assert heavy.cloud_per_year >= low.cloud_per_year
    for a, b in zip(low.pools, heavy.pools, strict=True):
        if a.replicas_for_demand is not None and b.replicas_for_demand is not None:
            assert b.replicas_for_demand >= a.replicas_for_demand


def test_zero_priced_and_zero_demand_scenarios_compute() -> None:
    data = _example()
    data["demand"]["requests_per_day"] = 0
    data["pools"][3]["cloud_price_per_hour"] = 0
    report = compare_pools(parse_scenario(data))
    rented = report.pools[3]
    assert report.cloud_per_year == 0
    assert rented.versus_cloud.cost_ratio is None
    assert all(result.replicas_for_demand in (0, None) for result in report.pools)


def test_at_the_break_even_load_local_and_cloud_cost_the_same() -> None:
    data = _example()
    report = compare_pools(parse_scenario(data))
    for index, result in enumerate(report.pools):
        load = result.break_even_requests_per_day
        assert load is not None
        data["demand"]["requests_per_day"] = load
        at_break_even = compare_pools(parse_scenario(data)).pools[index]
        assert at_break_even.versus_cloud.cloud_per_year == pytest.approx(result.tco.per_year)


def test_catalog_purchase_prices_are_converted_into_the_scenario_currency() -> None:
    data = _example()
    # The catalog prices an H100 in USD (27,500) and an A100 in CNY (100,000).
    data["pools"][3] = {**data["pools"][0], "name": "h100-owned", "hardware": "h100-sxm"}
    cny = {r.pool.name: r for r in compare_pools(parse_scenario(data)).pools}
    assert cny["h100-owned"].tco.hardware == pytest.approx(8 * 27_500 * 7.0)
    assert cny["a100"].tco.hardware == pytest.approx(8 * 100_000)
    data["currency"] = "USD"
    usd = {r.pool.name: r for r in compare_pools(parse_scenario(data)).pools}
    assert usd["h100-owned"].tco.hardware == pytest.approx(8 * 27_500)
    assert usd["a100"].tco.hardware == pytest.approx(8 * 100_000 / 7.0)


def test_a_pool_holds_devices_over_tensor_parallel_degree_replicas() -> None:
    data = _example()
    data["pools"][0]["model"] = "r1-distill-llama-70b"
    data["pools"][0]["context_tokens"] = 4096
    a100 = compare_pools(parse_scenario(data)).pools[0]
    assert a100.fit.devices == 2
    assert a100.replicas == 4
    assert a100.replica_hourly is not None
    assert a100.replica_hourly.total == pytest.approx(2 * a100.device_hourly.total)
    assert a100.pool_hourly.total == pytest.approx(8 * a100.device_hourly.total)
