"""The arbiter's priorities, case by case: a higher tier keeps its optimum, and among its equally
good placements takes the one that leaves room for the lower tiers.

The random fleets of `test_arbiter_properties` check the rule against brute force; these are the
cases it found, written out so that they run every time.
"""

from __future__ import annotations

from deepseek_operator.core.planning.arbiter import Claim, ClaimOption, arbitrate, fleet_objective


def one_replica(
    key: str,
    *options: tuple[str, float, int],
    priority: int = 0,
    current: tuple[tuple[str, int], ...] = (),
) -> Claim:
    """A deployment that needs one replica of 10 tok/s: options as (pool, cost, upper)."""
    return Claim(
        key,
        tuple(ClaimOption(pool, cost, 10.0, 1, upper) for pool, cost, upper in options),
        required=10.0,
        max_replicas=1,
        priority=priority,
        current=current,
    )


def tie_pair(high_in_force: tuple[tuple[str, int], ...] = ()) -> tuple[dict[str, int], list[Claim]]:
    """``ns/d1`` (priority 1) is as well off on either pool; ``ns/d0`` (priority 0) can only use
    the L40S. One unit each."""
    high = one_replica(
        "ns/d1", ("a100", 0.25, 1), ("l40s", 0.25, 1), priority=1, current=high_in_force
    )
    low = one_replica("ns/d0", ("l40s", 0.25, 1), ("a100", 0.25, 0))
    return {"a100": 1, "l40s": 1}, [high, low]


def test_a_higher_tier_with_equally_good_choices_leaves_room_for_a_lower_one() -> None:
    pools, claims = tie_pair()
    joint = arbitrate(pools, claims)
    assert joint.allotments["ns/d1"].replicas == {"a100": 1}
    assert joint.allotments["ns/d0"].replicas == {"l40s": 1}
    assert joint.shortfall == 0
    placements = {k: a.replicas for k, a in joint.allotments.items()}
    assert fleet_objective(claims, placements, priority=1) == 0.25
    assert fleet_objective(claims, placements, priority=0) == 0.25


def test_the_answer_does_not_depend_on_the_input_order() -> None:
    pools, claims = tie_pair()
    forward = arbitrate(pools, claims)
    backward = arbitrate(dict(reversed(list(pools.items()))), list(reversed(claims)))
    assert {k: a.replicas for k, a in forward.allotments.items()} == {
        k: a.replicas for k, a in backward.allotments.items()
    }


def test_a_higher_tier_in_force_on_the_tied_pool_moves_for_a_newcomer() -> None:
    """The placement in force is kept against small savings of its own tier, not at the price
    of a lower tier's service: with d1 on the L40S from before d0 existed, d1 moves to the
    A100 (no dearer for it) so that d0 is served."""
    pools, claims = tie_pair(high_in_force=(("l40s", 1),))
    joint = arbitrate(pools, claims)
    assert joint.allotments["ns/d1"].replicas == {"a100": 1}
    assert joint.allotments["ns/d0"].replicas == {"l40s": 1}


def test_a_higher_tier_never_gives_up_its_optimum_for_a_lower_one() -> None:
    """When d1's A100 costs it more than the L40S, d1 keeps the L40S and d0 goes unserved."""
    pools, (high, low) = tie_pair()
    dearer = one_replica(high.key, ("a100", 0.5, 1), ("l40s", 0.25, 1), priority=1)
    joint = arbitrate(pools, [dearer, low])
    assert joint.allotments["ns/d1"].replicas == {"l40s": 1}
    assert joint.allotments["ns/d0"].replicas == {}
    assert joint.allotments["ns/d0"].shortfall == 10.0
    assert joint.allotments["ns/d0"].displaced_by == ("ns/d1",)


def test_the_rearrangement_reaches_through_a_chain_of_higher_claims() -> None:
    """d2 (priority 2) sits on the B pool, tied with A; d1 (priority 1) on C, tied with B; d0
    can only use C. Serving d0 takes d1 to B, which takes d2 to A: no one pays more."""
    d2 = one_replica("ns/d2", ("a", 1.0, 1), ("b", 1.0, 1), priority=2, current=(("b", 1),))
    d1 = one_replica("ns/d1", ("b", 1.0, 1), ("c", 1.0, 1), priority=1, current=(("c", 1),))
    d0 = one_replica("ns/d0", ("c", 1.0, 1))
    joint = arbitrate({"a": 1, "b": 1, "c": 1}, [d0, d1, d2])
    assert joint.allotments["ns/d2"].replicas == {"a": 1}
    assert joint.allotments["ns/d1"].replicas == {"b": 1}
    assert joint.allotments["ns/d0"].replicas == {"c": 1}


def test_a_higher_tier_kept_in_force_does_not_move_when_moving_helps_no_one() -> None:
    """d1 is kept on its dearer pool (within the keep fraction). The lower tier's contest over
    pool c brings d1 into its programme (d0y names pool b, where it has no room), yet moving d1
    would serve no one better: it stays."""
    d1 = one_replica("ns/d1", ("a", 1.0, 1), ("b", 1.04, 1), priority=1, current=(("b", 1),))
    d0x = one_replica("ns/d0x", ("c", 1.0, 1))
    d0y = one_replica("ns/d0y", ("c", 1.0, 1), ("b", 1.0, 0))
    joint = arbitrate({"a": 1, "b": 1, "c": 1}, [d0x, d0y, d1])
    assert joint.allotments["ns/d1"].replicas == {"b": 1}
    lower = [joint.allotments["ns/d0x"].replicas, joint.allotments["ns/d0y"].replicas]
    assert sorted(lower, key=len) == [{}, {"c": 1}]
