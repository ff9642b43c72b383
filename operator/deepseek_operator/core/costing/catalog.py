"""Hardware and model catalog: the defaults the cost model starts from, each with its source.

Every number a user might question carries a source string in ``sources`` (keyed by field name),
so a report can say where a figure came from and a user knows which ones to replace with their
own quotes and measurements. Units are in the field names: GB means 10**9 bytes (weights, bandwidth),
GiB 2**30 bytes (device memory, which vendors sell in binary units: an "80GB" A100 has 81,920 MiB).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from deepseek_operator.api.vocabulary import Currency, HardwareKind, Precision

ANCHORS = "reference/performance-anchors.md"
ARTICLE = "source article (seed/SUMMARY.md)"


BYTES_PER_PARAMETER: Mapping[Precision, float] = {
    "fp32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    # Plain 4 bits; group scales (llama.cpp Q4_0 is ~4.5 bit/param) are left to the runtime
    # overhead term in core.fit.
    "int4": 0.5,
}

# Precisions ordered from most to fewest bytes per weight, for "smaller variant" fallbacks.
PRECISIONS_BY_SIZE: tuple[Precision, ...] = ("fp32", "bf16", "fp16", "fp8", "int8", "int4")


@dataclass(frozen=True)
class HardwareSpec:
    """One device type: a GPU board, or one CPU socket with its memory channels.

    ``memory_gib`` is GPU memory, or for a CPU socket the DRAM configured on it (an assumption a
    user should replace). ``devices_per_node`` bounds tensor parallelism: a replica never spans
    nodes.
    """

    name: str
    kind: HardwareKind
    memory_gib: float
    memory_bandwidth_gb_per_s: float
    board_power_watts: float
    purchase_price: float
    purchase_currency: Currency
    cloud_price_per_hour_usd: float | None
    devices_per_node: int
    sources: Mapping[str, str] = field(compare=False, repr=False)
    cpu_features: tuple[str, ...] = ()
    """Instruction-set extensions that change decode speed: `avx512_bf16`, `amx_bf16` (native
    bf16 dot products), `avx512_vnni`. Empty for GPUs."""
    bandwidth_efficiency: Mapping[Precision, float] | None = field(default=None, compare=False)
    """Measured fraction of the bandwidth a single decode stream reaches, per precision; None:
    the defaults in core.costing.throughput."""
    batch_step_curve: Mapping[Precision, tuple[tuple[int, float], ...]] | None = field(
        default=None, compare=False
    )
    """Measured decode-step time against batch size, over one sequence's, per precision (CPU
    batching, see core.costing.throughput.StepCurve); None: the defaults."""

    @property
    def memory_bytes(self) -> float:
        return self.memory_gib * 2**30

    @property
    def memory_bandwidth_bytes_per_s(self) -> float:
        return self.memory_bandwidth_gb_per_s * 1e9


@dataclass(frozen=True)
class ModelArchitecture:
    """A model's shape: enough to size its weights and its KV cache per token.

    Grouped-query attention stores K and V per layer: 2 x kv_heads x head_dim elements per token.
    DeepSeek-R1 uses multi-head latent attention and stores one compressed latent per layer
    (``mla_latent_dim`` = kv_lora_rank + rope head dim), so its KV cache is much smaller.
    """

    name: str
    parameters_billion: float
    active_parameters_billion: float
    layers: int
    kv_heads: int
    head_dim: int
    sources: Mapping[str, str] = field(compare=False, repr=False)
    mla_latent_dim: int | None = None
    embedding_parameters_billion: float = 0.0
    """The input embedding table: a decoded token reads one row of it, not the table."""

    @property
    def embedding_parameters(self) -> float:
        return self.embedding_parameters_billion * 1e9

    @property
    def parameters(self) -> float:
        return self.parameters_billion * 1e9

    @property
    def active_parameters(self) -> float:
        return self.active_parameters_billion * 1e9

    @property
    def kv_elements_per_token(self) -> int:
        if self.mla_latent_dim is not None:
            return self.layers * self.mla_latent_dim
        return 2 * self.layers * self.kv_heads * self.head_dim

    def kv_bytes_per_token(self, kv_precision: Precision = "bf16") -> float:
        """KV-cache bytes for one token of context (K and V, every layer)."""
        return self.kv_elements_per_token * BYTES_PER_PARAMETER[kv_precision]


_LAMBDA = "LambdaLabsML/vllm-benchmark; "
_HF_A100 = "huggingface.co/hardware/a100"
_A100_BW = "huataihuang/cloud-atlas nvidia_a100.rst (2,039 GB/s); " + ANCHORS + " 2.6"
_MAKO = "mako-dev.com/blog/gpu-go-brrrrr-but-at-what-cost, via " + ANCHORS + " 2.7"
_UNQUOTED = "estimate: no retrieved quote; replace with your own purchase price"
_HGX = "8-GPU baseboard (HGX/OAM class servers); vendor platform spec, not re-verified"
_PCIE_SERVER = "8 double-width PCIe cards per 4U server; common configuration, not re-verified"

HARDWARE: Mapping[str, HardwareSpec] = {
    spec.name: spec
    for spec in (
        HardwareSpec(
            name="a100-80gb-sxm",
            kind="gpu",
            memory_gib=80,
            memory_bandwidth_gb_per_s=2039,
            board_power_watts=400,
            purchase_price=100_000,
            purchase_currency="CNY",
            cloud_price_per_hour_usd=1.94,
            devices_per_node=8,
            sources={
                "memory_gib": "vendor spec: A100 80GB SXM4",
                "memory_bandwidth_gb_per_s": _A100_BW,
                "board_power_watts": _HF_A100 + " (400 W); " + ANCHORS + " 2.7",
                "purchase_price": ARTICLE + " 1: ~100,000 CNY per A100 80GB SXM",
                "cloud_price_per_hour_usd": _MAKO,
                "devices_per_node": _HGX,
            },
        ),
        HardwareSpec(
            name="a100-80gb-pcie",
            kind="gpu",
            memory_gib=80,
            memory_bandwidth_gb_per_s=1935,
            board_power_watts=300,
            purchase_price=90_000,
            purchase_currency="CNY",
            cloud_price_per_hour_usd=None,
            devices_per_node=8,
            sources={
                "memory_gib": "vendor spec: A100 80GB PCIe",
                "memory_bandwidth_gb_per_s": "vendor spec: A100 80GB PCIe 1,935 GB/s "
                "(not re-verified)",
                "board_power_watts": ANCHORS + " 2.7: PCIe variant rated 250-300 W",
                "purchase_price": _UNQUOTED + " (assumed 10 % below the article's SXM price)",
                "devices_per_node": _PCIE_SERVER,
            },
        ),
        HardwareSpec(
            name="a100-40gb",
            kind="gpu",
            memory_gib=40,
            memory_bandwidth_gb_per_s=1555,
            board_power_watts=400,
            purchase_price=70_000,
            purchase_currency="CNY",
            cloud_price_per_hour_usd=None,
            devices_per_node=8,
            sources={
                "memory_gib": "vendor spec: A100 40GB SXM4",
                "memory_bandwidth_gb_per_s": "vendor spec: A100 40GB 1,555 GB/s (not re-verified)",
                "board_power_watts": "vendor spec: A100 SXM4 400 W; " + _HF_A100,
                "purchase_price": _UNQUOTED,
                "devices_per_node": _HGX,
            },
        ),
        HardwareSpec(
            name="h100-sxm",
            kind="gpu",
            memory_gib=80,
            memory_bandwidth_gb_per_s=3350,
            board_power_watts=700,
            purchase_price=27_500,
            purchase_currency="USD",
            cloud_price_per_hour_usd=3.99,
            devices_per_node=8,
            sources={
                "memory_gib": "vendor spec: H100 SXM5 80GB",
                "memory_bandwidth_gb_per_s": ANCHORS + " 2.6 (3,350 GB/s)",
                "board_power_watts": "huggingface.co/hardware/h100 (700 W); " + ANCHORS + " 2.7",
                "purchase_price": "Raymond James estimate USD 25,000-30,000 per H100, quoted in "
                "epoch-research/training-cost-trends; midpoint used",
                "cloud_price_per_hour_usd": _MAKO,
                "devices_per_node": _HGX,
            },
        ),
        HardwareSpec(
            name="l40s",
            kind="gpu",
            memory_gib=48,
            memory_bandwidth_gb_per_s=864,
            board_power_watts=350,
            purchase_price=8_000,
            purchase_currency="USD",
            cloud_price_per_hour_usd=1.03,
            devices_per_node=8,
            sources={
                "memory_gib": "vendor spec: L40S 48 GB GDDR6",
                "memory_bandwidth_gb_per_s": ANCHORS + " 2.6 (864 GB/s)",
                "board_power_watts": "vendor spec: L40S 350 W (not re-verified)",
                "purchase_price": _UNQUOTED,
                "cloud_price_per_hour_usd": _MAKO,
                "devices_per_node": _PCIE_SERVER,
            },
        ),
        HardwareSpec(
            name="rtx-4090",
            kind="gpu",
            memory_gib=24,
            memory_bandwidth_gb_per_s=1008,
            board_power_watts=450,
            purchase_price=15_000,
            purchase_currency="CNY",
            cloud_price_per_hour_usd=None,
            devices_per_node=8,
            sources={
                "memory_gib": ARTICLE + " 1: 24 GB",
                "memory_bandwidth_gb_per_s": ANCHORS + " 2.6 (1,008 GB/s)",
                "board_power_watts": ANCHORS + " 2.7: 450 W vendor value, not retrieved",
                "purchase_price": ARTICLE + " 1: ~15,000 CNY per card",
                "devices_per_node": ARTICLE + " 4: the 8 x 4090 cluster",
            },
        ),
        HardwareSpec(
            name="mi300x",
            kind="gpu",
            memory_gib=192,
            memory_bandwidth_gb_per_s=5300,
            board_power_watts=750,
            purchase_price=15_000,
            purchase_currency="USD",
            cloud_price_per_hour_usd=3.99,
            devices_per_node=8,
            sources={
                "memory_gib": "vendor spec: MI300X 192 GB HBM3",
                "memory_bandwidth_gb_per_s": ANCHORS + " 2.6 (5,300 GB/s)",
                "board_power_watts": "vendor spec: MI300X 750 W (not re-verified)",
                "purchase_price": _UNQUOTED,
                "cloud_price_per_hour_usd": _MAKO,
                "devices_per_node": _HGX,
            },
        ),
        HardwareSpec(
            name="xeon-8380",
            kind="cpu",
            memory_gib=256,
            memory_bandwidth_gb_per_s=204.8,
            board_power_watts=270,
            purchase_price=8_000,
            purchase_currency="USD",
            cloud_price_per_hour_usd=None,
            devices_per_node=2,
            sources={
                "memory_gib": "assumption: 8 x 32 GB DDR4 DIMMs, one per channel",
                "memory_bandwidth_gb_per_s": ANCHORS + " 2.3: 8 x DDR4-3200 = 204.8 GB/s/socket",
                "board_power_watts": ANCHORS + " 2.7: 270 W TDP vendor value, not retrieved",
                "purchase_price": _UNQUOTED + " (socket plus its DRAM)",
                "devices_per_node": "two-socket server, common configuration",
                "cpu_features": "vendor spec: Ice Lake SP has AVX-512 with VNNI, no bf16 "
                "instructions (not re-verified)",
            },
            cpu_features=("avx512f", "avx512_vnni"),
        ),
        HardwareSpec(
            name="epyc-9654",
            kind="cpu",
            memory_gib=384,
            memory_bandwidth_gb_per_s=460.8,
            board_power_watts=360,
            purchase_price=12_000,
            purchase_currency="USD",
            cloud_price_per_hour_usd=None,
            devices_per_node=2,
            sources={
                "memory_gib": "assumption: 12 x 32 GB DDR5 DIMMs, one per channel",
                "memory_bandwidth_gb_per_s": "derived: 12 channels x DDR5-4800 x 8 B = "
                "460.8 GB/s/socket (vendor spec, not re-verified)",
                "board_power_watts": "vendor spec: EPYC 9654 360 W TDP (not re-verified)",
                "purchase_price": _UNQUOTED + " (socket plus its DRAM)",
                "devices_per_node": "two-socket server, common configuration",
                "cpu_features": "vendor spec: Zen 4 has AVX-512 with BF16 and VNNI "
                "(not re-verified)",
            },
            cpu_features=("avx512f", "avx512_bf16", "avx512_vnni"),
        ),
    )
}

_QWEN_CFG = "config.json of deepseek-ai/{} (HF mirror), via " + ANCHORS + " 2.6"
_LLAMA_CFG = "Llama-3.1/3.3 config dims, via " + ANCHORS + " 2.6"


def _dense_sources(config: str) -> dict[str, str]:
    return {
        "parameters_billion": config,
        "active_parameters_billion": "dense model: every parameter is read per token",
        "layers": config,
        "kv_heads": config,
        "head_dim": config,
    }


MODELS: Mapping[str, ModelArchitecture] = {
    spec.name: spec
    for spec in (
        ModelArchitecture(
            "r1-distill-qwen-1.5b",
            1.78,
            1.78,
            28,
            2,
            128,
            _dense_sources(_QWEN_CFG.format("DeepSeek-R1-Distill-Qwen-1.5B")),
            embedding_parameters_billion=0.2334,
        ),
        ModelArchitecture(
            "r1-distill-qwen-7b",
            7.62,
            7.62,
            28,
            4,
            128,
            _dense_sources(_QWEN_CFG.format("DeepSeek-R1-Distill-Qwen-7B")),
            embedding_parameters_billion=0.545,
        ),
        ModelArchitecture(
            "r1-distill-llama-8b",
            8.03,
            8.03,
            32,
            8,
            128,
            _dense_sources(_LLAMA_CFG),
            embedding_parameters_billion=0.5253,
        ),
        ModelArchitecture(
            "r1-distill-qwen-14b",
            14.77,
            14.77,
            48,
            8,
            128,
            _dense_sources(_QWEN_CFG.format("DeepSeek-R1-Distill-Qwen-14B")),
            embedding_parameters_billion=0.7786,
        ),
        ModelArchitecture(
            "r1-distill-qwen-32b",
            32.76,
            32.76,
            64,
            8,
            128,
            _dense_sources(_QWEN_CFG.format("DeepSeek-R1-Distill-Qwen-32B")),
            embedding_parameters_billion=0.7786,
        ),
        ModelArchitecture(
            "r1-distill-llama-70b",
            70.55,
            70.55,
            80,
            8,
            128,
            _dense_sources(_LLAMA_CFG),
            embedding_parameters_billion=1.0507,
        ),
        ModelArchitecture(
            name="deepseek-r1",
            parameters_billion=671,
            active_parameters_billion=37,
            layers=61,
            kv_heads=128,
            head_dim=128,
            mla_latent_dim=512 + 64,
            embedding_parameters_billion=0.9267,
            sources={
                "parameters_billion": "DeepSeek-V3 technical report (arXiv 2412.19437): 671B total",
                "active_parameters_billion": "DeepSeek-V3 technical report: 37B activated per "
                "token (MoE)",
                "layers": "config.json of deepseek-ai/DeepSeek-R1: num_hidden_layers 61",
                "kv_heads": "config.json of deepseek-ai/DeepSeek-R1: num_key_value_heads 128",
                "head_dim": "config.json of deepseek-ai/DeepSeek-R1: v_head_dim 128",
                "mla_latent_dim": "config.json of deepseek-ai/DeepSeek-R1: kv_lora_rank 512 + "
                "qk_rope_head_dim 64 (the latent an MLA cache stores per layer)",
            },
        ),
    )
}


def hardware_named(name: str) -> HardwareSpec:
    """Look up hardware; the error lists every allowed name."""
    try:
        return HARDWARE[name]
    except KeyError:
        raise KeyError(f"unknown hardware {name!r}; allowed: {', '.join(HARDWARE)}") from None


def model_named(name: str) -> ModelArchitecture:
    """Look up a model; the error lists every allowed name."""
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; allowed: {', '.join(MODELS)}") from None
