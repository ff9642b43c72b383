"""`python -m deepseek_operator` runs the CLI."""

from deepseek_operator.cli import main

main()
