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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from deepseek_operator.controlplane import cluster as local_cluster
from deepseek_operator.controlplane.build import find_kubectl

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CLUSTER = REPO_ROOT / "examples" / "cluster.yaml"


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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)
