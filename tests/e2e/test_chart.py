"""The Helm chart with the real helm: lint, render with every ci/*-values.yaml, the Pod Security
Standard `restricted`, the RBAC golden list, the values schema, and install, upgrade and uninstall
on the real control plane, with `kubectl auth can-i` as the chart's ServiceAccount."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from deepseek_operator.api.crd import rendered_crds
from deepseek_operator.controlplane.build import ensure_binaries
from tests.chart_support import (
    CHART,
    CI_VALUES,
    CLUSTER_RULES,
    GOLDEN_RULES,
    NAMESPACED_RULES,
    helm,
    of_kind,
    operator_pod,
    render,
    restricted_violations,
    rules_of,
)
from tests.e2e.conftest import ClusterHandle
from tests.e2e.operator_support import wait_until


@pytest.fixture(scope="module")
def helm_binary() -> Path:
    return ensure_binaries().helm


def test_helm_lint_with_every_ci_values_file(helm_binary: Path) -> None:
    assert {p.name for p in CI_VALUES} >= {
        "default-values.yaml",
        "namespaced-values.yaml",
        "full-values.yaml",
    }
    for values in CI_VALUES:
        result = helm(helm_binary, "lint", "--strict", str(CHART), "-f", str(values))
        assert "0 chart(s) failed" in result.stdout, result.stdout


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_ci_rendering_is_restricted_and_grants_no_wildcard(
    helm_binary: Path, values: Path
) -> None:
    objects = render(helm_binary, "-f", str(values))
    assert restricted_violations(operator_pod(objects)) == []
    roles = of_kind(objects, "ClusterRole") + of_kind(objects, "Role")
    assert roles
    for role in roles:
        for group, resource, verbs in rules_of(role):
            assert "*" not in (group, resource, *verbs), role["metadata"]["name"]
            assert resource not in ("secrets", "pods/exec", "pods/attach", "pods/portforward")
            assert not {"escalate", "bind", "impersonate"} & set(verbs)
            assert not (resource == "pods" and "create" in verbs)
    for binding in of_kind(objects, "ClusterRoleBinding") + of_kind(objects, "RoleBinding"):
        assert binding["roleRef"]["name"] not in ("cluster-admin", "admin", "edit")


def test_the_restricted_check_catches_each_breach(helm_binary: Path) -> None:
    """The checker above is no rubber stamp: each single breach of the rendered pod is named."""
    pod = operator_pod(render(helm_binary))
    breaches: dict[str, Callable[[dict[str, Any]], None]] = {
        "hostNetwork": lambda p: p.update(hostNetwork=True),
        "privileged": lambda p: p["containers"][0]["securityContext"].update(privileged=True),
        "allowPrivilegeEscalation": lambda p: p["containers"][0]["securityContext"].pop(
            "allowPrivilegeEscalation"
        ),
        "drop ALL": lambda p: p["containers"][0]["securityContext"]["capabilities"].update(
            drop=["NET_RAW"]
        ),
        "adds capabilities": lambda p: p["containers"][0]["securityContext"]["capabilities"].update(
            add=["SYS_ADMIN"]
        ),
        "runAsNonRoot": lambda p: (
            p["securityContext"].pop("runAsNonRoot"),
            p["containers"][0]["securityContext"].pop("runAsNonRoot"),
        ),
        "runAsUser is 0": lambda p: p["securityContext"].update(runAsUser=0),
        "seccomp": lambda p: (
            p["securityContext"].pop("seccompProfile"),
            p["containers"][0]["securityContext"].pop("seccompProfile"),
        ),
        "hostPath": lambda p: p["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
        "hostPort": lambda p: p["containers"][0]["ports"][0].update(hostPort=8080),
        "writable": lambda p: p["containers"][0]["securityContext"].update(
            readOnlyRootFilesystem=False
        ),
    }
    for name, breach in breaches.items():
        broken = copy.deepcopy(dict(pod))
        breach(broken)
        problems = restricted_violations(broken)
        assert problems, name
        assert any(name.split()[-1] in p or name in p for p in problems), (name, problems)


def test_rbac_matches_the_golden_list(helm_binary: Path) -> None:
    """Cluster-wide: one ClusterRole with exactly the golden rules. Namespaced: the cluster-
    scoped rules in a ClusterRole, the rest in a Role per watched namespace."""
    objects = render(helm_binary)
    (role,) = of_kind(objects, "ClusterRole")
    assert rules_of(role) == list(GOLDEN_RULES)
    assert of_kind(objects, "Role") == []

    objects = render(helm_binary, "--set", "rbac.namespaced=true", "--set-json",
                     'operator.watchNamespaces=["team-a","team-b"]')  # fmt: skip
    (cluster_role,) = of_kind(objects, "ClusterRole")
    assert rules_of(cluster_role) == list(CLUSTER_RULES)
    roles = of_kind(objects, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for role in roles:
        assert rules_of(role) == list(NAMESPACED_RULES)
    bindings = of_kind(objects, "RoleBinding")
    assert {b["subjects"][0]["namespace"] for b in bindings} == {"ops"}
    args = operator_pod(objects)["containers"][0]["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args
    assert "--peering=ds-ops" in args

    defaulted = operator_pod(render(helm_binary, "--set", "rbac.namespaced=true"))
    assert "--namespace=ops" in defaulted["containers"][0]["args"]


def test_optional_objects_come_from_the_charts_own_files(helm_binary: Path) -> None:
    objects = render(helm_binary, "-f", str(CHART / "ci" / "full-values.yaml"))
    (deployment,) = of_kind(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    (rule,) = of_kind(objects, "PrometheusRule")
    rules_file = yaml.safe_load((CHART / "rules" / "deepseek-operator.rules.yaml").read_text())
    assert rule["spec"] == rules_file
    (dashboard,) = of_kind(objects, "ConfigMap")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["deepseek-operator.json"]) == json.loads(
        (CHART / "dashboards" / "deepseek-operator.json").read_text()
    )
    (monitor,) = of_kind(objects, "ServiceMonitor")
    (service,) = of_kind(objects, "Service")
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["spec"]["selector"].items()
    (pool,) = of_kind(objects, "PoolProfile")
    assert pool["metadata"]["name"] == "cpu-xeon"
    crds = {yaml.safe_dump(c) for c in of_kind(objects, "CustomResourceDefinition")}
    expected = {
        yaml.safe_dump(d) for t in rendered_crds().values() for d in yaml.safe_load_all(t) if d
    }
    assert crds == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--set", "replicaCont=2"), "- at '': additional properties 'replicaCont' not allowed"),
        (
            ("--set", "metrics.serviceMonitor.enabeld=true"),
            "- at '/metrics/serviceMonitor': additional properties 'enabeld' not allowed",
        ),
        (("--set-string", "replicaCount=two"), "- at '/replicaCount': got string, want integer"),
        (
            ("--set", "rbac.namespaced=yes-please"),
            "- at '/rbac/namespaced': got string, want boolean",
        ),
    ],
    ids=["misspelt key", "misspelt nested key", "wrong type", "wrong type nested"],
)
def test_the_values_schema_rejects_misspelt_keys_and_wrong_types(
    helm_binary: Path, args: tuple[str, ...], message: str
) -> None:
    result = helm(helm_binary, "template", "ds", str(CHART), *args, check=False)
    print(result.stderr)  # helm's own words, shown with -s
    assert result.returncode == 1
    assert "values don't meet the specifications of the schema(s)" in result.stderr
    assert message in result.stderr


# ---------------------------------------------------------------------------------------------
# On the cluster


@pytest.fixture
def restricted_namespace(cluster: ClusterHandle, namespace: str) -> str:
    cluster.kubectl(
        "label", "namespace", namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/warn=restricted",
    )  # fmt: skip
    return namespace


@pytest.fixture
def release(
    cluster: ClusterHandle, restricted_namespace: str, helm_binary: Path
) -> Iterator[tuple[str, str]]:
    name = "dso"
    yield name, restricted_namespace
    helm(helm_binary, "uninstall", name, "-n", restricted_namespace,
         f"--kubeconfig={cluster.kubeconfig}", check=False)  # fmt: skip


def test_install_upgrade_uninstall_in_a_restricted_namespace(
    cluster: ClusterHandle, helm_binary: Path, release: tuple[str, str]
) -> None:
    name, namespace = release
    kube = f"--kubeconfig={cluster.kubeconfig}"
    installed = helm(helm_binary, "install", name, str(CHART), "-n", namespace, kube,
                     "--wait", "--timeout=120s")  # fmt: skip
    assert "would violate PodSecurity" not in installed.stderr, installed.stderr
    # The namespace does enforce: a plain pod is refused there.
    plain = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "plain"},
             "spec": {"containers": [{"name": "c", "image": "busybox"}]}}  # fmt: skip
    refused = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(plain),
                              check=False)  # fmt: skip
    assert refused.returncode != 0 and "violates PodSecurity" in refused.stderr, refused.stderr
    assert "rollout status deployment/dso-deepseek-operator" in installed.stdout  # NOTES.txt
    deployment = cluster.get_json("deployment", "dso-deepseek-operator", "-n", namespace)
    assert deployment["status"].get("readyReplicas") == 1

    sa = f"system:serviceaccount:{namespace}:dso-deepseek-operator"

    def can(verb: str, resource: str, *extra: str) -> bool:
        answer = cluster.kubectl("auth", "can-i", verb, resource, f"--as={sa}", *extra,
                                 check=False).stdout.strip()  # fmt: skip
        assert answer in ("yes", "no"), answer
        return answer == "yes"

    for verb, resource in [
        ("get", "secrets"), ("list", "secrets"), ("watch", "secrets"),
        ("create", "pods/exec"), ("get", "pods/exec"), ("create", "pods"),
        ("create", "statefulsets.apps"), ("delete", "services"), ("delete", "pods"),
        ("escalate", "clusterroles"),
        ("bind", "clusterroles"), ("impersonate", "users"), ("get", "configmaps"),
    ]:  # fmt: skip
        assert not can(verb, resource, "-A"), f"{verb} {resource}"
    for group, resource, verbs in GOLDEN_RULES:
        qualified = f"{resource.split('/')[0]}.{group}" if group else resource.split("/")[0]
        sub = ["--subresource", resource.split("/")[1]] if "/" in resource else []
        for verb in verbs:
            assert can(verb, qualified, "-A", *sub), f"{verb} {resource}"

    upgraded = helm(helm_binary, "upgrade", name, str(CHART), "-n", namespace, kube,
                    "--set", "replicaCount=2", "--wait", "--timeout=120s")  # fmt: skip
    assert "would violate PodSecurity" not in upgraded.stderr, upgraded.stderr
    wait_until(
        lambda: (
            cluster.get_json("deployment", "dso-deepseek-operator", "-n", namespace)["status"].get(
                "readyReplicas"
            )
            == 2
        ),
        60,
        "two Ready operator pods",
    )
    history = helm(helm_binary, "history", name, "-n", namespace, kube, "-o", "json")
    assert [r["revision"] for r in json.loads(history.stdout)] == [1, 2]

    helm(helm_binary, "uninstall", name, "-n", namespace, kube, "--wait")
    assert cluster.kubectl("get", "clusterrole", "dso-deepseek-operator",
                           check=False).returncode != 0  # fmt: skip
    assert cluster.get_json("deployments,serviceaccounts,services", "-n", namespace,
                            "-l", "app.kubernetes.io/instance=dso")["items"] == []  # fmt: skip
    assert (
        cluster.kubectl("get", "crd", "deepseekdeployments.serving.deepseek-operator.io").returncode
        == 0
    )
