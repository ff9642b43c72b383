"""From a DeepSeekDeployment and its PoolProfiles to the planner's inputs and the replay's pools.

A PoolProfile says what one node is and costs; a replay also needs how many nodes each pool has
(the operator reads that from the cluster's Nodes) and how long a replica takes to become Ready
(image start, weights load, warm-up), which `PoolSetup` supplies. Everything else is computed
with the cost model: devices per replica from `core.fit` (at least the variant's tensor-parallel
degree), tokens/s from the pool's calibration when it has one for the (model, precision), else
the roofline estimate of `core.throughput`, and cost per replica-hour from `core.cost`.

A "device" is one GPU in a gpu pool and one node in a cpu pool (as in the PoolProfile); the
catalog describes a CPU per socket, so a cpu replica's cost is the node's cost times the share
of its sockets the replica holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from deepseek_operator.api import deployment as api
from deepseek_operator.api.deployment import (
    DeepSeekDeployment,
    DeepSeekDeploymentSpec,
    ModelSpec,
    Variant,
)
from deepseek_operator.api.pool import PoolProfile
from deepseek_operator.api.vocabulary import Precision
from deepseek_operator.core.costing.catalog import HardwareSpec, ModelArchitecture, hardware_named
from deepseek_operator.core.costing.catalog import model_named as catalog_model
from deepseek_operator.core.costing.cost import (
    DEFAULT_EXCHANGE_RATES,
    CurrencyRate,
    ExchangeRates,
    OwnedDeviceCost,
    UnknownCurrencyRate,
    device_cost_per_hour,
)
from deepseek_operator.core.costing.fit import FitRequest, fit_replica
from deepseek_operator.core.costing.throughput import Calibration, replica_throughput
from deepseek_operator.core.planning.planner import (
    Load,
    Migration,
    PlanSpec,
    PoolOption,
    ReplicaBounds,
    Schedule,
    Slo,
    SloOverride,
    Window,
)
from deepseek_operator.core.workloads.render import ReplicaResources

DEFAULT_STARTUP_SECONDS: Mapping[str, float] = {"gpu": 120.0, "cpu": 60.0}
"""Pod start to Ready when nothing else is known: image already on the node, weights on local
disk (7B bf16 is ~15 GB: ~30 s at 500 MB/s), engine warm-up; an estimate to replace with yours."""


class PlanningInputError(ValueError):
    """The deployment and its pools cannot be turned into planner inputs as given (a pool or
    catalog key that does not resolve, a tensor-parallel degree a node cannot hold); the
    message names the field."""


@dataclass(frozen=True)
class PoolSetup:
    nodes: int = 1
    startup_seconds: float | None = None


class PlanningRules(Protocol):
    """The planning sections of a spec: a DeepSeekDeploymentSpec has them, and so has the
    `plan` what-if, which has no model or variants."""

    @property
    def replicas(self) -> api.Replicas: ...
    @property
    def slo(self) -> api.SLO: ...
    @property
    def schedule(self) -> api.Schedule: ...
    @property
    def load(self) -> api.Load | None: ...
    @property
    def migration(self) -> api.Migration: ...
    @property
    def cost_model(self) -> api.CostModelOverrides | None: ...


def plan_spec(spec: PlanningRules) -> PlanSpec:
    """The CRD spec's planning sections as the planner's plain values."""
    schedule = spec.schedule
    windows = tuple(
        Window(
            name=w.name,
            start=w.start,
            end=w.end,
            days=tuple(w.days),
            policy=w.policy,
            replicas=ReplicaBounds(w.replicas.min, w.replicas.max) if w.replicas else None,
            slo=SloOverride(
                w.slo.min_tokens_per_second_per_request,
                w.slo.max_time_to_first_token_seconds,
                w.slo.headroom_fraction,
            )
            if w.slo
            else None,
        )
        for w in schedule.windows
    )
    load = spec.load
    return PlanSpec(
        replicas=ReplicaBounds(spec.replicas.min, spec.replicas.max),
        slo=Slo(
            spec.slo.min_tokens_per_second_per_request,
            spec.slo.max_time_to_first_token_seconds,
            spec.slo.headroom_fraction,
        ),
        schedule=Schedule(
            time_zone=schedule.time_zone,
            windows=windows,
            exception_dates=tuple(schedule.exception_dates),
            default_policy=schedule.default_policy,
        ),
        load=Load(
            load.scale_up_stabilization_seconds,
            load.scale_down_stabilization_seconds,
            load.tolerance_fraction,
        )
        if load
        else Load(),
        migration=Migration(
            spec.migration.min_available,
            spec.migration.max_surge_gpus,
            spec.migration.cooldown_seconds,
            spec.migration.min_savings_percent,
            spec.migration.min_dwell_seconds,
        ),
        baseline_pool=spec.cost_model.baseline_pool if spec.cost_model else None,
    )


def report_currency(spec: DeepSeekDeploymentSpec, profiles: Iterable[PoolProfile]) -> str:
    """The currency of the deployment's figures: ``costModel.currency``, else the currency its
    variants' pools share, else USD (pools in several currencies are converted to it)."""
    if spec.cost_model is not None and spec.cost_model.currency is not None:
        return spec.cost_model.currency
    used = {variant.pool for variant in spec.variants}
    currencies = {p.spec.cost.currency for p in profiles if p.metadata.get("name") in used}
    return currencies.pop() if len(currencies) == 1 else "USD"


def exchange_rates(
    spec: DeepSeekDeploymentSpec, base: ExchangeRates = DEFAULT_EXCHANGE_RATES
) -> ExchangeRates:
    """``base`` (the default table) extended, or overridden, by ``costModel.exchangeRates``."""
    stated = spec.cost_model.exchange_rates if spec.cost_model is not None else []
    return base.with_rates(
        CurrencyRate(
            rate.currency,
            rate.units_per_usd,
            rate.source or f"spec.costModel.exchangeRates[currency={rate.currency}]",
        )
        for rate in stated
    )


def _catalog_model(model: ModelSpec, where: str) -> ModelArchitecture:
    if model.catalog_key is None:
        raise PlanningInputError(
            f"{where}.catalogKey: replicas are sized from the model catalog; set catalogKey"
        )
    try:
        return catalog_model(model.catalog_key)
    except KeyError as exc:
        raise PlanningInputError(f"{where}.catalogKey: {exc.args[0]}") from exc


def _hardware(profile: PoolProfile, where: str) -> HardwareSpec:
    node = profile.spec.hardware
    if node.accelerator_model is None:
        return _custom_hardware(profile)
    try:
        base = hardware_named(node.accelerator_model)
    except KeyError as exc:
        raise PlanningInputError(f"{where}.hardware.acceleratorModel: {exc.args[0]}") from exc
    features = tuple(node.cpu_features) or base.cpu_features
    if node.kind == "gpu":
        return replace(
            base,
            devices_per_node=node.gpus_per_node or base.devices_per_node,
            memory_gib=node.gpu_memory_gib or base.memory_gib,
            memory_bandwidth_gb_per_s=node.memory_bandwidth_gbps or base.memory_bandwidth_gb_per_s,
        )
    bandwidth = base.memory_bandwidth_gb_per_s
    if node.memory_bandwidth_gbps:
        bandwidth = node.memory_bandwidth_gbps / base.devices_per_node
    return replace(
        base,
        memory_gib=node.memory_gib / base.devices_per_node,
        memory_bandwidth_gb_per_s=bandwidth,
        cpu_features=features,
    )


def _custom_hardware(profile: PoolProfile) -> HardwareSpec:
    """A node the catalog does not know, from the PoolProfile's own numbers: a GPU pool's device
    is one GPU, a CPU pool's the whole node. Prices and power come from spec.cost, as for every
    pool, so the catalog's price fields stay zero here."""
    node = profile.spec.hardware
    name = f"custom:{profile.metadata.get('name', '?')}"
    assert node.memory_bandwidth_gbps is not None  # the PoolProfile's own rule
    source = f"PoolProfile {profile.metadata.get('name', '?')} spec.hardware"
    gpu = node.kind == "gpu"
    return HardwareSpec(
        name=name,
        kind=node.kind,
        memory_gib=(node.gpu_memory_gib or 0.0) if gpu else node.memory_gib,
        memory_bandwidth_gb_per_s=node.memory_bandwidth_gbps,
        board_power_watts=profile.spec.cost.watts_per_device,
        purchase_price=profile.spec.cost.purchase_price_per_device or 0.0,
        purchase_currency=profile.spec.cost.currency,
        cloud_price_per_hour_usd=None,
        devices_per_node=(node.gpus_per_node or 1) if gpu else 1,
        sources={"memory_bandwidth_gb_per_s": source, "memory_gib": source},
        cpu_features=tuple(node.cpu_features),
    )


def _device_cost_per_hour(profile: PoolProfile, devices_in_pool: int) -> float:
    cost = profile.spec.cost
    hourly = cost.hourly_price or 0.0
    owned = OwnedDeviceCost(
        purchase_price=cost.purchase_price_per_device or 0.0,
        amortisation_years=cost.amortisation_years or 1.0,
        watts=cost.watts_per_device,
        pue=cost.pue,
        electricity_price_per_kwh=cost.electricity_price_per_kwh,
        staff_cost_per_year=cost.staff_cost_per_year / max(devices_in_pool, 1),
    )
    return device_cost_per_hour(owned).total + hourly


def _calibration(
    profile: PoolProfile, hardware: HardwareSpec, model: ModelSpec, precision: Precision
) -> tuple[Calibration | None, float | None]:
    names = {model.name, model.catalog_key}
    for entry in profile.spec.throughput:
        if entry.model in names and entry.precision == precision:
            calibration = Calibration(
                hardware=hardware.name,
                model=model.catalog_key or model.name,
                precision=precision,
                capacity_tokens_per_s=entry.tokens_per_second_saturated,
                single_stream_tokens_per_s=entry.tokens_per_second_single_stream,
                source=f"PoolProfile {profile.metadata.get('name', '?')} throughput",
            )
            return calibration, entry.time_to_first_token_seconds
    return None, None


def pool_option(
    deployment: DeepSeekDeployment,
    variant: Variant,
    index: int,
    profile: PoolProfile,
    setup: PoolSetup,
    currency: str,
    rates: ExchangeRates,
) -> PoolOption:
    """The pool as the planner sees this variant on it, priced in ``currency``.

    Raises ``PlanningInputError`` naming the field that does not resolve, and
    ``UnknownCurrencyRate`` when the pool's currency differs from ``currency`` and ``rates``
    (see ``exchange_rates``) has no rate for one of them.
    """
    where = f"spec.variants[{index}]"
    api_model = variant.model or deployment.spec.model
    model = _catalog_model(api_model, f"{where}.model" if variant.model else "spec.model")
    precision = variant.precision
    hardware = _hardware(profile, f"PoolProfile {variant.pool}")
    kind = profile.spec.hardware.kind
    request = FitRequest(model, precision, api_model.context_length)
    fit = fit_replica(request, hardware)
    calibration, ttft = _calibration(profile, hardware, api_model, precision)
    devices_in_pool = setup.nodes * (hardware.devices_per_node if kind == "gpu" else 1)
    pool_currency = profile.spec.cost.currency
    try:
        device_hour = rates.convert(
            _device_cost_per_hour(profile, devices_in_pool), pool_currency, currency
        )
    except UnknownCurrencyRate as error:
        used_by = (
            f"PoolProfile {variant.pool}'s prices"
            if error.currency == pool_currency
            else "the deployment's reports"
        )
        raise UnknownCurrencyRate(error.currency, error.known, used_by) from None
    startup = startup_seconds(profile, setup)
    if not fit.fits:
        return PoolOption(
            name=variant.pool,
            kind=kind,
            variant=f"{model.name} {precision}",
            capacity_replicas=0,
            replica_cost_per_hour=0.0,
            tokens_per_second_per_replica=0.0,
            tokens_per_second_per_request=0.0,
            startup_seconds=startup,
            fits=False,
            fit_reason=fit.reason,
            currency=currency,
        )
    devices = _devices(fit.devices, variant, hardware, kind, where)
    fit = replace(fit, devices=devices)
    throughput = replica_throughput(request, fit, calibration)
    per_node = hardware.devices_per_node // devices
    # In a cpu pool the node is the priced device; a replica holds `devices` of its sockets.
    share = 1.0 if kind == "gpu" else 1.0 / hardware.devices_per_node
    replica_hour = device_hour * devices * share
    return PoolOption(
        name=variant.pool,
        kind=kind,
        variant=f"{model.name} {precision} ({variant.engine})",
        capacity_replicas=setup.nodes * per_node,
        replica_cost_per_hour=replica_hour,
        tokens_per_second_per_replica=throughput.capacity_tokens_per_s.value,
        tokens_per_second_per_request=throughput.single_stream_tokens_per_s.value,
        startup_seconds=startup,
        time_to_first_token_seconds=ttft,
        gpus_per_replica=devices if kind == "gpu" else 0,
        currency=currency,
    )


def startup_seconds(profile: PoolProfile, setup: PoolSetup = PoolSetup()) -> float:
    """A replica's start-up time on the pool: given from outside (the replay's `--startup`),
    else the PoolProfile's `startupSeconds`, else the default for its kind."""
    if setup.startup_seconds is not None:
        return setup.startup_seconds
    if profile.spec.startup_seconds is not None:
        return profile.spec.startup_seconds
    return DEFAULT_STARTUP_SECONDS[profile.spec.hardware.kind]


def replica_resources(
    deployment: DeepSeekDeployment, variant: Variant, profile: PoolProfile
) -> ReplicaResources:
    """What one replica of the variant requests on the pool: on a gpu pool its GPUs, with the
    host cores and memory that come with them; on a cpu pool its share of a node's cores and
    memory (the sockets it holds, as the cost model bills it). The variant must fit the pool."""
    index = deployment.spec.variants.index(variant)
    where = f"spec.variants[{index}]"
    api_model = variant.model or deployment.spec.model
    model = _catalog_model(api_model, f"{where}.model" if variant.model else "spec.model")
    hardware = _hardware(profile, f"PoolProfile {variant.pool}")
    node = profile.spec.hardware
    fit = fit_replica(FitRequest(model, variant.precision, api_model.context_length), hardware)
    if not fit.fits:
        raise PlanningInputError(
            f"{where}: the model does not fit pool {variant.pool}: {fit.reason}"
        )
    devices = _devices(fit.devices, variant, hardware, node.kind, where)
    share = devices / hardware.devices_per_node
    return ReplicaResources(
        gpus=devices if node.kind == "gpu" else 0,
        cpu_millicores=max(1, int(node.cpu_cores * 1000 * share)),
        memory_bytes=max(1, int(node.memory_gib * 2**30 * share)),
    )


def node_cost_per_hour(profile: PoolProfile, nodes: int) -> float:
    """What one node of the pool costs per hour, in the pool's own currency (staff cost spread
    over the pool's `nodes`)."""
    node = profile.spec.hardware
    devices_per_node = (node.gpus_per_node or 1) if node.kind == "gpu" else 1
    return _device_cost_per_hour(profile, max(1, nodes) * devices_per_node) * devices_per_node


def _devices(fitted: int, variant: Variant, hardware: HardwareSpec, kind: str, where: str) -> int:
    """Devices per replica: what the fit needs, at least the tensor-parallel degree on GPUs."""
    if kind != "gpu":
        return fitted
    devices = max(fitted, variant.tensor_parallel)
    if devices > hardware.devices_per_node:
        raise PlanningInputError(
            f"{where}.tensorParallel: {devices} GPUs per replica, but a node of pool "
            f"{variant.pool} has {hardware.devices_per_node}"
        )
    return devices
