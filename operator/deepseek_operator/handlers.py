"""The operator's kopf wiring: observe → `decide()` → apply → status. No decision lives here.

Run it with `deepseek-operator run`, or with kopf itself: `kopf run -m deepseek_operator.handlers`.

* **Indexes** keep what a reconcile reads in memory: PoolProfiles, Node summaries, the requests
  of every bound pod per node, and this operator's own pods and Deployments per
  DeepSeekDeployment. A reconcile makes no LIST call.
* **One daemon per DeepSeekDeployment** loops: observe, decide, write, then sleep until the next
  `reconcileIntervalSeconds`, the decision's own wake-up (a pre-warm start, a window boundary),
  or a relevant watch event, whichever comes first. Events wake it: a spec change, any change of
  its pods or Deployments, a PoolProfile change, a change of a Node of a pool it may use, and a
  pod of anyone else freeing room on such a node (a pod that only takes room wakes no one else).
  The pools' capacity is computed once per Node, Pod or PoolProfile change (`_ClusterView`) and
  shared by every loop.
* **One demand poller** (`adapters.demand.DemandBoard`) reads every deployment's load with one
  batched Prometheus query per poll and wakes a deployment whose load moved enough to matter;
  a reconcile takes its reading from the board.
* **`/metrics`** (`adapters.metrics`) is served on `--metrics-port`: each written decision, each
  failed reconcile and each unavailable reading becomes series labelled by namespace,
  deployment and pool.
* **Peering**: every operator process joins the `ClusterKopfPeering` named `deepseek-operator`;
  the one with the highest priority acts and the others stand by (kopf pauses them and stops
  their daemons). By default a process's priority falls with its start time, so the operator
  that started first keeps acting and a restarted one stands by.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError
from urllib3.exceptions import HTTPError

from deepseek_operator.adapters import observe
from deepseek_operator.adapters.clock import Clock
from deepseek_operator.adapters.demand import POLL_SECONDS, DemandBoard
from deepseek_operator.adapters.kube import Conflict, KubeWriter, PeeringNotInstalled
from deepseek_operator.adapters.metrics import OperatorMetrics
from deepseek_operator.adapters.prometheus import LoadSpec
from deepseek_operator.api.base import GROUP, VERSION
from deepseek_operator.api.deployment import DeepSeekDeployment
from deepseek_operator.api.pool import PoolProfile
from deepseek_operator.api.status import DeepSeekDeploymentStatus, PoolProfileStatus
from deepseek_operator.core.planning import arbitration, inputs, reconcile
from deepseek_operator.core.workloads import render

DSD = (GROUP, VERSION, "deepseekdeployments")
POOLS = (GROUP, VERSION, "poolprofiles")
OWNED = {render.LABEL_MANAGED_BY: render.MANAGED_BY}
FINALIZER = f"{GROUP}/finalizer"
PEERING_NAME = "deepseek-operator"
SPEC_HASH_ANNOTATION = f"{GROUP}/spec-hash"

DEBOUNCE_SECONDS = 0.1
"""After a wake-up, wait this long so a burst of pod events becomes one reconcile."""
RETRY_SECONDS = (1.0, 30.0)
"""Back-off after a failed reconcile: from the first to the last value, doubling."""

log = logging.getLogger("deepseek_operator")


@dataclass(frozen=True)
class OperatorConfig:
    """Settings from the environment (`deepseek-operator run` sets them from its flags)."""

    priority: int | None = None
    peering_lifetime_seconds: int = 30
    metrics_port: int = 8080
    """Port of `/metrics`; 0 serves none."""
    metrics_address: str = "0.0.0.0"
    load_poll_seconds: float = POLL_SECONDS

    @classmethod
    def from_environment(cls) -> OperatorConfig:
        env = os.environ.get
        priority = env("DEEPSEEK_OPERATOR_PRIORITY")
        lifetime = env("DEEPSEEK_OPERATOR_PEERING_LIFETIME")
        port = env("DEEPSEEK_OPERATOR_METRICS_PORT")
        poll = env("DEEPSEEK_OPERATOR_LOAD_POLL_SECONDS")
        return cls(
            priority=int(priority) if priority else None,
            peering_lifetime_seconds=int(lifetime) if lifetime else 30,
            metrics_port=int(port) if port else 8080,
            metrics_address=env("DEEPSEEK_OPERATOR_METRICS_ADDRESS") or "0.0.0.0",
            load_poll_seconds=float(poll) if poll else POLL_SECONDS,
        )


def seniority_priority(started: float) -> int:
    """A peering priority that favours the process started first (ties broken at random)."""
    return (4_000_000_000 - int(started)) * 1000 + random.randrange(1000)


@dataclass
class _Runtime:
    """What the handlers share for the life of the process."""

    writer: KubeWriter | None = None
    wakeups: dict[tuple[str, str], asyncio.Event] = field(default_factory=dict)
    generations: dict[tuple[str, str], int] = field(default_factory=dict)
    node_summaries: dict[str, observe.NodeSummary] = field(default_factory=dict)
    pod_usages: dict[str, observe.PodUsage | None] = field(default_factory=dict)
    services: set[tuple[str, str]] = field(default_factory=set)
    pool_refresh: asyncio.Task[None] | None = None
    metrics: OperatorMetrics = field(default_factory=OperatorMetrics)
    board: DemandBoard | None = None
    poller: asyncio.Task[None] | None = None
    clock: Clock = field(default_factory=Clock)
    """decide()'s time: real, unless `run --time-scale/--clock-start` (a demo aid) moves it."""
    arbiter: _FleetArbiter = field(default_factory=lambda: _FleetArbiter())
    view: _ClusterView = field(default_factory=lambda: _ClusterView())

    def wake(self, key: tuple[str, str] | None) -> None:
        if key is not None and key in self.wakeups:
            self.wakeups[key].set()

    def wake_all(self) -> None:
        for event in self.wakeups.values():
            event.set()


@dataclass
class _ClusterView:
    """The parsed PoolProfiles and every pool's capacity (`observe.pool_capacities`), computed
    once per state of the Nodes, Pods and PoolProfiles and shared by every deployment's loop:
    a reconcile then reads only its own pods and Deployments, O(own objects) instead of
    O(nodes + pods). The watch handlers that see such a change call `changed()`; the next
    read computes again. (kopf updates an index just before the handlers of the same event run,
    so a read in between sees the previous state; the handler's wake-up follows it.)"""

    version: int = 0
    built_version: int = -1
    profiles_version: int = 0
    parsed_version: int = -1
    profiles: dict[str, PoolProfile] = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)
    capacities: dict[str, observe.PoolCapacity] = field(default_factory=dict)

    def changed(self, profiles: bool = False) -> None:
        """Nodes or pods changed (and the PoolProfiles, with ``profiles``)."""
        self.version += 1
        if profiles:
            self.profiles_version += 1

    def parsed(self, indexes: _Indexes) -> dict[str, PoolProfile]:
        """The valid PoolProfiles, parsed again only after a PoolProfile event."""
        if self.parsed_version != self.profiles_version:
            version = self.profiles_version
            self.profiles, self.invalid = observe.parse_pool_profiles(
                _values(indexes.pool_profiles)
            )
            self.parsed_version = version
        return self.profiles

    def current(self, indexes: _Indexes) -> _ClusterView:
        if self.built_version != self.version or self.parsed_version != self.profiles_version:
            version = self.version
            self.capacities = observe.pool_capacities(
                self.parsed(indexes), _values(indexes.nodes), indexes.pods_by_node
            )
            self.built_version = version
        return self


ARBITER_DEBOUNCE_SECONDS = 0.5
"""After a change the arbiter's split depends on, wait this long so a burst becomes one solve."""


@dataclass
class _FleetArbiter:
    """The cluster-wide split (`arbitration.decide_fleet`), computed once per state of what it
    depends on and shared by every deployment's loop. Watch events that change its inputs (nodes,
    PoolProfiles, any pod's usage, a deployment's spec or recorded demand) bump `version`; a
    debounced task then solves again, off the event loop, and wakes the deployments whose share
    changed. A reconcile never waits for a solve (except the first)."""

    version: int = 0
    decided_version: int = -1
    decision: arbitration.FleetDecision | None = None
    claim_inputs: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    refresh: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def changed(self, indexes: _Indexes) -> None:
        self.version += 1
        self._schedule(indexes)

    def _schedule(self, indexes: _Indexes) -> None:
        if self.refresh is None or self.refresh.done():
            loop = asyncio.get_running_loop()
            self.refresh = loop.create_task(self._refresh(indexes))

    def deployment_seen(
        self, key: tuple[str, str], body: Mapping[str, Any] | None, indexes: _Indexes
    ) -> None:
        """A DeepSeekDeployment event: a new version only if what its claim reads changed."""
        signature = None if body is None else _claim_inputs(body)
        if self.claim_inputs.get(key) != signature:
            if signature is None:
                self.claim_inputs.pop(key, None)
            else:
                self.claim_inputs[key] = signature
            self.changed(indexes)

    def stale(self, now: Any) -> bool:
        found = self.decision
        return (
            found is None
            or self.decided_version != self.version
            or (found.valid_until is not None and now >= found.valid_until)
        )

    async def _refresh(self, indexes: _Indexes) -> None:
        """Solve again until the split is current (changes during a solve call for another)."""
        try:
            while self.stale(RUNTIME.clock.now()):
                await asyncio.sleep(ARBITER_DEBOUNCE_SECONDS)
                await self.solve(indexes, RUNTIME.clock.now())
        except Exception:
            log.exception("The cluster-wide arbiter failed; deployments are planned alone")

    async def share(self, indexes: _Indexes, now: Any) -> arbitration.FleetDecision:
        """The split a reconcile plans within: the latest one, without waiting for a newer one
        being solved (a reconcile's own observed capacity still bounds it, and the deployments
        whose share changes are woken); only the very first is waited for."""
        if self.decision is None:
            return await self.solve(indexes, now)
        if self.stale(now):
            self._schedule(indexes)
        return self.decision

    async def solve(self, indexes: _Indexes, now: Any) -> arbitration.FleetDecision:
        """Solve the split for the state as of now (off the event loop; one solve at a time)
        and wake the deployments whose share changed."""
        async with self.lock:
            found = self.decision
            if found is not None and not self.stale(now):
                return found
            version = self.version
            members, profiles, pools = _fleet_inputs(indexes)  # read on the loop
            decided = await asyncio.to_thread(
                arbitration.decide_fleet, members, profiles, pools, now
            )
            self.decision, self.decided_version = decided, version
        before = found.arbitration.allotments if found is not None else {}
        for key, share in decided.arbitration.allotments.items():
            if before.get(key) != share:
                namespace, _, name = key.partition("/")
                RUNTIME.wake((namespace, name))
        return decided


DEMAND_STEP = 1.05
"""A deployment's recorded demand calls for a new split when it moves by about 5 % (a step of
this ratio): smaller moves are within every planner's tolerance, and re-solving on each reading
of a thousand deployments would keep the arbiter busy for nothing."""


def _claim_inputs(body: Mapping[str, Any]) -> tuple[Any, ...]:
    """What of a DeepSeekDeployment its claim reads: the spec (by generation), whether it is
    being deleted, the capacity correction, and the demand its last decision recorded (the
    stabilised demand, else the last reading), in steps of `DEMAND_STEP`."""
    metadata = body.get("metadata") or {}
    status = body.get("status") or {}
    history = status.get("history") or {}
    demand = status.get("demand") or {}
    recorded = history.get("effectiveDemandTokensPerSecond")
    if recorded is None and demand.get("tokensPerSecond") is not None:
        recorded = float(demand["tokensPerSecond"]) + float(demand.get("queueTokensPerSecond") or 0)
    step = (
        None
        if recorded is None
        else round(math.log1p(max(0.0, float(recorded))) / math.log(DEMAND_STEP))
    )
    return (
        metadata.get("generation"),
        metadata.get("deletionTimestamp") is not None,
        step,
        json.dumps(history.get("throughput"), sort_keys=True),
    )


def _fleet_inputs(
    indexes: _Indexes,
) -> tuple[list[DeepSeekDeployment], dict[str, PoolProfile], dict[str, reconcile.PoolState]]:
    """What the arbiter reads, taken from the indexes: every deployment, the PoolProfiles, and
    each pool with the arbitrated deployments' pods counted as free."""
    members = [d for d in _values(indexes.fleet) if d is not None]
    taking = {
        (str(d.metadata.get("namespace") or ""), str(d.metadata.get("name") or ""))
        for d in members
        if arbitration.takes_part(d)
    }
    profiles = RUNTIME.view.parsed(indexes)  # parsed once per PoolProfile change, shared
    pools = observe.arbitrated_pools(
        profiles,
        _values(indexes.nodes),
        {node: list(store) for node, store in indexes.pods_by_node.items()},
        taking,
    )
    return sorted(members, key=arbitration.key_of), profiles, pools


RUNTIME = _Runtime()


# ---------------------------------------------------------------------------------------------
# Start-up


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, logger: kopf.Logger, **_: Any) -> None:
    config = OperatorConfig.from_environment()
    if settings.peering.name == "default":
        settings.peering.name = PEERING_NAME
    if config.priority is not None:
        settings.peering.priority = config.priority
    elif settings.peering.priority == 0:
        settings.peering.priority = seniority_priority(time.time())
    settings.peering.lifetime = config.peering_lifetime_seconds
    settings.peering.clusterwide = True
    settings.persistence.finalizer = FINALIZER
    # The kinds are discovered once at start (the chart installs the CRDs before the operator);
    # watching CRDs for later changes would need a cluster-wide read of every CRD, which the
    # least-privilege RBAC does not grant.
    settings.scanning.disabled = True
    # Watches that notice a silent API server and reconnect (the server may be frozen).
    settings.watching.server_timeout = 60
    settings.watching.client_timeout = 75
    settings.watching.connect_timeout = 5
    settings.watching.reconnect_backoff = 1.0
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 5
    settings.posting.level = logging.WARNING
    RUNTIME.clock = Clock.from_environment()
    if not RUNTIME.clock.real:
        logger.warning(
            f"Demo clock, not real time: decisions are made for {RUNTIME.clock.describe()}"
        )
    if config.metrics_port:
        try:
            RUNTIME.metrics.serve(config.metrics_port, config.metrics_address)
        except OSError as error:
            raise kopf.PermanentError(
                f"cannot serve /metrics on {config.metrics_address}:{config.metrics_port} "
                f"({error}): pass another --metrics-port, or 0 for none"
            ) from None
        logger.info(f"serving /metrics on {config.metrics_address}:{config.metrics_port}")
    RUNTIME.board = DemandBoard(
        wake=RUNTIME.wake, metrics=RUNTIME.metrics, poll_seconds=config.load_poll_seconds
    )
    RUNTIME.poller = asyncio.get_running_loop().create_task(RUNTIME.board.run())
    RUNTIME.writer = KubeWriter.from_environment()
    if not settings.peering.standalone:
        try:
            await RUNTIME.writer.ensure_peering(settings.peering.name)
        except PeeringNotInstalled as error:
            raise kopf.PermanentError(str(error)) from None
    logger.info(
        f"peering {settings.peering.name!r} with priority {settings.peering.priority}, "
        f"lifetime {settings.peering.lifetime}s"
    )


@kopf.on.cleanup()
async def close(**_: Any) -> None:
    if RUNTIME.poller is not None:
        RUNTIME.poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await RUNTIME.poller
    if RUNTIME.writer is not None:
        RUNTIME.writer.close()


# ---------------------------------------------------------------------------------------------
# Indexes: what reconciles read instead of listing


@kopf.index(*POOLS)
def pool_profiles(name: str, body: kopf.Body, **_: Any) -> dict[str, Mapping[str, Any]]:
    return {name: _raw(body)}


@kopf.index(*DSD)
def fleet(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], DeepSeekDeployment | None]:
    """Every DeepSeekDeployment, parsed (None where the models refuse its spec): the arbiter's
    claims are built from these."""
    try:
        return {(namespace or "", name): observe.parse_deployment(_raw(body))}
    except ValidationError:
        return {(namespace or "", name): None}


@kopf.index("", "v1", "nodes")
def nodes(name: str, body: kopf.Body, **_: Any) -> dict[str, observe.NodeSummary]:
    return {name: observe.node_summary(_raw(body))}


@kopf.index("", "v1", "pods")
def pods_by_node(body: kopf.Body, **_: Any) -> dict[str, observe.PodUsage] | None:
    usage = observe.pod_usage(_raw(body))
    return None if usage is None else {usage.node: usage}


@kopf.index("", "v1", "pods", labels=OWNED)
def own_pods(body: kopf.Body, **_: Any) -> dict[tuple[str, str], observe.OwnPod] | None:
    raw = _raw(body)
    key, pod = observe.instance_key(raw), observe.own_pod(raw)
    return None if key is None or pod is None else {key: pod}


@kopf.index("apps", "v1", "deployments", labels=OWNED)
def own_deployments(
    body: kopf.Body, **_: Any
) -> dict[tuple[str, str], tuple[observe.OwnDeployment, str]] | None:
    raw = _raw(body)
    key, deployment = observe.instance_key(raw), observe.own_deployment(raw)
    if key is None or deployment is None:
        return None
    annotations = (raw.get("metadata") or {}).get("annotations") or {}
    return {key: (deployment, str(annotations.get(SPEC_HASH_ANNOTATION, "")))}


@kopf.index("", "v1", "services", labels=OWNED)
def own_services(body: kopf.Body, **_: Any) -> dict[tuple[str, str], str] | None:
    raw = _raw(body)
    key = observe.instance_key(raw)
    annotations = (raw.get("metadata") or {}).get("annotations") or {}
    return None if key is None else {key: str(annotations.get(SPEC_HASH_ANNOTATION, ""))}


# ---------------------------------------------------------------------------------------------
# Wake-ups: watch events that call for a new decision (async: they run on the event loop, where
# the daemons' asyncio.Events live)


@kopf.on.event(*DSD)
async def deployment_changed(
    namespace: str | None, name: str, body: kopf.Body, type: str, **kwargs: Any
) -> None:
    key = (namespace or "", name)
    generation = int(body.get("metadata", {}).get("generation") or 0)
    RUNTIME.arbiter.deployment_seen(
        key, None if type == "DELETED" else _raw(body), _Indexes.of(kwargs)
    )
    if type == "DELETED":
        RUNTIME.generations.pop(key, None)
        return
    if RUNTIME.generations.get(key) != generation:
        RUNTIME.generations[key] = generation
        RUNTIME.wake(key)


@kopf.on.event("", "v1", "pods", labels=OWNED)
async def own_pod_changed(body: kopf.Body, **_: Any) -> None:
    RUNTIME.wake(observe.instance_key(_raw(body)))


@kopf.on.event("apps", "v1", "deployments", labels=OWNED)
async def own_deployment_changed(body: kopf.Body, **_: Any) -> None:
    RUNTIME.wake(observe.instance_key(_raw(body)))


@kopf.on.event("", "v1", "pods")
async def pod_capacity_changed(uid: str, body: kopf.Body, type: str, **kwargs: Any) -> None:
    """A pod of anyone bound, resized or finished. Only what it frees wakes other deployments:
    those that may use a pool of the node it held (one short of capacity there may now fit).
    A pod that only takes room wakes none (its owner's own pod events wake that one): a
    deployment that then wants more than is left sees its own pods Unschedulable, which wakes
    it, and every loop still runs at its interval."""
    usage = None if type == "DELETED" else observe.pod_usage(_raw(body))
    before = RUNTIME.pod_usages.get(uid)
    if before != usage:
        if usage is None:
            RUNTIME.pod_usages.pop(uid, None)
        else:
            RUNTIME.pod_usages[uid] = usage
        indexes = _Indexes.of(kwargs)
        RUNTIME.view.changed()
        RUNTIME.arbiter.changed(indexes)
        if before is not None:
            _wake_pool_users(indexes, _pools_of(indexes, before.node))


@kopf.on.event("", "v1", "nodes")
async def node_changed(name: str, body: kopf.Body, type: str, **kwargs: Any) -> None:
    summary = None if type == "DELETED" else observe.node_summary(_raw(body))
    if RUNTIME.node_summaries.get(name) != summary:
        indexes = _Indexes.of(kwargs)
        pools = _pools_of(indexes, name)  # before the change: one leaving a pool concerns it
        if summary is None:
            RUNTIME.node_summaries.pop(name, None)
        else:
            RUNTIME.node_summaries[name] = summary
        RUNTIME.view.changed()
        RUNTIME.arbiter.changed(indexes)
        # Either way: room and the pool's node count (which spreads its costs) both change.
        _wake_pool_users(indexes, pools | _pools_of(indexes, name))
        _refresh_pool_statuses(indexes)


def _pools_of(indexes: _Indexes, node: str) -> set[str]:
    """The valid pools whose nodeSelector the node's labels (as last seen) carry."""
    summary = RUNTIME.node_summaries.get(node)
    if summary is None:
        return set()
    return {
        name
        for name, profile in RUNTIME.view.parsed(indexes).items()
        if observe.pool_nodes(profile, [summary])
    }


def _wake_pool_users(indexes: _Indexes, pools: set[str]) -> None:
    """Wake the deployments that may use one of ``pools``: named by a variant, or still running
    there. A deployment whose spec the models refuse is woken too (it reports why)."""
    if not pools:
        return
    for key, event in RUNTIME.wakeups.items():
        if event.is_set():
            continue
        found = [d for d in indexes.fleet.get(key, ()) if d is not None]
        named = {v.pool for dsd in found for v in dsd.spec.variants}
        running = {d.pool for d, _ in indexes.own_deployments.get(key, ())}
        if not found or pools & (named | running):
            event.set()


@kopf.on.event(*POOLS)
async def pool_changed(**kwargs: Any) -> None:
    RUNTIME.view.changed(profiles=True)
    RUNTIME.arbiter.changed(_Indexes.of(kwargs))
    RUNTIME.wake_all()
    _refresh_pool_statuses(_Indexes.of(kwargs))


# ---------------------------------------------------------------------------------------------
# The loop of one DeepSeekDeployment


@kopf.daemon(*DSD, cancellation_timeout=2.0)
async def run_deployment(
    namespace: str | None,
    name: str,
    body: kopf.Body,
    stopped: kopf.DaemonStopped,
    logger: kopf.Logger,
    **kwargs: Any,
) -> None:
    namespace = namespace or ""
    key = (namespace, name)
    indexes = _Indexes.of(kwargs)
    wake = RUNTIME.wakeups.setdefault(key, asyncio.Event())
    written = _WrittenStatus()
    failures = 0
    try:
        while not stopped:
            wake.clear()
            try:
                delay = await reconcile_once(namespace, name, body, indexes, logger, written)
                failures = 0
            except Conflict:
                RUNTIME.metrics.reconcile_failed(namespace, name, "conflict")
                delay = 0.0
            except (ApiException, HTTPError, OSError) as error:
                RUNTIME.metrics.reconcile_failed(namespace, name, "api")
                failures += 1
                delay = min(RETRY_SECONDS[1], RETRY_SECONDS[0] * 2 ** (failures - 1))
                logger.warning(f"Reconcile failed ({_short(error)}); retrying in {delay:.0f}s")
            except Exception:
                # A defect, not the cluster: say so loudly, keep this deployment's loop alive.
                RUNTIME.metrics.reconcile_failed(namespace, name, "unexpected")
                failures += 1
                delay = RETRY_SECONDS[1]
                logger.exception(f"Reconcile failed unexpectedly; retrying in {delay:.0f}s")
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=delay)
            await asyncio.sleep(DEBOUNCE_SECONDS)
    finally:
        if RUNTIME.wakeups.get(key) is wake:
            del RUNTIME.wakeups[key]
            RUNTIME.metrics.forget(namespace, name)
            if RUNTIME.board is not None:
                RUNTIME.board.forget(key)


@dataclass
class _WrittenStatus:
    """The last status this loop wrote, and the one it replaced: until the watch delivers the
    write, the live body still shows the old one, and deciding from it would record a move twice
    and take the operator's own replica writes for someone else's."""

    before: DeepSeekDeploymentStatus | None = None
    after: DeepSeekDeploymentStatus | None = None

    def freshest(self, dsd: DeepSeekDeployment) -> DeepSeekDeployment:
        if self.after is not None and dsd.status == self.before:
            return dsd.model_copy(update={"status": self.after})
        return dsd


@dataclass(frozen=True)
class _Indexes:
    """The indexes above, as kopf passes them to every handler (by their function names)."""

    pool_profiles: kopf.Index[str, Mapping[str, Any]]
    fleet: kopf.Index[tuple[str, str], DeepSeekDeployment | None]
    nodes: kopf.Index[str, observe.NodeSummary]
    pods_by_node: kopf.Index[str, observe.PodUsage]
    own_pods: kopf.Index[tuple[str, str], observe.OwnPod]
    own_deployments: kopf.Index[tuple[str, str], tuple[observe.OwnDeployment, str]]
    own_services: kopf.Index[tuple[str, str], str]

    @classmethod
    def of(cls, kwargs: Mapping[str, Any]) -> _Indexes:
        return cls(**{name: kwargs[name] for name in cls.__dataclass_fields__})


async def reconcile_once(
    namespace: str,
    name: str,
    body: kopf.Body,
    indexes: _Indexes,
    logger: kopf.Logger,
    written: _WrittenStatus,
) -> float:
    """One tick for one deployment; returns the seconds until the next one is due."""
    writer = RUNTIME.writer
    assert writer is not None, "the startup handler creates the writer"
    clock = RUNTIME.clock
    now = clock.now()
    key = (namespace, name)
    calls_before = writer.calls
    try:
        dsd = written.freshest(observe.parse_deployment(_raw(body)))
    except ValidationError as error:
        logger.error(f"Spec refused by the API models: {error}")
        return 60.0
    view = RUNTIME.view.current(indexes)
    profiles, invalid = view.profiles, view.invalid
    owned = [d for d, _ in _store(indexes.own_deployments, key)]
    hashes = {d.pool: h for d, h in _store(indexes.own_deployments, key)}
    states = observe.deployment_pool_states(
        [v.pool for v in dsd.spec.variants],
        view.capacities,
        _store(indexes.own_pods, key),
        owned,
    )
    load = LoadSpec.of(namespace, dsd)
    board = RUNTIME.board
    demand = None
    if load is not None and board is not None:
        demand = clock.demand(await board.read(load))
        now = clock.now()
    elif board is not None:
        board.forget(key)
    allotment = None
    try:
        shares = (await RUNTIME.arbiter.share(indexes, now)).arbitration
        allotment = shares.get(f"{namespace}/{name}")
    except Exception:
        # A defect in the arbiter must not stop the fleet: plan alone, as before it existed.
        logger.exception("The cluster-wide arbiter failed; this deployment is planned alone")
    snapshot = reconcile.Snapshot(dsd, profiles, states, demand, invalid, allotment=allotment)
    started = time.perf_counter()
    decision = reconcile.decide(snapshot, now, reconcile.history_from_status(dsd.status))
    seconds = time.perf_counter() - started

    # Intent first: the status (and the history in it) is written before any workload moves, so
    # a crash between the two resumes the same move instead of starting another.
    if decision.status != dsd.status:
        await writer.apply_status(namespace, name, decision.status.to_json_dict())
        written.before, written.after = dsd.status, decision.status
    # The decision is recorded (its moves are in the history now): count it once, here.
    RUNTIME.metrics.observe(namespace, name, snapshot, decision, seconds, now)
    if board is not None:
        board.used(key, demand, decision.load_bound)
    if decision.writes is not None:
        service = render.render_service(dsd)
        digest = render.spec_digest(service)
        if digest not in _store(indexes.own_services, key):
            service["metadata"]["annotations"] = {SPEC_HASH_ANNOTATION: digest}
            await writer.apply(service)
            logger.info(f"Applied Service {namespace}/{name}")
        for write in decision.writes:
            variant = dsd.spec.variants[write.variant_index]
            profile = profiles[variant.pool]
            manifest = render.render_deployment(
                dsd,
                variant,
                profile,
                inputs.replica_resources(dsd, variant, profile),
                write.replicas,
                write.option.startup_seconds,
            )
            digest = render.spec_digest(manifest)
            state = states.get(write.pool)
            current = state.desired if state is not None and state.deployment_exists else None
            if current == write.replicas and hashes.get(write.pool) == digest:
                continue
            manifest["metadata"].setdefault("annotations", {})[SPEC_HASH_ANNOTATION] = digest
            await writer.apply(manifest)
            logger.info(
                f"Applied Deployment {namespace}/{manifest['metadata']['name']} "
                f"({write.replicas} replicas)"
            )
        for pool in decision.deletes:
            await writer.delete_deployment(namespace, render.deployment_name(name, pool))
            logger.info(f"Deleted Deployment {namespace}/{render.deployment_name(name, pool)}")
    for note in decision.events:
        kopf.event(body, type=note.type, reason=note.reason, message=note.message)
        logger.info(f"{note.reason}: {note.message}")
    logger.debug(
        f"Reconciled with {writer.calls - calls_before} API writes and "
        f"{len(decision.events)} Events, no reads"
    )
    interval = float(dsd.spec.reconcile_interval_seconds)
    if decision.wake_at is not None:
        ahead = clock.real_seconds((decision.wake_at - now).total_seconds())
        interval = min(interval, max(0.0, ahead))
    return interval


# ---------------------------------------------------------------------------------------------
# PoolProfile status: nodes, allocatable GPUs, cost per node-hour


def _refresh_pool_statuses(indexes: _Indexes) -> None:
    """Recompute every PoolProfile's status soon (one task for a burst of events)."""
    if RUNTIME.pool_refresh is not None and not RUNTIME.pool_refresh.done():
        return
    RUNTIME.pool_refresh = asyncio.get_running_loop().create_task(_write_pool_statuses(indexes))


async def _write_pool_statuses(indexes: _Indexes) -> None:
    await asyncio.sleep(1.0)
    writer = RUNTIME.writer
    if writer is None:
        return
    bodies = list(_values(indexes.pool_profiles))
    profiles, _ = observe.parse_pool_profiles(bodies)
    known = list(_values(indexes.nodes))
    for body in bodies:
        name = str((body.get("metadata") or {}).get("name", ""))
        profile = profiles.get(name)
        if profile is None:
            continue
        count, gpus = observe.pool_totals(profile, known)
        status = PoolProfileStatus(
            observed_generation=int((body.get("metadata") or {}).get("generation") or 0),
            nodes=count,
            allocatable_gpus=gpus,
            cost_per_hour=float(f"{inputs.node_cost_per_hour(profile, max(1, count)):.4g}"),
        )
        try:
            previous = PoolProfileStatus.model_validate(body.get("status") or {})
        except ValidationError:
            previous = None
        if previous == status:
            continue
        try:
            await writer.apply_pool_status(name, status.to_json_dict())
        except (ApiException, OSError) as error:
            log.warning(f"PoolProfile {name} status not written: {_short(error)}")


# ---------------------------------------------------------------------------------------------


def _raw(body: Mapping[str, Any]) -> Mapping[str, Any]:
    return body


def _values(index: kopf.Index[Any, Any]) -> Iterable[Any]:
    for store in index.values():
        yield from store


def _store(index: kopf.Index[Any, Any], key: Any) -> list[Any]:
    return list(index.get(key, ()))


def _short(error: BaseException) -> str:
    """One line for the log. An API error keeps the server's own message, which names the verb
    and resource refused: a 403 must say which permission the operator lacks."""
    if isinstance(error, ApiException):
        message = ""
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            message = str(json.loads(error.body or "").get("message") or "")
        detail = f": {message[:300]}" if message else ""
        return f"HTTP {error.status} {error.reason}{detail}"
    return f"{type(error).__name__}: {error}"
