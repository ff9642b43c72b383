"""`deepseek-operator run`: usage errors stop with exit 2 before kopf starts, and the handlers
module registers what the operator runs (the e2e tier runs it against a real cluster)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import kopf
import pytest

from tests.paths import REPO_ROOT


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deepseek_operator", "run", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=120,
    )


def test_a_missing_kubeconfig_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run(f"--kubeconfig={tmp_path / 'nope.yaml'}")
    assert result.returncode == 2
    assert "--kubeconfig" in result.stderr and "Traceback" not in result.stderr


def test_no_cluster_configured_is_a_usage_error(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = run(env=env)
    assert result.returncode == 2
    assert "no cluster to run against" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("value", ["0", "-1", "abc", "99999"])
def test_a_bad_peering_lifetime_is_a_usage_error(value: str) -> None:
    result = run(f"--peering-lifetime={value}")
    assert result.returncode == 2 and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "flag", ["--metrics-port=-1", "--metrics-port=70000", "--load-poll-seconds=0"]
)
def test_bad_metrics_and_poll_settings_are_usage_errors(flag: str) -> None:
    result = run(flag)
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_the_handlers_module_registers_the_operator() -> None:
    import deepseek_operator.handlers  # noqa: F401 (registers with kopf's default registry)

    registry = kopf.get_default_registry()

    def ids(kind: object, plural: str) -> set[str]:
        return {
            h.id
            for h in kind.get_all_handlers()  # type: ignore[attr-defined]
            if h.selector is not None and h.selector.any_name == plural
        }

    assert ids(registry._spawning, "deepseekdeployments") == {"run_deployment"}
    for plural in ("poolprofiles", "nodes", "pods", "deployments", "services"):
        assert ids(registry._indexing, plural), plural
