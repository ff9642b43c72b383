"""The model-server Dockerfiles keep their promises (they cannot be built on the test machines):
pinned bases, a non-root user, a health check, no weights inside, versions the tests ran with."""

from __future__ import annotations

import re

import pytest

from tests.paths import REPO_ROOT

IMAGES = REPO_ROOT / "images" / "model-server"


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.cuda"])
def test_dockerfile_promises(name: str) -> None:
    text = (IMAGES / name).read_text()
    bases = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, flags=re.M)
    assert bases and all(re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+[\w.-]*", base) for base in bases), (
        bases
    )
    assert re.search(r"^USER 10001:10001$", text, flags=re.M), "must run as a non-root user"
    assert "HEALTHCHECK" in text and "/health/live" in text
    assert "STOPSIGNAL SIGTERM" in text
    assert "HF_HUB_OFFLINE=1" in text
    copied = re.findall(r"^COPY (?!--from)(.+)$", text, flags=re.M)
    assert all("model" not in source.split()[0] or "model-server" in source for source in copied), (
        copied
    )
    assert "--constraint /tmp/constraints.txt" in text


def test_constraints_pin_every_package_exactly() -> None:
    lines = [
        line
        for line in (IMAGES / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines and all(re.fullmatch(r"[\w.-]+==[\w.+-]+", line) for line in lines), lines
    assert any(line.startswith("transformers==5.") for line in lines)
