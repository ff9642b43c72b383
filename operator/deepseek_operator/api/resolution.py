"""Checks the CRD schema cannot make: names that point outside the resource.

The API server validates a resource alone, so a well-formed time zone that does not exist, a
variant naming a PoolProfile nobody created, or an unknown catalog key all pass admission. The
operator runs these checks with what it observed (the PoolProfiles, the catalog) and reports
each problem on Ready=False with the reason given here. Pure: the known names are arguments.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from deepseek_operator.api.conditions import (
    REASON_POOL_NOT_FOUND,
    REASON_UNKNOWN_ACCELERATOR,
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


class UnknownTimeZone(ValueError):
    """A name the IANA time zone database does not know; `name` is the name as given."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"unknown IANA time zone {name!r}")


def lookup_time_zone(name: str) -> ZoneInfo:
    """The zone `name` from the IANA database (the system's, else the tzdata package).

    The one place a zone is looked up: the schedule, traces and commands all come here, so a
    name is accepted or refused the same way everywhere. Raises `UnknownTimeZone` for a name
    the database lacks, a malformed one ("", "/etc/x", "../x") and a directory ("America").
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise UnknownTimeZone(name) from exc


def find_spec_problems(
    spec: DeepSeekDeploymentSpec,
    *,
    pool_names: Collection[str],
    catalog_keys: Collection[str] | None = None,
    accelerators: Mapping[str, str] | None = None,
    hardware_names: Collection[str] | None = None,
) -> list[SpecProblem]:
    """Every reference in `spec` that does not resolve, in field order.

    `catalog_keys` None skips the catalog check (for callers without a catalog at hand), and so
    does `hardware_names` None the check of `accelerators` (each pool's
    hardware.acceleratorModel, by pool name): the hardware catalog supplies what a PoolProfile
    leaves out (memory bandwidth, devices per node), so a pool it does not know cannot be sized.
    """
    problems: list[SpecProblem] = []
    zone = spec.schedule.time_zone
    try:
        lookup_time_zone(zone)
    except UnknownTimeZone:
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
            continue
        accelerator = (accelerators or {}).get(variant.pool)
        if hardware_names is not None and accelerator not in (None, *hardware_names):
            problems.append(
                SpecProblem(
                    REASON_UNKNOWN_ACCELERATOR,
                    f"spec.variants[{index}].pool",
                    f"PoolProfile {variant.pool!r} has hardware.acceleratorModel "
                    f"{accelerator!r}, which is not in the hardware catalog "
                    f"(known: {', '.join(sorted(hardware_names))})",
                )
            )
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
    # costModel.baselinePool is one of the variants' pools (an admission rule), so a missing
    # baseline pool is already reported at its variant.
    return problems


def _missing_pool(field: str, name: str) -> SpecProblem:
    return SpecProblem(
        REASON_POOL_NOT_FOUND,
        field,
        f"PoolProfile {name!r} does not exist (kubectl get poolprofiles lists the pools)",
    )
