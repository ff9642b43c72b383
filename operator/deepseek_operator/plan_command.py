"""`deepseek-operator plan`: a what-if for the planner — pools, demand and an instant in, a plan out.

The input file holds the deployment's planning rules in the CRD's own words (``replicas``,
``slo``, ``schedule``, ``load``, ``migration``) and each pool as the planner sees it (free
replicas, cost per replica-hour, tokens/s). See ``examples/plan-what-if.yaml``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import typer
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from deepseek_operator.core.planner import (
    Load,
    Migration,
    Plan,
    PlanSpec,
    Policy,
    PoolOption,
    PoolReplicas,
    ReplicaBounds,
    Schedule,
    Slo,
    SloOverride,
    Window,
    plan,
)

PolicyName = Literal["costOptimal", "preferGPU", "preferCPU", "cpuOnly", "gpuOnly"]


class _Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class _Replicas(_Strict):
    min: int = Field(default=1, ge=0)
    max: int = Field(default=4, ge=1)


class _Slo(_Strict):
    min_tokens_per_second_per_request: float | None = Field(default=None, gt=0)
    max_time_to_first_token_seconds: float | None = Field(default=None, gt=0)
    headroom_fraction: float = Field(default=0.2, ge=0, le=10)


class _SloOverride(_Strict):
    min_tokens_per_second_per_request: float | None = Field(default=None, gt=0)
    max_time_to_first_token_seconds: float | None = Field(default=None, gt=0)
    headroom_fraction: float | None = Field(default=None, ge=0, le=10)


class _Window(_Strict):
    name: str
    days: list[str] = Field(default=["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])
    start: str
    end: str
    policy: PolicyName = "costOptimal"
    replicas: _Replicas | None = None
    slo: _SloOverride | None = None


class _Schedule(_Strict):
    time_zone: str = "UTC"
    default_policy: PolicyName = "costOptimal"
    windows: list[_Window] = []
    exception_dates: list[str] = []


class _Load(_Strict):
    scale_up_stabilization_seconds: int = Field(default=60, ge=0)
    scale_down_stabilization_seconds: int = Field(default=600, ge=0)


class _Migration(_Strict):
    min_available: int = Field(default=1, ge=0)
    max_surge_gpus: int = Field(default=8, ge=0, alias="maxSurgeGPUs")
    cooldown_seconds: int = Field(default=600, ge=0)
    min_savings_percent: float = Field(default=10.0, ge=0, le=100)
    min_dwell_seconds: int = Field(default=900, ge=0)


class _Spec(_Strict):
    replicas: _Replicas = _Replicas()
    slo: _Slo = _Slo()
    schedule: _Schedule = _Schedule()
    load: _Load = _Load()
    migration: _Migration = _Migration()
    baseline_pool: str | None = None


class _Pool(_Strict):
    name: str
    kind: Literal["gpu", "cpu"]
    variant: str
    capacity_replicas: int = Field(ge=0)
    replica_cost_per_hour: float = Field(ge=0)
    tokens_per_second_per_replica: float = Field(gt=0)
    tokens_per_second_per_request: float = Field(gt=0)
    startup_seconds: float = Field(default=0, ge=0)
    time_to_first_token_seconds: float | None = Field(default=None, gt=0)
    gpus_per_replica: int = Field(default=0, ge=0)
    fits: bool = True
    fit_reason: str = ""
    currency: str = "USD"


class _WhatIf(_Strict):
    spec: _Spec = _Spec()
    pools: list[_Pool] = Field(min_length=1)
    running: dict[str, int] = {}


class WhatIfError(ValueError):
    """The what-if file is wrong; the message lists every bad field."""


def load_what_if(data: object) -> tuple[PlanSpec, list[PoolOption], list[PoolReplicas]]:
    """YAML data → the planner's inputs; every error names its field."""
    try:
        parsed = _WhatIf.model_validate(data)
    except ValidationError as exc:
        lines = [
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        ]
        raise WhatIfError("\n".join(lines)) from exc
    try:
        return _to_core(parsed)
    except ValueError as exc:
        raise WhatIfError(str(exc)) from exc


def _to_core(parsed: _WhatIf) -> tuple[PlanSpec, list[PoolOption], list[PoolReplicas]]:
    s = parsed.spec
    windows = tuple(
        Window(
            name=w.name,
            start=w.start,
            end=w.end,
            days=tuple(w.days),
            policy=Policy(w.policy),
            replicas=ReplicaBounds(w.replicas.min, w.replicas.max) if w.replicas else None,
            slo=SloOverride(**w.slo.model_dump()) if w.slo else None,
        )
        for w in s.schedule.windows
    )
    spec = PlanSpec(
        replicas=ReplicaBounds(s.replicas.min, s.replicas.max),
        slo=Slo(**s.slo.model_dump()),
        schedule=Schedule(
            time_zone=s.schedule.time_zone,
            windows=windows,
            exception_dates=tuple(s.schedule.exception_dates),
            default_policy=Policy(s.schedule.default_policy),
        ),
        load=Load(**s.load.model_dump()),
        migration=Migration(**s.migration.model_dump()),
        baseline_pool=s.baseline_pool,
    )
    pools = [PoolOption(**p.model_dump()) for p in parsed.pools]
    known = {p.name for p in pools}
    unknown = sorted(set(parsed.running) - known)
    if unknown:
        raise ValueError(f"running names pools that are not in pools: {', '.join(unknown)}")
    running = [PoolReplicas(name, n, n) for name, n in parsed.running.items()]
    return spec, pools, running


def register(app: typer.Typer) -> None:
    app.command(name="plan")(plan_command)


def plan_command(
    what_if: Annotated[
        Path,
        typer.Argument(
            help="What-if YAML: spec rules, pools, running replicas.",
            exists=True,
            metavar="FILE",
        ),
    ],
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
    try:
        data = yaml.safe_load(what_if.read_text())
        spec, pools, running = load_what_if(data)
        now = _instant(at)
        if demand is not None and demand < 0:
            raise WhatIfError(f"--demand must be ≥ 0 tokens/s, got {demand}")
    except (WhatIfError, yaml.YAMLError) as exc:
        console.print(f"[red]error in {escape(str(what_if))}:[/red]\n{escape(str(exc))}")
        raise typer.Exit(2) from exc
    result = plan(spec, pools, running, demand, now)
    if as_json:
        typer.echo(json.dumps(plan_as_dict(result), indent=2))
        return
    console.print(_table(result))
    for line in _details(result, spec.schedule.zone):
        console.print(line, highlight=False, soft_wrap=True)
    console.print(result.reason, highlight=False, soft_wrap=True)


def _instant(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise WhatIfError(f"--at must be ISO 8601, got {text!r}") from exc
    if value.tzinfo is None:
        raise WhatIfError(f"--at needs a UTC offset or Z (got {text!r}): the planner never guesses")
    return value


def plan_as_dict(result: Plan) -> dict[str, Any]:
    return {
        "pools": [
            {
                "pool": p.pool,
                "kind": str(p.kind),
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
        "policy": str(result.policy),
        "nextTransition": result.next_transition.isoformat() if result.next_transition else None,
        "nextWindow": result.next_window,
        "nextPolicy": None if result.next_policy is None else str(result.next_policy),
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
            str(p.kind),
            p.variant,
            str(p.replicas),
            f"{p.cost_per_hour:.2f}",
            f"{p.tokens_per_second:.1f}",
        )
    table.add_section()
    table.add_row(
        "total",
        "",
        "",
        str(result.total_replicas),
        f"{result.cost_per_hour:.2f}",
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
