"""Words both kinds share: precisions, engines, policies, and the bounded string types.

Every string has a length bound and every list a size bound: the API server prices CEL rules by
the worst case, and unbounded inputs make that worst case unbounded.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, Field, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

Precision = Literal["fp32", "bf16", "fp16", "fp8", "int8", "int4"]
"""Numeric format of the weights at run time (the same words as the hardware catalog)."""

Engine = Literal["transformers", "vllm", "llamacpp"]
"""The inference engine a variant runs on."""

Policy = Literal["costOptimal", "preferGPU", "preferCPU", "cpuOnly", "gpuOnly"]
"""How a time window chooses between pools."""

Mode = Literal["apply", "recommend"]
Weekday = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
HardwareKind = Literal["gpu", "cpu"]
CpuFeature = Literal["avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8"]
"""CPU instruction-set extensions that change decode speed (the names in /proc/cpuinfo's flags):
native bf16 dot products (`avx512_bf16`, `amx_bf16`) let bf16 decode at twice fp32's speed."""
MAX_CPU_FEATURES = 8

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
_ISO_4217 = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN
    BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP
    ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IQD IRR
    ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD
    MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR
    PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL
    THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF
    XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL
"""
ISO_4217_CODES: tuple[str, ...] = tuple(_ISO_4217.split())
"""ISO 4217's currencies (list one, 2025), with the funds codes and those withdrawn since 2021
(ANG, BGN, CUC, HRK, SLL, ZWL: purchase prices may predate a changeover); without the metals,
bond units and testing codes (XAU, XDR, XTS, XXX ...), which no one prices hardware in. A code
outside it (XYZ) is a typo: priced in it, a pool would report figures in a unit that exists
nowhere."""
CURRENCY_MESSAGE = "must be an ISO 4217 currency code such as USD, EUR or CNY"


def _iso_currency(code: str) -> str:
    if code not in ISO_4217_CODES:
        raise PydanticCustomError("currency", CURRENCY_MESSAGE)
    return code


Currency = Annotated[
    str,
    StringConstraints(min_length=3, max_length=3, pattern=CURRENCY_PATTERN),
    AfterValidator(_iso_currency),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 3,
            "maxLength": 3,
            "pattern": CURRENCY_PATTERN,
            "x-kubernetes-validations": [
                {
                    "rule": f"' {' '.join(ISO_4217_CODES)} '.contains(' ' + self + ' ')",
                    "message": CURRENCY_MESSAGE,
                }
            ],
        }
    ),
]
"""An ISO 4217 currency code such as USD or CNY; the API server and pydantic both refuse one
that is not in ISO_4217_CODES, with the same message."""

ShortText = Annotated[str, StringConstraints(min_length=1, max_length=253)]
LabelValue = Annotated[str, StringConstraints(max_length=63)]
PromQL = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
Path = Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=r"^/")]
HttpAddress = Annotated[
    str, StringConstraints(min_length=8, max_length=2048, pattern=r"^https?://[^\s]+$")
]

# ---------------------------------------------------------------------------------------------
# Bounds of each class of value. Every number a user gives (a CRD field, a cost scenario, a plan
# what-if, a command-line option) is finite and lies in the bound of its class, decided here once
# with its reason, so a typo or a unit error is refused by name before any work starts, and no
# product of bounded values can overflow to infinity in a report.

MAX_MONEY = 1e9
"""One price or yearly cost, in any currency: a billion buys some 30 000 H100s. More is a unit
error (cents for dollars) or a typo, and the bound keeps every product of prices, hours and
counts far from float overflow."""

Money = Annotated[float, Field(ge=0, le=MAX_MONEY)]
"""An amount of money in the pool's (or deployment's) currency."""

MAX_CONTEXT_TOKENS = 1_048_576
"""The longest sequence (prompt plus output): eight times DeepSeek-R1's 128 Ki context and more
than any open model offers; it bounds the KV-cache arithmetic of fit and cost."""

MAX_REPLICAS = 1000
"""Replicas of one deployment (replicas.max): beyond a thousand the planner's MILP grows with
no placement gained; a bigger service is several deployments."""

MAX_TOKENS_PER_SECOND_PER_REPLICA = 1_000_000
"""One replica's output tokens/s: a hundred times the fastest measured 8-GPU node at full
batch."""

MAX_DEMAND_TOKENS_PER_SECOND = 1e9
"""Demand on one deployment, output tokens/s: a thousand replicas at the replica bound."""

MAX_DEVICES = 100_000
"""Devices (GPUs, or CPU nodes) in one pool: the largest clusters built hold about 100 000."""

MAX_STARTUP_SECONDS = 7200
"""Pod creation to Ready: two hours covers pulling and loading a terabyte of weights."""

MAX_AMORTISATION_YEARS = 20
"""Years a purchase is spread over: no accelerator stays in service for twenty."""

MAX_WATTS_PER_DEVICE = 100_000
"""Average draw of one device (a GPU, or a CPU node): a 100 kW rack is beyond any single one."""

MIN_PUE, MAX_PUE = 1, 3
"""Power usage effectiveness: 1 is the physical floor; 3 is worse than any data centre surveyed."""

MAX_UNITS_PER_USD = 1e9
"""An exchange rate: the weakest currencies trade at tens of thousands per US dollar."""

MAX_SEED = 2**32 - 1
"""A random seed: numpy's and torch's generators take 0 ... 2^32 - 1 on every platform."""

EARLIEST_INSTANT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_INSTANT = datetime(2200, 1, 1, tzinfo=UTC)
"""Instants the planner and the replay take (`plan --at`, `simulate --start`, trace
timestamps): from the Unix epoch, where Kubernetes and Prometheus time begins, to 2200, far
enough from Python's year 1 and 9999 that a week of look-ahead and any UTC offset stay in
range."""


def instant_in_range(value: datetime, what: str) -> datetime:
    """`value` if it lies in [EARLIEST_INSTANT, LATEST_INSTANT); else ValueError naming `what`."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what}: {value.isoformat()} has no UTC offset")
    if not EARLIEST_INSTANT <= value < LATEST_INSTANT:
        raise ValueError(
            f"{what}: {value.isoformat()} is outside {EARLIEST_INSTANT:%Y} to "
            f"{LATEST_INSTANT.year - 1}"
        )
    return value
