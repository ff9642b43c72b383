"""How the commands read their input files and stop on bad input.

Every command checks all of its input before doing any work. A problem becomes one
`InputError` whose message names the file, option or field; `stop` prints it in red on stderr
and exits with code 2, the usual code of a usage error, so nothing is half printed.

`report` is the one place an error that left a command becomes what the user sees: every input
error (ours, the core's, a pydantic `ValidationError`) the same red line and exit 2; anything
else is a bug, shown as a one-line summary with exit 1 and a pointer to `--debug`, which shows
the traceback instead. The root command group calls it for every command (see `cli/__init__`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, Self

import typer
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from rich.console import Console
from rich.text import Text

from deepseek_operator.api.resolution import UnknownTimeZone
from deepseek_operator.controlplane.errors import ClusterConfigError
from deepseek_operator.core.costing.cost import UnknownCurrencyRate
from deepseek_operator.core.costing.scenario import ScenarioError
from deepseek_operator.core.planning.inputs import PlanningInputError
from deepseek_operator.core.replay.traces import TraceError
from deepseek_operator.textfiles import (
    YAML_MAX_BYTES,
    FileProblem,
    parse_yaml,
    parse_yaml_documents,
    read_utf8,
)

INPUT_ERROR_EXIT_CODE = 2
UNEXPECTED_ERROR_EXIT_CODE = 1


class InputError(Exception):
    """A command's input is wrong; the message names the file, option or field."""


INPUT_ERRORS: tuple[type[Exception], ...] = (
    InputError,
    FileProblem,
    ScenarioError,
    TraceError,
    PlanningInputError,
    UnknownTimeZone,
    ClusterConfigError,
)
"""Errors that describe the user's input and name the part that is wrong: exit 2."""


def _print_error(message: str) -> None:
    text = Text.assemble(("error: ", "bold red"), message)
    Console(stderr=True).print(text, soft_wrap=True, highlight=False)


def stop(error: BaseException | str) -> NoReturn:
    """Print the error in red on stderr and end the command with exit code 2."""
    _print_error(str(error))
    raise typer.Exit(INPUT_ERROR_EXIT_CODE) from None


def report(error: Exception) -> int:
    """Show an error that ended a command and return the exit code for it.

    Input errors print their message (which names the option, file or field) and give 2. Any
    other exception is a bug: one line with its type and first line, a pointer to `--debug`,
    and 1.
    """
    if isinstance(error, UnknownCurrencyRate):
        _print_error(missing_rate_message(error))
        return INPUT_ERROR_EXIT_CODE
    if isinstance(error, ValidationError):
        _print_error(validation_message(error, error.title, None))
        return INPUT_ERROR_EXIT_CODE
    if isinstance(error, INPUT_ERRORS):
        _print_error(str(error))
        return INPUT_ERROR_EXIT_CODE
    first_line = (str(error).strip().splitlines() or [""])[0]
    summary = f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__
    _print_error(
        f"unexpected {summary} (a bug; run again with --debug before the command for the "
        "traceback, and please report it)"
    )
    return UNEXPECTED_ERROR_EXIT_CODE


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


def read_text(path: Path, what: str, max_bytes: int = YAML_MAX_BYTES) -> str:
    """The file as UTF-8 text; an `InputError` naming `what` (the option) and the path if it
    is missing, a directory, too large or binary."""
    try:
        return read_utf8(path, max_bytes)
    except FileProblem as exc:
        raise InputError(f"{what}: {exc}") from None


def writable_file(path: Path, option: str, *, suffix: str | None = None) -> Path:
    """Check, before any work, that the command can write `path` at the end.

    The file is opened for appending (created, then removed again, if it did not exist), which
    is the only test that holds for every user and file system: permission bits say nothing to
    root, and /proc or a path below a plain file refuse whatever the bits say.
    """
    if suffix is not None and path.suffix.lower() != suffix:
        raise InputError(f"{option}: must name a {suffix} file, got {path}")
    if path.is_dir():
        raise InputError(f"{option}: {path} is a directory")
    if not path.parent.is_dir():
        raise InputError(f"{option}: directory {path.parent} does not exist")
    existed = path.exists()
    try:
        with path.open("ab"):
            pass
    except OSError as error:
        raise InputError(f"{option}: cannot write {path}: {error.strerror or error}") from None
    if not existed:
        path.unlink(missing_ok=True)
    return path


def read_yaml(path: Path, what: str) -> Any:
    """The one YAML document in the file (None when it is empty); keys must be unique."""
    try:
        return parse_yaml(read_text(path, what))
    except yaml.YAMLError as exc:
        raise InputError(f"{what}: {path} is not valid YAML: {exc}") from exc


def read_yaml_documents(path: Path, what: str) -> list[Any]:
    """Every non-empty document of a multi-document YAML file; keys must be unique."""
    try:
        return [doc for doc in parse_yaml_documents(read_text(path, what)) if doc is not None]
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


def option_name(field: str) -> str:
    """The command-line flag of an options-model field: `scrape_interval` is `--scrape-interval`."""
    return "--" + field.replace("_", "-")


class CommandOptions(BaseModel):
    """A command's option values with their bounds, checked before the command does any work.

    Each command declares one subclass whose fields are named after its flags; every number must
    be finite (NaN and infinities are refused for every option at once) and lie in the bounds
    the field states, each with its reason. `check` turns pydantic's errors into one
    `InputError` naming every bad flag (`--step: Input should be greater than 0`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @classmethod
    def check(cls, **values: Any) -> Self:
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = []
            for error in exc.errors(include_url=False):
                location = [str(part) for part in error["loc"]]
                flag = option_name(location[0]) if location else "(options)"
                detail = "".join(f"[{part}]" for part in location[1:])
                message = str(error["msg"]).removeprefix("Value error, ")
                problems.append(f"{flag}{detail}: {message}")
            raise InputError("\n".join(problems)) from None
