"""The demo's day as a picture and as the data the picture is drawn from.

`series(samples)` is the data: hours since the start and, per pool, the Ready replicas; the
offered and measured demand; cost per hour and the all-GPU baseline. `write` saves it as JSON
next to the PNG (same name, `.json`), so what the picture shows can be checked without reading
pixels, and draws the PNG from exactly that data.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from deepseek_operator.cli.demo_day import START_HOUR, TIME_ZONE, Sample, Summary


def series(samples: Sequence[Sample], pools: Sequence[str]) -> dict[str, Any]:
    """Hours are counted from 06:00 on the demo clock, the start of its day."""
    start = day_start_of(samples[0].at) if samples else None

    def hours(sample: Sample) -> float:
        return 0.0 if start is None else (sample.at - start).total_seconds() / 3600

    return {
        "start": start.isoformat() if start else None,
        "hours": [round(hours(s), 4) for s in samples],
        "window": [s.window for s in samples],
        "ready_replicas": {p: [s.ready.get(p, 0) for s in samples] for p in pools},
        "offered_tokens_per_second": [round(s.offered_tokens_per_second, 2) for s in samples],
        "demand_tokens_per_second": [s.demand_tokens_per_second for s in samples],
        "cost_per_hour": [s.cost_per_hour for s in samples],
        "baseline_cost_per_hour": [s.baseline_cost_per_hour for s in samples],
        "currency": samples[-1].currency if samples else "CNY",
    }


def day_start_of(moment: datetime) -> datetime:
    """The 06:00 (in the deployment's zone) at or before `moment`."""
    local = moment.astimezone(TIME_ZONE)
    start = local.replace(hour=START_HOUR, minute=0, second=0, microsecond=0)
    return start if start <= local else start - timedelta(days=1)


def write(path: Path, samples: Sequence[Sample], pools: Sequence[str], summary: Summary) -> Path:
    """The PNG at `path` and its data at `path` with `.json`; returns the data's path."""
    data = series(samples, pools)
    data["summary"] = {
        "hours": round(summary.hours, 3),
        "cost": round(summary.cost, 2),
        "baseline_cost": round(summary.baseline_cost, 2),
        "savings_percent": round(summary.savings_percent, 1),
        "moves": [[at.isoformat(), a, b] for at, a, b in summary.moves],
    }
    data_path = path.with_suffix(".json")
    data_path.write_text(json.dumps(data, indent=1))
    _draw(path, data, summary)
    return data_path


def _draw(path: Path, data: dict[str, Any], summary: Summary) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = data["hours"]
    currency = data["currency"]
    figure, (top, middle, bottom) = plt.subplots(
        3, 1, figsize=(12, 9), sharex=True, gridspec_kw={"height_ratios": [2, 2, 2]}
    )
    ready = data["ready_replicas"]
    top.stackplot(hours, *ready.values(), labels=[f"Ready on {p}" for p in ready], step="post")
    top.set_ylabel("replicas")
    top.set_title(
        f"r1-7b over a compressed day from {data['start'][:16]}: "
        f"{summary.cost:.0f} {currency} spent, {summary.baseline_cost:.0f} all-GPU "
        f"({summary.savings_percent:.0f}% saved)"
    )
    top.legend(loc="upper left")
    middle.plot(hours, data["offered_tokens_per_second"], color="grey", label="offered load")
    measured = [
        (h, v)
        for h, v in zip(hours, data["demand_tokens_per_second"], strict=True)
        if v is not None
    ]
    if measured:
        middle.plot(*zip(*measured, strict=True), color="black", label="demand the operator read")
    middle.set_ylabel("tokens/s")
    middle.set_yscale("symlog", linthresh=50)
    middle.legend(loc="upper left")
    for key, label in (("cost_per_hour", "cost/h"), ("baseline_cost_per_hour", "all-GPU cost/h")):
        points = [(h, v) for h, v in zip(hours, data[key], strict=True) if v is not None]
        if points:
            bottom.step(*zip(*points, strict=True), where="post", label=label)
    bottom.set_ylabel(f"{currency} per hour")
    ticks = list(range(0, 25, 3))
    bottom.set_xticks(ticks, [f"{(START_HOUR + t) % 24:02d}:00" for t in ticks])
    bottom.set_xlabel(f"time of day ({TIME_ZONE.key}), on the demo clock")
    bottom.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
