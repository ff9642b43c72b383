"""Drive a running OpenAI-compatible server at one concurrency level and time what it returns.

Each request streams a completion with `ignore_eos` (honoured by this server and vLLM) so every
request produces exactly `max_tokens` tokens, and asks for usage in the final chunk so token
counts come from the server, not from re-tokenising text. A server that sends no usage is
counted one token per text-bearing chunk, which is what OpenAI-style servers stream.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from deepseek_operator.calibration.summary import LevelResult

DEFAULT_PROMPT = (
    "Explain, step by step, why placing language-model replicas on GPU pools by day and on CPU "
    "pools at night can lower the cost of serving them, and what could go wrong."
)


@dataclass(frozen=True)
class _One:
    completion_tokens: int
    ttft: float | None
    ok: bool


async def served_model(client: httpx.AsyncClient) -> str:
    response = await client.get("/v1/models")
    response.raise_for_status()
    return str(response.json()["data"][0]["id"])


async def _one_request(client: httpx.AsyncClient, model: str, prompt: str, max_tokens: int) -> _One:
    body = {
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0.7,
        "stream": True,
        "stream_options": {"include_usage": True},
        "ignore_eos": True,
    }
    started = time.perf_counter()
    ttft: float | None = None
    tokens: int | None = None
    chunks = 0
    async with client.stream("POST", "/v1/completions", json=body) as response:
        if response.status_code != 200:
            await response.aread()
            return _One(0, None, False)
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[len("data: ") :])
            choices = event.get("choices", [])
            if choices and ttft is None:
                # the first chunk with a choice, text or not: a token whose id has no text
                # (beyond the tokenizer's vocabulary) was still generated
                ttft = time.perf_counter() - started
            if any(choice.get("text") for choice in choices):
                chunks += 1
            usage = event.get("usage")
            if usage:
                tokens = int(usage["completion_tokens"])
    return _One(tokens if tokens is not None else chunks, ttft, True)


async def run_level(
    client: httpx.AsyncClient,
    *,
    model: str,
    concurrency: int,
    requests: int,
    max_tokens: int,
    prompt: str = DEFAULT_PROMPT,
    on_request_done: Callable[[], None] = lambda: None,
) -> LevelResult:
    """`requests` requests, `concurrency` at a time; the wall time covers the whole level."""
    remaining = requests
    results: list[_One] = []

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            try:
                results.append(await _one_request(client, model, prompt, max_tokens))
            except (httpx.HTTPError, json.JSONDecodeError, KeyError):
                results.append(_One(0, None, False))
            on_request_done()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    return LevelResult(
        concurrency=concurrency,
        requests=len(results),
        completion_tokens=sum(result.completion_tokens for result in results),
        wall_seconds=wall,
        time_to_first_token_seconds=tuple(
            result.ttft for result in results if result.ttft is not None
        ),
        errors=sum(1 for result in results if not result.ok),
    )
