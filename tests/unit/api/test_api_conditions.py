"""set_condition follows the Kubernetes conventions: lastTransitionTime moves only with status."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from deepseek_operator.api import Condition
from deepseek_operator.api.conditions import (
    DEPLOYMENT_CONDITION_TYPES,
    READY,
    find_condition,
    initial_conditions,
    set_condition,
)
from deepseek_operator.api.status import CONDITION_REASON_PATTERN, CONDITION_TYPE_PATTERN

T0 = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)

_updates = st.lists(
    st.tuples(
        st.sampled_from(DEPLOYMENT_CONDITION_TYPES),
        st.sampled_from(["True", "False", "Unknown"]),
        st.sampled_from(["Planned", "NoMetrics", "Moving"]),
        st.integers(1, 5),
    ),
    max_size=30,
)


@settings(max_examples=80, deadline=None)
@given(updates=_updates)
def test_transition_time_changes_exactly_when_status_changes(
    updates: list[tuple[str, str, str, int]],
) -> None:
    conditions: list[Condition] = []
    for step, (type_, status, reason, generation) in enumerate(updates):
        now = T0 + timedelta(minutes=step)
        before = find_condition(conditions, type_)
        conditions = set_condition(
            conditions,
            type=type_,
            status=status,  # type: ignore[arg-type]
            reason=reason,
            message=f"step {step}",
            observed_generation=generation,
            now=now,
        )
        after = find_condition(conditions, type_)
        assert after is not None
        assert (after.reason, after.message, after.observed_generation) == (
            reason,
            f"step {step}",
            generation,
        )
        if before is not None and before.status == status:
            assert after.last_transition_time == before.last_transition_time
        else:
            assert after.last_transition_time == now
        assert len({c.type for c in conditions}) == len(conditions)


def test_order_is_kept_and_input_is_not_modified() -> None:
    first = initial_conditions([], observed_generation=1, now=T0)
    snapshot = list(first)
    second = set_condition(
        first,
        type=READY,
        status="True",
        reason="Planned",
        message="",
        observed_generation=2,
        now=T0,
    )
    assert first == snapshot
    assert [c.type for c in second] == [c.type for c in first]


def test_first_visit_sets_every_type_unknown_with_valid_names() -> None:
    conditions = initial_conditions([], observed_generation=3, now=T0)
    assert [c.type for c in conditions] == list(DEPLOYMENT_CONDITION_TYPES)
    for condition in conditions:
        assert condition.status == "Unknown" and condition.observed_generation == 3
        assert re.fullmatch(CONDITION_TYPE_PATTERN, condition.type)
        assert re.fullmatch(CONDITION_REASON_PATTERN, condition.reason)
    wire = conditions[0].to_json_dict()
    assert wire["lastTransitionTime"] == "2026-03-29T00:30:00Z"
    assert Condition.model_validate(wire) == conditions[0]


def test_initial_conditions_keep_existing_decisions() -> None:
    decided = set_condition(
        [], type=READY, status="True", reason="Planned", message="", observed_generation=1, now=T0
    )
    conditions = initial_conditions(decided, observed_generation=2, now=T0 + timedelta(hours=1))
    ready = find_condition(conditions, READY)
    assert ready is not None and ready.status == "True" and ready.last_transition_time == T0


@pytest.mark.parametrize(
    "when",
    [datetime(2026, 3, 29, 0, 30), "2026-03-29T00:30:00", "2026-03-29 00:30:00Z", "1774744200"],
)
def test_a_time_the_api_server_would_refuse_is_refused_here(when: object) -> None:
    """A status write needs RFC 3339 with an offset; anything else must fail before the write."""
    with pytest.raises(ValidationError) as refused:
        Condition.model_validate(
            {"type": READY, "status": "True", "reason": "Planned", "lastTransitionTime": when}
        )
    assert [error["loc"] for error in refused.value.errors()] == [("lastTransitionTime",)]


def test_set_condition_refuses_a_naive_now() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        set_condition(
            [],
            type=READY,
            status="True",
            reason="Planned",
            message="",
            observed_generation=1,
            now=datetime(2026, 3, 29, 0, 30),
        )
