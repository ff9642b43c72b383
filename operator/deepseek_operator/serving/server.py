"""Run the app on uvicorn with Kubernetes' termination order.

On the first SIGTERM (or Ctrl-C) the server turns unready at once and refuses new requests with
503, lets admitted requests finish for up to `drain_seconds`, and only then stops listening and
exits 0. A second signal exits at once: every request still in flight is answered with an
OpenAI-shaped 503 (`server_shutting_down`) before the server stops, and the log says how many.
Kubernetes removes an unready pod from its Service, so traffic moves to the other replicas while
this one finishes its work.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from types import FrameType

import uvicorn

from deepseek_operator.serving.app import ServerState, create_app
from deepseek_operator.serving.loading import check_weights_dir
from deepseek_operator.serving.settings import ServerSettings, SettingsError

log = logging.getLogger(__name__)

CLOSE_CONNECTIONS_SECONDS = 5.0
"""After the drain, how long uvicorn waits for responses still being written."""


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, state: ServerState) -> None:
        super().__init__(config)
        self._state = state
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = False
        self._drain_task: asyncio.Task[None] | None = None  # held: the loop keeps only weak refs

    async def startup(self, sockets: list | None = None) -> None:  # type: ignore[type-arg]
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining and self._loop is not None:
            # The second signal: answer what is in flight now, then let uvicorn stop.
            self._loop.call_soon_threadsafe(self._stop_in_flight, signal.Signals(sig).name)
        if self._draining or self._loop is None:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        log.info(
            "signal %s: draining (readiness off, new requests refused)", signal.Signals(sig).name
        )
        self._state.begin_drain()
        self._loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        assert self._loop is not None
        self._drain_task = self._loop.create_task(self._drain())

    def _stop_in_flight(self, signal_name: str) -> None:
        engine = self._state.engine
        stopped = 0 if engine is None else engine.stop_all("the server is shutting down now")
        log.warning(
            "signal %s again: exiting now; %d requests in flight were answered 503",
            signal_name,
            stopped,
        )

    async def _drain(self) -> None:
        engine = self._state.engine
        seconds = self._state.settings.drain_seconds
        finished = True if engine is None else await engine.drain(seconds)
        if engine is not None and engine.stopped_requests:
            log.warning(
                "not drained: %d admitted requests were ended unfinished by a second signal",
                engine.stopped_requests,
            )
        elif finished:
            log.info("drained: every admitted request finished")
        else:
            log.warning(
                "drain timed out after %.0f s with %d requests in flight",
                seconds,
                engine.in_flight if engine else 0,
            )
        self.should_exit = True

    def request_exit(self) -> None:
        self.should_exit = True


def run(settings: ServerSettings, log_level: str = "info") -> int:
    """Serve until drained after a signal; the exit code is 0 unless the model failed to load."""
    check_weights_dir(settings.weights)
    failed: list[BaseException] = []
    server_box: list[DrainingServer] = []

    def on_load_failure(error: BaseException) -> None:
        failed.append(error)
        if server_box:
            server_box[0].request_exit()

    app = create_app(settings, on_load_failure=on_load_failure)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        timeout_graceful_shutdown=int(CLOSE_CONNECTIONS_SECONDS),
        lifespan="on",
    )
    server = DrainingServer(config, app.state.server)
    server_box.append(server)
    server.run()
    if failed:
        print(f"error: {failed[0]}", file=sys.stderr)
        # A setting that cannot work (a KV cache too large for the memory) is the user's to
        # change, as every refused flag: exit 2. Anything else failed in loading: exit 1.
        return 2 if isinstance(failed[0], SettingsError) else 1
    return 0
