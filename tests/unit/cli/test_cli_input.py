"""The commands' shared input handling: YAML reading, field paths of errors, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from pydantic import BaseModel, Field, ValidationError

from deepseek_operator.cli.inputs import (
    INPUT_ERROR_EXIT_CODE,
    CommandOptions,
    InputError,
    field_path,
    read_yaml,
    read_yaml_documents,
    report,
    stop,
    validation_message,
)


class _Window(BaseModel):
    name: str
    end: int


class _Spec(BaseModel):
    windows: list[_Window]
    sizes: list[int]


def test_list_entries_are_named_by_their_name_else_by_index() -> None:
    data = {"spec": {"windows": [{"name": "day"}, {"name": "night"}], "sizes": [1, 2]}}
    assert field_path(("spec", "windows", 1, "end"), data) == "spec.windows[night].end"
    assert field_path(("spec", "sizes", 0), data) == "spec.sizes[0]"
    assert field_path(("spec", "windows", 5, "end"), data) == "spec.windows[5].end"
    assert field_path(("spec", "missing", 0), data) == "spec.missing[0]"
    assert field_path((), data) == "(root)"


def test_validation_message_lists_every_field() -> None:
    data = {"windows": [{"name": "night", "end": "7am"}], "sizes": ["x"]}
    with pytest.raises(ValidationError) as caught:
        _Spec.model_validate(data)
    message = validation_message(caught.value, "spec.yaml", data)
    lines = message.splitlines()
    assert lines[0] == "spec.yaml:"
    assert lines[1].startswith("  windows[night].end: Input should be a valid integer")
    assert lines[2].startswith("  sizes[0]: Input should be a valid integer")
    with pytest.raises(ValidationError) as caught:
        _Spec.model_validate({"windows": [], "sizes": ["x"]})
    one = validation_message(caught.value, "spec.yaml", {"windows": [], "sizes": ["x"]})
    assert one.startswith("spec.yaml: sizes[0]: Input should be a valid integer")


def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("pools: [unclosed\n")
    with pytest.raises(InputError, match=r"--pools: .*broken.yaml is not valid YAML"):
        read_yaml_documents(broken, "--pools")
    with pytest.raises(InputError, match=r"^--scenario: cannot read .*absent.yaml"):
        read_yaml(tmp_path / "absent.yaml", "--scenario")
    two = tmp_path / "two.yaml"
    two.write_text("a: 1\n---\n---\nb: 2\n")
    assert read_yaml_documents(two, "--pools") == [{"a": 1}, {"b": 2}]


def test_stop_prints_on_stderr_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as exited:
        stop(InputError("windows[night].end: [bold]not[/bold] markup"))
    assert exited.value.exit_code == INPUT_ERROR_EXIT_CODE == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "error: windows[night].end: [bold]not[/bold] markup\n"


def test_binary_files_and_directories_are_refused_with_the_option_and_path(
    tmp_path: Path,
) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"pools:\n  \x9d\xff\xfe\n")
    with pytest.raises(InputError, match=r"^--pools: .*binary.yaml is not UTF-8 text \(byte 0x9d"):
        read_yaml_documents(binary, "--pools")
    with pytest.raises(InputError, match=r"^--scenario: cannot read .*: Is a directory"):
        read_yaml(tmp_path, "--scenario")


def test_a_key_stated_twice_is_an_error_not_the_last_value(tmp_path: Path) -> None:
    twice = tmp_path / "twice.yaml"
    twice.write_text("spec:\n  replicas: {min: 1, max: 4}\n  replicas: {min: 2, max: 8}\n")
    with pytest.raises(InputError, match=r"found the key 'replicas' twice \(first on line 2\)"):
        read_yaml(twice, "FILE")
    merged = tmp_path / "merged.yaml"
    merged.write_text("base: &b {min: 1, max: 4}\nwindow:\n  <<: *b\n  max: 8\n")
    assert read_yaml(merged, "FILE")["window"] == {"min": 1, "max": 8}


def test_an_oversized_file_is_refused_before_it_is_read_whole(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * 2048)
    from deepseek_operator.cli.inputs import read_text

    with pytest.raises(InputError, match=r"^--pools: .*big.yaml is larger than"):
        read_text(big, "--pools", max_bytes=1024)


def test_report_gives_2_for_input_errors_and_1_with_a_pointer_for_bugs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert report(InputError("--step: Input should be greater than 0")) == 2
    assert capsys.readouterr().err == "error: --step: Input should be greater than 0\n"
    assert report(ZeroDivisionError("division by zero\nsecond line")) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: unexpected ZeroDivisionError: division by zero (a bug;")
    assert "--debug" in err and "second line" not in err and "Traceback" not in err


class _Bounded(CommandOptions):
    scrape_interval: float = Field(ge=1, le=3600)
    seed: int = Field(ge=0)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), 0.5, 1e308])
def test_command_options_name_the_flag_of_each_bad_value(value: float) -> None:
    with pytest.raises(InputError) as refused:
        _Bounded.check(scrape_interval=value, seed=-1)
    lines = str(refused.value).splitlines()
    assert lines[0].startswith("--scrape-interval: ")
    assert lines[1] == "--seed: Input should be greater than or equal to 0"


def test_a_bug_in_any_command_is_one_line_and_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from deepseek_operator import cli
    from deepseek_operator.cli import cost

    cli._register_commands()

    def broken() -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(cost, "article_report", broken)
    runner = CliRunner()
    plain = runner.invoke(cli.app, ["cost", "--article"])
    assert plain.exit_code == 1
    assert plain.output.startswith("error: unexpected ZeroDivisionError: division by zero")
    assert "--debug" in plain.output and "Traceback" not in plain.output
    debug = runner.invoke(cli.app, ["--debug", "cost", "--article"])
    assert isinstance(debug.exception, ZeroDivisionError)


@pytest.mark.parametrize("arguments", [["--state-dir", ""], ["--state-dir="]])
def test_an_empty_option_value_is_refused_before_any_command_runs(arguments: list[str]) -> None:
    from typer.testing import CliRunner

    from deepseek_operator import cli

    cli._register_commands()
    result = CliRunner().invoke(cli.app, ["cluster", "up", *arguments])
    assert result.exit_code == 2
    assert "'--state-dir': must not be empty" in result.output
