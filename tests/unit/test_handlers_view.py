"""The handlers' shared view of the pools: computed once per state of the Nodes, Pods and
PoolProfiles, reused by every reconcile until a watch event changes one of them, and always what
a fresh computation from the same indexes gives."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from deepseek_operator import handlers
from deepseek_operator.adapters import observe
from tests.unit.planning.test_arbitration import PROFILES, X, Y

OWN = [observe.OwnPod("a100", True, True, False, False)]
OWNED = [observe.OwnDeployment("a100", 1)]
POOLS = ["a100", "l40s", "rtx4090"]


def node_body(name: str, pool: str, gpus: int, ready: bool = True) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"accelerator": pool}},
        "spec": {},
        "status": {
            "allocatable": {"nvidia.com/gpu": str(gpus), "cpu": "128", "memory": "1Ti"},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def pod_body(node: str, gpus: int) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "other", "labels": {}},
        "spec": {
            "nodeName": node,
            "containers": [{"resources": {"requests": {"nvidia.com/gpu": str(gpus)}}}],
        },
        "status": {"phase": "Running"},
    }


class Cluster:
    """Indexes kept as kopf keeps them, and each watch event delivered as kopf delivers it:
    the index first, then the event handler."""

    def __init__(self) -> None:
        self.indexes = handlers._Indexes(
            pool_profiles={n: [p.to_json_dict()] for n, p in PROFILES.items()},
            fleet={("ns", "x"): [X], ("ns", "y"): [Y]},
            nodes={},
            pods_by_node={},
            own_pods={},
            own_deployments={},
            own_services={},
        )
        self.pods: dict[str, observe.PodUsage] = {}

    @property
    def kwargs(self) -> dict[str, Any]:
        return {
            name: getattr(self.indexes, name) for name in handlers._Indexes.__dataclass_fields__
        }

    async def node(self, body: Mapping[str, Any], type: str = "ADDED") -> None:
        name = body["metadata"]["name"]
        nodes: Any = self.indexes.nodes
        if type == "DELETED":
            nodes.pop(name, None)
        else:
            nodes[name] = [observe.node_summary(body)]
        await handlers.node_changed(name=name, body=body, type=type, **self.kwargs)

    async def pod(self, uid: str, body: Mapping[str, Any], type: str = "ADDED") -> None:
        by_node: Any = self.indexes.pods_by_node
        old = self.pods.pop(uid, None)
        if old is not None:
            by_node[old.node].remove(old)
        usage = None if type == "DELETED" else observe.pod_usage(body)
        if usage is not None:
            self.pods[uid] = usage
            by_node.setdefault(usage.node, []).append(usage)
        await handlers.pod_capacity_changed(uid=uid, body=body, type=type, **self.kwargs)

    def cached(self) -> dict[str, Any]:
        view = handlers.RUNTIME.view.current(self.indexes)
        return observe.deployment_pool_states(POOLS, view.capacities, OWN, OWNED)

    def fresh(self) -> dict[str, Any]:
        profiles, _ = observe.parse_pool_profiles(handlers._values(self.indexes.pool_profiles))
        usage = {node: list(store) for node, store in self.indexes.pods_by_node.items()}
        return observe.pool_states(
            POOLS, profiles, handlers._values(self.indexes.nodes), usage, OWN, OWNED
        )


@pytest.fixture(autouse=True)
def fresh_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handlers.RUNTIME, "view", handlers._ClusterView())
    monkeypatch.setattr(handlers.RUNTIME, "arbiter", handlers._FleetArbiter())
    monkeypatch.setattr(handlers.RUNTIME, "node_summaries", {})
    monkeypatch.setattr(handlers.RUNTIME, "pod_usages", {})


def test_the_cached_view_equals_a_fresh_computation_after_every_event() -> None:
    async def scenario() -> None:
        cluster = Cluster()
        steps = [
            cluster.node(node_body("a100-0", "a100", 8)),
            cluster.node(node_body("a100-1", "a100", 8)),
            cluster.node(node_body("l40s-0", "l40s", 4)),
            cluster.pod("p1", pod_body("a100-0", 6)),
            cluster.pod("p2", pod_body("l40s-0", 4)),
            cluster.node(node_body("a100-1", "a100", 8, ready=False), "MODIFIED"),
            cluster.pod("p1", pod_body("a100-0", 6), "DELETED"),
            cluster.node(node_body("l40s-0", "l40s", 4), "DELETED"),
            cluster.node(node_body("rtx4090-0", "rtx4090", 2)),
        ]
        for step in steps:
            await step
            assert cluster.cached() == cluster.fresh()
        assert cluster.cached()["a100"].rooms is not None
        free = [room.gpus for room in cluster.cached()["a100"].rooms or ()]
        assert free == [8]  # p1 gone; a100-1 not Ready
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()

    asyncio.run(scenario())


def test_reconciles_between_events_share_one_computation() -> None:
    async def scenario() -> None:
        cluster = Cluster()
        await cluster.node(node_body("a100-0", "a100", 8))
        first = handlers.RUNTIME.view.current(cluster.indexes).capacities
        assert handlers.RUNTIME.view.current(cluster.indexes).capacities is first
        await cluster.pod("p1", pod_body("a100-0", 2))
        second = handlers.RUNTIME.view.current(cluster.indexes).capacities
        assert second is not first
        assert [room.gpus for room in second["a100"].rooms] == [6]
        # A pod event that changes nothing a pool offers does not call for a new computation.
        await cluster.pod("p1", pod_body("a100-0", 2), "MODIFIED")
        assert handlers.RUNTIME.view.current(cluster.indexes).capacities is second
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()

    asyncio.run(scenario())


def test_only_what_frees_room_wakes_and_only_the_deployments_that_may_use_that_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """x may use a100 and rtx4090, y a100 and l40s. A pod taking room wakes neither (its owner
    is woken by its own pod's events); the same pod finishing wakes those that may use its
    node's pool, so one short of capacity there plans again; a node change wakes its pools'."""

    async def scenario() -> None:
        cluster = Cluster()
        woken = {key: asyncio.Event() for key in (("ns", "x"), ("ns", "y"))}
        monkeypatch.setattr(handlers.RUNTIME, "wakeups", woken)

        def took() -> set[str]:
            names = {key[1] for key, event in woken.items() if event.is_set()}
            for event in woken.values():
                event.clear()
            return names

        await cluster.node(node_body("l40s-0", "l40s", 4))
        assert took() == {"y"}
        await cluster.node(node_body("rtx4090-0", "rtx4090", 2))
        assert took() == {"x"}
        await cluster.node(node_body("a100-0", "a100", 8))
        assert took() == {"x", "y"}

        await cluster.pod("hog", pod_body("l40s-0", 4))
        assert took() == set()  # it only took room
        await cluster.pod("hog", pod_body("l40s-0", 4), "DELETED")
        assert took() == {"y"}  # room freed on l40s: y may use it, x may not

        # A pool x no longer names but still runs on concerns x as well.
        own: Any = cluster.indexes.own_deployments
        own[("ns", "x")] = [(observe.OwnDeployment("l40s", 1), "")]
        await cluster.pod("other", pod_body("l40s-0", 1))
        await cluster.pod("other", pod_body("l40s-0", 1), "DELETED")
        assert took() == {"x", "y"}

        # A node that stops being usable, or leaves, changes its pool's room and node count.
        await cluster.node(node_body("rtx4090-0", "rtx4090", 2, ready=False), "MODIFIED")
        assert took() == {"x"}
        await cluster.node(node_body("rtx4090-0", "rtx4090", 2, ready=False), "DELETED")
        assert took() == {"x"}
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()

    asyncio.run(scenario())
