"""Load weights from a local directory at the requested precision; never reach the Hub.

Pods get their weights from a volume the operator mounts; a server that silently downloads
tens of gigabytes at start-up would make readiness times and egress unpredictable, so the Hub
is switched off before transformers is imported and every load is `local_files_only`.
"""

from __future__ import annotations

import functools
import gc
import importlib.util
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepseek_operator.serving.memory import (
    KV_PAGE_TOKENS,
    available_memory_bytes,
    checkpoint_shape,
    plan_memory,
    safetensors_headers,
)
from deepseek_operator.serving.settings import ServerSettings, SettingsError

log = logging.getLogger(__name__)

LARGE_TENSOR_BYTES = 256 * 2**20
"""Checkpoint tensors above this are quantised from the file in slices (read whole, the 1.5B
model's output embedding would add 0.47 GB to the peak at int8)."""


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
    kv_cache_blocks: int | None = None
    """Paged KV cache size; None lets transformers size it (CUDA)."""


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
    plan = None
    if settings.device == "cpu":
        # Sized before a weight is read: a configuration that cannot fit fails at once.
        plan = plan_memory(settings, checkpoint_shape(settings.weights), available_memory_bytes())
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if settings.device == "cuda" and not torch.cuda.is_available():
        raise SettingsError("--device: cuda was requested but torch sees no CUDA device")
    tokenizer = AutoTokenizer.from_pretrained(settings.weights, local_files_only=True)
    model: Any
    if settings.device == "cpu":
        model = load_cpu_model(settings.weights, settings.precision)
    else:
        kwargs: dict[str, Any] = {"local_files_only": True, "attn_implementation": "sdpa"}
        if settings.precision in ("int8", "int4"):
            kwargs["quantization_config"] = _bitsandbytes_config(settings.precision)
            kwargs["device_map"] = {"": 0}
            kwargs["dtype"] = torch.bfloat16
        else:
            kwargs["dtype"] = _torch_dtype(settings.precision)
        model = AutoModelForCausalLM.from_pretrained(settings.weights, **kwargs)
        if settings.precision not in ("int8", "int4"):
            model = model.to("cuda")
    model.eval()
    config = model.config.get_text_config()
    trained = int(config.max_position_embeddings)
    if settings.max_model_len is not None and settings.max_model_len > trained:
        raise SettingsError(
            f"--max-model-len: {settings.max_model_len} is longer than the model's context "
            f"({trained} tokens, max_position_embeddings in config.json)"
        )
    resident, peak = _resident_and_peak_bytes()
    if resident:
        # the loader's own memory footprint, before the KV cache is allocated: what the
        # benchmark holds against the weights (benchmarks/throughput_model.py)
        log.info(
            "weights loaded at %s: %.2f GB resident, peak %.2f GB while loading",
            settings.precision,
            resident / 1e9,
            peak / 1e9,
        )
    if plan is not None:
        log.info(
            "context %d tokens, KV cache %d blocks of %d tokens (%.2f GB; sized from %s)",
            plan.context_length,
            plan.kv_cache_blocks,
            KV_PAGE_TOKENS,
            plan.kv_cache_bytes / 1e9,
            plan.basis,
        )
    context_length = plan.context_length if plan else settings.max_model_len or trained
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        context_length=context_length,
        eos_token_ids=_eos_ids(model, tokenizer),
        device=settings.device,
        precision=settings.precision,
        kv_cache_blocks=plan.kv_cache_blocks if plan else settings.kv_cache_blocks,
    )


def _resident_and_peak_bytes() -> tuple[int, int]:
    """VmRSS and VmHWM of this process (0, 0 where /proc is not Linux's)."""
    values = {"VmRSS": 0, "VmHWM": 0}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in values:
                values[key] = int(rest.split()[0]) * 1024  # in kB
    except (OSError, ValueError, IndexError):
        return 0, 0
    return values["VmRSS"], values["VmHWM"]


def load_cpu_model(directory: Path, precision: str) -> Any:
    """The model at `precision` on CPU, holding at most one checkpoint tensor beyond the result.

    Parameters are created empty, then each tensor is read from the safetensors files with plain
    reads (no memory map, so no file pages count against the process), converted to the target
    dtype, and, at int8, quantised at once: bf16 never passes through fp32, and int8 never holds
    the full-precision model. A checkpoint this cannot map one-to-one (`.bin` files, renamed
    keys) goes through transformers' loader instead, quantised in place afterwards.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    _return_large_blocks_to_the_system()
    dtype = _torch_dtype(precision)
    headers = safetensors_headers(directory)
    config = AutoConfig.from_pretrained(directory, local_files_only=True)
    with _empty_parameters():
        model = AutoModelForCausalLM.from_config(  # type: ignore[no-untyped-call]
            config, dtype=dtype, attn_implementation="sdpa"
        )
    expected = dict(model.named_parameters())  # tied parameters appear once
    if not headers or not set(expected) <= set(headers) | _tied_names(model):
        return _load_with_transformers(directory, precision)
    linears = {
        f"{name}.weight": module
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
    }
    tied = _tied_names(model)
    for name, info in headers.items():
        if name not in expected:
            continue  # e.g. a tied lm_head stored anyway, or buffers the model recomputes
        if precision == "int8" and name in linears and name not in tied:
            # a large matrix (the output embedding) is quantised a slice of rows at a time,
            # straight from the file; the others are read whole
            if info["data_offsets"][1] - info["data_offsets"][0] > LARGE_TENSOR_BYTES:
                rows = functools.partial(_read_tensor, info)
            else:
                rows = functools.partial(_slice_rows, _read_tensor(info))
            quantised = Int8Linear.from_rows(rows, [int(d) for d in info["shape"]], linears[name])
            _replace_module(model, name.removesuffix(".weight"), quantised)
        else:
            _set_parameter(model, name, _read_tensor(info).to(dtype))
    if tied:
        model.tie_weights()
    leftover = [n for n, p in model.named_parameters() if p.is_meta]
    leftover += [n for n, b in model.named_buffers() if b.is_meta]
    if leftover:
        raise WeightsError(f"--weights: {directory} has no tensor for {', '.join(leftover[:5])}")
    if (directory / "generation_config.json").is_file():
        model.generation_config = GenerationConfig.from_pretrained(directory, local_files_only=True)
    gc.collect()
    return model


def _return_large_blocks_to_the_system() -> None:
    """glibc serves blocks under a moving threshold (up to 32 MB) from its heap and keeps them
    there once freed; loading frees thousands of such temporaries between the blocks it keeps,
    and the holes add up to gigabytes. A fixed 1 MB threshold maps every tensor-sized block
    on its own, so a freed one goes back to the system at once."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt(-3, 2**20)  # M_MMAP_THRESHOLD (glibc)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to tune


def _load_with_transformers(directory: Path, precision: str) -> Any:
    from transformers import AutoModelForCausalLM

    dtype = _torch_dtype(precision)
    model = AutoModelForCausalLM.from_pretrained(
        directory, local_files_only=True, attn_implementation="sdpa", dtype=dtype
    )
    if precision == "int8":
        quantize_linear_layers_int8(model)
    return model


class _EmptyParameters:
    """Parameters are created on the meta device (no memory); buffers stay real, so values the
    model computes at construction (rotary frequencies) are right."""

    def __enter__(self) -> None:
        import torch

        self._original = torch.nn.Module.register_parameter
        original = self._original

        def register(module: Any, name: str, parameter: Any) -> None:
            original(module, name, parameter)
            if parameter is not None:
                kept = module._parameters[name]
                module._parameters[name] = type(kept)(
                    kept.to("meta"), requires_grad=kept.requires_grad
                )

        torch.nn.Module.register_parameter = register  # type: ignore[method-assign,assignment]

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.nn.Module.register_parameter = self._original  # type: ignore[method-assign]


def _empty_parameters() -> _EmptyParameters:
    return _EmptyParameters()


def _tied_names(model: Any) -> set[str]:
    """Parameters shared with another (a tied lm_head): the checkpoint may omit them."""
    config = model.config.get_text_config()
    if not getattr(config, "tie_word_embeddings", False):
        return set()
    output = model.get_output_embeddings()
    if output is None:
        return set()
    return {f"{name}.weight" for name, module in model.named_modules() if module is output}


_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
}


def _read_tensor(info: dict[str, Any], first_row: int = 0, end_row: int | None = None) -> Any:
    """One tensor (or rows [first_row, end_row) of it) read from its safetensors file into
    fresh memory."""
    import torch

    shape = [int(d) for d in info["shape"]]
    begin, end = info["data_offsets"]
    if end_row is not None:
        row_bytes = (end - begin) // max(shape[0], 1)
        end_row = min(end_row, shape[0])
        begin, end = begin + first_row * row_bytes, begin + end_row * row_bytes
        shape = [end_row - first_row, *shape[1:]]
    raw = torch.empty(end - begin, dtype=torch.uint8)
    with Path(info["file"]).open("rb") as file:
        file.seek(info["data_start"] + begin)
        view = memoryview(raw.numpy())  # type: ignore[arg-type]
        read = 0
        while read < len(view):
            got = file.readinto(view[read:])
            if not got:
                raise WeightsError(f"--weights: {info['file']} is truncated")
            read += got
    dtype = getattr(torch, _DTYPES[info["dtype"]])
    return raw.view(dtype).reshape(shape)


def _slice_rows(tensor: Any, start: int, stop: int) -> Any:
    return tensor[start:stop]


def _set_parameter(model: Any, name: str, tensor: Any) -> None:
    import torch

    owner_name, _, attribute = name.rpartition(".")
    owner = model.get_submodule(owner_name) if owner_name else model
    owner._parameters[attribute] = torch.nn.Parameter(tensor, requires_grad=False)


def _replace_module(model: Any, name: str, module: Any) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def quantize_linear_layers_int8(model: Any) -> Any:
    """Replace every nn.Linear (but a tied output embedding) by `Int8Linear`, in place, one at a
    time, freeing each original as it goes."""
    import torch

    tied = _tied_names(model)
    names = [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and f"{name}.weight" not in tied
    ]
    for name in names:
        linear = model.get_submodule(name)
        _replace_module(model, name, Int8Linear.from_weight(linear.weight.detach(), linear))
        del linear
    model.to(torch.bfloat16)  # what is left (embeddings, norms) computes in bf16
    gc.collect()
    return model


def _int8_linear_class() -> Any:
    import torch

    class _Int8Linear(torch.nn.Module):
        """int8 weights with one scale per output channel; activations stay in bf16.

        Weight-only quantisation (what torchao calls int8 weight-only): the matrix multiply is
        torch's `_weight_int8pack_mm`, which reads the int8 rows and scales them on the fly, so
        decoding reads half the bytes of bf16 and activations are never rounded to 8 bits.
        """

        SLICE_BYTES = 16 * 2**20

        def __init__(self, in_features: int, out_features: int, has_bias: bool) -> None:
            super().__init__()
            self.in_features = in_features
            self.out_features = out_features
            self.register_buffer("weight_int8", torch.empty(0, dtype=torch.int8))
            self.register_buffer("scales", torch.empty(0, dtype=torch.bfloat16))
            self.register_parameter("bias", None)

        @classmethod
        def from_weight(cls, weight: Any, linear: Any) -> Any:
            return cls.from_rows(functools.partial(_slice_rows, weight), list(weight.shape), linear)

        @classmethod
        def from_rows(
            cls, read_rows: Callable[[int, int], Any], shape: list[int], linear: Any
        ) -> Any:
            """Quantise the weight `read_rows(start, stop)` returns, a few thousand rows at a
            time, so no full-precision copy of the whole matrix is ever held."""
            out_features, in_features = shape
            module = cls(in_features, out_features, linear.bias is not None)
            quantised = torch.empty((out_features, in_features), dtype=torch.int8)
            scales = torch.empty(out_features, dtype=torch.float32)
            # 16 MB slices at fp32, rounded in place: the int8 loading peak is the runtime, the
            # weights and about two slices (the runtime alone is 0.4x the 1.5B model's int8
            # weights, so every transient counts against the 1.5x bound)
            step = max(1, cls.SLICE_BYTES // (4 * in_features))
            for start in range(0, out_features, step):
                rows = read_rows(start, start + step).to(torch.float32, copy=True)
                # the scale is rounded to bf16 (what the kernel multiplies by) before the rows
                # are divided by it, so the rounding does not bias every weight of a row
                scale = (rows.abs().amax(dim=1).clamp(min=1e-12) / 127.0).bfloat16().float()
                rows.div_(scale[:, None]).round_().clamp_(-127, 127)
                quantised[start : start + len(rows)] = rows
                scales[start : start + len(rows)] = scale
                del rows
            module.weight_int8 = quantised
            module.scales = scales.to(torch.bfloat16)
            if linear.bias is not None and not linear.bias.is_meta:
                module.bias = torch.nn.Parameter(
                    linear.bias.detach().to(torch.bfloat16), requires_grad=False
                )
            return module

        def forward(self, x: Any) -> Any:
            shape = x.shape
            flat = x.reshape(-1, shape[-1]).to(torch.bfloat16)
            weight: Any = self.weight_int8
            scales: Any = self.scales
            bias: Any = self.bias
            out = torch._weight_int8pack_mm(flat, weight, scales)
            if bias is not None:
                out = out + bias
            return out.reshape(*shape[:-1], self.out_features)

        def extra_repr(self) -> str:
            return f"in_features={self.in_features}, out_features={self.out_features}, int8 per-channel"

    return _Int8Linear


class _LazyInt8Linear:
    """`Int8Linear.from_weight(...)` without importing torch when this module is imported."""

    _cls: Any = None

    def __getattr__(self, name: str) -> Any:
        if _LazyInt8Linear._cls is None:
            _LazyInt8Linear._cls = _int8_linear_class()
        return getattr(_LazyInt8Linear._cls, name)


Int8Linear: Any = _LazyInt8Linear()


def _torch_dtype(precision: str) -> Any:
    import torch

    return {
        "fp32": torch.float32,
        "bf16": torch.bfloat16,
        "fp16": torch.float16,
        "int8": torch.bfloat16,  # CPU int8: int8 linear weights, everything else bf16
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
