"""The operator's Dockerfile keeps its promises (no Docker engine on the test machines to build
it): a pinned base, a numeric non-root user the chart's securityContext matches, the package
without extras, and a dependency set pinned exactly that holds nothing of the model server."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement

from tests.paths import REPO_ROOT

IMAGE = REPO_ROOT / "images" / "operator"
SERVING_ONLY = {"torch", "transformers", "tokenizers", "safetensors", "fastapi", "uvicorn",
                "triton", "accelerate", "psutil"}  # fmt: skip


def _pins() -> dict[str, str]:
    lines = [
        line
        for line in (IMAGE / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines and all(re.fullmatch(r"[\w.-]+==[\w.+-]+", line) for line in lines), lines
    return dict(line.split("==") for line in lines)


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_dockerfile_promises() -> None:
    text = (IMAGE / "Dockerfile").read_text()
    bases = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, flags=re.M)
    assert bases and all(re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", b) for b in bases), bases
    assert re.search(r"^USER 65532:65532$", text, flags=re.M)
    installs = re.findall(r"pip install (.+?)(?: \\|$)", text, flags=re.M)
    assert installs == ["--constraint /tmp/constraints.txt ."], installs  # no extras
    assert "torch" not in text.lower().replace("no torch", "")
    deployment = (REPO_ROOT / "charts/deepseek-operator/templates/deployment.yaml").read_text()
    assert "runAsUser: 65532" in deployment and "readOnlyRootFilesystem: true" in deployment


def test_the_dependency_set_is_the_base_package_and_nothing_of_the_model_server() -> None:
    pins = {_key(name): version for name, version in _pins().items()}
    assert not SERVING_ONLY & set(pins), SERVING_ONLY & set(pins)
    assert not [name for name in pins if name.startswith("nvidia-")]
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    for requirement in map(Requirement, project["dependencies"]):
        pinned = pins.get(_key(requirement.name))
        assert pinned is not None, f"{requirement.name} is not pinned"
        assert requirement.specifier.contains(pinned), (requirement, pinned)
