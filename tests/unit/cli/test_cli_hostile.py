"""Every command and every option of the command line, with hostile values: never a traceback.

The test walks the click tree behind the typer app. For each option and argument of each command
it runs the command from a valid baseline with that one value replaced by each hostile value of
its type: negative, zero, NaN, ±inf, 1e308, huge integers, empty, very long text, instants in
years 1 and 9999, missing paths, directories, binary and empty files, YAML with a key stated
twice, paths below a plain file (unwritable for root too). Each run must end one of two ways:

- exit 0 with sane output: no "nan" or "inf" where a number should be (unless the value given
  contains it);
- exit 2 with an error that names the option (or the argument).

Never an uncaught exception, a traceback or the "unexpected" summary of a bug. A new option
joins the test by itself; a new command needs a baseline in `BASELINES` (the test fails until
it has one). Work that would leave the process (the operator's kopf loop, the model server, a
local cluster, building binaries, measuring a server) is replaced by a stub that returns at once,
so what is tested is everything a command checks before that work starts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path, PurePath
from types import SimpleNamespace
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from deepseek_operator import cli
from tests.paths import EXAMPLES

cli._register_commands()
ROOT = typer.main.get_command(cli.app)
runner = CliRunner()

FLOATS = ("-1", "0", "nan", "inf", "-inf", "1e308", "-1e308")
INTEGERS = ("-1", "0", "99999999999999999999999", "-99999999999999999999999", "1e308")
TEXTS = (
    "x" * 5000,
    "nan",
    "-1",
    "0001-01-01T00:00:00+00:00",
    "9999-12-31T23:59:59+00:00",
    "a100=inf",
    "pool=-1",
    "é\u202e😀",
)
CHOICES = ("bogus",)
PATHS = ("MISSING", "DIRECTORY", "BINARY", "EMPTY", "DUPLICATE_KEYS", "BELOW_A_FILE")
EVERY_TYPE = ("",)  # refused for every option before the command runs


# ---------------------------------------------------------------------------------------------
# the files the baselines and the hostile paths point at


@dataclass(frozen=True)
class Files:
    root: Path

    def path(self, name: str) -> Path:
        return self.root / name

    def hostile(self, name: str) -> str:
        return str(
            {
                "MISSING": self.root / "missing" / "absent.yaml",
                "DIRECTORY": self.root / "a-directory",
                "BINARY": self.root / "binary.yaml",
                "EMPTY": self.root / "empty.yaml",
                "DUPLICATE_KEYS": self.root / "twice.yaml",
                "BELOW_A_FILE": self.root / "plain-file" / "below.png",
            }[name]
        )


def _write_hostile_files(root: Path) -> None:
    """Written again before every case: a command may legitimately write to an output path."""
    shutil.rmtree(root / "a-directory", ignore_errors=True)
    shutil.rmtree(root / "missing", ignore_errors=True)
    (root / "a-directory").mkdir()
    (root / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (root / "empty.yaml").write_text("")
    (root / "twice.yaml").write_text("pools: []\nspec: {}\npools: [a]\n")
    (root / "plain-file").write_text("a file, not a directory\n")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    root = tmp_path_factory.mktemp("hostile")
    _write_hostile_files(root)
    (root / "trace.csv").write_text(
        "timestamp,tokens_per_second\n"
        + "".join(f"2026-11-30T09:{minute:02d}:00+01:00,{100 + minute}\n" for minute in (0, 10))
    )
    (root / "kubeconfig").write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    weights = root / "weights"
    weights.mkdir()
    # what serve reads before torch loads: the shape in config.json, the safetensors headers
    (weights / "config.json").write_text(
        json.dumps({"num_attention_heads": 2, "num_hidden_layers": 1, "hidden_size": 8})
    )
    (weights / "model.safetensors").write_bytes(struct.pack("<Q", 2) + b"{}")
    return Files(root)


def _pool_profile_copy(files: Files) -> str:
    """calibrate updates its --pool-profile in place: each run gets a fresh copy."""
    target = files.path("pool-to-update.yaml")
    documents = (EXAMPLES / "pools.yaml").read_text().split("\n---\n")
    target.write_text(next(d for d in documents if "kind: PoolProfile" in d))
    return str(target)


Value = str | Callable[[Files], str] | None
"""A baseline option's value: text, a function of the files, or None for a flag."""


def _at(name: str) -> Callable[[Files], str]:
    return lambda files: str(files.path(name))


def _example(name: str) -> str:
    return str(EXAMPLES / name)


BASELINES: dict[tuple[str, ...], list[dict[str, Value]]] = {
    ("run",): [{"--kubeconfig": _at("kubeconfig"), "--standalone": None}],
    ("crds",): [
        {
            "--output-dir": _at("crds"),
            "--chart-crds": _at("chart-crds"),
            "--reference": _at("api.md"),
        }
    ],
    ("cost",): [{"--hardware": "rtx-4090"}],
    ("simulate",): [
        {
            "--deployment": _example("r1-7b-gpu-by-day-cpu-at-night.yaml"),
            "--pools": _example("pools.yaml"),
            "--trace": _at("trace.csv"),
            "--policies": "static-gpu,ours",
        }
    ],
    ("plan",): [
        {
            "FILE": _example("plan-what-if.yaml"),
            "--demand": "14",
            "--at": "2026-11-28T23:00+08:00",
        },
        {
            "--deployment": _example("r1-7b-gpu-by-day-cpu-at-night.yaml"),
            "--pools": _example("pools.yaml"),
            "--demand": "14",
            "--at": "2026-11-28T23:00+08:00",
        },
    ],
    ("demo",): [{"--state-dir": _at("state"), "--output": _at("day.png")}],
    ("cluster", "up"): [{"--config": _example("cluster.yaml"), "--state-dir": _at("state")}],
    ("cluster", "down"): [{"--state-dir": _at("state")}],
    ("cluster", "status"): [{"--state-dir": _at("state")}],
    ("cluster", "kubeconfig"): [{"--state-dir": _at("state")}],
    ("cluster", "build"): [{}],
    ("serve",): [{"--weights": _at("weights"), "--device": "cpu"}],
    ("calibrate",): [{"--precision": "bf16", "--pool-profile": _pool_profile_copy}],
}

ANSWERS = {("cluster", "status"): "no local cluster", ("cluster", "kubeconfig"): "no local cluster"}
"""Commands whose exit 1 is an answer (no cluster is running), not a failure."""


# ---------------------------------------------------------------------------------------------
# walking the command tree


def _commands(
    group: Any = ROOT, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Any]]:
    for name, command in sorted(getattr(group, "commands", {}).items()):
        if getattr(command, "commands", None) is not None:
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def _name(param: Any) -> str:
    """An option's first long flag, or an argument's metavar (FILE)."""
    if param.param_type_name == "argument":
        return str(param.metavar or param.name.upper())
    longs = [opt for opt in param.opts if opt.startswith("--")]
    return str((longs or param.opts)[0])


def _names(param: Any) -> set[str]:
    if param.param_type_name == "argument":
        return {_name(param)}
    return {*param.opts, *param.secondary_opts}


def _annotation(param: Any) -> Any:
    """The Python type the command declares for the parameter (the item type of a list)."""
    annotation = param.type_descriptor.annotation
    if typing.get_origin(annotation) is list:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _values(param: Any) -> tuple[str, ...]:
    annotation = _annotation(param)
    if annotation is float:
        values: tuple[str, ...] = FLOATS
    elif annotation is int:
        values = INTEGERS
    elif isinstance(annotation, type) and issubclass(annotation, PurePath):
        values = PATHS
    elif isinstance(annotation, type) and issubclass(annotation, Enum):
        values = CHOICES
    else:
        values = TEXTS
    return values + EVERY_TYPE


def _fuzzed(param: Any) -> bool:
    return _annotation(param) is not bool and param.name not in ("help",)


@dataclass(frozen=True)
class Case:
    command: tuple[str, ...]
    baseline: int
    option: str
    names: frozenset[str]
    value: str

    @property
    def id(self) -> str:
        shown = self.value if len(self.value) < 30 else self.value[:12] + "..."
        return f"{' '.join(self.command)}[{self.baseline}] {self.option}={shown!r}"


def _cases() -> list[Case]:
    cases = []
    for path, command in _commands():
        for index in range(len(BASELINES.get(path, [{}]))):
            for param in command.params:
                if not _fuzzed(param):
                    continue
                for value in _values(param):
                    cases.append(Case(path, index, _name(param), frozenset(_names(param)), value))
    return cases


CASES = _cases()


# ---------------------------------------------------------------------------------------------
# running a case


@pytest.fixture(scope="module")
def stubs(files: Files) -> Iterator[None]:
    """The work that would leave the process, replaced by stubs that return at once."""
    import kopf

    from deepseek_operator.calibration.summary import LevelResult
    from deepseek_operator.cli import calibrate, demo
    from deepseek_operator.controlplane import build, cluster

    async def measured(console: Any, url: str, model: str | None, *_: Any) -> Any:
        levels = [
            LevelResult(1, 16, 1600, 20.0, (0.1,)),
            LevelResult(2, 16, 3000, 20.0, (0.12,)),
        ]
        return levels, model or "served-model"

    state = SimpleNamespace(nodes=["cpu-0"], server="https://127.0.0.1:9", kubeconfig="/kc")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kopf, "run", lambda **_: None)
        patch.setattr(kopf, "configure", lambda **_: None)
        patch.setattr(calibrate, "_measure", measured)
        patch.setattr(demo, "walk_the_day", lambda *_, **__: None)
        patch.setattr(cluster, "up", lambda options, progress=None: state)
        patch.setattr(build, "ensure_binaries", lambda progress=None: SimpleNamespace(etcd="/e"))
        try:
            from deepseek_operator.serving import server
        except ImportError:  # a base install: serve only says which extra to install
            pass
        else:
            patch.setattr(server, "run", lambda settings, log_level="info": 0)
        yield


def _arguments(
    case_command: tuple[str, ...], baseline: dict[str, Value], files: Files
) -> list[str]:
    arguments = list(case_command)
    for option, value in baseline.items():
        given = value(files) if callable(value) else value
        if option.isupper():  # an argument
            arguments.append(str(given))
        elif given is None:
            arguments.append(option)
        else:
            arguments += [option, given]
    return arguments


def _invoke(arguments: list[str], cwd: Path) -> Any:
    """One run in a scratch working directory, with the environment restored after it."""
    environment = dict(os.environ)
    here = Path.cwd()
    os.chdir(cwd)
    try:
        return runner.invoke(cli.app, arguments, env={"COLUMNS": "200", "NO_COLOR": "1"})
    finally:
        os.chdir(here)
        os.environ.clear()
        os.environ.update(environment)


NONSENSE = re.compile(r"(?<![A-Za-z])(nan|inf|infinity)(?![A-Za-z])", re.IGNORECASE)


def _problem(case: Case | None, result: Any, value: str = "") -> str | None:
    """Why this outcome is not one of the two allowed; None if it is."""
    output = result.output  # stdout and stderr, as the user sees them
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return f"raised {type(result.exception).__name__}: {result.exception}"
    if "Traceback" in output or "unexpected" in output:
        return f"a bug's traceback or summary:\n{output[-2000:]}"
    code = result.exit_code
    if code == 0:
        if NONSENSE.search(output) and not NONSENSE.search(value):
            return f"exit 0 with nan/inf in the output:\n{output[-2000:]}"
        return None
    if code == 2:
        if case is not None and not any(name in output for name in case.names):
            return f"exit 2 without naming {case.option}:\n{output[-2000:]}"
        return None
    return f"exit {code}:\n{output[-2000:]}"


def test_every_command_has_a_baseline() -> None:
    missing = [" ".join(path) for path, _ in _commands() if path not in BASELINES]
    assert not missing, f"add a valid baseline to BASELINES for: {', '.join(missing)}"


@pytest.mark.parametrize("path", list(BASELINES), ids=" ".join)
def test_each_baseline_succeeds(
    path: tuple[str, ...], files: Files, stubs: None, tmp_path: Path
) -> None:
    for baseline in BASELINES[path]:
        result = _invoke(_arguments(path, baseline, files), tmp_path)
        answer = ANSWERS.get(path)
        if answer is not None and result.exit_code == 1:
            assert answer in result.output
            continue
        assert _problem(None, result) is None, _problem(None, result)
        assert result.exit_code == 0, result.output


def test_hostile_values_end_in_exit_0_or_an_error_naming_the_option(
    files: Files, stubs: None, tmp_path: Path
) -> None:
    failures = []
    for case in CASES:
        baseline = dict(BASELINES[case.command][case.baseline])
        value = files.hostile(case.value) if case.value in PATHS else case.value
        baseline.pop(case.option, None)
        arguments = _arguments(case.command, baseline, files)
        arguments += [value] if case.option.isupper() else [case.option, value]
        _write_hostile_files(files.root)
        cwd = tmp_path / "cwd"
        shutil.rmtree(cwd, ignore_errors=True)
        cwd.mkdir()
        result = _invoke(arguments, cwd)
        answer = ANSWERS.get(case.command)
        if answer is not None and result.exit_code == 1 and answer in result.output:
            continue
        problem = _problem(case, result, value)
        if problem is not None:
            failures.append(f"{case.id}: {problem}")
    assert not failures, f"{len(failures)} of {len(CASES)} cases:\n\n" + "\n\n".join(failures)
