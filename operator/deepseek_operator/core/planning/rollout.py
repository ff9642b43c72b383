"""Make-before-break: the next safe replica counts towards a target, from observed counts alone.

One function, `next_step`, used by the operator at every reconcile and by the replay's engine
for every policy, so the replay measures the rollout that ships. Given what each pool's
Deployment asks for (`desired`) and how many of its replicas are Ready, it returns what to write
now:

1. **cancel** starts the target no longer wants (they serve nothing yet, and hold surge room);
2. **start** what the target adds, while the GPUs of replicas still starting stay within
   `maxSurgeGPUs` (one replica may always start when nothing else is starting, so a replica
   larger than the surge budget is not stuck forever);
3. **stop** Ready replicas the target no longer wants only once every pool has all of its
   target's replicas Ready.

So Ready replicas never fall below the smaller of what was Ready and what the target runs:
`minAvailable` holds through any move whose target keeps that many. Only counts go in: a
restart, or a crash between two writes, resumes from whatever the cluster shows, and the same
counts always give the same step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PoolCounts:
    """One pool's Deployment: replicas it asks for, and how many of them are Ready."""

    desired: int = 0
    ready: int = 0

    @property
    def staying_ready(self) -> int:
        """Ready replicas that stay: a Deployment asking for fewer is already removing the rest."""
        return max(0, min(self.ready, self.desired))

    @property
    def starting(self) -> int:
        return max(0, self.desired - self.staying_ready)


def gpus_in_flight(counts: Mapping[str, PoolCounts], gpus_per_replica: Mapping[str, int]) -> int:
    """GPUs held by replicas that are not Ready yet: the surge a move has in flight."""
    return sum(c.starting * gpus_per_replica.get(pool, 0) for pool, c in counts.items())


def next_step(
    pools: Sequence[str],
    target: Mapping[str, int],
    counts: Mapping[str, PoolCounts],
    gpus_per_replica: Mapping[str, int],
    max_surge_gpus: int | None,
) -> dict[str, int]:
    """Replicas to write per pool now, in the order of `pools` (see the module docstring)."""
    desired = {p: max(0, counts[p].desired) if p in counts else 0 for p in pools}
    ready = {p: counts[p].staying_ready if p in counts else 0 for p in pools}
    wanted = {p: max(0, target.get(p, 0)) for p in pools}

    def in_flight_gpus() -> int:
        return sum(max(0, desired[p] - ready[p]) * gpus_per_replica.get(p, 0) for p in pools)

    # 1. Cancel starts the target no longer wants: they serve nothing yet, and free surge room.
    for pool in pools:
        if desired[pool] > wanted[pool]:
            desired[pool] = max(wanted[pool], ready[pool])
    # 2. Start what is missing, within the surge budget.
    for pool in pools:
        missing = wanted[pool] - desired[pool]
        if missing <= 0:
            continue
        gpus = gpus_per_replica.get(pool, 0)
        if gpus > 0 and max_surge_gpus is not None:
            flying = in_flight_gpus()
            room = (max_surge_gpus - flying) // gpus
            if room <= 0 and flying == 0:
                room = 1
            missing = min(missing, max(0, room))
        desired[pool] += missing
    # 3. Stop unwanted Ready replicas only once every pool has its target Ready.
    if all(ready[p] >= wanted[p] for p in pools):
        for pool in pools:
            desired[pool] = min(desired[pool], wanted[pool])
    return desired


def reached(target: Mapping[str, int], counts: Mapping[str, PoolCounts]) -> bool:
    """Every pool asks for its target and has exactly that many Ready."""
    pools = set(target) | set(counts)
    return all(
        counts.get(p, PoolCounts()).desired == target.get(p, 0)
        and counts.get(p, PoolCounts()).ready == target.get(p, 0)
        for p in pools
    )
