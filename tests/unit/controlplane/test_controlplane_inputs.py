"""Bad input to the local cluster fails early, clearly, and starts nothing."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from deepseek_operator.controlplane import build, cluster
from deepseek_operator.controlplane.components import component
from deepseek_operator.controlplane.errors import ControlPlaneError
from deepseek_operator.controlplane.topology import load_topology, node_manifests
from tests.paths import REPO_ROOT


def test_operator_still_resolves_to_the_standard_library() -> None:
    import operator

    assert operator.__file__ is not None
    assert "site-packages" not in operator.__file__
    assert Path(operator.__file__).parent == Path(os.__file__).parent
    assert operator.add(2, 3) == 5
    # This process imported `operator` long before the test ran, so ask a fresh interpreter
    # started in the repository root, where an `operator/` package would shadow the stdlib.
    fresh = subprocess.run(
        [sys.executable, "-c", "import operator, os; print(operator.__file__, os.__file__)"],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{REPO_ROOT / 'operator'}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    operator_file, os_file = fresh.stdout.split()
    assert Path(operator_file).parent == Path(os_file).parent, operator_file


def test_example_cluster_has_the_pools_the_issue_asks_for() -> None:
    topology = load_topology(REPO_ROOT / "examples" / "cluster.yaml")
    nodes = node_manifests(topology)
    by_pool: dict[str, list[dict[str, object]]] = {}
    for node in nodes:
        by_pool.setdefault(node["metadata"]["labels"]["deepseek-operator.io/pool"], []).append(node)
    assert (
        len(by_pool["a100"]) >= 2 and len(by_pool["rtx4090"]) >= 2 and len(by_pool["cpu-xeon"]) >= 3
    )
    a100 = by_pool["a100"][0]
    assert a100["status"]["capacity"]["nvidia.com/gpu"] == "8"
    assert a100["spec"]["taints"] == [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    ]
    assert by_pool["rtx4090"][0]["status"]["capacity"]["nvidia.com/gpu"] == "2"
    cpu = by_pool["cpu-xeon"][0]
    assert "nvidia.com/gpu" not in cpu["status"]["capacity"]
    assert cpu["spec"]["taints"] == []
    assert all(n["metadata"]["annotations"] == {"kwok.x-k8s.io/node": "fake"} for n in nodes)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pools: []", "pools: List should have at least 1 item"),
        ("- a\n- b", "must be a mapping with a `pools` list"),
        ("pools: [{name: a, kind: gpu, nodes: 1, cpu: '8', memory: 8Gi}]", "gpus ≥ 1"),
        ("pools: [{name: a, kind: tpu, nodes: 1, cpu: '8', memory: 8Gi}]", "pools.0.kind"),
        ("pools: [{name: a, kind: cpu, nodes: 0, cpu: '8', memory: 8Gi}]", "pools.0.nodes"),
        (
            "pools: [{name: a, kind: cpu, nodes: 1, cpu: eight, memory: 8Gi}]",
            "'eight' is not a Kubernetes quantity",
        ),
        ("pools: [{name: A_B, kind: cpu, nodes: 1, cpu: '8', memory: 8Gi}]", "must be a DNS label"),
        (
            "pools: [{name: a, kind: cpu, nodes: 1, cpu: '8', memory: 8Gi, colour: red}]",
            "pools.0.colour",
        ),
        (
            "pools: [{name: a, kind: cpu, nodes: 1, cpu: '8', memory: 8Gi},"
            " {name: a, kind: cpu, nodes: 1, cpu: '8', memory: 8Gi}]",
            "repeated: a",
        ),
        ("pools: [{name: a, kind: cpu, nodes: 1, cpu: '8'}]", "pools.0.memory: Field required"),
        ("pools: [unclosed", "is not valid YAML"),
        (
            "pools: [{name: a, kind: cpu, nodes: 1, cpu: '8', memory: 8Gi,"
            " labels: {deepseek-operator.io/pool: b}}]",
            "set by the cluster itself",
        ),
        (
            "pools: [{name: a, kind: cpu, nodes: 1, cpu: '8', memory: 8Gi, labels: {bad key: x}}]",
            "'bad key' is not a label key",
        ),
        (
            "pools: [{name: a, kind: cpu, nodes: 1, cpu: '8', memory: 8Gi, labels: {k: a b}}]",
            "'a b' is not a label value",
        ),
        (
            "pools: [{name: a, kind: cpu, nodes: 1, cpu: '8', memory: 8Gi, labels: {a/b/c: x}}]",
            "the prefix before '/' must be a DNS subdomain",
        ),
        (
            "pools: [{name: a, kind: gpu, gpus: 1, nodes: 1, cpu: '8', memory: 8Gi,"
            " taints: [{key: 'nvidia.com/gpu', value: 'x y', effect: NoSchedule}]}]",
            "pools.0.taints.0.value",
        ),
        ("pools: [{name: a, kind: cpu, nodes: 1, cpu: true, memory: 8Gi}]", "pools.0.cpu"),
    ],
)
def test_malformed_cluster_file_names_the_field(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(text)
    with pytest.raises(ControlPlaneError) as info:
        load_topology(path)
    assert expected in str(info.value)


def test_quantities_may_be_plain_numbers_as_in_kubernetes(tmp_path: Path) -> None:
    """`cpu: 80` is how people write it; YAML reads it as a number, Kubernetes accepts it."""
    path = tmp_path / "cluster.yaml"
    path.write_text("pools: [{name: a, kind: cpu, nodes: 1, cpu: 80, memory: 1073741824}]")
    (node,) = node_manifests(load_topology(path))
    assert node["status"]["capacity"]["cpu"] == "80"
    assert node["status"]["capacity"]["memory"] == "1073741824"


def test_missing_cluster_file(tmp_path: Path) -> None:
    with pytest.raises(ControlPlaneError, match="does not exist"):
        load_topology(tmp_path / "nope.yaml")


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deepseek_operator", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )


def test_malformed_cluster_file_via_cli_starts_nothing(tmp_path: Path) -> None:
    config = tmp_path / "cluster.yaml"
    config.write_text("pools: [{name: a, kind: cpu, nodes: -1, cpu: '8', memory: 8Gi}]")
    state_dir = tmp_path / "state"
    result = _cli(
        "cluster",
        "up",
        "--config",
        str(config),
        "--state-dir",
        str(state_dir),
        env={build.CACHE_ENV: str(tmp_path / "cache")},
    )
    assert result.returncode == 2, "a bad cluster file is the user's input: exit 2"
    assert "--config: " in result.stderr and "pools.0.nodes" in result.stderr
    assert "Traceback" not in result.stderr
    assert not state_dir.exists(), "nothing may be started or written for a bad file"


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_api_port_out_of_range_is_a_usage_error_naming_the_option(
    tmp_path: Path, port: str
) -> None:
    state_dir = tmp_path / "state"
    result = _cli(
        "cluster",
        "up",
        "--config",
        str(REPO_ROOT / "examples" / "cluster.yaml"),
        "--state-dir",
        str(state_dir),
        "--api-port",
        port,
        env={build.CACHE_ENV: str(tmp_path / "cache")},
    )
    assert result.returncode == 2, result.stderr
    assert "Invalid value for '--api-port'" in result.stderr
    assert "Traceback" not in result.stderr and "OverflowError" not in result.stderr
    assert not state_dir.exists()


def test_missing_go_toolchain_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(build.CACHE_ENV, str(tmp_path / "empty-cache"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no go here
    monkeypatch.delenv(build.GO_ENV, raising=False)
    with pytest.raises(ControlPlaneError) as info:
        build.ensure_binaries()
    message = str(info.value)
    assert "Go toolchain was not found" in message
    assert "Install Go" in message and build.GO_ENV in message


def _fake_go(tmp_path: Path, script: str) -> Path:
    go = tmp_path / "go"
    go.write_text("#!/bin/sh\n" + script)
    go.chmod(go.stat().st_mode | stat.S_IEXEC)
    return go


def test_failed_build_reports_go_output_and_leaves_no_partial_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv(build.CACHE_ENV, str(cache))
    go = _fake_go(
        tmp_path, 'echo "go: example.invalid/x@v1: reading proxy: 410 Gone" >&2\nexit 1\n'
    )
    with pytest.raises(ControlPlaneError) as info:
        build.build_component(component("etcd"), progress=lambda _m: None, go=str(go))
    message = str(info.value)
    assert "Building etcd" in message and "exited 1" in message
    assert "410 Gone" in message, "the user must see why Go failed"
    assert not build.component_dir(component("etcd")).exists()
    leftovers = list((cache / "bin").iterdir()) if (cache / "bin").exists() else []
    assert leftovers == [], "the temporary build directory must be removed"


def test_cache_key_changes_with_the_pins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    comp = component("kwok")
    key = build.component_key(comp)
    assert key.startswith("kwok-v0.8.0-")
    monkeypatch.setattr(type(comp), "module_dir", property(lambda _self: tmp_path))
    (tmp_path / "go.mod").write_text("module x\n")
    (tmp_path / "go.sum").write_text("")
    assert build.component_key(comp) != key


def test_cache_key_covers_go_sum_and_link_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new checksum pin or a new version stamp must rebuild, not reuse the old binaries."""
    comp = component("kwok")
    monkeypatch.setattr(type(comp), "module_dir", property(lambda _self: tmp_path))
    (tmp_path / "go.mod").write_text("module x\n")
    (tmp_path / "go.sum").write_text("a v1 h1:one\n")
    first = build.component_key(comp)
    (tmp_path / "go.sum").write_text("a v1 h1:two\n")
    assert build.component_key(comp) != first
    restamped = dataclasses.replace(comp, ldflags=(*comp.ldflags, "-X main.version=other"))
    assert build.component_key(restamped) != build.component_key(comp)


def _state_with(tmp_path: Path, record: cluster.ProcessRecord) -> None:
    cluster.ClusterState(
        state_dir=str(tmp_path), api_port=1, etcd_port=2, kubeconfig="", processes=[record]
    ).save()


def test_down_never_signals_a_process_that_merely_reuses_a_recorded_pid(tmp_path: Path) -> None:
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        stat = cluster._proc_stat(bystander.pid)
        assert stat is not None
        ticks = stat[1]
        _state_with(tmp_path, cluster.ProcessRecord("etcd", bystander.pid, ticks + 1, ""))
        assert cluster.down(tmp_path) == []
        assert bystander.poll() is None, "a process the cluster never started was signalled"

        started = cluster.ProcessRecord("etcd", bystander.pid, ticks, "")
        _state_with(tmp_path, started)
        assert cluster.down(tmp_path) == [started]
        assert not cluster.is_alive(started)
    finally:
        bystander.kill()
        with contextlib.suppress(ChildProcessError):
            bystander.wait(timeout=10)


def test_cluster_down_without_cluster_is_harmless(tmp_path: Path) -> None:
    assert cluster.down(tmp_path) == []


def test_picked_ports_are_distinct_even_when_the_kernel_repeats_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    offered = iter([6443, 40001, 40001, 40002, 6443, 40003, 40004, 40005])
    monkeypatch.setattr(cluster, "free_port", lambda: next(offered))
    ports = cluster.pick_ports(("api", "etcd", "peer", "cm", "scheduler", "kwok"), {"api": 6443})
    assert ports == {
        "api": 6443,
        "etcd": 40001,
        "peer": 40002,
        "cm": 40003,
        "scheduler": 40004,
        "kwok": 40005,
    }


def test_damaged_state_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(ControlPlaneError, match="is damaged"):
        cluster.down(tmp_path)
    (tmp_path / "state.json").write_text('{"state_dir": "x"}')
    with pytest.raises(ControlPlaneError, match="is damaged"):
        cluster.status(tmp_path)


def _tagged_sleep(state_dir: Path) -> subprocess.Popen[bytes]:
    """A stand-in component: what `up` starts carries the state dir in its environment."""
    return subprocess.Popen(
        ["sleep", "60"],
        env={**os.environ, cluster.CLUSTER_TAG_ENV: str(state_dir.resolve())},
        start_new_session=True,
    )


def test_down_stops_a_process_up_started_but_never_recorded(tmp_path: Path) -> None:
    """`up` killed between starting a process and saving its record: `down` still finds it."""
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    orphan = _tagged_sleep(state_dir)
    try:
        assert [record.pid for record in cluster.tagged_processes(state_dir)] == [orphan.pid]
        assert cluster.tagged_processes(tmp_path / "another") == []
        health = cluster.status(state_dir)
        assert not health.healthy and "does not record" in (health.problem or "")
        assert [record.pid for record in cluster.down(state_dir)] == [orphan.pid]
        assert orphan.wait(timeout=15) is not None
        assert cluster.tagged_processes(state_dir) == []
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()


def test_a_start_that_did_not_finish_is_never_healthy(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    etcd = _tagged_sleep(state_dir)
    try:
        line = Path(f"/proc/{etcd.pid}/stat").read_text()
        ticks = int(line[line.rindex(")") + 2 :].split()[19])
        record = cluster.ProcessRecord("etcd", etcd.pid, ticks, "")
        state = cluster.ClusterState(
            str(state_dir), 1, 2, str(state_dir / "kubeconfig"), [record],
            starter=cluster.this_process("up"),
        )  # fmt: skip
        state.save()
        starting = cluster.status(state_dir)
        assert not starting.healthy and "still starting" in (starting.problem or "")
        state.starter = cluster.ProcessRecord("up", 2**22 + 1, 1, "")  # a dead `up`
        state.save()
        interrupted = cluster.status(state_dir)
        assert not interrupted.healthy and "interrupted" in (interrupted.problem or "")
        state.phase = cluster.PHASE_READY
        state.save()
        assert cluster.status(state_dir).healthy
        cluster.down(state_dir)
        assert cluster.status(state_dir).problem == "no local cluster"
    finally:
        if etcd.poll() is None:
            etcd.kill()
            etcd.wait()
