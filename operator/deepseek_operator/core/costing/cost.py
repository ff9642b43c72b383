"""Money: per device-hour, per replica-hour, per million output tokens, TCO, and cloud break-even.

What the planner needs, for a (model, precision, pool hardware) triple, is three pure calls:

    fit = fit_replica(FitRequest(model, precision, context_tokens), hardware)     # core.fit
    fit.devices                       -> devices per replica (0: does not fit; fit.reason says why)
    replica_cost_per_hour(device_cost_per_hour(inputs), fit.devices).total
                                      -> replica cost per hour, in the inputs' currency
    replica_throughput(request, fit, calibration).capacity_tokens_per_s.value  # core.throughput
                                      -> output tokens/s per replica (measured or estimated)

or all three at once with ``replica_economics(...)`` below, which returns ``ReplicaEconomics``
(``devices``, ``cost_per_hour``, ``tokens_per_s``) or raises ``DoesNotFit`` with the reason.
A pool whose hardware differs from the catalog entry (memory, bandwidth, devices per node) is
``dataclasses.replace(HARDWARE[name], memory_gib=..., ...)``; device memory is in GiB in both the
catalog and a PoolProfile, so it carries over as is.

Formulas (units in names; one "hour" is wall-clock, a year is 8,760 h):

    capex per hour   = purchase price / (amortisation years x 8,760)
    power per hour   = watts / 1000 x PUE x electricity price per kWh
    staff per hour   = staff cost per year attributed to the device / 8,760
    device per hour  = capex + power + staff          (or a cloud hourly price, all-in)
    replica per hour = device per hour x devices per replica
    per 1M output tokens = replica per hour / (tokens/s x 3,600 x utilisation / 10**6)
    TCO(period)      = hardware + (power + staff) per year x years + model updates
    yearly saving    = cloud API per year - local running (power + staff) per year
    payback years    = capex / yearly saving            (undefined when nothing is saved)
    cost ratio       = cloud per year / local per year incl. amortised capex (shown apart)
    break-even load  = local per year / (cloud cost per request x 365)   requests/day
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from deepseek_operator.api.vocabulary import Currency, Precision
from deepseek_operator.core.costing.catalog import ARTICLE, HardwareSpec, ModelArchitecture
from deepseek_operator.core.costing.fit import FitRequest, fit_replica
from deepseek_operator.core.costing.throughput import Calibration, Figure, replica_throughput

HOURS_PER_YEAR = 8760
DAYS_PER_YEAR = 365
SECONDS_PER_HOUR = 3600
TOKENS_PER_MILLION = 1_000_000

# Defaults, each with its source; every one is an input a scenario may override.
DEFAULT_PUE = 1.58  # Uptime Institute global average 2023 (performance-anchors.md 2.7)
DEFAULT_ELECTRICITY_CNY_PER_KWH = 1.2  # the article's commercial tariff (not verified)
DEFAULT_AMORTISATION_YEARS = 3.0  # the article's deployment period
DEFAULT_CNY_PER_USD = 7.0  # the article's own conversion; see ARTICLE_CNY_RATE


@dataclass(frozen=True)
class CurrencyRate:
    """How many units of ``currency`` one US dollar buys, and where that figure comes from."""

    currency: Currency
    units_per_usd: float
    source: str

    def __post_init__(self) -> None:
        if not (math.isfinite(self.units_per_usd) and self.units_per_usd > 0):
            raise ValueError(
                f"{self.currency} per USD must be a finite number > 0, got {self.units_per_usd}"
            )
        if self.currency == "USD" and self.units_per_usd != 1.0:
            raise ValueError(f"USD is the reference currency: 1 per USD, got {self.units_per_usd}")


USD_RATE = CurrencyRate("USD", 1.0, "the reference currency of every rate")
ARTICLE_CNY_RATE = CurrencyRate(
    "CNY",
    DEFAULT_CNY_PER_USD,
    ARTICLE + " 4.2: USD 180 k ≈ CNY 1,260 k; the article's own conversion, as of its date "
    "(2025-09)",
)


class UnknownCurrencyRate(ValueError):
    """An amount in a currency the rate table has no rate for: never converted as another one."""

    def __init__(self, currency: str, known: Iterable[str], used_by: str = "") -> None:
        self.currency = currency
        self.known = tuple(sorted(known))
        self.used_by = used_by
        where = f", the currency of {used_by}" if used_by else ""
        super().__init__(
            f"no exchange rate for {currency}{where} (rates known: {', '.join(self.known)})"
        )


@dataclass(frozen=True)
class ExchangeRates:
    """Units of each currency per USD, each with its source; every conversion goes through here.

    A currency missing from the table raises ``UnknownCurrencyRate``; an amount already in the
    target currency needs no rate.
    """

    rates: Mapping[str, CurrencyRate]

    @staticmethod
    def of(*rates: CurrencyRate) -> ExchangeRates:
        """A table of these rates; a later rate for the same currency replaces an earlier one."""
        return ExchangeRates({rate.currency: rate for rate in rates})

    def with_rates(self, rates: Iterable[CurrencyRate]) -> ExchangeRates:
        """This table extended by ``rates``, which replace this table's rate for their currency."""
        return ExchangeRates.of(*self.rates.values(), *rates)

    @property
    def currencies(self) -> tuple[str, ...]:
        return tuple(sorted(self.rates))

    def rate(self, currency: str) -> CurrencyRate:
        try:
            return self.rates[currency]
        except KeyError:
            raise UnknownCurrencyRate(currency, self.rates) from None

    def convert(self, amount: float, source: Currency, target: Currency) -> float:
        """``amount`` in ``source`` expressed in ``target``, through USD."""
        if source == target:
            return amount
        return amount / self.rate(source).units_per_usd * self.rate(target).units_per_usd


DEFAULT_EXCHANGE_RATES = ExchangeRates.of(USD_RATE, ARTICLE_CNY_RATE)
"""Only the rates the project can source: USD itself and the article's CNY conversion. State
any other currency's rate (a deployment's spec.costModel.exchangeRates, a scenario's
exchange_rates)."""


@dataclass(frozen=True)
class OwnedDeviceCost:
    """Cost inputs of one owned device, all in one currency."""

    purchase_price: float
    amortisation_years: float
    watts: float
    pue: float
    electricity_price_per_kwh: float
    staff_cost_per_year: float = 0.0


@dataclass(frozen=True)
class RentedDeviceCost:
    """A cloud device: one all-in hourly price."""

    price_per_hour: float


DeviceCostInputs = OwnedDeviceCost | RentedDeviceCost


@dataclass(frozen=True)
class HourlyCost:
    """Cost per hour, split into where it goes."""

    capex: float = 0.0
    power: float = 0.0
    staff: float = 0.0
    rent: float = 0.0

    @property
    def total(self) -> float:
        return self.capex + self.power + self.staff + self.rent

    def times(self, factor: float) -> HourlyCost:
        return HourlyCost(
            self.capex * factor, self.power * factor, self.staff * factor, self.rent * factor
        )


def energy_kwh(watts: float, hours: float, devices: int = 1, pue: float = 1.0) -> float:
    """kWh drawn: watts x devices x hours x PUE / 1000."""
    return watts * devices * hours * pue / 1000


def device_cost_per_hour(inputs: DeviceCostInputs) -> HourlyCost:
    """One device's cost per wall-clock hour (owned: amortised capex + power + staff share)."""
    if isinstance(inputs, RentedDeviceCost):
        return HourlyCost(rent=inputs.price_per_hour)
    return HourlyCost(
        capex=inputs.purchase_price / (inputs.amortisation_years * HOURS_PER_YEAR),
        power=energy_kwh(inputs.watts, 1.0, pue=inputs.pue) * inputs.electricity_price_per_kwh,
        staff=inputs.staff_cost_per_year / HOURS_PER_YEAR,
    )


def replica_cost_per_hour(device_hourly: HourlyCost, devices_per_replica: int) -> HourlyCost:
    """A replica holds ``devices_per_replica`` devices for every hour it runs."""
    return device_hourly.times(devices_per_replica)


def cost_per_million_output_tokens(
    cost_per_hour: float, tokens_per_s: float, utilisation: float
) -> float:
    """Cost of a million output tokens when the replica is busy ``utilisation`` of the time."""
    if tokens_per_s <= 0 or utilisation <= 0:
        raise ValueError("tokens_per_s and utilisation must be positive")
    tokens_per_hour = tokens_per_s * SECONDS_PER_HOUR * utilisation
    return cost_per_hour / (tokens_per_hour / TOKENS_PER_MILLION)


def break_even_requests_per_day(
    local_cost_per_year: float, cloud_cost_per_request: float
) -> float | None:
    """Daily requests above which a local pool's yearly cost beats paying the API per request.

    Ignores capacity: check that the pool can carry that many requests.
    """
    if cloud_cost_per_request <= 0:
        return None
    return local_cost_per_year / (cloud_cost_per_request * DAYS_PER_YEAR)


def replicas_needed(demand_tokens_per_s: float, replica_tokens_per_s: float) -> int:
    """Whole replicas to carry the demand (at least one while there is any demand)."""
    if demand_tokens_per_s <= 0:
        return 0
    return math.ceil(demand_tokens_per_s / replica_tokens_per_s)


def cost_to_serve_per_hour(
    demand_tokens_per_s: float, replica_tokens_per_s: float, replica_hourly_cost: float
) -> float:
    return replicas_needed(demand_tokens_per_s, replica_tokens_per_s) * replica_hourly_cost


@dataclass(frozen=True)
class CloudApiPrice:
    """A token-priced API: separate input and output prices per million tokens."""

    input_per_million: float
    output_per_million: float
    currency: Currency = "USD"


def cloud_api_cost(
    input_tokens: float,
    output_tokens: float,
    price: CloudApiPrice,
    rates: ExchangeRates,
    currency: Currency,
) -> float:
    """What the API charges for these tokens, converted into ``currency``."""
    raw = (
        input_tokens * price.input_per_million + output_tokens * price.output_per_million
    ) / TOKENS_PER_MILLION
    return rates.convert(raw, price.currency, currency)


@dataclass(frozen=True)
class TotalCostOfOwnership:
    """The article's formula: hardware + (power + staff) x period + model updates."""

    hardware: float
    power_per_year: float
    staff_per_year: float
    years: float
    model_updates: float = 0.0

    @property
    def power(self) -> float:
        return self.power_per_year * self.years

    @property
    def staff(self) -> float:
        return self.staff_per_year * self.years

    @property
    def running_per_year(self) -> float:
        return self.power_per_year + self.staff_per_year + self.model_updates / self.years

    @property
    def total(self) -> float:
        return self.hardware + self.power + self.staff + self.model_updates

    @property
    def per_year(self) -> float:
        return self.total / self.years


@dataclass(frozen=True)
class CloudComparison:
    """Local TCO against a cloud bill over the same period."""

    local: TotalCostOfOwnership
    cloud_per_year: float

    @property
    def yearly_saving(self) -> float:
        """Cloud per year minus what running locally costs per year (capex excluded)."""
        return self.cloud_per_year - self.local.running_per_year

    @property
    def payback_years(self) -> float | None:
        """Capex / yearly saving; None when local running costs more than the cloud."""
        if self.yearly_saving <= 0:
            return None
        return self.local.hardware / self.yearly_saving

    @property
    def cost_ratio(self) -> float | None:
        """Cloud per year / local per year with capex amortised; None when local costs nothing."""
        if self.local.per_year <= 0:
            return None
        return self.cloud_per_year / self.local.per_year

    @property
    def saving_over_period(self) -> float:
        return self.cloud_per_year * self.local.years - self.local.total

    def cumulative(self, years: float) -> tuple[float, float]:
        """(local, cloud) money spent by ``years`` after purchase: capex is paid on day one."""
        local = self.local.hardware + self.local.running_per_year * years
        return local, self.cloud_per_year * years


@dataclass(frozen=True)
class ReplicaEconomics:
    """What the planner reads for a (model, precision, hardware) triple."""

    devices: int
    cost_per_hour: HourlyCost
    tokens_per_s: Figure
    single_stream_tokens_per_s: Figure


class DoesNotFit(ValueError):
    """The model cannot be placed on one node of this hardware; the message says why."""


def replica_economics(
    model: ModelArchitecture,
    precision: Precision,
    hardware: HardwareSpec,
    device_cost: DeviceCostInputs,
    calibration: Calibration | None = None,
    context_tokens: int = 4096,
    concurrent_sequences: int = 1,
) -> ReplicaEconomics:
    """Devices per replica, replica cost per hour and tokens/s per replica, in one call."""
    request = FitRequest(model, precision, context_tokens, concurrent_sequences)
    fit = fit_replica(request, hardware)
    if not fit.fits:
        raise DoesNotFit(fit.reason)
    throughput = replica_throughput(request, fit, calibration)
    return ReplicaEconomics(
        devices=fit.devices,
        cost_per_hour=replica_cost_per_hour(device_cost_per_hour(device_cost), fit.devices),
        tokens_per_s=throughput.capacity_tokens_per_s,
        single_stream_tokens_per_s=throughput.single_stream_tokens_per_s,
    )
