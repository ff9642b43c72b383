"""The official `openai` client against the server: completions, chat, streaming, reasoning, errors."""

from __future__ import annotations

import openai
import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from deepseek_operator.serving.testing import SCRIPTED_ANSWER, SCRIPTED_REASONING, THINK_CLOSE

from .conftest import MODEL_NAME, RunningServer

pytestmark = pytest.mark.serving


def client_for(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0, timeout=60
    )


def test_models_lists_the_served_model(scripted_server: RunningServer) -> None:
    models = client_for(scripted_server).models.list()
    assert [model.id for model in models.data] == [MODEL_NAME]


def test_chat_splits_reasoning_from_the_answer(scripted_server: RunningServer) -> None:
    reply = client_for(scripted_server).chat.completions.create(
        model=MODEL_NAME,
        messages=[{"role": "user", "content": "What is 2 + 2?"}],
        max_tokens=32,
        temperature=0,
    )
    message = reply.choices[0].message
    assert message.reasoning_content == SCRIPTED_REASONING  # type: ignore[attr-defined]
    assert message.content == SCRIPTED_ANSWER
    assert reply.choices[0].finish_reason == "stop"
    tokenizer = AutoTokenizer.from_pretrained(scripted_server.settings.weights)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 2 + 2?"}], add_generation_prompt=True, tokenize=False
    )
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == len(tokenizer.encode(prompt, add_special_tokens=False))
    # reasoning + </think> + answer + end-of-sequence
    expected = (
        len(
            tokenizer.encode(
                SCRIPTED_REASONING + THINK_CLOSE + SCRIPTED_ANSWER, add_special_tokens=False
            )
        )
        + 1
    )
    assert reply.usage.completion_tokens == expected
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_streamed_chat_carries_reasoning_then_content(scripted_server: RunningServer) -> None:
    stream = client_for(scripted_server).chat.completions.create(
        model=MODEL_NAME,
        messages=[{"role": "user", "content": "Think first."}],
        max_tokens=32,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    reasoning, content, order, finish, usage = [], [], [], None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            piece = getattr(choice.delta, "reasoning_content", None)
            if piece:
                reasoning.append(piece)
                order.append("reasoning")
            if choice.delta.content:
                content.append(choice.delta.content)
                order.append("content")
            finish = choice.finish_reason or finish
    assert "".join(reasoning) == SCRIPTED_REASONING
    assert "".join(content) == SCRIPTED_ANSWER
    assert order == sorted(order, key=lambda kind: kind != "reasoning"), (
        "reasoning must come before content"
    )
    assert len(reasoning) > 1, "reasoning should stream in pieces"
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens > 0


def test_completion_stops_at_a_stop_sequence(scripted_server: RunningServer) -> None:
    # Raw completions see the tags: the prompt's last newline starts the scripted chain.
    reply = client_for(scripted_server).completions.create(
        model=MODEL_NAME, prompt="Question?\n", max_tokens=32, temperature=0, stop=[" answer"]
    )
    choice = reply.choices[0]
    assert choice.text == f"{SCRIPTED_REASONING}{THINK_CLOSE}The"
    assert choice.finish_reason == "stop"


def test_streamed_completion_equals_the_whole_completion(scripted_server: RunningServer) -> None:
    client = client_for(scripted_server)
    whole = client.completions.create(model=MODEL_NAME, prompt="Go\n", max_tokens=32, temperature=0)
    pieces = client.completions.create(
        model=MODEL_NAME, prompt="Go\n", max_tokens=32, temperature=0, stream=True
    )
    text = "".join(chunk.choices[0].text for chunk in pieces if chunk.choices)
    assert text == whole.choices[0].text == f"{SCRIPTED_REASONING}{THINK_CLOSE}{SCRIPTED_ANSWER}"


def test_max_tokens_cuts_with_finish_reason_length(scripted_server: RunningServer) -> None:
    reply = client_for(scripted_server).completions.create(
        model=MODEL_NAME, prompt="Go\n", max_tokens=3, temperature=0
    )
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 3
    assert SCRIPTED_REASONING.startswith(reply.choices[0].text)


def test_greedy_output_matches_transformers_generate(random_server: RunningServer) -> None:
    tokenizer = AutoTokenizer.from_pretrained(random_server.settings.weights)
    model = AutoModelForCausalLM.from_pretrained(random_server.settings.weights)
    prompt = "Continuous batching lets many requests"
    ids = tokenizer.encode(prompt, add_special_tokens=True)
    expected = model.generate(
        __import__("torch").tensor([ids]), do_sample=False, max_new_tokens=12, min_new_tokens=12
    )[0, len(ids) :]
    reply = client_for(random_server).completions.create(
        model=MODEL_NAME,
        prompt=prompt,
        max_tokens=12,
        temperature=0,
        extra_body={"ignore_eos": True},
    )
    assert reply.choices[0].text == tokenizer.decode(expected, skip_special_tokens=True)


def test_sampling_with_temperature_and_top_p_stays_in_bounds(random_server: RunningServer) -> None:
    reply = client_for(random_server).completions.create(
        model=MODEL_NAME,
        prompt="Hello",
        max_tokens=8,
        temperature=1.3,
        top_p=0.8,
        extra_body={"ignore_eos": True},
    )
    assert reply.usage is not None and reply.usage.completion_tokens == 8
    assert reply.choices[0].finish_reason == "length"


def test_unknown_model_is_404(scripted_server: RunningServer) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client_for(scripted_server).completions.create(model="gpt-4", prompt="hi", max_tokens=2)
    assert caught.value.code == "model_not_found"
    assert "gpt-4" in str(caught.value)


def test_prompt_longer_than_the_context_is_400(scripted_server: RunningServer) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client_for(scripted_server).completions.create(
            model=MODEL_NAME, prompt="fox " * 400, max_tokens=2
        )
    assert caught.value.code == "context_length_exceeded"


@pytest.mark.parametrize("max_tokens", [-1, 0])
def test_non_positive_max_tokens_is_400(scripted_server: RunningServer, max_tokens: int) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client_for(scripted_server).completions.create(
            model=MODEL_NAME, prompt="hi", max_tokens=max_tokens
        )
    assert caught.value.param == "max_tokens"


def test_huge_max_tokens_is_400(scripted_server: RunningServer) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client_for(scripted_server).chat.completions.create(
            model=MODEL_NAME, messages=[{"role": "user", "content": "hi"}], max_tokens=10**12
        )
    assert caught.value.code == "context_length_exceeded"
    assert caught.value.param == "max_tokens"


def test_unsupported_options_are_refused_by_name(scripted_server: RunningServer) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client_for(scripted_server).completions.create(
            model=MODEL_NAME, prompt="hi", max_tokens=2, n=2
        )
    assert caught.value.param == "n"


def test_malformed_json_is_an_openai_style_400(scripted_server: RunningServer) -> None:
    with scripted_server.client() as http:
        response = http.post(
            "/v1/chat/completions",
            content=b'{"model": ',
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and "JSON" in error["message"]


def test_wrong_field_type_names_the_field(scripted_server: RunningServer) -> None:
    with scripted_server.client() as http:
        response = http.post(
            "/v1/chat/completions", json={"model": MODEL_NAME, "messages": "hello"}
        )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages"


def test_unknown_route_is_an_openai_style_404(scripted_server: RunningServer) -> None:
    with scripted_server.client() as http:
        response = http.get("/v1/engines")
    assert response.status_code == 404
    assert "error" in response.json()


def test_null_optional_parameters_mean_their_defaults(scripted_server: RunningServer) -> None:
    body = {
        "model": MODEL_NAME,
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": None,
        "top_p": None,
        "n": None,
        "stream": None,
        "max_tokens": None,
        "stop": None,
    }
    with scripted_server.client() as http:
        response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == SCRIPTED_ANSWER
