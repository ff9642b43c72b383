"""Fit: weight and KV-cache bytes from model configs, and devices per replica."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepseek_operator.core.costing.catalog import HARDWARE, MODELS, PRECISIONS_BY_SIZE
from deepseek_operator.core.costing.fit import (
    FitRequest,
    fit_replica,
    kv_cache_bytes,
    max_concurrent_sequences,
    tensor_parallel_degrees,
    weights_bytes,
)

SETTINGS = settings(deadline=None, max_examples=60)


def test_article_7b_weights_are_14_gb_at_fp16_and_7_gb_at_int8() -> None:
    assert weights_bytes(7.0e9, "fp16") == 14e9
    assert weights_bytes(7.0e9, "int8") == 7e9


def test_qwen_7b_distill_needs_15_2_gb_at_fp16() -> None:
    model = MODELS["r1-distill-qwen-7b"]
    assert weights_bytes(model.parameters, "fp16") / 1e9 == pytest.approx(15.24)


@pytest.mark.parametrize(
    ("name", "kib_per_token"),
    [
        ("r1-distill-qwen-1.5b", 28),  # 2 x 28 layers x 2 kv heads x 128 x 2 B
        ("r1-distill-qwen-7b", 56),
        ("r1-distill-llama-8b", 128),
        ("r1-distill-qwen-14b", 192),
        ("r1-distill-qwen-32b", 256),
        ("r1-distill-llama-70b", 320),
        ("deepseek-r1", 61 * 576 * 2 / 1024),  # MLA latent: 61 layers x 576 x 2 B
    ],
)
def test_kv_bytes_per_token_follow_the_configs(name: str, kib_per_token: float) -> None:
    assert MODELS[name].kv_bytes_per_token() / 1024 == pytest.approx(kib_per_token)


def test_70b_bf16_does_not_fit_one_80gb_gpu_but_fits_tensor_parallel_2_at_short_context() -> None:
    a100 = HARDWARE["a100-80gb-sxm"]
    request = FitRequest(MODELS["r1-distill-llama-70b"], "bf16", context_tokens=4096)
    one_gpu = a100.memory_bytes * request.memory_utilisation
    assert weights_bytes(request.model.parameters, "bf16") > one_gpu
    assert fit_replica(request, a100).devices == 2


def test_70b_bf16_at_long_context_and_many_sequences_needs_more_gpus() -> None:
    request = FitRequest(
        MODELS["r1-distill-llama-70b"],
        "bf16",
        context_tokens=32_768,
        concurrent_sequences=8,
    )
    assert fit_replica(request, HARDWARE["a100-80gb-sxm"]).devices == 4


def test_r1_671b_does_not_fit_a_4090_pool_even_at_int4_and_says_why() -> None:
    for precision in ("fp8", "int4"):
        fit = fit_replica(FitRequest(MODELS["deepseek-r1"], precision), HARDWARE["rtx-4090"])
        assert not fit.fits
        assert fit.devices == 0
        assert "does not fit" in fit.reason
        assert "rtx-4090" in fit.reason
        assert fit.needed_bytes > fit.usable_bytes


def test_r1_671b_fp8_fits_one_mi300x_node() -> None:
    fit = fit_replica(FitRequest(MODELS["deepseek-r1"], "fp8"), HARDWARE["mi300x"])
    assert fit.fits and fit.devices in (4, 8)


def test_7b_fits_one_4090() -> None:
    fit = fit_replica(FitRequest(MODELS["r1-distill-qwen-7b"], "bf16"), HARDWARE["rtx-4090"])
    assert fit.devices == 1


def test_cpu_replica_fits_in_one_socket_of_ram() -> None:
    fit = fit_replica(FitRequest(MODELS["r1-distill-qwen-7b"], "bf16"), HARDWARE["xeon-8380"])
    assert fit.devices == 1


def test_tensor_parallel_degrees_are_powers_of_two_within_a_node() -> None:
    assert tensor_parallel_degrees(8) == [1, 2, 4, 8]
    assert tensor_parallel_degrees(2) == [1, 2]
    assert tensor_parallel_degrees(6) == [1, 2, 4]


def test_spare_memory_becomes_concurrent_sequences() -> None:
    request = FitRequest(MODELS["r1-distill-qwen-7b"], "bf16", context_tokens=4096)
    fit = fit_replica(request, HARDWARE["rtx-4090"])
    sequences = max_concurrent_sequences(fit, request)
    per_sequence = kv_cache_bytes(request.model, 4096)
    assert sequences >= 2
    assert fit.needed_bytes + (sequences - 1) * per_sequence <= fit.usable_bytes
    assert fit.needed_bytes + sequences * per_sequence > fit.usable_bytes


models = st.sampled_from(sorted(MODELS))
hardware = st.sampled_from(sorted(HARDWARE))
contexts = st.integers(min_value=1, max_value=131_072)
sequences = st.integers(min_value=1, max_value=64)


@SETTINGS
@given(models, hardware, contexts, sequences)
def test_whatever_fits_at_fp16_fits_at_int8_on_no_more_devices(
    model: str, hw: str, context: int, n: int
) -> None:
    fp16 = fit_replica(FitRequest(MODELS[model], "fp16", context, n), HARDWARE[hw])
    int8 = fit_replica(FitRequest(MODELS[model], "int8", context, n), HARDWARE[hw])
    if fp16.fits:
        assert int8.fits
        assert int8.devices <= fp16.devices


@SETTINGS
@given(models, hardware, contexts, sequences, st.floats(min_value=1.0, max_value=8.0))
def test_more_memory_never_makes_a_model_stop_fitting(
    model: str, hw: str, context: int, n: int, growth: float
) -> None:
    from dataclasses import replace

    small = HARDWARE[hw]
    large = replace(small, memory_gib=small.memory_gib * growth)
    for precision in PRECISIONS_BY_SIZE:
        request = FitRequest(MODELS[model], precision, context, n)
        before = fit_replica(request, small)
        after = fit_replica(request, large)
        if before.fits:
            assert after.fits
            assert after.devices <= before.devices


@SETTINGS
@given(models, st.integers(min_value=1, max_value=200_000), st.integers(min_value=2, max_value=16))
def test_kv_cache_grows_linearly_in_context(model: str, context: int, factor: int) -> None:
    spec = MODELS[model]
    assert kv_cache_bytes(spec, context * factor) == pytest.approx(
        factor * kv_cache_bytes(spec, context)
    )
    assert kv_cache_bytes(spec, context + 1) - kv_cache_bytes(spec, context) == pytest.approx(
        spec.kv_bytes_per_token()
    )


def test_int4_weights_are_half_a_byte_per_parameter() -> None:
    assert weights_bytes(7.0e9, "int4") == 3.5e9
    assert weights_bytes(7.0e9, "fp32") == 28e9


def test_runtime_overhead_counts_per_device_and_can_decide_the_fit() -> None:
    from dataclasses import replace

    request = FitRequest(MODELS["r1-distill-qwen-7b"], "bf16", context_tokens=4096)
    weights = weights_bytes(request.model.parameters, "bf16")
    kv = kv_cache_bytes(request.model, 4096)
    # Room for weights and KV cache with half the 1 GB runtime overhead to spare: too little.
    tight_gib = (weights + kv + 0.5e9) / request.memory_utilisation / 2**30
    tight = replace(HARDWARE["rtx-4090"], memory_gib=tight_gib)
    fit = fit_replica(request, tight)
    assert fit.devices == 2
    assert fit.overhead_bytes == pytest.approx(2 * 1e9)
    assert fit.needed_bytes == pytest.approx(weights + kv + 2e9)
