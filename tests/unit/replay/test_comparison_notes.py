"""The notes beside the comparison say what happened, in the words of the numbers."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import yaml

from deepseek_operator.api.pool import PoolProfile
from deepseek_operator.cli.resource_files import load_deployment
from deepseek_operator.core.planning.inputs import PoolSetup
from deepseek_operator.core.replay.comparison import ReplaySettings, build_policies
from deepseek_operator.core.replay.engine import Observation, demand_timeline
from deepseek_operator.core.replay.inputs import replay_inputs
from deepseek_operator.core.replay.traces import TokenSeries
from tests.paths import EXAMPLES

PROFILES = [
    PoolProfile.from_object(doc)
    for doc in yaml.safe_load_all((EXAMPLES / "pools.yaml").read_text())
]


def notes_at(rate: float) -> tuple[list[str], float]:
    dsd = load_deployment(EXAMPLES / "r1-7b-gpu-by-day-cpu-at-night.yaml")
    inputs = replay_inputs(dsd, PROFILES, {"a100": PoolSetup(2), "cpu-xeon": PoolSetup(3)})
    series = TokenSeries(
        datetime(2024, 1, 1, tzinfo=UTC), 60.0, np.full(60, rate * 60.0), "constant"
    )
    demand = demand_timeline(series, 60.0, Observation(60.0, 120.0))
    settings = ReplaySettings(60.0, Observation(60.0, 120.0), policies=("static-cpu",))
    _, notes = build_policies(inputs, demand, settings)
    return notes, inputs.spec.slo.headroom_fraction


def cpu_capacity() -> float:
    dsd = load_deployment(EXAMPLES / "r1-7b-gpu-by-day-cpu-at-night.yaml")
    inputs = replay_inputs(dsd, PROFILES, {"a100": PoolSetup(2), "cpu-xeon": PoolSetup(3)})
    return sum(
        p.tokens_per_second_per_replica * p.max_replicas for p in inputs.pools if p.kind == "cpu"
    )


def test_a_static_pool_that_carries_the_peak_but_not_its_headroom_says_so() -> None:
    capacity = cpu_capacity()
    _, headroom = notes_at(1.0)
    peak = capacity / (1 + headroom / 2)  # within capacity, but not with the headroom on top
    notes, _ = notes_at(peak)
    assert not any("cannot carry the peak" in n for n in notes), notes
    assert any("carry the peak but not its" in n for n in notes), notes


def test_a_static_pool_below_the_peak_says_it_cannot_carry_it() -> None:
    notes, _ = notes_at(cpu_capacity() * 1.5)
    assert any("static-cpu: the cpu pools cannot carry the peak" in n for n in notes), notes


def test_load_only_keeps_the_replica_bounds_as_the_docs_say() -> None:
    """The HPA-like policy is given `replicas.max`, so the docs must not say it ignores it."""
    from deepseek_operator.core.replay.engine import replay
    from tests.paths import REPO_ROOT

    dsd = load_deployment(EXAMPLES / "r1-7b-gpu-by-day-cpu-at-night.yaml")
    inputs = replay_inputs(dsd, PROFILES, {"a100": PoolSetup(2), "cpu-xeon": PoolSetup(3)})
    bound = inputs.spec.replicas.max
    a100 = next(p for p in inputs.pools if p.name == "a100")
    assert a100.max_replicas > bound  # the pool alone would allow more
    rate = a100.tokens_per_second_per_replica * (bound + 3)  # needs more than the bound
    series = TokenSeries(datetime(2024, 1, 1, tzinfo=UTC), 60.0, np.full(60, rate * 60.0), "c")
    demand = demand_timeline(series, 60.0, Observation(60.0, 120.0))
    settings = ReplaySettings(60.0, Observation(60.0, 120.0), policies=("load-only",))
    (policy,), _ = build_policies(inputs, demand, settings)
    run = replay(policy, demand, inputs.pools, inputs.rules)
    assert int(run.billed.sum(axis=0).max()) == bound

    docs = (REPO_ROOT / "docs" / "simulate.md").read_text()
    row = next(line for line in docs.splitlines() if line.startswith("| `load-only` |"))
    assert "`replicas.max`" in row and "ignores its schedule windows" in row
    assert "ignore the deployment's windows, SLO exclusions and replica bounds" not in row


def test_load_only_takes_the_deployments_windows_unless_asked_for_the_hpa_defaults() -> None:
    """Like for like by default: the HPA-like policy stabilises with the deployment's `load`
    windows and tolerance (what `ours` is held to); `kubernetes` gives it the HPA's defaults."""
    from deepseek_operator.core.replay.policies import LoadOnlyPolicy

    dsd = load_deployment(EXAMPLES / "r1-7b-gpu-by-day-cpu-at-night.yaml")
    inputs = replay_inputs(dsd, PROFILES, {"a100": PoolSetup(2), "cpu-xeon": PoolSetup(3)})
    load = inputs.spec.load
    assert (load.scale_down_stabilization_seconds, load.scale_up_stabilization_seconds) != (300, 0)
    series = TokenSeries(datetime(2024, 1, 1, tzinfo=UTC), 60.0, np.full(60, 600.0), "c")
    demand = demand_timeline(series, 15.0, Observation(15.0, 60.0))

    def hpa(rules: str) -> tuple[LoadOnlyPolicy, list[str]]:
        settings = ReplaySettings(
            15.0, Observation(15.0, 60.0), policies=("load-only",), load_only_rules=rules
        )
        (policy,), notes = build_policies(inputs, demand, settings)
        assert isinstance(policy, LoadOnlyPolicy)
        return policy, notes

    own, notes = hpa("deployment")
    assert own.keep_down == load.scale_down_stabilization_seconds // 15
    assert own.keep_up == max(1, load.scale_up_stabilization_seconds // 15)
    assert own.tolerance == load.tolerance_fraction
    assert any("the deployment's stabilisation windows" in n for n in notes), notes
    default, notes = hpa("kubernetes")
    assert (default.keep_down, default.keep_up, default.tolerance) == (20, 1, 0.1)
    assert any("the HPA's default windows" in n for n in notes), notes
