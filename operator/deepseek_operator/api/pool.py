"""PoolProfile: one kind of node (GPU or CPU), how to reach it, what it costs, how fast it is."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from deepseek_operator.api.base import (
    DNS_1123_LABEL_PATTERN,
    ApiModel,
    ApiResource,
    CrossFieldRule,
)
from deepseek_operator.api.status import PoolProfileStatus, Timestamp
from deepseek_operator.api.vocabulary import (
    MAX_AMORTISATION_YEARS,
    MAX_CPU_FEATURES,
    MAX_PUE,
    MAX_STARTUP_SECONDS,
    MAX_TOKENS_PER_SECOND_PER_REPLICA,
    MAX_WATTS_PER_DEVICE,
    MIN_PUE,
    CpuFeature,
    Currency,
    HardwareKind,
    Money,
    Precision,
    ShortText,
)

KIND = "PoolProfile"
PLURAL = "poolprofiles"
SHORT_NAMES = ("pool",)

MAX_NODE_SELECTOR_LABELS = 16
MAX_TOLERATIONS = 16
MAX_THROUGHPUT_ENTRIES = 64

# The API server's syntax for label (and taint) keys and values: a node selector or toleration
# it would refuse on the pods must be refused here, not when the operator creates them.
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_LABEL_PREFIX = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/"
LABEL_KEY_PATTERN = rf"^({_LABEL_PREFIX})?{_LABEL_NAME}$"
LabelKey = Annotated[
    str,
    StringConstraints(min_length=1, max_length=317, pattern=LABEL_KEY_PATTERN),
]
NodeLabelValue = Annotated[str, StringConstraints(max_length=63, pattern=rf"^({_LABEL_NAME})?$")]


class Toleration(ApiModel):
    """A toleration added to the pool's pods (core/v1 Toleration)."""

    cross_field_rules = (
        CrossFieldRule(
            cel="self.operator != 'Exists' || !has(self.value) || self.value == ''",
            message="operator Exists takes no value",
            holds=lambda t: t.operator != "Exists" or not t.value,
            field_path=".value",
        ),
        CrossFieldRule(
            cel="has(self.key) || self.operator == 'Exists'",
            message="a toleration without key must use operator Exists",
            holds=lambda t: t.key is not None or t.operator == "Exists",
            field_path=".operator",
        ),
        # Kubernetes' own rule (and message) for a Pod's tolerations: admitting it here would
        # let every Pod the operator creates for this pool be refused.
        CrossFieldRule(
            cel="(has(self.effect) && self.effect == 'NoExecute') || !has(self.tolerationSeconds)",
            message="effect must be 'NoExecute' when `tolerationSeconds` is set",
            holds=lambda t: t.toleration_seconds is None or t.effect == "NoExecute",
            field_path=".effect",
        ),
    )

    key: LabelKey | None = Field(default=None, description="Taint key; absent matches all keys.")
    operator: Literal["Exists", "Equal"] = Field(
        default="Equal", description="Equal: key and value match. Exists: the key is present."
    )
    value: NodeLabelValue | None = Field(default=None, description="Taint value for Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to match; absent matches all effects."
    )
    toleration_seconds: int | None = Field(
        default=None,
        ge=0,
        le=31_536_000,
        description="For NoExecute: how long the pod stays bound after the taint appears.",
        json_schema_extra={"format": "int64"},
    )


class Hardware(ApiModel):
    """One node of the pool: its accelerators (if any), CPU and memory."""

    cross_field_rules = (
        CrossFieldRule(
            cel="self.kind != 'gpu' || (has(self.gpusPerNode) && self.gpusPerNode >= 1)",
            message="a gpu pool needs gpusPerNode of at least 1",
            holds=lambda h: h.kind != "gpu" or (h.gpus_per_node or 0) >= 1,
            field_path=".gpusPerNode",
        ),
        CrossFieldRule(
            cel="self.kind != 'gpu' || has(self.gpuMemoryGiB)",
            message="a gpu pool needs gpuMemoryGiB",
            holds=lambda h: h.kind != "gpu" or h.gpu_memory_gib is not None,
            field_path=".gpuMemoryGiB",
        ),
        CrossFieldRule(
            cel="self.kind != 'cpu' || !has(self.gpusPerNode) || self.gpusPerNode == 0",
            message="a cpu pool has no GPUs: leave gpusPerNode unset or 0",
            holds=lambda h: h.kind != "cpu" or not h.gpus_per_node,
            field_path=".gpusPerNode",
        ),
        CrossFieldRule(
            cel="self.kind != 'cpu' || !has(self.gpuMemoryGiB)",
            message="a cpu pool has no GPUs: leave gpuMemoryGiB unset",
            holds=lambda h: h.kind != "cpu" or h.gpu_memory_gib is None,
            field_path=".gpuMemoryGiB",
        ),
        # A node the catalog does not know is sized from its own numbers: the bandwidth bounds
        # decode speed, and nothing else could supply it.
        CrossFieldRule(
            cel="has(self.acceleratorModel) || has(self.memoryBandwidthGBps)",
            message="without acceleratorModel (a hardware catalog name), give "
            "memoryBandwidthGBps: a custom node is sized from its own numbers",
            holds=lambda h: h.accelerator_model is not None or h.memory_bandwidth_gbps is not None,
            field_path=".memoryBandwidthGBps",
        ),
    )

    kind: HardwareKind = Field(description="gpu: replicas run on accelerators; cpu: on cores.")
    accelerator_model: Annotated[str, StringConstraints(min_length=1, max_length=63)] | None = (
        Field(
            default=None,
            description="Hardware catalog name of the accelerator, or of the CPU for cpu pools "
            "(e.g. a100-80gb-sxm, rtx-4090, xeon-8380). Absent: a custom node, described by "
            "memoryBandwidthGBps, memoryGiB (gpuMemoryGiB and gpusPerNode on gpu pools), "
            "cpuCores and cpuFeatures; its price is in cost.",
        )
    )
    gpus_per_node: int | None = Field(
        default=None, ge=0, le=16, description="GPUs per node (nvidia.com/gpu); gpu pools only."
    )
    gpu_memory_gib: float | None = Field(
        default=None,
        gt=0,
        le=1024,
        alias="gpuMemoryGiB",
        description="Memory of one GPU, in GiB; gpu pools only.",
    )
    cpu_cores: int = Field(ge=1, le=1024, description="Physical CPU cores per node.")
    memory_gib: float = Field(
        gt=0, le=65536, alias="memoryGiB", description="Memory per node, in GiB."
    )
    memory_bandwidth_gbps: float | None = Field(
        default=None,
        gt=0,
        le=100_000,
        alias="memoryBandwidthGBps",
        description="Memory bandwidth of one GPU (gpu pools) or of the node (cpu pools), in "
        "GB/s; bounds decode speed. Absent: the catalog's figure.",
    )
    cpu_features: list[CpuFeature] = Field(
        default=[],
        max_length=MAX_CPU_FEATURES,
        description="CPU instruction-set extensions, as /proc/cpuinfo names them (avx512_bf16 or "
        "amx_bf16: native bf16, which decodes bf16 at about twice fp32's speed). Absent: the "
        "catalog's, or none for a custom node.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


class PoolCost(ApiModel):
    """Cost inputs. A device is one GPU in a gpu pool and one node in a cpu pool."""

    cross_field_rules = (
        CrossFieldRule(
            cel="has(self.hourlyPrice) || has(self.purchasePricePerDevice)",
            message="set hourlyPrice, or purchasePricePerDevice with amortisationYears",
            holds=lambda c: c.hourly_price is not None or c.purchase_price_per_device is not None,
        ),
        CrossFieldRule(
            cel="has(self.purchasePricePerDevice) == has(self.amortisationYears)",
            message="purchasePricePerDevice and amortisationYears go together",
            holds=lambda c: (c.purchase_price_per_device is None) == (c.amortisation_years is None),
            field_path=".amortisationYears",
        ),
    )

    currency: Currency = Field(default="USD", description="ISO 4217 code of every price here.")
    purchase_price_per_device: Money | None = Field(
        default=None, description="Purchase price of one device, spread over amortisationYears."
    )
    amortisation_years: float | None = Field(
        default=None,
        gt=0,
        le=MAX_AMORTISATION_YEARS,
        description="Years over which the purchase price is spread.",
    )
    hourly_price: Money | None = Field(
        default=None,
        description="Rental price of one device per hour (cloud or colocation), all-in; added "
        "to any amortised purchase price.",
    )
    watts_per_device: float = Field(
        default=0,
        ge=0,
        le=MAX_WATTS_PER_DEVICE,
        description="Average power draw of one device, in watts.",
    )
    pue: float = Field(
        default=1.0,
        ge=MIN_PUE,
        le=MAX_PUE,
        description="Power usage effectiveness: facility power divided by IT power.",
    )
    electricity_price_per_kwh: Money = Field(
        default=0, alias="electricityPricePerKWh", description="Electricity price per kWh."
    )
    staff_cost_per_year: Money = Field(
        default=0, description="Operations staff cost per year attributed to this whole pool."
    )


class ThroughputMeasurement(ApiModel):
    """Measured speed of one replica of a model on this pool, written by calibration."""

    cross_field_rules = (
        CrossFieldRule(
            cel="self.tokensPerSecondSaturated >= self.tokensPerSecondSingleStream",
            message="tokensPerSecondSaturated must be at least tokensPerSecondSingleStream",
            holds=lambda t: t.tokens_per_second_saturated >= t.tokens_per_second_single_stream,
            field_path=".tokensPerSecondSaturated",
        ),
    )

    model: ShortText = Field(description="Model name or catalog key measured.")
    precision: Precision = Field(description="Precision measured.")
    tokens_per_second_single_stream: float = Field(
        gt=0,
        le=MAX_TOKENS_PER_SECOND_PER_REPLICA,
        description="Output tokens per second of one request alone.",
    )
    tokens_per_second_saturated: float = Field(
        gt=0,
        le=MAX_TOKENS_PER_SECOND_PER_REPLICA,
        description="Output tokens per second of one replica at full batch, all requests summed.",
    )
    time_to_first_token_seconds: float = Field(
        gt=0, le=3600, description="Time to first token of a typical prompt, in seconds."
    )
    measured_at: Timestamp = Field(
        description="When it was measured.", json_schema_extra={"format": "date-time"}
    )


class PoolProfileSpec(ApiModel):
    """How to place pods on the pool's nodes, and what the nodes are and cost."""

    cross_field_rules = (
        CrossFieldRule(
            # map keys have no schema of their own, so a rule checks them
            cel=f"self.nodeSelector.all(k, k.matches('{LABEL_KEY_PATTERN}'))",
            message="every nodeSelector key must be a label key, [prefix/]name with a name of at "
            "most 63 letters, digits, dashes, underscores or dots that starts and ends with a "
            "letter or digit",
            holds=lambda s: all(
                len(key) <= 317 and re.fullmatch(LABEL_KEY_PATTERN, key) for key in s.node_selector
            ),
            field_path=".nodeSelector",
        ),
    )

    # Required and never empty: an empty selector matches every node in the cluster, so the
    # pool's replicas would land anywhere, GPU nodes included.
    node_selector: dict[str, NodeLabelValue] = Field(
        min_length=1,
        max_length=MAX_NODE_SELECTOR_LABELS,
        description="Node labels that select this pool's nodes (and its pods' nodeSelector); at "
        "least one, since an empty selector matches every node.",
    )
    tolerations: list[Toleration] = Field(
        default=[],
        max_length=MAX_TOLERATIONS,
        description="Tolerations added to pods on this pool, e.g. for nvidia.com/gpu taints.",
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )
    hardware: Hardware = Field(description="What one node has.")
    cost: PoolCost = Field(description="What the pool costs.")
    startup_seconds: float | None = Field(
        default=None,
        gt=0,
        le=MAX_STARTUP_SECONDS,
        description="Seconds from a replica's pod being created to it being Ready on this pool "
        "(image start, weights load, warm-up). The operator starts replicas this long before a "
        "window boundary that needs them, and the planner charges it to a move. Absent: 120 on "
        "gpu pools, 60 on cpu pools.",
    )
    throughput: list[ThroughputMeasurement] = Field(
        default=[],
        max_length=MAX_THROUGHPUT_ENTRIES,
        description="Measured throughput per (model, precision); preferred over catalog estimates.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["model", "precision"],
        },
    )


class PoolProfile(ApiResource):
    """A node pool the operator may place DeepSeek replicas on (cluster-scoped)."""

    # Variants refer to it by name, and it appears in Deployment names and label values.
    name_pattern = DNS_1123_LABEL_PATTERN

    api_version: Literal["serving.deepseek-operator.io/v1alpha1"] = Field(
        default="serving.deepseek-operator.io/v1alpha1", description="API version."
    )
    kind: Literal["PoolProfile"] = Field(default="PoolProfile", description="Kind.")
    metadata: dict[str, Any] = Field(default={}, description="Standard object metadata.")
    spec: PoolProfileSpec = Field(description="Desired state.")
    status: PoolProfileStatus | None = Field(
        default=None, description="Observed state, written by the operator."
    )
