"""A small simulated cluster for driving `decide()` tick by tick without Kubernetes.

Each pool has nodes with the PoolProfile's capacity; a Deployment's replica count is what the
last write asked for; pods are created and removed as a ReplicaSet would (removing those not
Ready first, newest first), are placed first-fit on a node with room (or stay Unschedulable),
and turn Ready a given number of ticks after they are created.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from deepseek_operator.api.deployment import DeepSeekDeployment
from deepseek_operator.api.pool import PoolProfile
from deepseek_operator.core.planning.inputs import replica_resources
from deepseek_operator.core.planning.reconcile import NodeRoom, PoolState
from deepseek_operator.core.workloads.render import ReplicaResources


@dataclass
class Pod:
    ready_at: int
    node: int | None


@dataclass
class Pool:
    name: str
    nodes: int
    node_room: NodeRoom
    need: ReplicaResources
    desired: int = 0
    exists: bool = False
    pods: list[Pod] = field(default_factory=list)

    def used(self, node: int) -> tuple[int, int, int]:
        mine = [p for p in self.pods if p.node == node]
        n = len(mine)
        return self.need.gpus * n, self.need.cpu_millicores * n, self.need.memory_bytes * n

    def free(self, node: int) -> NodeRoom:
        gpus, cpu, memory = self.used(node)
        room = self.node_room
        return NodeRoom(room.gpus - gpus, room.cpu_millicores - cpu, room.memory_bytes - memory)

    def place(self) -> None:
        for pod in self.pods:
            if pod.node is not None:
                continue
            for node in range(self.nodes):
                room = self.free(node)
                if self.need.fitting(room.gpus, room.cpu_millicores, room.memory_bytes) > 0:
                    pod.node = node
                    break

    def ready(self, tick: int) -> int:
        return sum(1 for p in self.pods if p.node is not None and p.ready_at <= tick)


class Fleet:
    def __init__(
        self,
        deployment: DeepSeekDeployment,
        profiles: Mapping[str, PoolProfile],
        nodes: Mapping[str, int],
        delays: Sequence[int],
    ) -> None:
        self.delays = list(delays) or [1]
        self.created = 0
        self.pools: dict[str, Pool] = {}
        for variant in deployment.spec.variants:
            profile = profiles[variant.pool]
            hardware = profile.spec.hardware
            room = NodeRoom(
                gpus=hardware.gpus_per_node or 0,
                cpu_millicores=hardware.cpu_cores * 1000,
                memory_bytes=int(hardware.memory_gib * 2**30),
            )
            need = replica_resources(deployment, variant, profile)
            self.pools[variant.pool] = Pool(variant.pool, nodes[variant.pool], room, need)

    def states(self, tick: int) -> dict[str, PoolState]:
        states = {}
        for name, pool in self.pools.items():
            pool.place()
            scheduled = [p for p in pool.pods if p.node is not None]
            states[name] = PoolState(
                pool=name,
                desired=pool.desired,
                ready=pool.ready(tick),
                pods=len(pool.pods),
                scheduled=len(scheduled),
                unschedulable=len(pool.pods) - len(scheduled),
                deployment_exists=pool.exists,
                node_count=pool.nodes,
                rooms=tuple(pool.free(n) for n in range(pool.nodes)),
            )
        return states

    def write(self, replicas: Mapping[str, int], tick: int) -> None:
        for name, count in replicas.items():
            pool = self.pools[name]
            pool.exists = True
            pool.desired = count
            while len(pool.pods) > count:
                # ReplicaSets remove unscheduled, then not Ready, then the newest Ready pods.
                victim = max(
                    pool.pods, key=lambda p: (p.node is None, p.ready_at > tick, p.ready_at)
                )
                pool.pods.remove(victim)
            while len(pool.pods) < count:
                delay = self.delays[self.created % len(self.delays)]
                self.created += 1
                pool.pods.append(Pod(ready_at=tick + delay, node=None))
            pool.place()

    def delete(self, names: Sequence[str]) -> None:
        for name in names:
            pool = self.pools[name]
            assert not pool.pods, f"{name} deleted with pods"
            pool.exists = False
            pool.desired = 0

    def ready_total(self, tick: int) -> int:
        return sum(pool.ready(tick) for pool in self.pools.values())

    def gpus_starting(self, tick: int) -> int:
        return sum(
            pool.need.gpus * sum(1 for p in pool.pods if p.ready_at > tick)
            for pool in self.pools.values()
        )

    def __iter__(self) -> Iterator[Pool]:
        return iter(self.pools.values())
