"""The commands' shared input handling: YAML reading, field paths of errors, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from pydantic import BaseModel, ValidationError

from deepseek_operator.cli.inputs import (
    INPUT_ERROR_EXIT_CODE,
    InputError,
    field_path,
    read_yaml,
    read_yaml_documents,
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
    with pytest.raises(InputError, match=r"cannot read scenario .*absent.yaml"):
        read_yaml(tmp_path / "absent.yaml", "scenario")
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
