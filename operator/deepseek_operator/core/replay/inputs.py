"""A DeepSeekDeployment, its PoolProfiles and the pools' node counts as one replay's inputs.

The pools are resolved once with the operator's own `reconcile.resolve` (the same fit,
throughput and prices the operator plans with); the replay's pools never change size, so each
step's `decide` reuses that resolution instead of redoing it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from deepseek_operator.api.deployment import DeepSeekDeployment
from deepseek_operator.api.pool import PoolProfile
from deepseek_operator.core.planning.inputs import PlanningInputError, PoolSetup
from deepseek_operator.core.planning.planner import PlanSpec, PoolOption
from deepseek_operator.core.planning.reconcile import Resolution, Snapshot, resolve
from deepseek_operator.core.replay.engine import ReplayPool, RolloutRules


@dataclass(frozen=True)
class ReplayInputs:
    deployment: DeepSeekDeployment
    resolution: Resolution
    pools: tuple[ReplayPool, ...]
    rules: RolloutRules
    reconcile_interval_seconds: float

    @property
    def spec(self) -> PlanSpec:
        return self.resolution.spec

    @property
    def options(self) -> tuple[PoolOption, ...]:
        return self.resolution.options

    @property
    def currency(self) -> str:
        return self.resolution.currency


def replay_pools(options: Sequence[PoolOption]) -> tuple[ReplayPool, ...]:
    """The pools a replay can run replicas on: those whose variant fits and has a speed."""
    return tuple(
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


def replay_inputs(
    deployment: DeepSeekDeployment,
    profiles: Sequence[PoolProfile],
    setups: Mapping[str, PoolSetup],
) -> ReplayInputs:
    """Everything a replay needs, or an error naming the missing pool or field.

    Prices are converted to the deployment's currency with the default rates extended by its
    ``costModel.exchangeRates``; a currency without a rate raises ``UnknownCurrencyRate``.
    """
    by_name = {str(p.metadata.get("name", "")): p for p in profiles}
    unknown = sorted(set(setups) - set(by_name))
    if unknown:
        raise PlanningInputError(f"nodes/startup given for unknown pools: {', '.join(unknown)}")
    spec = deployment.spec
    for index, variant in enumerate(spec.variants):
        if variant.pool not in by_name:
            known = ", ".join(sorted(by_name)) or "none"
            raise PlanningInputError(
                f"spec.variants[{index}].pool: no PoolProfile named {variant.pool!r} "
                f"(pools file has: {known})"
            )
    resolution = resolve(Snapshot(deployment, by_name, setups=setups))
    pools = replay_pools(resolution.options)
    if not pools:
        reasons = "; ".join(f"{o.name}: {o.fit_reason}" for o in resolution.options)
        raise PlanningInputError(f"no variant fits its pool: {reasons}")
    return ReplayInputs(
        deployment=deployment,
        resolution=resolution,
        pools=pools,
        rules=RolloutRules(spec.migration.max_surge_gpus),
        reconcile_interval_seconds=float(spec.reconcile_interval_seconds),
    )
