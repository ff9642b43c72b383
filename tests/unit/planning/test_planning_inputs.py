"""A deployment and its pools as planner inputs: prices converted at explicit exchange rates."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from deepseek_operator.api import DeepSeekDeployment, PoolProfile
from deepseek_operator.core.costing.cost import UnknownCurrencyRate
from deepseek_operator.core.planning.inputs import (
    PoolSetup,
    exchange_rates,
    pool_option,
    report_currency,
)
from deepseek_operator.core.replay.inputs import replay_inputs
from tests import api_cases as cases

EUR_PER_USD = 0.8
HOURLY_PRICE = 2.0
"""Per GPU-hour, in the pool's currency; a rented pool with no other cost, so a 1-GPU replica
costs exactly this per hour before conversion."""


def _deployment(cost_model: dict[str, Any] | None) -> DeepSeekDeployment:
    document = copy.deepcopy(cases.deployment())
    document["spec"]["variants"] = [{"pool": "a100", "engine": "vllm", "precision": "bf16"}]
    if cost_model is not None:
        document["spec"]["costModel"] = cost_model
    return DeepSeekDeployment.model_validate(document)


def _pool(currency: str) -> PoolProfile:
    document = copy.deepcopy(cases.pool("a100"))
    document["spec"]["cost"] = {"currency": currency, "hourlyPrice": HOURLY_PRICE}
    document["spec"]["throughput"] = []
    return PoolProfile.model_validate(document)


EUR_RATE = {"currency": "EUR", "unitsPerUSD": EUR_PER_USD, "source": "test rate"}


def test_a_eur_pool_in_a_usd_deployment_is_converted_at_the_stated_rate() -> None:
    dsd = _deployment({"currency": "USD", "exchangeRates": [EUR_RATE]})
    inputs = replay_inputs(dsd, [_pool("EUR")], {})
    (option,) = inputs.options
    assert inputs.currency == option.currency == "USD"
    assert option.gpus_per_replica == 1
    assert option.replica_cost_per_hour == pytest.approx(HOURLY_PRICE / EUR_PER_USD)
    (pool,) = inputs.pools
    assert pool.cost_per_replica_hour == pytest.approx(HOURLY_PRICE / EUR_PER_USD)


def test_pool_option_converts_with_the_deployments_rates() -> None:
    dsd = _deployment({"currency": "USD", "exchangeRates": [EUR_RATE]})
    variant = dsd.spec.variants[0]
    rates = exchange_rates(dsd.spec)
    option = pool_option(dsd, variant, 0, _pool("EUR"), PoolSetup(), "USD", rates)
    assert option.replica_cost_per_hour == pytest.approx(HOURLY_PRICE / EUR_PER_USD)
    # Into CNY through USD, at the default table's 7.0 CNY per USD.
    option = pool_option(dsd, variant, 0, _pool("EUR"), PoolSetup(), "CNY", rates)
    assert option.replica_cost_per_hour == pytest.approx(HOURLY_PRICE / EUR_PER_USD * 7.0)


def test_a_pool_in_a_currency_without_a_rate_is_an_error_naming_it() -> None:
    dsd = _deployment({"currency": "USD"})
    with pytest.raises(UnknownCurrencyRate, match="no exchange rate for EUR") as raised:
        replay_inputs(dsd, [_pool("EUR")], {})
    assert raised.value.currency == "EUR"
    assert raised.value.known == ("CNY", "USD")
    assert "PoolProfile a100" in str(raised.value)


def test_a_report_currency_without_a_rate_is_an_error_naming_it() -> None:
    dsd = _deployment({"currency": "CHF", "exchangeRates": [EUR_RATE]})
    with pytest.raises(UnknownCurrencyRate, match="no exchange rate for CHF") as raised:
        replay_inputs(dsd, [_pool("EUR")], {})
    assert raised.value.known == ("CNY", "EUR", "USD")
    assert "the deployment's reports" in str(raised.value)


def test_stated_rates_replace_the_default_and_same_currency_needs_none() -> None:
    cny = {"currency": "CNY", "unitsPerUSD": 8.0}
    dsd = _deployment({"currency": "USD", "exchangeRates": [cny]})
    (option,) = replay_inputs(dsd, [_pool("CNY")], {}).options
    assert option.replica_cost_per_hour == pytest.approx(HOURLY_PRICE / 8.0)
    assert exchange_rates(dsd.spec).rate("CNY").source.startswith("spec.costModel.exchangeRates")
    # A EUR pool reported in EUR (the pools' own currency) converts nothing.
    (option,) = replay_inputs(_deployment(None), [_pool("EUR")], {}).options
    assert option.currency == "EUR"
    assert option.replica_cost_per_hour == pytest.approx(HOURLY_PRICE)


def test_report_currency_is_stated_else_shared_else_usd() -> None:
    eur, cny = _pool("EUR"), _pool("CNY")
    assert report_currency(_deployment({"currency": "JPY"}).spec, [eur]) == "JPY"
    assert report_currency(_deployment(None).spec, [eur]) == "EUR"
    assert report_currency(_deployment(None).spec, [eur, cny]) == "USD"
