"""What `make demo` and `make test` would install (`make -n`, nothing runs): the demo needs the
local cluster only, never the serving extra, whose CUDA torch alone took minutes to install."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.paths import REPO_ROOT


def _dry_run(target: str, venv: Path) -> list[str]:
    make = shutil.which("make")
    if make is None:
        pytest.fail("make is missing: the README's two commands need it")
    result = subprocess.run(
        [make, "-n", target, f"VENV={venv}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return [line for line in result.stdout.splitlines() if "pip install -e" in line]


def test_demo_installs_the_cluster_extra_and_never_serving(tmp_path: Path) -> None:
    installs = _dry_run("demo", tmp_path / "venv")
    assert installs == [f"{tmp_path / 'venv'}/bin/pip install -e '.[cluster]'"]


def test_test_installs_dev_and_serving(tmp_path: Path) -> None:
    installs = _dry_run("test", tmp_path / "venv")
    assert installs == [f"{tmp_path / 'venv'}/bin/pip install -e '.[dev,serving]'"]
