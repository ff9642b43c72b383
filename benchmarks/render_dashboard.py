"""Render the Grafana dashboard's panels to a PNG from a live Prometheus, without Grafana.

Each panel's PromQL is evaluated as Grafana would send it (the namespace and deployment
variables set to all, `$__rate_interval` to 1m) over the given time range, and drawn in the
panel's place on the dashboard's 24-column grid: time series as lines (stacked where the panel
stacks), single stats as their last value.

    python benchmarks/render_dashboard.py --prometheus http://127.0.0.1:9090 --minutes 30 --out dash.png
"""

from __future__ import annotations

import argparse
import json
import re
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt

DASHBOARD = (
    Path(__file__).resolve().parents[1]
    / "charts"
    / "deepseek-operator"
    / "dashboards"
    / "deepseek-operator.json"
)


def grafana_substituted(expression: str, range_seconds: int) -> str:
    text = expression.replace("$__rate_interval", "1m").replace("$__range", f"{range_seconds}s")
    text = text.replace("$__interval", "15s")
    return re.sub(r"\$\{?(namespace|deployment)\}?", ".*", text)


def ask(prometheus: str, path: str, **params: Any) -> list[dict[str, Any]]:
    url = f"{prometheus}/api/v1/{path}?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=30) as answer:
        return list(json.load(answer)["data"]["result"])


def legend(template: str, labels: dict[str, str]) -> str:
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)
    return text or ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "value"


def render(prometheus: str, start: float, end: float, out: Path) -> None:
    board = json.loads(DASHBOARD.read_text())
    panels = [p for p in board["panels"] if p["type"] != "row"]
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    unit = 0.62
    figure = plt.figure(figsize=(24 * unit, rows * unit * 0.9))
    step = max(5, int((end - start) / 240))
    for panel in panels:
        grid = panel["gridPos"]
        left, bottom = grid["x"] / 24, 1 - (grid["y"] + grid["h"]) / rows
        axes = figure.add_axes(
            (
                left + 0.03,
                bottom + 0.2 / rows,
                grid["w"] / 24 - 0.04,
                grid["h"] / rows * 0.72,
            )
        )
        axes.set_title(panel["title"], fontsize=9, loc="left")
        axes.tick_params(labelsize=7)
        if panel["type"] == "stat":
            axes.axis("off")
            shown = []
            for target in panel["targets"]:
                expression = grafana_substituted(target["expr"], int(end - start))
                for series in ask(prometheus, "query", query=expression, time=end):
                    value = float(series["value"][1])
                    shown.append(f"{legend(target['legendFormat'], series['metric'])}: {value:.3g}")
            axes.text(0.02, 0.5, "\n".join(shown) or "no data", fontsize=10, va="center")
            continue
        stacked = (
            panel["fieldConfig"]["defaults"].get("custom", {}).get("stacking", {}).get("mode")
            == "normal"
        )
        drawn = 0
        for target in panel["targets"]:
            expression = grafana_substituted(target["expr"], int(end - start))
            results = ask(
                prometheus, "query_range", query=expression, start=start, end=end, step=step
            )
            lines = []
            for series in results:
                times = [datetime.fromtimestamp(float(t), UTC) for t, _ in series["values"]]
                values = [float(v) for _, v in series["values"]]
                lines.append((legend(target["legendFormat"], series["metric"]), times, values))
            if stacked and lines:
                stamps = sorted({t for _, times, _ in lines for t in times})
                stack = [
                    [dict(zip(times, values, strict=True)).get(t, 0.0) for t in stamps]
                    for _, times, values in lines
                ]
                axes.stackplot(stamps, *stack, labels=[name for name, _, _ in lines], alpha=0.7)
            else:
                for name, times, values in lines:
                    axes.plot(times, values, label=name, linewidth=1)
            drawn += len(lines)
        if drawn:
            axes.legend(fontsize=6, loc="upper left", ncol=2)
        else:
            axes.text(0.5, 0.5, "no data", transform=axes.transAxes, ha="center", fontsize=9)
        axes.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    figure.suptitle(board["title"], fontsize=13, x=0.01, y=1 - 0.25 / rows, ha="left")
    figure.savefig(out, dpi=80)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", required=True)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    end = time.time()
    render(args.prometheus.rstrip("/"), end - args.minutes * 60, end, args.out)


if __name__ == "__main__":
    main()
