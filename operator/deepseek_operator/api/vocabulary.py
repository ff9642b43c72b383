"""Words both kinds share: precisions, engines, policies, and the bounded string types.

Every string has a length bound and every list a size bound: the API server prices CEL rules by
the worst case, and unbounded inputs make that worst case unbounded.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, Field, StringConstraints, WithJsonSchema

Precision = Literal["fp32", "bf16", "fp16", "fp8", "int8", "int4"]
"""Numeric format of the weights at run time (the same words as the hardware catalog)."""

Engine = Literal["transformers", "vllm", "llamacpp"]
"""The inference engine a variant runs on."""

Policy = Literal["costOptimal", "preferGPU", "preferCPU", "cpuOnly", "gpuOnly"]
"""How a time window chooses between pools."""

Mode = Literal["apply", "recommend"]
Weekday = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
HardwareKind = Literal["gpu", "cpu"]

PRECISIONS: tuple[str, ...] = get_args(Precision)
ENGINES: tuple[str, ...] = get_args(Engine)
POLICIES: tuple[str, ...] = get_args(Policy)
HARDWARE_KINDS: tuple[str, ...] = get_args(HardwareKind)

ENGINE_PRECISIONS: Mapping[str, tuple[str, ...]] = {
    # transformers: torch dtypes, plus bitsandbytes / torch dynamic int8 and int4 on CPU and GPU.
    "transformers": ("fp32", "bf16", "fp16", "int8", "int4"),
    # vLLM: half precision on GPU, fp8 on Ada/Hopper, int8 (W8A8) and int4 (AWQ/GPTQ); no fp32.
    "vllm": ("bf16", "fp16", "fp8", "int8", "int4"),
    # llama.cpp: GGUF F32/F16/BF16, Q8_0 as int8 and Q4_K_M as int4; no fp8.
    "llamacpp": ("fp32", "fp16", "bf16", "int8", "int4"),
}
"""Which precisions each engine can load; the API server and pydantic both enforce it."""

TENSOR_PARALLEL_ENGINES: tuple[str, ...] = ("vllm",)
"""Engines that split one replica across several GPUs; the others need tensorParallel 1."""

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
ResourceName = Annotated[
    str, StringConstraints(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)
]
"""A DNS-1123 label: a PoolProfile, window or catalog name (also part of Deployment names)."""

HHMM_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
ClockTime = Annotated[str, StringConstraints(min_length=5, max_length=5, pattern=HHMM_PATTERN)]
"""A wall-clock time "HH:MM" (24 h) in the schedule's time zone."""

DATE_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"


def _real_date(text: str) -> str:
    """Refuse dates the pattern lets through but the calendar lacks (2026-02-30), as the API
    server's `format: date` does."""
    try:
        date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date in the calendar") from None
    return text


CalendarDate = Annotated[
    str,
    StringConstraints(min_length=10, max_length=10, pattern=DATE_PATTERN),
    AfterValidator(_real_date),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date",
            "minLength": 10,
            "maxLength": 10,
            "pattern": DATE_PATTERN,
        }
    ),
]
"""A calendar date "YYYY-MM-DD" that exists."""

TIME_ZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$"
TimeZoneName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=TIME_ZONE_PATTERN)
]
"""An IANA time zone name such as Europe/Berlin; whether it exists is checked by the operator."""

CURRENCY_PATTERN = r"^[A-Z]{3}$"
Currency = Annotated[str, StringConstraints(min_length=3, max_length=3, pattern=CURRENCY_PATTERN)]
"""An ISO 4217 currency code such as USD or CNY."""

ShortText = Annotated[str, StringConstraints(min_length=1, max_length=253)]
LabelValue = Annotated[str, StringConstraints(max_length=63)]
PromQL = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
Path = Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=r"^/")]
HttpAddress = Annotated[
    str, StringConstraints(min_length=8, max_length=2048, pattern=r"^https?://[^\s]+$")
]

Money = Annotated[float, Field(ge=0, le=1e9)]
"""An amount of money in the pool's (or deployment's) currency."""
