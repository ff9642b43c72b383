"""The API's engine rules agree with the engine profiles the operator renders pods from."""

from __future__ import annotations

from deepseek_operator.api.vocabulary import ENGINE_PRECISIONS, TENSOR_PARALLEL_ENGINES
from deepseek_operator.core.workloads.engines import ENGINE_PROFILES


def test_engine_rules_agree_with_the_engine_profiles() -> None:
    """The schema's engine rules and the profiles the operator renders pods from must agree."""
    assert set(ENGINE_PRECISIONS) == set(ENGINE_PROFILES)
    for name, profile in ENGINE_PROFILES.items():
        supported = {p for precisions in profile.precisions.values() for p in precisions}
        assert set(ENGINE_PRECISIONS[name]) == supported, name
        assert (name in TENSOR_PARALLEL_ENGINES) == profile.supports_tensor_parallel, name
