"""DeepSeekDeployment: one model served from whichever pools cost least while meeting its SLO."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field

from deepseek_operator.api.base import (
    DNS_1035_LABEL_PATTERN,
    ApiModel,
    ApiResource,
    CrossFieldRule,
)
from deepseek_operator.api.status import DeepSeekDeploymentStatus
from deepseek_operator.api.vocabulary import (
    ENGINE_PRECISIONS,
    MAX_CONTEXT_TOKENS,
    MAX_PUE,
    MAX_REPLICAS,
    MAX_UNITS_PER_USD,
    MIN_PUE,
    TENSOR_PARALLEL_ENGINES,
    CalendarDate,
    ClockTime,
    Currency,
    Engine,
    HttpAddress,
    Mode,
    Money,
    Path,
    Policy,
    Precision,
    PromQL,
    ResourceName,
    ShortText,
    TimeZoneName,
    Weekday,
)

KIND = "DeepSeekDeployment"
PLURAL = "deepseekdeployments"
SHORT_NAMES = ("dsd",)

MAX_VARIANTS = 8
MAX_WINDOWS = 16
MAX_EXCEPTION_DATES = 64
MAX_EXCHANGE_RATES = 16


def _default_in_schema(model: type[ApiModel]) -> dict[str, Any]:
    """The CRD default of an object field: the model's own default, written out in full.

    The API server validates a default (CEL rules included) without filling in its nested
    defaults first, so `default: {}` would fail rules such as `self.min <= self.max`.
    """
    return {"default": model().to_json_dict()}


WEIGHTS_PATH_PATTERN = r"^(/[^/\x00-\x1f\x7f]+)+/?$"
"""An absolute path of one or more non-empty segments with no control characters."""
DOT_SEGMENT_PATTERN = r"(^|/)[.][.]?(/|$)"


class Weights(ApiModel):
    """Where the weights already are: the operator never downloads a model at run time."""

    cross_field_rules = (
        # The path is mounted into every replica's pod (a host path when no volume is named):
        # "/" would hand the node's whole file system to the model server, and a ".." segment
        # or a newline makes the mount mean something other than what the spec shows.
        CrossFieldRule(
            cel=f"self.path.matches(r'{WEIGHTS_PATH_PATTERN}') && "
            f"!self.path.matches(r'{DOT_SEGMENT_PATTERN}')",
            message="path must be an absolute path below / with no empty, '.' or '..' segments "
            "and no control characters",
            holds=lambda w: (
                re.fullmatch(WEIGHTS_PATH_PATTERN, w.path) is not None
                and re.search(DOT_SEGMENT_PATTERN, w.path) is None
            ),
            field_path=".path",
        ),
    )

    volume: ResourceName | None = Field(
        default=None,
        description="Name of a PersistentVolumeClaim in the same namespace that holds the "
        "weights, mounted read-only. Absent: `path` is a host path present on every node of "
        "the pools used.",
    )
    path: Path = Field(
        description="Absolute path of the model directory (or GGUF file for llama.cpp) inside "
        "the volume, or on the node when no volume is named."
    )


class ModelSpec(ApiModel):
    """What to serve: a model, its size and precision on disk, and where its weights are."""

    cross_field_rules = (
        # Exactly one: the catalog entry states the model's size, so a parameterCount beside a
        # catalogKey could only repeat it or contradict it.
        CrossFieldRule(
            cel="has(self.catalogKey) != has(self.parameterCount)",
            message="set exactly one of catalogKey and parameterCount, so the operator can size "
            "replicas (a catalog entry states the model's size)",
            holds=lambda m: (m.catalog_key is None) != (m.parameter_count is None),
        ),
    )

    name: ShortText = Field(
        description="Model name as served to clients (the OpenAI `model` field), e.g. "
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B."
    )
    catalog_key: ResourceName | None = Field(
        default=None,
        description="Key in the operator's model catalog (e.g. r1-distill-qwen-7b), which "
        "supplies layer count, KV-cache size and default throughput. Set this or "
        "parameterCount, not both.",
    )
    parameter_count: int | None = Field(
        default=None,
        ge=1_000_000,
        le=10_000_000_000_000,
        description="Total number of parameters, for models not in the catalog (e.g. 7620000000).",
        json_schema_extra={"format": "int64"},
    )
    precision: Precision = Field(
        default="bf16", description="Precision of the weights as stored on disk."
    )
    context_length: int = Field(
        default=8192,
        ge=256,
        le=MAX_CONTEXT_TOKENS,
        description="Longest sequence (prompt plus output, in tokens) a replica must hold; "
        "sizes the KV cache.",
    )
    weights: Weights = Field(description="Where the weights are stored.")


def _quoted(words: tuple[str, ...]) -> str:
    return ", ".join(f"'{word}'" for word in words)


def _precision_rule() -> CrossFieldRule:
    clauses = " || ".join(
        f"(self.engine == '{engine}' && self.precision in [{_quoted(allowed)}])"
        for engine, allowed in ENGINE_PRECISIONS.items()
    )
    listing = "; ".join(
        f"{engine}: {', '.join(allowed)}" for engine, allowed in ENGINE_PRECISIONS.items()
    )
    return CrossFieldRule(
        cel=clauses,
        message=f"precision is not supported by this engine ({listing})",
        holds=lambda v: v.precision in ENGINE_PRECISIONS[v.engine],
        field_path=".precision",
    )


class Variant(ApiModel):
    """How the model runs on one pool: engine, precision, tensor parallelism, fallback model."""

    cross_field_rules = (
        _precision_rule(),
        CrossFieldRule(
            cel=f"self.engine in [{_quoted(TENSOR_PARALLEL_ENGINES)}] || self.tensorParallel == 1",
            message="only "
            + ", ".join(TENSOR_PARALLEL_ENGINES)
            + " splits a replica across GPUs: tensorParallel must be 1 for other engines",
            holds=lambda v: v.engine in TENSOR_PARALLEL_ENGINES or v.tensor_parallel == 1,
            field_path=".tensorParallel",
        ),
    )

    pool: ResourceName = Field(description="Name of the PoolProfile this variant runs on.")
    precision: Precision = Field(
        default="bf16", description="Precision the engine runs the weights at on this pool."
    )
    engine: Engine = Field(default="vllm", description="Inference engine used on this pool.")
    tensor_parallel: Literal[1, 2, 4, 8] = Field(
        default=1,
        description="GPUs one replica spans (tensor parallel degree); only vllm supports more "
        "than 1. A replica never spans nodes.",
    )
    model: ModelSpec | None = Field(
        default=None,
        description="A smaller model to serve on this pool instead of spec.model, e.g. a "
        "distilled or 8-bit variant for CPU pools. Absent: spec.model.",
    )


class Replicas(ApiModel):
    """Bounds on the total number of replicas across all pools."""

    cross_field_rules = (
        CrossFieldRule(
            cel="self.min <= self.max",
            message="min must be less than or equal to max",
            holds=lambda r: r.min <= r.max,
            field_path=".min",
        ),
    )

    min: int = Field(
        default=1,
        ge=0,
        le=MAX_REPLICAS,
        description="Fewest replicas, summed over pools (0 allows scaling to zero).",
    )
    max: int = Field(
        default=4, ge=1, le=MAX_REPLICAS, description="Most replicas, summed over pools."
    )


class SLO(ApiModel):
    """The service level every replica must meet; throughput is planned with headroom."""

    min_tokens_per_second_per_request: float = Field(
        default=10.0,
        gt=0,
        le=10_000,
        description="Slowest acceptable output speed of one request, in tokens per second; "
        "pools whose variant is slower are not used.",
    )
    max_time_to_first_token_seconds: float = Field(
        default=2.0,
        gt=0,
        le=3600,
        description="Longest acceptable wait for the first token, in seconds.",
    )
    headroom_fraction: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="Spare capacity planned above measured demand: capacity ≥ demand × (1 + "
        "headroomFraction), grown in the pools that run. When they are full they serve the "
        "demand short of it: another pool is entered for demand, not for this headroom alone.",
    )


class SLOOverride(ApiModel):
    """Per-window SLO changes; absent fields keep spec.slo's value."""

    min_tokens_per_second_per_request: float | None = Field(
        default=None,
        gt=0,
        le=10_000,
        description="Replaces spec.slo.minTokensPerSecondPerRequest in this window (night "
        "traffic may accept slower tokens).",
    )
    max_time_to_first_token_seconds: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        description="Replaces spec.slo.maxTimeToFirstTokenSeconds in this window.",
    )
    headroom_fraction: float | None = Field(
        default=None, ge=0, le=1, description="Replaces spec.slo.headroomFraction in this window."
    )


class Window(ApiModel):
    """A recurring time window with its own placement policy, replica bounds and SLO."""

    cross_field_rules = (
        CrossFieldRule(
            cel="self.start != self.end",
            message="start and end must differ (a window may cross midnight, but not be empty)",
            holds=lambda w: w.start != w.end,
            field_path=".end",
        ),
    )

    name: ResourceName = Field(description="Name of the window, shown in status and events.")
    days: list[Weekday] = Field(
        default=["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
        min_length=1,
        max_length=7,
        description="Days of the week on which the window starts; a window that crosses "
        "midnight ends on the next day.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    start: ClockTime = Field(description='Start time "HH:MM" (24 h, inclusive).')
    end: ClockTime = Field(
        description='End time "HH:MM" (24 h, exclusive); earlier than start means the window '
        "crosses midnight."
    )
    policy: Policy = Field(
        default="costOptimal",
        description="Placement policy in this window: costOptimal (cheapest pools that meet "
        "the SLO), preferGPU / preferCPU (a cost bias: the other kind's replicas count 100× "
        "their price, so it is used only where the preferred kind lacks capacity, replica room "
        "or SLO), gpuOnly / cpuOnly (only that kind).",
    )
    replicas: Replicas | None = Field(
        default=None, description="Replica bounds in this window; absent: spec.replicas."
    )
    slo: SLOOverride | None = Field(
        default=None, description="SLO changes in this window; absent: spec.slo."
    )


class Schedule(ApiModel):
    """Time windows in one time zone; outside every window, defaultPolicy applies."""

    time_zone: TimeZoneName = Field(
        default="UTC",
        description="IANA time zone the windows are written in, e.g. Asia/Shanghai; daylight "
        "saving transitions follow it.",
    )
    default_policy: Policy = Field(
        default="costOptimal", description="Policy outside every window and on exception dates."
    )
    windows: list[Window] = Field(
        default=[],
        max_length=MAX_WINDOWS,
        description="Windows, by unique name. When windows overlap, the first listed wins.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    exception_dates: list[CalendarDate] = Field(
        default=[],
        max_length=MAX_EXCEPTION_DATES,
        description='Dates "YYYY-MM-DD" (holidays) on which no window starts.',
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


class CapacityCorrection(ApiModel):
    """How measured throughput corrects each pool's calibrated (or estimated) figure."""

    cross_field_rules = (
        CrossFieldRule(
            cel="self.minFactor <= 1.0 && self.maxFactor >= 1.0",
            message="minFactor must be at most 1 and maxFactor at least 1 (1 is no correction)",
            holds=lambda c: c.min_factor <= 1.0 <= c.max_factor,
            field_path=".minFactor",
        ),
    )

    enabled: bool = Field(
        default=True,
        description="Learn each pool's measured output tokens/s per Ready replica and plan with "
        "it once minSamples samples agree; false: always plan with the calibrated figure.",
    )
    min_samples: int = Field(
        default=8,
        ge=1,
        le=1000,
        description="Samples (one per new Prometheus sample of a pool whose replica count has "
        "been steady for the rate window, with at least one running request per replica) "
        "before the factor is used.",
    )
    min_factor: float = Field(
        default=0.25,
        ge=0.01,
        le=1,
        description="Smallest measured ÷ calibrated ratio accepted; a lower one is refused "
        "(status says why) and the calibrated figure is kept.",
    )
    max_factor: float = Field(
        default=4.0,
        ge=1,
        le=100,
        description="Largest measured ÷ calibrated ratio accepted; a higher one is refused.",
    )


class Load(ApiModel):
    """Where measured demand comes from; without it the operator plans from the schedule alone."""

    prometheus_address: HttpAddress = Field(
        description="Base URL of the Prometheus HTTP API, e.g. http://prometheus.monitoring:9090."
    )
    tokens_per_second_query: PromQL | None = Field(
        default=None,
        description="PromQL returning one number: output tokens per second demanded now. "
        "Absent (recommended): the engines' own series, summed over the deployment's pools and "
        "read for every deployment at once with one batched query per Prometheus.",
    )
    queue_depth_query: PromQL | None = Field(
        default=None,
        description="PromQL returning one number: requests waiting in queue. Absent: the "
        "engines' own queue series, from the same batched query.",
    )
    queue_depth_threshold: int = Field(
        default=0,
        ge=0,
        le=1_000_000,
        description="Waiting requests above this count as unmet demand: each adds the SLO's "
        "minTokensPerSecondPerRequest, so a spike scales up before the token rate catches up.",
    )
    stale_after_seconds: int = Field(
        default=120,
        ge=5,
        le=3600,
        description="A sample older than this is stale: metrics count as unavailable and the "
        "placement is held.",
    )
    capacity_correction: CapacityCorrection = Field(
        default_factory=CapacityCorrection,
        json_schema_extra=_default_in_schema(CapacityCorrection),
        description="Correction of each pool's throughput from measured tokens/s.",
    )
    scale_up_stabilization_seconds: int = Field(
        default=0,
        ge=0,
        le=3600,
        description="Demand must stay higher for this long before replicas are added; 0 (the "
        "default) scales up at once, since a late scale-up drops requests.",
    )
    scale_down_stabilization_seconds: int = Field(
        default=600,
        ge=0,
        le=86400,
        description="Demand must stay lower for this long before replicas are removed.",
    )
    tolerance_fraction: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Replicas are added only when the capacity needed (demand × (1 + "
        "headroomFraction)) exceeds the running capacity by more than this fraction, as the "
        "HorizontalPodAutoscaler's tolerance (default 0.1) ignores small changes; it keeps one "
        "replica from coming and going while demand sits at a replica boundary.",
    )
    forecast: bool = Field(
        default=True,
        description="Learn the daily demand profile from measured demand (kept in "
        "status.history.forecast): start replicas ahead of a rise it expects beyond the "
        "headroom, and follow a fall it expects without waiting out the scale-down window. "
        "Used only after two days of history and while its error stays within 20 %. false: "
        "plan from measured demand alone.",
    )


class Migration(ApiModel):
    """How moves between pools are paced: make-before-break, bounded surge, no flapping."""

    min_available: int = Field(
        default=1,
        ge=0,
        le=MAX_REPLICAS,
        description="Ready replicas never drop below this during a move (capped by the "
        "replicas that exist).",
    )
    max_surge_gpus: int = Field(
        default=8,
        ge=0,
        le=1024,
        alias="maxSurgeGPUs",
        description="Extra GPUs a move may hold at once while new replicas start before old "
        "ones stop.",
    )
    cooldown_seconds: int = Field(
        default=600, ge=0, le=86400, description="Least time between two moves."
    )
    min_savings_percent: float = Field(
        default=10.0,
        ge=0,
        le=100,
        description="A move for cost alone must cut cost per hour by at least this percentage.",
    )
    min_dwell_seconds: int = Field(
        default=900,
        ge=0,
        le=86400,
        description="A replica stays on a pool at least this long before a cost move takes it "
        "away.",
    )


class ExchangeRate(ApiModel):
    """How many units of one currency a US dollar buys, for converting pool prices."""

    cross_field_rules = (
        CrossFieldRule(
            cel="self.currency != 'USD' || self.unitsPerUSD == 1.0",
            message="USD is the reference currency: its unitsPerUSD is 1",
            holds=lambda r: r.currency != "USD" or r.units_per_usd == 1.0,
            field_path=".unitsPerUSD",
        ),
    )

    currency: Currency = Field(description="ISO 4217 code of the currency, e.g. EUR.")
    units_per_usd: float = Field(
        gt=0,
        le=MAX_UNITS_PER_USD,
        alias="unitsPerUSD",
        description="Units of the currency that one US dollar buys, e.g. 0.92 for EUR.",
    )
    source: ShortText | None = Field(
        default=None,
        description='Where the rate comes from and its date, e.g. "ECB reference rate '
        '2026-11-27"; kept with the rate for whoever reads the figures.',
    )


class CostModelOverrides(ApiModel):
    """Values that replace the PoolProfiles' cost inputs for this deployment's reports."""

    currency: Currency | None = Field(
        default=None,
        description="Currency of the reports; absent: the pools' currency when they share one, "
        "else USD.",
    )
    exchange_rates: list[ExchangeRate] = Field(
        default=[],
        max_length=MAX_EXCHANGE_RATES,
        description="Rates for converting pool prices into the reports' currency, by unique "
        "currency. They extend or replace the operator's own table, which holds only USD (1) "
        "and CNY (7.0 per USD, the source article's conversion). A pool priced in a currency "
        "with no rate is reported as UnknownCurrencyRate, never converted as another currency.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["currency"],
        },
    )
    electricity_price_per_kwh: Money | None = Field(
        default=None,
        alias="electricityPricePerKWh",
        description="Electricity price per kWh, replacing every pool's value.",
    )
    pue: float | None = Field(
        default=None,
        ge=MIN_PUE,
        le=MAX_PUE,
        description="Power usage effectiveness of the data centre, replacing every pool's value.",
    )
    cloud_api_price_per_million_tokens: Money | None = Field(
        default=None,
        alias="cloudAPIPricePerMillionTokens",
        description="Price per million output tokens of a hosted API, the comparison for "
        "status.savingsVsCloudAPIPercent.",
    )
    model_update_cost_per_year: Money | None = Field(
        default=None,
        description="Yearly cost of updating and re-validating the model, spread over the "
        "hours of a year.",
    )
    baseline_pool: ResourceName | None = Field(
        default=None,
        description="Pool whose all-GPU placement is the baseline for status.savingsPercent, "
        "one of the variants' pools; absent: the most expensive GPU pool among the variants.",
    )


MIN_AVAILABLE_WITHIN_MAX_REPLICAS = CrossFieldRule(
    cel="self.migration.minAvailable <= self.replicas.max",
    message="migration.minAvailable must be less than or equal to replicas.max",
    holds=lambda s: s.migration.min_available <= s.replicas.max,
    field_path=".migration.minAvailable",
)
"""A rule of any model holding both `replicas` and `migration` (the spec, a planning what-if)."""

MIN_AVAILABLE_WITHIN_WINDOW_MAX = CrossFieldRule(
    cel="self.schedule.windows.all(w, !has(w.replicas) || "
    "self.migration.minAvailable <= w.replicas.max)",
    message="migration.minAvailable must be less than or equal to the replicas.max of every window",
    holds=lambda s: all(
        w.replicas is None or s.migration.min_available <= w.replicas.max
        for w in s.schedule.windows
    ),
    field_path=".migration.minAvailable",
)
"""In a window whose replicas.max is below minAvailable, no move could keep minAvailable Ready
replicas, so none would ever finish; a rule of the same models as the one above."""

BASELINE_POOL_IS_A_VARIANT = CrossFieldRule(
    cel="!has(self.costModel) || !has(self.costModel.baselinePool) || "
    "self.variants.exists(v, v.pool == self.costModel.baselinePool)",
    message="costModel.baselinePool must be the pool of one of the variants",
    holds=lambda s: (
        s.cost_model is None
        or s.cost_model.baseline_pool is None
        or any(v.pool == s.cost_model.baseline_pool for v in s.variants)
    ),
    field_path=".costModel.baselinePool",
)
"""savingsPercent compares with running every replica on the baseline pool, which needs a
variant there to price it."""


class DeepSeekDeploymentSpec(ApiModel):
    """The desired state: what to serve, where it may run, and the rules for moving it."""

    cross_field_rules = (
        MIN_AVAILABLE_WITHIN_MAX_REPLICAS,
        MIN_AVAILABLE_WITHIN_WINDOW_MAX,
        BASELINE_POOL_IS_A_VARIANT,
    )

    model: ModelSpec = Field(description="The model to serve.")
    variants: list[Variant] = Field(
        min_length=1,
        max_length=MAX_VARIANTS,
        description="How the model runs on each pool it may use, one entry per pool; pools "
        "not listed are never used.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["pool"]},
    )
    replicas: Replicas = Field(
        default_factory=Replicas,
        json_schema_extra=_default_in_schema(Replicas),
        description="Replica bounds.",
    )
    slo: SLO = Field(
        default_factory=SLO,
        json_schema_extra=_default_in_schema(SLO),
        description="Service level objective.",
    )
    schedule: Schedule = Field(
        default_factory=Schedule,
        json_schema_extra=_default_in_schema(Schedule),
        description="Time windows and policies.",
    )
    load: Load | None = Field(
        default=None, description="Measured demand; absent: plan for replicas.min per window."
    )
    migration: Migration = Field(
        default_factory=Migration,
        json_schema_extra=_default_in_schema(Migration),
        description="How moves are paced.",
    )
    cost_model: CostModelOverrides | None = Field(
        default=None, description="Overrides of the pools' cost inputs."
    )
    reconcile_interval_seconds: int = Field(
        default=15,
        ge=5,
        le=3600,
        description="How often the operator re-plans even when nothing changed.",
    )
    paused: bool = Field(
        default=False,
        description="true: the operator changes nothing and reports Progressing=False, "
        "reason Paused.",
    )
    mode: Mode = Field(
        default="apply",
        description="apply: carry out the plan. recommend: plan and report in status, touch "
        "no workloads.",
    )
    priority: int = Field(
        default=0,
        ge=-1_000_000,
        le=1_000_000,
        description="When deployments compete for the same scarce pool, higher priority is "
        "served first: the arbiter gives each priority its least total cost among the splits "
        "that keep every higher priority at its own (a higher priority may move to an equally "
        "cheap pool to make room, never to a dearer one), and deployments of equal priority "
        "share at the least total cost.",
    )


class DeepSeekDeployment(ApiResource):
    """A DeepSeek model served across GPU and CPU pools at the lowest cost meeting its SLO."""

    # It names the Service in front of every pool: a DNS-1035 label (no leading digit).
    name_pattern = DNS_1035_LABEL_PATTERN

    api_version: Literal["serving.deepseek-operator.io/v1alpha1"] = Field(
        default="serving.deepseek-operator.io/v1alpha1", description="API version."
    )
    kind: Literal["DeepSeekDeployment"] = Field(default="DeepSeekDeployment", description="Kind.")
    metadata: dict[str, Any] = Field(default={}, description="Standard object metadata.")
    spec: DeepSeekDeploymentSpec = Field(description="Desired state.")
    status: DeepSeekDeploymentStatus | None = Field(
        default=None, description="Observed state, written by the operator."
    )
