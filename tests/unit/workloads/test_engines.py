"""Engine profiles: container arguments, precision rules and the default PromQL per engine."""

from __future__ import annotations

import pytest

from deepseek_operator.core.workloads.engines import (
    ENGINE_PROFILES,
    LLAMACPP,
    TRANSFORMERS,
    VLLM,
    container_args,
    container_env,
    engine_profile,
    load_query,
)


def test_each_engine_maps_its_own_metric_names_into_the_load_query() -> None:
    query = load_query(["llamacpp", "vllm"])
    assert (
        "label_replace(sum by (namespace, deployment, pool) (rate(vllm:generation_tokens_total"
        '[1m])), "part", "vllm/tokens", "", "")' in query
    )
    assert "sum by (namespace, deployment, pool) (vllm:num_requests_waiting)" in query
    assert "sum by (namespace, deployment, pool) (vllm:num_requests_running)" in query
    assert "max by (namespace, deployment, pool) (timestamp(vllm:generation_tokens_total))" in (
        query
    )
    assert "llamacpp:tokens_predicted_total" in query and "llamacpp:requests_deferred" in query
    assert "deepseek_server" not in query
    transformers = load_query(["transformers"])
    assert "deepseek_server_generation_tokens_total" in transformers
    assert "deepseek_server_queue_depth" in transformers
    assert "deepseek_server_running_requests" in transformers


def test_the_load_query_names_each_engine_once() -> None:
    assert load_query(["vllm", "vllm"]) == load_query(["vllm"])
    assert load_query([]) == ""


def test_transformers_args_start_this_projects_server() -> None:
    args = container_args(
        TRANSFORMERS,
        weights_path="/models/r1-7b",
        served_model_name="r1",
        precision="int8",
        kind="cpu",
    )
    assert args[0] == "serve"
    assert args[args.index("--device") + 1] == "cpu"
    assert args[args.index("--precision") + 1] == "int8"
    assert args[args.index("--port") + 1] == str(TRANSFORMERS.port)


def test_vllm_args_carry_tensor_parallelism_dtype_and_quantisation() -> None:
    args = container_args(
        VLLM,
        weights_path="/models/r1-70b",
        served_model_name="r1",
        precision="fp8",
        kind="gpu",
        tensor_parallel=4,
    )
    assert args[args.index("--tensor-parallel-size") + 1] == "4"
    assert args[args.index("--quantization") + 1] == "fp8"
    bf16 = container_args(
        VLLM, weights_path="/m", served_model_name="r1", precision="bf16", kind="gpu"
    )
    assert bf16[bf16.index("--dtype") + 1] == "bfloat16"
    assert "--quantization" not in bf16


def test_llamacpp_args_enable_metrics_and_gpu_offload_only_on_gpu() -> None:
    cpu = container_args(
        LLAMACPP,
        weights_path="/m/r1.Q8_0.gguf",
        served_model_name="r1",
        precision="int8",
        kind="cpu",
    )
    gpu = container_args(
        LLAMACPP,
        weights_path="/m/r1.Q8_0.gguf",
        served_model_name="r1",
        precision="int8",
        kind="gpu",
    )
    assert "--metrics" in cpu and "--n-gpu-layers" not in cpu
    assert "--n-gpu-layers" in gpu


@pytest.mark.parametrize(
    ("engine", "precision", "kind", "tensor_parallel", "field"),
    [
        ("vllm", "fp32", "gpu", 1, "precision"),
        ("vllm", "bf16", "cpu", 1, "precision"),
        ("transformers", "fp16", "cpu", 1, "precision"),
        ("transformers", "bf16", "gpu", 2, "tensorParallel"),
        ("llamacpp", "int8", "cpu", 0, "tensorParallel"),
    ],
)
def test_impossible_combinations_name_the_field(
    engine: str, precision: str, kind: str, tensor_parallel: int, field: str
) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        container_args(
            engine_profile(engine),
            weights_path="/m",
            served_model_name="r1",
            precision=precision,  # type: ignore[arg-type]
            kind=kind,  # type: ignore[arg-type]
            tensor_parallel=tensor_parallel,
        )


def test_unknown_engine_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="transformers, vllm, llamacpp"):
        engine_profile("tgi")


def test_profiles_have_probe_paths_and_pinned_images() -> None:
    for profile in ENGINE_PROFILES.values():
        assert profile.readiness_path.startswith("/") and profile.metrics_path == "/metrics"
        for image in (profile.image, profile.gpu_image):
            assert ":" in image and not image.endswith(":latest"), image


def test_only_this_projects_server_gets_its_metric_labels_from_the_environment() -> None:
    assert container_env(TRANSFORMERS, deployment="r1", pool="cpu-xeon") == {
        "HF_HUB_OFFLINE": "1",
        "DEEPSEEK_DEPLOYMENT": "r1",
        "DEEPSEEK_POOL": "cpu-xeon",
    }
    assert container_env(VLLM, deployment="r1", pool="a100") == {"HF_HUB_OFFLINE": "1"}
    assert container_env(LLAMACPP, deployment="r1", pool="cpu-xeon") == {}
