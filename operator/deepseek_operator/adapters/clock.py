"""The operator's clock: real time, or (a demo and testing aid) a scaled and shifted one.

`decide()` takes the time as an argument, so what instant the operator is in is only a matter of
what the handlers pass it. `run --time-scale N --clock-start ISO` makes that instant start at
ISO and run N times faster than real time, so a whole day of windows and load can be walked
through in minutes (`deepseek-operator demo` does). Only decide()'s `now`, the timestamps of
the demand readings it is given (so stabilisation compares like with like) and the sleep until
its next wake-up are scaled; everything else (API timeouts, peering, pod start-up, the load
poller, Prometheus staleness) stays in real time. Never use it in production: timestamps in the
status are the clock's, and an operator restarted without the same flags reads them as real.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from deepseek_operator.core.planning.reconcile import Demand, DemandReading

SCALE_ENV = "DEEPSEEK_OPERATOR_TIME_SCALE"
START_ENV = "DEEPSEEK_OPERATOR_CLOCK_START"
ANCHOR_ENV = "DEEPSEEK_OPERATOR_CLOCK_ANCHOR"


@dataclass(frozen=True)
class Clock:
    """`start` at the real instant `anchor` (epoch seconds), then `scale` times real time.
    Without `start`, real time (scaled from `anchor` when `scale` is not 1)."""

    scale: float = 1.0
    start: datetime | None = None
    anchor: float = 0.0

    @property
    def real(self) -> bool:
        return self.scale == 1.0 and self.start is None

    def at(self, real: datetime) -> datetime:
        """The clock's reading at a real instant."""
        if self.real:
            return real
        origin = self.start or datetime.fromtimestamp(self.anchor, UTC)
        return datetime.fromtimestamp(
            origin.timestamp() + (real.timestamp() - self.anchor) * self.scale, UTC
        )

    def now(self) -> datetime:
        return self.at(datetime.now(UTC))

    def real_seconds(self, clock_seconds: float) -> float:
        """Real seconds until the clock has moved by `clock_seconds`."""
        return clock_seconds / self.scale

    def demand(self, demand: Demand) -> Demand:
        """A reading with its timestamps on this clock (Prometheus stamps them in real time)."""
        if self.real or not isinstance(demand, DemandReading):
            return demand
        pools = tuple(
            dataclasses.replace(p, observed_at=self.at(p.observed_at)) for p in demand.pools
        )
        return dataclasses.replace(demand, observed_at=self.at(demand.observed_at), pools=pools)

    def describe(self) -> str:
        if self.real:
            return "real time"
        return f"{self.now().isoformat(timespec='seconds')}, running {self.scale:g}x real time"

    @classmethod
    def from_environment(cls) -> Clock:
        """From the variables `run --time-scale/--clock-start/--clock-anchor` sets."""
        env = os.environ.get
        scale = float(env(SCALE_ENV) or 1.0)
        start = env(START_ENV)
        anchor = env(ANCHOR_ENV)
        return cls(
            scale=scale,
            start=datetime.fromisoformat(start).astimezone(UTC) if start else None,
            anchor=float(anchor) if anchor else time.time(),
        )
