"""Status of both kinds, written by the operator through the status subresource.

Conditions follow the Kubernetes API conventions (metav1.Condition): a list keyed by `type`,
`lastTransitionTime` that moves only when `status` does, and the `observedGeneration` the
decision was based on. Phases are deliberately absent: they are deprecated by those conventions.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BeforeValidator, Field, StringConstraints

from deepseek_operator.api.base import ApiModel
from deepseek_operator.api.vocabulary import (
    Currency,
    Engine,
    LabelValue,
    Policy,
    Precision,
    ResourceName,
)

CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"

ConditionType = Annotated[
    str, StringConstraints(min_length=1, max_length=316, pattern=CONDITION_TYPE_PATTERN)
]
ConditionReason = Annotated[
    str, StringConstraints(min_length=1, max_length=1024, pattern=CONDITION_REASON_PATTERN)
]
ConditionStatus = Literal["True", "False", "Unknown"]
RFC3339_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"


def _rfc3339(value: object) -> object:
    """Take only what the API server's `format: date-time` takes: an RFC 3339 string with a
    UTC offset (or a datetime). Lax parsing alone would also take "2026-11-28 09:00", naive
    times and Unix seconds, which the server refuses when the status is written."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or re.fullmatch(RFC3339_PATTERN, value) is None:
        raise ValueError(
            f"{value!r} is not an RFC 3339 date-time with a UTC offset, e.g. 2026-11-28T09:00:00Z"
        )
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339), Field(strict=False)]
"""RFC 3339 date-time with a UTC offset; strictness relaxed so the wire's strings parse into
datetimes, and naive datetimes are refused."""

MAX_CONDITIONS = 16
MAX_PLACEMENTS = 16
MAX_DEMAND_SAMPLES = 128
MAX_MOVES = 8
Percent = Annotated[float, Field(ge=-1_000_000, le=100)]


class Condition(ApiModel):
    """One aspect of the resource's state (metav1.Condition)."""

    type: ConditionType = Field(description="Type in CamelCase, e.g. Ready or MetricsAvailable.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    observed_generation: int = Field(
        default=0,
        ge=0,
        description="metadata.generation the condition was set from.",
        json_schema_extra={"format": "int64"},
    )
    last_transition_time: Timestamp = Field(
        description="When status last changed (not reason or message).",
        json_schema_extra={"format": "date-time"},
    )
    reason: ConditionReason = Field(description="Machine-readable CamelCase reason.")
    message: str = Field(default="", max_length=32768, description="Human-readable details.")


def _conditions_field() -> Any:
    return Field(
        default=[],
        max_length=MAX_CONDITIONS,
        description="Current conditions, one per type.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class PoolPlacement(ApiModel):
    """Replicas placed on one pool and what they cost."""

    pool: ResourceName = Field(description="PoolProfile name.")
    engine: Engine = Field(description="Engine the replicas run.")
    precision: Precision = Field(description="Precision the replicas run at.")
    model: Annotated[str, StringConstraints(max_length=253)] = Field(
        description="Model served on this pool (spec.model or the variant's fallback)."
    )
    replicas: int = Field(ge=0, le=1000, description="Replicas the plan wants on this pool.")
    ready_replicas: int = Field(default=0, ge=0, le=1000, description="Replicas Ready now.")
    gpus_per_replica: int = Field(default=0, ge=0, le=64, description="GPUs one replica holds.")
    cost_per_hour: float | None = Field(
        default=None, ge=0, description="Cost per hour of this pool's replicas."
    )


class Demand(ApiModel):
    """Load as last measured."""

    tokens_per_second: float = Field(ge=0, description="Output tokens per second demanded.")
    queue_depth: float | None = Field(default=None, ge=0, description="Requests waiting.")
    queue_tokens_per_second: float | None = Field(
        default=None,
        ge=0,
        description="Unmet demand the queue adds: requests above load.queueDepthThreshold "
        "times the SLO's minTokensPerSecondPerRequest. The plan covers tokensPerSecond plus this.",
    )
    observed_at: Timestamp = Field(
        description="When it was measured.", json_schema_extra={"format": "date-time"}
    )


class NextTransition(ApiModel):
    """The next scheduled change of time window."""

    at: Timestamp = Field(
        description="When the next window starts or ends.",
        json_schema_extra={"format": "date-time"},
    )
    window: LabelValue = Field(
        default="", description="Window that will be active then; empty: none (defaultPolicy)."
    )
    policy: Policy = Field(description="Policy that will apply then.")


class DemandSample(ApiModel):
    """Demand seen at one reconcile (or the span of several, once merged to fit)."""

    at: Timestamp = Field(
        description="When it was seen (the newest instant of a merged span).",
        json_schema_extra={"format": "date-time"},
    )
    tokens_per_second: float = Field(
        ge=0, description="Demand, or the highest demand of a merged span, in tokens/s."
    )
    low_tokens_per_second: float | None = Field(
        default=None, ge=0, description="Lowest demand of a merged span; absent: one sample."
    )


CorrectionState = Literal["Learning", "Applied", "Refused", "Disabled"]


class PoolThroughput(ApiModel):
    """One pool's throughput per replica: the calibrated (or estimated) figure, what was
    measured, and whether the plan uses the correction."""

    pool: ResourceName = Field(description="PoolProfile name.")
    calibrated_tokens_per_second: float = Field(
        ge=0,
        description="Output tokens/s one replica sustains according to the PoolProfile's "
        "calibration, else the roofline estimate.",
    )
    measured_tokens_per_second: float | None = Field(
        default=None,
        ge=0,
        description="The same figure as measured: calibrated × factor (absent: no sample yet).",
    )
    factor: float | None = Field(
        default=None, ge=0, description="Measured ÷ calibrated, averaged over the samples."
    )
    samples: int = Field(default=0, ge=0, description="Samples behind the factor.")
    planned_tokens_per_second: float = Field(
        ge=0, description="The figure the plan uses: measured when Applied, else calibrated."
    )
    state: CorrectionState = Field(
        description="Learning (fewer than minSamples), Applied, Refused (the factor is outside "
        "[minFactor, maxFactor]) or Disabled."
    )
    message: Annotated[str, StringConstraints(max_length=1024)] = Field(
        default="", description="Why, in words."
    )


class ThroughputMemory(ApiModel):
    """What the correction of one pool remembers between decisions."""

    pool: ResourceName = Field(description="PoolProfile name.")
    factor: float = Field(ge=0, description="Running mean of measured ÷ calibrated.")
    samples: int = Field(ge=0, description="Samples taken.")
    last_sample_at: Timestamp = Field(
        description="Newest Prometheus sample used (a sample is counted once).",
        json_schema_extra={"format": "date-time"},
    )


class PoolSteady(ApiModel):
    """A pool's Ready replica count and since when it has not changed."""

    pool: ResourceName = Field(description="PoolProfile name.")
    ready_replicas: int = Field(ge=0, le=1000, description="Ready replicas.")
    since: Timestamp = Field(
        description="When this count was first seen.", json_schema_extra={"format": "date-time"}
    )


class PoolReplicas(ApiModel):
    """A replica count on one pool."""

    pool: ResourceName = Field(description="PoolProfile name.")
    replicas: int = Field(ge=0, le=1000, description="Replicas.")


class PoolEntered(ApiModel):
    """When the deployment last got its first replica on a pool (for minDwellSeconds)."""

    pool: ResourceName = Field(description="PoolProfile name.")
    at: Timestamp = Field(description="When.", json_schema_extra={"format": "date-time"})


class MoveRecord(ApiModel):
    """A change of pools: replicas per pool before and after."""

    at: Timestamp = Field(
        description="When it was decided.", json_schema_extra={"format": "date-time"}
    )
    before: Annotated[str, StringConstraints(max_length=1024)] = Field(
        description='Pools before, e.g. "a100=2".'
    )
    after: Annotated[str, StringConstraints(max_length=1024)] = Field(
        description='Pools after, e.g. "cpu-xeon=3".'
    )


FORECAST_BINS = 96


class DemandForecast(ApiModel):
    """The demand profile the forecast learns: per quarter-hour of the local day (schedule's
    time zone), the mean demand seen there on earlier days, and how well it forecasts."""

    means: list[Annotated[float, Field(ge=0)]] = Field(
        default=[],
        max_length=FORECAST_BINS,
        description="Smoothed mean demand (tokens/s) per quarter-hour of the local day, from "
        "00:00; empty: nothing learned yet.",
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )
    days_seen: list[Annotated[int, Field(ge=0, le=1000)]] = Field(
        default=[],
        max_length=FORECAST_BINS,
        description="On how many days each quarter-hour has been seen.",
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )
    newest: list[Annotated[float, Field(ge=0)]] = Field(
        default=[],
        max_length=FORECAST_BINS,
        description="Mean demand (tokens/s) per quarter-hour on the newest day it was seen "
        "(0: not seen): the forecast starts replicas only for a rise this day showed too.",
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )
    bin_start: Timestamp | None = Field(
        default=None,
        description="Start of the quarter-hour being seen now.",
        json_schema_extra={"format": "date-time"},
    )
    bin_sum: float = Field(default=0.0, ge=0, description="Sum of the demand seen in it so far.")
    bin_samples: int = Field(default=0, ge=0, description="Readings seen in it so far.")
    level: float = Field(
        default=1.0, gt=0, description="Recent demand ÷ profile (today against the usual day)."
    )
    error_fraction: float | None = Field(
        default=None, ge=0, description="Smoothed relative error of the forecasts checked."
    )
    checked: int = Field(
        default=0, ge=0, le=1000, description="Quarter-hours whose forecast has been checked."
    )


class DecisionHistory(ApiModel):
    """What the operator remembers between decisions, kept here so a restart loses nothing:
    demand seen within the stabilisation windows, recent moves (cooldownSeconds), when each pool
    was entered (minDwellSeconds), the plan in force and the replicas last written."""

    effective_demand_tokens_per_second: float | None = Field(
        default=None, ge=0, description="Stabilised demand the last plan was made for."
    )
    demand_samples: list[DemandSample] = Field(
        default=[],
        max_length=MAX_DEMAND_SAMPLES,
        description="Demand seen within the longer stabilisation window, oldest first.",
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )
    moves: list[MoveRecord] = Field(
        default=[],
        max_length=MAX_MOVES,
        description="The latest moves, oldest first.",
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )
    pools_entered: list[PoolEntered] = Field(
        default=[],
        max_length=MAX_PLACEMENTS,
        description="When each pool in use was entered.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["pool"]},
    )
    target: list[PoolReplicas] = Field(
        default=[],
        max_length=MAX_PLACEMENTS,
        description="The plan in force: replicas per pool once every move completes.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["pool"]},
    )
    written: list[PoolReplicas] = Field(
        default=[],
        max_length=MAX_PLACEMENTS,
        description="Replicas last written to each pool's Deployment (a step towards target).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["pool"]},
    )
    throughput: list[ThroughputMemory] = Field(
        default=[],
        max_length=MAX_PLACEMENTS,
        description="The capacity correction learnt per pool.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["pool"]},
    )
    steady: list[PoolSteady] = Field(
        default=[],
        max_length=MAX_PLACEMENTS,
        description="Ready replicas per pool and since when (a sample needs a steady pool).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["pool"]},
    )
    forecast: DemandForecast | None = Field(
        default=None, description="The demand profile the forecast has learned."
    )


class DeepSeekDeploymentStatus(ApiModel):
    """What the operator observed, decided and did."""

    observed_generation: int = Field(
        default=0,
        ge=0,
        description="metadata.generation of the spec the current plan was made from.",
        json_schema_extra={"format": "int64"},
    )
    conditions: list[Condition] = _conditions_field()
    placement: list[PoolPlacement] = Field(
        default=[],
        max_length=MAX_PLACEMENTS,
        description="Replicas per pool.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["pool"]},
    )
    pools: Annotated[str, StringConstraints(max_length=1024)] = Field(
        default="", description='Pools in use with replica counts, e.g. "a100=2,cpu-xeon=1".'
    )
    desired_replicas: int = Field(default=0, ge=0, le=1000, description="Replicas planned.")
    ready_replicas: int = Field(default=0, ge=0, le=1000, description="Replicas Ready.")
    active_window: LabelValue = Field(
        default="", description="Time window in force; empty: none (defaultPolicy)."
    )
    policy: Policy | None = Field(default=None, description="Placement policy in force.")
    currency: Currency | None = Field(default=None, description="Currency of the cost fields.")
    cost_per_hour: float | None = Field(
        default=None, ge=0, description="Cost per hour of the current placement."
    )
    cost_per_million_tokens: float | None = Field(
        default=None, ge=0, description="Cost per million output tokens at the measured demand."
    )
    baseline_cost_per_hour: float | None = Field(
        default=None,
        ge=0,
        description="Cost per hour of serving the same demand on the baseline GPU pool alone.",
    )
    savings_percent: Percent | None = Field(
        default=None, description="Savings against the all-GPU baseline, in percent."
    )
    savings_vs_cloud_api_percent: Percent | None = Field(
        default=None,
        alias="savingsVsCloudAPIPercent",
        description="Savings against spec.costModel.cloudAPIPricePerMillionTokens, in percent.",
    )
    demand: Demand | None = Field(default=None, description="Last measured load.")
    capacity_tokens_per_second: float | None = Field(
        default=None, ge=0, description="Output tokens per second the placement can serve."
    )
    capacity_correction: list[PoolThroughput] = Field(
        default=[],
        max_length=MAX_PLACEMENTS,
        description="Per pool in use: calibrated and measured tokens/s per replica, and the "
        "correction factor the plan uses.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["pool"]},
    )
    reason: Annotated[str, StringConstraints(max_length=1024)] = Field(
        default="", description="Why the current placement was chosen, in words."
    )
    next_transition: NextTransition | None = Field(
        default=None, description="The next scheduled change of window."
    )
    last_move_time: Timestamp | None = Field(
        default=None,
        description="When replicas last moved between pools (for cooldownSeconds).",
        json_schema_extra={"format": "date-time"},
    )
    last_move: Annotated[str, StringConstraints(max_length=1024)] = Field(
        default="", description='The last move, e.g. "a100=2 -> cpu-xeon=3".'
    )
    history: DecisionHistory | None = Field(
        default=None, description="The operator's memory between decisions (internal)."
    )


class PoolProfileStatus(ApiModel):
    """What the operator sees of the pool's nodes."""

    observed_generation: int = Field(
        default=0,
        ge=0,
        description="metadata.generation last observed.",
        json_schema_extra={"format": "int64"},
    )
    conditions: list[Condition] = _conditions_field()
    nodes: int = Field(default=0, ge=0, description="Nodes matching the node selector.")
    allocatable_gpus: int = Field(
        default=0, ge=0, alias="allocatableGPUs", description="nvidia.com/gpu allocatable, summed."
    )
    cost_per_hour: float | None = Field(
        default=None, ge=0, description="Cost per hour of one node of this pool."
    )
