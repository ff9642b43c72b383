"""Replay inputs from hand-picked pool numbers, for tests that work their expectations out by
hand: the planner options are given directly, with a minimal DeepSeekDeployment naming the
same pools (the operator's decision needs one for its status)."""

from __future__ import annotations

from collections.abc import Sequence

from deepseek_operator.api.deployment import DeepSeekDeployment
from deepseek_operator.core.planning.planner import PlanSpec, PoolOption
from deepseek_operator.core.planning.reconcile import Resolution
from deepseek_operator.core.replay.engine import RolloutRules
from deepseek_operator.core.replay.inputs import ReplayInputs, replay_pools
from deepseek_operator.core.replay.policies import OperatorPolicy


def hand_deployment(pools: Sequence[str]) -> DeepSeekDeployment:
    return DeepSeekDeployment.from_object(
        {
            "metadata": {"name": "hand", "namespace": "default", "uid": "hand", "generation": 1},
            "spec": {
                "model": {
                    "name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
                    "catalogKey": "r1-distill-qwen-7b",
                    "weights": {"path": "/models/r1-7b"},
                },
                "variants": [{"pool": pool, "engine": "transformers"} for pool in pools],
            },
        }
    )


def hand_inputs(
    spec: PlanSpec,
    options: Sequence[PoolOption],
    rules: RolloutRules | None = None,
    interval: float = 60.0,
    currency: str = "USD",
) -> ReplayInputs:
    resolution = Resolution(
        spec, tuple(options), {o.name: i for i, o in enumerate(options)}, currency
    )
    return ReplayInputs(
        deployment=hand_deployment([o.name for o in options]),
        resolution=resolution,
        pools=replay_pools(options),
        rules=rules or RolloutRules(),
        reconcile_interval_seconds=interval,
    )


def operator_policy(inputs: ReplayInputs) -> OperatorPolicy:
    return OperatorPolicy(inputs.deployment, inputs.resolution)
