"""Concurrent requests share the model: all complete, counts are right, batches really form."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import openai
import pytest
from transformers import AutoTokenizer

from .conftest import MODEL_NAME, RunningServer, free_port, metric_value, serve_in_thread

pytestmark = pytest.mark.serving

PROMPTS = [f"Request {i}: the quick brown fox number {i} jumps" for i in range(64)]


def test_64_concurrent_requests_complete_with_exact_usage_in_shared_batches(
    random_server: RunningServer,
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(random_server.settings.weights)
    with random_server.client() as http:
        before = http.get("/metrics").text

    async def one(client: openai.AsyncOpenAI, index: int) -> tuple[int, openai.types.Completion]:
        reply = await client.completions.create(
            model=MODEL_NAME,
            prompt=PROMPTS[index],
            max_tokens=6 + index % 5,
            temperature=0,
            extra_body={"ignore_eos": True},
        )
        return index, reply

    async def all_at_once() -> list[tuple[int, openai.types.Completion]]:
        async with openai.AsyncOpenAI(
            base_url=f"{random_server.base_url}/v1",
            api_key="unused",
            max_retries=0,
            timeout=120,
        ) as client:
            return await asyncio.gather(*(one(client, index) for index in range(64)))

    results = asyncio.run(all_at_once())
    assert len(results) == 64
    for index, reply in results:
        assert reply.usage is not None
        assert reply.usage.prompt_tokens == len(
            tokenizer.encode(PROMPTS[index], add_special_tokens=True)
        )
        assert reply.usage.completion_tokens == 6 + index % 5
        assert reply.choices[0].finish_reason == "length"

    with random_server.client() as http:
        after = http.get("/metrics").text
        solo = http.post(
            "/v1/completions",
            json={
                "model": MODEL_NAME,
                "prompt": PROMPTS[7],
                "max_tokens": 8,
                "temperature": 0,
                "ignore_eos": True,
            },
        ).json()
    # Greedy output does not depend on which other sequences shared the batch.
    assert solo["choices"][0]["text"] == dict(results)[7].choices[0].text

    generated = sum(reply.usage.completion_tokens for _, reply in results if reply.usage)
    counted = metric_value(after, "deepseek_server_generation_tokens_total") - metric_value(
        before, "deepseek_server_generation_tokens_total"
    )
    assert counted == generated
    steps = metric_value(after, "deepseek_server_batch_size_count") - metric_value(
        before, "deepseek_server_batch_size_count"
    )
    single = metric_value(after, "deepseek_server_batch_size_bucket", le="1.0") - metric_value(
        before, "deepseek_server_batch_size_bucket", le="1.0"
    )
    assert steps - single > 0, "no decoding step advanced more than one sequence"
    # 64 requests of at most 10 tokens in far fewer steps than 640 means real sharing.
    assert steps < generated / 2
    ok = metric_value(
        after, "deepseek_server_requests_total", endpoint="/v1/completions", status="200"
    )
    assert (
        ok
        - metric_value(
            before, "deepseek_server_requests_total", endpoint="/v1/completions", status="200"
        )
        == 64
    )
    assert metric_value(after, "deepseek_server_requests_in_flight") == 0
    for histogram in (
        "deepseek_server_time_to_first_token_seconds_count",
        "deepseek_server_e2e_request_latency_seconds_count",
    ):
        assert metric_value(after, histogram) - metric_value(before, histogram) == 64, histogram


def test_requests_beyond_the_queue_bound_get_429_with_retry_after(random_weights: Path) -> None:
    from deepseek_operator.serving.settings import ServerSettings

    settings = ServerSettings(
        weights=random_weights,
        served_model_name=MODEL_NAME,
        port=free_port(),
        max_queue=4,
        max_batch_size=4,
    )
    with serve_in_thread(settings) as server:
        base_url = server.base_url

        async def one(client: httpx.AsyncClient) -> httpx.Response:
            body = {"model": MODEL_NAME, "prompt": "hello", "max_tokens": 60, "ignore_eos": True}
            return await client.post("/v1/completions", json=body)

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
                return await asyncio.gather(*(one(client) for _ in range(12)))

        responses = asyncio.run(burst())
        codes = sorted(response.status_code for response in responses)
        assert codes.count(200) >= 4
        refused = [response for response in responses if response.status_code == 429]
        assert refused, f"expected some 429s, got {codes}"
        assert set(codes) <= {200, 429}
        for response in refused:
            assert int(response.headers["retry-after"]) >= 1
            assert response.json()["error"]["type"] == "rate_limit_error"


def test_a_client_that_leaves_mid_stream_frees_its_batch_slot(random_server: RunningServer) -> None:
    body = {
        "model": MODEL_NAME,
        "prompt": "A long story",
        "max_tokens": 200,
        "stream": True,
        "ignore_eos": True,
    }
    with random_server.client() as http:
        before = metric_value(http.get("/metrics").text, "deepseek_server_generation_tokens_total")
        with http.stream("POST", "/v1/completions", json=body) as response:
            assert response.status_code == 200
            next(response.iter_lines())  # first event, then hang up
        deadline = time.monotonic() + 30
        while metric_value(http.get("/metrics").text, "deepseek_server_requests_in_flight") > 0:
            assert time.monotonic() < deadline, "the abandoned request kept running"
            time.sleep(0.05)
        generated = (
            metric_value(http.get("/metrics").text, "deepseek_server_generation_tokens_total")
            - before
        )
    assert generated < 200, "generation should stop when the client goes away"
