"""Condition types, reasons, and the one pure function that updates a condition list.

`set_condition` is the Python counterpart of `meta.SetStatusCondition`: `lastTransitionTime`
moves only when `status` changes, so watchers can tell a real transition from a refreshed
message. Time is an argument; nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from deepseek_operator.api.status import Condition, ConditionStatus

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
METRICS_AVAILABLE = "MetricsAvailable"
CAPACITY_AVAILABLE = "CapacityAvailable"
CONTENDED = "Contended"
"""Set by the operator once the cluster-wide arbiter has a share for the deployment: True when
it was placed below its preference because others needed the capacity (reason Displaced), or
holds capacity others wanted (reason Displacing); the message names the other deployments."""

DEPLOYMENT_CONDITION_TYPES: tuple[str, ...] = (
    READY,
    PROGRESSING,
    DEGRADED,
    METRICS_AVAILABLE,
    CAPACITY_AVAILABLE,
)
"""Every type the operator sets on a DeepSeekDeployment, Unknown from its first visit on."""

# Reasons for problems the CRD schema cannot see; the operator reports them on Ready=False.
REASON_UNKNOWN_TIME_ZONE = "UnknownTimeZone"
REASON_POOL_NOT_FOUND = "PoolNotFound"
REASON_MODEL_FITS_NO_POOL = "ModelFitsNoPool"
REASON_UNKNOWN_CATALOG_KEY = "UnknownCatalogKey"
REASON_UNKNOWN_ACCELERATOR = "UnknownAccelerator"
"""A variant's PoolProfile names a hardware.acceleratorModel the hardware catalog lacks."""
REASON_UNKNOWN_CURRENCY_RATE = "UnknownCurrencyRate"
"""A pool is priced in a currency, or the reports are in one, with no exchange rate to convert
between them (spec.costModel.exchangeRates states further rates)."""
REASON_NOT_YET_OBSERVED = "NotYetObserved"

# Reasons for a deliberate standstill, on Progressing=False.
REASON_PAUSED = "Paused"
"""spec.paused is true: the operator changes nothing."""
REASON_RECOMMEND_ONLY = "RecommendOnly"
"""spec.mode is recommend: the plan is reported in status, workloads are not touched."""


def set_condition(
    conditions: Sequence[Condition],
    *,
    type: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    observed_generation: int,
    now: datetime,
) -> list[Condition]:
    """A copy of `conditions` with `type` set; the list order is kept, new types go last.

    `lastTransitionTime` is `now` for a new type or a changed status, and is kept otherwise,
    while reason, message and observedGeneration always take the new values.
    """
    previous = find_condition(conditions, type)
    transition_time = (
        previous.last_transition_time if previous is not None and previous.status == status else now
    )
    updated = Condition(
        type=type,
        status=status,
        reason=reason,
        message=message,
        observed_generation=observed_generation,
        last_transition_time=transition_time,
    )
    if previous is None:
        return [*conditions, updated]
    return [updated if condition.type == type else condition for condition in conditions]


def find_condition(conditions: Sequence[Condition], type: str) -> Condition | None:
    """The condition of this type, or None."""
    return next((condition for condition in conditions if condition.type == type), None)


def initial_conditions(
    conditions: Sequence[Condition], *, observed_generation: int, now: datetime
) -> list[Condition]:
    """Every deployment condition type present, Unknown where not yet decided (first visit)."""
    result = list(conditions)
    for condition_type in DEPLOYMENT_CONDITION_TYPES:
        if find_condition(result, condition_type) is None:
            result = set_condition(
                result,
                type=condition_type,
                status="Unknown",
                reason=REASON_NOT_YET_OBSERVED,
                message="The operator has not decided this yet.",
                observed_generation=observed_generation,
                now=now,
            )
    return result
