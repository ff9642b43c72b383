"""A real HTTP server on 127.0.0.1 that answers Prometheus' instant-query API as a test says:
each answer is chosen by a function of the PromQL it receives."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b""
    delay: float = 0.0


def vector(*series: tuple[dict[str, str], float, str]) -> Answer:
    """A vector result: (labels, sample time, value) per series."""
    result = [{"metric": labels, "value": [at, value]} for labels, at, value in series]
    payload = {"status": "success", "data": {"resultType": "vector", "result": result}}
    return Answer(body=json.dumps(payload).encode())


def scalar(at: float, value: str) -> Answer:
    payload = {"status": "success", "data": {"resultType": "scalar", "result": [at, value]}}
    return Answer(body=json.dumps(payload).encode())


def error(status: int, kind: str = "bad_data", message: str = "parse error") -> Answer:
    payload = {"status": "error", "errorType": kind, "error": message}
    return Answer(status=status, body=json.dumps(payload).encode())


@dataclass
class FakePrometheus:
    answer: Callable[[str], Answer] = field(default=lambda query: vector())
    queries: list[str] = field(default_factory=list)
    address: str = ""

    def requests(self) -> int:
        return len(self.queries)


@contextmanager
def fake_prometheus(answer: Callable[[str], Answer] | None = None) -> Iterator[FakePrometheus]:
    fake = FakePrometheus()
    if answer is not None:
        fake.answer = answer

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, query: str) -> None:
            fake.queries.append(query)
            chosen = fake.answer(query)
            if chosen.delay:
                time.sleep(chosen.delay)
            try:
                self.send_response(chosen.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(chosen.body)))
                self.end_headers()
                self.wfile.write(chosen.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a timeout test)

        def do_GET(self) -> None:
            query = parse_qs(urlparse(self.path).query).get("query", [""])[0]
            self._reply(query)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            self._reply(form.get("query", [""])[0])

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    fake.address = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
