"""A base install (`pip install deepseek-operator`, no extras) runs the pure commands, and a
command that needs an extra says which one to install.

The module builds one fresh virtual environment, installs the package into it without extras
(from pip's cache after the first run), and runs the installed `deepseek-operator` there, so an
unconditional import of an extra's module anywhere on a command's path fails here even though the
development environment has every extra installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.paths import EXAMPLES, REPO_ROOT

pytestmark = pytest.mark.slow

# What the build reads. The package is built from a copy of these, not in place: an in-tree
# build leaves build/lib behind, and a module renamed since would be packaged from there again.
BUILD_INPUTS = ("pyproject.toml", "README.md", "operator")
EXTRAS_MODULES = {"cluster": ("cryptography",), "serving": ("torch", "transformers", "fastapi")}
COMMANDS = ("run", "cluster", "crds", "cost", "simulate", "plan", "serve", "calibrate")
# pip's own cache makes a second build fast; the commands compile only the modules they import.
PIP_OPTIONS = ("--disable-pip-version-check", "-q", "--no-compile")
INSTALL_TIMEOUT_S = 600
COMMAND_TIMEOUT_S = 180


@dataclass(frozen=True)
class BaseInstall:
    root: Path
    python: Path
    cli: Path
    env: Mapping[str, str]

    def run(
        self, *args: str | Path, program: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(program or self.cli), *map(str, args)],
            cwd=REPO_ROOT,
            env=dict(self.env),
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=COMMAND_TIMEOUT_S,
        )


def _isolated_env() -> dict[str, str]:
    """This environment without any PYTHON* variable that could reach the source tree or the
    development environment, UTF-8 output, and a terminal wide enough that tables do not wrap."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTHON")}
    env.pop("VIRTUAL_ENV", None)
    env.update(PYTHONUTF8="1", COLUMNS="200", NO_COLOR="1")
    return env


def _check(result: subprocess.CompletedProcess[str], what: str) -> None:
    assert result.returncode == 0, (
        f"{what} exited {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )


@pytest.fixture(scope="module")
def base_install(tmp_path_factory: pytest.TempPathFactory) -> BaseInstall:
    root = tmp_path_factory.mktemp("base-install")
    source = root / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        path = REPO_ROOT / name
        if path.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist")
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            shutil.copy2(path, source / name)

    venv = root / "venv"
    env = _isolated_env()
    created = subprocess.run(
        [sys.executable, "-m", "venv", str(venv)],
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    _check(created, "python -m venv")
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", *PIP_OPTIONS, str(source)],
        env=env,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
    )
    if installed.returncode != 0:
        pytest.fail(
            "pip could not install the package without extras (is the package index "
            f"reachable?)\nstdout:\n{installed.stdout}\nstderr:\n{installed.stderr}"
        )
    return BaseInstall(root=root, python=python, cli=bin_dir / "deepseek-operator", env=env)


def test_the_extras_are_not_installed_and_the_package_comes_from_the_venv(
    base_install: BaseInstall,
) -> None:
    modules = [name for names in EXTRAS_MODULES.values() for name in names]
    probe = (
        "import importlib.util, json, deepseek_operator\n"
        f"present = [m for m in {modules!r} if importlib.util.find_spec(m) is not None]\n"
        "print(json.dumps({'present': present, 'package': deepseek_operator.__file__}))\n"
    )
    result = base_install.run("-c", probe, program=base_install.python)
    _check(result, "the import probe")
    found = json.loads(result.stdout)
    assert found["present"] == [], "a base install must not bring an extra's modules"
    assert Path(found["package"]).is_relative_to(base_install.root / "venv")


@pytest.mark.parametrize("entry", ["script", "module"])
def test_help_lists_every_command(base_install: BaseInstall, entry: str) -> None:
    if entry == "script":
        result = base_install.run("--help")
        usage = "Usage: deepseek-operator"
    else:
        result = base_install.run("-m", "deepseek_operator", "--help", program=base_install.python)
        usage = "Usage: python -m deepseek_operator"
    _check(result, f"--help ({entry})")
    assert usage in result.stdout
    for command in COMMANDS:
        listed = re.search(rf"^\W*{command}\s", result.stdout, re.MULTILINE)
        assert listed, f"--help does not list {command}"


def test_cost_on_the_example_scenario_with_a_chart(base_install: BaseInstall) -> None:
    chart = base_install.root / "cost.png"
    result = base_install.run(
        "cost", "--scenario", EXAMPLES / "cost-scenario.yaml", "--plot", chart
    )
    _check(result, "cost --scenario")
    for heading in ("Fit and throughput", "Cost (CNY)", "TCO over 3 years"):
        assert heading in result.stdout
    assert "rtx4090" in result.stdout
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_cost_article(base_install: BaseInstall) -> None:
    result = base_install.run("cost", "--article")
    _check(result, "cost --article")
    assert "Article section 4" in result.stdout
    assert "Where the article's figures differ from its inputs" in result.stdout


def test_plan_on_the_what_if_example(base_install: BaseInstall) -> None:
    result = base_install.run(
        "plan",
        EXAMPLES / "plan-what-if.yaml",
        "--demand",
        "14",
        "--at",
        "2026-11-28T23:00+08:00",
    )
    _check(result, "plan")
    assert "plan: move (cpuOnly, window night)" in result.stdout
    assert "cost per million tokens:" in result.stdout
    assert "replicas on cpu-xeon cover 14 tok/s demand" in result.stdout


def test_simulate_a_short_synthetic_trace(base_install: BaseInstall) -> None:
    result = base_install.run(
        "simulate",
        "--deployment",
        EXAMPLES / "r1-7b-gpu-by-day-cpu-at-night.yaml",
        "--pools",
        EXAMPLES / "pools.yaml",
        "--cluster",
        EXAMPLES / "cluster.yaml",
        "--synthetic",
        "diurnal",
        "--days",
        "0.25",
        "--policies",
        "ours,load-only",
        "--json",
    )
    _check(result, "simulate")
    report = json.loads(result.stdout)
    assert {policy["name"] for policy in report["policies"]} == {"ours", "load-only"}
    assert report["trace"]["durationSeconds"] == pytest.approx(0.25 * 86400)


@pytest.mark.parametrize(
    ("extra", "command"),
    [("cluster", ["cluster", "up", "--state-dir"]), ("serving", ["serve", "--weights"])],
)
def test_a_command_that_needs_an_extra_names_it(
    base_install: BaseInstall, tmp_path: Path, extra: str, command: list[str]
) -> None:
    result = base_install.run(*command, tmp_path)
    wrote = list(tmp_path.iterdir())
    if extra == "cluster" and wrote:
        base_install.run("cluster", "down", "--state-dir", tmp_path)  # it started a cluster
    output = result.stdout + result.stderr
    assert result.returncode == 2, f"exit {result.returncode}\n{output}"
    assert f"the {extra!r} extra" in result.stderr
    assert f"pip install 'deepseek-operator[{extra}]'" in result.stderr
    assert "Traceback" not in output
    assert wrote == [], "the command wrote before checking its extra"
