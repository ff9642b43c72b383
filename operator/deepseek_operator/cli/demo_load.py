"""The demo's load source: what the model servers' `/metrics` would show while the day's users
send requests (simulated pods run no process, so nothing else generates tokens).

It serves, on 127.0.0.1, the model server's counter of generated tokens
(`deepseek_server_generation_tokens_total`) for r1-7b, growing at the tokens/s the day's curve
(`demo_day.demand_at`) gives for the demo clock's time. It is one series for the whole
deployment, labelled `pool="load-source"`: it counts as demand, and the capacity correction,
which needs each pool's own figures, ignores it. Run as its own process (`python -m
deepseek_operator.cli.demo_load PORT SCALE START ANCHOR`), so `demo --keep` leaves it running
beside the cluster and `cluster down` stops it.
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import UTC, datetime

from deepseek_operator.cli import demo_day
from deepseek_operator.controlplane.prometheus import serve_exposition
from deepseek_operator.core.workloads.engines import TRANSFORMERS

POOL_LABEL = "load-source"
COUNTER = TRANSFORMERS.metrics.generated_tokens_total


def tokens_query(namespace: str = demo_day.NAMESPACE, name: str = demo_day.DEPLOYMENT) -> str:
    """The deployment's demand as the demo reads it: a 5 s rate, since a compressed day moves
    too fast for the default one-minute window (a minute is most of a demo's day)."""
    return f'sum(rate({COUNTER}{{namespace="{namespace}",deployment="{name}"}}[5s]))'


class DayLoad:
    """A counter that grows, in real time, at the curve's tokens/s for the clock's time."""

    def __init__(self, scale: float, start: datetime, anchor: float) -> None:
        self.scale, self.start, self.anchor = scale, start, anchor
        self.total = 0.0
        self.last = time.time()
        self._lock = threading.Lock()

    def clock(self, real: float) -> datetime:
        return datetime.fromtimestamp(
            self.start.timestamp() + (real - self.anchor) * self.scale, UTC
        )

    def exposition(self) -> str:
        with self._lock:
            now = time.time()
            self.total += demo_day.demand_at(self.clock(now)) * max(0.0, now - self.last)
            self.last = now
            total = self.total
        labels = (
            f'namespace="{demo_day.NAMESPACE}",deployment="{demo_day.DEPLOYMENT}",'
            f'pool="{POOL_LABEL}"'
        )
        return f"# TYPE {COUNTER} counter\n{COUNTER}{{{labels}}} {total}\n"


def main(argv: list[str]) -> None:
    port, scale, start, anchor = argv
    load = DayLoad(float(scale), datetime.fromisoformat(start), float(anchor))
    serve_exposition(load.exposition, int(port)).serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main(sys.argv[1:])
