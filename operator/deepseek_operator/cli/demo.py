"""`deepseek-operator demo`: the operator at work over a compressed day, on the local cluster.

Brings up the local control plane with the sample pools, installs the Helm chart with the real
helm, runs the operator as a local process with a token of the chart's ServiceAccount (the
chart's own pod is simulated and runs no process), applies the sample PoolProfiles and r1-7b,
and walks a day in `--day-seconds`: the operator's clock runs faster (`run --time-scale`), and
a load source (`demo_load`) scraped by a real Prometheus follows the same clock. A live table
shows where the replicas are; at the end, a summary and a PNG (with its data as JSON). Without
`--keep` everything it started stops; with it, the cluster, operator, Prometheus and load
source keep running until `deepseek-operator cluster down`.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import Field
from rich.console import Console
from rich.live import Live

from deepseek_operator.cli import demo_day
from deepseek_operator.cli.inputs import CommandOptions, require_extra, stop

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "deepseek-operator"
CLUSTER = REPO / "examples" / "cluster.yaml"
POOLS = REPO / "examples" / "pools.yaml"
DEPLOYMENT = REPO / "examples" / "r1-7b-gpu-by-day-cpu-at-night.yaml"
RELEASE = "deepseek-operator"
RELEASE_NAMESPACE = "deepseek-system"
FIRST_BUILD_ESTIMATE = "about 12 minutes on 2 cores, less with more"
"""Measured: the control plane, etcd, kwok and helm built from Go modules on a 2-core machine."""

SETUP_LEAD_SECONDS = 15.0
"""Real seconds from choosing the clock to 06:00 on it: Prometheus and the operator start
(about 8 s measured on a shared 2-core machine) and r1-7b's first replica turns Ready."""

console = Console()


class DemoOptions(CommandOptions):
    """demo's numeric options and their bounds."""

    # Under 20 s a reconcile interval (5 s real) is a quarter of the day; an hour is plenty.
    day_seconds: float = Field(ge=20, le=3600)
    # kwok turns a model-server pod Ready after this many real seconds.
    startup_seconds: float = Field(ge=1, le=300)


def register(app: typer.Typer) -> None:
    app.command(
        "demo",
        help="The operator on a local cluster over a compressed day: placement, cost, savings.",
    )(demo)


def demo(
    day_seconds: Annotated[
        float, typer.Option(help="Real seconds the day (24 hours of the demo clock) takes.")
    ] = 120.0,
    startup_seconds: Annotated[
        float,
        typer.Option(
            help="Simulated model start-up of a replica, in real seconds (the samples say "
            "60-120 s; the demo shortens it so a move fits in its day)."
        ),
    ] = 3.0,
    output: Annotated[
        Path, typer.Option(help="The day's PNG; its data goes beside it as .json.")
    ] = Path("demo-day.png"),
    keep: Annotated[
        bool, typer.Option(help="Leave the cluster, operator, Prometheus and load running.")
    ] = False,
    prometheus: Annotated[
        bool,
        typer.Option(
            help="Load from a real Prometheus when one is installed; --no-prometheus: "
            "the time of day alone moves the replicas."
        ),
    ] = True,
    state_dir: Annotated[
        Path | None,
        typer.Option(help="The local cluster's state directory (default: `cluster up`'s)."),
    ] = None,
) -> None:
    """Run the demo to the end of its day, then stop what it started (unless --keep)."""
    checked = DemoOptions.check(day_seconds=day_seconds, startup_seconds=startup_seconds)
    if output.suffix.lower() != ".png":
        stop(f"--output: {output} must end in .png")
    if output.exists() and output.is_dir():
        stop(f"--output: {output} is a directory")
    if not output.resolve().parent.is_dir():
        stop(f"--output: {output.parent} is not a directory")
    for needed in (CHART, CLUSTER, POOLS, DEPLOYMENT):
        if not needed.exists():
            stop(f"demo needs the repository's {needed.name} ({needed}): run it from a clone")
    require_extra("cluster", "kubernetes", "kopf", "cryptography")

    state = (state_dir or _default_state_dir()).resolve()
    if state.exists() and not state.is_dir():
        stop(f"--state-dir: {state} is not a directory")
    walk_the_day(
        checked, output, state, keep=keep, prometheus=prometheus, named=state_dir is not None
    )


def _default_state_dir() -> Path:
    from deepseek_operator.controlplane import cluster

    return cluster.default_state_dir()


def walk_the_day(
    checked: DemoOptions, output: Path, state: Path, *, keep: bool, prometheus: bool, named: bool
) -> None:
    """Everything after the options are checked: cluster, chart, operator, the day, the end."""
    from deepseek_operator.controlplane import cluster
    from deepseek_operator.controlplane import prometheus as prom
    from deepseek_operator.controlplane.errors import ControlPlaneError

    began = time.monotonic()
    try:
        binaries = _binaries()
        with console.status("starting the local cluster…") as spinner:
            up = cluster.up(
                cluster.UpOptions(config=CLUSTER, state_dir=state),
                progress=lambda message: spinner.update(message),
            )
    except ControlPlaneError as error:
        hint = f"\n{error.hint}" if error.hint else ""
        console.print(f"[bold red]error:[/] {error}{hint}", highlight=False)
        raise typer.Exit(1) from None
    console.print(f"[green]cluster ready[/]: {len(up.nodes)} simulated nodes, API {up.server}")
    kubeconfig = Path(up.kubeconfig)
    finished = False
    try:
        run = _Run(binaries.kubectl, binaries.helm, kubeconfig, state)
        run.install_chart()
        binary = prom.find_prometheus() if prometheus else None
        start = demo_day.day_start(date.today())
        scale = demo_day.time_scale(checked.day_seconds)
        # The clock reads 06:00 a little after now, once the operator runs and r1-7b is
        # applied, so the day starts with its night replica Ready; until then it runs early.
        anchor = time.time() + SETUP_LEAD_SECONDS
        address = run.start_load(binary, start, scale, anchor) if binary else None
        run.start_operator(start, scale, anchor)
        run.apply_resources(checked.startup_seconds, address)
        if address is None:
            why = "--no-prometheus" if not prometheus else "no prometheus binary on PATH"
            note = f"time of day only: {why}"
        else:
            note = "load from Prometheus"
        console.print(
            f"walking a day from {start:%a %Y-%m-%d %H:%M} {demo_day.TIME_ZONE.key} in "
            f"{checked.day_seconds:.0f} s (the operator's clock runs {scale:g}x; "
            f"{note}; replicas start in {checked.startup_seconds:g} real s, "
            f"{checked.startup_seconds * scale / 60:.0f} min of the demo clock)"
        )
        samples = run.walk(start, scale, anchor, note, with_load=address is not None)
        _finish(samples, output)
        finished = True
    except ControlPlaneError as error:
        console.print(f"[bold red]error:[/] {error}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        if keep:
            console.print(
                f"left running (--keep): export KUBECONFIG={kubeconfig}; "
                "stop everything with `deepseek-operator cluster down`"
                + (f" (--state-dir {state})" if named else "")
            )
        else:
            stopped = cluster.down(state)
            console.print(
                f"stopped the cluster, operator, Prometheus and load ({len(stopped)} processes)"
            )
        if finished:
            console.print(f"demo done in {time.monotonic() - began:.0f} s")


def _binaries() -> Any:
    from deepseek_operator.controlplane import build
    from deepseek_operator.controlplane.components import COMPONENTS

    missing = [c.name for c in COMPONENTS if not build._is_complete(c, build.component_dir(c))]
    if missing:
        console.print(
            f"building {', '.join(missing)} from Go modules once ({FIRST_BUILD_ESTIMATE}); "
            f"later runs use the cache in {build.cache_root()}"
        )
    started = time.monotonic()
    with console.status("checking the control-plane binaries…") as spinner:

        def progress(message: str) -> None:
            minutes = (time.monotonic() - started) / 60
            spinner.update(
                f"{message} ({minutes:.1f} min so far; first build {FIRST_BUILD_ESTIMATE})"
            )

        binaries = build.ensure_binaries(progress)
    if missing:
        console.print(f"built in {(time.monotonic() - started) / 60:.1f} min")
    return binaries


class _Run:
    """The steps after the cluster is up, each with the tools they need."""

    def __init__(self, kubectl: Path, helm: Path, kubeconfig: Path, state: Path) -> None:
        self.kubectl_binary, self.helm, self.kubeconfig, self.state = (
            kubectl,
            helm,
            kubeconfig,
            state,
        )

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return _run([str(self.kubectl_binary), f"--kubeconfig={self.kubeconfig}", *args], input)

    def install_chart(self) -> None:
        with console.status("helm install deepseek-operator charts/deepseek-operator…"):
            _run([str(self.helm), "install", RELEASE, str(CHART), "-n", RELEASE_NAMESPACE,
                  "--create-namespace", f"--kubeconfig={self.kubeconfig}", "--wait",
                  "--timeout=120s"])  # fmt: skip
        console.print(
            f"[green]chart installed[/] with the real helm: release {RELEASE} in "
            f"{RELEASE_NAMESPACE} (CRDs, ServiceAccount and least-privilege RBAC, a simulated "
            "operator pod)"
        )

    def start_load(self, binary: str, start: datetime, scale: float, anchor: float) -> str:
        from deepseek_operator.controlplane import cluster
        from deepseek_operator.controlplane import prometheus as prom

        load_port, prom_port = cluster.free_port(), cluster.free_port()
        argv = [sys.executable, "-m", "deepseek_operator.cli.demo_load", str(load_port),
                repr(scale), start.isoformat(), repr(anchor)]  # fmt: skip
        cluster.attach(self.state, "demo-load", argv)
        directory = self.state / "prometheus"
        prom.write_config(directory, [f"127.0.0.1:{load_port}"])
        record = cluster.attach(self.state, "prometheus", prom.argv(binary, directory, prom_port))
        address = f"http://127.0.0.1:{prom_port}"
        with console.status("starting Prometheus…"):
            prom.wait_ready(address, lambda: cluster.is_alive(record))
        console.print(
            f"[green]Prometheus[/] {address} scrapes the demo's load source (127.0.0.1:"
            f"{load_port}), which stands for the model servers: simulated pods run no process"
        )
        return address

    def start_operator(self, start: datetime, scale: float, anchor: float) -> None:
        from deepseek_operator.controlplane import cluster

        account = RELEASE  # the chart's ServiceAccount is named after the release
        token = self.kubectl("create", "token", account, "-n", RELEASE_NAMESPACE,
                             "--duration=24h").strip()  # fmt: skip
        path = self.state / "operator.kubeconfig"
        path.write_text(_token_kubeconfig(self.kubeconfig, token))
        path.chmod(0o600)
        argv = [sys.executable, "-m", "deepseek_operator", "run", f"--kubeconfig={path}",
                "--metrics-port=0", f"--time-scale={scale!r}",
                f"--clock-start={start.isoformat()}", f"--clock-anchor={anchor!r}"]  # fmt: skip
        record = cluster.attach(self.state, "operator", argv, {"PYTHONUNBUFFERED": "1"})
        log = Path(record.log)
        deadline = time.monotonic() + 90
        with console.status("starting the operator…"):
            while "peering '" not in _read(log):
                if not cluster.is_alive(record) or time.monotonic() > deadline:
                    raise _error("the operator did not start", log)
                time.sleep(0.3)
        console.print(
            f"[green]operator running[/] as a local process (pid {record.pid}, log {log}) "
            f"with a token of the chart's ServiceAccount system:serviceaccount:"
            f"{RELEASE_NAMESPACE}:{account}: the chart's pod is simulated and runs no process"
        )

    def apply_resources(self, startup_seconds: float, prometheus: str | None) -> None:
        from deepseek_operator.cli import demo_load

        pools = [d for d in yaml.safe_load_all(POOLS.read_text()) if d]
        for pool in pools:
            pool["spec"]["startupSeconds"] = startup_seconds
        dsd = yaml.safe_load(DEPLOYMENT.read_text())
        dsd["spec"]["reconcileIntervalSeconds"] = 5
        if prometheus is None:
            dsd["spec"].pop("load", None)
        else:
            dsd["spec"]["load"].update(
                prometheusAddress=prometheus, tokensPerSecondQuery=demo_load.tokens_query()
            )
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([*pools, dsd]))
        console.print(
            f"applied examples/pools.yaml (startupSeconds {startup_seconds:g}) and "
            f"examples/{DEPLOYMENT.name} (reconcile every 5 s"
            + (", load read from the demo's Prometheus)" if prometheus else ", no load section)")
        )

    def walk(
        self, start: datetime, scale: float, anchor: float, note: str, *, with_load: bool
    ) -> list[demo_day.Sample]:
        from kubernetes import client, config

        from deepseek_operator.cli.demo_view import live_table

        api = client.CustomObjectsApi(
            config.new_client_from_config(str(self.kubeconfig))  # type: ignore[no-untyped-call]
        )
        samples: list[demo_day.Sample] = []
        end = start.timestamp() + demo_day.DAY_SECONDS

        def clock() -> datetime:
            return datetime.fromtimestamp(start.timestamp() + (time.time() - anchor) * scale, UTC)

        with Live(live_table(None, 0.0, note), console=console, refresh_per_second=2) as live:
            while (now := clock()).timestamp() < end:
                if now < start:
                    time.sleep(0.2)  # the setup's lead: the day has not begun
                    continue
                body: Any = api.get_namespaced_custom_object(
                    "serving.deepseek-operator.io", "v1alpha1", demo_day.NAMESPACE,
                    "deepseekdeployments", demo_day.DEPLOYMENT,
                )  # fmt: skip
                status = body.get("status") or {}
                if status.get("placement"):
                    offered = demo_day.demand_at(now) if with_load else 0.0
                    samples.append(demo_day.sample_from_status(now, status, offered))
                progress = (now.timestamp() - start.timestamp()) / demo_day.DAY_SECONDS
                live.update(live_table(samples[-1] if samples else None, progress, note))
                time.sleep(0.5)
        console.print()
        if len(samples) < 2:
            raise _error(
                "the operator wrote no status during the day", self.state / "logs" / "operator.log"
            )
        return samples


def _finish(samples: list[demo_day.Sample], output: Path) -> None:
    from deepseek_operator.cli import demo_plot
    from deepseek_operator.cli.demo_view import summary_lines

    summary = demo_day.summarize(samples)
    for line in summary_lines(summary, samples):
        console.print(line, highlight=False)
    pools = sorted({p for s in samples for p in (*s.ready, *s.desired)})
    data = demo_plot.write(output, samples, pools, summary)
    console.print(f"placement and cost over the day: {output} (its data: {data})")


def _token_kubeconfig(admin: Path, token: str) -> str:
    """A kubeconfig for the same API server that authenticates with `token` alone."""
    import base64

    config = yaml.safe_load(admin.read_text())
    server = config["clusters"][0]["cluster"]
    ca = server.get("certificate-authority-data")
    if ca is None:
        ca = base64.b64encode(Path(server["certificate-authority"]).read_bytes()).decode()
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "operator",
        "clusters": [{"name": "local", "cluster": {"server": server["server"],
                                                    "certificate-authority-data": ca}}],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "local", "user": "operator"}}],
    })  # fmt: skip


def _run(argv: list[str], input: str | None = None) -> str:
    import subprocess

    from deepseek_operator.controlplane.errors import ControlPlaneError

    result = subprocess.run(
        argv, input=input, capture_output=True, text=True, timeout=180, check=False
    )
    if result.returncode != 0:
        raise ControlPlaneError(
            f"{Path(argv[0]).name} {argv[1]} failed: {result.stderr.strip()[-2000:]}"
        )
    return result.stdout


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _error(message: str, log: Path) -> Exception:
    from deepseek_operator.controlplane.errors import ControlPlaneError

    tail = "\n".join(_read(log).splitlines()[-15:])
    return ControlPlaneError(f"{message}; the end of {log}:\n{tail}")
