"""Many concurrent requests share one model through transformers' continuous batching.

transformers (>= 5) ships the hard part: `ContinuousBatchingManager` keeps a paged KV cache,
schedules prefill and decode of all admitted sequences into each forward pass, lets new
sequences join between steps, and applies temperature and top-p per request. It runs on CPU and
CUDA. Its top-p sorts the whole vocabulary of every sequence at every step; serving/sampling.py
draws from the same distribution without the sort. Without flash kernels (CPU) its decode step
scores every sequence's query against every sequence's keys; serving/attention.py computes each
sequence's attention on its own keys. What it lacks for serving, this module adds by hand:

- admission: a bound on admitted requests (429 beyond it), and a short wait while the engine is
  idle so a burst starts as one batch (`max_wait_ms`, up to `max_batch_size` requests);
- text: incremental detokenisation, stop sequences (the sequence is cancelled in the engine at
  the first match) and finish reasons;
- accounting: queue depth, running batch size, per-step batch size, time to first token,
  end-to-end latency, token totals;
- draining: refuse new work, then wait for in-flight requests to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from deepseek_operator.serving.detokenizer import IncrementalDetokenizer
from deepseek_operator.serving.loading import LoadedModel
from deepseek_operator.serving.memory import KV_PAGE_TOKENS
from deepseek_operator.serving.metrics import ServerMetrics
from deepseek_operator.serving.settings import ServerSettings
from deepseek_operator.serving.stops import StopMatcher

log = logging.getLogger(__name__)

GREEDY_TEMPERATURE = 1e-5
"""Sampling runs for every sequence in a batch; a tiny temperature makes it pick the argmax."""


class EngineBusy(RuntimeError):
    """The admission bound is reached; the client should retry later (HTTP 429)."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__("the server is at its request limit; retry later")
        self.retry_after_seconds = retry_after_seconds


class EngineDraining(RuntimeError):
    """The server is shutting down and takes no new requests (HTTP 503)."""


class EngineFailed(RuntimeError):
    """The generation loop failed for this request."""


class EngineStopped(EngineFailed):
    """The server was told to stop at once (a second signal) with this request unfinished."""


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False


@dataclass(frozen=True)
class Delta:
    text: str
    finish_reason: str | None = None
    first_token: bool = False
    """The request's first generated token, even when it has no text yet (an id beyond the
    tokenizer, part of a character): streams send a chunk for it, so time to first token is
    what the engine did, not when text happened to decode."""


@dataclass
class _Request:
    request_id: str
    prompt_ids: list[int]
    params: SamplingParams
    admitted_at: float
    detokenizer: IncrementalDetokenizer
    stopper: StopMatcher
    counted: bool = True
    deltas: asyncio.Queue[Delta | EngineFailed] = field(default_factory=asyncio.Queue)
    generated: list[int] = field(default_factory=list)
    started: bool = False
    finished: bool = False
    finish_reason: str | None = None
    first_token_at: float | None = None
    finished_at: float | None = None


class GenerationStream:
    """One request's output: iterate for text deltas; usage and timings once it ends."""

    def __init__(self, engine: Engine, request: _Request) -> None:
        self._engine = engine
        self._request = request

    @property
    def prompt_tokens(self) -> int:
        return len(self._request.prompt_ids)

    @property
    def completion_tokens(self) -> int:
        return len(self._request.generated)

    @property
    def finish_reason(self) -> str | None:
        return self._request.finish_reason

    async def __aiter__(self) -> AsyncIterator[Delta]:
        while True:
            item = await self._request.deltas.get()
            if isinstance(item, EngineFailed):
                raise item
            yield item
            if item.finish_reason is not None:
                return

    async def text(self) -> str:
        return "".join([delta.text async for delta in self])

    def cancel(self) -> None:
        """Stop generating for a client that went away."""
        self._engine.abandon(self._request)


class Engine:
    def __init__(
        self, loaded: LoadedModel, settings: ServerSettings, metrics: ServerMetrics
    ) -> None:
        self.loaded = loaded
        self.settings = settings
        self.metrics = metrics
        self.draining = False
        self._manager: Any = None
        self._requests: dict[str, _Request] = {}
        self._ids = itertools.count()
        self._waiting_to_submit: list[Callable[[], None]] = []
        self._flush_timer: asyncio.TimerHandle | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._seconds_per_token = 0.05
        self._vocabulary_size = _vocabulary_size(loaded.tokenizer)
        self.stopped_requests = 0
        """Admitted requests ended unfinished by `stop_all` (a second signal)."""

    # ---- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Create and start transformers' continuous-batching manager (its own thread)."""
        from transformers import GenerationConfig
        from transformers.generation.configuration_utils import ContinuousBatchingConfig
        from transformers.generation.continuous_batching.continuous_api import OutputRouter

        from deepseek_operator.serving.attention import install as install_decode_attention
        from deepseek_operator.serving.sampling import install as install_nucleus_sampler

        metrics = self.metrics

        class StepObservingRouter(OutputRouter):
            # Called once per decoding step with every sequence that got a token in it.
            def deliver_batch(self, outputs: list[Any]) -> None:
                if outputs:
                    metrics.batch_size.observe(len(outputs))
                super().deliver_batch(outputs)

        loaded, settings = self.loaded, self.settings
        generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
            do_sample=True,
            # Values other than the neutral ones make transformers build the per-request
            # temperature and top-p processors; each request passes its own values.
            temperature=0.5,
            top_p=0.5,
            top_k=None,
            max_new_tokens=settings.default_max_tokens,
            eos_token_id=list(loaded.eos_token_ids) or None,
            pad_token_id=loaded.tokenizer.pad_token_id,
        )
        # On CPU the loader sized it from the memory available (serving/memory.py); on CUDA,
        # unless given, transformers sizes it from free GPU memory.
        blocks = loaded.kv_cache_blocks
        batching = ContinuousBatchingConfig(
            per_request_processors=True,
            max_requests_per_batch=settings.max_batch_size,
            num_blocks=blocks,
            page_size=KV_PAGE_TOKENS,
            # Prompt tokens per step on CPU (long prompts are prefilled in chunks); on CUDA
            # transformers sizes it from free memory.
            max_batch_tokens=max(KV_PAGE_TOKENS, settings.max_batch_size * 8)
            if settings.device == "cpu"
            else None,
            allow_block_sharing=False,
            # On CPU the cache was sized from the memory the host (or cgroup) has available
            # (serving/memory.py); transformers' own rule, 60 % of total RAM less this
            # process, ignores other processes and would refuse or resize it.
            max_memory_percent=1.0 if settings.device == "cpu" else None,
            seed=settings.seed,
            auto_switch_to_flash=settings.device == "cuda",
        )
        install_decode_attention()
        manager = loaded.model.init_continuous_batching(
            generation_config=generation_config, continuous_batching_config=batching
        )
        manager.output_router = StepObservingRouter()
        install_nucleus_sampler(manager)
        manager.start()
        self.attach(manager)

    def attach(self, manager: Any) -> None:
        """Use a started continuous-batching manager (or anything with its request methods)."""
        self._manager = manager

    async def watch(self, interval_seconds: float = 1.0) -> None:
        """Fail admitted requests if the generation loop dies, instead of leaving them hanging."""
        while self._manager is not None:
            await asyncio.sleep(interval_seconds)
            if self._manager is not None and not self.alive and self._requests:
                error = getattr(self._manager.background_thread_status, "fatal_error", None)
                log.error(
                    "the generation loop stopped (%s); failing %d requests",
                    error,
                    len(self._requests),
                )
                for request in list(self._requests.values()):
                    self._fail(request, f"the generation loop stopped: {error}")

    def stop(self) -> None:
        if self._manager is not None:
            self._manager.stop(block=True, timeout=10)
            self._manager = None

    @property
    def alive(self) -> bool:
        manager = self._manager
        return (
            manager is not None
            and manager.is_running()
            and manager.background_thread_status.fatal_error is None
        )

    async def warm_up(self) -> None:
        """One real generation through the whole path: readiness means it can answer."""
        ids = self.loaded.tokenizer.encode("Hello", add_special_tokens=True) or [0]
        stream = self.submit(ids, SamplingParams(max_tokens=2, ignore_eos=True), warm_up=True)
        await stream.text()

    async def drain(self, seconds: float) -> bool:
        """Refuse new requests and wait up to `seconds` for the admitted ones; True if all ended."""
        self.draining = True
        try:
            await asyncio.wait_for(self._idle.wait(), seconds)
        except TimeoutError:
            return False
        return True

    @property
    def in_flight(self) -> int:
        return len(self._requests)

    def stop_all(self, reason: str) -> int:
        """End every admitted request now with `EngineStopped` (an OpenAI-shaped 503 to its
        client, not a connection cut mid-reply); returns how many. Must run on the event loop."""
        self.draining = True
        requests = list(self._requests.values())
        for request in requests:
            if self._manager is not None:
                self._manager.cancel_request(request.request_id)
            self._fail(request, reason, EngineStopped)
        self.stopped_requests += len(requests)
        return len(requests)

    # ---- requests --------------------------------------------------------------------------

    def submit(
        self, prompt_ids: list[int], params: SamplingParams, *, warm_up: bool = False
    ) -> GenerationStream:
        """Admit a request or raise EngineBusy / EngineDraining; must run on the event loop."""
        if self.draining and not warm_up:
            raise EngineDraining("the server is shutting down and takes no new requests")
        if len(self._requests) >= self.settings.max_queue:
            raise EngineBusy(self._retry_after())
        request = _Request(
            request_id=f"req-{next(self._ids)}",
            prompt_ids=list(prompt_ids),
            params=params,
            admitted_at=time.perf_counter(),
            detokenizer=IncrementalDetokenizer(
                self.loaded.tokenizer, prompt_ids, self._vocabulary_size
            ),
            stopper=StopMatcher(params.stop),
            counted=not warm_up,
        )
        self._requests[request.request_id] = request
        self._idle.clear()
        if not warm_up:
            self.metrics.prompt_tokens.inc(len(request.prompt_ids))
        self._publish_gauges()
        self._admit(lambda: self._send(request))
        return GenerationStream(self, request)

    def abandon(self, request: _Request) -> None:
        if request.finished:
            return
        self._finish(request, "abort")
        self._cancel_in_engine(request)

    def _admit(self, send: Callable[[], None]) -> None:
        running = sum(1 for r in self._requests.values() if r.started and not r.finished)
        if running or self.settings.max_wait_ms <= 0:
            send()
            return
        self._waiting_to_submit.append(send)
        if len(self._waiting_to_submit) >= self.settings.max_batch_size:
            self._flush_admissions()
        elif self._flush_timer is None:
            loop = asyncio.get_running_loop()
            self._flush_timer = loop.call_later(
                self.settings.max_wait_ms / 1000, self._flush_admissions
            )

    def _flush_admissions(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        waiting, self._waiting_to_submit = self._waiting_to_submit, []
        for send in waiting:
            send()

    def _send(self, request: _Request) -> None:
        if request.finished:
            return
        manager = self._manager
        if manager is None or not self.alive:
            error = getattr(getattr(manager, "background_thread_status", None), "fatal_error", None)
            self._fail(request, f"the generation loop is not running ({error})")
            return
        params = request.params
        greedy = params.temperature <= 0
        manager.register_result_handler(
            request.request_id, lambda output: self._on_output(request, output)
        )
        manager.add_request(
            request.prompt_ids,
            request_id=request.request_id,
            max_new_tokens=params.max_tokens,
            streaming=True,
            eos_token_id=-1 if params.ignore_eos else list(self.loaded.eos_token_ids) or -1,
            temperature=float(GREEDY_TEMPERATURE if greedy else params.temperature),
            top_p=float(1.0 if greedy else params.top_p),
        )

    def _on_output(self, request: _Request, output: Any) -> None:
        """Runs on the event loop for every step that gave this request a token."""
        if request.finished:
            return
        if output.error is not None:
            self._fail(request, str(output.error))
            return
        now = time.perf_counter()
        first = not request.started and bool(output.generated_tokens)
        if first:
            request.started = True
            request.first_token_at = now
            if request.counted:
                self.metrics.time_to_first_token.observe(now - request.admitted_at)
        request.generated = output.generated_tokens  # a fresh list per step already
        piece = request.detokenizer.step(request.generated)
        done = output.is_finished()
        if done:
            piece += request.detokenizer.flush(request.generated)
        result = request.stopper.feed(piece)
        if result.stopped:
            request.deltas.put_nowait(Delta(result.text))
            self._finish(request, "stop")
            self._cancel_in_engine(request)
            return
        if done:
            tail = request.stopper.finish()
            last = request.generated[-1] if request.generated else None
            hit_eos = last in self.loaded.eos_token_ids and not request.params.ignore_eos
            reason = (
                "stop"
                if hit_eos or len(request.generated) < request.params.max_tokens
                else "length"
            )
            if result.text or tail:
                request.deltas.put_nowait(Delta(result.text + tail))
            self._finish(request, reason)
            return
        if result.text or first:
            request.deltas.put_nowait(Delta(result.text, first_token=first))
        self._publish_gauges()

    def _finish(self, request: _Request, reason: str) -> None:
        request.finished = True
        request.finish_reason = reason
        request.finished_at = time.perf_counter()
        self._requests.pop(request.request_id, None)
        if reason != "abort" and request.started and request.counted:
            self.metrics.e2e_latency.observe(request.finished_at - request.admitted_at)
            if request.first_token_at is not None and len(request.generated) > 1:
                per_token = (request.finished_at - request.first_token_at) / (
                    len(request.generated) - 1
                )
                self._seconds_per_token = 0.8 * self._seconds_per_token + 0.2 * per_token
        if request.counted:
            self.metrics.generated_tokens.inc(len(request.generated))
        request.deltas.put_nowait(Delta("", finish_reason=reason))
        self._publish_gauges()

    def _fail(
        self, request: _Request, message: str, error: type[EngineFailed] = EngineFailed
    ) -> None:
        request.finished = True
        request.finish_reason = "error"
        self._requests.pop(request.request_id, None)
        self._unregister(request)
        request.deltas.put_nowait(error(message))
        self._publish_gauges()

    def _cancel_in_engine(self, request: _Request) -> None:
        if self._manager is not None:
            self._manager.cancel_request(request.request_id)
        self._unregister(request)

    def _unregister(self, request: _Request) -> None:
        # A cancelled request gets no final output, so its handler would never be dropped.
        router = getattr(self._manager, "output_router", None)
        if router is not None:
            with router._lock:
                router.result_handlers.pop(request.request_id, None)

    def _publish_gauges(self) -> None:
        running = sum(1 for r in self._requests.values() if r.started)
        self.metrics.running.set(running)
        self.metrics.queue_depth.set(len(self._requests) - running)
        self.metrics.in_flight.set(len(self._requests))
        if not self._requests:
            self._idle.set()

    def _retry_after(self) -> int:
        """Seconds until a slot is likely free: the shortest remaining budget of the running requests."""
        remaining = [
            max(r.params.max_tokens - len(r.generated), 1) * self._seconds_per_token
            for r in self._requests.values()
        ]
        return max(1, math.ceil(min(remaining, default=1.0)))


def _vocabulary_size(tokenizer: Any) -> int | None:
    """Ids the tokenizer can decode (added tokens included), or None if it cannot say."""
    try:
        return len(tokenizer)
    except TypeError:
        return None


@contextlib.contextmanager
def cancel_on_exit(stream: GenerationStream) -> Iterator[None]:
    """Cancel `stream` in the engine if the caller leaves before it ends (client disconnect)."""
    try:
        yield
    finally:
        if stream.finish_reason is None:
            stream.cancel()
