"""The documentation site: `mkdocs build --strict` passes on the real docs and fails on a broken
link or anchor; every condition reason and Event reason the operator can set has its entry in
the troubleshooting page, and that page names no reason the code does not have."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from deepseek_operator.adapters import prometheus
from deepseek_operator.api import conditions
from deepseek_operator.core.planning import reconcile
from tests.paths import REPO_ROOT

TROUBLESHOOTING = REPO_ROOT / "docs" / "troubleshooting.md"


def _build(root: Path, site: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("mkdocs", path=str(Path(sys.executable).parent)) is None:
        pytest.fail("mkdocs is missing: install the dev extra (pip install -e '.[dev]')")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_site_builds_with_no_warning(tmp_path: Path) -> None:
    result = _build(REPO_ROOT, tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "reference" / "api" / "index.html").is_file()
    assert (tmp_path / "site" / "troubleshooting" / "index.html").is_file()


@pytest.mark.parametrize(
    ("link", "complaint"),
    [
        ("[gone](no-such-page.md)", "'no-such-page.md', but the target is not found"),
        ("[gone](planner.md#no-such-heading)", "does not contain an anchor '#no-such-heading'"),
        ("[gone](../examples/pools.yaml)", "'../examples/pools.yaml', but the target is not found"),
    ],
)
def test_a_broken_link_fails_the_build(tmp_path: Path, link: str, complaint: str) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "docs", copy / "docs")
    shutil.copy2(REPO_ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    page = copy / "docs" / "concepts.md"
    page.write_text(page.read_text(encoding="utf-8") + f"\n{link}\n", encoding="utf-8")
    result = _build(copy, tmp_path / "site")
    assert result.returncode != 0
    assert complaint in result.stdout + result.stderr


def _constants(module: ModuleType, prefix: str) -> set[str]:
    return {
        value
        for name, value in vars(module).items()
        if name.startswith(prefix) and isinstance(value, str)
    }


def _condition_reasons() -> set[str]:
    reasons = _constants(conditions, "REASON_") | _constants(reconcile, "REASON_")
    return reasons | _constants(prometheus, "REASON_") | set(prometheus.REASONS)


def test_every_condition_reason_has_a_troubleshooting_entry() -> None:
    text = TROUBLESHOOTING.read_text(encoding="utf-8")
    headed = set(re.findall(r"^###\s+`([A-Za-z]+)`\s*$", text, flags=re.MULTILINE))
    code = _condition_reasons()
    assert code - headed == set(), "reasons without a '### `Reason`' entry"
    assert headed - code == set(), "entries for reasons the operator does not set"


def test_every_event_reason_has_a_troubleshooting_row() -> None:
    text = TROUBLESHOOTING.read_text(encoding="utf-8")
    section = text.split("## Events", 1)[1]
    rows = set(re.findall(r"^\|\s*`([A-Za-z]+)`\s*\|", section, flags=re.MULTILINE))
    code = _constants(reconcile, "EVENT_")
    assert code - rows == set(), "Event reasons without a row under '## Events'"
    assert rows - code == set(), "rows for Event reasons the operator does not emit"


def _slug(heading: str) -> str:
    text = re.sub(r"[^\w\s-]", "", heading.replace("`", "").strip().lower())
    return re.sub(r"\s+", "-", text)


def test_the_readme_links_into_docs_resolve() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\((docs/[^)#\s]+)(?:#([^)\s]+))?\)", readme)
    assert links, "the README links into docs/"
    for path, anchor in links:
        target = REPO_ROOT / path
        assert target.is_file(), f"README links to {path}, which does not exist"
        if anchor:
            headings = re.findall(r"^#+\s+(.*)$", target.read_text(encoding="utf-8"), re.M)
            assert anchor in {_slug(h) for h in headings}, f"README: no #{anchor} in {path}"
