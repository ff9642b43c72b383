"""What the operator needs to know about each inference engine to render and watch its pods.

Pure data: container image and arguments, ports and probe paths, the precisions each engine can
run on a GPU or a CPU, and the engine's own metric names mapped to the two series the planner
steers by (output tokens per second and queue depth). The operator renders pods from this
without importing torch or any serving code.

Metric names come from each engine's `/metrics` output: vLLM's `vllm:*` series (its
`metrics.md` and production-stack dashboards), llama.cpp's `llamacpp:*` series (served with
`--metrics`), and this project's own model server (`deepseek_operator.serving.metrics`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from deepseek_operator.api.vocabulary import Engine, HardwareKind, Precision

DEPLOYMENT_LABEL_ENV = "DEEPSEEK_DEPLOYMENT"
"""Environment variable the model server reads for the `deployment` label on its metrics."""
POOL_LABEL_ENV = "DEEPSEEK_POOL"
"""Environment variable the model server reads for the `pool` label on its metrics."""

RATE_WINDOW_SECONDS = 60
"""Window of `rate()` in the default queries: four 15 s scrapes, smooth but still quick."""
RATE_WINDOW = "1m"
"""The same window as PromQL writes it."""


@dataclass(frozen=True)
class EngineMetrics:
    """The engine's names for the series the operator and dashboards read."""

    generated_tokens_total: str
    prompt_tokens_total: str
    queue_depth: str
    running_requests: str
    time_to_first_token_seconds: str | None
    e2e_latency_seconds: str | None


@dataclass(frozen=True)
class EngineProfile:
    """How to run one engine in a pod and how to read its load."""

    name: Engine
    image: str
    gpu_image: str
    port: int
    liveness_path: str
    readiness_path: str
    metrics_path: str
    precisions: Mapping[HardwareKind, tuple[Precision, ...]]
    metrics: EngineMetrics
    labels_from_server: bool
    """True when the server itself labels its series with `deployment` and `pool`; otherwise the
    scrape configuration must add them (e.g. a PodMonitor relabelling the pod's labels)."""
    supports_tensor_parallel: bool
    notes: str

    def supports(self, kind: HardwareKind, precision: Precision) -> bool:
        return precision in self.precisions.get(kind, ())

    def image_for(self, kind: HardwareKind) -> str:
        return self.gpu_image if kind == "gpu" else self.image


LOAD_GROUPING = ("namespace", "deployment", "pool")
"""Labels the load query groups by: the engines' series must carry them (see `labels_from_server`)."""
PART_LABEL = "part"
"""Label the load query adds to tell its parts apart: `<engine>/<part>`."""
TOKENS, RUNNING, QUEUE, AT = "tokens", "running", "queue", "at"


def load_query(engines: Iterable[str]) -> str:
    """One PromQL expression that reads every deployment's load on these engines at once.

    Per engine, four parts grouped by namespace, deployment and pool, each marked with a `part`
    label `<engine>/<part>` and joined with `or`: `tokens` (output tokens/s, the rate of the
    generated-tokens counter over `RATE_WINDOW`), `running` (requests generating), `queue`
    (requests waiting), and `at` (the newest scrape of the token counter, for staleness)."""
    grouping = ", ".join(LOAD_GROUPING)
    parts = []
    for engine in sorted(set(engines)):
        names = engine_profile(engine).metrics
        tokens = names.generated_tokens_total
        expressions = {
            TOKENS: f"sum by ({grouping}) (rate({tokens}[{RATE_WINDOW}]))",
            RUNNING: f"sum by ({grouping}) ({names.running_requests})",
            QUEUE: f"sum by ({grouping}) ({names.queue_depth})",
            AT: f"max by ({grouping}) (timestamp({tokens}))",
        }
        parts += [
            f'label_replace({expression}, "{PART_LABEL}", "{engine}/{part}", "", "")'
            for part, expression in expressions.items()
        ]
    return " or ".join(parts)


def container_args(
    profile: EngineProfile,
    *,
    weights_path: str,
    served_model_name: str,
    precision: Precision,
    kind: HardwareKind,
    tensor_parallel: int = 1,
    context_length: int | None = None,
    max_batch_size: int | None = None,
) -> list[str]:
    """The container arguments that start `profile`'s server on `weights_path`.

    Raises ValueError naming the field when the combination cannot run on this engine.
    """
    if not profile.supports(kind, precision):
        allowed = ", ".join(profile.precisions.get(kind, ())) or "none"
        raise ValueError(
            f"precision: {profile.name} cannot run {precision} on a {kind} pool (allowed: {allowed})"
        )
    if tensor_parallel < 1:
        raise ValueError(f"tensorParallel: must be at least 1, got {tensor_parallel}")
    if tensor_parallel > 1 and not profile.supports_tensor_parallel:
        raise ValueError(
            f"tensorParallel: {profile.name} serves one device per replica, got {tensor_parallel}"
        )
    builder = _ARG_BUILDERS[profile.name]
    return builder(
        weights_path=weights_path,
        served_model_name=served_model_name,
        precision=precision,
        kind=kind,
        tensor_parallel=tensor_parallel,
        context_length=context_length,
        max_batch_size=max_batch_size,
        port=profile.port,
    )


def container_env(profile: EngineProfile, *, deployment: str, pool: str) -> dict[str, str]:
    """Environment for the engine's container: metric labels where the server reads them, and
    the Hugging Face libraries kept offline (weights come from the mounted volume only)."""
    env = {"HF_HUB_OFFLINE": "1"} if profile.name in ("transformers", "vllm") else {}
    if profile.labels_from_server:
        env[DEPLOYMENT_LABEL_ENV] = deployment
        env[POOL_LABEL_ENV] = pool
    return env


def _transformers_args(
    *,
    weights_path: str,
    served_model_name: str,
    precision: Precision,
    kind: HardwareKind,
    tensor_parallel: int,
    context_length: int | None,
    max_batch_size: int | None,
    port: int,
) -> list[str]:
    args = [
        "serve",
        "--weights",
        weights_path,
        "--served-model-name",
        served_model_name,
        "--host",
        "0.0.0.0",  # inside the pod; the Service routes to it
        "--port",
        str(port),
        "--device",
        "cuda" if kind == "gpu" else "cpu",
        "--precision",
        precision,
    ]
    if context_length is not None:
        args += ["--max-model-len", str(context_length)]
    if max_batch_size is not None:
        args += ["--max-batch-size", str(max_batch_size)]
    return args


_VLLM_QUANTIZATION: Mapping[str, Sequence[str]] = {
    # fp8: computed on Ada/Hopper, weight-only (Marlin) on Ampere.
    "fp8": ("--quantization", "fp8"),
    # int8: in-flight bitsandbytes quantisation of a bf16 checkpoint.
    "int8": ("--quantization", "bitsandbytes"),
    # int4: a pre-quantised AWQ/GPTQ checkpoint; vLLM reads the method from its config.
    "int4": (),
}
_VLLM_DTYPE: Mapping[str, str] = {"bf16": "bfloat16", "fp16": "float16"}


def _vllm_args(
    *,
    weights_path: str,
    served_model_name: str,
    precision: Precision,
    kind: HardwareKind,
    tensor_parallel: int,
    context_length: int | None,
    max_batch_size: int | None,
    port: int,
) -> list[str]:
    args = [
        "--model",
        weights_path,
        "--served-model-name",
        served_model_name,
        "--host",
        "0.0.0.0",
        "--port",
        str(port),
        "--tensor-parallel-size",
        str(tensor_parallel),
    ]
    if precision in _VLLM_DTYPE:
        args += ["--dtype", _VLLM_DTYPE[precision]]
    args += list(_VLLM_QUANTIZATION.get(precision, ()))
    if context_length is not None:
        args += ["--max-model-len", str(context_length)]
    if max_batch_size is not None:
        args += ["--max-num-seqs", str(max_batch_size)]
    return args


def _llamacpp_args(
    *,
    weights_path: str,
    served_model_name: str,
    precision: Precision,
    kind: HardwareKind,
    tensor_parallel: int,
    context_length: int | None,
    max_batch_size: int | None,
    port: int,
) -> list[str]:
    # The precision is the GGUF file's own (F16, Q8_0, Q4_K_M): weights_path names that file.
    args = [
        "--model",
        weights_path,
        "--alias",
        served_model_name,
        "--host",
        "0.0.0.0",
        "--port",
        str(port),
        "--metrics",
    ]
    if context_length is not None:
        args += ["--ctx-size", str(context_length)]
    if max_batch_size is not None:
        args += ["--parallel", str(max_batch_size)]
    if kind == "gpu":
        args += ["--n-gpu-layers", "999"]
    return args


_ARG_BUILDERS = {
    "transformers": _transformers_args,
    "vllm": _vllm_args,
    "llamacpp": _llamacpp_args,
}


TRANSFORMERS = EngineProfile(
    name="transformers",
    image="deepseek-operator/model-server:0.1.0",
    gpu_image="deepseek-operator/model-server:0.1.0-cuda",
    port=8000,
    liveness_path="/health/live",
    readiness_path="/health/ready",
    metrics_path="/metrics",
    precisions={"cpu": ("fp32", "bf16", "int8"), "gpu": ("fp16", "bf16", "int8", "int4")},
    metrics=EngineMetrics(
        generated_tokens_total="deepseek_server_generation_tokens_total",
        prompt_tokens_total="deepseek_server_prompt_tokens_total",
        queue_depth="deepseek_server_queue_depth",
        running_requests="deepseek_server_running_requests",
        time_to_first_token_seconds="deepseek_server_time_to_first_token_seconds",
        e2e_latency_seconds="deepseek_server_e2e_request_latency_seconds",
    ),
    labels_from_server=True,
    supports_tensor_parallel=False,
    notes=(
        "This project's server (images/model-server): transformers continuous batching, "
        "ready only after a warm-up generation, drains in-flight requests on SIGTERM."
    ),
)

VLLM = EngineProfile(
    name="vllm",
    image="vllm/vllm-openai:v0.18.2",
    gpu_image="vllm/vllm-openai:v0.18.2",
    port=8000,
    liveness_path="/health",
    readiness_path="/health",
    metrics_path="/metrics",
    precisions={"gpu": ("bf16", "fp16", "fp8", "int8", "int4")},
    metrics=EngineMetrics(
        generated_tokens_total="vllm:generation_tokens_total",
        prompt_tokens_total="vllm:prompt_tokens_total",
        queue_depth="vllm:num_requests_waiting",
        running_requests="vllm:num_requests_running",
        time_to_first_token_seconds="vllm:time_to_first_token_seconds",
        e2e_latency_seconds="vllm:e2e_request_latency_seconds",
    ),
    labels_from_server=False,
    supports_tensor_parallel=True,
    notes=(
        "vLLM's OpenAI server: paged attention and continuous batching on GPUs, tensor "
        "parallelism across a node's GPUs; /health answers only once the engine is up."
    ),
)

LLAMACPP = EngineProfile(
    name="llamacpp",
    image="ghcr.io/ggml-org/llama.cpp:server-b8840",
    gpu_image="ghcr.io/ggml-org/llama.cpp:server-cuda-b8840",
    port=8080,
    liveness_path="/health",
    readiness_path="/health",
    metrics_path="/metrics",
    precisions={
        "cpu": ("fp32", "fp16", "bf16", "int8", "int4"),
        "gpu": ("fp16", "bf16", "int8", "int4"),
    },
    metrics=EngineMetrics(
        generated_tokens_total="llamacpp:tokens_predicted_total",
        prompt_tokens_total="llamacpp:prompt_tokens_total",
        queue_depth="llamacpp:requests_deferred",
        running_requests="llamacpp:requests_processing",
        time_to_first_token_seconds=None,
        e2e_latency_seconds=None,
    ),
    labels_from_server=False,
    supports_tensor_parallel=False,
    notes=(
        "llama.cpp's server on a GGUF file (Q8_0 = int8, Q4_K_M = int4): the quantised CPU "
        "path; /health is 503 while the model loads. No latency histograms in its metrics."
    ),
)

ENGINE_PROFILES: Mapping[Engine, EngineProfile] = {
    "transformers": TRANSFORMERS,
    "vllm": VLLM,
    "llamacpp": LLAMACPP,
}


def engine_profile(name: str) -> EngineProfile:
    """The profile called `name`; a ValueError lists the known engines otherwise."""
    for key, profile in ENGINE_PROFILES.items():
        if key == name:
            return profile
    raise ValueError(f"engine: unknown engine {name!r} (known: {', '.join(ENGINE_PROFILES)})")
