"""Weights come from a local path only; precisions load as asked; bad settings name the setting."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from deepseek_operator.serving.loading import WeightsError, check_weights_dir, load
from deepseek_operator.serving.settings import ServerSettings, SettingsError

from .conftest import MODEL_NAME, free_port, serve_in_thread

pytestmark = pytest.mark.serving


def test_missing_weights_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(WeightsError, match=str(missing)):
        check_weights_dir(missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WeightsError, match=r"config\.json"):
        check_weights_dir(empty)


def test_serve_command_refuses_a_missing_path_before_loading_torch(tmp_path: Path) -> None:
    missing = tmp_path / "r1-7b"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from deepseek_operator.cli import main; main()",
            "serve",
            "--weights",
            str(missing),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert str(missing) in result.stderr and "local path" in result.stderr


@pytest.mark.parametrize(
    ("device", "precision", "field"),
    [("cpu", "fp16", "precision"), ("cuda", "fp32", "precision"), ("tpu", "bf16", "device")],
)
def test_impossible_settings_name_the_setting(
    tmp_path: Path, device: str, precision: str, field: str
) -> None:
    with pytest.raises(SettingsError, match=f"^--{field}:"):
        ServerSettings(weights=tmp_path, served_model_name="m", device=device, precision=precision)  # type: ignore[arg-type]


def test_loading_never_reaches_the_hub(
    random_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    loaded = load(ServerSettings(weights=random_weights, served_model_name="m"))
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert loaded.context_length == 256 and loaded.eos_token_ids


def test_bf16_on_cpu_loads_bf16_weights_and_serves(random_weights: Path) -> None:
    import httpx
    import torch

    loaded = load(ServerSettings(weights=random_weights, served_model_name="m", precision="bf16"))
    assert loaded.model.dtype == torch.bfloat16
    settings = ServerSettings(
        weights=random_weights, served_model_name=MODEL_NAME, port=free_port(), precision="bf16"
    )
    with serve_in_thread(settings) as server:
        body = {"model": MODEL_NAME, "prompt": "Hello", "max_tokens": 5, "ignore_eos": True}
        reply = httpx.post(f"{server.base_url}/v1/completions", json=body, timeout=60).json()
    assert reply["usage"]["completion_tokens"] == 5


def test_int8_on_cpu_quantises_every_linear_layer_and_serves(random_weights: Path) -> None:
    import torch

    loaded = load(ServerSettings(weights=random_weights, served_model_name="m", precision="int8"))
    linears = [m for m in loaded.model.modules() if isinstance(m, torch.nn.Linear)]
    quantised = [m for m in loaded.model.modules() if hasattr(m, "weight_int8")]
    assert quantised and not linears
    assert all(m.weight_int8.dtype == torch.int8 for m in quantised)

    settings = ServerSettings(
        weights=random_weights, served_model_name=MODEL_NAME, port=free_port(), precision="int8"
    )
    import httpx

    with serve_in_thread(settings) as server:
        body = {"model": MODEL_NAME, "prompt": "Hello", "max_tokens": 5, "ignore_eos": True}
        reply = httpx.post(f"{server.base_url}/v1/completions", json=body, timeout=60).json()
    assert reply["usage"]["completion_tokens"] == 5


@pytest.mark.skipif(
    importlib.util.find_spec("bitsandbytes") is not None, reason="bitsandbytes is installed"
)
def test_int8_on_cuda_without_bitsandbytes_says_what_is_missing() -> None:
    from deepseek_operator.serving.loading import _bitsandbytes_config

    with pytest.raises(SettingsError, match="--precision: int8 on cuda uses bitsandbytes"):
        _bitsandbytes_config("int8")


def test_a_device_torch_cannot_see_exits_2_with_the_reason(random_weights: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the failure needs a machine without it")
    result = subprocess.run(
        [
            sys.executable, "-c", "from deepseek_operator.cli import main; main()", "serve",
            "--weights", str(random_weights), "--device", "cuda", "--port", str(free_port()),
            "--log-level", "warning",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    # a flag this machine cannot honour, as every refused flag: exit 2
    assert result.returncode == 2
    assert "device: cuda was requested but torch sees no CUDA device" in result.stderr
