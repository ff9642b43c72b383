"""Make-before-break from observed counts: hand-checked steps and properties over random fleets."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given
from hypothesis import strategies as st

from deepseek_operator.core.planning.rollout import (
    PoolCounts,
    gpus_in_flight,
    next_step,
    reached,
)

POOLS = ("a100", "rtx4090", "cpu")
GPUS = {"a100": 1, "rtx4090": 2, "cpu": 0}


def step(target, counts, surge=8, gpus=GPUS):
    return next_step(POOLS, target, counts, gpus, surge)


def test_new_pool_starts_before_the_old_one_stops():
    counts = {"cpu": PoolCounts(desired=2, ready=2)}
    assert step({"a100": 2}, counts) == {"a100": 2, "rtx4090": 0, "cpu": 2}


def test_old_pool_stops_once_the_new_one_is_ready():
    counts = {"cpu": PoolCounts(2, 2), "a100": PoolCounts(2, 2)}
    assert step({"a100": 2}, counts) == {"a100": 2, "rtx4090": 0, "cpu": 0}


def test_old_pool_waits_while_anything_is_starting():
    counts = {"cpu": PoolCounts(2, 2), "a100": PoolCounts(2, 1)}
    assert step({"a100": 2}, counts)["cpu"] == 2


def test_surge_caps_gpus_starting_at_once():
    counts = {"cpu": PoolCounts(4, 4)}
    assert step({"a100": 4}, counts, surge=2)["a100"] == 2
    counts = {"cpu": PoolCounts(4, 4), "a100": PoolCounts(2, 1)}
    assert step({"a100": 4}, counts, surge=2)["a100"] == 3


def test_a_replica_larger_than_the_surge_starts_alone():
    gpus = {"a100": 4, "rtx4090": 2, "cpu": 0}
    assert step({"a100": 2}, {}, 2, gpus)["a100"] == 1
    # ... but not while another is still starting
    assert step({"a100": 2}, {"a100": PoolCounts(1, 0)}, 2, gpus)["a100"] == 1


def test_unwanted_starts_are_cancelled_at_once():
    counts = {"a100": PoolCounts(3, 1), "cpu": PoolCounts(2, 1)}
    # the two a100 starts go at once; its Ready replica waits for the cpu one still starting
    assert step({"cpu": 2}, counts)["a100"] == 1


def test_nothing_stops_while_a_replacement_is_starting():
    counts = {"a100": PoolCounts(2, 2), "cpu": PoolCounts(2, 0)}
    assert step({"cpu": 2}, counts)["a100"] == 2


def test_a_plan_for_fewer_replicas_is_reached():
    counts = {"a100": PoolCounts(3, 3)}
    assert step({"a100": 1}, counts)["a100"] == 1


def test_a_deployment_asking_for_fewer_counts_only_what_stays():
    # 2 Ready pods, but the Deployment was scaled to 0 outside: nothing counts as Ready.
    counts = {"a100": PoolCounts(desired=0, ready=2)}
    assert step({"a100": 2}, counts)["a100"] == 2


# --------------------------------------------------------------------------------------------
# Properties: a tiny cluster where replicas become Ready after random delays.


@dataclass
class Fleet:
    """Pods per pool, each with the tick it turns Ready; deleting prefers pods not yet Ready."""

    delays: list[int]
    pods: dict[str, list[int]] = field(default_factory=dict)
    desired: dict[str, int] = field(default_factory=dict)
    created: int = 0

    def counts(self, tick: int) -> dict[str, PoolCounts]:
        return {
            p: PoolCounts(self.desired.get(p, 0), sum(1 for r in pods if r <= tick))
            for p, pods in self.pods.items()
        }

    def ready_total(self, tick: int) -> int:
        return sum(c.staying_ready for c in self.counts(tick).values())

    def write(self, replicas: dict[str, int], tick: int) -> None:
        for pool, n in replicas.items():
            self.desired[pool] = n
            pods = sorted(self.pods.setdefault(pool, []))
            while len(pods) > n:
                pods.pop()  # the latest to turn Ready goes first, as a ReplicaSet picks
            while len(pods) < n:
                delay = self.delays[self.created % len(self.delays)]
                self.created += 1
                pods.append(tick + delay)
            self.pods[pool] = pods


targets = st.fixed_dictionaries({p: st.integers(0, 4) for p in POOLS})


@given(
    start=targets,
    goal=targets,
    delays=st.lists(st.integers(1, 5), min_size=1, max_size=8),
    min_available=st.integers(0, 4),
    surge=st.integers(0, 8),
    crash_at=st.integers(0, 40),
)
def test_rollout_never_dips_never_over_surges_and_arrives(
    start, goal, delays, min_available, surge, crash_at
):
    fleet = Fleet(delays)
    fleet.write(start, tick=-10)  # the start placement is Ready
    # minAvailable holds through any move whose start and target both keep that many.
    floor = min(min_available, fleet.ready_total(0), sum(goal.values()))
    largest = max(GPUS.values())
    for tick in range(80):
        counts = fleet.counts(tick)
        writes = step(goal, counts, surge)
        assert writes == step(goal, counts, surge)  # the same counts give the same step
        if tick == crash_at:
            # A crash after computing but before writing: the next tick starts from the
            # cluster as it is, and must still hold every invariant.
            continue
        fleet.write(writes, tick)
        assert fleet.ready_total(tick) >= floor
        assert gpus_in_flight(fleet.counts(tick), GPUS) <= max(surge, largest)
        if surge >= largest:
            assert gpus_in_flight(fleet.counts(tick), GPUS) <= surge
        if reached(goal, fleet.counts(tick)):
            break
    else:
        raise AssertionError(f"did not reach {goal} from {start}: {fleet.counts(80)}")
