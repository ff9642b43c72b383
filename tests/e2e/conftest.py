"""A real Kubernetes control plane for the e2e tier.

With `KUBECONFIG` set, the tests run against that cluster (kind, a real one). Otherwise one local
cluster (etcd, kube-apiserver, controller-manager, scheduler, kwok) is started for the session
from examples/cluster.yaml and stopped at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from deepseek_operator.controlplane import cluster as local_cluster
from deepseek_operator.controlplane.build import find_kubectl

if TYPE_CHECKING:
    from tests.e2e.operator_support import OperatorProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CLUSTER = REPO_ROOT / "examples" / "cluster.yaml"
StartOperator = Callable[..., "OperatorProcess"]


@dataclass
class ClusterHandle:
    kubeconfig: Path
    kubectl_binary: str
    local_state: local_cluster.ClusterState | None = None

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.kubectl_binary, f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
            )
        return result

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def apply(self, objects: list[dict[str, Any]] | dict[str, Any], namespace: str = "") -> None:
        documents = objects if isinstance(objects, list) else [objects]
        extra = ["-n", namespace] if namespace else []
        self.kubectl("apply", *extra, "-f", "-", input=yaml.safe_dump_all(documents))

    def api_client(self) -> Any:
        from kubernetes import client, config

        return config.new_client_from_config(
            config_file=str(self.kubeconfig), client_configuration=client.Configuration()
        )


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHandle]:
    kubectl_binary = str(find_kubectl())
    external = os.environ.get("KUBECONFIG")
    if external:
        yield ClusterHandle(Path(external), kubectl_binary)
        return
    state_dir = tmp_path_factory.mktemp("local-cluster")
    options = local_cluster.UpOptions(config=EXAMPLE_CLUSTER, state_dir=state_dir)
    with local_cluster.running_cluster(options) as state:
        yield ClusterHandle(Path(state.kubeconfig), kubectl_binary, state)


@pytest.fixture
def namespace(cluster: ClusterHandle) -> Iterator[str]:
    """A fresh namespace whose `default` ServiceAccount exists (pods race it otherwise)."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    cluster.kubectl("wait", "--for=create", "serviceaccount/default", "-n", name, "--timeout=60s")
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def operator_api(cluster: ClusterHandle) -> None:
    """The CRDs (ours and the peering kinds) and the tests' PoolProfiles."""
    from tests.e2e.operator_support import pool_profiles

    cluster.kubectl("apply", "-f", str(REPO_ROOT / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    cluster.apply(pool_profiles())


@pytest.fixture
def start_operator(
    cluster: ClusterHandle, operator_api: None, namespace: str, tmp_path: Path
) -> Iterator[StartOperator]:
    """Starts `deepseek-operator run` processes; at the end deletes the test's resources while
    one still runs (the operator removes its finalizer), then stops them all."""
    from tests.e2e.operator_support import OperatorProcess

    started: list[OperatorProcess] = []

    def start(*args: str, name: str = "operator", under_kopf: bool = False) -> OperatorProcess:
        log = tmp_path / f"{name}-{len(started)}.log"
        process = OperatorProcess(cluster, log, args, under_kopf=under_kopf)
        started.append(process.start())
        return process

    yield start
    if not any(p.alive() for p in started):
        start(name="cleanup")
    cluster.kubectl("delete", "dsd", "--all", "-n", namespace, "--timeout=60s", check=False)
    for process in started:
        process.stop()
    for process in started:
        if os.environ.get("E2E_KEEP_LOGS"):
            print(process.log())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)
