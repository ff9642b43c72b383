"""A cost scenario as users write it (YAML or flags): strict, so mistakes are caught by name.

Unknown keys, missing fields, negative prices and names not in the catalog are all rejected
before anything is computed or printed; ``describe_errors`` turns pydantic's errors into lines
that name the field (``pools[1].hardware``) and, where there is a closed set, the allowed values.
"""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from deepseek_operator.api.vocabulary import (
    MAX_AMORTISATION_YEARS,
    MAX_CONTEXT_TOKENS,
    MAX_CPU_FEATURES,
    MAX_DEVICES,
    MAX_PUE,
    MAX_TOKENS_PER_SECOND_PER_REPLICA,
    MAX_UNITS_PER_USD,
    MAX_WATTS_PER_DEVICE,
    MIN_PUE,
    CpuFeature,
    Currency,
    HardwareKind,
    Money,
    Precision,
    ShortText,
)
from deepseek_operator.core.costing.catalog import HARDWARE, MODELS

MAX_REQUESTS_PER_DAY = 1e12
"""A trillion requests a day (11.6 million a second) is beyond the largest public APIs."""
MAX_PERIOD_YEARS = 50
"""A TCO period: half a century outlives every machine in it several times over."""
MAX_POOLS = 64

TokensPerRequest = Annotated[float, Field(ge=0, le=MAX_CONTEXT_TOKENS)]
ExchangeRate = Annotated[float, Field(gt=0, le=MAX_UNITS_PER_USD)]
TokensPerSecond = Annotated[float, Field(gt=0, le=MAX_TOKENS_PER_SECOND_PER_REPLICA)]


class _Strict(BaseModel):
    # finite: an infinite price would print "inf" tables instead of an error naming the field
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


class Demand(_Strict):
    """Average daily load; tokens per request split into input (prompt) and output."""

    requests_per_day: Annotated[float, Field(ge=0, le=MAX_REQUESTS_PER_DAY)]
    input_tokens_per_request: TokensPerRequest
    output_tokens_per_request: TokensPerRequest

    @property
    def output_tokens_per_s(self) -> float:
        return self.requests_per_day * self.output_tokens_per_request / 86_400


class CloudApi(_Strict):
    """The token-priced API the local pools are compared against."""

    name: ShortText = "deepseek-reasoner"
    currency: Currency = "USD"
    input_price_per_million: Money
    output_price_per_million: Money


class PoolCalibration(_Strict):
    """Measured output tokens/s of one replica on this pool (from `deepseek-operator calibrate`)."""

    capacity_tokens_per_s: TokensPerSecond
    single_stream_tokens_per_s: TokensPerSecond | None = None
    source: ShortText = "calibration"


class CustomHardware(_Strict):
    """A machine the catalog does not list, described by the numbers the model needs.

    One device: a GPU, or for a CPU pool one server (its memory, bandwidth and cores summed over
    its sockets). Decode speed follows from the bandwidth (and, for bf16 on CPUs, from
    `cpu_features`); whether a model fits, from the memory. The price is what one device costs
    to buy, in the scenario's currency (a rented pool gives ``cloud_price_per_hour`` instead).
    """

    name: ShortText
    kind: HardwareKind
    memory_gib: Annotated[float, Field(gt=0, le=65536)]
    memory_bandwidth_gb_per_s: Annotated[float, Field(gt=0, le=100_000)]
    cores: Annotated[int, Field(ge=1, le=4096)] | None = None
    """Informational: decode speed is bounded by bandwidth; the batching gain is per precision."""
    cpu_features: Annotated[list[CpuFeature], Field(max_length=MAX_CPU_FEATURES)] = []
    price: Money | None = None
    watts: Annotated[float, Field(ge=0, le=MAX_WATTS_PER_DEVICE)] | None = None


def _hardware_branch(value: Any) -> str:
    return "custom" if isinstance(value, dict | CustomHardware) else "catalog"


HardwareRef = Annotated[
    Annotated[str, Tag("catalog")] | Annotated[CustomHardware, Tag("custom")],
    Discriminator(_hardware_branch),
]
"""A catalog name, or a mapping that describes the machine (`CustomHardware`)."""
_UNION_TAGS = frozenset({"catalog", "custom"})


class Pool(_Strict):
    """A cluster of identical devices serving one model at one precision.

    Owned pools need an electricity price; rented pools give ``cloud_price_per_hour`` per device
    instead. Unset purchase price and watts fall back to the catalog (converted at the
    scenario's rate).
    """

    name: ShortText
    hardware: HardwareRef
    model: str
    precision: Precision
    devices: Annotated[int, Field(gt=0, le=MAX_DEVICES)]
    purchase_price: Money | None = None
    cloud_price_per_hour: Money | None = None
    amortisation_years: Annotated[float, Field(gt=0, le=MAX_AMORTISATION_YEARS)] = 3.0
    watts: Annotated[float, Field(ge=0, le=MAX_WATTS_PER_DEVICE)] | None = None
    pue: Annotated[float, Field(ge=MIN_PUE, le=MAX_PUE)] = 1.58
    electricity_price_per_kwh: Money | None = None
    staff_cost_per_year: Money = 0.0
    model_updates: Money = 0.0
    context_tokens: Annotated[int, Field(gt=0, le=MAX_CONTEXT_TOKENS)] = 4096
    utilisation: Annotated[float, Field(gt=0, le=1)] = 0.5
    calibration: PoolCalibration | None = None

    @field_validator("hardware")
    @classmethod
    def _known_hardware(cls, value: str | CustomHardware) -> str | CustomHardware:
        if isinstance(value, str) and value not in HARDWARE:
            raise ValueError(f"unknown hardware {value!r}; allowed: {', '.join(HARDWARE)}")
        return value

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in MODELS:
            raise ValueError(f"unknown model {value!r}; allowed: {', '.join(MODELS)}")
        return value

    @model_validator(mode="after")
    def _owned_needs_tariff(self) -> Self:
        if self.cloud_price_per_hour is None and self.electricity_price_per_kwh is None:
            raise ValueError(
                "electricity_price_per_kwh is required for an owned pool "
                "(or give cloud_price_per_hour for a rented one)"
            )
        return self

    @model_validator(mode="after")
    def _custom_needs_price(self) -> Self:
        custom = self.hardware
        if isinstance(custom, CustomHardware) and not self.rented:
            if self.purchase_price is None and custom.price is None:
                raise ValueError(
                    "hardware.price (or purchase_price) is required for an owned pool of "
                    "custom hardware: the catalog has no price for it"
                )
            if self.watts is None and custom.watts is None:
                raise ValueError(
                    "hardware.watts (or watts) is required for an owned pool of custom "
                    "hardware: the catalog has no power draw for it"
                )
        return self

    @property
    def rented(self) -> bool:
        return self.cloud_price_per_hour is not None

    @property
    def hardware_name(self) -> str:
        return self.hardware if isinstance(self.hardware, str) else self.hardware.name


class Scenario(_Strict):
    """Pools to compare, the demand they must carry, and the cloud API they replace."""

    currency: Currency
    cny_per_usd: ExchangeRate
    exchange_rates: Annotated[dict[Currency, ExchangeRate], Field(max_length=16)] = {}
    """Units of each further currency per USD (USD is 1; CNY is ``cny_per_usd``)."""
    period_years: Annotated[float, Field(gt=0, le=MAX_PERIOD_YEARS)]
    demand: Demand
    cloud_api: CloudApi
    pools: Annotated[list[Pool], Field(min_length=1, max_length=MAX_POOLS)]

    @field_validator("exchange_rates")
    @classmethod
    def _only_further_currencies(cls, rates: dict[str, float]) -> dict[str, float]:
        fixed = sorted({"USD", "CNY"} & set(rates))
        if fixed:
            raise ValueError(
                f"{', '.join(fixed)}: USD is 1 per USD and CNY is cny_per_usd; list other "
                "currencies here"
            )
        return rates

    @model_validator(mode="after")
    def _unique_pool_names(self) -> Self:
        names = [pool.name for pool in self.pools]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"pool names must be unique; repeated: {', '.join(duplicates)}")
        return self


class ScenarioError(ValueError):
    """Every problem in a scenario, one line each, field path first."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid cost scenario:\n" + "\n".join(f"  {p}" for p in problems))


def parse_scenario(data: object) -> Scenario:
    """Validate a parsed YAML/JSON document; raises ScenarioError naming each bad field."""
    if not isinstance(data, dict):
        raise ScenarioError([f"(top level): expected a mapping, got {type(data).__name__}"])
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(describe_errors(exc)) from None


def describe_errors(exc: ValidationError) -> list[str]:
    """One readable line per error: ``pools[0].devices: required field is missing``."""
    lines = []
    for error in exc.errors(include_url=False):
        path = _path(error["loc"])
        kind = error["type"]
        if kind == "missing":
            message = "required field is missing"
        elif kind == "extra_forbidden":
            message = "unknown field (check the spelling; see docs/cost-model.md)"
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{path or '(top level)'}: {message}")
    return lines


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if part in _UNION_TAGS and text.endswith(".hardware"):
            continue  # the branch of `HardwareRef` pydantic took: not a field the user wrote
        if isinstance(part, int):
            text += f"[{part}]"
        elif text:
            text += f".{part}"
        else:
            text = part
    return text
