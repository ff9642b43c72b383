"""The chart's RBAC proven by use: the real operator process runs with a token of the chart's
own ServiceAccount (TokenRequest API) through a scenario that uses every permission (pools and
their status, nodes, the peering, the resource and its status, Deployments created, moved and
deleted, the Service, pods, Events). With the chart's rules the scenario completes, which shows
them sufficient; with any one rule taken away it does not, which shows each one needed."""

from __future__ import annotations

import base64
import copy
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from deepseek_operator.controlplane.build import ensure_binaries
from tests.chart_support import CHART, GOLDEN_RULES, Rule, helm, of_kind, render, rules_of
from tests.e2e.conftest import ClusterHandle
from tests.e2e.operator_support import (
    OperatorProcess,
    condition,
    deployment,
    placed,
    pool_deployments,
    pool_profiles,
    status,
    wait_until,
)


class Missed(Exception):
    """The scenario did not reach a step in time (its message names the step)."""


STARTUP_SECONDS = 2.0
"""Replicas of the scenario's pools turn Ready this fast: the scenario is about rights."""

# An API denial as the operator logs it: kopf's APIForbiddenError, or a 403 status code. The
# code is matched as a number of its own, so a log timestamp's milliseconds (",403") cannot match.
DENIED = re.compile(r"Forbidden|(?<![\d,.:])403(?!\d)")


@dataclass
class Scenario:
    """One run: pools of its own, a DeepSeekDeployment placed on CPU, then moved to A100
    (the CPU Deployment deleted), each step checked before the next."""

    cluster: ClusterHandle
    namespace: str
    tag: str

    @property
    def pools(self) -> dict[str, str]:
        return {"cpu": f"{self.tag}-cpu", "a100": f"{self.tag}-a100"}

    def create_pools(self) -> None:
        made = []
        for body in pool_profiles():
            kind = {"e2e-cpu": "cpu", "e2e-a100": "a100"}.get(body["metadata"]["name"])
            if kind is not None:
                body["metadata"]["name"] = self.pools[kind]
                body["spec"]["startupSeconds"] = STARTUP_SECONDS
                made.append(body)
        self.cluster.apply(made)

    def delete_pools(self) -> None:
        self.cluster.kubectl("delete", "poolprofiles", *self.pools.values(), "--wait=false",
                             check=False)  # fmt: skip

    def dsd(self) -> dict[str, Any]:
        body = copy.deepcopy(deployment("r1", ["e2e-a100", "e2e-cpu"], replicas=1,
                                        min_available=1, policy="cpuOnly"))  # fmt: skip
        for variant in body["spec"]["variants"]:
            variant["pool"] = self.pools["cpu" if variant["pool"] == "e2e-cpu" else "a100"]
        return body

    def run(self, timeout: float) -> None:
        """The whole scenario within `timeout` seconds; `Missed` names the step not reached."""
        deadline = time.monotonic() + timeout
        c, ns, cpu, a100 = self.cluster, self.namespace, self.pools["cpu"], self.pools["a100"]

        def step(check: Callable[[], Any], what: str) -> None:
            try:
                wait_until(check, max(1.0, deadline - time.monotonic()), what)
            except AssertionError as error:
                raise Missed(str(error)) from None

        def service() -> bool:
            return c.kubectl("get", "service", "r1", "-n", ns, check=False).returncode == 0

        def pool_nodes() -> Any:
            return (c.get_json("poolprofile", cpu).get("status") or {}).get("nodes")

        c.apply(self.dsd(), ns)
        step(lambda: placed(c, ns, "r1", cpu, 1), "1 Ready pod on the CPU pool")
        step(lambda: condition(c, ns, "r1", "Ready").get("status") == "True", "Ready=True")
        step(service, "the Service")
        step(lambda: pool_nodes() == 3, "the CPU pool's status")
        patch = {"spec": {"schedule": {"defaultPolicy": "gpuOnly"}}}
        c.kubectl("patch", "dsd", "r1", "-n", ns, "--type=merge", "-p", json.dumps(patch))
        step(lambda: placed(c, ns, "r1", a100, 1), "the move to the A100 pool")
        step(lambda: pool_deployments(c, ns, "r1") == {f"r1-{a100}": 1},
             "the emptied CPU Deployment deleted")  # fmt: skip
        step(lambda: "Moving" in _event_reasons(c, ns), "a Moving Event")
        step(lambda: status(c, ns, "r1").get("pools") == f"{a100}=1", "the status of the move")

    def clean(self) -> None:
        """Removes the resource whatever the operator managed to do (its finalizer too)."""
        self.cluster.kubectl("patch", "dsd", "r1", "-n", self.namespace, "--type=merge", "-p",
                             '{"metadata":{"finalizers":null}}', check=False)  # fmt: skip
        self.cluster.kubectl("delete", "dsd", "r1", "-n", self.namespace, "--timeout=30s",
                             check=False)  # fmt: skip
        self.delete_pools()


def _event_reasons(cluster: ClusterHandle, namespace: str) -> list[str]:
    items = cluster.get_json("events", "-n", namespace)["items"]
    return [e["reason"] for e in items if e["involvedObject"]["kind"] == "DeepSeekDeployment"]


def token_kubeconfig(cluster: ClusterHandle, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount, with a token from TokenRequest."""
    token = cluster.kubectl("create", "token", account, "-n", namespace,
                            "--duration=3600s").stdout.strip()  # fmt: skip
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    server = admin["clusters"][0]["cluster"]
    ca = server.get("certificate-authority-data")
    if ca is None:
        ca = base64.b64encode(Path(server["certificate-authority"]).read_bytes()).decode()
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "operator",
        "clusters": [{"name": "c", "cluster": {"server": server["server"],
                                                "certificate-authority-data": ca}}],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "c", "user": "operator"}}],
    }))  # fmt: skip
    return path


def run_operator(
    cluster: ClusterHandle, kubeconfig: Path, log: Path, peering: str
) -> OperatorProcess:
    """`deepseek-operator run` as the ServiceAccount: cluster-wide, as the chart runs it."""
    as_account = ClusterHandle(kubeconfig, cluster.kubectl_binary)
    return OperatorProcess(as_account, log, (f"--peering={peering}",)).start()


@pytest.fixture(scope="module")
def helm_binary() -> Path:
    return ensure_binaries().helm


@pytest.fixture
def crds(cluster: ClusterHandle) -> None:
    cluster.kubectl("apply", "-f", str(CHART / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")


def test_the_operator_runs_on_the_charts_service_account_alone(
    cluster: ClusterHandle, namespace: str, crds: None, helm_binary: Path, tmp_path: Path
) -> None:
    kube = f"--kubeconfig={cluster.kubeconfig}"
    helm(helm_binary, "install", "rbac", str(CHART), "-n", namespace, kube, "--wait")
    account = "rbac-deepseek-operator"
    kubeconfig = token_kubeconfig(cluster, namespace, account, tmp_path / "sa.kubeconfig")
    whoami = cluster.kubectl("auth", "whoami", f"--kubeconfig={kubeconfig}", "-o", "json")
    assert json.loads(whoami.stdout)["status"]["userInfo"]["username"] == (
        f"system:serviceaccount:{namespace}:{account}"
    )
    tag = f"rb{uuid.uuid4().hex[:6]}"
    scenario = Scenario(cluster, namespace, tag)
    scenario.create_pools()
    operator = run_operator(cluster, kubeconfig, tmp_path / "operator.log", tag)
    try:
        operator.wait_for_log(f"peering '{tag}'", timeout=60)
        started = time.monotonic()
        scenario.run(timeout=120)
        print(f"scenario completed in {time.monotonic() - started:.1f} s")
        assert not DENIED.search(operator.log()), operator.log()
    finally:
        print(operator.log()[-6000:])  # shown when the test fails
        scenario.clean()
        operator.stop()
        helm(helm_binary, "uninstall", "rbac", "-n", namespace, kube, check=False)


# ---------------------------------------------------------------------------------------------
# Minimal: each rule, taken away, breaks the scenario


@pytest.fixture(scope="module")
def chart_rbac(helm_binary: Path) -> list[dict[str, Any]]:
    objects = render(helm_binary, release="minimal", namespace="placeholder")
    kinds = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")
    return [o for kind in kinds for o in of_kind(objects, kind)]


def _without(
    objects: list[dict[str, Any]], rule: Rule, namespace: str, name: str
) -> list[dict[str, Any]]:
    """The chart's RBAC for `namespace`, renamed to `name`, with `rule` taken out."""
    result = []
    for original in objects:
        body = json.loads(json.dumps(original))
        body["metadata"]["name"] = name
        if body["kind"] == "ServiceAccount":
            body["metadata"]["namespace"] = namespace
        elif body["kind"] == "ClusterRole":
            kept = [r for r in rules_of(body) if r != rule]
            assert len(kept) == len(rules_of(body)) - 1
            body["rules"] = [{"apiGroups": [g], "resources": [r], "verbs": list(v)}
                             for g, r, v in kept]  # fmt: skip
        else:
            body["roleRef"]["name"] = name
            body["subjects"][0].update(name=name, namespace=namespace)
        result.append(body)
    return result


@pytest.mark.slow
@pytest.mark.parametrize("rule", GOLDEN_RULES, ids=lambda r: f"{r[1]}:{','.join(r[2])}")
def test_taking_any_one_rule_away_breaks_the_scenario(
    cluster: ClusterHandle,
    namespace: str,
    crds: None,
    chart_rbac: list[dict[str, Any]],
    rule: Rule,
    tmp_path: Path,
) -> None:
    tag = f"rb{uuid.uuid4().hex[:6]}"
    objects = _without(chart_rbac, rule, namespace, tag)
    cluster.apply(objects)
    kubeconfig = token_kubeconfig(cluster, namespace, tag, tmp_path / "sa.kubeconfig")
    scenario = Scenario(cluster, namespace, tag)
    scenario.create_pools()
    operator = run_operator(cluster, kubeconfig, tmp_path / "operator.log", tag)
    try:
        time.sleep(3)  # imports and connects, or fails to
        with pytest.raises(Missed) as missed:
            scenario.run(timeout=MISSING_RULE_TIMEOUT)
        print(f"without {rule}: {missed.value}")
    finally:
        scenario.clean()
        operator.stop()
        for body in reversed(objects):
            where = ["-n", namespace] if body["kind"] == "ServiceAccount" else []
            cluster.kubectl("delete", body["kind"], tag, *where, "--wait=false", check=False)


MISSING_RULE_TIMEOUT = 30.0
"""Seconds the scenario gets without one rule: about four times what it takes with all of
them (8 s measured on a shared 2-core machine)."""
