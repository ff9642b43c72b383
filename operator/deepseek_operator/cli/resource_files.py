"""A DeepSeekDeployment, its PoolProfiles and the pools' node counts, read from files and flags.

`simulate` and `plan` read the same YAML a user applies to the cluster, and take what the
cluster would tell the operator (nodes per pool, replica start-up time) from the same flags
(`--nodes`, `--cluster`, `--startup`, declared here once) or a cluster.yaml; every problem is an
`InputError` naming the file and field or the flag.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from deepseek_operator.api.deployment import DeepSeekDeployment
from deepseek_operator.api.pool import PoolProfile
from deepseek_operator.cli.inputs import InputError, read_yaml_documents, validation_message
from deepseek_operator.core.planning.inputs import PoolSetup

NodesOption = Annotated[
    list[str] | None,
    typer.Option("--nodes", help="Nodes in a pool, POOL=N (repeat); default 1 per pool."),
]
ClusterOption = Annotated[
    Path | None,
    typer.Option("--cluster", help="Take node counts from a cluster.yaml (pools[].nodes)."),
]
StartupOption = Annotated[
    list[str] | None,
    typer.Option(
        "--startup",
        help="Replica start-to-Ready seconds, POOL=S (repeat); default gpu 120, cpu 60.",
    ),
]


def load_deployment(path: Path) -> DeepSeekDeployment:
    documents = read_yaml_documents(path, "--deployment")
    found = [d for d in documents if isinstance(d, dict) and d.get("kind") == "DeepSeekDeployment"]
    if len(found) != 1:
        raise InputError(
            f"--deployment: {path} must hold exactly one DeepSeekDeployment, found {len(found)}"
        )
    try:
        return DeepSeekDeployment.model_validate(found[0])
    except ValidationError as exc:
        raise InputError(validation_message(exc, str(path), found[0])) from exc


def load_pools(path: Path) -> list[PoolProfile]:
    profiles = []
    for index, document in enumerate(read_yaml_documents(path, "--pools")):
        if not isinstance(document, dict) or document.get("kind") != "PoolProfile":
            continue
        try:
            profiles.append(PoolProfile.model_validate(document))
        except ValidationError as exc:
            name = document.get("metadata", {}).get("name", f"document {index + 1}")
            raise InputError(validation_message(exc, f"{path} ({name})", document)) from exc
    if not profiles:
        raise InputError(f"--pools: {path} holds no PoolProfile")
    return profiles


def pool_numbers(values: Sequence[str], option: str) -> dict[str, float]:
    """`POOL=NUMBER` flags (each number finite and ≥ 0) by pool name."""
    pairs: dict[str, float] = {}
    for value in values:
        name, sep, number = value.partition("=")
        try:
            parsed = float(number)
        except ValueError:
            parsed = math.nan
        if not sep or not name or not math.isfinite(parsed) or parsed < 0:
            raise InputError(f"{option}: expected POOL=NUMBER (e.g. a100=2), got {value!r}")
        pairs[name] = parsed
    return pairs


def pool_counts(values: Sequence[str], option: str, unit: str) -> dict[str, int]:
    """`POOL=N` flags whose numbers must be whole (nodes, replicas)."""
    counts: dict[str, int] = {}
    for name, number in pool_numbers(values, option).items():
        if number != int(number):
            raise InputError(f"{option}: {name}={number:g} is not a whole number of {unit}")
        counts[name] = int(number)
    return counts


def node_counts(values: Sequence[str], cluster: Path | None) -> dict[str, int]:
    """Nodes per pool from a cluster.yaml (`pools[].nodes`), then `--nodes POOL=N` on top."""
    counts: dict[str, int] = {}
    if cluster is not None:
        documents = read_yaml_documents(cluster, "--cluster")
        pools = documents[0].get("pools") if documents and isinstance(documents[0], dict) else None
        if not isinstance(pools, list):
            raise InputError(f"--cluster: {cluster} has no `pools:` list")
        for index, pool in enumerate(pools):
            if not isinstance(pool, dict) or not isinstance(pool.get("nodes"), int):
                raise InputError(f"--cluster: pools[{index}].nodes must be a whole number")
            counts[str(pool.get("name"))] = int(pool["nodes"])
    counts.update(pool_counts(values, "--nodes", "nodes"))
    return counts


def pool_setups(
    nodes: Sequence[str], cluster: Path | None, startup: Sequence[str]
) -> dict[str, PoolSetup]:
    """What the cluster would tell the operator about each pool named in the flags."""
    counts = node_counts(nodes, cluster)
    startups = pool_numbers(startup, "--startup")
    return {
        name: PoolSetup(nodes=counts.get(name, 1), startup_seconds=startups.get(name))
        for name in set(counts) | set(startups)
    }
