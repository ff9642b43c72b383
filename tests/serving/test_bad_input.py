"""Random request bodies never make the server answer 5xx, and never take it down.

Besides random JSON, the bodies hold what a client can send but no text is: invalid UTF-8
bytes, unpaired UTF-16 surrogate escapes ("\\ud800"), values of the wrong JSON type where
OpenAI's API refuses them (`"max_tokens": true`, `"stream": "yes"`), and bodies too large to
read; and liveness answers within a second while five prompts of 4 MiB are sent at once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from deepseek_operator.serving.app import MAX_BODY_BYTES

from .conftest import MODEL_NAME, RunningServer

pytestmark = pytest.mark.serving

surrogates = st.characters(categories=["Cs"])
"""Lone halves of UTF-16 pairs: json.dumps escapes them as \\udXXX, which JSON allows."""
hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(st.one_of(st.characters(), surrogates), min_size=1, max_size=20),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
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
    "prompt": st.one_of(hostile_text, st.lists(st.integers(-5, 500), max_size=8), json_values),
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
        "prompt": st.one_of(hostile_text, st.lists(st.integers(-5, 500), max_size=8)),
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
                    "content": hostile_text,
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


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@settings(max_examples=40, deadline=None)
@given(
    prefix=st.binary(max_size=20),
    bad=st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"]),
    chat=st.booleans(),
)
def test_invalid_utf8_inside_a_json_string_is_a_400(
    scripted_server: RunningServer, prefix: bytes, bad: bytes, chat: bool
) -> None:
    text = prefix.replace(b'"', b"").replace(b"\\", b"") + bad
    # a prefix can complete the bad bytes into valid UTF-8 (b"\xc2" + b"\x80" is U+0080)
    assume(not _is_utf8(text))
    if chat:
        path = "/v1/chat/completions"
        body = b'{"model": "%s", "messages": [{"role": "user", "content": "%s"}]}'
    else:
        path = "/v1/completions"
        body = b'{"model": "%s", "prompt": "%s"}'
    with scripted_server.client() as http:
        response = http.post(
            path,
            content=body % (MODEL_NAME.encode(), text),
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 400, response.text
    assert "error" in response.json()


@pytest.mark.parametrize("chat", [False, True])
@pytest.mark.parametrize("text", ["a\ud800b", "\udfff", "ok \ud83d", "\ude00 then \ud83d\ude00"])
def test_an_unpaired_surrogate_is_a_400_naming_the_field(
    scripted_server: RunningServer, chat: bool, text: str
) -> None:
    if chat:
        path, body = "/v1/chat/completions", {"messages": [{"role": "user", "content": text}]}
        field = "messages.0.content"
    else:
        path, body = "/v1/completions", {"prompt": text}
        field = "prompt"
    with scripted_server.client() as http:
        response = http.post(
            path,
            content=json.dumps({"model": MODEL_NAME, **body, "max_tokens": 4}),
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == field
    assert "surrogate" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_tokens", True),
        ("max_tokens", 4.0),
        ("max_tokens", "4"),
        ("stream", "yes"),
        ("stream", 1),
        ("temperature", "0.5"),
        ("temperature", False),
        ("n", "1"),
        ("seed", 1.5),
        ("ignore_eos", "true"),
        ("stop", 5),
        ("stream_options", {"include_usage": "yes"}),
        ("prompt", [True, False]),
        ("prompt", 42),
        ("user", 7),
    ],
)
def test_a_value_of_the_wrong_json_type_is_a_400_as_openai_gives(
    scripted_server: RunningServer, field: str, value: object
) -> None:
    body = {"model": MODEL_NAME, "prompt": "Go", "max_tokens": 4, field: value}
    with scripted_server.client() as http:
        response = http.post("/v1/completions", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"].split(".")[0] == field


def test_chat_message_fields_of_the_wrong_type_are_a_400(scripted_server: RunningServer) -> None:
    for message in ({"role": "user", "content": 5}, {"role": 1, "content": "hi"}):
        body = {"model": MODEL_NAME, "messages": [message], "max_tokens": 4}
        with scripted_server.client() as http:
            response = http.post("/v1/chat/completions", json=body)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"].startswith("messages.0.")


def _chunks(size: int, piece: int = 64 * 1024) -> Iterator[bytes]:
    yield b'{"model": "' + MODEL_NAME.encode() + b'", "prompt": "'
    sent = 0
    while sent < size:
        step = min(piece, size - sent)
        yield b"x" * step
        sent += step
    yield b'"}'


def test_a_body_too_large_is_refused_whether_announced_or_streamed(
    scripted_server: RunningServer,
) -> None:
    with scripted_server.client() as http:
        announced = http.post(
            "/v1/completions",
            content=b"".join(_chunks(MAX_BODY_BYTES + 1)),
            headers={"content-type": "application/json"},
        )
        streamed = http.post(  # chunked: no Content-Length to go by
            "/v1/completions",
            content=_chunks(64 * MAX_BODY_BYTES),
            headers={"content-type": "application/json"},
        )
    for response in (announced, streamed):
        assert response.status_code == 413, response.text[:200]
        assert "exceeds" in response.json()["error"]["message"]


FOUR_MIB_PROMPT = "The quick brown fox jumps over the lazy dog. " * (
    (MAX_BODY_BYTES - 1024) // len("The quick brown fox jumps over the lazy dog. ")
)
"""The largest prompt a body may carry: 4 MiB less room for the JSON around it."""


def _liveness_while(server: RunningServer, chat: bool) -> tuple[float, list[int]]:
    """Send five 4 MiB prompts at once and probe /health/live until they are answered: the
    slowest probe and the prompts' status codes."""
    if chat:
        path = "/v1/chat/completions"
        body = {"model": MODEL_NAME, "messages": [{"role": "user", "content": FOUR_MIB_PROMPT}]}
    else:
        path, body = "/v1/completions", {"model": MODEL_NAME, "prompt": FOUR_MIB_PROMPT}
    content = json.dumps(body).encode()
    assert len(content) <= MAX_BODY_BYTES
    done = threading.Event()
    slowest = 0.0

    def send(_: int) -> int:
        response = httpx.post(
            f"{server.base_url}{path}",
            content=content,
            headers={"content-type": "application/json"},
            timeout=300,
        )
        return response.status_code

    with ThreadPoolExecutor(5) as pool:
        futures = [pool.submit(send, index) for index in range(5)]
        pool.submit(lambda: [future.result() for future in futures] and done.set())
        with httpx.Client(base_url=server.base_url, timeout=30) as probe:
            while not done.wait(0.05):
                started = time.monotonic()
                assert probe.get("/health/live").status_code == 200
                slowest = max(slowest, time.monotonic() - started)
        codes = [future.result() for future in futures]
    return slowest, codes


@pytest.mark.parametrize("chat", [False, True])
def test_liveness_answers_within_a_second_while_five_4_mib_prompts_arrive(
    random_server: RunningServer, chat: bool
) -> None:
    """The prompts are refused before tokenising: longer than any 256-token context."""
    slowest, codes = _liveness_while(random_server, chat)
    assert codes == [400] * 5
    assert slowest < 1.0, f"/health/live took {slowest:.2f} s"


def test_long_prompts_are_tokenised_off_the_event_loop(random_server: RunningServer) -> None:
    """Without the length bound every 4 MiB prompt is tokenised (seconds each); liveness still
    answers within a second, since tokenising runs beside the event loop, one at a time."""
    state = random_server.app.state.server  # type: ignore[attr-defined]
    bound = state.max_prompt_chars
    state.max_prompt_chars = None
    try:
        slowest, codes = _liveness_while(random_server, chat=False)
    finally:
        state.max_prompt_chars = bound
    assert codes == [400] * 5  # tokenised, then longer than the context
    assert slowest < 1.0, f"/health/live took {slowest:.2f} s"
