"""Output tokens per second of one replica: measured when calibrated, else a roofline estimate.

Decode is memory-bandwidth bound: each output token reads the active weights (and the
sequence's KV cache) once. So a single stream runs at most at

    bandwidth x devices / (active parameters x bytes per parameter + KV bytes of the context)

and real engines reach a fraction of that ceiling: per device kind, and on CPUs per precision
and instruction set (``bandwidth_efficiency``). The input embedding is excluded: a token reads
one row of it. Batching shares each weight read among the sequences in flight: on GPUs
``1 + BATCH_SLOT_EFFICIENCY x (sequences - 1)`` up to ``BATCH_GAIN_CAP``; on CPUs, where the
kernels change with the batch size and arithmetic catches up with memory early, by a measured
curve of step time against batch size (``CPU_STEP_CURVE``, ``batching_gain``). Every figure
says whether it was measured or estimated, and from what.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
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
# 86 %, llama.cpp on A100 SXM 42 % -> 0.75 for GPUs (performance-anchors.md 2.6).
SINGLE_STREAM_EFFICIENCY: Mapping[HardwareKind, float] = {"gpu": 0.75, "cpu": 0.55}
# CPUs differ by precision and instruction set. Served with default flags on a 2-vCPU EPYC with
# AVX-512 BF16 and VNNI at 42.4 GB/s read bandwidth (benchmarks/throughput_model.py, the 1.5B
# shape, docs/model-server.md), one stream decoded at:
# - fp32: 3.17 tokens/s x 6.19 GB = 0.46 of the read bandwidth;
# - bf16 with native bf16 dot products (AVX-512 BF16, AMX): 10.44 x 3.09 GB = 0.76; without them
#   bf16 is widened to fp32 in registers, and fp32's share is assumed (an estimate);
# - int8 weight-only (`_weight_int8pack_mm`): 10.96 x 1.55 GB = 0.40 (the model's own step
#   reaches 0.56; the server adds 26 ms a step at int8).
# On other CPUs these are estimates: calibrate, or give measured values per HardwareSpec.
CPU_BANDWIDTH_EFFICIENCY: Mapping[str, float] = {
    "fp32": 0.46,
    "bf16": 0.46,
    "fp16": 0.46,
    "bf16-native": 0.76,
    "int8": 0.40,
}
NATIVE_BF16_FEATURES = frozenset({"avx512_bf16", "amx_bf16"})
# Each extra sequence in a GPU batch adds 0.8 of a single stream: A100-40GB, 8B, concurrency
# 1 -> 8 gave 6.6x = 1 + 0.8 x 7 (performance-anchors.md 2.1, 2.5).
BATCH_SLOT_EFFICIENCY = 0.8
# Where GPU batching stops paying: H100 8B 1 -> 16 gave 11x, saturated at 64; A100 8B FP8
# saturates near 15x its batch-1 speed (2.1, 2.2).
BATCH_GAIN_CAP: Mapping[HardwareKind, float] = {"gpu": 12.0}
StepCurve = tuple[tuple[int, float], ...]
"""A CPU decode step's time at measured batch sizes, over the time of a step of one sequence:
((1, 1.0), (2, t(2) / t(1)), ...), batch sizes rising."""
# A CPU decode step is not a weight read plus a compute share per sequence. One sequence runs a
# matrix-vector kernel that streams the weights once; two or more run a matrix-matrix kernel
# that also packs them, so at fp32 and bf16 a step of 2 costs about twice a step of 1 and then
# little more to 8, while the int8 weight-only kernel is flat to 4 and then grows with every
# row (the model's own step at 1, 2, 4, 8, 16, 32 sequences, docs/model-server.md). So CPU
# batching is a measured curve, gain(s) = s / (t(s) / t(1)), linear between measured batch sizes
# and held at the last measured gain beyond them: nothing is promised that was not measured.
# Defaults: what the model server did with default flags at the 1.5B shape on the 2-vCPU EPYC
# above (benchmarks/throughput_model.py, the third run), its served step s / (tokens/s) at 1, 4
# and 16 sequences: fp32 281 / 598 / 801 ms, native bf16 80 / 127 / 250, int8 74 / 97 / 313. The
# served step, not the model's own (which is up to 25 % faster at 16 sequences), so that the
# planner does not count on capacity the server did not deliver. Measured before the server's
# per-sequence decode attention (serving/attention.py), after which its served steps at 16
# sequences are shorter (the fourth run: gains larger at every precision), so these are a lower
# bound there; one run's single-stream step varies too much to move every CPU plan on its own.
# bf16 without native instructions is assumed at fp32's curve. Estimates on other CPUs:
# calibrate, or give a measured curve per HardwareSpec.
CPU_STEP_CURVE: Mapping[str, StepCurve] = {
    "fp32": ((1, 1.0), (4, 2.13), (16, 2.85)),
    "bf16": ((1, 1.0), (4, 2.13), (16, 2.85)),
    "fp16": ((1, 1.0), (4, 2.13), (16, 2.85)),
    "bf16-native": ((1, 1.0), (4, 1.59), (16, 3.11)),
    "int8": ((1, 1.0), (4, 1.32), (16, 4.25)),
}
# Tensor parallelism loses to all-reduce; the article reports 30-40 % overhead over 8 GPUs,
# 0.9 per doubling gives 27 % at 8 (an estimate).
TENSOR_PARALLEL_EFFICIENCY_PER_DOUBLING = 0.9
MAX_BATCH_SEQUENCES = 256


def _cpu_key(hardware: HardwareSpec, precision: Precision) -> str:
    if precision == "bf16" and NATIVE_BF16_FEATURES & set(hardware.cpu_features):
        return "bf16-native"
    return precision if precision in CPU_BANDWIDTH_EFFICIENCY else "int8"


def bandwidth_efficiency(
    hardware: HardwareSpec, precision: Precision
) -> tuple[float, Provenance, str]:
    """Fraction of the bandwidth ceiling one decode stream reaches, and where it comes from."""
    if hardware.bandwidth_efficiency and precision in hardware.bandwidth_efficiency:
        return (
            hardware.bandwidth_efficiency[precision],
            "measured",
            f"measured {precision} efficiency of {hardware.name}",
        )
    if hardware.kind == "gpu":
        return SINGLE_STREAM_EFFICIENCY["gpu"], "estimated", "GPU efficiency 0.75"
    key = _cpu_key(hardware, precision)
    return (
        CPU_BANDWIDTH_EFFICIENCY[key],
        "estimated",
        f"CPU {key} efficiency {CPU_BANDWIDTH_EFFICIENCY[key]:g}",
    )


def batch_step_curve(hardware: HardwareSpec, precision: Precision) -> StepCurve:
    if hardware.batch_step_curve and precision in hardware.batch_step_curve:
        return hardware.batch_step_curve[precision]
    return CPU_STEP_CURVE[_cpu_key(hardware, precision)]


def step_ratio(curve: StepCurve, sequences: int) -> float:
    """t(sequences) / t(1) on the curve: linear between its batch sizes, and beyond the last
    one growing with the sequences so that the gain stays at the last measured one."""
    check_step_curve(curve)
    last_size, last_ratio = curve[-1]
    if sequences >= last_size:
        return last_ratio * sequences / last_size
    for (low, low_ratio), (high, high_ratio) in pairwise(curve):
        if sequences <= high:
            return low_ratio + (high_ratio - low_ratio) * (sequences - low) / (high - low)
    raise AssertionError("unreachable: sequences is below the curve's last batch size")


def check_step_curve(curve: StepCurve) -> None:
    """A curve starts at (1, 1.0), its batch sizes rise, and its ratios are positive."""
    if not curve or curve[0] != (1, 1.0):
        raise ValueError(f"a step curve starts at (1, 1.0), got {curve!r}")
    sizes = [size for size, _ in curve]
    if sizes != sorted(set(sizes)) or any(ratio <= 0 for _, ratio in curve):
        raise ValueError(f"a step curve's batch sizes rise and its ratios are positive: {curve!r}")


def machine_efficiencies(
    read_bandwidth_gb_per_s: float, kernels: Mapping[str, Mapping[str, float]]
) -> tuple[dict[Precision, float], dict[Precision, StepCurve]]:
    """Efficiency and step curve per precision from decode-step timings: `weight_bytes` read per
    token, and `seconds_<s>` for each probed batch size s, 1 among them (what
    benchmarks/throughput_model.py measures)."""
    efficiency: dict[Precision, float] = {}
    curves: dict[Precision, StepCurve] = {}
    for precision, kernel in kernels.items():
        times = {
            int(key.removeprefix("seconds_")): value
            for key, value in kernel.items()
            if key.startswith("seconds_")
        }
        one = times[1]
        key: Precision = precision  # type: ignore[assignment]
        efficiency[key] = kernel["weight_bytes"] / one / (read_bandwidth_gb_per_s * 1e9)
        curves[key] = tuple((size, times[size] / one) for size in sorted(times))
    return efficiency, curves


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
    # the input embedding is a table lookup: one row read, not the table
    read = model.active_parameters - model.embedding_parameters
    weights = read * BYTES_PER_PARAMETER[precision]
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
    efficiency = bandwidth_efficiency(hardware, precision)[0]
    return ceiling * efficiency * tensor_parallel_efficiency(devices)


def batching_gain(kind: HardwareKind, sequences: int, step_curve: StepCurve = ((1, 1.0),)) -> float:
    """Capacity multiple over one stream with that many sequences in flight: on a GPU 0.8 of a
    stream per extra sequence up to a cap; on a CPU s / (t(s) / t(1)) on the measured curve."""
    if sequences <= 1:
        return 1.0
    if kind == "cpu":
        return sequences / step_ratio(step_curve, sequences)
    return min(BATCH_GAIN_CAP[kind], 1.0 + BATCH_SLOT_EFFICIENCY * (sequences - 1))


def batching_gain_for(hardware: HardwareSpec, precision: Precision, sequences: int) -> float:
    if hardware.kind != "cpu":
        return batching_gain(hardware.kind, sequences)
    return batching_gain("cpu", sequences, batch_step_curve(hardware, precision))


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
    efficiency, provenance, basis = bandwidth_efficiency(hardware, request.precision)
    single_basis = (
        f"{efficiency:g} x bandwidth ceiling of {fit.devices} x {hardware.name} "
        f"({hardware.memory_bandwidth_gb_per_s:g} GB/s each; efficiency {provenance}: {basis})"
    )
    single = Figure(estimate, "estimated", single_basis)
    if calibration is not None and calibration.single_stream_tokens_per_s is not None:
        single = Figure(calibration.single_stream_tokens_per_s, "measured", calibration.source)
    if calibration is not None:
        capacity = Figure(calibration.capacity_tokens_per_s, "measured", calibration.source)
    else:
        gain = batching_gain_for(hardware, request.precision, sequences)
        capacity = Figure(
            single.value * gain,
            "estimated",
            f"single stream x batching gain {gain:.1f} at {sequences} sequences in memory",
        )
    return ReplicaThroughput(single, capacity, sequences)
