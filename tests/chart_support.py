"""The Helm chart as the tests see it: helm itself (the binary the project builds), rendering,
the Pod Security Standard `restricted` rules, and the RBAC the chart must grant, no more."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.paths import REPO_ROOT

CHART = REPO_ROOT / "charts" / "deepseek-operator"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))

Rule = tuple[str, str, tuple[str, ...]]
"""(apiGroup, resource, verbs) of one RBAC rule."""

CLUSTER_RULES: tuple[Rule, ...] = (
    ("serving.deepseek-operator.io", "poolprofiles", ("list", "watch")),
    ("serving.deepseek-operator.io", "poolprofiles/status", ("patch",)),
    ("", "nodes", ("list", "watch")),
    ("kopf.dev", "clusterkopfpeerings", ("list", "watch", "patch", "create")),
)
"""What the operator needs on cluster-scoped kinds, in every mode."""

NAMESPACED_RULES: tuple[Rule, ...] = (
    ("serving.deepseek-operator.io", "deepseekdeployments", ("list", "watch", "patch")),
    ("serving.deepseek-operator.io", "deepseekdeployments/status", ("patch",)),
    ("apps", "deployments", ("list", "watch", "create", "patch", "delete")),
    ("", "services", ("list", "watch", "create", "patch")),
    ("", "pods", ("list", "watch")),
    ("", "events", ("create",)),
)
"""What it needs in the namespaces it watches (cluster-wide in the default mode)."""

GOLDEN_RULES = CLUSTER_RULES + NAMESPACED_RULES


def helm(
    binary: Path, *args: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(binary), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def render(
    binary: Path, *args: str, release: str = "ds", namespace: str = "ops"
) -> list[dict[str, Any]]:
    """`helm template` of the chart: every object it would install, CRDs included."""
    out = helm(binary, "template", release, str(CHART), "-n", namespace, "--include-crds", *args)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def of_kind(objects: Iterable[Mapping[str, Any]], kind: str) -> list[Mapping[str, Any]]:
    return [o for o in objects if o.get("kind") == kind]


def rules_of(role: Mapping[str, Any]) -> list[Rule]:
    """A role's rules, one (group, resource, verbs) per resource."""
    found: list[Rule] = []
    for rule in role.get("rules") or []:
        for group in rule.get("apiGroups") or []:
            for resource in rule.get("resources") or []:
                found.append((group, resource, tuple(rule.get("verbs") or ())))
    return found


# ---------------------------------------------------------------------------------------------
# Pod Security Standard `restricted` (k8s.io/pod-security-admission, policy/check_*.go), with
# the chart's own addition: a read-only root filesystem.

ALLOWED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}  # fmt: skip
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}  # fmt: skip


def restricted_violations(pod: Mapping[str, Any]) -> list[str]:
    """Every rule of the `restricted` profile the pod spec breaks (empty: it passes)."""
    problems: list[str] = []
    pod_sc = pod.get("securityContext") or {}
    containers: Sequence[Mapping[str, Any]] = [
        *(pod.get("initContainers") or []),
        *(pod.get("containers") or []),
        *(pod.get("ephemeralContainers") or []),
    ]
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            problems.append(f"{flag} is set")
    for volume in pod.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            problems.append(f"volume {volume['name']} is {sorted(kinds)}")
    for sysctl in pod_sc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            problems.append(f"unsafe sysctl {sysctl.get('name')}")
    if (pod_sc.get("appArmorProfile") or {}).get("type") == "Unconfined":
        problems.append("pod AppArmor is Unconfined")
    if pod_sc.get("runAsUser") == 0:
        problems.append("pod runAsUser is 0")
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if pod_seccomp not in (None, "RuntimeDefault", "Localhost"):
        problems.append(f"pod seccomp is {pod_seccomp}")
    for container in containers:
        name = container.get("name", "?")
        sc = container.get("securityContext") or {}
        if sc.get("privileged"):
            problems.append(f"{name}: privileged")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"{name}: hostPort {port['hostPort']}")
        if sc.get("procMount", "Default") != "Default":
            problems.append(f"{name}: procMount {sc['procMount']}")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        capabilities = sc.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"{name}: capabilities do not drop ALL")
        if set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: adds capabilities {capabilities['add']}")
        if not (sc.get("runAsNonRoot") is True or pod_sc.get("runAsNonRoot") is True):
            problems.append(f"{name}: runAsNonRoot is not true")
        if sc.get("runAsNonRoot") is False:
            problems.append(f"{name}: runAsNonRoot is false")
        if sc.get("runAsUser") == 0:
            problems.append(f"{name}: runAsUser is 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type") or pod_seccomp
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccomp is {seccomp}")
        if (sc.get("appArmorProfile") or {}).get("type") == "Unconfined":
            problems.append(f"{name}: AppArmor is Unconfined")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: root filesystem is writable")
    return problems


def operator_pod(objects: Iterable[Mapping[str, Any]]) -> Mapping[str, Any]:
    (deployment,) = of_kind(objects, "Deployment")
    return dict(deployment["spec"]["template"]["spec"])


def values_file(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))
