"""A scenario's pools side by side: fit, throughput, cost per hour and per token, TCO, payback.

Pure: takes a validated ``Scenario``, returns numbers; the CLI only renders them.
"""

from __future__ import annotations

from dataclasses import dataclass

from deepseek_operator.api.vocabulary import Currency
from deepseek_operator.core.costing.catalog import HardwareSpec, hardware_named, model_named
from deepseek_operator.core.costing.cost import (
    DAYS_PER_YEAR,
    DEFAULT_EXCHANGE_RATES,
    HOURS_PER_YEAR,
    CloudApiPrice,
    CloudComparison,
    CurrencyRate,
    DeviceCostInputs,
    ExchangeRates,
    HourlyCost,
    OwnedDeviceCost,
    RentedDeviceCost,
    TotalCostOfOwnership,
    break_even_requests_per_day,
    cloud_api_cost,
    cost_per_million_output_tokens,
    device_cost_per_hour,
    replica_cost_per_hour,
    replicas_needed,
)
from deepseek_operator.core.costing.fit import FitRequest, ReplicaFit, fit_replica
from deepseek_operator.core.costing.scenario import Pool, Scenario
from deepseek_operator.core.costing.throughput import (
    Calibration,
    ReplicaThroughput,
    replica_throughput,
)


@dataclass(frozen=True)
class PoolResult:
    """Everything the report shows for one pool; cost fields are None when it does not fit."""

    pool: Pool
    fit: ReplicaFit
    throughput: ReplicaThroughput | None
    replicas: int
    device_hourly: HourlyCost
    replica_hourly: HourlyCost | None
    pool_hourly: HourlyCost
    cost_per_million_output: float | None
    replicas_for_demand: int | None
    tco: TotalCostOfOwnership
    versus_cloud: CloudComparison
    break_even_requests_per_day: float | None
    output_tokens_per_request: float

    @property
    def capacity_tokens_per_s(self) -> float:
        if self.throughput is None:
            return 0.0
        return self.replicas * self.throughput.capacity_tokens_per_s.value

    @property
    def max_requests_per_day(self) -> float | None:
        """Requests/day the pool's capacity carries at the scenario's output length."""
        if self.output_tokens_per_request <= 0:
            return None
        return self.capacity_tokens_per_s * 86_400 / self.output_tokens_per_request

    @property
    def serves_demand(self) -> bool:
        return self.replicas_for_demand is not None and self.replicas_for_demand <= self.replicas


@dataclass(frozen=True)
class ScenarioReport:
    scenario: Scenario
    cloud_per_year: float
    demand_output_tokens_per_s: float
    pools: tuple[PoolResult, ...]

    @property
    def currency(self) -> Currency:
        return self.scenario.currency


def cloud_cost_per_year(scenario: Scenario) -> float:
    """The API bill for a year of the scenario's demand, in the scenario's currency."""
    demand = scenario.demand
    api = scenario.cloud_api
    requests = demand.requests_per_day * DAYS_PER_YEAR
    return cloud_api_cost(
        requests * demand.input_tokens_per_request,
        requests * demand.output_tokens_per_request,
        CloudApiPrice(api.input_price_per_million, api.output_price_per_million, api.currency),
        exchange_rates(scenario),
        scenario.currency,
    )


def cloud_cost_per_request(scenario: Scenario) -> float:
    """The API bill for one request of the scenario's shape, in the scenario's currency."""
    demand = scenario.demand
    api = scenario.cloud_api
    return cloud_api_cost(
        demand.input_tokens_per_request,
        demand.output_tokens_per_request,
        CloudApiPrice(api.input_price_per_million, api.output_price_per_million, api.currency),
        exchange_rates(scenario),
        scenario.currency,
    )


def exchange_rates(scenario: Scenario) -> ExchangeRates:
    """The default table with the scenario's ``cny_per_usd`` and ``exchange_rates``."""
    stated = [CurrencyRate("CNY", scenario.cny_per_usd, "the scenario's cny_per_usd")]
    stated += [
        CurrencyRate(currency, units, "the scenario's exchange_rates")
        for currency, units in scenario.exchange_rates.items()
    ]
    return DEFAULT_EXCHANGE_RATES.with_rates(stated)


def pool_hardware(pool: Pool, currency: Currency) -> HardwareSpec:
    """The catalog's entry, or the pool's custom hardware as one (priced in `currency`)."""
    custom = pool.hardware
    if isinstance(custom, str):
        return hardware_named(custom)
    where = f"the scenario's pools[{pool.name}].hardware"
    return HardwareSpec(
        name=custom.name,
        kind=custom.kind,
        memory_gib=custom.memory_gib,
        memory_bandwidth_gb_per_s=custom.memory_bandwidth_gb_per_s,
        board_power_watts=custom.watts or 0.0,
        purchase_price=custom.price or 0.0,
        purchase_currency=currency,
        cloud_price_per_hour_usd=None,
        devices_per_node=1,
        sources={
            "memory_gib": where,
            "memory_bandwidth_gb_per_s": where,
            "board_power_watts": where,
            "purchase_price": where,
        },
        cpu_features=tuple(custom.cpu_features),
    )


def device_cost_inputs(pool: Pool, currency: Currency, rates: ExchangeRates) -> DeviceCostInputs:
    """A pool's per-device inputs, catalog defaults filled in; staff is shared evenly."""
    if pool.cloud_price_per_hour is not None:
        return RentedDeviceCost(pool.cloud_price_per_hour)
    hardware = pool_hardware(pool, currency)
    price = pool.purchase_price
    if price is None:
        price = rates.convert(hardware.purchase_price, hardware.purchase_currency, currency)
    assert pool.electricity_price_per_kwh is not None  # guaranteed by Pool's validator
    return OwnedDeviceCost(
        purchase_price=price,
        amortisation_years=pool.amortisation_years,
        watts=hardware.board_power_watts if pool.watts is None else pool.watts,
        pue=pool.pue,
        electricity_price_per_kwh=pool.electricity_price_per_kwh,
        staff_cost_per_year=pool.staff_cost_per_year / pool.devices,
    )


def pool_tco(
    inputs: DeviceCostInputs, devices: int, years: float, model_updates: float
) -> TotalCostOfOwnership:
    """The article's TCO for a pool; rent counts as running cost (in the power column's place)."""
    hourly = device_cost_per_hour(inputs).times(devices)
    hardware = inputs.purchase_price * devices if isinstance(inputs, OwnedDeviceCost) else 0.0
    return TotalCostOfOwnership(
        hardware=hardware,
        power_per_year=(hourly.power + hourly.rent) * HOURS_PER_YEAR,
        staff_per_year=hourly.staff * HOURS_PER_YEAR,
        years=years,
        model_updates=model_updates,
    )


def evaluate_pool(
    pool: Pool, scenario: Scenario, cloud_per_year: float, demand_tokens_per_s: float
) -> PoolResult:
    hardware = pool_hardware(pool, scenario.currency)
    model = model_named(pool.model)
    inputs = device_cost_inputs(pool, scenario.currency, exchange_rates(scenario))
    device_hourly = device_cost_per_hour(inputs)
    request = FitRequest(model, pool.precision, pool.context_tokens)
    fit = fit_replica(request, hardware)
    tco = pool_tco(inputs, pool.devices, scenario.period_years, pool.model_updates)
    versus_cloud = CloudComparison(tco, cloud_per_year)
    pool_hourly = device_hourly.times(pool.devices)
    break_even = break_even_requests_per_day(tco.per_year, cloud_cost_per_request(scenario))
    output_tokens = scenario.demand.output_tokens_per_request
    if not fit.fits:
        return PoolResult(
            pool, fit, None, 0, device_hourly, None, pool_hourly, None, None, tco, versus_cloud,
            break_even, output_tokens,
        )  # fmt: skip
    calibration = None
    if pool.calibration is not None:
        calibration = Calibration(
            pool.hardware_name,
            pool.model,
            pool.precision,
            pool.calibration.capacity_tokens_per_s,
            pool.calibration.single_stream_tokens_per_s,
            pool.calibration.source,
        )
    throughput = replica_throughput(request, fit, calibration)
    replica_hourly = replica_cost_per_hour(device_hourly, fit.devices)
    capacity = throughput.capacity_tokens_per_s.value
    return PoolResult(
        pool=pool,
        fit=fit,
        throughput=throughput,
        replicas=pool.devices // fit.devices,
        device_hourly=device_hourly,
        replica_hourly=replica_hourly,
        pool_hourly=pool_hourly,
        cost_per_million_output=cost_per_million_output_tokens(
            replica_hourly.total, capacity, pool.utilisation
        ),
        replicas_for_demand=replicas_needed(demand_tokens_per_s, capacity),
        tco=tco,
        versus_cloud=versus_cloud,
        break_even_requests_per_day=break_even,
        output_tokens_per_request=output_tokens,
    )


def compare_pools(scenario: Scenario) -> ScenarioReport:
    cloud = cloud_cost_per_year(scenario)
    demand = scenario.demand.output_tokens_per_s
    results = tuple(evaluate_pool(pool, scenario, cloud, demand) for pool in scenario.pools)
    return ScenarioReport(scenario, cloud, demand, results)
