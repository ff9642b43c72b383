"""The dashboard and alert rules as data: their PromQL expressions, and the metric names those
expressions read (a small PromQL tokenizer, enough for what the files use)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.paths import REPO_ROOT

CHART = REPO_ROOT / "charts" / "deepseek-operator"
DASHBOARD = CHART / "dashboards" / "deepseek-operator.json"
RULES = CHART / "rules" / "deepseek-operator.rules.yaml"
RULE_TESTS = REPO_ROOT / "tests" / "rules" / "deepseek-operator.test.yaml"

FUNCTIONS_AND_KEYWORDS = {
    # aggregations and their modifiers
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset",
    # functions used or plausible
    "rate", "irate", "increase", "delta", "idelta", "deriv", "histogram_quantile", "abs",
    "absent", "absent_over_time", "clamp_min", "clamp_max", "label_replace", "label_join",
    "timestamp", "time", "vector", "scalar", "sort", "sort_desc", "avg_over_time",
    "max_over_time", "min_over_time", "sum_over_time", "count_over_time", "last_over_time",
    "changes", "resets", "round", "ceil", "floor", "label_values",
}  # fmt: skip


def dashboard_expressions(path: Path = DASHBOARD) -> list[str]:
    """Every PromQL expression of the dashboard: panel targets and template-variable queries."""
    board = json.loads(path.read_text())
    found: list[str] = []

    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for item in items:
            yield item
            yield from panels(item.get("panels") or [])

    for panel in panels(board.get("panels") or []):
        found += [t["expr"] for t in panel.get("targets") or [] if t.get("expr")]
    for variable in (board.get("templating") or {}).get("list") or []:
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if variable.get("type") == "query" and query:
            found.append(str(query))
    return found


def rule_expressions(path: Path = RULES) -> dict[str, str]:
    """Alert (or record) name → expression."""
    groups = yaml.safe_load(path.read_text())["groups"]
    return {
        rule.get("alert") or rule["record"]: str(rule["expr"])
        for group in groups
        for rule in group["rules"]
    }


def recorded_names(path: Path = RULES) -> set[str]:
    groups = yaml.safe_load(path.read_text())["groups"]
    return {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}


def metric_names(expression: str) -> set[str]:
    """The metric names an expression reads."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)  # strings
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges
    text = re.sub(r"\b\d+(\.\d+)?(ms|[smhdwy])?\b", " ", text)  # numbers, offset durations
    text = re.sub(r"\$\{?\w+\}?", " ", text)  # Grafana variables
    # Grafana's label_values(metric, label): the second argument is a label
    text = re.sub(r"\blabel_values\s*\(([^,)]*),[^)]*\)", r"label_values(\1)", text)
    # label lists: by (...), without (...), on (...), ignoring (...), group_left (...)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r" \1 ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        rest = text[match.end() :].lstrip()
        if word in FUNCTIONS_AND_KEYWORDS or rest.startswith("("):
            continue
        if re.fullmatch(r"\d+[smhdwy]?", word) or word in ("e", "inf", "nan", "Inf", "NaN"):
            continue
        names.add(word)
    return names
