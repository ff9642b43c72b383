"""`deepseek-operator run`: the operator itself (kopf, with the handlers in `handlers.py`)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Annotated

import typer
from pydantic import AwareDatetime, Field, StringConstraints

from deepseek_operator.cli.inputs import CommandOptions, stop

PEERING_PATTERN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
"""A ClusterKopfPeering's name: a DNS subdomain."""
NAMESPACE_PATTERN = r"^!?[-a-z0-9*?\[\]]{1,63}$"
"""A namespace, or kopf's glob of namespaces (`ml-*`), optionally negated (`!kube-*`)."""
LIVENESS_PATTERN = r"^https?://[^/\s:]+(:[0-9]{1,5})?(/[^\s]*)?$"
"""kopf's probe endpoint: a scheme, the address to bind, an optional port and path."""


class RunOptions(CommandOptions):
    """run's options and their bounds."""

    # kopf stores the priority in the peering object; Kubernetes integers are int32 at heart.
    priority: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)
    namespace: list[Annotated[str, StringConstraints(pattern=NAMESPACE_PATTERN)]] = Field(
        max_length=256
    )
    peering: Annotated[str, StringConstraints(pattern=PEERING_PATTERN)]
    liveness: (
        Annotated[str, StringConstraints(max_length=2048, pattern=LIVENESS_PATTERN)] | None
    ) = None
    # A day walked in a minute is 1440x; beyond a million, a reconcile interval is a fortnight.
    time_scale: float = Field(default=1.0, ge=1.0, le=1_000_000)
    clock_start: AwareDatetime | None = None
    # Epoch seconds between 2001 and 2286: a real instant, not a typo's 0 or milliseconds.
    clock_anchor: float | None = Field(default=None, ge=1e9, le=1e10)


class _QuietHandlers(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Handler '") and message.endswith("' succeeded."))


def register(app: typer.Typer) -> None:
    app.command(
        "run",
        help="Run the operator: reconcile every DeepSeekDeployment in the cluster.",
    )(run)


def run(
    kubeconfig: Annotated[
        Path | None,
        typer.Option(
            "--kubeconfig",
            help="Cluster to run against; default: $KUBECONFIG, ~/.kube/config, or the pod's "
            "service account.",
        ),
    ] = None,
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace",
            "-n",
            help="Watch only this namespace (repeatable; globs allowed); default: all.",
        ),
    ] = None,
    priority: Annotated[
        int | None,
        typer.Option(
            help="Peering priority: of several operators, the highest acts. Default: the "
            "earliest started acts.",
        ),
    ] = None,
    peering: Annotated[
        str,
        typer.Option(
            help="The ClusterKopfPeering operators meet in: of those in one peering, one acts. "
            "Give installs that watch different namespaces their own.",
        ),
    ] = "deepseek-operator",
    peering_lifetime: Annotated[
        int,
        typer.Option(
            min=5,
            max=3600,
            help="Seconds a silent operator counts as alive; a standby takes over after this.",
        ),
    ] = 30,
    standalone: Annotated[
        bool, typer.Option(help="Act without peering (one operator only, e.g. for development).")
    ] = False,
    liveness: Annotated[
        str | None,
        typer.Option(help="Serve a liveness probe, e.g. http://0.0.0.0:8081/healthz."),
    ] = None,
    metrics_port: Annotated[
        int,
        typer.Option(
            min=0, max=65535, help="Port of the operator's own Prometheus /metrics; 0: none."
        ),
    ] = 8080,
    metrics_address: Annotated[
        str, typer.Option(help="Address /metrics listens on, e.g. 127.0.0.1.")
    ] = "0.0.0.0",
    load_poll_seconds: Annotated[
        float,
        typer.Option(
            min=0.1,
            max=3600,
            help="How often one batched query reads every deployment's load from Prometheus; "
            "a deployment whose load moved is reconciled at once.",
        ),
    ] = 1.0,
    time_scale: Annotated[
        float,
        typer.Option(
            help="Demo and testing aid: decisions see a clock running this many times faster "
            "than real time (windows, cooldowns, stabilisation); never for production.",
        ),
    ] = 1.0,
    clock_start: Annotated[
        str | None,
        typer.Option(
            help="Demo and testing aid: the time decisions see at --clock-anchor (ISO 8601 with "
            "an offset, e.g. 2026-11-25T06:00+08:00); default: real time.",
        ),
    ] = None,
    clock_anchor: Annotated[
        float | None,
        typer.Option(
            help="The real instant (Unix seconds) --clock-start refers to; default: the start.",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every step.")] = False,
) -> None:
    """Run until interrupted; SIGTERM stops the daemons and leaves the peering cleanly."""
    checked = RunOptions.check(
        priority=priority,
        namespace=namespace or [],
        peering=peering,
        liveness=liveness,
        time_scale=time_scale,
        clock_start=clock_start,
        clock_anchor=clock_anchor,
    )
    if kubeconfig is not None:
        if not kubeconfig.is_file():
            stop(f"--kubeconfig: {kubeconfig} is not a file")
        os.environ["KUBECONFIG"] = str(kubeconfig.resolve())
    if priority is not None:
        os.environ["DEEPSEEK_OPERATOR_PRIORITY"] = str(priority)
    os.environ["DEEPSEEK_OPERATOR_PEERING_LIFETIME"] = str(peering_lifetime)
    os.environ["DEEPSEEK_OPERATOR_METRICS_PORT"] = str(metrics_port)
    os.environ["DEEPSEEK_OPERATOR_METRICS_ADDRESS"] = metrics_address
    os.environ["DEEPSEEK_OPERATOR_LOAD_POLL_SECONDS"] = str(load_poll_seconds)
    from deepseek_operator.adapters import clock

    os.environ[clock.SCALE_ENV] = repr(checked.time_scale)
    if checked.clock_start is not None:
        os.environ[clock.START_ENV] = checked.clock_start.isoformat()
    os.environ[clock.ANCHOR_ENV] = repr(checked.clock_anchor or time.time())

    import kopf
    from kubernetes.config.config_exception import ConfigException

    from deepseek_operator import handlers  # noqa: F401  (registers the handlers with kopf)
    from deepseek_operator.adapters.kube import KubeWriter

    try:
        KubeWriter.from_environment().close()
    except (ConfigException, OSError, ValueError) as error:
        stop(
            f"no cluster to run against ({error}): pass --kubeconfig, set KUBECONFIG, "
            "or run in a pod with a service account"
        )

    kopf.configure(verbose=verbose)
    if not verbose:
        # Every watch event runs a wake-up handler; their "succeeded" lines would drown the log.
        logging.getLogger("kopf.objects").addFilter(_QuietHandlers())
    namespaces = tuple(namespace or ())
    kopf.run(
        clusterwide=not namespaces,
        namespaces=namespaces,
        standalone=standalone,
        priority=priority,
        peering_name=peering,
        liveness_endpoint=liveness,
    )
