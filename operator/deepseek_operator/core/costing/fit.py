"""Does a model fit a device, and on how many devices: weights + KV cache + runtime overhead.

A replica is one model instance, tensor-parallel over ``devices`` devices of one node (a replica
never spans nodes). It fits when, per device,

    (weights + KV cache) / devices + runtime overhead  <=  memory x memory utilisation

with the KV cache sized for ``concurrent_sequences`` sequences of ``context_tokens`` each. The
smallest power-of-two degree that fits is chosen, because serving engines split attention heads
evenly and nodes hold 1, 2, 4 or 8 devices.
"""

from __future__ import annotations

from dataclasses import dataclass

from deepseek_operator.api.vocabulary import Precision
from deepseek_operator.core.costing.catalog import (
    BYTES_PER_PARAMETER,
    HardwareSpec,
    ModelArchitecture,
)

# vLLM's default gpu_memory_utilization is 0.90; 0.95 is a common production setting for
# memory-tight models. 0.95 is used so that 70B at bf16 fits two 80 GB GPUs at short context,
# which is what practitioners run (performance-anchors.md 2.6). Replace per pool when known.
DEFAULT_MEMORY_UTILISATION = 0.95
# Per device: CUDA context, activation peak, NCCL buffers, CUDA graphs, quantisation scales.
# An estimate, not a measurement.
DEFAULT_RUNTIME_OVERHEAD_GB = 1.0
DEFAULT_CONTEXT_TOKENS = 4096
DEFAULT_CONCURRENT_SEQUENCES = 1


def weights_bytes(parameters: float, precision: Precision) -> float:
    """Bytes of weights: parameters x bytes per parameter at this precision."""
    return parameters * BYTES_PER_PARAMETER[precision]


def kv_cache_bytes(
    model: ModelArchitecture,
    context_tokens: int,
    concurrent_sequences: int = 1,
    kv_precision: Precision = "bf16",
) -> float:
    """KV-cache bytes for that many sequences of that context length (linear in both)."""
    return model.kv_bytes_per_token(kv_precision) * context_tokens * concurrent_sequences


@dataclass(frozen=True)
class FitRequest:
    """What a replica must hold: a model at a precision, a context length and a concurrency."""

    model: ModelArchitecture
    precision: Precision
    context_tokens: int = DEFAULT_CONTEXT_TOKENS
    concurrent_sequences: int = DEFAULT_CONCURRENT_SEQUENCES
    kv_precision: Precision = "bf16"
    memory_utilisation: float = DEFAULT_MEMORY_UTILISATION
    runtime_overhead_gb_per_device: float = DEFAULT_RUNTIME_OVERHEAD_GB


@dataclass(frozen=True)
class ReplicaFit:
    """The outcome: devices per replica when it fits, else ``devices == 0`` and a reason."""

    hardware: HardwareSpec
    devices: int
    weights_bytes: float
    kv_cache_bytes: float
    overhead_bytes: float
    usable_bytes: float
    reason: str

    @property
    def fits(self) -> bool:
        return self.devices > 0

    @property
    def needed_bytes(self) -> float:
        return self.weights_bytes + self.kv_cache_bytes + self.overhead_bytes

    @property
    def spare_bytes(self) -> float:
        """Memory left for more KV cache (more concurrent sequences) once it fits."""
        return self.usable_bytes - self.needed_bytes


def tensor_parallel_degrees(devices_per_node: int) -> list[int]:
    """Allowed degrees: powers of two up to the devices in one node."""
    degrees = [1]
    while degrees[-1] * 2 <= devices_per_node:
        degrees.append(degrees[-1] * 2)
    return degrees


def fit_replica(request: FitRequest, hardware: HardwareSpec) -> ReplicaFit:
    """Smallest tensor-parallel degree (within one node) at which the replica fits, or why not."""
    weights = weights_bytes(request.model.parameters, request.precision)
    kv = kv_cache_bytes(
        request.model, request.context_tokens, request.concurrent_sequences, request.kv_precision
    )
    overhead_per_device = request.runtime_overhead_gb_per_device * 1e9
    usable_per_device = hardware.memory_bytes * request.memory_utilisation
    unit = "socket" if hardware.kind == "cpu" else "GPU"
    for devices in tensor_parallel_degrees(hardware.devices_per_node):
        overhead = overhead_per_device * devices
        usable = usable_per_device * devices
        if weights + kv + overhead <= usable:
            return ReplicaFit(
                hardware=hardware,
                devices=devices,
                weights_bytes=weights,
                kv_cache_bytes=kv,
                overhead_bytes=overhead,
                usable_bytes=usable,
                reason=(
                    f"fits on {devices} x {hardware.name}: needs {_gb(weights + kv + overhead)}"
                    f" of {_gb(usable)} usable"
                ),
            )
    devices = hardware.devices_per_node
    overhead = overhead_per_device * devices
    usable = usable_per_device * devices
    return ReplicaFit(
        hardware=hardware,
        devices=0,
        weights_bytes=weights,
        kv_cache_bytes=kv,
        overhead_bytes=overhead,
        usable_bytes=usable,
        reason=(
            f"does not fit: {request.model.name} at {request.precision} needs "
            f"{_gb(weights)} weights + {_gb(kv)} KV cache ({request.context_tokens} tokens x "
            f"{request.concurrent_sequences} sequences) + {_gb(overhead)} overhead = "
            f"{_gb(weights + kv + overhead)}, but one node of {devices} {unit}s x "
            f"{hardware.name} offers {_gb(usable)} usable "
            f"({hardware.memory_gib:g} GiB x {request.memory_utilisation:g} each)"
        ),
    )


def max_concurrent_sequences(fit: ReplicaFit, request: FitRequest) -> int:
    """How many sequences of the requested context the fitted replica's memory can hold."""
    if not fit.fits:
        return 0
    per_sequence = kv_cache_bytes(request.model, request.context_tokens, 1, request.kv_precision)
    if per_sequence <= 0:
        return request.concurrent_sequences
    return request.concurrent_sequences + int(fit.spare_bytes // per_sequence)


def _gb(value: float) -> str:
    return f"{value / 1e9:,.1f} GB"
