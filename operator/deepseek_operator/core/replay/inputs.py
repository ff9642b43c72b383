"""A DeepSeekDeployment, its PoolProfiles and the pools' node counts as one replay's inputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from deepseek_operator.api.deployment import DeepSeekDeployment
from deepseek_operator.api.pool import PoolProfile
from deepseek_operator.core.costing.cost import DEFAULT_EXCHANGE_RATES, ExchangeRates
from deepseek_operator.core.planning.inputs import (
    PlanningInputError,
    PoolSetup,
    exchange_rates,
    plan_spec,
    pool_option,
    report_currency,
)
from deepseek_operator.core.planning.planner import PlanSpec, PoolOption
from deepseek_operator.core.replay.engine import ReplayPool, RolloutRules


@dataclass(frozen=True)
class ReplayInputs:
    spec: PlanSpec
    options: tuple[PoolOption, ...]
    pools: tuple[ReplayPool, ...]
    rules: RolloutRules
    reconcile_interval_seconds: float
    currency: str


def replay_inputs(
    deployment: DeepSeekDeployment,
    profiles: Sequence[PoolProfile],
    setups: Mapping[str, PoolSetup],
    rates: ExchangeRates = DEFAULT_EXCHANGE_RATES,
) -> ReplayInputs:
    """Everything a replay needs, or an error naming the missing pool or field.

    Prices are converted to the deployment's currency with ``rates`` extended by its
    ``costModel.exchangeRates``; a currency without a rate raises ``UnknownCurrencyRate``.
    """
    by_name = {str(p.metadata.get("name", "")): p for p in profiles}
    unknown = sorted(set(setups) - set(by_name))
    if unknown:
        raise PlanningInputError(f"nodes/startup given for unknown pools: {', '.join(unknown)}")
    spec = deployment.spec
    currency = report_currency(spec, profiles)
    rates = exchange_rates(spec, rates)
    options: list[PoolOption] = []
    for index, variant in enumerate(spec.variants):
        profile = by_name.get(variant.pool)
        if profile is None:
            known = ", ".join(sorted(by_name)) or "none"
            raise PlanningInputError(
                f"spec.variants[{index}].pool: no PoolProfile named {variant.pool!r} "
                f"(pools file has: {known})"
            )
        setup = setups.get(variant.pool, PoolSetup())
        options.append(pool_option(deployment, variant, index, profile, setup, currency, rates))
    pools = tuple(
        ReplayPool(
            name=o.name,
            kind=o.kind,
            cost_per_replica_hour=o.replica_cost_per_hour,
            tokens_per_second_per_replica=o.tokens_per_second_per_replica,
            startup_seconds=o.startup_seconds,
            max_replicas=o.capacity_replicas,
            gpus_per_replica=o.gpus_per_replica,
        )
        for o in options
        if o.fits and o.tokens_per_second_per_replica > 0
    )
    if not pools:
        reasons = "; ".join(f"{o.name}: {o.fit_reason}" for o in options)
        raise PlanningInputError(f"no variant fits its pool: {reasons}")
    return ReplayInputs(
        spec=plan_spec(spec),
        options=tuple(options),
        pools=pools,
        rules=RolloutRules(spec.migration.min_available, spec.migration.max_surge_gpus),
        reconcile_interval_seconds=float(spec.reconcile_interval_seconds),
        currency=currency,
    )
