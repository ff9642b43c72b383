"""The server's Prometheus series: the load the operator steers by and the latency users feel.

Names match `deepseek_operator.core.workloads.engines.TRANSFORMERS.metrics`, which is where the operator's
default PromQL reads them. Every series carries `deployment` and `pool` (from the pod's
environment) so one query covers all replicas of a deployment, per pool or in total.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from deepseek_operator.core.workloads.engines import TRANSFORMERS

_NAMES = TRANSFORMERS.metrics
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def _strip_total(name: str) -> str:
    # prometheus_client appends `_total` to counters itself.
    return name.removesuffix("_total")


class ServerMetrics:
    def __init__(self, deployment: str, pool: str) -> None:
        self.registry = CollectorRegistry()
        labels = ["deployment", "pool"]
        self._labels = {"deployment": deployment, "pool": pool}
        self.prompt_tokens = Counter(
            _strip_total(_NAMES.prompt_tokens_total),
            "Prompt tokens of requests admitted to the engine.",
            labels,
            registry=self.registry,
        ).labels(**self._labels)
        self.generated_tokens = Counter(
            _strip_total(_NAMES.generated_tokens_total),
            "Tokens generated (the output tokens per second the operator sizes pools by).",
            labels,
            registry=self.registry,
        ).labels(**self._labels)
        self._requests = Counter(
            "deepseek_server_requests",
            "Finished HTTP requests by endpoint and status code.",
            [*labels, "endpoint", "status"],
            registry=self.registry,
        )
        self.time_to_first_token = Histogram(
            _NAMES.time_to_first_token_seconds or "deepseek_server_time_to_first_token_seconds",
            "Seconds from admission to the first generated token.",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        ).labels(**self._labels)
        self.e2e_latency = Histogram(
            _NAMES.e2e_latency_seconds or "deepseek_server_e2e_request_latency_seconds",
            "Seconds from admission to the last generated token.",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        ).labels(**self._labels)
        self.queue_depth = Gauge(
            _NAMES.queue_depth,
            "Requests admitted but not yet generating (waiting for a batch slot or prefill).",
            labels,
            registry=self.registry,
        ).labels(**self._labels)
        self.running = Gauge(
            _NAMES.running_requests,
            "Requests generating right now: the running batch size.",
            labels,
            registry=self.registry,
        ).labels(**self._labels)
        self.batch_size = Histogram(
            "deepseek_server_batch_size",
            "Sequences that advanced together in one decoding step.",
            labels,
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        ).labels(**self._labels)
        self.in_flight = Gauge(
            "deepseek_server_requests_in_flight",
            "Generation requests accepted and not yet answered in full.",
            labels,
            registry=self.registry,
        ).labels(**self._labels)
        self.ready = Gauge(
            "deepseek_server_ready",
            "1 once the weights are loaded and a warm-up generation ran; 0 while loading or draining.",
            labels,
            registry=self.registry,
        ).labels(**self._labels)

    def count_request(self, endpoint: str, status: int) -> None:
        self._requests.labels(**self._labels, endpoint=endpoint, status=str(status)).inc()
