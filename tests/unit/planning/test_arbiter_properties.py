"""Properties of the cluster-wide arbiter over random fleets.

Brute force over every joint placement (up to 3 pools × 3 deployments × a few replicas) is the
independent oracle for the optimum; `sequential` (each deployment, in a fixed order, taking its
own optimum from what the ones before it left) is what per-deployment planning does today.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepseek_operator.core.planning.arbiter import (
    KEEP_FRACTION,
    ArbiterError,
    Arbitration,
    Claim,
    ClaimOption,
    arbitrate,
    fleet_objective,
    sequential,
)

SETTINGS = settings(deadline=None, max_examples=80, suppress_health_check=[HealthCheck.too_slow])
POOLS = ("a100", "l40s", "cpu")


@st.composite
def fleets(draw: st.DrawFn, priorities: bool = False) -> tuple[dict[str, int], list[Claim]]:
    pools = {p: draw(st.integers(0, 6)) for p in POOLS[: draw(st.integers(1, 3))]}
    claims = []
    for index in range(draw(st.integers(1, 3))):
        names = draw(st.lists(st.sampled_from(sorted(pools)), min_size=1, max_size=3, unique=True))
        options = tuple(
            ClaimOption(
                pool=name,
                cost=draw(st.integers(1, 40)) / 4,
                tokens_per_second=float(draw(st.integers(1, 10)) * 10),
                units=draw(st.integers(1, 3)),
                upper=draw(st.integers(0, 4)),
            )
            for name in names
        )
        low = draw(st.integers(0, 3))
        claims.append(
            Claim(
                key=f"ns/d{index}",
                options=options,
                required=float(draw(st.integers(0, 30)) * 10),
                min_replicas=low,
                max_replicas=draw(st.integers(low, 5)),
                priority=draw(st.integers(0, 2)) if priorities else 0,
            )
        )
    return pools, claims


def placements_of(claim: Claim, pools: dict[str, int]) -> list[dict[str, int]]:
    ranges = []
    for option in claim.options:
        cap = min(option.upper, pools.get(option.pool, 0) // option.units)
        ranges.append(range(max(0, cap) + 1))
    result = []
    for counts in itertools.product(*ranges):
        if sum(counts) <= claim.max_replicas:
            result.append({o.pool: n for o, n in zip(claim.options, counts, strict=True) if n > 0})
    return result


def fits(pools: dict[str, int], claims: list[Claim], joint: tuple[dict[str, int], ...]) -> bool:
    used = dict.fromkeys(pools, 0)
    for claim, placement in zip(claims, joint, strict=True):
        for option in claim.options:
            used[option.pool] += option.units * placement.get(option.pool, 0)
    return all(used[p] <= pools[p] for p in pools)


def brute_force(pools: dict[str, int], claims: list[Claim]) -> list[tuple[float, ...]]:
    """Each feasible joint placement's objective per priority tier (highest first)."""
    tiers = sorted({c.priority for c in claims}, reverse=True)
    scores = []
    for joint in itertools.product(*(placements_of(c, pools) for c in claims)):
        if not fits(pools, claims, joint):
            continue
        by_key = {c.key: p for c, p in zip(claims, joint, strict=True)}
        scores.append(tuple(fleet_objective(claims, by_key, tier) for tier in tiers))
    return scores


def used_units(pools: dict[str, int], claims: list[Claim], result: Arbitration) -> dict[str, int]:
    used = dict.fromkeys(pools, 0)
    for claim in claims:
        for option in claim.options:
            used[option.pool] += option.units * result.allotments[claim.key].replicas.get(
                option.pool, 0
            )
    return used


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-7, abs_tol=1e-6)


@SETTINGS
@given(fleets())
def test_never_above_any_fixed_reconcile_order(fleet: tuple[dict[str, int], list[Claim]]) -> None:
    pools, claims = fleet
    joint = arbitrate(pools, claims)
    best = fleet_objective(claims, {k: a.replicas for k, a in joint.allotments.items()})
    for order in itertools.permutations([c.key for c in claims]):
        one_by_one = sequential(pools, claims, order)
        baseline = fleet_objective(
            claims, {k: a.replicas for k, a in one_by_one.allotments.items()}
        )
        assert best <= baseline + 1e-6 * max(1.0, baseline), order
        # Cost alone compares only placements that meet every claim: a replicas.min left
        # unplaced is no token shortfall, yet serving it is worth more than its cost.
        if meets_every_claim(claims, one_by_one) and meets_every_claim(claims, joint):
            assert joint.cost <= one_by_one.cost + 1e-6 * max(1.0, one_by_one.cost)


def meets_every_claim(claims: list[Claim], result: Arbitration) -> bool:
    return result.shortfall == 0 and all(
        sum(result.allotments[c.key].replicas.values()) >= c.min_replicas for c in claims
    )


@SETTINGS
@given(fleets())
def test_optimal_on_small_fleets_against_brute_force(
    fleet: tuple[dict[str, int], list[Claim]],
) -> None:
    pools, claims = fleet
    joint = arbitrate(pools, claims)
    best = fleet_objective(claims, {k: a.replicas for k, a in joint.allotments.items()})
    scores = brute_force(pools, claims)
    assert scores, "placing nothing is always feasible"
    assert close(best, min(s[0] for s in scores))


@SETTINGS
@given(fleets(priorities=True))
def test_priorities_are_lexicographic(fleet: tuple[dict[str, int], list[Claim]]) -> None:
    pools, claims = fleet
    joint = arbitrate(pools, claims)
    placements = {k: a.replicas for k, a in joint.allotments.items()}
    tiers = sorted({c.priority for c in claims}, reverse=True)
    got = tuple(fleet_objective(claims, placements, t) for t in tiers)
    candidates = brute_force(pools, claims)
    for level in range(len(tiers)):
        best = min(s[level] for s in candidates)
        assert close(got[level], best), (level, got, best)
        candidates = [s for s in candidates if close(s[level], best)]


@SETTINGS
@given(fleets(priorities=True))
def test_capacity_caps_and_determinism(fleet: tuple[dict[str, int], list[Claim]]) -> None:
    pools, claims = fleet
    joint = arbitrate(pools, claims)
    used = used_units(pools, claims, joint)
    assert all(used[p] <= pools[p] for p in pools)
    for claim in claims:
        mine = joint.allotments[claim.key]
        for option in claim.options:
            assert mine.replicas.get(option.pool, 0) <= mine.caps[option.pool] <= option.upper
        assert sum(mine.replicas.values()) <= claim.max_replicas
        for other in mine.displaced_by:
            assert claim.key in joint.allotments[other].displacing
    shuffled = list(claims)
    random.Random(7).shuffle(shuffled)
    again = arbitrate(dict(reversed(list(pools.items()))), shuffled)
    assert {k: a.replicas for k, a in again.allotments.items()} == {
        k: a.replicas for k, a in joint.allotments.items()
    }


# ---------------------------------------------------------------------------------------------
# The e2e's case, by hand


def e2e_pair(y_priority: int = 0) -> tuple[Claim, Claim]:
    """The e2e's two deployments: x needs 4 replicas (A100, else a dear 4090), y needs 8 (A100,
    else an L40S at twice the A100's price)."""
    x = Claim(
        "ns/x",
        (ClaimOption("a100", 1.0, 100, 1, 16), ClaimOption("4090", 3.0, 100, 1, 4)),
        min_replicas=4,
        max_replicas=4,
    )
    y = Claim(
        "ns/y",
        (ClaimOption("a100", 1.0, 100, 1, 16), ClaimOption("l40s", 2.0, 100, 1, 8)),
        min_replicas=8,
        max_replicas=8,
        priority=y_priority,
    )
    return x, y


def test_the_deployment_with_the_dearer_fallback_keeps_the_scarce_pool() -> None:
    x, y = e2e_pair()
    pools = {"a100": 8, "4090": 4, "l40s": 8}
    joint = arbitrate(pools, [y, x])
    assert joint.allotments["ns/x"].replicas == {"a100": 4}
    assert joint.allotments["ns/y"].replicas == {"a100": 4, "l40s": 4}
    assert joint.cost == pytest.approx(16.0)
    assert sequential(pools, [y, x]).cost == pytest.approx(20.0)  # y first takes all 8 A100s
    assert joint.allotments["ns/y"].displaced_by == ("ns/x",)
    assert joint.allotments["ns/y"].lost_pools == ("a100",)
    assert joint.allotments["ns/x"].displacing == ("ns/y",)
    assert joint.allotments["ns/y"].caps == {"a100": 4, "l40s": 8}

    # Capacity frees up: both get their preference, no one is displaced.
    freed = arbitrate({**pools, "a100": 16}, [y, x])
    assert freed.allotments["ns/y"].replicas == {"a100": 8}
    assert not freed.allotments["ns/y"].displaced_by
    assert not freed.allotments["ns/x"].displacing


def test_priority_goes_first_even_when_dearer_for_the_fleet() -> None:
    x, y = e2e_pair(y_priority=10)
    joint = arbitrate({"a100": 8, "4090": 4, "l40s": 8}, [x, y])
    assert joint.allotments["ns/y"].replicas == {"a100": 8}
    assert joint.allotments["ns/x"].replicas == {"4090": 4}
    assert joint.allotments["ns/x"].displaced_by == ("ns/y",)


def test_serving_beats_saving() -> None:
    """A deployment with no fallback keeps the scarce pool even if the other's is dearer."""
    only = Claim("ns/only", (ClaimOption("a100", 1.0, 100, 1, 8),), required=400.0)
    rich = Claim(
        "ns/rich",
        (ClaimOption("a100", 1.0, 100, 1, 8), ClaimOption("4090", 50.0, 100, 1, 8)),
        required=400.0,
    )
    joint = arbitrate({"a100": 4, "4090": 8}, [rich, only])
    assert joint.allotments["ns/only"].replicas == {"a100": 4}
    assert joint.allotments["ns/rich"].replicas == {"4090": 4}
    assert joint.shortfall == 0


def test_claims_are_checked() -> None:
    option = ClaimOption("a100", 1.0, 100, 1, 8)
    with pytest.raises(ArbiterError):
        arbitrate({"a100": 8}, [Claim("ns/a", (option,)), Claim("ns/a", (option,))])
    with pytest.raises(ArbiterError):
        Claim("ns/a", (option, option))
    with pytest.raises(ArbiterError):
        ClaimOption("a100", -1.0, 100, 1, 8)


def in_force_at_random(claims: list[Claim], rng: random.Random) -> list[Claim]:
    """The claims with random placements in force (some pools each, any count up to the cap)."""
    return [
        replace(
            c,
            current=tuple(
                (o.pool, rng.randint(0, o.upper)) for o in c.options if rng.random() < 0.7
            ),
        )
        for c in claims
    ]


@SETTINGS
@given(fleets(), st.randoms(use_true_random=False))
def test_the_placement_in_force_is_kept_only_within_the_keep_fraction(
    fleet: tuple[dict[str, int], list[Claim]], rng: random.Random
) -> None:
    pools, claims = fleet
    optimum = fleet_objective(
        claims, {k: a.replicas for k, a in arbitrate(pools, claims).allotments.items()}
    )
    running = in_force_at_random(claims, rng)
    joint = arbitrate(pools, running)
    got = fleet_objective(claims, {k: a.replicas for k, a in joint.allotments.items()})
    assert got <= optimum * (1 + KEEP_FRACTION) + 1e-6 * max(1.0, optimum)
    assert all(u <= pools[p] for p, u in used_units(pools, claims, joint).items())


@SETTINGS
@given(fleets(priorities=True), st.randoms(use_true_random=False))
def test_placements_in_force_across_priorities_fit_and_keep_the_top_tier_near_its_optimum(
    fleet: tuple[dict[str, int], list[Claim]], rng: random.Random
) -> None:
    """With placements in force, a lower tier may move a higher one (never to its cost): the
    split still fits, does not depend on the input order, and the highest tier stays within
    the keep fraction of its optimum."""
    pools, claims = fleet
    running = in_force_at_random(claims, rng)
    joint = arbitrate(pools, running)
    assert all(u <= pools[p] for p, u in used_units(pools, claims, joint).items())
    shuffled = list(running)
    random.Random(7).shuffle(shuffled)
    again = arbitrate(dict(reversed(list(pools.items()))), shuffled)
    placements = {k: a.replicas for k, a in joint.allotments.items()}
    assert {k: a.replicas for k, a in again.allotments.items()} == placements
    top = max(c.priority for c in claims)
    best = min(s[0] for s in brute_force(pools, claims))
    got = fleet_objective(claims, placements, top)
    assert got <= best * (1 + KEEP_FRACTION) + 1e-6 * max(1.0, best)


def test_a_near_tie_keeps_the_placement_in_force_and_a_real_saving_replaces_it() -> None:
    def claims(y_fallback: float, y_in_force: tuple[tuple[str, int], ...]) -> list[Claim]:
        x = Claim(
            "ns/x",
            (ClaimOption("a100", 1.0, 100, 1, 8), ClaimOption("4090", 3.0, 100, 1, 8)),
            min_replicas=4,
            max_replicas=4,
            current=(("4090", 4),),
        )
        y = Claim(
            "ns/y",
            (ClaimOption("a100", 1.0, 100, 1, 8), ClaimOption("l40s", y_fallback, 100, 1, 8)),
            min_replicas=4,
            max_replicas=4,
            current=y_in_force,
        )
        return [x, y]

    pools = {"a100": 4, "4090": 8, "l40s": 8}
    # y holds the A100s; x's fallback costs 2.0/h more per replica, y's 1.9: 1 % apart, kept.
    held = arbitrate(pools, claims(2.9, (("a100", 4),)))
    assert held.allotments["ns/y"].replicas == {"a100": 4}
    # y's fallback only 0.5/h dearer: giving x the A100s saves 1.5 × 4 of 16/h, so it moves.
    moved = arbitrate(pools, claims(1.5, (("a100", 4),)))
    assert moved.allotments["ns/x"].replicas == {"a100": 4}
    # Nothing in force (y new): the optimum, by a hair.
    fresh = arbitrate(pools, claims(2.9, ()))
    assert fresh.allotments["ns/x"].replicas == {"a100": 4}


def test_a_placement_kept_beside_free_capacity_is_not_displaced() -> None:
    """Kept on its dearer pool by the hysteresis while its preferred one has room: not Displaced
    (its planner may still move, within its cap), and the other is not Displacing."""
    y = Claim(
        "ns/y",
        (ClaimOption("a100", 1.0, 100, 1, 8), ClaimOption("l40s", 1.04, 100, 1, 8)),
        min_replicas=4,
        max_replicas=4,
        current=(("l40s", 4),),
    )
    x = Claim(
        "ns/x",
        (ClaimOption("a100", 1.0, 100, 1, 8),),
        min_replicas=2,
        max_replicas=2,
        current=(("a100", 2),),
    )
    joint = arbitrate({"a100": 8, "l40s": 8}, [x, y])
    assert joint.allotments["ns/y"].replicas == {"l40s": 4}
    assert joint.allotments["ns/y"].caps["a100"] == 6
    assert not joint.allotments["ns/y"].displaced_by
    assert not joint.allotments["ns/x"].displacing
