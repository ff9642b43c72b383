"""Random request bodies never make the server answer 5xx, and never take it down."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import MODEL_NAME, RunningServer

pytestmark = pytest.mark.serving

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
messages = st.one_of(
    json_values,
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "role": st.one_of(
                    st.sampled_from(["system", "user", "assistant", "tool", "bogus"]), json_values
                ),
                "content": st.one_of(st.text(max_size=60), json_values),
            },
        ),
        max_size=3,
    ),
)
api_fields = {
    "model": st.one_of(st.just(MODEL_NAME), json_values),
    "prompt": st.one_of(
        st.text(max_size=80), st.lists(st.integers(-5, 500), max_size=8), json_values
    ),
    "messages": messages,
    "max_tokens": st.one_of(st.integers(min_value=-10, max_value=300), st.integers(), json_values),
    "temperature": st.one_of(st.floats(-1, 3), json_values),
    "top_p": st.one_of(st.floats(-0.5, 1.5), json_values),
    "stop": st.one_of(st.text(max_size=5), st.lists(st.text(max_size=5), max_size=6), json_values),
    "stream": st.one_of(st.booleans(), json_values),
    "stream_options": json_values,
    "n": st.one_of(st.integers(-2, 3), json_values),
    "seed": json_values,
}
optional_fields = {
    key: value for key, value in api_fields.items() if key not in ("model", "prompt", "messages")
}
small_ints = st.integers(min_value=-3, max_value=40)
near_valid_options = {
    **optional_fields,
    "max_tokens": st.one_of(small_ints, st.integers(200, 300), st.none(), json_values),
    "temperature": st.one_of(st.floats(0, 2), st.none(), json_values),
    "top_p": st.one_of(st.floats(0.01, 1), json_values),
    "stop": st.one_of(st.text(max_size=3), st.lists(st.text(max_size=3), max_size=5), st.none()),
    "stream": st.booleans(),
    "stream_options": st.one_of(st.just({"include_usage": True}), json_values),
}
near_valid_completion = st.fixed_dictionaries(
    {
        "model": st.just(MODEL_NAME),
        "prompt": st.one_of(st.text(max_size=80), st.lists(st.integers(-5, 500), max_size=8)),
    },
    optional=near_valid_options,
)
near_valid_chat = st.fixed_dictionaries(
    {
        "model": st.just(MODEL_NAME),
        "messages": st.lists(
            st.fixed_dictionaries(
                {
                    "role": st.sampled_from(["system", "user", "assistant"]),
                    "content": st.text(max_size=60),
                }
            ),
            min_size=1,
            max_size=3,
        ),
    },
    optional=near_valid_options,
)
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({}, optional=api_fields),
    near_valid_completion,
    near_valid_chat,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies, chat=st.booleans())
def test_random_json_bodies_never_get_a_5xx(
    scripted_server: RunningServer, body: object, chat: bool
) -> None:
    path = "/v1/chat/completions" if chat else "/v1/completions"
    with scripted_server.client() as http:
        response = http.post(
            path, content=json.dumps(body), headers={"content-type": "application/json"}
        )
        payload = response.read()
    assert response.status_code < 500, payload[:500]
    if response.status_code >= 400:
        assert "error" in json.loads(payload), payload[:500]


@settings(max_examples=40, deadline=None)
@given(raw=st.binary(max_size=200))
def test_random_bytes_never_get_a_5xx(scripted_server: RunningServer, raw: bytes) -> None:
    with scripted_server.client() as http:
        response = http.post(
            "/v1/completions", content=raw, headers={"content-type": "application/json"}
        )
    assert 200 <= response.status_code < 500


def test_server_is_alive_and_answers_after_the_fuzzing(scripted_server: RunningServer) -> None:
    with scripted_server.client() as http:
        assert http.get("/health/live").status_code == 200
        assert http.get("/health/ready").status_code == 200
        reply = http.post(
            "/v1/completions", json={"model": MODEL_NAME, "prompt": "Go\n", "max_tokens": 4}
        )
    assert reply.status_code == 200
