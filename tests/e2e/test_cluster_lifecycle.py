"""`cluster up` and `cluster down` as a user runs them: a second, small cluster of its own."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deepseek_operator.controlplane import cluster as local_cluster
from deepseek_operator.controlplane.build import ensure_binaries
from deepseek_operator.controlplane.errors import ControlPlaneError

SMALL_CLUSTER = """\
pools:
  - name: cpu
    kind: cpu
    nodes: 1
    cpu: "8"
    memory: 32Gi
"""


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deepseek_operator", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
        check=False,
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2] != "Z"


def _processes_mentioning(path: Path) -> list[str]:
    """Command lines of live processes that name `path`: every component gets its state dir."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(path) in cmdline and _pid_alive(int(entry.name)):
            found.append(cmdline)
    return found


@pytest.mark.skipif(bool(os.environ.get("KUBECONFIG")), reason="runs its own local cluster")
def test_up_then_down_leaves_no_process(tmp_path: Path) -> None:
    config = tmp_path / "cluster.yaml"
    config.write_text(SMALL_CLUSTER)
    state_dir = tmp_path / "state"
    up = _cli("cluster", "up", "--config", str(config), "--state-dir", str(state_dir))
    try:
        assert up.returncode == 0, up.stderr
        _check_up_status_and_down(state_dir)
    finally:
        # a failed assertion above must not leave a cluster running after the test
        local_cluster.down(state_dir)


def _check_up_status_and_down(state_dir: Path) -> None:
    state = local_cluster.ClusterState.load(state_dir)
    assert state is not None
    pids = {record.name: record.pid for record in state.processes}
    assert set(pids) == {
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
    }
    assert all(_pid_alive(pid) for pid in pids.values())
    # `up` returns only once every node is Ready and the default ServiceAccount exists.
    binaries = ensure_binaries()
    nodes = json.loads(
        local_cluster.kubectl(binaries, state.kubeconfig, "get", "nodes", "-o", "json").stdout
    )["items"]
    assert [node["metadata"]["name"] for node in nodes] == ["cpu-0"]
    assert {
        (condition["type"], condition["status"]) for condition in nodes[0]["status"]["conditions"]
    } >= {("Ready", "True")}
    account = local_cluster.kubectl(
        binaries, state.kubeconfig, "get", "serviceaccount", "default", "-n", "default"
    )
    assert account.returncode == 0, account.stderr

    status = _cli("cluster", "status", "--state-dir", str(state_dir))
    assert status.returncode == 0, status.stderr
    kubeconfig = _cli("cluster", "kubeconfig", "--state-dir", str(state_dir))
    assert kubeconfig.stdout.strip() == state.kubeconfig

    down = _cli("cluster", "down", "--state-dir", str(state_dir))
    assert down.returncode == 0, down.stderr
    assert "stopped 5 processes" in down.stderr
    assert not [name for name, pid in pids.items() if _pid_alive(pid)]
    assert _processes_mentioning(state_dir) == []
    assert _cli("cluster", "status", "--state-dir", str(state_dir)).returncode == 1
    stale = _cli("cluster", "kubeconfig", "--state-dir", str(state_dir))
    assert stale.returncode == 1 and stale.stdout == "", "no kubeconfig of a stopped cluster"


@pytest.mark.skipif(bool(os.environ.get("KUBECONFIG")), reason="runs its own local cluster")
def test_api_port_in_use_is_a_clear_error_and_starts_nothing(tmp_path: Path) -> None:
    config = tmp_path / "cluster.yaml"
    config.write_text(SMALL_CLUSTER)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _cli(
            "cluster",
            "up",
            "--config",
            str(config),
            "--state-dir",
            str(tmp_path / "s"),
            "--api-port",
            str(port),
        )
    assert result.returncode == 1
    assert f"Port {port} on 127.0.0.1" in result.stderr and "already in use" in result.stderr
    state = local_cluster.ClusterState.load(tmp_path / "s")
    assert state is None or not state.processes
    assert _processes_mentioning(tmp_path / "s") == []


@pytest.mark.skipif(bool(os.environ.get("KUBECONFIG")), reason="runs its own local cluster")
def test_component_that_dies_at_start_is_reported_and_everything_is_stopped(tmp_path: Path) -> None:
    """etcd's client port is taken by someone else: the failure names etcd and nothing survives."""
    config = tmp_path / "cluster.yaml"
    config.write_text(SMALL_CLUSTER)
    options = local_cluster.UpOptions(config=config, state_dir=tmp_path / "s", timeout_seconds=60)
    original = local_cluster.free_port
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        ports = iter([taken])

        def first_port_taken() -> int:
            return next(ports, None) or original()

        local_cluster.free_port = first_port_taken  # the api port is given, so etcd gets `taken`
        try:
            with pytest.raises(ControlPlaneError, match="etcd"):
                local_cluster.up(
                    local_cluster.UpOptions(
                        config=options.config,
                        state_dir=options.state_dir,
                        api_port=original(),
                        timeout_seconds=60,
                    )
                )
        finally:
            local_cluster.free_port = original
    state = local_cluster.ClusterState.load(options.state_dir)
    assert state is not None
    assert state.processes == []
    assert _processes_mentioning(options.state_dir) == []


KILLS = 8
UP_SECONDS = 7.0
"""About how long `cluster up` of SMALL_CLUSTER takes here; kill moments spread over it."""


def _kill_moments() -> list[tuple[float, signal.Signals]]:
    """Moments spread over a start, each with SIGKILL or SIGTERM; the seed is printed so a
    failure can be replayed (DEEPSEEK_KILL_SEED)."""
    seed = int(os.environ.get("DEEPSEEK_KILL_SEED") or random.randrange(2**32))
    print(f"kill seed {seed}")
    rng = random.Random(seed)
    slots = [UP_SECONDS * (index + rng.random()) / KILLS for index in range(KILLS)]
    return [(moment, rng.choice([signal.SIGKILL, signal.SIGTERM])) for moment in slots]


@pytest.mark.skipif(bool(os.environ.get("KUBECONFIG")), reason="runs its own local cluster")
def test_up_killed_at_any_moment_is_never_healthy_and_down_leaves_nothing(tmp_path: Path) -> None:
    """`up` is killed at moments spread over a start. `status` never calls what is left
    healthy (a cluster that finished starting before the kill may be), and `down` leaves no
    process of the state dir behind, recorded or not (checked in /proc)."""
    config = tmp_path / "cluster.yaml"
    config.write_text(SMALL_CLUSTER)
    outcomes = []
    for attempt, (moment, sig) in enumerate(_kill_moments()):
        state_dir = tmp_path / f"state-{attempt}"
        up = subprocess.Popen(
            [sys.executable, "-m", "deepseek_operator", "cluster", "up", "--config", str(config),
             "--state-dir", str(state_dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            time.sleep(moment)
            up.send_signal(sig)
            _, stderr = up.communicate(timeout=120)
            status = _cli("cluster", "status", "--state-dir", str(state_dir))
            where = f"attempt {attempt}: {sig.name} after {moment:.2f} s"
            assert "Traceback" not in stderr, f"{where}: {stderr}"
            if status.returncode == 0:  # healthy, says status: check that for ourselves
                _assert_fully_up(state_dir, where)
            else:
                assert status.returncode == 1, f"{where}: {status.stderr}"
            down = _cli("cluster", "down", "--state-dir", str(state_dir))
            assert down.returncode == 0, f"{where}: {down.stderr}"
            assert _processes_mentioning(state_dir) == [], where
            assert local_cluster.tagged_processes(state_dir) == [], where
            assert _cli("cluster", "status", "--state-dir", str(state_dir)).returncode == 1
            outcomes.append((sig.name, round(moment, 2), up.returncode, status.returncode))
        finally:
            if up.poll() is None:
                up.kill()
                up.wait()
            local_cluster.down(state_dir)
    print("(signal, seconds, up's exit code, status's exit code):", outcomes)
    assert any(status != 0 for *_, status in outcomes), "every kill came after the start"


def _assert_fully_up(state_dir: Path, where: str) -> None:
    """Every component runs and the node is Ready, seen from /proc and the API server."""
    state = local_cluster.ClusterState.load(state_dir)
    assert state is not None, where
    names = {record.name for record in state.processes if _pid_alive(record.pid)}
    assert names == {
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
    }, f"{where}: status said healthy with only {sorted(names)} running"
    nodes = local_cluster.kubectl(ensure_binaries(), state.kubeconfig, "get", "nodes", "-o", "json")
    assert nodes.returncode == 0, f"{where}: {nodes.stderr}"
    conditions = json.loads(nodes.stdout)["items"][0]["status"]["conditions"]
    assert ("Ready", "True") in {(c["type"], c["status"]) for c in conditions}, where
