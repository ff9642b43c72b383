"""The alert rules under promtool, and the dashboard's queries against a real Prometheus.

No cluster is needed: these use Debian's `prometheus` and `promtool` (installed by .ci/run)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.prometheus_support import PrometheusServer, running_prometheus
from tests.monitoring import RULE_TESTS, RULES, dashboard_expressions, rule_expressions


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is not installed: `apt-get install prometheus`")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120, check=False)


def test_promtool_checks_the_rule_groups():
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 4 rules found" in result.stdout
    assert set(rule_expressions()) == {
        "DeepSeekMetricsUnavailable",
        "DeepSeekCapacityShortfall",
        "DeepSeekRepeatedFailedMoves",
        "DeepSeekBelowMinAvailable",
    }


def test_each_alert_fires_on_its_series_and_stays_silent_on_a_healthy_one():
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("alert", "broken", "fixed"),
    [
        ("DeepSeekMetricsUnavailable", "available == 0", "available == 1"),
        ("DeepSeekCapacityShortfall", "for: 10m", "for: 1m"),
        ("DeepSeekRepeatedFailedMoves", ">= 3", ">= 1"),
        ("DeepSeekBelowMinAvailable", "< on (namespace", "<= on (namespace"),
    ],
)
def test_the_rule_tests_catch_a_broken_rule(tmp_path: Path, alert: str, broken: str, fixed: str):
    """Each alert's test fails when its rule is changed: the tests can fail."""
    rules = RULES.read_text()
    assert broken in rules
    chart = tmp_path / "charts" / "deepseek-operator" / "rules"
    chart.mkdir(parents=True)
    (chart / RULES.name).write_text(rules.replace(broken, fixed, 1))
    tests = tmp_path / "tests" / "rules"
    tests.mkdir(parents=True)
    shutil.copy(RULE_TESTS, tests / RULE_TESTS.name)
    result = promtool("test", "rules", str(tests / RULE_TESTS.name))
    assert result.returncode != 0
    assert alert in result.stdout + result.stderr


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    with running_prometheus(tmp_path_factory.mktemp("prometheus"), []) as server:
        yield server


def grafana_substituted(expression: str) -> str:
    """What Grafana sends for the dashboard's variables."""
    text = expression.replace("$__rate_interval", "1m").replace("$__range", "1h")
    text = text.replace("$__interval", "15s")
    text = re.sub(r"\$\{?(namespace|deployment)\}?", ".*", text)
    return re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", text)


def test_every_dashboard_query_is_valid_promql(prometheus: PrometheusServer):
    expressions = dashboard_expressions()
    assert len(expressions) >= 25
    for expression in expressions:
        answer = prometheus.query(grafana_substituted(expression))
        assert answer["status"] == "success", (expression, answer)
