"""Output cut short by its reader (`deepseek-operator simulate --help | head -60`) is not a bug."""

from __future__ import annotations

import shlex
import subprocess
import sys

import typer
from typer.testing import CliRunner

from deepseek_operator.cli import _Commands
from tests.paths import REPO_ROOT


def test_a_command_whose_reader_left_exits_1_without_a_message() -> None:
    app = typer.Typer(cls=_Commands)

    @app.command()
    def talk() -> None:
        raise BrokenPipeError(32, "Broken pipe")

    @app.command()
    def other() -> None:
        pass

    result = CliRunner().invoke(app, ["talk"])
    assert result.exit_code == 1
    assert result.output == ""


def test_help_piped_into_head_ends_quietly() -> None:
    """The symptom as a user met it: head leaves after 60 lines, mid-way through the help."""
    cli = shlex.join([sys.executable, "-c", "from deepseek_operator.cli import main; main()"])
    script = f"{cli} simulate --help | head -60 > /dev/null; echo $'\\n'rc=${{PIPESTATUS[0]}} >&2"
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"},
    )
    assert "unexpected" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().endswith("rc=1") or done.stderr.strip().endswith("rc=0")
