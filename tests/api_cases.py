"""Resources shared by the API tests: valid bases, the bad-input table, hypothesis strategies.

The same table and strategies run against the pydantic models (tests/unit) and against a real
API server (tests/e2e), so the two validators are held to one set of expectations: each bad
resource is refused, and the error names the same field path in both.
"""

from __future__ import annotations

import copy
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hypothesis import strategies as st
from pydantic import ValidationError

from deepseek_operator.api import API_VERSION, ENGINE_PRECISIONS

Resource = dict[str, Any]


def deployment(name: str = "r1-test") -> Resource:
    """A small valid DeepSeekDeployment, with every optional section present."""
    return {
        "apiVersion": API_VERSION,
        "kind": "DeepSeekDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {
                "name": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
                "catalogKey": "r1-distill-qwen-7b",
                "weights": {"path": "/models/r1-7b"},
            },
            "variants": [
                {"pool": "a100", "engine": "vllm", "precision": "bf16", "tensorParallel": 2},
                {"pool": "cpu-xeon", "engine": "llamacpp", "precision": "int8"},
            ],
            "replicas": {"min": 1, "max": 4},
            "slo": {"minTokensPerSecondPerRequest": 10, "headroomFraction": 0.2},
            "schedule": {
                "timeZone": "Europe/Berlin",
                "windows": [
                    {"name": "day", "days": ["Mon", "Tue"], "start": "08:00", "end": "20:00"},
                    {"name": "night", "start": "20:00", "end": "08:00", "policy": "cpuOnly"},
                ],
                "exceptionDates": ["2026-12-25"],
            },
            "load": {
                "prometheusAddress": "http://prometheus:9090",
                "tokensPerSecondQuery": "sum(rate(tokens_total[1m]))",
            },
            "migration": {"minAvailable": 1},
        },
    }


def pool(name: str = "pool-test") -> Resource:
    """A small valid GPU PoolProfile."""
    return {
        "apiVersion": API_VERSION,
        "kind": "PoolProfile",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {"accelerator": "nvidia-a100"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
            "hardware": {
                "kind": "gpu",
                "acceleratorModel": "a100-80gb-sxm",
                "gpusPerNode": 8,
                "gpuMemoryGiB": 80,
                "cpuCores": 128,
                "memoryGiB": 1024,
            },
            "cost": {"purchasePricePerDevice": 100000, "amortisationYears": 3},
            "throughput": [
                {
                    "model": "r1-distill-qwen-7b",
                    "precision": "bf16",
                    "tokensPerSecondSingleStream": 90,
                    "tokensPerSecondSaturated": 2000,
                    "timeToFirstTokenSeconds": 0.1,
                    "measuredAt": "2026-11-20T10:00:00Z",
                }
            ],
        },
    }


@dataclass(frozen=True)
class InvalidCase:
    """A valid base, one change that breaks it, and the field path both validators must name."""

    id: str
    kind: str
    change: Callable[[Resource], None]
    path: str
    name: str | None = None

    def resource(self, name: str) -> Resource:
        name = self.name or name
        base = deployment(name) if self.kind == "DeepSeekDeployment" else pool(name)
        broken = copy.deepcopy(base)
        self.change(broken["spec"])
        return broken


def _set(path: str, value: Any) -> Callable[[Resource], None]:
    """A change that sets spec.<path> (dots and [index]) to value."""
    *parents, last = _steps(path)

    def change(spec: Resource) -> None:
        node: Any = spec
        for step in parents:
            node = node[step]
        node[last] = value

    return change


def _delete(path: str) -> Callable[[Resource], None]:
    *parents, last = _steps(path)

    def change(spec: Resource) -> None:
        node: Any = spec
        for step in parents:
            node = node[step]
        del node[last]

    return change


def _steps(path: str) -> list[str | int]:
    steps: list[str | int] = []
    for part in path.replace("[", ".[").split("."):
        if part.startswith("["):
            steps.append(int(part[1:-1]))
        elif part:
            steps.append(part)
    return steps


def _both(*changes: Callable[[Resource], None]) -> Callable[[Resource], None]:
    def change(spec: Resource) -> None:
        for each in changes:
            each(spec)

    return change


def _cpu(**extra: Any) -> Resource:
    """A cpu pool's hardware, plus `extra` fields."""
    return {
        "kind": "cpu",
        "acceleratorModel": "xeon-8380",
        "cpuCores": 64,
        "memoryGiB": 512,
        **extra,
    }


def _unchanged(spec: Resource) -> None:
    """The spec stays valid; the case breaks something outside it (e.g. its name)."""


def _variants(count: int) -> list[Resource]:
    return [{"pool": f"pool-{index}"} for index in range(count)]


DSD = "DeepSeekDeployment"
POOL = "PoolProfile"

INVALID_CASES: tuple[InvalidCase, ...] = (
    # wrong types
    InvalidCase("replicas-min-string", DSD, _set("replicas.min", "1"), "spec.replicas.min"),
    InvalidCase("paused-string", DSD, _set("paused", "yes"), "spec.paused"),
    InvalidCase(
        "slo-headroom-string", DSD, _set("slo.headroomFraction", "0.2"), "spec.slo.headroomFraction"
    ),
    InvalidCase("variants-string", DSD, _set("variants", "a100"), "spec.variants"),
    # out-of-range numbers
    InvalidCase("replicas-min-negative", DSD, _set("replicas.min", -1), "spec.replicas.min"),
    InvalidCase("replicas-max-1001", DSD, _set("replicas.max", 1001), "spec.replicas.max"),
    InvalidCase(
        "context-too-short", DSD, _set("model.contextLength", 100), "spec.model.contextLength"
    ),
    InvalidCase(
        "headroom-above-one", DSD, _set("slo.headroomFraction", 1.5), "spec.slo.headroomFraction"
    ),
    InvalidCase(
        "ttft-zero",
        DSD,
        _set("slo.maxTimeToFirstTokenSeconds", 0),
        "spec.slo.maxTimeToFirstTokenSeconds",
    ),
    InvalidCase(
        "savings-percent-150",
        DSD,
        _set("migration.minSavingsPercent", 150),
        "spec.migration.minSavingsPercent",
    ),
    InvalidCase(
        "reconcile-interval-1s",
        DSD,
        _set("reconcileIntervalSeconds", 1),
        "spec.reconcileIntervalSeconds",
    ),
    InvalidCase(
        "tensor-parallel-3",
        DSD,
        _set("variants[0].tensorParallel", 3),
        "spec.variants[0].tensorParallel",
    ),
    InvalidCase("pue-below-one", POOL, _set("cost.pue", 0.5), "spec.cost.pue"),
    # min > max and other cross-field rules
    InvalidCase(
        "replicas-min-above-max", DSD, _set("replicas", {"min": 5, "max": 2}), "spec.replicas.min"
    ),
    InvalidCase(
        "window-replicas-min-above-max",
        DSD,
        _set("schedule.windows[0].replicas", {"min": 3, "max": 1}),
        "spec.schedule.windows[0].replicas.min",
    ),
    InvalidCase(
        "min-available-above-max",
        DSD,
        _set("migration.minAvailable", 10),
        "spec.migration.minAvailable",
    ),
    InvalidCase(
        "window-start-equals-end",
        DSD,
        _set("schedule.windows[0].end", "08:00"),
        "spec.schedule.windows[0].end",
    ),
    InvalidCase(
        "fp8-on-transformers",
        DSD,
        _set("variants[0]", {"pool": "a100", "engine": "transformers", "precision": "fp8"}),
        "spec.variants[0].precision",
    ),
    InvalidCase(
        "fp32-on-vllm", DSD, _set("variants[0].precision", "fp32"), "spec.variants[0].precision"
    ),
    InvalidCase(
        "transformers-tensor-parallel",
        DSD,
        _set("variants[0].engine", "transformers"),
        "spec.variants[0].tensorParallel",
    ),
    InvalidCase(
        "llamacpp-tensor-parallel",
        DSD,
        _set("variants[1].tensorParallel", 2),
        "spec.variants[1].tensorParallel",
    ),
    InvalidCase("model-without-size", DSD, _delete("model.catalogKey"), "spec.model"),
    InvalidCase(
        "fallback-model-without-size",
        DSD,
        _set("variants[1].model", {"name": "x", "weights": {"path": "/m"}}),
        "spec.variants[1].model",
    ),
    InvalidCase(
        "gpu-pool-without-gpus", POOL, _delete("hardware.gpusPerNode"), "spec.hardware.gpusPerNode"
    ),
    InvalidCase(
        "cpu-pool-with-gpus",
        POOL,
        _set("hardware", _cpu(gpusPerNode=2)),
        "spec.hardware.gpusPerNode",
    ),
    InvalidCase(
        "cpu-pool-with-gpu-memory",
        POOL,
        _set("hardware", _cpu(gpuMemoryGiB=80)),
        "spec.hardware.gpuMemoryGiB",
    ),
    InvalidCase(
        "toleration-seconds-with-no-schedule",
        POOL,
        _set("tolerations[0]", {"key": "k", "effect": "NoSchedule", "tolerationSeconds": 300}),
        "spec.tolerations[0].effect",
    ),
    InvalidCase(
        "toleration-seconds-without-effect",
        POOL,
        _set("tolerations[0].tolerationSeconds", 300),
        "spec.tolerations[0].effect",
    ),
    InvalidCase("empty-node-selector", POOL, _set("nodeSelector", {}), "spec.nodeSelector"),
    InvalidCase("missing-node-selector", POOL, _delete("nodeSelector"), "spec.nodeSelector"),
    InvalidCase(
        "baseline-pool-not-a-variant",
        DSD,
        _set("costModel", {"baselinePool": "h100"}),
        "spec.costModel.baselinePool",
    ),
    InvalidCase(
        "catalog-key-and-parameter-count",
        DSD,
        _set("model.parameterCount", 70_000_000_000),
        "spec.model",
    ),
    InvalidCase(
        "window-max-below-min-available",
        DSD,
        _both(
            _set("migration.minAvailable", 2),
            _set("schedule.windows[1].replicas", {"min": 0, "max": 1}),
        ),
        "spec.migration.minAvailable",
    ),
    InvalidCase("cost-without-price", POOL, _set("cost", {"currency": "USD"}), "spec.cost"),
    InvalidCase(
        "purchase-without-years",
        POOL,
        _delete("cost.amortisationYears"),
        "spec.cost.amortisationYears",
    ),
    InvalidCase(
        "saturated-below-single",
        POOL,
        _set("throughput[0].tokensPerSecondSaturated", 10),
        "spec.throughput[0].tokensPerSecondSaturated",
    ),
    InvalidCase(
        "exists-toleration-with-value",
        POOL,
        _set("tolerations[0].value", "present"),
        "spec.tolerations[0].value",
    ),
    InvalidCase(
        "node-selector-value-with-space",
        POOL,
        _set("nodeSelector.accelerator", "nvidia a100"),
        "spec.nodeSelector.accelerator",
    ),
    InvalidCase(
        "node-selector-key-with-space",
        POOL,
        _set("nodeSelector", {"nvidia accelerator": "a100"}),
        "spec.nodeSelector",
    ),
    InvalidCase(
        "toleration-key-with-space",
        POOL,
        _set("tolerations[0].key", "nvidia gpu"),
        "spec.tolerations[0].key",
    ),
    InvalidCase(
        "measured-at-without-offset",
        POOL,
        _set("throughput[0].measuredAt", "2026-11-20T10:00:00"),
        "spec.throughput[0].measuredAt",
    ),
    # unknown enum values
    InvalidCase(
        "engine-unknown", DSD, _set("variants[0].engine", "tgi"), "spec.variants[0].engine"
    ),
    InvalidCase(
        "policy-unknown",
        DSD,
        _set("schedule.windows[0].policy", "cheapest"),
        "spec.schedule.windows[0].policy",
    ),
    InvalidCase("mode-unknown", DSD, _set("mode", "dry-run"), "spec.mode"),
    InvalidCase(
        "weekday-unknown",
        DSD,
        _set("schedule.windows[0].days", ["Monday"]),
        "spec.schedule.windows[0].days[0]",
    ),
    InvalidCase("hardware-kind-unknown", POOL, _set("hardware.kind", "tpu"), "spec.hardware.kind"),
    # bad strings: times, dates, zones, names, addresses
    InvalidCase(
        "start-25h",
        DSD,
        _set("schedule.windows[0].start", "25:00"),
        "spec.schedule.windows[0].start",
    ),
    InvalidCase(
        "end-without-colon",
        DSD,
        _set("schedule.windows[1].end", "0800"),
        "spec.schedule.windows[1].end",
    ),
    InvalidCase(
        "exception-month-13",
        DSD,
        _set("schedule.exceptionDates", ["2026-13-01"]),
        "spec.schedule.exceptionDates[0]",
    ),
    InvalidCase(
        "exception-february-30",
        DSD,
        _set("schedule.exceptionDates", ["2026-02-30"]),
        "spec.schedule.exceptionDates[0]",
    ),
    InvalidCase(
        "time-zone-with-space",
        DSD,
        _set("schedule.timeZone", "Europe/ Berlin"),
        "spec.schedule.timeZone",
    ),
    InvalidCase(
        "pool-name-uppercase", DSD, _set("variants[0].pool", "A100_big"), "spec.variants[0].pool"
    ),
    InvalidCase(
        "weights-relative-path",
        DSD,
        _set("model.weights.path", "models/r1"),
        "spec.model.weights.path",
    ),
    InvalidCase(
        "weights-path-root", DSD, _set("model.weights.path", "/"), "spec.model.weights.path"
    ),
    InvalidCase(
        "weights-path-dot-dot",
        DSD,
        _set("model.weights.path", "/models/../etc"),
        "spec.model.weights.path",
    ),
    InvalidCase(
        "weights-path-newline",
        DSD,
        _set("model.weights.path", "/models/r1\n/etc"),
        "spec.model.weights.path",
    ),
    InvalidCase(
        "weights-path-empty-segment",
        DSD,
        _set("variants[1].model", {"name": "x", "catalogKey": "k", "weights": {"path": "/m//x"}}),
        "spec.variants[1].model.weights.path",
    ),
    InvalidCase(
        "prometheus-without-scheme",
        DSD,
        _set("load.prometheusAddress", "prometheus:9090"),
        "spec.load.prometheusAddress",
    ),
    InvalidCase("currency-lowercase", POOL, _set("cost.currency", "usd"), "spec.cost.currency"),
    InvalidCase("currency-not-iso-4217", POOL, _set("cost.currency", "XYZ"), "spec.cost.currency"),
    InvalidCase(
        "report-currency-not-iso-4217",
        DSD,
        _set("costModel", {"currency": "XYZ"}),
        "spec.costModel.currency",
    ),
    InvalidCase(
        "exchange-rate-currency-not-iso-4217",
        DSD,
        _set("costModel", {"exchangeRates": [{"currency": "XYZ", "unitsPerUSD": 3}]}),
        "spec.costModel.exchangeRates[0].currency",
    ),
    InvalidCase(
        "exchange-rate-zero",
        DSD,
        _set("costModel", {"exchangeRates": [{"currency": "EUR", "unitsPerUSD": 0}]}),
        "spec.costModel.exchangeRates[0].unitsPerUSD",
    ),
    InvalidCase(
        "exchange-rate-currency-lowercase",
        DSD,
        _set("costModel", {"exchangeRates": [{"currency": "eur", "unitsPerUSD": 0.9}]}),
        "spec.costModel.exchangeRates[0].currency",
    ),
    InvalidCase(
        "usd-rate-not-one",
        DSD,
        _set("costModel", {"exchangeRates": [{"currency": "USD", "unitsPerUSD": 7.0}]}),
        "spec.costModel.exchangeRates[0].unitsPerUSD",
    ),
    InvalidCase("model-name-too-long", DSD, _set("model.name", "m" * 254), "spec.model.name"),
    # duplicates
    InvalidCase(
        "duplicate-variant-pool", DSD, _set("variants[1].pool", "a100"), "spec.variants[1]"
    ),
    InvalidCase(
        "duplicate-window-name",
        DSD,
        _set("schedule.windows[1].name", "day"),
        "spec.schedule.windows[1]",
    ),
    InvalidCase(
        "duplicate-weekday",
        DSD,
        _set("schedule.windows[0].days", ["Mon", "Mon"]),
        "spec.schedule.windows[0].days[1]",
    ),
    InvalidCase(
        "duplicate-exchange-rate",
        DSD,
        _set(
            "costModel",
            {
                "exchangeRates": [
                    {"currency": "EUR", "unitsPerUSD": 0.9},
                    {"currency": "EUR", "unitsPerUSD": 0.8},
                ]
            },
        ),
        "spec.costModel.exchangeRates[1]",
    ),
    InvalidCase(
        "duplicate-throughput-entry",
        POOL,
        lambda spec: spec["throughput"].append(dict(spec["throughput"][0])),
        "spec.throughput[1]",
    ),
    # oversize and empty lists
    InvalidCase("no-variants", DSD, _set("variants", []), "spec.variants"),
    InvalidCase("nine-variants", DSD, _set("variants", _variants(9)), "spec.variants"),
    InvalidCase(
        "seventeen-windows",
        DSD,
        _set(
            "schedule.windows",
            [{"name": f"w{i}", "start": "00:00", "end": "01:00"} for i in range(17)],
        ),
        "spec.schedule.windows",
    ),
    InvalidCase(
        "seventeen-node-labels",
        POOL,
        _set("nodeSelector", {f"l{i}": "x" for i in range(17)}),
        "spec.nodeSelector",
    ),
    # object names the operator could not use for a Service, Deployment or label
    InvalidCase("dsd-name-leading-digit", DSD, _unchanged, "metadata.name", name="7b-chat"),
    InvalidCase("dsd-name-with-dot", DSD, _unchanged, "metadata.name", name="r1.chat"),
    InvalidCase("pool-name-too-long", POOL, _unchanged, "metadata.name", name="p" * 64),
    # missing and unknown fields
    InvalidCase("missing-model", DSD, _delete("model"), "spec.model"),
    InvalidCase(
        "missing-weights-path", DSD, _delete("model.weights.path"), "spec.model.weights.path"
    ),
    InvalidCase("missing-hardware", POOL, _delete("hardware"), "spec.hardware"),
    InvalidCase("unknown-field", DSD, _set("replicas.desired", 3), "spec.replicas.desired"),
    InvalidCase("unknown-pool-field", POOL, _set("hardware.gpus", 8), "spec.hardware.gpus"),
    # Python field names are not wire names: the API server knows only the camelCase ones
    InvalidCase(
        "snake-case-field",
        DSD,
        _set("model.context_length", 4096),
        "spec.model.context_length",
    ),
    InvalidCase(
        "snake-case-pool-field", POOL, _set("hardware.cpu_cores", 64), "spec.hardware.cpu_cores"
    ),
)


def error_paths(error: ValidationError) -> set[str]:
    """pydantic error locations written as the API server writes field paths."""
    return {_api_path(entry["loc"]) for entry in error.errors()}


def _api_path(location: tuple[str | int, ...]) -> str:
    text = ""
    for step in location:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text


# ---------------------------------------------------------------------------------------------
# hypothesis strategies: valid specs in wire form (camelCase dicts), and one-change breakages.

_NAME = st.from_regex(r"\A[a-z][a-z0-9-]{0,10}[a-z0-9]\Z")
_TEXT = st.text(alphabet=string.ascii_letters + string.digits + "-_/.: ", min_size=1, max_size=40)
_CLOCK = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.integers(0, 59))
_DATE = st.dates().filter(lambda d: d.year >= 1000).map(lambda d: d.isoformat())
_DAYS = st.lists(
    st.sampled_from(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]),
    min_size=1,
    max_size=7,
    unique=True,
)
_POLICY = st.sampled_from(["costOptimal", "preferGPU", "preferCPU", "cpuOnly", "gpuOnly"])
_PRECISION = st.sampled_from(["fp32", "bf16", "fp16", "fp8", "int8", "int4"])
_ZONE = st.sampled_from(
    ["UTC", "Asia/Shanghai", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5"]
)


def _fraction(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


def _optional(
    fields: dict[str, st.SearchStrategy[Any]],
    required: dict[str, st.SearchStrategy[Any]] | None = None,
) -> st.SearchStrategy[Resource]:
    return st.fixed_dictionaries(required or {}, optional=fields)


@st.composite
def _replicas(draw: st.DrawFn) -> Resource:
    low = draw(st.integers(0, 50))
    return {"min": low, "max": draw(st.integers(max(low, 1), 60))}


_SEGMENT = st.from_regex(r"\A[A-Za-z0-9_ -][A-Za-z0-9_. -]{0,15}\Z")
_WEIGHTS_PATH = st.lists(_SEGMENT, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts))
_MODEL = st.one_of(
    st.fixed_dictionaries({"catalogKey": _NAME}),
    st.fixed_dictionaries({"parameterCount": st.integers(1_000_000, 10_000_000_000_000)}),
).flatmap(
    lambda size: _optional(
        {"precision": _PRECISION, "contextLength": st.integers(256, 1_048_576)},
        {
            "name": _TEXT,
            "weights": _optional({"volume": _NAME}, {"path": _WEIGHTS_PATH}),
            **{key: st.just(value) for key, value in size.items()},
        },
    )
)


@st.composite
def _variant(draw: st.DrawFn, pool_name: str) -> Resource:
    engine = draw(st.sampled_from(sorted(ENGINE_PRECISIONS)))
    variant: Resource = {
        "pool": pool_name,
        "engine": engine,
        "precision": draw(st.sampled_from(ENGINE_PRECISIONS[engine])),
        "tensorParallel": draw(st.sampled_from([1, 2, 4, 8])) if engine == "vllm" else 1,
    }
    if draw(st.booleans()):
        variant["model"] = draw(_MODEL)
    return variant


_SLO_FIELDS = {
    "minTokensPerSecondPerRequest": _fraction(0.01, 10_000),
    "maxTimeToFirstTokenSeconds": _fraction(0.01, 3600),
    "headroomFraction": _fraction(0, 1),
}


@st.composite
def _window(draw: st.DrawFn, name: str) -> Resource:
    start = draw(_CLOCK)
    end = draw(_CLOCK.filter(lambda end: end != start))
    window: Resource = {"name": name, "days": draw(_DAYS), "start": start, "end": end}
    window.update(
        draw(_optional({"policy": _POLICY, "replicas": _replicas(), "slo": _optional(_SLO_FIELDS)}))
    )
    return window


@st.composite
def valid_specs(draw: st.DrawFn) -> Resource:
    """A DeepSeekDeployment spec every validator must accept."""
    pools = draw(st.lists(_NAME, min_size=1, max_size=4, unique=True))
    windows = [draw(_window(name)) for name in draw(st.lists(_NAME, max_size=3, unique=True))]
    replicas = draw(_replicas())
    # minAvailable fits every window's replica bound as well as spec.replicas'
    most_available = min(
        [replicas["max"]] + [w["replicas"]["max"] for w in windows if "replicas" in w]
    )
    spec: Resource = {
        "model": draw(_MODEL),
        "variants": [draw(_variant(name)) for name in pools],
        "replicas": replicas,
        "slo": draw(_optional(_SLO_FIELDS)),
        "schedule": {
            "timeZone": draw(_ZONE),
            "defaultPolicy": draw(_POLICY),
            "windows": windows,
            "exceptionDates": draw(st.lists(_DATE, max_size=3, unique=True)),
        },
        "migration": draw(
            _optional(
                {
                    "maxSurgeGPUs": st.integers(0, 1024),
                    "cooldownSeconds": st.integers(0, 86400),
                    "minSavingsPercent": _fraction(0, 100),
                    "minDwellSeconds": st.integers(0, 86400),
                },
                {"minAvailable": st.integers(0, most_available)},
            )
        ),
        "reconcileIntervalSeconds": draw(st.integers(5, 3600)),
        "paused": draw(st.booleans()),
        "mode": draw(st.sampled_from(["apply", "recommend"])),
    }
    if draw(st.booleans()):
        spec["load"] = {
            "prometheusAddress": "http://prometheus.monitoring:9090",
            "tokensPerSecondQuery": draw(_TEXT),
            "scaleUpStabilizationSeconds": draw(st.integers(0, 3600)),
            "scaleDownStabilizationSeconds": draw(st.integers(0, 86400)),
        }
    if draw(st.booleans()):
        spec["costModel"] = draw(
            _optional(
                {
                    "currency": st.sampled_from(["USD", "CNY", "EUR"]),
                    "exchangeRates": st.lists(
                        st.fixed_dictionaries(
                            {
                                "currency": st.sampled_from(["EUR", "GBP", "JPY", "CNY"]),
                                "unitsPerUSD": _fraction(0.001, 1000),
                            },
                            optional={"source": _TEXT},
                        ),
                        max_size=3,
                        unique_by=lambda rate: rate["currency"],
                    ),
                    "pue": _fraction(1, 3),
                    "cloudAPIPricePerMillionTokens": _fraction(0, 1000),
                    "baselinePool": st.sampled_from(pools),
                }
            )
        )
    return spec


def _breakages(spec: Resource) -> list[tuple[str, Callable[[Resource], None]]]:
    """Changes that each break one rule of this particular spec, with the path they break."""
    replicas = spec["replicas"]
    breakages: list[tuple[str, Callable[[Resource], None]]] = [
        ("spec.replicas.min", _set("replicas.min", replicas["max"] + 1)),
        ("spec.replicas.max", _set("replicas.max", 1001)),
        ("spec.migration.minAvailable", _set("migration.minAvailable", replicas["max"] + 1)),
        ("spec.variants[0].tensorParallel", _set("variants[0].tensorParallel", 16)),
        ("spec.variants[0].engine", _set("variants[0].engine", "triton")),
        ("spec.slo.headroomFraction", _set("slo.headroomFraction", 2.5)),
        ("spec.reconcileIntervalSeconds", _set("reconcileIntervalSeconds", 0)),
        ("spec.schedule.timeZone", _set("schedule.timeZone", "Not A Zone")),
        ("spec.model.weights.path", _set("model.weights.path", "relative/path")),
        ("spec.model.weights.path", _set("model.weights.path", "/")),
        (
            "spec.model",
            _set("model.catalogKey", "r1-distill-qwen-7b")
            if "parameterCount" in spec["model"]
            else _set("model.parameterCount", 7_000_000_000),
        ),
        ("spec.costModel.baselinePool", _set("costModel", {"baselinePool": "zz-not-a-variant"})),
    ]
    first = spec["variants"][0]
    unsupported = [p for p in ["fp32", "fp8"] if p not in ENGINE_PRECISIONS[first["engine"]]]
    if unsupported:
        breakages.append(
            ("spec.variants[0].precision", _set("variants[0].precision", unsupported[0]))
        )
    if len(spec["variants"]) > 1:
        breakages.append(("spec.variants[1]", _set("variants[1].pool", first["pool"])))
    windows = spec["schedule"]["windows"]
    if windows:
        breakages.append(
            ("spec.schedule.windows[0].end", _set("schedule.windows[0].end", windows[0]["start"]))
        )
        breakages.append(
            ("spec.schedule.windows[0].start", _set("schedule.windows[0].start", "24:00"))
        )
    return breakages


@st.composite
def invalid_specs(draw: st.DrawFn) -> tuple[Resource, str]:
    """A valid spec with one rule broken, and the field path that must be reported."""
    spec = draw(valid_specs())
    path, change = draw(st.sampled_from(_breakages(spec)))
    change(spec)
    return spec, path


# PoolProfile specs --------------------------------------------------------------------------

_LABEL_KEY = st.from_regex(r"\A([a-z0-9]{1,10}\.)?[a-z0-9]{1,10}(/[a-z][a-z0-9-]{0,10}[a-z0-9])?\Z")
_LABEL_VALUE = st.from_regex(r"\A([a-z0-9]([-a-z0-9_.]{0,20}[a-z0-9])?)?\Z")
_PRICE = _fraction(0, 1_000_000)


@st.composite
def _toleration(draw: st.DrawFn) -> Resource:
    operator = draw(st.sampled_from(["Exists", "Equal"]))
    toleration: Resource = {"operator": operator}
    if operator == "Equal" or draw(st.booleans()):
        toleration["key"] = draw(_LABEL_KEY)
    if operator == "Equal" and draw(st.booleans()):
        toleration["value"] = draw(_LABEL_VALUE)
    if draw(st.booleans()):
        toleration["effect"] = draw(
            st.sampled_from(["NoSchedule", "PreferNoSchedule", "NoExecute"])
        )
        if toleration["effect"] == "NoExecute" and draw(st.booleans()):
            toleration["tolerationSeconds"] = draw(st.integers(0, 31_536_000))
    return toleration


@st.composite
def _hardware(draw: st.DrawFn) -> Resource:
    kind = draw(st.sampled_from(["gpu", "cpu"]))
    hardware: Resource = {
        "kind": kind,
        "acceleratorModel": draw(_NAME),
        "cpuCores": draw(st.integers(1, 1024)),
        "memoryGiB": draw(_fraction(0.5, 65536)),
    }
    if kind == "gpu":
        hardware["gpusPerNode"] = draw(st.integers(1, 16))
        hardware["gpuMemoryGiB"] = draw(_fraction(1, 1024))
    elif draw(st.booleans()):
        hardware["gpusPerNode"] = 0
    if draw(st.booleans()):
        hardware["memoryBandwidthGBps"] = draw(_fraction(1, 100_000))
    return hardware


@st.composite
def _cost(draw: st.DrawFn) -> Resource:
    cost: Resource = draw(
        _optional(
            {
                "currency": st.sampled_from(["USD", "CNY", "EUR"]),
                "wattsPerDevice": _fraction(0, 100_000),
                "pue": _fraction(1, 3),
                "electricityPricePerKWh": _fraction(0, 10),
                "staffCostPerYear": _PRICE,
            }
        )
    )
    purchase, hourly = draw(st.sampled_from([(True, False), (False, True), (True, True)]))
    if purchase:
        cost["purchasePricePerDevice"] = draw(_PRICE)
        cost["amortisationYears"] = draw(_fraction(0.5, 20))
    if hourly:
        cost["hourlyPrice"] = draw(_fraction(0, 1000))
    return cost


@st.composite
def _throughput(draw: st.DrawFn) -> Resource:
    single = draw(_fraction(0.01, 10_000))
    return {
        "model": draw(_NAME),
        "precision": draw(_PRECISION),
        "tokensPerSecondSingleStream": single,
        "tokensPerSecondSaturated": single * draw(_fraction(1, 50)),
        "timeToFirstTokenSeconds": draw(_fraction(0.001, 3600)),
        "measuredAt": draw(
            st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1))
        )
        .replace(microsecond=0)
        .isoformat()
        + "Z",
    }


@st.composite
def valid_pool_specs(draw: st.DrawFn) -> Resource:
    """A PoolProfile spec every validator must accept."""
    return {
        "nodeSelector": draw(st.dictionaries(_LABEL_KEY, _LABEL_VALUE, min_size=1, max_size=4)),
        "tolerations": draw(st.lists(_toleration(), max_size=3)),
        "hardware": draw(_hardware()),
        "cost": draw(_cost()),
        "throughput": draw(
            st.lists(_throughput(), max_size=3, unique_by=lambda t: (t["model"], t["precision"]))
        ),
    }


def _pool_breakages(spec: Resource) -> list[tuple[str, Callable[[Resource], None]]]:
    breakages: list[tuple[str, Callable[[Resource], None]]] = [
        ("spec.cost.pue", _set("cost.pue", 3.5)),
        ("spec.cost.currency", _set("cost.currency", "dollars")),
        ("spec.hardware.cpuCores", _set("hardware.cpuCores", 0)),
        ("spec.hardware.kind", _set("hardware.kind", "fpga")),
        (
            "spec.cost",
            _set("cost", {k: v for k, v in spec["cost"].items() if k not in _PRICES}),
        ),
        (
            f"spec.tolerations[{len(spec['tolerations'])}].value",
            lambda s: s["tolerations"].append({"operator": "Exists", "value": "x"}),
        ),
        (
            f"spec.tolerations[{len(spec['tolerations'])}].effect",
            lambda s: s["tolerations"].append(
                {"operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 60}
            ),
        ),
        ("spec.nodeSelector", _set("nodeSelector", {})),
        ("spec.cost.currency", _set("cost.currency", "XYZ")),
    ]
    if spec["hardware"]["kind"] == "gpu":
        breakages.append(("spec.hardware.gpusPerNode", _delete("hardware.gpusPerNode")))
        breakages.append(("spec.hardware.gpuMemoryGiB", _delete("hardware.gpuMemoryGiB")))
    else:
        breakages.append(("spec.hardware.gpusPerNode", _set("hardware.gpusPerNode", 2)))
        breakages.append(("spec.hardware.gpuMemoryGiB", _set("hardware.gpuMemoryGiB", 24)))
    if "purchasePricePerDevice" in spec["cost"]:
        breakages.append(("spec.cost.amortisationYears", _delete("cost.amortisationYears")))
    if spec["throughput"]:
        first = spec["throughput"][0]
        breakages.append(
            (
                "spec.throughput[0].tokensPerSecondSaturated",
                _set(
                    "throughput[0].tokensPerSecondSaturated",
                    first["tokensPerSecondSingleStream"] / 2,
                ),
            )
        )
        breakages.append(
            (
                f"spec.throughput[{len(spec['throughput'])}]",
                lambda s: s["throughput"].append(dict(s["throughput"][0])),
            )
        )
    return breakages


_PRICES = ("hourlyPrice", "purchasePricePerDevice", "amortisationYears")


@st.composite
def invalid_pool_specs(draw: st.DrawFn) -> tuple[Resource, str]:
    """A valid PoolProfile spec with one rule broken, and the field path that must be reported."""
    spec = draw(valid_pool_specs())
    path, change = draw(st.sampled_from(_pool_breakages(spec)))
    change(spec)
    return spec, path
