"""The `deepseek-operator` command line: one typer app and every command it offers.

Each command lives in its own module here and registers itself on `app`. Registration imports
only typer and the standard library at module level, so `--help` and the pure commands (plan,
cost, simulate, crds) work on a base install; a command that needs an extra (`cluster`,
`serving`) says which one to install when it runs.

Every command runs inside `_Commands.invoke`, the one place an error leaving a command is turned
into what the user sees (`inputs.report`): an input error is one red line naming the option,
file or field, with exit 2; anything else is a one-line summary, exit 1, and a pointer to
`--debug`, which shows the full traceback instead. Output cut short by its reader (`| head`)
ends quietly with exit 1, as click ends a `--help` cut short.
"""

from __future__ import annotations

import itertools
import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup

DEBUG = "deepseek_operator.debug"
"""Key in the click context's `meta` (shared by every command) set by `--debug`."""


class _Commands(TyperGroup):
    """The root command group: every command's exceptions pass through `invoke`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # An empty value (`--state-dir "$UNSET"`) is never meant: a path would silently become
        # the working directory (Path("") is "."), which `cluster up` clears and `crds` fills.
        for option, value in itertools.pairwise(args):
            if option.startswith("-") and value == "":
                raise typer.BadParameter("must not be empty", param_hint=f"'{option}'")
        for token in args:
            if token.startswith("--") and token.endswith("="):
                raise typer.BadParameter("must not be empty", param_hint=f"'{token[:-1]}'")
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # an exit already decided, or a usage error that names the option (exit 2)
        except BrokenPipeError:
            # The reader went away (`... | head`): nobody is listening for a message.
            _silence_stdout()
            raise typer.Exit(1) from None
        except Exception as error:
            if ctx.meta.get(DEBUG):
                raise
            from deepseek_operator.cli.inputs import report

            raise typer.Exit(report(error)) from None


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the flush at exit cannot raise again (as click does
    for a `--help` cut short, which then exits 1)."""
    try:
        descriptor = sys.stdout.fileno()
    except (OSError, ValueError):
        return  # not a file descriptor: a capture, which has no reader to lose
    os.dup2(os.open(os.devnull, os.O_WRONLY), descriptor)


app = typer.Typer(
    name="deepseek-operator",
    cls=_Commands,
    help="Run DeepSeek-R1 on your own GPU and CPU pools at the lowest cost that meets its SLO.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _options(
    ctx: typer.Context,
    debug: bool = typer.Option(
        False, "--debug", help="Show the full traceback of an unexpected error."
    ),
) -> None:
    ctx.meta[DEBUG] = debug


def _register_commands() -> None:
    from deepseek_operator.cli import (
        calibrate,
        cluster,
        cost,
        crds,
        demo,
        plan,
        run,
        serve,
        simulate,
    )

    for command in (demo, run, cluster, crds, cost, simulate, plan, serve, calibrate):
        command.register(app)


def main() -> None:
    _register_commands()
    app()
