"""The server's knobs, checked before anything heavy loads so a bad flag fails in milliseconds."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

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
            raise SettingsError(f"device: must be one of cpu, cuda (got {self.device!r})")
        allowed = DEVICE_PRECISIONS[self.device]
        if self.precision not in allowed:
            raise SettingsError(
                f"precision: {self.precision!r} is not available on {self.device} "
                f"(allowed there: {', '.join(allowed)})"
            )
        for name in ("max_batch_size", "max_queue", "default_max_tokens"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name}: must be at least 1 (got {getattr(self, name)})")
        if self.max_wait_ms < 0:
            raise SettingsError(f"max_wait_ms: must not be negative (got {self.max_wait_ms})")
        if self.drain_seconds < 0:
            raise SettingsError(f"drain_seconds: must not be negative (got {self.drain_seconds})")
        if self.max_model_len is not None and self.max_model_len < 2:
            raise SettingsError(f"max_model_len: must be at least 2 (got {self.max_model_len})")
        if not 0 < self.port < 65536:
            raise SettingsError(f"port: must be in 1..65535 (got {self.port})")
        if not self.served_model_name:
            raise SettingsError("served_model_name: must not be empty")
