"""A real config served with default flags: context and KV cache sized from the memory there is,
and a request the memory cannot hold refused with the flag to change and exit status 2."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from deepseek_operator.serving.loading import load
from deepseek_operator.serving.memory import (
    DEFAULT_KV_TOKENS_PER_SEQUENCE,
    DEFAULT_MAX_MODEL_LEN,
    KV_FOOTPRINT_FACTOR,
    KV_MEMORY_FRACTION,
    KV_PAGE_TOKENS,
    MemoryPlanError,
    checkpoint_shape,
    plan_memory,
)
from deepseek_operator.serving.settings import ServerSettings
from deepseek_operator.serving.testing import TinyModelSpec, build_tiny_model

from .conftest import run_serve

pytestmark = pytest.mark.serving

LONG_CONTEXT = 1_048_576
"""As long as `--max-model-len` allows: a KV cache for 1024 such sequences of the tiny model
needs 2 TB (2 layers x 2 KV heads x 16 dims x K and V x 4 bytes = 1 KiB per token)."""


@pytest.fixture(scope="module")
def long_context_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(
        tmp_path_factory.mktemp("long") / "tiny-long", TinyModelSpec(context=LONG_CONTEXT)
    )


def test_default_context_comes_from_memory_not_max_position_embeddings(
    long_context_weights: Path,
) -> None:
    shape = checkpoint_shape(long_context_weights)
    settings = ServerSettings(
        weights=long_context_weights, served_model_name="m", max_batch_size=32
    )
    assert shape.kv_bytes_per_token("fp32") == 2 * 2 * 2 * 16 * 4
    per_token = math.ceil(shape.kv_bytes_per_token("fp32") * KV_FOOTPRINT_FACTOR)
    weights = shape.weight_bytes("fp32")
    # plenty of memory: a shared cache of 512 tokens per slot, not the trained context per slot
    plan = plan_memory(settings, shape, weights + 512 * 2**20 + 64 * 2**30)
    assert plan.kv_cache_blocks * KV_PAGE_TOKENS == 32 * DEFAULT_KV_TOKENS_PER_SEQUENCE
    assert plan.context_length == DEFAULT_MAX_MODEL_LEN < LONG_CONTEXT
    # 20 MiB left after the weights and the runtime reserve: the cache shrinks to its budget
    available = weights + 512 * 2**20 + 2**20 * 20
    budget = KV_MEMORY_FRACTION * (available - weights - 512 * 2**20 - int(0.1 * weights))
    plan = plan_memory(settings, shape, available)
    assert plan.kv_cache_bytes <= budget
    assert (plan.kv_cache_blocks + 1) * KV_PAGE_TOKENS * per_token > budget
    assert plan.context_length == min(DEFAULT_MAX_MODEL_LEN, plan.kv_cache_blocks * KV_PAGE_TOKENS)


def test_loading_on_this_machine_sizes_the_context_and_cache(long_context_weights: Path) -> None:
    loaded = load(ServerSettings(weights=long_context_weights, served_model_name="m"))
    assert KV_PAGE_TOKENS <= loaded.context_length <= DEFAULT_MAX_MODEL_LEN
    assert loaded.kv_cache_blocks is not None
    assert loaded.kv_cache_blocks * KV_PAGE_TOKENS >= loaded.context_length


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        ({"max_model_len": LONG_CONTEXT, "max_batch_size": 1024}, "--max-model-len"),
        ({"kv_cache_blocks": 4_000_000}, "--kv-cache-blocks"),
        ({"max_batch_size": 1024}, "--max-batch-size"),
    ],
)
def test_what_does_not_fit_names_the_flag_and_the_numbers(
    long_context_weights: Path, flags: dict[str, int], named: str
) -> None:
    shape = checkpoint_shape(long_context_weights)
    settings = ServerSettings(weights=long_context_weights, served_model_name="m", **flags)  # type: ignore[arg-type]
    # 600 MB: the weights fit, the cache asked for does not
    with pytest.raises(MemoryPlanError, match=f"^{named}:") as caught:
        plan_memory(settings, shape, 600 * 2**20)
    assert "GB" in str(caught.value) and "available" in str(caught.value)


def test_weights_larger_than_memory_name_the_precision(long_context_weights: Path) -> None:
    shape = checkpoint_shape(long_context_weights)
    settings = ServerSettings(weights=long_context_weights, served_model_name="m")
    with pytest.raises(MemoryPlanError, match=r"^--precision:.*int8"):
        plan_memory(settings, shape, 100 * 2**20)


def test_serve_exits_2_with_the_flag_when_the_cache_cannot_fit(long_context_weights: Path) -> None:
    result = run_serve(
        "--weights",
        str(long_context_weights),
        "--max-model-len",
        str(LONG_CONTEXT),
        "--max-batch-size",
        "1024",
    )
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert "--max-model-len" in line and "--max-batch-size" in line and "available" in line
    assert "Traceback" not in result.stderr


def test_int8_quantises_in_place_per_channel(random_weights: Path) -> None:
    import torch

    loaded = load(ServerSettings(weights=random_weights, served_model_name="m", precision="int8"))
    reference = load(ServerSettings(weights=random_weights, served_model_name="m"))
    quantised = dict(loaded.model.named_modules())
    checked = 0
    for name, module in reference.model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        int8 = quantised[name]
        assert not isinstance(int8, torch.nn.Linear)
        assert int8.weight_int8.dtype == torch.int8
        assert int8.scales.shape == (module.out_features,)  # one scale per output channel
        restored = int8.weight_int8.float() * int8.scales.float()[:, None]
        row_max = module.weight.abs().amax(dim=1, keepdim=True)
        assert (restored - module.weight).abs().le(row_max / 127 * 0.6 + 1e-6).all()
        checked += 1
    assert checked == 2 * 7 + 1
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        full = reference.model(ids).logits.float()
        eight = loaded.model(ids).logits.float()
    assert ((eight - full).norm() / full.norm()).item() < 0.05
