"""The operator's own Prometheus metrics, served on `/metrics` by `deepseek-operator run`.

Labels follow OpenCost-style showback: every per-deployment series carries `namespace` and
`deployment`, and every per-pool one `pool` as well, so they join with the model servers'
series (which carry the same three labels) and with cost allocation tools. Money series carry
the `currency` of the deployment's reports.

`OperatorMetrics` owns its registry (tests make their own); `observe` turns one decision into
series values, and `forget` drops a deployment's series when its loop ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.metrics import MetricWrapperBase

from deepseek_operator.api.deployment import DeepSeekDeployment
from deepseek_operator.core.planning.reconcile import Decision, DemandReading, Snapshot

PREFIX = "deepseek_operator"
DEPLOYMENT = ("namespace", "deployment")
POOL = (*DEPLOYMENT, "pool")
_PLAN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_AGE_BUCKETS = (0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120, 300)
CONDITION_STATUSES = ("True", "False", "Unknown")


@dataclass
class OperatorMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    _series: dict[tuple[str, str], set[tuple[MetricWrapperBase, tuple[str, ...]]]] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        r = self.registry
        self.plan_duration = Histogram(
            f"{PREFIX}_plan_duration_seconds",
            "Time decide() took for one deployment: resolve, plan, step and report.",
            buckets=_PLAN_BUCKETS,
            registry=r,
        )
        self.demand_age = Histogram(
            f"{PREFIX}_demand_age_seconds",
            "Age of the newest Prometheus sample behind the demand a decision used.",
            buckets=_AGE_BUCKETS,
            registry=r,
        )
        self.reconciles = Counter(
            f"{PREFIX}_reconciles", "Decisions made and written.", DEPLOYMENT, registry=r
        )
        self.reconcile_errors = Counter(
            f"{PREFIX}_reconcile_errors",
            "Reconciles that failed, by kind: api (the API server refused or was unreachable), "
            "conflict (the resource changed meanwhile; retried at once), unexpected (a defect).",
            [*DEPLOYMENT, "kind"],
            registry=r,
        )
        self.moves = Counter(
            f"{PREFIX}_moves",
            "Moves between pools decided, by the pool left, the pool entered and why the first "
            "was left (Window, Capacity, SLO, Spec, Cost).",
            [*DEPLOYMENT, "from_pool", "to_pool", "reason"],
            registry=r,
        )
        self.moves_failed = Counter(
            f"{PREFIX}_moves_failed",
            "Moves given up before they completed, by cause (Unschedulable, NoCapacity).",
            [*DEPLOYMENT, "from_pool", "to_pool", "reason"],
            registry=r,
        )
        self.desired = Gauge(
            f"{PREFIX}_desired_replicas",
            "Replicas the plan in force wants on the pool.",
            POOL,
            registry=r,
        )
        self.ready = Gauge(
            f"{PREFIX}_ready_replicas", "Replicas Ready on the pool.", POOL, registry=r
        )
        self.min_available = Gauge(
            f"{PREFIX}_min_available",
            "Ready replicas the deployment must keep: migration.minAvailable, capped by the "
            "replicas planned.",
            DEPLOYMENT,
            registry=r,
        )
        self.cost = Gauge(
            f"{PREFIX}_cost_per_hour",
            "Cost per hour of the planned placement.",
            [*DEPLOYMENT, "currency"],
            registry=r,
        )
        self.pool_cost = Gauge(
            f"{PREFIX}_pool_cost_per_hour",
            "Cost per hour of the pool's planned replicas.",
            [*POOL, "currency"],
            registry=r,
        )
        self.baseline_cost = Gauge(
            f"{PREFIX}_baseline_cost_per_hour",
            "Cost per hour of serving the same demand on the all-GPU baseline pool.",
            [*DEPLOYMENT, "currency"],
            registry=r,
        )
        self.savings = Gauge(
            f"{PREFIX}_savings_per_hour",
            "Baseline cost per hour minus the placement's.",
            [*DEPLOYMENT, "currency"],
            registry=r,
        )
        self.savings_ratio = Gauge(
            f"{PREFIX}_savings_ratio",
            "Savings against the all-GPU baseline, as a fraction of its cost.",
            DEPLOYMENT,
            registry=r,
        )
        self.demand = Gauge(
            f"{PREFIX}_demand_tokens_per_second",
            "Output tokens per second measured (the last measurement while unavailable).",
            DEPLOYMENT,
            registry=r,
        )
        self.queue_demand = Gauge(
            f"{PREFIX}_queue_tokens_per_second",
            "Unmet demand the queue adds beyond load.queueDepthThreshold.",
            DEPLOYMENT,
            registry=r,
        )
        self.required = Gauge(
            f"{PREFIX}_required_tokens_per_second",
            "Stabilised demand times (1 + headroom): what the plan must cover.",
            DEPLOYMENT,
            registry=r,
        )
        self.capacity = Gauge(
            f"{PREFIX}_capacity_tokens_per_second",
            "Output tokens per second the planned placement can serve.",
            DEPLOYMENT,
            registry=r,
        )
        self.shortfall = Gauge(
            f"{PREFIX}_shortfall_tokens_per_second",
            "Required tokens per second the planned placement cannot cover.",
            DEPLOYMENT,
            registry=r,
        )
        self.metrics_available = Gauge(
            f"{PREFIX}_metrics_available",
            "1 when the deployment's load was read, 0 while it is unavailable (absent without "
            "spec.load).",
            DEPLOYMENT,
            registry=r,
        )
        self.source_errors = Counter(
            f"{PREFIX}_metrics_source_errors",
            "Load readings that were unavailable, by reason (as on MetricsAvailable).",
            [*DEPLOYMENT, "reason"],
            registry=r,
        )
        self.prometheus_requests = Counter(
            f"{PREFIX}_prometheus_requests",
            "HTTP requests to Prometheus: one batched query per Prometheus per poll, plus the "
            "specs' own queries.",
            ["kind"],
            registry=r,
        )
        self.per_replica = Gauge(
            f"{PREFIX}_tokens_per_second_per_replica",
            "Output tokens/s per replica: the calibrated figure, the measured one, and the one "
            "the plan uses.",
            [*POOL, "figure"],
            registry=r,
        )
        self.correction = Gauge(
            f"{PREFIX}_capacity_correction_factor",
            "Measured ÷ calibrated tokens/s per replica (whether applied or not).",
            POOL,
            registry=r,
        )
        self.condition = Gauge(
            f"{PREFIX}_condition",
            "1 for the status each condition has, 0 for the others.",
            [*DEPLOYMENT, "condition", "status"],
            registry=r,
        )

    # -----------------------------------------------------------------------------------------

    def serve(self, port: int, address: str = "0.0.0.0") -> int:
        """Serve `/metrics` on a thread and return its port (`port` 0: any free one); raises
        OSError when the port is taken."""
        server, _ = start_http_server(port, address, registry=self.registry)
        return int(server.server_port)

    def observe(
        self,
        namespace: str,
        name: str,
        snapshot: Snapshot,
        decision: Decision,
        seconds: float,
        now: datetime,
    ) -> None:
        """Series from one written decision."""
        key = (namespace, name)
        ids = (namespace, name)
        self.plan_duration.observe(seconds)
        self._inc(key, self.reconciles, ids)
        for move in decision.moves:
            self._inc(key, self.moves, (*ids, move.from_pool, move.to_pool, move.reason))
        for move in decision.failed_moves:
            self._inc(key, self.moves_failed, (*ids, move.from_pool, move.to_pool, move.reason))
        status = decision.status
        target = decision.history.target or {}
        for pool in _pools(snapshot.deployment, target, snapshot):
            state = snapshot.pools.get(pool)
            self._set(key, self.desired, (*ids, pool), target.get(pool, 0))
            self._set(key, self.ready, (*ids, pool), state.ready if state else 0)
        planned = sum(target.values())
        floor = min(snapshot.deployment.spec.migration.min_available, planned)
        self._set(key, self.min_available, ids, floor)
        for condition in status.conditions:
            for value in CONDITION_STATUSES:
                labels = (*ids, condition.type, value)
                self._set(key, self.condition, labels, 1 if condition.status == value else 0)
        plan = decision.plan
        currency = status.currency or "USD"
        if plan is not None:
            self._set(key, self.cost, (*ids, currency), plan.cost_per_hour)
            for planned_pool in plan.pools:
                pool_labels = (*ids, planned_pool.pool, currency)
                self._set(key, self.pool_cost, pool_labels, planned_pool.cost_per_hour)
            self._set(key, self.capacity, ids, plan.capacity_tokens_per_second)
            self._set(key, self.shortfall, ids, plan.shortfall_tokens_per_second)
            if plan.required_tokens_per_second is not None:
                self._set(key, self.required, ids, plan.required_tokens_per_second)
            if plan.baseline_cost_per_hour is not None:
                baseline = plan.baseline_cost_per_hour
                self._set(key, self.baseline_cost, (*ids, currency), baseline)
                self._set(key, self.savings, (*ids, currency), baseline - plan.cost_per_hour)
            if plan.savings_fraction is not None:
                self._set(key, self.savings_ratio, ids, plan.savings_fraction)
        if status.demand is not None:
            self._set(key, self.demand, ids, status.demand.tokens_per_second)
            self._set(key, self.queue_demand, ids, status.demand.queue_tokens_per_second or 0.0)
        demand = snapshot.demand
        if snapshot.deployment.spec.load is not None:
            self._set(
                key, self.metrics_available, ids, 1 if isinstance(demand, DemandReading) else 0
            )
        if isinstance(demand, DemandReading):
            self.demand_age.observe(max(0.0, (now - demand.observed_at).total_seconds()))
        for entry in status.capacity_correction:
            pool_ids = (*ids, entry.pool)
            figures = {
                "calibrated": entry.calibrated_tokens_per_second,
                "planned": entry.planned_tokens_per_second,
                "measured": entry.measured_tokens_per_second,
            }
            for figure, rate in figures.items():
                if rate is not None:
                    self._set(key, self.per_replica, (*pool_ids, figure), rate)
            if entry.factor is not None:
                self._set(key, self.correction, pool_ids, entry.factor)

    def reconcile_failed(self, namespace: str, name: str, kind: str) -> None:
        self._inc((namespace, name), self.reconcile_errors, (namespace, name, kind))

    def source_error(self, namespace: str, name: str, reason: str) -> None:
        self._inc((namespace, name), self.source_errors, (namespace, name, reason))

    def prometheus_request(self, kind: str) -> None:
        self.prometheus_requests.labels(kind).inc()

    def forget(self, namespace: str, name: str) -> None:
        """Drop every series of a deployment whose loop ended (deleted, or another operator
        acts now)."""
        for metric, labels in self._series.pop((namespace, name), set()):
            with contextlib.suppress(KeyError):
                metric.remove(*labels)

    # -----------------------------------------------------------------------------------------

    def _set(
        self, key: tuple[str, str], metric: Gauge, labels: tuple[str, ...], value: float
    ) -> None:
        metric.labels(*labels).set(value)
        self._series.setdefault(key, set()).add((metric, labels))

    def _inc(self, key: tuple[str, str], metric: Counter, labels: tuple[str, ...]) -> None:
        metric.labels(*labels).inc()
        self._series.setdefault(key, set()).add((metric, labels))


def _pools(dsd: DeepSeekDeployment, target: Mapping[str, int], snapshot: Snapshot) -> Iterable[str]:
    names = {v.pool for v in dsd.spec.variants} | set(target) | set(snapshot.pools)
    return sorted(names)
