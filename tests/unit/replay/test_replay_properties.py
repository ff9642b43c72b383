"""Properties of the replay that must hold on any trace and any pools."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from deepseek_operator.core.replay.engine import (
    UNMET_EPSILON_TOKENS,
    Observation,
    PolicyRun,
    ReplayPool,
    RolloutRules,
    demand_timeline,
    replay,
)
from deepseek_operator.core.replay.oracle import OraclePolicy, solve_oracle
from deepseek_operator.core.replay.policies import (
    ClockRule,
    LoadOnlyPolicy,
    StaticPolicy,
    static_sizing,
    time_only_policy,
)
from deepseek_operator.core.replay.traces import TokenSeries

START = datetime(2024, 1, 1, tzinfo=UTC)
MIP_GAP = 1e-6

pool_strategy = st.builds(
    lambda kind, cost, rate, startup, limit, index: ReplayPool(
        name=f"{kind}-{index}",
        kind=kind,
        cost_per_replica_hour=cost,
        tokens_per_second_per_replica=rate,
        startup_seconds=startup,
        max_replicas=limit,
        gpus_per_replica=1 if kind == "gpu" else 0,
    ),
    kind=st.sampled_from(["gpu", "cpu"]),
    cost=st.floats(min_value=0.5, max_value=40.0),
    rate=st.floats(min_value=5.0, max_value=200.0),
    startup=st.sampled_from([0.0, 30.0, 60.0, 150.0]),
    limit=st.integers(min_value=1, max_value=6),
    index=st.integers(min_value=0, max_value=10_000),
)


def unique_pools(pools: list[ReplayPool]) -> tuple[ReplayPool, ...]:
    seen: dict[str, ReplayPool] = {}
    for pool in pools:
        seen.setdefault(pool.name, pool)
    return tuple(seen.values())


@settings(deadline=None, max_examples=25)
@given(
    rates=st.lists(st.floats(min_value=0.0, max_value=600.0), min_size=2, max_size=16),
    raw_pools=st.lists(pool_strategy, min_size=1, max_size=3),
    headroom=st.sampled_from([0.0, 0.2]),
    min_ready=st.integers(min_value=0, max_value=1),
)
def test_oracle_costs_no_more_than_any_policy_that_serves_as_much(
    rates: list[float], raw_pools: list[ReplayPool], headroom: float, min_ready: int
) -> None:
    pools = unique_pools(raw_pools)
    trace = TokenSeries(START, 30.0, np.array(rates) * 30.0, "generated")
    demand = demand_timeline(trace, 30.0, Observation(30.0, 60.0))
    rules = RolloutRules()
    gpus = [p for p in pools if p.kind == "gpu"] or list(pools)
    cpus = [p for p in pools if p.kind == "cpu"] or list(pools)
    half = ClockRule("first-half", lambda at: (at - START).total_seconds() < 240, (pools[0].name,))
    policies = [
        static_sizing("static-gpu", demand, gpus, headroom, min_ready)[0],
        static_sizing("static-cpu", demand, cpus, headroom, min_ready)[0],
        time_only_policy(demand, pools, [half], (pools[-1].name,), headroom, min_ready),
        LoadOnlyPolicy(pools[0], headroom, min_ready, pools[0].max_replicas, 30.0),
        StaticPolicy("everything", {p.name: p.max_replicas for p in pools}),
    ]
    runs: list[PolicyRun] = [replay(policy, demand, pools, rules) for policy in policies]
    solution = solve_oracle(demand, pools, min_ready=min_ready, mip_rel_gap=MIP_GAP)
    assert solution.optimal
    oracle = replay(OraclePolicy(solution, pools), demand, pools, rules)
    # The replay of the schedule is accounted exactly as the solver priced it.
    assert np.isclose(oracle.total_cost, solution.objective_cost, rtol=1e-9, atol=1e-9)
    assert np.isclose(oracle.unmet, solution.unmet_tokens, rtol=1e-9, atol=1e-6)
    # "everything" serves the most any schedule can, so the oracle serves as much.
    assert oracle.unmet <= runs[-1].unmet + 1e-6
    for run in runs:
        if run.unmet <= oracle.unmet + 1e-6:
            assert oracle.total_cost <= run.total_cost * (1 + MIP_GAP) + 1e-9, run.name


@settings(deadline=None, max_examples=40)
@given(
    rates=st.lists(st.floats(min_value=0.0, max_value=1_000.0), min_size=1, max_size=40),
    bin_seconds=st.sampled_from([1.0, 7.0, 15.0]),
    step_seconds=st.sampled_from([15.0, 30.0, 60.0]),
    raw_pools=st.lists(pool_strategy, min_size=1, max_size=3),
)
def test_no_unmet_demand_when_ready_capacity_covers_every_step(
    rates: list[float], bin_seconds: float, step_seconds: float, raw_pools: list[ReplayPool]
) -> None:
    pools = unique_pools(raw_pools)
    trace = TokenSeries(START, bin_seconds, np.array(rates) * bin_seconds, "generated")
    demand = demand_timeline(trace, step_seconds)
    total = sum(p.max_replicas * p.tokens_per_second_per_replica for p in pools)
    scale = min(1.0, 0.99 * total / max(float(demand.arriving_tokens_per_second.max()), 1e-9))
    scaled = demand_timeline(
        TokenSeries(START, bin_seconds, trace.tokens * scale, "scaled"), step_seconds
    )
    run = replay(StaticPolicy("all", {p.name: p.max_replicas for p in pools}), scaled, pools)
    capacity = run.capacity_tokens_per_second.sum(axis=0) * step_seconds
    assert (capacity >= scaled.arriving_tokens).all()
    assert run.unmet == 0.0 and run.unmet_minutes == 0.0
    # And wherever a policy falls short, unmet is exactly the shortfall.
    half = {p.name: p.max_replicas // 2 for p in pools}
    short = replay(StaticPolicy("half", half), scaled, pools)
    gap = scaled.arriving_tokens - short.capacity_tokens_per_second.sum(axis=0) * step_seconds
    assert np.allclose(short.unmet_tokens, np.where(gap > UNMET_EPSILON_TOKENS, gap, 0.0))
    assert np.isclose(trace.total_tokens * scale, scaled.arriving_tokens.sum())
