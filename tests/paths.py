"""Where the repository's files are, for tests at any depth."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = REPO_ROOT / "examples"
TEST_DATA = REPO_ROOT / "tests" / "data"
