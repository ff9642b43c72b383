"""The enumeration that solves small placements agrees with HiGHS on cost and feasibility."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from deepseek_operator.core.planning import solver
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
