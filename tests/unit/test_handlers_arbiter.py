"""The handlers' cache of the cluster-wide split: solved once per state, shared by every loop,
solved again only when what it reads changes, and the deployments whose share changed woken."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from deepseek_operator import handlers
from deepseek_operator.adapters import observe
from tests.unit.planning.test_arbitration import PROFILES, X, Y

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


def node(name: str, pool: str, gpus: int) -> observe.NodeSummary:
    return observe.NodeSummary(
        name=name,
        labels=(("accelerator", pool),),
        taints=(),
        allocatable=observe.Resources(gpus, 128_000, 1024 * 2**30),
        ready=True,
        cordoned=False,
    )


def indexes(hog: bool = True) -> handlers._Indexes:
    nodes = [
        node("a100-0", "a100", 8),
        node("a100-1", "a100", 8),
        node("l40s-0", "l40s", 4),
        node("l40s-1", "l40s", 4),
        node("rtx4090-0", "rtx4090", 2),
        node("rtx4090-1", "rtx4090", 2),
    ]
    usage = [observe.PodUsage("a100-1", observe.Resources(8, 0, 0))] if hog else []
    empty: dict[Any, list[Any]] = {}
    return handlers._Indexes(
        pool_profiles={n: [p.to_json_dict()] for n, p in PROFILES.items()},
        fleet={("ns", "x"): [X], ("ns", "y"): [Y]},
        nodes={n.name: [n] for n in nodes},
        pods_by_node={"a100-1": usage} if usage else {},
        own_pods=empty,
        own_deployments=empty,
        own_services=empty,
    )


def test_one_solve_per_state_and_the_changed_shares_are_woken() -> None:
    async def scenario() -> None:
        arbiter = handlers._FleetArbiter()
        woken = {key: asyncio.Event() for key in (("ns", "x"), ("ns", "y"))}
        handlers.RUNTIME.wakeups.update(woken)
        try:
            first = await arbiter.share(indexes(), NOW)
            shares = first.arbitration.allotments
            assert shares["ns/y"].displaced_by == ("ns/x",)
            assert all(event.is_set() for event in woken.values())
            assert await arbiter.share(indexes(), NOW) is first  # cached: no new solve

            for event in woken.values():
                event.clear()
            freed = indexes(hog=False)
            arbiter.changed(freed)  # the hog finished: a new version, solved in the background
            assert await arbiter.share(freed, NOW) is first  # a reconcile does not wait for it
            assert arbiter.refresh is not None
            await arbiter.refresh
            latest = await arbiter.share(freed, NOW)
            assert latest is not first
            assert latest.arbitration.allotments["ns/y"].replicas == {"a100": 8}
            assert woken[("ns", "y")].is_set()
        finally:
            for key in woken:
                handlers.RUNTIME.wakeups.pop(key, None)

    asyncio.run(scenario())


def test_a_deployment_event_counts_only_when_its_claim_would_change() -> None:
    async def scenario() -> None:
        arbiter = handlers._FleetArbiter()
        seen = indexes()
        body: dict[str, Any] = {"metadata": {"generation": 1}, "status": {}}
        arbiter.deployment_seen(("ns", "x"), body, seen)
        version = arbiter.version
        arbiter.deployment_seen(("ns", "x"), {**body, "status": {"readyReplicas": 3}}, seen)
        assert arbiter.version == version  # status that claims do not read
        demand = {"history": {"effectiveDemandTokensPerSecond": 120.0}}
        arbiter.deployment_seen(("ns", "x"), {**body, "status": demand}, seen)
        assert arbiter.version == version + 1
        arbiter.deployment_seen(("ns", "x"), None, seen)  # deleted
        assert arbiter.version == version + 2
        if arbiter.refresh is not None:
            arbiter.refresh.cancel()

    asyncio.run(scenario())


def test_small_demand_moves_do_not_call_for_a_new_split() -> None:
    def signature(demand: float) -> tuple[Any, ...]:
        return handlers._claim_inputs(
            {"metadata": {}, "status": {"history": {"effectiveDemandTokensPerSecond": demand}}}
        )

    assert signature(1000.0) == signature(1010.0)
    assert signature(1000.0) != signature(1200.0)
