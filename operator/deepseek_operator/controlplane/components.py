"""The control-plane components, their pinned versions and how each is built from Go modules.

Each component is built inside its own wrapper module (the go.mod/go.sum under `gomod/`), so
minimal version selection never mixes Kubernetes' pins with etcd's, kwok's or helm's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

GOMOD_ROOT = Path(__file__).parent / "gomod"

KUBERNETES_VERSION = "v1.37.2"
ETCD_VERSION = "v3.6.14"
KWOK_VERSION = "v0.8.0"
HELM_VERSION = "v3.21.4"


def _kubernetes_ldflags() -> tuple[str, ...]:
    """Stamp the real version: unstamped builds report v0.0.0-master, which helm and kubectl misread."""
    minor = KUBERNETES_VERSION.split(".")[1]
    flags = ["-s", "-w"]
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {package}.gitVersion={KUBERNETES_VERSION}",
            f"-X {package}.gitMajor=1",
            f"-X {package}.gitMinor={minor}",
            f"-X {package}.gitTreeState=clean",
            f"-X {package}.buildDate=1970-01-01T00:00:00Z",
        ]
    return tuple(flags)


@dataclass(frozen=True)
class Component:
    """One Go wrapper module and the binaries built from it."""

    name: str
    version: str
    binaries: dict[str, str]  # binary name -> Go package path
    ldflags: tuple[str, ...] = ("-s", "-w")
    module_versions: dict[str, str] = field(default_factory=dict)

    @property
    def module_dir(self) -> Path:
        return GOMOD_ROOT / self.name


COMPONENTS: tuple[Component, ...] = (
    Component(
        name="etcd",
        version=ETCD_VERSION,
        binaries={"etcd": "go.etcd.io/etcd/server/v3"},
    ),
    Component(
        name="kubernetes",
        version=KUBERNETES_VERSION,
        binaries={
            "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
            "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
            "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
        },
        ldflags=_kubernetes_ldflags(),
    ),
    Component(
        name="kwok",
        version=KWOK_VERSION,
        binaries={"kwok": "sigs.k8s.io/kwok/cmd/kwok"},
    ),
    Component(
        name="helm",
        version=HELM_VERSION,
        binaries={"helm": "helm.sh/helm/v3/cmd/helm"},
        ldflags=(
            "-s",
            "-w",
            f"-X helm.sh/helm/v3/internal/version.version={HELM_VERSION}",
            "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1",
            f"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor={KUBERNETES_VERSION.split('.')[1]}",
        ),
    ),
)

# The kwok stages a standalone kwok v0.8+ needs (it no longer has built-in defaults), taken
# from the kwok module itself so they always match the binary.
KWOK_STAGE_FILES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
)


def component(name: str) -> Component:
    for candidate in COMPONENTS:
        if candidate.name == name:
            return candidate
    raise KeyError(name)
