"""The `deepseek-operator` command line: one typer app and every command it offers.

Each command lives in its own module here and registers itself on `app`. Registration imports
only typer and the standard library at module level, so `--help` and the pure commands (plan,
cost, simulate, crds) work on a base install; a command that needs an extra (`cluster`,
`serving`) says which one to install when it runs.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="deepseek-operator",
    help="Run DeepSeek-R1 on your own GPU and CPU pools at the lowest cost that meets its SLO.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _register_commands() -> None:
    from deepseek_operator.cli import (
        calibrate,
        cluster,
        cost,
        crds,
        plan,
        run,
        serve,
        simulate,
    )

    for command in (run, cluster, crds, cost, simulate, plan, serve, calibrate):
        command.register(app)


def main() -> None:
    _register_commands()
    app()
