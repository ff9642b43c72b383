"""Start and stop a real local control plane as child processes, envtest style, all on 127.0.0.1.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok run from the cached
binaries with certificates generated in the cluster's state directory. Every process is recorded
in `state.json` with its start time, so `down` stops exactly what `up` started (and never a
process that merely reused a PID), and a failed `up` stops whatever it had started before it
reports the error.

`up` can be killed at any moment, even between starting a process and recording it. So each
process also carries the state directory in its environment (`CLUSTER_TAG_ENV`), and `down`
stops every live process of this user that carries it, recorded or not; SIGTERM or SIGHUP during
`up` stops what was started before the process exits, as an error would. `state.json` says
whether `up` finished (`phase`), so `status` calls a cluster healthy only once `up` completed
and every recorded process runs, and names a start that is still going or was interrupted.

Network rule: the simulated pods, nodes and services get fake addresses that lead nowhere; the
only sockets anyone opens are the components' own listeners on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from deepseek_operator.controlplane.build import Binaries, ensure_binaries
from deepseek_operator.controlplane.errors import ControlPlaneError
from deepseek_operator.controlplane.topology import ClusterTopology, load_topology, node_manifests

if TYPE_CHECKING:  # certificates need the `cluster` extra (cryptography), only for `up`
    from deepseek_operator.controlplane.certs import ClusterPKI

STATE_ENV = "DEEPSEEK_OPERATOR_CLUSTER_DIR"
CLUSTER_TAG_ENV = "DEEPSEEK_OPERATOR_LOCAL_CLUSTER"
"""Set to the resolved state directory in every component's environment: how `down` finds a
process `up` started but did not live to record."""

PHASE_STARTING = "starting"
PHASE_READY = "ready"
PHASE_STOPPED = "stopped"

# Fake address ranges. None of them is ever connected to; they only fill object fields.
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"  # kwok hands pod IPs out of this; a /16 holds scale tests
NODE_IP = "10.240.0.10"

Progress = Callable[[str], None]


def default_state_dir() -> Path:
    override = os.environ.get(STATE_ENV)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "state"
    return base / "deepseek-operator" / "local-cluster"


@dataclass
class ProcessRecord:
    name: str
    pid: int
    start_ticks: int  # /proc/<pid>/stat starttime: tells a live child from a reused PID
    log: str


@dataclass
class ClusterState:
    state_dir: str
    api_port: int
    etcd_port: int
    kubeconfig: str
    processes: list[ProcessRecord] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    phase: str = PHASE_STARTING
    """starting until `up` returns (ready), stopped after `down`."""
    starter: ProcessRecord | None = None
    """The `up` process, to tell a start still going from one that was killed."""

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    def save(self) -> None:
        path = Path(self.state_dir) / "state.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, state_dir: Path) -> ClusterState | None:
        path = state_dir / "state.json"
        if not path.exists():
            return None
        try:
            raw = json.loads(path.read_text())
            raw["processes"] = [ProcessRecord(**p) for p in raw.get("processes", [])]
            if raw.get("starter") is not None:
                raw["starter"] = ProcessRecord(**raw["starter"])
            # a file from before phases were recorded: its processes were a finished start
            raw.setdefault("phase", PHASE_READY if raw["processes"] else PHASE_STOPPED)
            return cls(**raw)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ControlPlaneError(
                f"{path} is damaged ({exc}), so the cluster's processes are unknown.",
                hint="Stop them by hand if any still run (their logs are in "
                f"{state_dir / 'logs'}), then remove {path}.",
            ) from None


# ---------------------------------------------------------------------------------------------
# processes


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) from /proc/<pid>/stat; None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name may hold spaces and parentheses: fields start after the last ')'
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def is_alive(record: ProcessRecord) -> bool:
    """Running (not a zombie) and the very process we started, not one that reused its PID."""
    stat = _proc_stat(record.pid)
    return stat is not None and stat[1] == record.start_ticks and stat[0] != "Z"


def this_process(name: str) -> ProcessRecord:
    stat = _proc_stat(os.getpid())
    return ProcessRecord(name, os.getpid(), stat[1] if stat else 0, "")


def _tag(state_dir: Path | str) -> str:
    return str(Path(state_dir).resolve())


def tagged_processes(state_dir: Path) -> list[ProcessRecord]:
    """Live processes of this user whose environment names `state_dir` as their cluster: every
    component `up` started, recorded in state.json or not (read from /proc)."""
    wanted = f"{CLUSTER_TAG_ENV}={_tag(state_dir)}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            name = (entry / "comm").read_text().strip()
        except OSError:  # gone, or another user's
            continue
        stat = _proc_stat(int(entry.name))
        if wanted in environ and stat is not None and stat[0] != "Z":
            found.append(ProcessRecord(name, int(entry.name), stat[1], ""))
    return found


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def stop_process(record: ProcessRecord, grace_seconds: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after the grace period."""
    if not is_alive(record):
        _reap(record.pid)
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        _reap(record.pid)
        if not is_alive(record):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(record.pid, signal.SIGKILL)
    for _ in range(50):
        _reap(record.pid)
        if not is_alive(record):
            return
        time.sleep(0.1)


def _spawn(
    name: str, argv: list[str], state: ClusterState, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    log_path = Path(state.state_dir) / "logs" / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: `down` signals the whole group
            cwd=state.state_dir,
            # found by `down` even if `up` dies before the record below is saved
            env={**os.environ, **(env or {}), CLUSTER_TAG_ENV: _tag(state.state_dir)},
        )
    stat = _proc_stat(proc.pid)
    ticks = stat[1] if stat else 0
    state.processes.append(ProcessRecord(name, proc.pid, ticks, str(log_path)))
    state.save()
    return proc


def attach(
    state_dir: Path, name: str, argv: list[str], env: Mapping[str, str] | None = None
) -> ProcessRecord:
    """Start a process that belongs with the running cluster (the demo's operator, Prometheus
    and load source): recorded in state.json, so `status` lists it and `down` stops it."""
    state = ClusterState.load(state_dir)
    if state is None:
        raise ControlPlaneError(f"no local cluster in {state_dir}")
    _spawn(name, argv, state, env)
    return state.processes[-1]


def _log_tail(proc_log: str, lines: int = 15) -> str:
    try:
        text = Path(proc_log).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


# ---------------------------------------------------------------------------------------------
# ports and readiness


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pick_ports(names: tuple[str, ...], given: dict[str, int]) -> dict[str, int]:
    """A distinct port for each name: `given` ones as they are, the rest free ones.

    Each `free_port` call closes its socket, so the kernel may hand the same port out twice;
    two components on one port would fail the start-up.
    """
    ports = dict(given)
    for name in names:
        while name not in ports:
            port = free_port()
            if port not in ports.values():
                ports[name] = port
    return {name: ports[name] for name in names}


def ensure_port_free(port: int, what: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise ControlPlaneError(
                f"Port {port} on 127.0.0.1, wanted for {what}, is already in use.",
                hint=f"Stop whatever listens there (`ss -ltnp 'sport = :{port}'` shows it), or "
                "choose another port, or leave the port unset to pick a free one.",
            ) from None


def _wait_until(
    check: Callable[[], bool],
    what: str,
    timeout: float,
    watched: list[tuple[subprocess.Popen[bytes], ProcessRecord]],
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc, record in watched:
            if proc.poll() is not None:
                raise ControlPlaneError(
                    f"{record.name} exited with status {proc.returncode} while waiting for {what}.",
                    hint=f"Its log ({record.log}) ends with:\n{_log_tail(record.log)}",
                )
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.25)
    raise ControlPlaneError(
        f"Timed out after {timeout:.0f} s waiting for {what}.",
        hint="Logs are in " + ", ".join(record.log for _, record in watched),
    )


def _https_ok(url: str, context: ssl.SSLContext) -> bool:
    with urllib.request.urlopen(url, context=context, timeout=3) as response:
        return bool(response.status == 200)


def _admin_context(pki: ClusterPKI) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
    return context


def _component_context() -> ssl.SSLContext:
    """controller-manager and scheduler serve /healthz with a self-signed cert on loopback."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def write_kubeconfig(path: Path, server: str, pki: ClusterPKI) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "deepseek-local",
                "cluster": {"server": server, "certificate-authority": str(pki.ca_cert)},
            }
        ],
        "users": [
            {
                "name": "deepseek-local-admin",
                "user": {
                    "client-certificate": str(pki.admin_cert),
                    "client-key": str(pki.admin_key),
                },
            }
        ],
        "contexts": [
            {
                "name": "deepseek-local",
                "context": {"cluster": "deepseek-local", "user": "deepseek-local-admin"},
            }
        ],
        "current-context": "deepseek-local",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)


def kubectl(
    binaries: Binaries, kubeconfig: str, *args: str, input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binaries.kubectl), f"--kubeconfig={kubeconfig}", *args],
        input=input_text,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# ---------------------------------------------------------------------------------------------
# up / down / status


@dataclass(frozen=True)
class UpOptions:
    config: Path
    state_dir: Path
    api_port: int | None = None
    timeout_seconds: float = 180.0


def _component_args(
    binaries: Binaries, state: ClusterState, pki: ClusterPKI, ports: dict[str, int]
) -> dict[str, list[str]]:
    base = Path(state.state_dir)
    kubeconfig = state.kubeconfig
    always_allow = "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics"
    return {
        "etcd": [
            str(binaries.etcd),
            "--name=local",
            f"--data-dir={base / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{ports['etcd']}",
            f"--advertise-client-urls=http://127.0.0.1:{ports['etcd']}",
            f"--listen-peer-urls=http://127.0.0.1:{ports['etcd-peer']}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{ports['etcd-peer']}",
            f"--initial-cluster=local=http://127.0.0.1:{ports['etcd-peer']}",
            "--listen-metrics-urls=",
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ],
        "kube-apiserver": [
            str(binaries.kube_apiserver),
            f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            # the `kubernetes` Endpoints cannot hold a loopback address, so nothing maintains it
            "--endpoint-reconciler-type=none",
            f"--secure-port={ports['api']}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--authorization-mode=RBAC",
            "--allow-privileged=true",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.service_account_pub}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            f"--cert-dir={base / 'apiserver-certs'}",
            "--profiling=false",
        ],
        "kube-controller-manager": [
            str(binaries.kube_controller_manager),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports['controller-manager']}",
            always_allow,
            f"--cert-dir={base / 'controller-manager-certs'}",
            f"--root-ca-file={pki.ca_cert}",
            f"--service-account-private-key-file={pki.service_account_key}",
            f"--cluster-signing-cert-file={pki.ca_cert}",
            f"--cluster-signing-key-file={pki.ca_key}",
            "--use-service-account-credentials=false",
            "--profiling=false",
        ],
        "kube-scheduler": [
            str(binaries.kube_scheduler),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports['scheduler']}",
            always_allow,
            f"--cert-dir={base / 'scheduler-certs'}",
            "--profiling=false",
        ],
        "kwok": [
            str(binaries.kwok),
            f"--kubeconfig={kubeconfig}",
            f"--config={base / 'kwok.yaml'}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--node-lease-duration-seconds=40",
            f"--cidr={POD_CIDR}",
            f"--node-ip={NODE_IP}",
            f"--server-address=127.0.0.1:{ports['kwok']}",
        ],
    }


KWOK_OPTIONS = {
    # a standalone kwok has no defaults for these: zero parallelism refuses to start
    "nodeLeaseDurationSeconds": 40,
    "nodeLeaseParallelism": 4,
    "nodePlayStageParallelism": 4,
    "podPlayStageParallelism": 8,
    "podsOnNodeSyncParallelism": 4,
}


STARTUP_ANNOTATION = "serving.deepseek-operator.io/startup-seconds"
"""The start-up time the operator expects of a model-server pod (rendered from its pool)."""
STARTUP_DELAY = {
    "durationMilliseconds": 0,
    # kwok reads a Go duration: "120" seconds becomes "120s"; without the annotation, no delay.
    "durationFrom": {
        "expressionFrom": f'(.metadata.annotations["{STARTUP_ANNOTATION}"] // empty) + "s"'
    },
}


def write_kwok_config(path: Path, stages: Path) -> None:
    """kwok's configuration and stages. A simulated model-server pod turns Ready after the
    start-up time the operator annotated on it, as a real one does once its weights are loaded,
    so make-before-break and pre-warming take real time here; every other pod is Ready at once."""
    header = {
        "kind": "KwokConfiguration",
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "options": KWOK_OPTIONS,
    }
    documents = [doc for doc in yaml.safe_load_all(stages.read_text()) if doc]
    for document in documents:
        if document.get("kind") == "Stage" and document["metadata"]["name"] == "pod-ready":
            document["spec"]["delay"] = STARTUP_DELAY
    path.write_text(yaml.safe_dump_all([header, *documents], sort_keys=False))


def _nodes_ready(binaries: Binaries, state: ClusterState) -> bool:
    result = kubectl(binaries, state.kubeconfig, "get", "nodes", "-o", "json")
    if result.returncode != 0:
        return False
    items = json.loads(result.stdout)["items"]
    ready = {
        item["metadata"]["name"]
        for item in items
        for condition in item.get("status", {}).get("conditions", [])
        if condition["type"] == "Ready" and condition["status"] == "True"
    }
    return set(state.nodes) <= ready


def up(options: UpOptions, progress: Progress | None = None) -> ClusterState:
    """Start the cluster and return once the API, the default ServiceAccount and all nodes are ready."""
    report: Progress = progress or (lambda _message: None)
    topology: ClusterTopology = load_topology(options.config)  # validate before starting anything
    existing = ClusterState.load(options.state_dir)
    running = tagged_processes(options.state_dir)
    if existing is not None:
        running += [record for record in existing.processes if is_alive(record)]
    if running:
        where = f" (API {existing.server})" if existing is not None else ""
        raise ControlPlaneError(
            f"A local cluster from {options.state_dir} is already running{where}.",
            hint="Run `deepseek-operator cluster down` first, or use another --state-dir.",
        )
    if options.api_port is not None:
        ensure_port_free(options.api_port, "kube-apiserver")
    binaries = ensure_binaries(report)

    if options.state_dir.exists():
        for stale in ("etcd", "logs", "pki"):
            target = options.state_dir / stale
            if target.exists():
                shutil.rmtree(target)
    options.state_dir.mkdir(parents=True, exist_ok=True)
    from deepseek_operator.controlplane.certs import generate_pki

    pki = generate_pki(options.state_dir / "pki")
    ports = pick_ports(
        ("api", "etcd", "etcd-peer", "controller-manager", "scheduler", "kwok"),
        given={"api": options.api_port} if options.api_port else {},
    )
    state = ClusterState(
        state_dir=str(options.state_dir),
        api_port=ports["api"],
        etcd_port=ports["etcd"],
        kubeconfig=str(options.state_dir / "kubeconfig"),
        nodes=[],
        starter=this_process("up"),
    )
    write_kubeconfig(Path(state.kubeconfig), state.server, pki)
    write_kwok_config(options.state_dir / "kwok.yaml", binaries.kwok_stages)
    state.save()
    args = _component_args(binaries, state, pki, ports)
    watched: list[tuple[subprocess.Popen[bytes], ProcessRecord]] = []
    timeout = options.timeout_seconds

    def start(name: str) -> None:
        report(f"starting {name}")
        proc = _spawn(name, args[name], state)
        watched.append((proc, state.processes[-1]))

    try:
        with _signals_raise():
            _start_all(state, start, report, ports, pki, binaries, topology, timeout, watched)
            state.phase = PHASE_READY
            state.save()
    except BaseException:
        down(options.state_dir)
        raise
    report(f"cluster ready: {len(state.nodes)} nodes, API {state.server}")
    return state


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived during `up`: unwinds it like an error, so what was started is
    stopped before the process exits (with 128 + the signal number, as the signal would)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.exit_code = 128 + signum


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise `Terminated` (main thread only: elsewhere
    signals cannot be caught, and a killed `up` is left for `down` to clean, as for SIGKILL)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum: int, _frame: object) -> None:
        raise Terminated(signum)

    previous = {
        sig: signal.signal(sig, raise_terminated) for sig in (signal.SIGTERM, signal.SIGHUP)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _start_all(
    state: ClusterState,
    start: Callable[[str], None],
    report: Progress,
    ports: dict[str, int],
    pki: ClusterPKI,
    binaries: Binaries,
    topology: ClusterTopology,
    timeout: float,
    watched: list[tuple[subprocess.Popen[bytes], ProcessRecord]],
) -> None:
    """Every component in order, each waited for; raises ControlPlaneError on a failure."""
    start("etcd")
    _wait_until(
        lambda: (
            urllib.request.urlopen(f"http://127.0.0.1:{ports['etcd']}/health", timeout=3).status
            == 200
        ),
        "etcd to report healthy",
        timeout,
        watched,
    )
    start("kube-apiserver")
    admin = _admin_context(pki)
    _wait_until(
        lambda: _https_ok(f"{state.server}/readyz", admin),
        "kube-apiserver /readyz",
        timeout,
        watched,
    )
    start("kube-controller-manager")
    start("kube-scheduler")
    start("kwok")
    plain = _component_context()
    for name in ("controller-manager", "scheduler"):
        port = ports[name]
        _wait_until(
            lambda port=port: _https_ok(f"https://127.0.0.1:{port}/healthz", plain),  # type: ignore[misc]
            f"kube-{name} /healthz",
            timeout,
            watched,
        )
    report("creating simulated nodes")
    manifests = node_manifests(topology)
    state.nodes = [m["metadata"]["name"] for m in manifests]
    state.save()
    document = yaml.safe_dump_all(manifests)
    _wait_until(
        lambda: (
            kubectl(binaries, state.kubeconfig, "apply", "-f", "-", input_text=document).returncode
            == 0
        ),
        "the simulated nodes to be created",
        timeout,
        watched,
    )
    _wait_until(
        lambda: (
            kubectl(
                binaries, state.kubeconfig, "get", "serviceaccount", "default", "-n", "default"
            ).returncode
            == 0
        ),
        "the default ServiceAccount (created by kube-controller-manager)",
        timeout,
        watched,
    )
    report("waiting for nodes to become Ready")
    _wait_until(lambda: _nodes_ready(binaries, state), "every node to be Ready", timeout, watched)


def down(state_dir: Path) -> list[ProcessRecord]:
    """Stop every process of this state dir, newest first: those state.json records and any
    live one tagged with the state dir that it does not (an `up` killed mid-start). Returns
    what was stopped."""
    state = ClusterState.load(state_dir)
    recorded = list(reversed(state.processes)) if state is not None else []
    known = {(record.pid, record.start_ticks) for record in recorded}
    untracked = [
        record
        for record in tagged_processes(state_dir)
        if (record.pid, record.start_ticks) not in known
    ]
    stopped = []
    for record in [*untracked, *recorded]:
        if is_alive(record):
            stopped.append(record)
        stop_process(record)
    if state is not None:
        state.processes = []
        state.phase = PHASE_STOPPED
        state.save()
    return stopped


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int
    running: bool
    recorded: bool = True


@dataclass(frozen=True)
class ClusterHealth:
    """What `status` reports: the state file, each process, and whether the cluster is whole."""

    state: ClusterState | None
    components: list[ComponentStatus]
    problem: str | None
    """None for a cluster `up` finished whose every process runs; else why it is not healthy."""

    @property
    def healthy(self) -> bool:
        return self.problem is None


def status(state_dir: Path) -> ClusterHealth:
    """The cluster of `state_dir`, healthy only if `up` completed and every process runs."""
    state = ClusterState.load(state_dir)
    components = (
        []
        if state is None
        else [ComponentStatus(r.name, r.pid, is_alive(r)) for r in state.processes]
    )
    known = {c.pid for c in components}
    components += [
        ComponentStatus(r.name, r.pid, True, recorded=False)
        for r in tagged_processes(state_dir)
        if r.pid not in known
    ]
    untracked = any(not c.recorded for c in components)
    if not components and (state is None or state.phase != PHASE_STARTING):
        problem = "no local cluster"
    elif state is not None and state.phase == PHASE_STARTING:
        starting = state.starter is not None and is_alive(state.starter)
        problem = (
            f"`cluster up` (pid {state.starter.pid}) is still starting it"
            if starting and state.starter is not None
            else "`cluster up` was interrupted before the cluster was ready: run "
            "`deepseek-operator cluster down`, then `up` again"
        )
    elif untracked or state is None:
        problem = "processes of this state dir run that state.json does not record: run `down`"
    elif not all(c.running for c in components):
        problem = "not every process of the cluster runs"
    else:
        problem = None
    return ClusterHealth(state, components, problem)


@contextlib.contextmanager
def running_cluster(options: UpOptions, progress: Progress | None = None) -> Iterator[ClusterState]:
    state = up(options, progress)
    try:
        yield state
    finally:
        down(options.state_dir)
