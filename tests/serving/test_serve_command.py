"""`deepseek-operator serve` refuses bad input before loading anything."""

from __future__ import annotations

from pathlib import Path

from .conftest import run_serve


def test_missing_weights_path_is_named_and_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "no-weights-here"
    result = run_serve("--weights", str(missing))
    assert result.returncode == 2, result.stderr
    assert str(missing) in result.stderr.replace("\n", "")
    assert "Traceback" not in result.stderr


def test_unknown_device_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"")  # passes the file check; device is next
    result = run_serve("--weights", str(tmp_path), "--device", "tpu")
    assert result.returncode == 2
    assert "--device: must be auto, cpu or cuda" in result.stderr
