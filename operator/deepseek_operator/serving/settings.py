"""The server's knobs, checked before anything heavy loads so a bad flag fails in milliseconds."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from deepseek_operator.api.vocabulary import MAX_CONTEXT_TOKENS, MAX_SEED
from deepseek_operator.core.workloads.engines import (
    DEPLOYMENT_LABEL_ENV,
    POOL_LABEL_ENV,
    TRANSFORMERS,
)

Device = Literal["cpu", "cuda"]
ServerPrecision = Literal["fp32", "bf16", "fp16", "int8", "int4"]

DEVICE_PRECISIONS: dict[str, tuple[str, ...]] = {
    "cpu": TRANSFORMERS.precisions["cpu"],
    "cuda": TRANSFORMERS.precisions["gpu"],
}


class SettingsError(ValueError):
    """A setting that cannot work; the message names the setting."""


@dataclass(frozen=True)
class ServerSettings:
    weights: Path
    served_model_name: str
    device: Device = "cpu"
    precision: ServerPrecision = "fp32"
    host: str = "127.0.0.1"
    port: int = 8000
    max_batch_size: int = 32
    """Sequences decoded together in one step (transformers' `max_requests_per_batch`)."""
    max_wait_ms: float = 5.0
    """How long an idle engine waits for more requests before starting a batch."""
    max_queue: int = 256
    """Requests admitted (running or waiting); beyond it the server answers 429."""
    max_model_len: int | None = None
    """Context length; defaults to the model's `max_position_embeddings`."""
    default_max_tokens: int = 1024
    """`max_tokens` when a request omits it (capped by the room left in the context)."""
    drain_seconds: float = 25.0
    """On SIGTERM, how long in-flight requests may take before the process exits anyway."""
    kv_cache_blocks: int | None = None
    """Paged KV cache size in blocks; None lets transformers size it from free memory."""
    reasoning: bool | None = None
    """Split `<think>` output into `reasoning_content`; None: on when the tokenizer knows `</think>`."""
    seed: int | None = None
    deployment_label: str = field(default_factory=lambda: os.environ.get(DEPLOYMENT_LABEL_ENV, ""))
    pool_label: str = field(default_factory=lambda: os.environ.get(POOL_LABEL_ENV, ""))

    def __post_init__(self) -> None:
        if self.device not in DEVICE_PRECISIONS:
            raise SettingsError(f"--device: must be one of cpu, cuda (got {self.device!r})")
        allowed = DEVICE_PRECISIONS[self.device]
        if self.precision not in allowed:
            raise SettingsError(
                f"--precision: {self.precision!r} is not available on {self.device} "
                f"(allowed there: {', '.join(allowed)})"
            )
        for name, (low, high) in BOUNDS.items():
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not (
                isinstance(value, int | float) and math.isfinite(value) and low <= value <= high
            ):
                raise SettingsError(f"{flag(name)}: must be from {low:g} to {high:g} (got {value})")
        if not self.served_model_name or len(self.served_model_name) > 253:
            raise SettingsError("--served-model-name: must be 1 to 253 characters")
        if not self.host:
            raise SettingsError("--host: must not be empty")


def flag(name: str) -> str:
    """The `serve` flag that sets the setting `name`."""
    return "--" + name.replace("_", "-")


MAX_BATCH_SIZE = 1024
"""Sequences per decoding step: beyond a thousand, no accelerator holds their KV caches at a
useful context length."""
KV_CACHE_MAX_BLOCKS = MAX_BATCH_SIZE * MAX_CONTEXT_TOKENS // 256
"""Every batch slot at the longest context, in 256-token pages."""

BOUNDS: dict[str, tuple[float, float]] = {
    "port": (1, 65535),
    "max_batch_size": (1, MAX_BATCH_SIZE),
    # Waiting over ten seconds to gather a batch breaks every latency objective.
    "max_wait_ms": (0, 10_000),
    # Admitted requests hold memory each; a hundred thousand is far past any batch.
    "max_queue": (1, 100_000),
    "max_model_len": (2, MAX_CONTEXT_TOKENS),
    "default_max_tokens": (1, MAX_CONTEXT_TOKENS),
    # Kubernetes waits terminationGracePeriodSeconds; an hour is the longest anyone sets.
    "drain_seconds": (0, 3600),
    "kv_cache_blocks": (1, KV_CACHE_MAX_BLOCKS),
    "seed": (0, MAX_SEED),
}
"""The numeric settings' bounds (inclusive); every value must also be a finite number."""
