"""From every DeepSeekDeployment in the cluster to the arbiter's claims, and its decision.

Pure, like `reconcile.decide()`, and built from the same inputs, so nothing is computed twice
in two ways: each claim comes from `reconcile.resolve` (the pools a deployment names, their
cost per replica-hour and tokens/s per replica, with its learnt capacity correction), and
`planner.candidates` (the pools its active window allows, the cost its objective gives them,
its replica bounds and headroom). The demand is the one its last decision recorded in status
(the stabilised demand, else the last reading), never a fresh reading, and so is the placement
in force (`status.history.target`), which the arbiter keeps while no new split saves enough:
every operator process then sees the same inputs and computes the same split.

The pools' state is the arbitrated view: per node, the free room plus what the arbitrated
deployments' own pods hold there (a deployment's pods are its claim's to keep or give up);
other workloads' pods, and paused or recommend-only deployments' pods, stay counted as used.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from deepseek_operator.api.deployment import DeepSeekDeployment
from deepseek_operator.api.pool import PoolProfile
from deepseek_operator.core.planning import correction, inputs, reconcile
from deepseek_operator.core.planning.arbiter import Arbitration, Claim, ClaimOption, arbitrate
from deepseek_operator.core.planning.planner import candidates


@dataclass(frozen=True)
class FleetDecision:
    arbitration: Arbitration
    claims: tuple[Claim, ...]
    valid_until: datetime | None
    """The next window boundary of any claimant: its bounds or pools may change then."""


def takes_part(dsd: DeepSeekDeployment) -> bool:
    """Whether a deployment claims capacity: it acts (mode apply, not paused) and is not being
    deleted. The others' pods stay where they are and count as used."""
    deleting = dsd.metadata.get("deletionTimestamp") is not None
    return dsd.spec.mode == "apply" and not dsd.spec.paused and not deleting


def key_of(dsd: DeepSeekDeployment) -> str:
    return f"{dsd.metadata.get('namespace') or ''}/{dsd.metadata.get('name') or ''}"


def recorded_demand(dsd: DeepSeekDeployment) -> float:
    """Tokens/s the deployment's last decision planned for, from its status (0 without a load
    source or before its first decision: it then claims its replicas.min)."""
    status = dsd.status
    if dsd.spec.load is None or status is None:
        return 0.0
    if status.history is not None and status.history.effective_demand_tokens_per_second is not None:
        return max(0.0, status.history.effective_demand_tokens_per_second)
    if status.demand is not None:
        return max(
            0.0, status.demand.tokens_per_second + (status.demand.queue_tokens_per_second or 0)
        )
    return 0.0


def claim(
    dsd: DeepSeekDeployment,
    profiles: Mapping[str, PoolProfile],
    pools: Mapping[str, reconcile.PoolState],
    now: datetime,
) -> tuple[Claim, datetime | None] | None:
    """The deployment's claim on the arbitrated ``pools`` (None when its spec does not resolve:
    `decide()` reports why, and it claims nothing)."""
    snapshot = reconcile.Snapshot(dsd, profiles, pools)
    if reconcile.spec_problem(snapshot) is not None:
        return None
    try:
        resolved = reconcile.resolve(snapshot)
        options = resolved.options
        rules = reconcile.correction_rules(snapshot)
        memory = reconcile.history_from_status(dsd.status)
        if rules is not None and memory is not None:
            learnt = correction.Memory(memory.throughput, memory.steady)
            verdicts = correction.verdicts(learnt, options, rules)
            options = correction.corrected(options, verdicts)
        view = candidates(resolved.spec, options, now)
    except ValueError:  # PlanningInputError, UnknownCurrencyRate, an unknown time zone
        return None
    variants = {v.pool: v for v in dsd.spec.variants}
    claimed = []
    for option, cost in view.pools:
        profile = profiles[option.name]
        with contextlib.suppress(inputs.PlanningInputError):
            need = inputs.replica_resources(dsd, variants[option.name], profile)
            units = need.gpus if profile.spec.hardware.kind == "gpu" else need.cpu_millicores
            if units > 0:
                claimed.append(
                    ClaimOption(
                        pool=option.name,
                        cost=cost,
                        tokens_per_second=option.tokens_per_second_per_replica,
                        units=units,
                        upper=option.capacity_replicas,
                    )
                )
    required = recorded_demand(dsd) * (1 + view.headroom_fraction)
    in_force = memory.target if memory is not None and memory.target else {}
    return (
        Claim(
            key=key_of(dsd),
            options=tuple(claimed),
            required=required,
            min_replicas=view.bounds.min,
            max_replicas=view.bounds.max,
            priority=dsd.spec.priority,
            current=tuple(sorted((p, n) for p, n in in_force.items() if n > 0)),
        ),
        view.transition,
    )


def pool_units(
    profiles: Mapping[str, PoolProfile], pools: Mapping[str, reconcile.PoolState]
) -> dict[str, int]:
    """Units per pool for the arbitrated deployments: GPUs on a gpu pool, CPU millicores on a
    cpu pool, summed over its usable nodes' arbitrated room."""
    units = {}
    for name, state in sorted(pools.items()):
        profile = profiles.get(name)
        if profile is None or state.rooms is None:
            continue
        gpu = profile.spec.hardware.kind == "gpu"
        counts = state.nodes_per_room or (1,) * len(state.rooms)
        units[name] = sum(
            n * max(0, r.gpus if gpu else r.cpu_millicores)
            for r, n in zip(state.rooms, counts, strict=True)
        )
    return units


def _grouped(state: reconcile.PoolState) -> reconcile.PoolState:
    """The pool with its identical node rooms counted once (every claim sums over them)."""
    if state.rooms is None or state.nodes_per_room is not None:
        return state
    counts = Counter(state.rooms)
    rooms = tuple(sorted(counts, key=lambda r: (r.gpus, r.cpu_millicores, r.memory_bytes)))
    return replace(state, rooms=rooms, nodes_per_room=tuple(counts[r] for r in rooms))


def decide_fleet(
    deployments: Sequence[DeepSeekDeployment],
    profiles: Mapping[str, PoolProfile],
    pools: Mapping[str, reconcile.PoolState],
    now: datetime,
) -> FleetDecision:
    """The arbiter's split of ``pools`` (the arbitrated view, see the module docstring) among
    every deployment that takes part."""
    pools = {name: _grouped(state) for name, state in pools.items()}
    claims: list[Claim] = []
    boundaries: list[datetime] = []
    for dsd in deployments:
        if not takes_part(dsd):
            continue
        mine = {
            v.pool: replace(pools[v.pool], pool=v.pool)
            for v in dsd.spec.variants
            if v.pool in pools
        }
        made = claim(dsd, profiles, mine, now)
        if made is None:
            continue
        claims.append(made[0])
        if made[1] is not None:
            boundaries.append(made[1])
    keys = [c.key for c in claims]
    if len(set(keys)) != len(keys):  # never: namespace/name is unique
        claims = list({c.key: c for c in claims}.values())
    return FleetDecision(
        arbitration=arbitrate(pool_units(profiles, pools), claims),
        claims=tuple(claims),
        valid_until=min(boundaries, default=None),
    )
