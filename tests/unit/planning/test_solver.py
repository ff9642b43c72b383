"""The exact solvers agree: the enumeration with HiGHS on cost and feasibility; the
branch-and-bound with the enumeration placement for placement, and with HiGHS at ten pools."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from deepseek_operator.core.planning import solver
from deepseek_operator.core.planning.planner import (
    Load,
    PlanSpec,
    PoolOption,
    PoolReplicas,
    ReplicaBounds,
    plan,
)
from deepseek_operator.core.planning.solver import PoolTerms


@st.composite
def instances(draw: st.DrawFn) -> tuple[list[PoolTerms], float, int, int]:
    terms = []
    for _ in range(draw(st.integers(1, 4))):
        upper = draw(st.integers(0, 8))
        lower = draw(st.integers(0, upper))
        cost = draw(st.floats(0.1, 100.0, allow_nan=False))
        rate = draw(st.floats(0.5, 500.0, allow_nan=False))
        least = draw(st.sampled_from([0, 0, 1, 2, 3, 9]))  # floor when used
        terms.append(PoolTerms(cost, rate, lower, upper, least))
    required = draw(st.floats(0.0, 3000.0, allow_nan=False))
    low = draw(st.integers(0, 6))
    high = draw(st.integers(low, 20))
    return terms, required, low, high


@settings(max_examples=200, deadline=None)
@given(instances())
def test_enumeration_matches_highs(instance: tuple[list[PoolTerms], float, int, int]) -> None:
    terms, required, low, high = instance
    enumerated, answer = solver._enumerate_min_cost(terms, required, low, high)
    assert enumerated
    highs = solver._milp([t.cost for t in terms], terms, required, low, high)
    if highs is not None and not solver.is_feasible(terms, highs, required, low, high):
        highs = solver._milp(
            [t.cost for t in terms], terms, required * (1 + 1e-6) + 1e-6, low, high
        )
    assert (answer is None) == (highs is None)
    if answer is not None and highs is not None:
        assert solver.is_feasible(terms, answer, required, low, high)
        cheapest = solver.objective(terms, highs)
        assert solver.objective(terms, answer) <= cheapest + 1e-9 * max(1.0, cheapest)


def test_large_instances_go_to_highs() -> None:
    terms = [PoolTerms(1.0 + i, 10.0, 0, 30) for i in range(4)]  # 31^4 placements
    enumerated, _ = solver._enumerate_min_cost(terms, 100.0, 0, 100)
    assert not enumerated
    assert solver.solve_min_cost(terms, 100.0, 0, 100) == (10, 0, 0, 0)


def test_ties_take_the_fewest_replicas() -> None:
    terms = [PoolTerms(2.0, 25.0, 0, 4), PoolTerms(1.0, 10.0, 0, 4)]
    # 1 × pool 0 (cost 2, 25 tok/s) and 2 × pool 1 (cost 2, 20 tok/s) tie on cost.
    assert solver.solve_min_cost(terms, 20.0, 0, 8) == (1, 0)


# --------------------------------------------------------------------------------------------
# The branch-and-bound that solves instances too big to enumerate, in HiGHS's place.


def _floor(required: float) -> float:
    return required - solver.CAPACITY_TOLERANCE * max(1.0, required)


@st.composite
def tied_instances(draw: st.DrawFn) -> tuple[list[PoolTerms], float, int, int]:
    """Small instances with whole-number prices and rates, so that ties are common."""
    terms = []
    for _ in range(draw(st.integers(1, 4))):
        upper = draw(st.integers(0, 8))
        lower = draw(st.integers(0, upper)) if draw(st.booleans()) else 0
        cost = float(draw(st.integers(0, 6)))
        rate = float(draw(st.sampled_from([0, 5, 10, 15, 20, 30])))
        least = draw(st.sampled_from([0, 0, 1, 2, 3, 9]))
        terms.append(PoolTerms(cost, rate, lower, upper, least))
    required = float(draw(st.integers(0, 300)))
    low = draw(st.integers(0, 6))
    high = draw(st.integers(low, 20))
    return terms, required, low, high


@settings(max_examples=300, deadline=None)
@given(instances() | tied_instances())
def test_branch_and_bound_returns_the_enumerations_placement(
    instance: tuple[list[PoolTerms], float, int, int],
) -> None:
    """Not only as cheap: the very placement the enumeration picks (least cost within 1e-12,
    then fewest replicas, then first in pool order), ties and infeasibility included."""
    terms, required, low, high = instance
    enumerated, expected = solver._enumerate_min_cost(terms, required, low, high)
    assert enumerated
    found = solver._branch_and_bound_min_cost(terms, _floor(required), low, high, 10**7)
    assert found == expected


@settings(max_examples=200, deadline=None)
@given(instances() | tied_instances())
def test_branch_and_bound_max_capacity_matches_the_enumeration(
    instance: tuple[list[PoolTerms], float, int, int],
) -> None:
    terms, _, low, high = instance
    searched = solver.solve_max_capacity(terms, low, high)
    saved = solver.BRANCH_AND_BOUND_NODES
    solver.BRANCH_AND_BOUND_NODES = 0  # the enumeration, as before the branch-and-bound
    try:
        enumerated = solver.solve_max_capacity(terms, low, high)
    finally:
        solver.BRANCH_AND_BOUND_NODES = saved
    assert searched == enumerated


@st.composite
def fleet_instances(draw: st.DrawFn) -> tuple[list[PoolTerms], float, int, int]:
    """Ten pools of up to 16 replicas, some entered only with a floor: too many placements to
    enumerate (17^10), the size the planner benchmark measures."""
    terms = []
    for _ in range(10):
        gpu = draw(st.booleans())
        rate = draw(st.floats(100, 800) if gpu else st.floats(5, 40))
        price = draw(st.floats(0.03, 0.2))
        upper = draw(st.integers(1, 16))
        least = draw(st.sampled_from([0, 0, 0, 1, 2, 3, 5, 20]))
        terms.append(PoolTerms(round(rate * price, 2), round(rate, 1), 0, upper, least))
    reach = sum(t.tokens_per_second * t.upper for t in terms)
    required = reach * draw(st.floats(0.0, 0.9))
    low = draw(st.integers(0, 3))
    high = draw(st.integers(max(low, 1), 80))
    return terms, required, low, high


def _highs_min_cost(
    terms: list[PoolTerms], required: float, low: int, high: int
) -> tuple[int, ...] | None:
    saved = solver.BRANCH_AND_BOUND_NODES
    solver.BRANCH_AND_BOUND_NODES = 0
    try:
        return solver.solve_min_cost(terms, required, low, high)
    finally:
        solver.BRANCH_AND_BOUND_NODES = saved


@settings(max_examples=150, deadline=None)
@given(fleet_instances())
def test_branch_and_bound_equals_highs_at_ten_pools(
    instance: tuple[list[PoolTerms], float, int, int],
) -> None:
    """Same feasibility and cost as HiGHS; where HiGHS's placement is as cheap but a different
    one, the branch-and-bound's comes first under the tie rule (fewer replicas, then first)."""
    terms, required, low, high = instance
    searched, found = solver._search_min_cost(terms, _floor(required), low, high)
    event(f"branch-and-bound finished: {searched}")
    if not searched:
        # Out of nodes (degenerate ties the search cannot tell apart): HiGHS answers instead.
        found = solver.solve_min_cost(terms, required, low, high)
        assert found == _highs_min_cost(terms, required, low, high)
        return
    highs = _highs_min_cost(terms, required, low, high)
    assert (found is None) == (highs is None)
    if found is None or highs is None:
        return
    assert solver.is_feasible(terms, found, required, low, high)
    cost, cheapest = solver.objective(terms, found), solver.objective(terms, highs)
    assert math.isclose(cost, cheapest, rel_tol=1e-9, abs_tol=1e-9)
    if highs != found and cheapest <= cost + 1e-12 * max(1.0, cost):
        assert (sum(found), found) < (sum(highs), highs)
    assert solver.solve_min_cost(terms, required, low, high) == found


@settings(max_examples=60, deadline=None)
@given(fleet_instances())
def test_branch_and_bound_max_capacity_equals_highs_at_ten_pools(
    instance: tuple[list[PoolTerms], float, int, int],
) -> None:
    terms, _, low, high = instance
    found = solver.solve_max_capacity(terms, low, high)
    saved = solver.BRANCH_AND_BOUND_NODES
    solver.BRANCH_AND_BOUND_NODES = 0
    try:
        highs = solver.solve_max_capacity(terms, low, high)
    finally:
        solver.BRANCH_AND_BOUND_NODES = saved
    assert (found is None) == (highs is None)
    if found is None or highs is None:
        return
    most = solver.capacity(terms, highs)
    assert math.isclose(solver.capacity(terms, found), most, rel_tol=1e-9)
    cost, cheapest = solver.objective(terms, found), solver.objective(terms, highs)
    assert cost <= cheapest + 1e-9 * max(1.0, cheapest)


def _seeded_instances(count: int) -> list[tuple[list[PoolTerms], float, int, int]]:
    rng = random.Random(16)
    result = []
    for _ in range(count):
        terms = [
            PoolTerms(
                round(rng.uniform(0.5, 60), 2),
                round(rng.uniform(5, 600), 1),
                0,
                rng.randint(0, 8),
                rng.choice([0, 0, 2, 3]),
            )
            for _ in range(rng.randint(2, 5))
        ]
        reach = sum(t.tokens_per_second * t.upper for t in terms)
        result.append((terms, reach * rng.uniform(0.05, 0.9), rng.randint(0, 2), 30))
    return result


def test_an_invalid_cut_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The equality with the enumeration has teeth: cutting nodes whose bound is up to 20%
    below the incumbent (as an overestimating bound would) changes answers on these instances,
    while the shipped slack changes none."""

    monkeypatch.setattr(solver, "ENUMERATION_LIMIT", 10**6)

    def disagreements() -> int:
        wrong = 0
        for terms, required, low, high in _seeded_instances(300):
            enumerated, expected = solver._enumerate_min_cost(terms, required, low, high)
            assert enumerated
            found = solver._branch_and_bound_min_cost(terms, _floor(required), low, high, 10**7)
            wrong += found != expected
        return wrong

    assert disagreements() == 0
    monkeypatch.setattr(solver, "_PRUNE_SLACK", -0.2)
    assert disagreements() > 0


def test_out_of_nodes_falls_back_to_highs(monkeypatch: pytest.MonkeyPatch) -> None:
    terms = [PoolTerms(1.0 + i, 10.0 + 3 * i, 0, 30) for i in range(4)]  # 31^4 placements
    assert solver._branch_and_bound_min_cost(terms, 101.0, 0, 100, 100) == (9, 1, 0, 0)
    monkeypatch.setattr(solver, "BRANCH_AND_BOUND_NODES", 3)
    with pytest.raises(solver._OutOfNodes):
        solver._branch_and_bound_min_cost(terms, 101.0, 0, 100, 3)
    calls = []
    real = solver._milp

    def counted(*args: object, **kwargs: object) -> tuple[int, ...] | None:
        calls.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(solver, "_milp", counted)
    found = solver.solve_min_cost(terms, 101.0, 0, 100)
    assert calls
    assert found is not None and solver.objective(terms, found) == 11.0  # as (9, 1, 0, 0)


def test_ties_take_the_fewest_replicas_beyond_the_enumeration() -> None:
    # 31^4 placements: the branch-and-bound decides. 1 × pool 0 and 2 × pool 1 tie on cost.
    terms = [PoolTerms(2.0, 25.0, 0, 30), PoolTerms(1.0, 10.0, 0, 30)] + [
        PoolTerms(9.0, 1.0, 0, 30)
    ] * 2
    assert solver.solve_min_cost(terms, 20.0, 0, 8) == (1, 0, 0, 0)
    # Equal cost and count: the first in the enumeration's order, where the last pool varies
    # fastest (the lexicographically smallest placement), as the enumeration picks it.
    twins = [PoolTerms(1.0, 10.0, 0, 30)] * 4
    assert solver.solve_min_cost(twins, 20.0, 0, 8) == (0, 0, 0, 2)
    assert solver._enumerate_min_cost(twins[:2], 20.0, 0, 8) == (True, (0, 2))


def test_the_benchmark_instances_never_run_out_of_nodes() -> None:
    """On the planner benchmark's ten-pool instances the branch-and-bound always finishes (the
    latency goal depends on it), and agrees with HiGHS on cost."""
    rng = random.Random(7)
    for _ in range(60):
        terms = []
        for _ in range(10):
            gpu = rng.random() < 0.6
            rate = rng.uniform(100, 800) if gpu else rng.uniform(5, 40)
            price = rng.uniform(0.04, 0.12) if gpu else rng.uniform(0.03, 0.2)
            upper = rng.randint(1, 16)
            terms.append(PoolTerms(round(rate * price, 2), round(rate, 1), 0, upper))
        required = rng.uniform(0.05, 0.6) * 1.2 * sum(t.tokens_per_second * t.upper for t in terms)
        searched, found = solver._search_min_cost(terms, _floor(required), 1, 80)
        assert searched
        highs = _highs_min_cost(terms, required, 1, 80)
        assert (found is None) == (highs is None)
        if found is not None and highs is not None:
            cheapest = solver.objective(terms, highs)
            assert math.isclose(solver.objective(terms, found), cheapest, rel_tol=1e-9)


def test_plans_are_unchanged_at_ten_pools() -> None:
    """plan() with the branch-and-bound returns the very plan it returned with HiGHS (the MILP
    path: ``BRANCH_AND_BOUND_NODES = 0``), growing a running placement or moving it."""
    rng = random.Random(16)
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    spec = PlanSpec(replicas=ReplicaBounds(1, 40), load=Load(0, 0))
    for _ in range(30):
        pools = []
        for i in range(10):
            gpu = rng.random() < 0.6
            rate = rng.uniform(100, 800) if gpu else rng.uniform(5, 40)
            pools.append(
                PoolOption(
                    name=f"pool-{i}",
                    kind="gpu" if gpu else "cpu",
                    variant="r1",
                    capacity_replicas=rng.randint(1, 16),
                    replica_cost_per_hour=round(rate * rng.uniform(0.03, 0.2), 2),
                    tokens_per_second_per_replica=round(rate, 1),
                    tokens_per_second_per_request=30.0,
                )
            )
        reach = sum(p.tokens_per_second_per_replica * p.capacity_replicas for p in pools)
        demand = rng.uniform(0.05, 0.6) * reach
        running = [PoolReplicas(pools[rng.randrange(10)].name, 1, 1)]
        searched = plan(spec, pools, running, demand, now)
        saved = solver.BRANCH_AND_BOUND_NODES
        solver.BRANCH_AND_BOUND_NODES = 0
        try:
            highs = plan(spec, pools, running, demand, now)
        finally:
            solver.BRANCH_AND_BOUND_NODES = saved
        assert searched == highs
