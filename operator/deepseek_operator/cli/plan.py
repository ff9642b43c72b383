"""`deepseek-operator plan`: a what-if for the planner — pools, demand and an instant in, a plan out.

Two ways in. A what-if file holds the deployment's planning sections exactly as in the CRD
(``replicas``, ``slo``, ``schedule``, ``load``, ``migration``, ``costModel``, validated by the
API's own models and rules) and each pool as the planner sees it (free replicas, cost per
replica-hour, tokens/s); see ``examples/plan-what-if.yaml``. Or a real DeepSeekDeployment and
its PoolProfiles (``--deployment``, ``--pools``), turned into pools with the cost model the same
way ``simulate`` does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from rich.console import Console
from rich.table import Table

from deepseek_operator.api.base import ApiModel
from deepseek_operator.api.deployment import (
    MIN_AVAILABLE_WITHIN_MAX_REPLICAS,
    MIN_AVAILABLE_WITHIN_WINDOW_MAX,
    SLO,
    CostModelOverrides,
    Load,
    Migration,
    Replicas,
    Schedule,
)
from deepseek_operator.api.vocabulary import (
    MAX_DEMAND_TOKENS_PER_SECOND,
    MAX_DEVICES,
    MAX_REPLICAS,
    MAX_STARTUP_SECONDS,
    MAX_TOKENS_PER_SECOND_PER_REPLICA,
    Currency,
    HardwareKind,
    Money,
    ResourceName,
    ShortText,
    instant_in_range,
)
from deepseek_operator.cli.inputs import (
    CommandOptions,
    InputError,
    missing_rate_message,
    read_yaml,
    stop,
    validation_message,
)
from deepseek_operator.cli.resource_files import (
    ClusterOption,
    NodesOption,
    StartupOption,
    load_deployment,
    load_pools,
    pool_counts,
    pool_setups,
)
from deepseek_operator.core.costing.cost import UnknownCurrencyRate
from deepseek_operator.core.costing.money import format_money
from deepseek_operator.core.planning.inputs import plan_spec
from deepseek_operator.core.planning.planner import (
    Plan,
    PlanSpec,
    PoolOption,
    PoolReplicas,
    check_pools,
    plan,
)
from deepseek_operator.core.replay.inputs import replay_inputs


class PlanningSections(ApiModel):
    """The planning sections of a DeepSeekDeployment spec, with the CRD's models and rules."""

    cross_field_rules = (MIN_AVAILABLE_WITHIN_MAX_REPLICAS, MIN_AVAILABLE_WITHIN_WINDOW_MAX)

    replicas: Replicas = Field(default_factory=Replicas)
    slo: SLO = Field(default_factory=SLO)
    schedule: Schedule = Field(default_factory=Schedule)
    load: Load | None = None
    migration: Migration = Field(default_factory=Migration)
    cost_model: CostModelOverrides | None = None


class _Strict(BaseModel):
    # strict and finite, as the API models are: `running: {a100: "2"}` or `.inf` is a mistake
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        strict=True,
        allow_inf_nan=False,
    )


ReplicaCount = Annotated[int, Field(ge=0, le=MAX_REPLICAS)]
MAX_POOLS = 64
"""Pools in one what-if: the MILP has a variable per pool; a deployment lists at most 8."""


class _Pool(_Strict):
    name: ResourceName
    kind: HardwareKind
    variant: ShortText
    # Free replicas beyond a deployment's bound change nothing; a pool has at most that many.
    capacity_replicas: int = Field(ge=0, le=MAX_DEVICES)
    replica_cost_per_hour: Money
    tokens_per_second_per_replica: float = Field(gt=0, le=MAX_TOKENS_PER_SECOND_PER_REPLICA)
    tokens_per_second_per_request: float = Field(gt=0, le=MAX_TOKENS_PER_SECOND_PER_REPLICA)
    startup_seconds: float = Field(default=0, ge=0, le=MAX_STARTUP_SECONDS)
    # the SLO's bound on time to first token
    time_to_first_token_seconds: float | None = Field(default=None, gt=0, le=3600)
    # tensor parallelism tops at 8 GPUs, on nodes of at most 16
    gpus_per_replica: int = Field(default=0, ge=0, le=16)
    fits: bool = True
    fit_reason: str = Field(default="", max_length=1024)
    currency: Currency = "USD"


class _WhatIf(_Strict):
    spec: PlanningSections = Field(default_factory=PlanningSections)
    pools: list[_Pool] = Field(min_length=1, max_length=MAX_POOLS)
    running: dict[str, ReplicaCount] = Field(default={}, max_length=MAX_POOLS)


class PlanOptions(CommandOptions):
    """plan's numeric options and their bounds."""

    demand: float | None = Field(default=None, ge=0, le=MAX_DEMAND_TOKENS_PER_SECOND)


@dataclass(frozen=True)
class PlannerInputs:
    spec: PlanSpec
    pools: list[PoolOption]
    running: list[PoolReplicas]


def load_what_if(data: object, source: str = "what-if") -> PlannerInputs:
    """YAML data → the planner's inputs; every error names its field."""
    try:
        parsed = _WhatIf.model_validate(data)
    except ValidationError as exc:
        raise InputError(validation_message(exc, source, data)) from exc
    try:
        spec = plan_spec(parsed.spec)
        pools = [PoolOption(**p.model_dump()) for p in parsed.pools]
        check_pools(pools)
    except ValueError as exc:
        raise InputError(f"{source}: {exc}") from exc
    return PlannerInputs(spec, pools, _running(parsed.running, pools, f"{source}: running"))


def load_deployment_inputs(
    deployment: Path,
    pools: Path,
    nodes: Sequence[str] = (),
    cluster: Path | None = None,
    startup: Sequence[str] = (),
    running: Sequence[str] = (),
) -> PlannerInputs:
    """A DeepSeekDeployment and its PoolProfiles → the planner's inputs, as simulate reads them."""
    try:
        inputs = replay_inputs(
            load_deployment(deployment), load_pools(pools), pool_setups(nodes, cluster, startup)
        )
    except UnknownCurrencyRate as exc:
        raise InputError(f"{deployment}: {missing_rate_message(exc)}") from exc
    except ValueError as exc:  # PlanningInputError, or a schedule the planner refuses
        raise InputError(f"{deployment}: {exc}") from exc
    options = list(inputs.options)
    now_running = _running(
        pool_counts(running, "--running", "replicas", MAX_REPLICAS), options, "--running"
    )
    return PlannerInputs(inputs.spec, options, now_running)


def _running(
    replicas: dict[str, int], pools: Sequence[PoolOption], where: str
) -> list[PoolReplicas]:
    unknown = sorted(set(replicas) - {p.name for p in pools})
    if unknown:
        raise InputError(f"{where} names pools that are not in pools: {', '.join(unknown)}")
    return [PoolReplicas(name, n, n) for name, n in replicas.items()]


def register(app: typer.Typer) -> None:
    app.command(name="plan")(plan_command)


def plan_command(
    what_if: Annotated[
        Path | None,
        typer.Argument(
            help="What-if YAML: spec rules, pools, running replicas. Or use --deployment/--pools.",
            exists=True,
            metavar="FILE",
        ),
    ] = None,
    deployment: Annotated[
        Path | None,
        typer.Option("--deployment", help="DeepSeekDeployment YAML (instead of FILE)."),
    ] = None,
    pools: Annotated[
        Path | None,
        typer.Option("--pools", "-p", help="PoolProfile YAML (one or more), with --deployment."),
    ] = None,
    nodes: NodesOption = None,
    cluster: ClusterOption = None,
    startup: StartupOption = None,
    running: Annotated[
        list[str] | None,
        typer.Option("--running", help="Replicas running now, POOL=N (repeat); default none."),
    ] = None,
    demand: Annotated[
        float | None,
        typer.Option("--demand", "-d", help="Output tokens/s demanded; omit: metrics unavailable."),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at", help="Instant, ISO 8601 with offset (2026-11-28T23:00+08:00); default now."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Plan the placement for a demand at an instant, without a cluster."""
    console = Console()
    bounds = PlanOptions.check(demand=demand)
    try:
        inputs = _inputs(
            what_if,
            deployment,
            pools,
            nodes=nodes or [],
            cluster=cluster,
            startup=startup or [],
            running=running or [],
        )
        now = _instant(at)
    except InputError as exc:
        stop(exc)
    result = plan(inputs.spec, inputs.pools, inputs.running, bounds.demand, now)
    if as_json:
        typer.echo(json.dumps(plan_as_dict(result), indent=2))
        return
    console.print(_table(result))
    for line in _details(result, inputs.spec.schedule.zone):
        console.print(line, highlight=False, soft_wrap=True)
    console.print(result.reason, highlight=False, soft_wrap=True)


def _inputs(
    what_if: Path | None,
    deployment: Path | None,
    pools: Path | None,
    *,
    nodes: Sequence[str],
    cluster: Path | None,
    startup: Sequence[str],
    running: Sequence[str],
) -> PlannerInputs:
    if what_if is not None:
        given = [
            flag
            for flag, value in [
                ("--deployment", deployment),
                ("--pools", pools),
                ("--nodes", nodes),
                ("--cluster", cluster),
                ("--startup", startup),
                ("--running", running),
            ]
            if value
        ]
        if given:
            raise InputError(
                f"{', '.join(given)}: not with a what-if FILE, which holds pools and running "
                "replicas itself"
            )
        data = read_yaml(what_if, "FILE")
        if not isinstance(data, dict):
            raise InputError(
                f"FILE: {what_if} must hold a mapping with a `pools:` list "
                "(see examples/plan-what-if.yaml)"
            )
        return load_what_if(data, f"FILE {what_if}")
    if deployment is None or pools is None:
        raise InputError("give a what-if FILE, or --deployment DSD.yaml with --pools POOLS.yaml")
    return load_deployment_inputs(deployment, pools, nodes, cluster, startup, running)


def _instant(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"--at: must be ISO 8601, got {text!r}") from exc
    if value.tzinfo is None:
        raise InputError(f"--at: needs a UTC offset or Z (got {text!r}): the planner never guesses")
    try:
        return instant_in_range(value, "--at")
    except ValueError as exc:
        raise InputError(str(exc)) from None


def plan_as_dict(result: Plan) -> dict[str, Any]:
    return {
        "pools": [
            {
                "pool": p.pool,
                "kind": p.kind,
                "variant": p.variant,
                "replicas": p.replicas,
                "costPerHour": p.cost_per_hour,
                "tokensPerSecond": p.tokens_per_second,
            }
            for p in result.pools
        ],
        "costPerHour": result.cost_per_hour,
        "costPerMillionTokens": result.cost_per_million_tokens,
        "capacityTokensPerSecond": result.capacity_tokens_per_second,
        "demandTokensPerSecond": result.demand_tokens_per_second,
        "requiredTokensPerSecond": result.required_tokens_per_second,
        "baselinePool": result.baseline_pool,
        "baselineCostPerHour": result.baseline_cost_per_hour,
        "savingsFraction": result.savings_fraction,
        "window": result.window,
        "policy": result.policy,
        "nextTransition": result.next_transition.isoformat() if result.next_transition else None,
        "nextWindow": result.next_window,
        "nextPolicy": result.next_policy,
        "change": str(result.change),
        "feasible": result.feasible,
        "shortfallTokensPerSecond": result.shortfall_tokens_per_second,
        "solver": result.solver,
        "excluded": [{"pool": p, "why": why} for p, why in result.excluded],
        "reason": result.reason,
        "currency": result.currency,
    }


def _table(result: Plan) -> Table:
    table = Table(title=f"plan: {result.change} ({result.policy}, window {result.window or '-'})")
    table.add_column("pool")
    table.add_column("kind")
    table.add_column("variant", overflow="fold")
    table.add_column("replicas", justify="right")
    table.add_column(f"{result.currency}/h", justify="right")
    table.add_column("tok/s", justify="right")
    for p in result.pools:
        table.add_row(
            p.pool,
            p.kind,
            p.variant,
            str(p.replicas),
            format_money(p.cost_per_hour, digits=2, grouping=False),
            f"{p.tokens_per_second:.1f}",
        )
    table.add_section()
    table.add_row(
        "total",
        "",
        "",
        str(result.total_replicas),
        format_money(result.cost_per_hour, digits=2, grouping=False),
        f"{result.capacity_tokens_per_second:.1f}",
    )
    return table


def _details(result: Plan, zone: ZoneInfo) -> list[str]:
    lines = [f"excluded: {pool}: {why}" for pool, why in result.excluded]
    if result.cost_per_million_tokens is not None:
        lines.append(
            f"cost per million tokens: {result.cost_per_million_tokens:.2f} {result.currency}"
        )
    if result.next_transition is not None:
        local = result.next_transition.astimezone(zone).isoformat(timespec="minutes")
        then = f"window {result.next_window}" if result.next_window else "outside windows"
        lines.append(
            f"next window transition: {local} ({zone.key}), then {then} ({result.next_policy})"
        )
    return lines
