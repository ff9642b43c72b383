"""`deepseek-operator cluster up|down|status|kubeconfig|build`: the embedded local cluster."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec

import typer
from pydantic import Field
from rich.console import Console
from rich.table import Table

from deepseek_operator.cli.inputs import CommandOptions, require_extra, stop
from deepseek_operator.controlplane import build, cluster
from deepseek_operator.controlplane.errors import ClusterConfigError, ControlPlaneError
from deepseek_operator.controlplane.topology import load_topology

P = ParamSpec("P")

cluster_app = typer.Typer(
    help="A real local Kubernetes control plane with simulated GPU and CPU node pools.",
    no_args_is_help=True,
)
console = Console(stderr=True)

StateDirOption = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help=f"Where the cluster keeps its data, certificates, logs and kubeconfig "
        f"(default: ${cluster.STATE_ENV} or ~/.local/state/deepseek-operator/local-cluster).",
    ),
]


def _state_dir(value: Path | None) -> Path:
    state_dir = (value or cluster.default_state_dir()).resolve()
    if state_dir.exists() and not state_dir.is_dir():
        stop(f"--state-dir: {state_dir} is not a directory")
    return state_dir


def _fail(error: ControlPlaneError) -> typer.Exit:
    console.print(f"[bold red]error:[/] {error}", highlight=False)
    return typer.Exit(code=1)


def _reports_errors(command: Callable[P, None]) -> Callable[P, None]:
    """Every cluster command turns a ControlPlaneError into its message: exit 2 for a bad
    cluster file (the user's input, as for every command), 1 for a cluster that fails."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except ClusterConfigError as error:
            stop(f"--config: {error}")
        except cluster.Terminated as signalled:
            console.print(f"{signalled}: stopped what had started", highlight=False)
            raise typer.Exit(code=signalled.exit_code) from None
        except ControlPlaneError as error:
            raise _fail(error) from None

    return wrapper


class UpOptions(CommandOptions):
    """`cluster up`'s numeric options and their bounds."""

    # Each start step (etcd healthy, API ready, nodes Ready) takes seconds; an hour is stuck.
    timeout: float = Field(gt=0, le=3600)


def _default_config() -> Path:
    return Path("examples/cluster.yaml")


@cluster_app.command()
@_reports_errors
def up(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="Pools of simulated nodes (see examples/cluster.yaml)."
        ),
    ] = None,
    state_dir: StateDirOption = None,
    api_port: Annotated[
        int | None,
        typer.Option(
            min=1, max=65535, help="kube-apiserver port on 127.0.0.1 (default: a free one)."
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each step.")] = 180.0,
) -> None:
    """Build the binaries if needed, start the cluster, and wait until every node is Ready."""
    bounds = UpOptions.check(timeout=timeout)
    config_path = config or _default_config()
    load_topology(config_path)  # the whole file, before anything starts
    require_extra("cluster", "cryptography")
    options = cluster.UpOptions(
        config=config_path,
        state_dir=_state_dir(state_dir),
        api_port=api_port,
        timeout_seconds=bounds.timeout,
    )
    started = time.monotonic()
    with console.status("starting the local cluster…") as spinner:
        state = cluster.up(options, progress=lambda message: spinner.update(message))
    console.print(
        f"[green]ready[/] in {time.monotonic() - started:.1f} s: {len(state.nodes)} nodes, "
        f"API {state.server}"
    )
    console.print(f"export KUBECONFIG={state.kubeconfig}")


@cluster_app.command()
@_reports_errors
def down(state_dir: StateDirOption = None) -> None:
    """Stop every process of the local cluster."""
    stopped = cluster.down(_state_dir(state_dir))
    console.print(f"stopped {len(stopped)} processes" if stopped else "no cluster was running")


@cluster_app.command()
@_reports_errors
def status(state_dir: StateDirOption = None) -> None:
    """Show the cluster's processes; exit 0 only if `up` finished and every process runs."""
    health = cluster.status(_state_dir(state_dir))
    state = health.state
    if state is None and not health.components:
        console.print("no local cluster")
        raise typer.Exit(code=1)
    if health.components:
        table = Table("component", "pid", "running")
        for item in health.components:
            running = "yes" if item.running else "[red]no[/]"
            name = item.name if item.recorded else f"{item.name} (not in state.json)"
            table.add_row(name, str(item.pid), running)
        Console().print(table)
    if state is not None:
        Console().print(f"API {state.server}\nkubeconfig {state.kubeconfig}")
    if health.problem is not None:
        console.print(f"[bold red]not healthy:[/] {health.problem}", highlight=False)
        raise typer.Exit(code=1)


@cluster_app.command()
@_reports_errors
def kubeconfig(state_dir: StateDirOption = None) -> None:
    """Print the kubeconfig path (use: export KUBECONFIG=$(deepseek-operator cluster kubeconfig))."""
    health = cluster.status(_state_dir(state_dir))
    if health.state is None or not health.healthy:
        # after `down` the file remains, but its certificates are replaced by the next `up`
        why = health.problem or "no local cluster"
        console.print(f"{why}: run `deepseek-operator cluster up`", highlight=False)
        raise typer.Exit(code=1)
    print(health.state.kubeconfig)


@cluster_app.command(name="build")
@_reports_errors
def build_binaries() -> None:
    """Build (or find in the cache) etcd, the Kubernetes control plane, kwok and helm."""
    started = time.monotonic()
    with console.status("building control-plane binaries…") as spinner:
        binaries = build.ensure_binaries(progress=lambda message: spinner.update(message))
    for name, path in vars(binaries).items():
        console.print(f"{name:24} {path}")
    console.print(f"done in {time.monotonic() - started:.1f} s (cache: {build.cache_root()})")


def register(app: typer.Typer) -> None:
    app.add_typer(cluster_app, name="cluster")
