"""`deepseek-operator serve` refuses bad input before loading anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deepseek_operator", "serve", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_missing_weights_path_is_named_and_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "no-weights-here"
    result = _serve("--weights", str(missing))
    assert result.returncode == 2, result.stderr
    assert str(missing) in result.stderr.replace("\n", "")
    assert "Traceback" not in result.stderr


def test_unknown_device_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"")  # passes the file check; device is next
    result = _serve("--weights", str(tmp_path), "--device", "tpu")
    assert result.returncode == 2
    assert "--device: must be auto, cpu or cuda" in result.stderr
