"""The forecast earns its place: on a week that repeats one day, `ours` with the forecast meets
at least as much demand as without it, at no higher cost."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import yaml
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from deepseek_operator.api.deployment import DeepSeekDeployment
from deepseek_operator.api.pool import PoolProfile
from deepseek_operator.api.resolution import lookup_time_zone
from deepseek_operator.core.planning.inputs import PoolSetup
from deepseek_operator.core.replay.engine import Observation, demand_timeline, replay
from deepseek_operator.core.replay.inputs import replay_inputs
from deepseek_operator.core.replay.policies import OperatorPolicy
from deepseek_operator.core.replay.traces import TokenSeries, tile_to_days
from tests.paths import EXAMPLES

STEP = 60.0
PROFILES = [
    PoolProfile.from_object(doc)
    for doc in yaml.safe_load_all((EXAMPLES / "pools.yaml").read_text())
]
NODES = {"a100": 2, "rtx4090": 2, "cpu-xeon": 3}


def deployment(forecast: bool) -> DeepSeekDeployment:
    """The 32B example, with room for every policy to serve the peak."""
    body: dict[str, Any] = yaml.safe_load(
        (EXAMPLES / "r1-32b-a100-with-4090-fallback.yaml").read_text()
    )
    body["spec"]["replicas"]["max"] = 10
    body["spec"]["load"]["forecast"] = forecast
    return DeepSeekDeployment.from_object(body)


def one_day_repeated(hourly: list[float], peak: float, zone: str) -> TokenSeries:
    """A day from 24 hourly levels (linear between hour marks, so rises can be steep), then
    the same day seven times."""
    minutes = np.arange(24 * 60, dtype=np.float64)
    levels = np.interp(minutes / 60.0, np.arange(25), [*hourly, hourly[0]])
    start = datetime(2026, 3, 2, tzinfo=lookup_time_zone(zone))  # a Monday
    day = TokenSeries(start=start, bin_seconds=60.0, tokens=levels * peak * 60.0, source="day")
    return tile_to_days(day, 7)


def run(forecast: bool, series: TokenSeries) -> tuple[float, float]:
    dsd = deployment(forecast)
    setups = {name: PoolSetup(count) for name, count in NODES.items()}
    inputs = replay_inputs(dsd, PROFILES, setups)
    demand = demand_timeline(series, STEP, Observation(STEP, 120.0))
    result = replay(
        OperatorPolicy(inputs.deployment, inputs.resolution), demand, inputs.pools, inputs.rules
    )
    return result.total_cost, result.unmet


# Each example replays two weeks of operator decisions (seconds each): a few examples, and no
# shrinking, which would replay hundreds more; the failing example is printed as drawn.
@settings(
    max_examples=3,
    deadline=None,
    derandomize=True,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
)
@given(
    hourly=st.lists(st.floats(0.1, 1.0), min_size=24, max_size=24),
    peak=st.floats(200.0, 700.0),
)
def test_forecast_meets_as_much_demand_at_no_higher_cost(hourly: list[float], peak: float) -> None:
    series = one_day_repeated(hourly, peak, deployment(True).spec.schedule.time_zone)
    cost_with, unmet_with = run(True, series)
    cost_without, unmet_without = run(False, series)
    assert unmet_with <= unmet_without + 1e-6 * float(series.tokens.sum())
    assert cost_with <= cost_without + 1e-9 * cost_without
