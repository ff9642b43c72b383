"""The CLI and the operator's engine profiles import without torch, transformers or FastAPI."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "transformers", "fastapi", "uvicorn")


def test_cli_and_engine_profiles_do_not_import_the_serving_stack() -> None:
    probe = (
        "import sys\n"
        "import deepseek_operator.cli as cli\n"
        "cli._register_commands()\n"
        "import deepseek_operator.core.workloads.engines, deepseek_operator.cli.serve\n"
        "import deepseek_operator.cli.calibrate\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
