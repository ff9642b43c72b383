"""How much memory a CPU server needs, and how long a context the memory left allows.

A checkpoint's config says how long a context the model was trained for
(`max_position_embeddings`: 131,072 tokens for the R1 distills); a KV cache with room for every
batch slot at that length needs 140 GB for the 1.5B model. So on CPU the context and the paged
KV cache are sized from the memory actually available (the host's, or the container's cgroup
limit, whichever is smaller) and the requested concurrency (`--max-batch-size`):

    KV budget = KV_MEMORY_FRACTION x (available - weights - runtime reserve)
    context   = min(trained context, KV budget / (max_batch_size x KV bytes per token))

When the weights, or the context the user asked for, do not fit, `MemoryPlanError` says what was
asked, what is available, and which flag to change. Everything here reads only config.json and
the safetensors headers: it runs before torch is imported, so a bad request fails in
milliseconds with exit status 2.

By default the cache is paged and shared, as llama.cpp's server and vLLM share theirs: it holds
`DEFAULT_KV_TOKENS_PER_SEQUENCE` tokens per batch slot on average, and any one sequence may grow
to the context (`DEFAULT_MAX_MODEL_LEN`, or the trained context if shorter). Sizing every slot
for the full context would take most of the memory for a cache that decoding rarely fills: at
fp32 the 1.5B model's cache for 32 slots at 2,816 tokens was 6.7 GB, and the server peaked at
1.87x its weights. When the cache is full, transformers' scheduler holds the sequences that do
not fit until others finish.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepseek_operator.serving.settings import ServerSettings, SettingsError

KV_PAGE_TOKENS = 256
KV_MEMORY_FRACTION = 0.5
"""Share of the memory left after the weights that the KV cache may take by default: the rest
stays for activations, the allocator's slack and whatever else runs on the machine (transformers'
own default takes 60 % of host memory for the cache alone)."""
REQUESTED_KV_MEMORY_FRACTION = 0.9
"""Share of that memory a KV cache the user sized explicitly (`--max-model-len`,
`--kv-cache-blocks`) may take before it is refused."""
RUNTIME_RESERVE_BYTES = 512 * 2**20
"""Python, torch, tokenizer and HTTP server: about 400-500 MB resident before any weights."""
ACTIVATION_RESERVE_FRACTION = 0.10
"""Per-step activations and logits, as a share of the weights (the 1.5B model's logits for 256
prompt tokens x 151,936 ids are 0.16 GB at fp32, some 5 % of its bf16 weights)."""
KV_FOOTPRINT_FACTOR = 1.3
"""transformers' paged cache allocates more than the K and V pages: index and mask tensors that
grow with the cache took 1.26x the K/V bytes at the 1.5B shape (its own log); planned with 1.3."""
DEFAULT_KV_TOKENS_PER_SEQUENCE = 512
"""Average room per batch slot in a default cache: a chat turn's prompt and answer (32 slots of
the 1.5B model: 1.2 GB at fp32, 0.6 GB at bf16 and int8)."""
DEFAULT_MAX_MODEL_LEN = 8192
"""The longest sequence a default server accepts (or the trained context, if shorter): long
enough for a reasoning model's chain of thought, and what a shared cache can still hold."""
MIN_DEFAULT_CONTEXT = 1024
"""Below this, a default context is too short to be useful: better to refuse and say why."""

ELEMENT_BYTES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
}
COMPUTE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 2, "int4": 2}
"""Bytes per element of activations and KV cache at each precision (int8 computes in bf16)."""


class MemoryPlanError(SettingsError):
    """The requested configuration does not fit the memory available; names the flag."""


@dataclass(frozen=True)
class CheckpointShape:
    """What config.json and the safetensors headers say, without loading a weight."""

    trained_context: int
    layers: int
    kv_heads: int
    head_dim: int
    linear_parameters: int
    """Elements of 2-D `.weight` tensors outside the embedding: what int8 quantises."""
    other_parameters: int

    @property
    def parameters(self) -> int:
        return self.linear_parameters + self.other_parameters

    def kv_bytes_per_token(self, precision: str) -> int:
        """K and V of every layer, as stored (without the allocator's overhead)."""
        return 2 * self.layers * self.kv_heads * self.head_dim * COMPUTE_BYTES[precision]

    def weight_bytes(self, precision: str) -> int:
        """Resident bytes of the weights once loaded at `precision` (estimated from the shapes)."""
        if precision == "int8":
            # int8 rows with one bf16 scale each (negligible), everything else in bf16
            return self.linear_parameters + 2 * self.other_parameters
        per = {"fp32": 4, "bf16": 2, "fp16": 2, "int4": 0.5}[precision]
        return int(self.parameters * per)


@dataclass(frozen=True)
class MemoryPlan:
    context_length: int
    kv_cache_blocks: int
    weight_bytes: int
    kv_cache_bytes: int
    available_bytes: int
    basis: str


def safetensors_headers(directory: Path) -> dict[str, dict[str, Any]]:
    """Every tensor's dtype, shape and offsets, from the headers only (a few KB read per file)."""
    tensors: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.safetensors")):
        with path.open("rb") as file:
            (length,) = struct.unpack("<Q", file.read(8))
            header = json.loads(file.read(length))
        start = 8 + length
        for name, info in header.items():
            if name == "__metadata__":
                continue
            tensors[name] = {**info, "file": path, "data_start": start}
    return tensors


def _text_config(directory: Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    text = config.get("text_config")
    return {**config, **text} if isinstance(text, dict) else config


def checkpoint_shape(directory: Path) -> CheckpointShape:
    """The shape, or SettingsError naming --weights when config.json or a header cannot say."""
    try:
        return _checkpoint_shape(directory)
    except (KeyError, TypeError, ValueError, struct.error, OSError) as error:
        raise SettingsError(
            f"--weights: {directory} is not a checkpoint this server can size "
            f"(config.json or a safetensors header: {type(error).__name__}: {error})"
        ) from None


def _checkpoint_shape(directory: Path) -> CheckpointShape:
    config = _text_config(directory)
    heads = int(config["num_attention_heads"])
    head_dim = int(config.get("head_dim") or int(config["hidden_size"]) // heads)
    linear = other = 0
    for name, info in safetensors_headers(directory).items():
        count = math.prod(int(d) for d in info["shape"])
        if len(info["shape"]) == 2 and name.endswith(".weight") and "embed" not in name:
            linear += count
        else:
            other += count
    return CheckpointShape(
        trained_context=int(config.get("max_position_embeddings") or 2048),
        layers=int(config["num_hidden_layers"]),
        kv_heads=int(config.get("num_key_value_heads") or heads),
        head_dim=head_dim,
        linear_parameters=linear,
        other_parameters=other,
    )


def available_memory_bytes() -> int:
    """MemAvailable of the host, or what the cgroup (a container's limit) leaves, if smaller."""
    available = _meminfo_available()
    cgroup = _cgroup_headroom()
    if cgroup is not None:
        available = min(available, cgroup) if available else cgroup
    return available


def _meminfo_available() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def _cgroup_headroom() -> int | None:
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(int(limit) - int((root / "memory.current").read_text().strip()), 0)
    except (OSError, ValueError):
        return None


def _gb(value: float) -> str:
    return f"{value / 1e9:,.2f} GB"


def plan_memory(
    settings: ServerSettings, shape: CheckpointShape, available_bytes: int
) -> MemoryPlan:
    """The context length and KV-cache blocks for `settings`, or MemoryPlanError naming a flag."""
    precision = settings.precision
    weights = shape.weight_bytes(precision)
    reserve = RUNTIME_RESERVE_BYTES + int(ACTIVATION_RESERVE_FRACTION * weights)
    free = available_bytes - weights - reserve
    if free <= 0:
        raise MemoryPlanError(
            f"--precision: the weights at {precision} need {_gb(weights)} plus "
            f"{_gb(reserve)} for the runtime, but only {_gb(available_bytes)} of memory is "
            "available; choose a smaller precision (int8) or a machine with more memory"
        )
    per_token = math.ceil(shape.kv_bytes_per_token(precision) * KV_FOOTPRINT_FACTOR)
    batch = settings.max_batch_size
    trained = shape.trained_context
    if settings.max_model_len is not None and settings.max_model_len > trained:
        raise SettingsError(
            f"--max-model-len: {settings.max_model_len} is longer than the model's context "
            f"({trained} tokens, max_position_embeddings in config.json)"
        )
    if settings.kv_cache_blocks is not None:
        kv_bytes = settings.kv_cache_blocks * KV_PAGE_TOKENS * per_token
        if kv_bytes > REQUESTED_KV_MEMORY_FRACTION * free:
            raise MemoryPlanError(
                f"--kv-cache-blocks: {settings.kv_cache_blocks} blocks of {KV_PAGE_TOKENS} "
                f"tokens need {_gb(kv_bytes)}, but {REQUESTED_KV_MEMORY_FRACTION:g} of the "
                f"{_gb(free)} left after the weights is {_gb(REQUESTED_KV_MEMORY_FRACTION * free)} "
                f"({_gb(available_bytes)} available); lower --kv-cache-blocks"
            )
        cache_tokens = settings.kv_cache_blocks * KV_PAGE_TOKENS
        context = settings.max_model_len or min(trained, cache_tokens)
        return MemoryPlan(
            context,
            settings.kv_cache_blocks,
            weights,
            kv_bytes,
            available_bytes,
            "--kv-cache-blocks",
        )
    if settings.max_model_len is not None:
        budget = int(REQUESTED_KV_MEMORY_FRACTION * free)
        context = settings.max_model_len
        needed = batch * context * per_token
        if needed > budget:
            fits_len = budget // (batch * per_token)
            fits_batch = budget // (context * per_token)
            raise MemoryPlanError(
                f"--max-model-len: {context} tokens for each of --max-batch-size {batch} "
                f"sequences needs a KV cache of {_gb(needed)}, but {_gb(budget)} is available "
                f"for it ({REQUESTED_KV_MEMORY_FRACTION:g} of the {_gb(free)} left after "
                f"{_gb(weights)} of weights at {precision}, of {_gb(available_bytes)} "
                f"available); lower --max-model-len to {fits_len} or --max-batch-size to "
                f"{fits_batch}"
            )
        basis = "--max-model-len"
    else:
        return _default_plan(shape, precision, batch, per_token, weights, free, available_bytes)
    blocks = math.ceil(batch * context / KV_PAGE_TOKENS) + 1
    return MemoryPlan(
        context, blocks, weights, blocks * KV_PAGE_TOKENS * per_token, available_bytes, basis
    )


def _default_plan(
    shape: CheckpointShape,
    precision: str,
    batch: int,
    per_token: int,
    weights: int,
    free: int,
    available_bytes: int,
) -> MemoryPlan:
    """A shared cache of `batch` x DEFAULT_KV_TOKENS_PER_SEQUENCE tokens, bounded by
    KV_MEMORY_FRACTION of the memory free; the context is the default length, or what the cache
    holds if that is less."""
    budget = int(KV_MEMORY_FRACTION * free)
    wanted = math.ceil(batch * DEFAULT_KV_TOKENS_PER_SEQUENCE / KV_PAGE_TOKENS)
    blocks = min(wanted, budget // (KV_PAGE_TOKENS * per_token))
    cache_tokens = blocks * KV_PAGE_TOKENS
    context = min(shape.trained_context, DEFAULT_MAX_MODEL_LEN, cache_tokens)
    # every slot in flight holds at least one page, and a context under MIN_DEFAULT_CONTEXT is
    # too short to be useful: better to refuse and say why
    least = max(batch * KV_PAGE_TOKENS, min(shape.trained_context, MIN_DEFAULT_CONTEXT))
    if cache_tokens < least:
        raise MemoryPlanError(
            f"--max-batch-size: {batch} sequences need a KV cache of at least {least} tokens "
            f"({_gb(least * per_token)}; one {KV_PAGE_TOKENS}-token page each), but "
            f"{_gb(budget)} is available for it ({_gb(available_bytes)} available, "
            f"{_gb(weights)} of weights at {precision}); lower --max-batch-size"
        )
    basis = (
        f"{batch} slots x {DEFAULT_KV_TOKENS_PER_SEQUENCE} tokens, shared"
        if blocks == wanted
        else f"{_gb(budget)} for the KV cache ({KV_MEMORY_FRACTION:g} of the memory free)"
    )
    return MemoryPlan(
        context, blocks, weights, blocks * KV_PAGE_TOKENS * per_token, available_bytes, basis
    )
