"""Load weights from a local directory at the requested precision; never reach the Hub.

Pods get their weights from a volume the operator mounts; a server that silently downloads
tens of gigabytes at start-up would make readiness times and egress unpredictable, so the Hub
is switched off before transformers is imported and every load is `local_files_only`.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepseek_operator.serving.settings import ServerSettings, SettingsError


class WeightsError(FileNotFoundError):
    """The weights directory is missing or incomplete; the message names the path."""


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    context_length: int
    eos_token_ids: tuple[int, ...]
    device: str
    precision: str


def check_weights_dir(path: Path) -> None:
    """Fail fast, before torch loads, when `path` cannot hold a transformers checkpoint."""
    if not path.exists():
        raise WeightsError(
            f"--weights: {path} does not exist (weights are read from a local path only)"
        )
    if not path.is_dir():
        raise WeightsError(f"--weights: {path} is not a directory")
    if not (path / "config.json").is_file():
        raise WeightsError(
            f"--weights: {path} has no config.json (expected a transformers checkpoint)"
        )
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        raise WeightsError(f"--weights: {path} has no *.safetensors or *.bin weight files")


def go_offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def load(settings: ServerSettings) -> LoadedModel:
    check_weights_dir(settings.weights)
    go_offline()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if settings.device == "cuda" and not torch.cuda.is_available():
        raise SettingsError("--device: cuda was requested but torch sees no CUDA device")
    tokenizer = AutoTokenizer.from_pretrained(settings.weights, local_files_only=True)
    kwargs: dict[str, Any] = {"local_files_only": True, "attn_implementation": "sdpa"}
    quantized_on_load = settings.device == "cuda" and settings.precision in ("int8", "int4")
    if quantized_on_load:
        kwargs["quantization_config"] = _bitsandbytes_config(settings.precision)
        kwargs["device_map"] = {"": 0}
        kwargs["dtype"] = torch.bfloat16
    else:
        kwargs["dtype"] = _torch_dtype(settings.precision)
    model = AutoModelForCausalLM.from_pretrained(settings.weights, **kwargs)
    if settings.device == "cuda" and not quantized_on_load:
        model = model.to("cuda")  # type: ignore[arg-type]
    if settings.device == "cpu" and settings.precision == "int8":
        model = quantize_linear_layers_int8(model)
    model.eval()  # type: ignore[no-untyped-call]
    config = model.config.get_text_config()
    trained = int(config.max_position_embeddings)
    if settings.max_model_len is not None and settings.max_model_len > trained:
        raise SettingsError(
            f"--max-model-len: {settings.max_model_len} is longer than the model's context "
            f"({trained} tokens, max_position_embeddings in config.json)"
        )
    context_length = settings.max_model_len or trained
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        context_length=context_length,
        eos_token_ids=_eos_ids(model, tokenizer),
        device=settings.device,
        precision=settings.precision,
    )


def quantize_linear_layers_int8(model: Any) -> Any:
    """PyTorch dynamic quantisation: int8 weights for every nn.Linear, activations quantised per batch."""
    import torch
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        # torch marks eager quantisation deprecated in favour of torchao; it still works and
        # needs no extra package (docs/model-server.md says so).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)  # type: ignore[no-untyped-call]


def _torch_dtype(precision: str) -> Any:
    import torch

    return {
        "fp32": torch.float32,
        "bf16": torch.bfloat16,
        "fp16": torch.float16,
        "int8": torch.float32,  # CPU int8: quantised after loading in fp32
    }[precision]


def _bitsandbytes_config(precision: str) -> Any:
    if importlib.util.find_spec("bitsandbytes") is None:
        raise SettingsError(
            f"--precision: {precision} on cuda uses bitsandbytes, which is not installed "
            "(pip install bitsandbytes, or use the CUDA image)"
        )
    import torch
    from transformers import BitsAndBytesConfig

    if precision == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)  # type: ignore[no-untyped-call]
    return BitsAndBytesConfig(  # type: ignore[no-untyped-call]
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
    )


def _eos_ids(model: Any, tokenizer: Any) -> tuple[int, ...]:
    ids: set[int] = set()
    for source in (
        model.generation_config.eos_token_id,
        model.config.eos_token_id,
        tokenizer.eos_token_id,
    ):
        if isinstance(source, int):
            ids.add(source)
        elif isinstance(source, list):
            ids.update(int(i) for i in source)
    return tuple(sorted(ids))
