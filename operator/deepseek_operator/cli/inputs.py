"""How the commands read their input files and stop on bad input.

Every command checks all of its input before doing any work. A problem becomes one
`InputError` whose message names the file, option or field; `stop` prints it in red on stderr
and exits with code 2, the usual code of a usage error, so nothing is half printed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from deepseek_operator.core.costing.cost import UnknownCurrencyRate

INPUT_ERROR_EXIT_CODE = 2


class InputError(Exception):
    """A command's input is wrong; the message names the file, option or field."""


def stop(error: BaseException | str) -> NoReturn:
    """Print the error in red on stderr and end the command with exit code 2."""
    message = Text.assemble(("error: ", "bold red"), str(error))
    Console(stderr=True).print(message, soft_wrap=True, highlight=False)
    raise typer.Exit(INPUT_ERROR_EXIT_CODE) from None


def missing_rate_message(error: UnknownCurrencyRate, *, scenario: bool = False) -> str:
    """The error, and where to state the missing rate: a deployment's costModel or a scenario."""
    currency = error.currency
    if scenario:
        how = (
            f"add it to a scenario file's exchange_rates (cost --scenario FILE), e.g. "
            f"exchange_rates: {{{currency}: <{currency} per USD>}}"
        )
    else:
        how = (
            f"add it to the deployment's spec.costModel.exchangeRates, e.g. "
            f"{{currency: {currency}, unitsPerUSD: <{currency} per USD>, source: <where, when>}}"
        )
    return f"{error}; state how many {currency} one US dollar buys: {how}"


def require_extra(extra: str, *modules: str) -> None:
    """Stop with exit 2 and the pip line to run when a module of an optional extra is missing."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        stop(
            f"this command needs the {extra!r} extra ({', '.join(missing)} not installed): "
            f"pip install 'deepseek-operator[{extra}]'"
        )


def read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror}") from exc


def read_yaml(path: Path, what: str) -> Any:
    """The one YAML document in the file (None when it is empty)."""
    try:
        return yaml.safe_load(read_text(path, what))
    except yaml.YAMLError as exc:
        raise InputError(f"{what}: {path} is not valid YAML: {exc}") from exc


def read_yaml_documents(path: Path, what: str) -> list[Any]:
    """Every non-empty document of a multi-document YAML file."""
    try:
        return [doc for doc in yaml.safe_load_all(read_text(path, what)) if doc is not None]
    except yaml.YAMLError as exc:
        raise InputError(f"{what}: {path} is not valid YAML: {exc}") from exc


def field_path(location: Sequence[int | str], data: object) -> str:
    """A pydantic error location as a field path: `spec.schedule.windows[night].end`.

    A list entry that has a `name` is shown by that name, as the planner's own messages do;
    other entries by their index.
    """
    path = ""
    value: object = data
    for part in location:
        if isinstance(part, int):
            item = value[part] if isinstance(value, list) and 0 <= part < len(value) else None
            name = item.get("name") if isinstance(item, Mapping) else None
            path += f"[{name}]" if isinstance(name, str) and name else f"[{part}]"
            value = item
        else:
            path += f".{part}" if path else part
            value = value.get(part) if isinstance(value, Mapping) else None
    return path or "(root)"


def validation_message(exc: ValidationError, source: str, data: object) -> str:
    """Every problem pydantic found in `data`, one per line when there are several."""
    problems = [f"{field_path(error['loc'], data)}: {error['msg']}" for error in exc.errors()]
    if len(problems) == 1:
        return f"{source}: {problems[0]}"
    return f"{source}:\n" + "\n".join(f"  {problem}" for problem in problems)
