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
from deepseek_operator.api.vocabulary import MAX_DEVICES, MAX_STARTUP_SECONDS
from deepseek_operator.cli.inputs import InputError, read_yaml_documents, validation_message
from deepseek_operator.controlplane.errors import ClusterConfigError
from deepseek_operator.controlplane.topology import load_topology
from deepseek_operator.core.planning.inputs import PoolSetup

MAX_NODES_PER_POOL = MAX_DEVICES
"""`--nodes`: a node holds at least one device, so a pool has no more nodes than devices."""

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


def pool_numbers(values: Sequence[str], option: str, most: float) -> dict[str, float]:
    """`POOL=NUMBER` flags (each number finite, ≥ 0 and at most `most`) by pool name."""
    pairs: dict[str, float] = {}
    for value in values:
        name, sep, number = value.partition("=")
        try:
            parsed = float(number)
        except ValueError:
            parsed = math.nan
        if not sep or not name or not math.isfinite(parsed) or parsed < 0:
            raise InputError(f"{option}: expected POOL=NUMBER (e.g. a100=2), got {value!r}")
        if parsed > most:
            raise InputError(f"{option}: {value!r}: the number may be at most {most:g}")
        pairs[name] = parsed
    return pairs


def pool_counts(values: Sequence[str], option: str, unit: str, most: int) -> dict[str, int]:
    """`POOL=N` flags whose numbers must be whole (nodes, replicas) and at most `most`."""
    counts: dict[str, int] = {}
    for name, number in pool_numbers(values, option, most).items():
        if number != int(number):
            raise InputError(f"{option}: {name}={number:g} is not a whole number of {unit}")
        counts[name] = int(number)
    return counts


def node_counts(values: Sequence[str], cluster: Path | None) -> dict[str, int]:
    """Nodes per pool from a cluster.yaml (`pools[].nodes`), then `--nodes POOL=N` on top.

    The file is read with the local cluster's own schema, so it is refused here exactly as
    `cluster up --config` would refuse it.
    """
    counts: dict[str, int] = {}
    if cluster is not None:
        try:
            topology = load_topology(cluster)
        except ClusterConfigError as error:
            raise InputError(f"--cluster: {error}") from None
        counts = {pool.name: pool.nodes for pool in topology.pools}
    counts.update(pool_counts(values, "--nodes", "nodes", MAX_NODES_PER_POOL))
    return counts


def pool_setups(
    nodes: Sequence[str], cluster: Path | None, startup: Sequence[str]
) -> dict[str, PoolSetup]:
    """What the cluster would tell the operator about each pool named in the flags."""
    counts = node_counts(nodes, cluster)
    startups = pool_numbers(startup, "--startup", MAX_STARTUP_SECONDS)
    return {
        name: PoolSetup(nodes=counts.get(name, 1), startup_seconds=startups.get(name))
        for name in set(counts) | set(startups)
    }
