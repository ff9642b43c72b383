"""Checks the CRD schema cannot make: names that point outside the resource.

The API server validates a resource alone, so a well-formed time zone that does not exist, a
variant naming a PoolProfile nobody created, or an unknown catalog key all pass admission. The
operator runs these checks with what it observed (the PoolProfiles, the catalog) and reports
each problem on Ready=False with the reason given here. Pure: the known names are arguments.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Collection
from dataclasses import dataclass

from deepseek_operator.api.conditions import (
    REASON_POOL_NOT_FOUND,
    REASON_UNKNOWN_CATALOG_KEY,
    REASON_UNKNOWN_TIME_ZONE,
)
from deepseek_operator.api.deployment import DeepSeekDeploymentSpec


@dataclass(frozen=True)
class SpecProblem:
    """One broken reference: the condition reason, the field, and a sentence for the user."""

    reason: str
    field: str
    message: str


def time_zone_exists(name: str) -> bool:
    """True when the IANA database (system or the tzdata package) knows `name`."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def find_spec_problems(
    spec: DeepSeekDeploymentSpec,
    *,
    pool_names: Collection[str],
    catalog_keys: Collection[str] | None = None,
) -> list[SpecProblem]:
    """Every reference in `spec` that does not resolve, in field order.

    `catalog_keys` None skips the catalog check (for callers without a catalog at hand).
    """
    problems: list[SpecProblem] = []
    zone = spec.schedule.time_zone
    if not time_zone_exists(zone):
        problems.append(
            SpecProblem(
                REASON_UNKNOWN_TIME_ZONE,
                "spec.schedule.timeZone",
                f"time zone {zone!r} is not in the IANA time zone database",
            )
        )
    models = [("spec.model", spec.model)]
    models += [
        (f"spec.variants[{index}].model", variant.model)
        for index, variant in enumerate(spec.variants)
        if variant.model is not None
    ]
    for index, variant in enumerate(spec.variants):
        if variant.pool not in pool_names:
            problems.append(_missing_pool(f"spec.variants[{index}].pool", variant.pool))
    if catalog_keys is not None:
        for field, model in models:
            key = model.catalog_key
            if key is not None and key not in catalog_keys:
                problems.append(
                    SpecProblem(
                        REASON_UNKNOWN_CATALOG_KEY,
                        f"{field}.catalogKey",
                        f"catalog key {key!r} is not in the model catalog "
                        f"(known: {', '.join(sorted(catalog_keys))})",
                    )
                )
    baseline = spec.cost_model.baseline_pool if spec.cost_model else None
    if baseline is not None and baseline not in pool_names:
        problems.append(_missing_pool("spec.costModel.baselinePool", baseline))
    return problems


def _missing_pool(field: str, name: str) -> SpecProblem:
    return SpecProblem(
        REASON_POOL_NOT_FOUND,
        field,
        f"PoolProfile {name!r} does not exist (kubectl get poolprofiles lists the pools)",
    )
