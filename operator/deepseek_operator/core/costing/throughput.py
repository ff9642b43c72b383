"""Output tokens per second of one replica: measured when calibrated, else a roofline estimate.

Decode is memory-bandwidth bound: each output token reads the active weights (and the
sequence's KV cache) once. So a single stream runs at most at

    bandwidth x devices / (active parameters x bytes per parameter + KV bytes of the context)

and real engines reach a fraction of that ceiling (``SINGLE_STREAM_EFFICIENCY``). Batching
shares each weight read among the sequences in flight, so capacity grows with concurrency until
compute saturates: ``1 + BATCH_SLOT_EFFICIENCY x (sequences - 1)``, capped by
``BATCH_GAIN_CAP``. Every figure says whether it was measured or estimated, and from what.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from deepseek_operator.api.vocabulary import HardwareKind, Precision
from deepseek_operator.core.costing.catalog import (
    BYTES_PER_PARAMETER,
    HardwareSpec,
    ModelArchitecture,
)
from deepseek_operator.core.costing.fit import FitRequest, ReplicaFit, max_concurrent_sequences

Provenance = Literal["measured", "estimated"]

# Fraction of the bandwidth ceiling reached at batch 1: vLLM on A100 ~77 %, llama.cpp on a 4090
# 86 %, llama.cpp on A100 SXM 42 % -> 0.75 for GPUs; CPUs 0.5-0.6 (performance-anchors.md 2.6).
SINGLE_STREAM_EFFICIENCY: Mapping[HardwareKind, float] = {"gpu": 0.75, "cpu": 0.55}
# Each extra sequence in a batch adds 0.8 of a single stream: A100-40GB, 8B, concurrency 1 -> 8
# gave 6.6x = 1 + 0.8 x 7 (performance-anchors.md 2.1, 2.5).
BATCH_SLOT_EFFICIENCY = 0.8
# Where batching stops paying: H100 8B 1 -> 16 gave 11x, saturated at 64; A100 8B FP8 saturates
# near 15x its batch-1 speed (2.1, 2.2). CPUs turn compute-bound early: no measurement was
# found, 2x is an estimate to replace with calibration.
BATCH_GAIN_CAP: Mapping[HardwareKind, float] = {"gpu": 12.0, "cpu": 2.0}
# Tensor parallelism loses to all-reduce; the article reports 30-40 % overhead over 8 GPUs,
# 0.9 per doubling gives 27 % at 8 (an estimate).
TENSOR_PARALLEL_EFFICIENCY_PER_DOUBLING = 0.9
MAX_BATCH_SEQUENCES = 256


@dataclass(frozen=True)
class Figure:
    """A number with where it came from."""

    value: float
    provenance: Provenance
    basis: str


@dataclass(frozen=True)
class Calibration:
    """A measurement of one replica (tokens/s of output) for a (hardware, model, precision)."""

    hardware: str
    model: str
    precision: Precision
    capacity_tokens_per_s: float
    single_stream_tokens_per_s: float | None = None
    source: str = "calibration"


@dataclass(frozen=True)
class ReplicaThroughput:
    """Single-stream speed (what one user sees) and batched capacity (what the replica serves)."""

    single_stream_tokens_per_s: Figure
    capacity_tokens_per_s: Figure
    concurrent_sequences: int


def bytes_read_per_output_token(
    model: ModelArchitecture, precision: Precision, context_tokens: int, kv_precision: Precision
) -> float:
    """Active weights plus the sequence's KV cache, read once per decoded token."""
    weights = model.active_parameters * BYTES_PER_PARAMETER[precision]
    return weights + model.kv_bytes_per_token(kv_precision) * context_tokens


def tensor_parallel_efficiency(devices: int) -> float:
    doublings = max(devices.bit_length() - 1, 0)
    return float(TENSOR_PARALLEL_EFFICIENCY_PER_DOUBLING**doublings)


def roofline_single_stream_tokens_per_s(
    model: ModelArchitecture,
    precision: Precision,
    hardware: HardwareSpec,
    devices: int,
    context_tokens: int,
    kv_precision: Precision = "bf16",
) -> float:
    """Estimated batch-1 decode speed: efficiency x bandwidth ceiling."""
    bandwidth = hardware.memory_bandwidth_bytes_per_s * devices
    per_token = bytes_read_per_output_token(model, precision, context_tokens, kv_precision)
    ceiling = bandwidth / per_token
    return ceiling * SINGLE_STREAM_EFFICIENCY[hardware.kind] * tensor_parallel_efficiency(devices)


def batching_gain(kind: HardwareKind, sequences: int) -> float:
    """Capacity multiple over one stream with that many sequences in flight."""
    if sequences <= 1:
        return 1.0
    return min(BATCH_GAIN_CAP[kind], 1.0 + BATCH_SLOT_EFFICIENCY * (sequences - 1))


def find_calibration(
    calibrations: tuple[Calibration, ...], hardware: str, model: str, precision: Precision
) -> Calibration | None:
    for calibration in calibrations:
        if (calibration.hardware, calibration.model, calibration.precision) == (
            hardware,
            model,
            precision,
        ):
            return calibration
    return None


def replica_throughput(
    request: FitRequest, fit: ReplicaFit, calibration: Calibration | None = None
) -> ReplicaThroughput:
    """Tokens/s of one fitted replica; a calibration for the triple wins over the estimate."""
    if not fit.fits:
        raise ValueError(f"no throughput for a replica that does not fit: {fit.reason}")
    hardware = fit.hardware
    sequences = min(max_concurrent_sequences(fit, request), MAX_BATCH_SEQUENCES)
    estimate = roofline_single_stream_tokens_per_s(
        request.model,
        request.precision,
        hardware,
        fit.devices,
        request.context_tokens,
        request.kv_precision,
    )
    single_basis = (
        f"{SINGLE_STREAM_EFFICIENCY[hardware.kind]:g} x bandwidth ceiling of {fit.devices} x "
        f"{hardware.name} ({hardware.memory_bandwidth_gb_per_s:g} GB/s each)"
    )
    single = Figure(estimate, "estimated", single_basis)
    if calibration is not None and calibration.single_stream_tokens_per_s is not None:
        single = Figure(calibration.single_stream_tokens_per_s, "measured", calibration.source)
    if calibration is not None:
        capacity = Figure(calibration.capacity_tokens_per_s, "measured", calibration.source)
    else:
        gain = batching_gain(hardware.kind, sequences)
        capacity = Figure(
            single.value * gain,
            "estimated",
            f"single stream x batching gain {gain:.1f} at {sequences} sequences in memory",
        )
    return ReplicaThroughput(single, capacity, sequences)
