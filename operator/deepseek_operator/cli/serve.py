"""`deepseek-operator serve`: the model server's command line (torch loads only when it runs)."""

from __future__ import annotations

import logging
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from deepseek_operator.cli.inputs import require_extra, stop


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


def register(app: typer.Typer) -> None:
    app.command(
        "serve", help="Serve a local DeepSeek checkpoint over an OpenAI-compatible HTTP API."
    )(serve)


def serve(
    weights: Annotated[
        Path,
        typer.Option(
            "--weights", help="Local checkpoint directory (config.json, *.safetensors, tokenizer)."
        ),
    ],
    served_model_name: Annotated[
        str | None, typer.Option(help="Model id clients send; defaults to the directory name.")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to bind; 0.0.0.0 inside a pod.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    precision: Annotated[
        str, typer.Option(help="auto (bf16 on cuda, fp32 on cpu), fp32, bf16, fp16, int8 or int4.")
    ] = "auto",
    max_batch_size: Annotated[int, typer.Option(help="Sequences decoded together per step.")] = 32,
    max_wait_ms: Annotated[
        float, typer.Option(help="An idle engine waits this long to gather a batch.")
    ] = 5.0,
    max_queue: Annotated[
        int, typer.Option(help="Admitted requests (running + waiting) before 429.")
    ] = 256,
    max_model_len: Annotated[
        int | None, typer.Option(help="Context length; default from the model config.")
    ] = None,
    default_max_tokens: Annotated[
        int, typer.Option(help="max_tokens for requests that omit it.")
    ] = 1024,
    drain_seconds: Annotated[
        float, typer.Option(help="On SIGTERM, time allowed for in-flight requests.")
    ] = 25.0,
    kv_cache_blocks: Annotated[
        int | None,
        typer.Option(
            help="Paged KV cache size in 256-token blocks (default: sized automatically)."
        ),
    ] = None,
    reasoning: Annotated[
        bool | None,
        typer.Option(
            "--reasoning/--no-reasoning",
            help="Split <think> output into reasoning_content (default: auto).",
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Sampling seed for the whole server.")] = None,
    log_level: Annotated[
        LogLevel, typer.Option(help="How much the server logs.", case_sensitive=False)
    ] = LogLevel.INFO,
) -> None:
    require_extra("serving", "torch", "transformers", "fastapi", "uvicorn")
    from deepseek_operator.serving.loading import WeightsError, check_weights_dir
    from deepseek_operator.serving.memory import (
        available_memory_bytes,
        checkpoint_shape,
        plan_memory,
    )
    from deepseek_operator.serving.settings import ServerSettings, SettingsError

    try:
        check_weights_dir(weights)
    except WeightsError as error:
        stop(error)
    resolved_device = _resolve_device(device)
    resolved_precision = (
        precision if precision != "auto" else ("bf16" if resolved_device == "cuda" else "fp32")
    )
    try:
        settings = ServerSettings(
            weights=weights,
            served_model_name=served_model_name or weights.resolve().name,
            device=resolved_device,  # type: ignore[arg-type]
            precision=resolved_precision,  # type: ignore[arg-type]
            host=host,
            port=port,
            max_batch_size=max_batch_size,
            max_wait_ms=max_wait_ms,
            max_queue=max_queue,
            max_model_len=max_model_len,
            default_max_tokens=default_max_tokens,
            drain_seconds=drain_seconds,
            kv_cache_blocks=kv_cache_blocks,
            reasoning=reasoning,
            seed=seed,
        )
        if settings.device == "cpu":
            # Fails in milliseconds, before torch loads, when the memory cannot hold it.
            plan_memory(settings, checkpoint_shape(weights), available_memory_bytes())
    except SettingsError as error:
        stop(error)
    logging.basicConfig(
        level=log_level.value.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from deepseek_operator.serving.server import run

    raise typer.Exit(run(settings, log_level=log_level.value))


def _resolve_device(device: str) -> str:
    if device not in ("auto", "cpu", "cuda"):
        stop(f"--device: must be auto, cpu or cuda (got {device!r})")
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
