"""From watched Kubernetes objects to `reconcile.Snapshot`: what each pool has free, what each
deployment runs.

The operator's kopf indexes hold small summaries made here (one per Node, per Pod, per owned
Deployment, per PoolProfile), so a reconcile reads memory and makes no LIST call. Building the
snapshot is then plain arithmetic over those summaries:

* a node belongs to a pool when its labels carry every label of the pool's `nodeSelector`;
  it is usable when it is Ready, not cordoned, and every NoSchedule/NoExecute taint it has is
  tolerated by the pool's tolerations;
* a node's free room is its allocatable GPUs, CPU and memory minus the requests of every pod
  bound to it that has not finished (any owner: other deployments and other workloads count);
* this deployment's pods count as Ready (Ready condition and not terminating), scheduled
  (bound to a node), or Unschedulable (PodScheduled=False, reason Unschedulable).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kubernetes.utils.quantity import parse_quantity
from pydantic import ValidationError

from deepseek_operator.api.deployment import DeepSeekDeployment
from deepseek_operator.api.pool import PoolProfile, Toleration
from deepseek_operator.core.planning.reconcile import NodeRoom, PoolState
from deepseek_operator.core.workloads.render import (
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    LABEL_POOL,
    MANAGED_BY,
)

GPU_RESOURCE = "nvidia.com/gpu"
_BLOCKING_EFFECTS = ("NoSchedule", "NoExecute")


@dataclass(frozen=True)
class Resources:
    gpus: int = 0
    cpu_millicores: int = 0
    memory_bytes: int = 0

    def minus(self, other: Resources) -> Resources:
        return Resources(
            self.gpus - other.gpus,
            self.cpu_millicores - other.cpu_millicores,
            self.memory_bytes - other.memory_bytes,
        )

    def plus(self, other: Resources) -> Resources:
        return Resources(
            self.gpus + other.gpus,
            self.cpu_millicores + other.cpu_millicores,
            self.memory_bytes + other.memory_bytes,
        )


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str


@dataclass(frozen=True)
class NodeSummary:
    name: str
    labels: tuple[tuple[str, str], ...]
    taints: tuple[Taint, ...]
    allocatable: Resources
    ready: bool
    cordoned: bool


@dataclass(frozen=True)
class PodUsage:
    """What a pod bound to a node holds there."""

    node: str
    requests: Resources
    owner: tuple[str, str] | None = None
    """(namespace, DeepSeekDeployment) of a pod the operator manages; None for anyone else's."""


@dataclass(frozen=True)
class OwnPod:
    """A pod of one of the operator's pool Deployments."""

    pool: str
    ready: bool
    scheduled: bool
    unschedulable: bool
    terminating: bool


@dataclass(frozen=True)
class OwnDeployment:
    pool: str
    replicas: int


# ---------------------------------------------------------------------------------------------
# Summaries of single objects (what the kopf indexes store)


def node_summary(body: Mapping[str, Any]) -> NodeSummary:
    metadata = body.get("metadata", {})
    spec = body.get("spec", {}) or {}
    status = body.get("status", {}) or {}
    conditions = status.get("conditions", []) or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    taints = tuple(
        Taint(str(t.get("key", "")), str(t.get("value", "") or ""), str(t.get("effect", "")))
        for t in spec.get("taints", []) or []
    )
    return NodeSummary(
        name=str(metadata.get("name", "")),
        labels=tuple(sorted((metadata.get("labels") or {}).items())),
        taints=taints,
        allocatable=_resources(status.get("allocatable") or {}),
        ready=ready,
        cordoned=bool(spec.get("unschedulable")),
    )


def pod_usage(body: Mapping[str, Any]) -> PodUsage | None:
    """The requests a pod holds on its node; None for pods not bound or already finished."""
    spec = body.get("spec", {}) or {}
    node = spec.get("nodeName")
    phase = (body.get("status", {}) or {}).get("phase")
    if not node or phase in ("Succeeded", "Failed"):
        return None
    labels = (body.get("metadata", {}) or {}).get("labels") or {}
    owner = instance_key(body) if labels.get(LABEL_MANAGED_BY) == MANAGED_BY else None
    return PodUsage(node=str(node), requests=pod_requests(spec), owner=owner)


def pod_requests(spec: Mapping[str, Any]) -> Resources:
    """The scheduler's view of a pod's requests: containers summed, init containers' peak, and
    the pod overhead; a limit without a request counts as the request (as the API defaults)."""
    total = Resources()
    for container in spec.get("containers", []) or []:
        total = total.plus(_container_requests(container))
    for container in spec.get("initContainers", []) or []:
        init = _container_requests(container)
        total = Resources(
            max(total.gpus, init.gpus),
            max(total.cpu_millicores, init.cpu_millicores),
            max(total.memory_bytes, init.memory_bytes),
        )
    return total.plus(_resources(spec.get("overhead") or {}))


def own_pod(body: Mapping[str, Any]) -> OwnPod | None:
    metadata = body.get("metadata", {})
    pool = (metadata.get("labels") or {}).get(LABEL_POOL)
    if not pool:
        return None
    status = body.get("status", {}) or {}
    conditions = status.get("conditions", []) or []
    terminating = metadata.get("deletionTimestamp") is not None or status.get("phase") in (
        "Succeeded",
        "Failed",
    )
    ready = not terminating and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
    )
    unschedulable = any(
        c.get("type") == "PodScheduled"
        and c.get("status") == "False"
        and c.get("reason") == "Unschedulable"
        for c in conditions
    )
    return OwnPod(
        pool=str(pool),
        ready=ready,
        scheduled=bool((body.get("spec", {}) or {}).get("nodeName")),
        unschedulable=unschedulable and not terminating,
        terminating=terminating,
    )


def own_deployment(body: Mapping[str, Any]) -> OwnDeployment | None:
    labels = (body.get("metadata", {}) or {}).get("labels") or {}
    pool = labels.get(LABEL_POOL)
    if not pool:
        return None
    replicas = (body.get("spec", {}) or {}).get("replicas")
    return OwnDeployment(pool=str(pool), replicas=int(1 if replicas is None else replicas))


def instance_key(body: Mapping[str, Any]) -> tuple[str, str] | None:
    """(namespace, DeepSeekDeployment) an owned object belongs to, from its instance label."""
    metadata = body.get("metadata", {}) or {}
    instance = (metadata.get("labels") or {}).get(LABEL_INSTANCE)
    namespace = metadata.get("namespace")
    if not instance or not namespace:
        return None
    return str(namespace), str(instance)


# ---------------------------------------------------------------------------------------------
# Parsing the custom resources


def parse_deployment(body: Mapping[str, Any]) -> DeepSeekDeployment:
    """The resource as the API models read it; a status the models refuse (written by an older
    operator, or by hand) is dropped rather than blocking the spec. Raises ValidationError when
    the spec itself is refused."""
    data = {
        key: body[key]
        for key in ("apiVersion", "kind", "metadata", "spec", "status")
        if key in body
    }
    data["metadata"] = dict(body.get("metadata", {}))
    try:
        return DeepSeekDeployment.from_object(data)
    except ValidationError:
        data.pop("status", None)
        return DeepSeekDeployment.from_object(data)


def parse_pool_profiles(
    bodies: Iterable[Mapping[str, Any]],
) -> tuple[dict[str, PoolProfile], dict[str, str]]:
    """Valid PoolProfiles by name, and the invalid ones with their first problem."""
    valid: dict[str, PoolProfile] = {}
    invalid: dict[str, str] = {}
    for body in bodies:
        name = str((body.get("metadata") or {}).get("name", ""))
        data = {k: body[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in body}
        try:
            valid[name] = PoolProfile.from_object(data)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            invalid[name] = f"{where}: {first['msg']}"
    return valid, invalid


# ---------------------------------------------------------------------------------------------
# Pools


def pool_nodes(profile: PoolProfile, nodes: Iterable[NodeSummary]) -> list[NodeSummary]:
    """Nodes whose labels carry the pool's whole nodeSelector."""
    wanted = profile.spec.node_selector.items()
    return [node for node in nodes if all(item in node.labels for item in wanted)]


def usable(profile: PoolProfile, node: NodeSummary) -> bool:
    """Ready, not cordoned, and every blocking taint tolerated by the pool's pods."""
    if not node.ready or node.cordoned:
        return False
    blocking = [t for t in node.taints if t.effect in _BLOCKING_EFFECTS]
    return all(
        any(_tolerates(tol, taint) for tol in profile.spec.tolerations) for taint in blocking
    )


@dataclass(frozen=True)
class PoolCapacity:
    """What a pool offers every deployment alike: its nodes and each usable node's free room.
    The same for every reconcile until a Node, Pod or PoolProfile changes, so the operator
    computes it once per such change (`pool_capacities`) rather than once per deployment."""

    node_count: int = 0
    rooms: tuple[NodeRoom, ...] = ()


def pool_capacities(
    profiles: Mapping[str, PoolProfile],
    nodes: Iterable[NodeSummary],
    usage_by_node: Mapping[str, Iterable[PodUsage]],
) -> dict[str, PoolCapacity]:
    """Every valid pool's nodes and free room per usable node; O(nodes × pools + pods)."""
    nodes = list(nodes)
    capacities: dict[str, PoolCapacity] = {}
    for name, profile in profiles.items():
        members = pool_nodes(profile, nodes)
        rooms = tuple(
            _room(node, usage_by_node.get(node.name, ()))
            for node in members
            if usable(profile, node)
        )
        capacities[name] = PoolCapacity(node_count=len(members), rooms=rooms)
    return capacities


def deployment_pool_states(
    pools: Iterable[str],
    capacities: Mapping[str, PoolCapacity],
    pods: Iterable[OwnPod],
    deployments: Iterable[OwnDeployment],
) -> dict[str, PoolState]:
    """One deployment's state on each pool it names (and on pools it still runs on): the pool's
    shared capacity with this deployment's own pods and Deployments counted in; O(own objects)."""
    own_pods = list(pods)
    replicas = {d.pool: d.replicas for d in deployments}
    names = list(dict.fromkeys([*pools, *replicas, *(p.pool for p in own_pods)]))
    states: dict[str, PoolState] = {}
    for name in names:
        on_pool = [p for p in own_pods if p.pool == name]
        # A pool without a (valid) PoolProfile offers no room; decide() reports why.
        capacity = capacities.get(name, PoolCapacity())
        states[name] = PoolState(
            pool=name,
            desired=replicas.get(name, 0),
            ready=sum(1 for p in on_pool if p.ready),
            pods=sum(1 for p in on_pool if not p.terminating),
            scheduled=sum(1 for p in on_pool if p.scheduled and not p.terminating),
            unschedulable=sum(1 for p in on_pool if p.unschedulable),
            deployment_exists=name in replicas,
            node_count=capacity.node_count,
            rooms=capacity.rooms,
        )
    return states


def pool_states(
    pools: Iterable[str],
    profiles: Mapping[str, PoolProfile],
    nodes: Iterable[NodeSummary],
    usage_by_node: Mapping[str, Iterable[PodUsage]],
    pods: Iterable[OwnPod],
    deployments: Iterable[OwnDeployment],
) -> dict[str, PoolState]:
    """One deployment's state on each pool it names (and on pools it still runs on), computed
    from scratch: `pool_capacities` then `deployment_pool_states`."""
    pools, pods, deployments = list(pools), list(pods), list(deployments)
    names = set(pools) | {d.pool for d in deployments} | {p.pool for p in pods}
    wanted = {name: profile for name, profile in profiles.items() if name in names}
    return deployment_pool_states(
        pools, pool_capacities(wanted, nodes, usage_by_node), pods, deployments
    )


def arbitrated_pools(
    profiles: Mapping[str, PoolProfile],
    nodes: Iterable[NodeSummary],
    usage_by_node: Mapping[str, Iterable[PodUsage]],
    released: Collection[tuple[str, str]],
) -> dict[str, PoolState]:
    """Every pool as the cluster-wide arbiter sees it: per usable node, the free room plus what
    the pods of the ``released`` deployments (those the arbiter splits capacity among) hold
    there; nothing of any deployment's own is counted as running."""
    nodes = list(nodes)
    states: dict[str, PoolState] = {}
    for name, profile in sorted(profiles.items()):
        members = pool_nodes(profile, nodes)
        rooms = tuple(
            _room(node, [u for u in usage_by_node.get(node.name, ()) if u.owner not in released])
            for node in members
            if usable(profile, node)
        )
        states[name] = PoolState(pool=name, node_count=len(members), rooms=rooms)
    return states


def pool_totals(profile: PoolProfile, nodes: Iterable[NodeSummary]) -> tuple[int, int]:
    """(nodes, allocatable GPUs) of a pool, for its status."""
    members = pool_nodes(profile, nodes)
    return len(members), sum(max(0, n.allocatable.gpus) for n in members)


def _room(node: NodeSummary, usage: Iterable[PodUsage]) -> NodeRoom:
    used = Resources()
    for pod in usage:
        used = used.plus(pod.requests)
    free = node.allocatable.minus(used)
    return NodeRoom(free.gpus, free.cpu_millicores, free.memory_bytes)


def _tolerates(toleration: Toleration, taint: Taint) -> bool:
    if toleration.effect is not None and toleration.effect != taint.effect:
        return False
    if toleration.key is None:  # an empty key with Exists tolerates everything
        return toleration.operator == "Exists"
    if toleration.key != taint.key:
        return False
    return toleration.operator == "Exists" or (toleration.value or "") == taint.value


def _container_requests(container: Mapping[str, Any]) -> Resources:
    resources = container.get("resources", {}) or {}
    limits = resources.get("limits", {}) or {}
    requests = {**limits, **(resources.get("requests", {}) or {})}
    return _resources(requests)


def _resources(quantities: Mapping[str, Any]) -> Resources:
    def amount(key: str, scale: int = 1) -> int:
        raw = quantities.get(key)
        if raw is None:
            return 0
        try:
            value = parse_quantity(raw) * scale  # type: ignore[no-untyped-call]
        except (ValueError, TypeError):
            return 0
        return (
            int(value.to_integral_value(rounding="ROUND_CEILING"))
            if isinstance(value, Decimal)
            else int(value)
        )

    return Resources(
        gpus=amount(GPU_RESOURCE),
        cpu_millicores=amount("cpu", 1000),
        memory_bytes=amount("memory"),
    )
