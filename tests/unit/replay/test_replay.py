"""The replay engine and every policy on a trace small enough to work out by hand.

Every expected number below is derived in the comments from the pools and the trace, not read
back from the code.

Pools: `gpu` costs 36/h (0.01/s), serves 100 tok/s, starts in 60 s, at most 4 replicas, 1 GPU
each; `cpu` costs 3.6/h (0.001/s), serves 10 tok/s, starts at once, at most 10 replicas.
Trace: six one-minute steps at 50, 50, 250, 250, 50, 50 tok/s (42,000 tokens). Prometheus
scrapes every 60 s with a 120 s rate window, so at step k the operator sees minute k-1.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from deepseek_operator.core.planning.planner import (
    Load,
    Migration,
    PlanSpec,
    PoolOption,
    ReplicaBounds,
    Slo,
)
from deepseek_operator.core.replay.engine import (
    Observation,
    ReplayPool,
    RolloutRules,
    demand_timeline,
    replay,
)
from deepseek_operator.core.replay.inputs import ReplayInputs
from deepseek_operator.core.replay.oracle import OraclePolicy, OracleRules, solve_oracle
from deepseek_operator.core.replay.policies import (
    ClockRule,
    LoadOnlyPolicy,
    StaticPolicy,
    cheapest_mix,
    static_sizing,
    time_only_policy,
)
from deepseek_operator.core.replay.traces import TokenSeries
from tests.unit.replay.hand import hand_inputs, operator_policy

GPU = ReplayPool("gpu", "gpu", 36.0, 100.0, 60.0, 4, gpus_per_replica=1)
CPU = ReplayPool("cpu", "cpu", 3.6, 10.0, 0.0, 10)
POOLS = (GPU, CPU)
START = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
RATES = [50.0, 50.0, 250.0, 250.0, 50.0, 50.0]
OBSERVATION = Observation(scrape_interval_seconds=60, rate_window_seconds=120)
RULES = RolloutRules()


def series(rates: list[float], bin_seconds: float = 60.0) -> TokenSeries:
    return TokenSeries(START, bin_seconds, np.array(rates) * bin_seconds, "hand-made")


def timeline(rates: list[float] = RATES) -> object:
    return demand_timeline(series(rates), 60.0, OBSERVATION)


def test_operator_sees_the_previous_minute_and_the_first_window_before_the_trace() -> None:
    demand = demand_timeline(series(RATES), 60.0, OBSERVATION)
    assert demand.arriving_tokens.tolist() == [r * 60 for r in RATES]
    # Step 0 sees the service as if it had run at the first window's mean (50) before.
    assert demand.observed_tokens_per_second.tolist() == [50, 50, 50, 250, 250, 50]


def test_step_instants_stay_exact_across_a_daylight_saving_change() -> None:
    # Berlin springs forward at 02:00 on 2024-03-31: three hours after local midnight it is
    # 04:00 CEST. Wall-clock arithmetic on the local start said 03:00, so every schedule window
    # after the change was evaluated an hour late.
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2024, 3, 31, tzinfo=berlin)
    demand = demand_timeline(TokenSeries(start, 3600.0, np.ones(6), "dst"), 3600.0)
    for step in range(6):
        assert (demand.at(step) - start).total_seconds() == step * 3600.0
    assert demand.at(3).astimezone(berlin).hour == 4


def test_rate_window_and_scrape_delay_smooth_and_lag_a_spike() -> None:
    spike = [0.0] * 10 + [600.0] + [0.0] * 9  # one 60 s burst in 20 steps of 15 s... at 60 s bins
    demand = demand_timeline(
        series(spike), 15.0, Observation(scrape_interval_seconds=30, rate_window_seconds=120)
    )
    observed = demand.observed_tokens_per_second
    # The burst lives in [600 s, 660 s). Reconcile steps are 15 s; scrapes every 30 s.
    at = {round(i * 15): v for i, v in enumerate(observed)}
    assert at[600] == 0.0  # the scrape at 600 s has not seen any of it
    # At 630 s the window (510, 630] holds scrapes 540..630: 30 s of burst over 90 s.
    assert at[630] == pytest.approx(600.0 * 30 / 90)
    assert at[645] == pytest.approx(600.0 * 30 / 90)  # no new scrape yet
    # At 720 s the window (600, 720] holds scrapes 630..720: 30 s of burst over 90 s.
    assert at[720] == pytest.approx(600.0 * 30 / 90)
    # By 780 s the burst has left the window.
    assert at[780] == 0.0


def test_static_gpu_sized_for_the_peak_meets_everything() -> None:
    demand = demand_timeline(series(RATES), 60.0, OBSERVATION)
    policy, sizing = static_sizing("static-gpu", demand, [GPU], headroom=0.0, min_replicas=1)
    assert sizing.placement == {"gpu": 3}  # 250 tok/s needs ceil(250/100) = 3
    run = replay(policy, demand, POOLS, RULES)
    assert run.total_cost == pytest.approx(3 * 0.01 * 360)  # 10.8
    assert run.unmet == 0.0
    assert run.unmet_minutes == 0.0
    assert run.gpu_hours == pytest.approx(3 * 0.1)
    assert run.moves == 0
    assert run.cost_per_million_tokens == pytest.approx(10.8 / 0.042)


def test_static_cpu_is_capped_by_the_pool_and_misses_the_peak() -> None:
    demand = demand_timeline(series(RATES), 60.0, OBSERVATION)
    policy, sizing = static_sizing("static-cpu", demand, [CPU], headroom=0.0, min_replicas=1)
    assert sizing.placement == {"cpu": 10} and not sizing.covers_demand
    run = replay(policy, demand, POOLS, RULES)
    assert run.total_cost == pytest.approx(10 * 0.001 * 360)  # 3.6
    # Two peak minutes at 250 tok/s against 100 tok/s of CPU: 150 x 60 tokens each.
    assert run.unmet == pytest.approx(2 * 150 * 60)
    assert run.unmet_percent == pytest.approx(100 * 18000 / 42000)
    assert run.unmet_minutes == 2.0
    assert run.gpu_hours == 0.0


def test_load_only_reacts_a_scrape_late_and_holds_through_stabilisation() -> None:
    demand = demand_timeline(series(RATES), 60.0, OBSERVATION)
    policy = LoadOnlyPolicy(GPU, headroom=0.0, min_replicas=1, max_replicas=4, step_seconds=60)
    run = replay(policy, demand, POOLS, RULES)
    # Steps 0-2 see 50 tok/s: 1 replica. Step 3 sees 250: scales to 3, ready at step 4.
    # Step 5 sees 50 again, but the 300 s stabilisation window still holds 3.
    assert run.billed[0].tolist() == [1, 1, 1, 3, 3, 3]
    assert run.ready[0].tolist() == [1, 1, 1, 1, 3, 3]
    assert run.total_cost == pytest.approx(12 * 0.01 * 60)  # 12 replica-minutes: 7.2
    assert run.unmet == pytest.approx(2 * 150 * 60)  # steps 2 and 3 at 100 of 250 tok/s
    assert run.unmet_minutes == 2.0
    assert run.moves == 1
    assert run.gpu_hours == pytest.approx(0.2)


def test_load_only_with_a_scale_up_window_rides_out_a_burst_shorter_than_it() -> None:
    """A scale-up stabilisation window (the HPA's behavior.scaleUp) takes the lowest
    recommendation it saw: a one-step burst inside a 120 s window adds nothing."""
    burst = demand_timeline(series([50.0] * 3 + [250.0] + [50.0] * 4), 60.0, OBSERVATION)
    at_once = LoadOnlyPolicy(GPU, 0.0, 1, 4, 60, scale_up_stabilization_seconds=0)
    windowed = LoadOnlyPolicy(GPU, 0.0, 1, 4, 60, scale_up_stabilization_seconds=120)
    # Seen a scrape late, at step 4.
    assert replay(at_once, burst, POOLS, RULES).billed[0].tolist() == [1, 1, 1, 1, 3, 3, 3, 3]
    assert replay(windowed, burst, POOLS, RULES).billed[0].tolist() == [1] * 8
    # A rise that outlasts the window is followed, a window late.
    rise = demand_timeline(series([50.0] * 3 + [250.0] * 5), 60.0, OBSERVATION)
    windowed = LoadOnlyPolicy(GPU, 0.0, 1, 4, 60, scale_up_stabilization_seconds=120)
    assert replay(windowed, rise, POOLS, RULES).billed[0].tolist() == [1, 1, 1, 1, 1, 3, 3, 3]


def test_load_only_tolerance_is_a_parameter() -> None:
    """With a 50 % tolerance a 40 % rise over the target is kept; with the HPA's 10 % it is not."""
    demand = demand_timeline(series([100.0] * 3 + [140.0] * 3), 60.0, OBSERVATION)
    wide = LoadOnlyPolicy(GPU, 0.0, 1, 4, 60, tolerance=0.5)
    narrow = LoadOnlyPolicy(GPU, 0.0, 1, 4, 60)
    assert replay(wide, demand, POOLS, RULES).billed[0].tolist() == [1] * 6
    assert replay(narrow, demand, POOLS, RULES).billed[0].tolist() == [1, 1, 1, 1, 2, 2]


def test_time_only_switches_by_the_clock_with_make_before_break() -> None:
    demand = demand_timeline(series(RATES), 60.0, OBSERVATION)
    rush = ClockRule("rush", lambda at: at.minute in (2, 3), ("gpu",))
    policy = time_only_policy(demand, POOLS, [rush], ("cpu",), headroom=0.0, min_replicas=1)
    run = replay(policy, demand, POOLS, RULES)
    # rush: peak 250 -> 3 GPUs; otherwise peak 50 -> 5 CPUs.
    # Step 2: 3 GPUs start (ready at 3), CPUs stay until then; step 3: CPUs stop;
    # step 4: CPUs start at once and the GPUs stop.
    assert run.billed.tolist() == [[0, 0, 3, 3, 0, 0], [5, 5, 5, 0, 5, 5]]
    assert run.ready.tolist() == [[0, 0, 0, 3, 0, 0], [5, 5, 5, 0, 5, 5]]
    cost = (5 * 0.001 * 60) * 5 + 3 * 0.01 * 60 * 2  # 25 CPU- and 6 GPU-replica-minutes
    assert run.total_cost == pytest.approx(cost)  # 5.1
    assert run.unmet == pytest.approx((250 - 50) * 60)  # step 2 runs on 5 CPUs
    assert run.moves == 4


def test_oracle_starts_gpus_ahead_of_the_peak_and_pays_the_least() -> None:
    demand = demand_timeline(series(RATES), 60.0, OBSERVATION)
    solution = solve_oracle(demand, POOLS, min_ready=1)
    assert solution.optimal and solution.factor == 1
    # 50 tok/s: 5 CPUs (0.005/s) beat a GPU (0.01/s). 250 tok/s: 2 GPUs + 5 CPUs (0.025/s) beat
    # 3 GPUs (0.03/s); the GPUs start one step early to be ready at step 2. Cost: 5 CPUs for six
    # minutes (1.8) plus 2 GPUs billed for three minutes (3.6) = 5.4. (One GPU from the start
    # instead of CPUs in minutes 0-1, started with the second GPU, ties at 5.4.)
    assert solution.ready[0, 2:].tolist() == [2, 2, 0, 0]
    assert solution.ready[1, 2:].tolist() == [5, 5, 5, 5]
    run = replay(OraclePolicy(solution, POOLS), demand, POOLS, RULES)
    assert run.total_cost == pytest.approx(5.4)
    assert solution.objective_cost == pytest.approx(5.4)
    assert run.ready.tolist() == solution.ready.tolist()
    assert run.unmet == 0.0


def test_oracle_starts_in_time_for_a_peak_on_the_last_step() -> None:
    # One pool, 100 tok/s per replica, ready one 30 s step after it starts, 3,600 per hour
    # (30 per replica-step). Demand: one replica's worth, nothing, then two replicas' worth at
    # the last step. By hand: keep 1 at step 0, stop it, start 2 at step 3 (billed there),
    # 2 ready at step 4: 1 + 2 + 2 = 5 replica-steps = 150. Holding replicas instead costs 7.
    pool = ReplayPool("gpu", "gpu", 3600.0, 100.0, 30.0, 4, gpus_per_replica=1)
    rates = [100.0, 0.0, 0.0, 0.0, 200.0]
    demand = demand_timeline(
        TokenSeries(START, 30.0, np.array(rates) * 30.0, "hand-made"), 30.0, Observation(30, 60)
    )
    solution = solve_oracle(demand, (pool,))
    assert solution.ready.tolist() == [[1, 0, 0, 0, 2]]
    assert solution.objective_cost == pytest.approx(150.0)
    run = replay(OraclePolicy(solution, (pool,)), demand, (pool,), RolloutRules())
    assert run.unmet == 0.0 and run.total_cost == pytest.approx(150.0)


def test_cheapest_mix_prefers_the_cheaper_tokens_and_respects_minimum() -> None:
    assert cheapest_mix(250, POOLS).placement == {"gpu": 2, "cpu": 5}
    assert cheapest_mix(0, POOLS, min_replicas=1).placement == {"gpu": 0, "cpu": 1}
    assert cheapest_mix(85, POOLS).placement == {"gpu": 0, "cpu": 9}  # 0.009/s < 0.01/s


def test_make_before_break_keeps_the_old_pool_until_the_new_one_is_ready() -> None:
    demand = demand_timeline(series([50.0] * 5), 60.0, OBSERVATION)

    class MoveToGpu:
        name = "move"

        def decide(self, view: object) -> dict[str, int]:
            index = view.index  # type: ignore[attr-defined]
            return {"cpu": 5} if index == 0 else {"gpu": 1}

    slow_gpu = ReplayPool("gpu", "gpu", 36.0, 100.0, 150.0, 4, gpus_per_replica=1)
    run = replay(MoveToGpu(), demand, (slow_gpu, CPU), RULES)
    # 150 s startup = 3 steps: the GPU starts at step 1 and is ready at step 4; CPUs stop then.
    assert run.ready.tolist() == [[0, 0, 0, 0, 1], [5, 5, 5, 5, 0]]
    assert run.billed.tolist() == [[0, 1, 1, 1, 1], [5, 5, 5, 5, 0]]
    assert run.unmet == 0.0


def test_surge_limit_starts_gpus_a_few_at_a_time() -> None:
    demand = demand_timeline(series([0.0] * 4), 60.0, OBSERVATION)
    policy = StaticPolicy("grow", {"gpu": 4})

    class Grow:
        name = "grow"

        def decide(self, view: object) -> dict[str, int]:
            return {"gpu": 0, "cpu": 1} if view.index == 0 else policy.placement  # type: ignore[attr-defined]

    run = replay(Grow(), demand, POOLS, RolloutRules(max_surge_gpus=2))
    # 2 GPUs start at step 1 (ready at 2), the next 2 at step 2 (ready at 3).
    assert run.billed[0].tolist() == [0, 2, 4, 4]
    assert run.ready[0].tolist() == [0, 0, 2, 4]
    assert run.billed[1].tolist() == [1, 1, 1, 0]  # the CPU stops once nothing is starting


def test_a_plan_for_fewer_replicas_is_reached_at_once() -> None:
    # Nothing is starting, so the replicas the plan drops stop in the step it drops them: a
    # scale-down is not a move, and minAvailable guards moves (make-before-break) only.
    demand = demand_timeline(series([0.0] * 3), 60.0, OBSERVATION)

    class Shrink:
        name = "shrink"

        def decide(self, view: object) -> dict[str, int]:
            return {"cpu": 4} if view.index == 0 else {"cpu": 1}  # type: ignore[attr-defined]

    run = replay(Shrink(), demand, POOLS, RULES)
    assert run.ready[1].tolist() == [4, 1, 1]


def test_coarse_oracle_covers_every_fine_step_and_costs_at_least_the_fine_optimum() -> None:
    rates = [50.0, 50.0, 250.0, 90.0, 50.0, 250.0, 40.0, 50.0, 50.0]
    demand = demand_timeline(series(rates), 60.0, OBSERVATION)
    fine = solve_oracle(demand, POOLS, min_ready=1)
    coarse = solve_oracle(demand, POOLS, min_ready=1, max_steps=3)
    assert coarse.factor == 3 and coarse.step_seconds == 180.0
    run = replay(OraclePolicy(coarse, POOLS), demand, POOLS, RULES)
    assert run.unmet == 0.0  # sized for each coarse step's peak minute
    assert run.total_cost == pytest.approx(coarse.objective_cost)
    assert run.total_cost >= fine.objective_cost - 1e-9
    assert "coarsened 3x" in coarse.describe()


@pytest.mark.parametrize("extra_tokens", [0.0018, 0.05])
def test_oracle_serves_a_sliver_of_demand_the_solver_tolerance_would_let_slip(
    extra_tokens: float,
) -> None:
    # HiGHS accepts a replica count within 1e-6 of an integer; 1e-6 of a replica-step of this
    # pool (1,860 tokens) is 0.0019 tokens, so a replica count of 1e-6 "covered" a demand the
    # accounting counts as unmet once rounded to whole replicas.
    pool = ReplayPool("gpu", "gpu", 1.0, 62.0, 0.0, 3, gpus_per_replica=1)
    for whole_replicas in (0, 2):
        tokens = whole_replicas * 62.0 * 30.0 + extra_tokens
        demand = demand_timeline(
            TokenSeries(START, 30.0, np.array([0.0, tokens]), "sliver"), 30.0, Observation(30, 60)
        )
        # Without rules (unmet known in closed form) and with the deployment's per-step rules
        # (the two-phase solve replay always runs).
        for rules in (None, OracleRules(min_ready=np.zeros(2, dtype=np.int64))):
            solution = solve_oracle(demand, (pool,), min_ready=0, rules=rules)
            run = replay(OraclePolicy(solution, (pool,)), demand, (pool,), RolloutRules())
            assert run.unmet == 0.0, (whole_replicas, rules, solution.ready.tolist())
            assert solution.ready[0, 1] == whole_replicas + 1
            assert solution.unmet_tokens == 0.0


def test_oracle_obeys_the_pools_allowed_per_step_even_across_a_coarse_edge() -> None:
    demand = demand_timeline(series([50.0] * 6), 60.0, OBSERVATION)
    # CPU only for minutes 0-3, GPU only from minute 4 (a cpuOnly window, then gpuOnly).
    allowed = np.array([[False] * 4 + [True] * 2, [True] * 4 + [False] * 2])
    rules = OracleRules(allowed=allowed, min_ready=np.ones(6, dtype=np.int64))
    fine = solve_oracle(demand, POOLS, rules=rules)
    assert fine.ready.tolist() == [[0, 0, 0, 0, 1, 1], [5, 5, 5, 5, 0, 0]]
    # The GPU starts one minute early to be ready at minute 4: billed from minute 3.
    assert fine.objective_cost == pytest.approx(4 * 0.3 + 3 * 0.6)
    # At a 3-minute step the edge falls inside the second step, where either pool may serve.
    coarse = solve_oracle(demand, POOLS, rules=rules, max_steps=2)
    run = replay(OraclePolicy(coarse, POOLS), demand, POOLS, RULES)
    assert run.unmet == 0.0
    assert run.ready[0, :3].tolist() == [0, 0, 0]


def planner_inputs(pools: tuple[ReplayPool, ...]) -> ReplayInputs:
    """The planner with no stabilisation and no move gate: it follows the observed demand."""
    options = tuple(
        PoolOption(
            name=p.name,
            kind=p.kind,
            variant="hand",
            capacity_replicas=p.max_replicas,
            replica_cost_per_hour=p.cost_per_replica_hour,
            tokens_per_second_per_replica=p.tokens_per_second_per_replica,
            tokens_per_second_per_request=20.0,
            startup_seconds=p.startup_seconds,
            gpus_per_replica=p.gpus_per_replica,
        )
        for p in pools
    )
    spec = PlanSpec(
        replicas=ReplicaBounds(1, 14),
        slo=Slo(headroom_fraction=0.0),
        load=Load(0, 0),
        migration=Migration(
            min_available=1, cooldown_seconds=0, min_savings_percent=0, min_dwell_seconds=0
        ),
    )
    return hand_inputs(spec, options, RULES, 60.0)


def test_ours_on_one_pool_follows_the_observed_minute() -> None:
    inputs = planner_inputs((GPU,))
    demand = demand_timeline(series(RATES), 60.0, OBSERVATION)
    run = replay(operator_policy(inputs), demand, inputs.pools, RULES)
    # Observed 50, 50, 50, 250, 250, 50 -> ceil(x / 100) = 1, 1, 1, 3, 3, 1 replicas; the two
    # added at step 3 are Ready at step 4, the extra two stop at step 5.
    assert run.billed[0].tolist() == [1, 1, 1, 3, 3, 1]
    assert run.ready[0].tolist() == [1, 1, 1, 1, 3, 1]
    assert run.total_cost == pytest.approx(10 * 0.01 * 60)  # 10 replica-minutes: 6.0
    assert run.unmet == pytest.approx(2 * (250 - 100) * 60)  # steps 2 and 3
    assert run.moves == 2


def test_ours_on_two_pools_adds_gpus_for_the_peak_and_returns_to_cpus() -> None:
    inputs = planner_inputs(POOLS)
    demand = demand_timeline(series(RATES), 60.0, OBSERVATION)
    run = replay(operator_policy(inputs), demand, inputs.pools, RULES)
    # 50 tok/s: 5 CPUs (0.005/s) beat a GPU (0.01/s). Seeing 250 at step 3: 2 GPUs + 5 CPUs
    # (0.025/s), the GPUs Ready at step 4. Seeing 50 at step 5: back to 5 CPUs, the GPUs stop.
    assert run.billed.tolist() == [[0, 0, 0, 2, 2, 0], [5, 5, 5, 5, 5, 5]]
    assert run.total_cost == pytest.approx(6 * 0.3 + 2 * 2 * 0.6)  # 4.2
    # Steps 2 and 3 run on 5 CPUs (50 tok/s) against 250 tok/s.
    assert run.unmet == pytest.approx(2 * (250 - 50) * 60)
    assert run.moves == 2


def test_cost_per_million_tokens_is_undefined_when_nothing_is_served() -> None:
    demand = demand_timeline(series([0.0, 0.0]), 60.0, OBSERVATION)
    run = replay(StaticPolicy("idle", {"cpu": 1}), demand, POOLS, RULES)
    assert run.total_cost == pytest.approx(2 * 0.06)
    assert run.cost_per_million_tokens is None


@pytest.mark.parametrize("rate", [1000.0, 5000.0, 100000.0])
@pytest.mark.parametrize("relative_excess", [1e-12, 1e-10, 1e-3])
def test_cheapest_mix_never_claims_to_cover_a_demand_it_falls_short_of(
    rate: float, relative_excess: float
) -> None:
    """Two replicas plus a sliver needs three: the solver's tolerance must not round it away."""
    from deepseek_operator.core.replay.engine import ReplayPool
    from deepseek_operator.core.replay.policies import cheapest_mix

    demand = 2 * rate * (1 + relative_excess)
    sizing = cheapest_mix(demand, [ReplayPool("gpu", "gpu", 3.0, rate, 0.0, 8)])
    assert sizing.covers_demand
    assert sizing.capacity_tokens_per_second >= demand
    assert sizing.placement == {"gpu": 3}
