"""The `deepseek-operator` command line: one typer app; each feature registers its own sub-command."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="deepseek-operator",
    help="Run DeepSeek-R1 on your own GPU and CPU pools at the lowest cost that meets its SLO.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _register_commands() -> None:
    """Each feature module adds its commands to `app`; imports stay light (heavy deps load inside commands)."""
    from deepseek_operator.controlplane import command as cluster_command

    cluster_command.register(app)

    from deepseek_operator.api import command as crds_command

    crds_command.register(app)

    from deepseek_operator import cost_command

    cost_command.register(app)

    from deepseek_operator import simulate_command

    simulate_command.register(app)

    from deepseek_operator import plan_command

    plan_command.register(app)

    from deepseek_operator.serving import command as serve_command

    serve_command.register(app)

    from deepseek_operator.calibration import command as calibrate_command

    calibrate_command.register(app)


def main() -> None:
    _register_commands()
    app()
