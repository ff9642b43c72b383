"""Model-server benchmark on CPU: what batching and 8-bit weights buy, measured in one run.

Run: ``.venv/bin/python benchmarks/serving.py [--device cpu] [--max-tokens 32] [--hidden 512]``

A Qwen2 model (the R1 Qwen distills' architecture) is built locally, trained for a few seconds
on a fixed text so its predictions are not noise, and served by the real server (uvicorn,
transformers continuous batching) on 127.0.0.1. Then:

1. tokens/s at concurrency 1, 8 and 32, each as a ratio to concurrency 1 (the batching gain);
2. the same model with int8 weights (torch dynamic quantisation on CPU, bitsandbytes on CUDA):
   tokens/s ratio int8 / base precision at concurrency 1 and 8, and the perplexity change on the
   fixed text.

Both servers stay up and the measurements alternate between them for `--repeats` rounds;
medians are reported with their range. Absolute numbers depend on the machine (and a shared
machine is noisy); the ratios are the result. The model is small, so framework overhead weighs
more than on a 7B model: read the ratios as what this server does on this hardware, not as a 7B
forecast.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

import httpx
from rich.console import Console
from rich.table import Table

from deepseek_operator.calibration.measure import run_level
from deepseek_operator.calibration.summary import LevelResult
from deepseek_operator.serving.testing import CORPUS, TinyModelSpec, build_tiny_model

FIXED_TEXT = " ".join(CORPUS)
PROMPT = "Placing replicas on GPU pools by day and CPU pools at night"
CONCURRENCY = (1, 8, 32)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def train_briefly(directory: Path, steps: int, console: Console) -> int:
    """A few optimiser steps on the fixed text, so perplexity measures something real."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory)
    model.train()
    ids = torch.tensor([tokenizer.encode(FIXED_TEXT, add_special_tokens=True)])
    optimiser = torch.optim.AdamW(model.parameters(), lr=5e-3)
    started = time.perf_counter()
    for _ in range(steps):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
    console.print(
        f"trained {steps} steps in {time.perf_counter() - started:.1f} s, final loss {loss.item():.3f}"
    )
    model.eval()  # type: ignore[no-untyped-call]
    model.save_pretrained(directory)
    return sum(parameter.numel() for parameter in model.parameters())


def perplexity(directory: Path, precision: str, device: str) -> float:
    import torch

    from deepseek_operator.serving.loading import load
    from deepseek_operator.serving.settings import ServerSettings

    settings = ServerSettings(
        weights=directory,
        served_model_name="m",
        device=device,  # type: ignore[arg-type]
        precision=precision,  # type: ignore[arg-type]
    )
    loaded = load(settings)
    ids = torch.tensor(
        [loaded.tokenizer.encode(FIXED_TEXT, add_special_tokens=True)], device=device
    )
    with torch.no_grad():
        loss = loaded.model(input_ids=ids, labels=ids).loss
    return math.exp(float(loss))


class Server:
    """The real server in a thread on 127.0.0.1."""

    def __init__(self, directory: Path, precision: str, device: str, max_batch_size: int) -> None:
        import uvicorn

        from deepseek_operator.serving.app import create_app
        from deepseek_operator.serving.settings import ServerSettings

        self.port = free_port()
        settings = ServerSettings(
            weights=directory,
            served_model_name="bench",
            device=device,  # type: ignore[arg-type]
            precision=precision,  # type: ignore[arg-type]
            port=self.port,
            max_batch_size=max_batch_size,
            max_queue=1024,
            seed=0,
        )
        self.server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings), host="127.0.0.1", port=self.port, log_level="warning"
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                    return url
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise TimeoutError("the server did not become ready")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)


def measure(
    url: str, levels: tuple[int, ...], max_tokens: int, rounds: int
) -> dict[int, LevelResult]:
    async def run() -> dict[int, LevelResult]:
        limits = httpx.Limits(max_connections=max(levels) + 4)
        async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
            # One untimed round first: allocations, caches and thread pools settle.
            await run_level(
                client, model="bench", concurrency=max(levels), requests=max(levels), max_tokens=4
            )
            return {
                level: await run_level(
                    client,
                    model="bench",
                    concurrency=level,
                    requests=level * rounds,
                    max_tokens=max_tokens,
                    prompt=PROMPT,
                )
                for level in levels
            }

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--precision", default=None, help="base precision (default fp32 on cpu, bf16 on cuda)"
    )
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="requests per stream at each level")
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="alternating measurement rounds")
    args = parser.parse_args()
    base = args.precision or ("bf16" if args.device == "cuda" else "fp32")
    console = Console()

    import torch

    spec = TinyModelSpec(
        hidden_size=args.hidden,
        intermediate_size=args.hidden * 11 // 4,
        layers=args.layers,
        heads=8,
        kv_heads=2,
        context=512,
        seed=1,
    )
    with tempfile.TemporaryDirectory() as scratch:
        directory = build_tiny_model(Path(scratch) / "bench-model", spec)
        parameters = train_briefly(directory, args.train_steps, console)
        console.print(
            f"model: Qwen2, {parameters / 1e6:.1f} M parameters, hidden {spec.hidden_size}, "
            f"{spec.layers} layers, device {args.device}, "
            f"torch threads {torch.get_num_threads()}, {args.max_tokens} tokens per request"
        )

        # Both servers stay up and the measurements alternate, so drift in the machine's load
        # (it is shared) hits both precisions alike; medians over the repeats are reported.
        runs: dict[tuple[str, int], list[LevelResult]] = {}
        with contextlib.ExitStack() as stack:
            urls = {
                base: stack.enter_context(Server(directory, base, args.device, max_batch_size=32)),
                "int8": stack.enter_context(
                    Server(directory, "int8", args.device, max_batch_size=32)
                ),
            }
            for _ in range(args.repeats):
                for precision, levels in ((base, CONCURRENCY), ("int8", (1, 8))):
                    for level, result in measure(
                        urls[precision], levels, args.max_tokens, args.rounds
                    ).items():
                        runs.setdefault((precision, level), []).append(result)
        base_ppl = perplexity(directory, base, args.device)
        int8_ppl = perplexity(directory, "int8", args.device)

    def speed(precision: str, level: int) -> float:
        return statistics.median(r.tokens_per_second for r in runs[(precision, level)])

    def spread(precision: str, level: int) -> str:
        values = [r.tokens_per_second for r in runs[(precision, level)]]
        return f"{min(values):.0f}-{max(values):.0f}"

    single = speed(base, 1)
    table = Table(title=f"Batching ({base}), median of {args.repeats} runs")
    for column in ("concurrency", "tokens/s", "range", "ratio vs 1", "TTFT p50 ms"):
        table.add_column(column, justify="right")
    for level in CONCURRENCY:
        ttfts = [r.median_ttft for r in runs[(base, level)] if r.median_ttft is not None]
        table.add_row(
            str(level),
            f"{speed(base, level):.1f}",
            spread(base, level),
            f"{speed(base, level) / single:.2f}x",
            f"{statistics.median(ttfts) * 1000:.0f}" if ttfts else "-",
        )
    console.print(table)

    table = Table(title=f"int8 vs {base}")
    for column in ("measure", base, "int8", "int8 / " + base):
        table.add_column(column, justify="right")
    for level in (1, 8):
        a, b = speed(base, level), speed("int8", level)
        table.add_row(f"tokens/s at concurrency {level}", f"{a:.1f}", f"{b:.1f}", f"{b / a:.2f}x")
    table.add_row(
        "perplexity on the fixed text",
        f"{base_ppl:.3f}",
        f"{int8_ppl:.3f}",
        f"{(int8_ppl / base_ppl - 1) * 100:+.2f} %",
    )
    console.print(table)
    errors = sum(result.errors for results in runs.values() for result in results)
    if errors:
        console.print(f"[red]{errors} requests failed[/]")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
