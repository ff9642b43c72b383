"""The hand-written parts around transformers' batching: admission window, queue bound, stop
sequences and finish reasons, driven through a stand-in for the batching manager."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from deepseek_operator.serving.engine import Engine, EngineBusy, EngineDraining, SamplingParams
from deepseek_operator.serving.loading import LoadedModel
from deepseek_operator.serving.metrics import ServerMetrics
from deepseek_operator.serving.settings import ServerSettings
from deepseek_operator.serving.testing import build_tokenizer

pytestmark = pytest.mark.serving

TOKENIZER = build_tokenizer()
EOS = TOKENIZER.eos_token_id


@dataclass
class StandInManager:
    """Records what the engine asks of transformers' manager; the test plays the model."""

    added: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    handlers: dict[str, Any] = field(default_factory=dict)
    background_thread_status: Any = field(default_factory=lambda: SimpleNamespace(fatal_error=None))
    output_router: Any = field(
        default_factory=lambda: SimpleNamespace(_lock=threading.Lock(), result_handlers={})
    )

    def is_running(self) -> bool:
        return True

    def register_result_handler(self, request_id: str, callback: Any) -> None:
        self.handlers[request_id] = callback

    def add_request(self, input_ids: list[int], request_id: str, **kwargs: Any) -> str:
        self.added.append(request_id)
        return request_id

    def cancel_request(self, request_id: str) -> None:
        self.cancelled.append(request_id)

    def emit(self, request_id: str, tokens: list[int], finished: bool = False) -> None:
        output = SimpleNamespace(generated_tokens=tokens, error=None, is_finished=lambda: finished)
        self.handlers[request_id](output)


def engine_with(**overrides: Any) -> tuple[Engine, StandInManager]:
    settings = ServerSettings(weights=Path(), served_model_name="m", **overrides)
    loaded = LoadedModel(
        model=None,
        tokenizer=TOKENIZER,
        context_length=256,
        eos_token_ids=(EOS,),
        device="cpu",
        precision="fp32",
    )
    engine = Engine(loaded, settings, ServerMetrics("d", "p"))
    manager = StandInManager()
    engine.attach(manager)
    return engine, manager


def ids(text: str) -> list[int]:
    return list(TOKENIZER.encode(text, add_special_tokens=False))


def test_an_idle_engine_waits_for_the_window_then_sends_the_burst_together() -> None:
    async def scenario() -> None:
        engine, manager = engine_with(max_wait_ms=50, max_batch_size=8)
        for _ in range(3):
            engine.submit(ids("hello"), SamplingParams(max_tokens=4))
        assert manager.added == []
        await asyncio.sleep(0.2)
        assert len(manager.added) == 3

    asyncio.run(scenario())


def test_a_full_batch_goes_out_without_waiting() -> None:
    async def scenario() -> None:
        engine, manager = engine_with(max_wait_ms=10_000, max_batch_size=2)
        engine.submit(ids("a"), SamplingParams(max_tokens=4))
        engine.submit(ids("b"), SamplingParams(max_tokens=4))
        assert len(manager.added) == 2

    asyncio.run(scenario())


def test_a_busy_engine_sends_at_once() -> None:
    async def scenario() -> None:
        engine, manager = engine_with(max_wait_ms=10_000, max_batch_size=2)
        engine.submit(ids("a"), SamplingParams(max_tokens=4))
        engine.submit(ids("b"), SamplingParams(max_tokens=4))
        manager.emit(manager.added[0], ids(" x"))  # now something is running
        engine.submit(ids("c"), SamplingParams(max_tokens=4))
        assert len(manager.added) == 3

    asyncio.run(scenario())


def test_queue_bound_and_draining_refuse_new_requests() -> None:
    async def scenario() -> None:
        engine, _ = engine_with(max_queue=2, max_wait_ms=0)
        engine.submit(ids("a"), SamplingParams(max_tokens=4))
        engine.submit(ids("b"), SamplingParams(max_tokens=4))
        with pytest.raises(EngineBusy) as busy:
            engine.submit(ids("c"), SamplingParams(max_tokens=4))
        assert busy.value.retry_after_seconds >= 1
        assert not await engine.drain(0.05)  # two still in flight
        with pytest.raises(EngineDraining):
            engine.submit(ids("d"), SamplingParams(max_tokens=4))

    asyncio.run(scenario())


def test_a_stop_sequence_ends_the_stream_and_cancels_the_sequence() -> None:
    async def scenario() -> None:
        engine, manager = engine_with(max_wait_ms=0)
        stream = engine.submit(ids("q"), SamplingParams(max_tokens=20, stop=("answer",)))
        (request_id,) = manager.added
        generated = ids("The answer is four")
        for end in range(1, len(generated) + 1):
            manager.emit(request_id, generated[:end])
        assert await stream.text() == "The "
        assert stream.finish_reason == "stop"
        assert manager.cancelled == [request_id]
        assert engine.in_flight == 0

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("tokens", "max_tokens", "reason"),
    [([*ids(" one two"), EOS], 10, "stop"), (ids(" one two three"), 3, "length")],
)
def test_finish_reason_is_stop_at_end_of_sequence_and_length_at_the_budget(
    tokens: list[int], max_tokens: int, reason: str
) -> None:
    async def scenario() -> None:
        engine, manager = engine_with(max_wait_ms=0)
        stream = engine.submit(ids("q"), SamplingParams(max_tokens=max_tokens))
        (request_id,) = manager.added
        manager.emit(request_id, tokens[:max_tokens], finished=True)
        text = await stream.text()
        assert stream.finish_reason == reason
        assert stream.completion_tokens == min(len(tokens), max_tokens)
        assert text == TOKENIZER.decode(tokens[:max_tokens], skip_special_tokens=True)
        assert await engine.drain(1)

    asyncio.run(scenario())


def test_retry_after_is_the_shortest_remaining_budget_at_the_per_token_estimate() -> None:
    async def scenario() -> None:
        # Before any request has finished, the estimate is 50 ms per token.
        engine, manager = engine_with(max_queue=2, max_wait_ms=0)
        engine.submit(ids("a"), SamplingParams(max_tokens=100))
        engine.submit(ids("b"), SamplingParams(max_tokens=400))
        with pytest.raises(EngineBusy) as busy:
            engine.submit(ids("c"), SamplingParams(max_tokens=4))
        assert busy.value.retry_after_seconds == 5  # 100 tokens x 0.05 s
        manager.emit(manager.added[0], [ids(" x")[0]] * 60)
        with pytest.raises(EngineBusy) as busy:
            engine.submit(ids("c"), SamplingParams(max_tokens=4))
        assert busy.value.retry_after_seconds == 2  # 40 tokens left x 0.05 s

    asyncio.run(scenario())
