"""The throughput model against this machine, at the real R1-Distill-Qwen-1.5B shape.

Run: ``nice -n 19 .venv/bin/python benchmarks/throughput_model.py [--tokens 64] [--skip-quality]``

1. Builds (once, cached in ``~/.cache/deepseek-operator/models/``) the 1.5B shape with seeded
   random weights (`real_shape.py`).
2. Measures the machine: read bandwidth (a sum over 2 GB), and for each precision the kernel
   the server runs per layer (one decode step's matrix multiplies over 1.6 GB of weights) at
   1 and 16 rows: the bandwidth that precision reaches, and how much each extra row costs.
   These are the hardware facts the throughput model takes (`core/costing/throughput.py`).
3. Serves the model with `deepseek-operator serve` at default flags (fp32, bf16, int8; each
   server a process of its own), records its peak resident memory once ready, and measures
   steady-decode tokens/s at concurrency 1, 4 and 16.
4. Prints the model's prediction beside each measurement (predicted / measured).
5. Unless ``--skip-quality``: logits of a fixed 256-token sequence at each precision against
   fp32: relative RMS error, top-1 agreement, perplexity change.

Results are also written as JSON (``--out``), and ``--report FILE`` prints the tables from such
a file without measuring again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx

from deepseek_operator.calibration.measure import run_level
from real_shape import build_real_shape

PRECISIONS = ("fp32", "bf16", "int8")
LEVELS = (1, 4, 16)
PROMPT = "Placing replicas on GPU pools by day and CPU pools at night"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ---- the machine ---------------------------------------------------------------------------


def cpu_features() -> list[str]:
    flags: set[str] = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags.update(line.split(":", 1)[1].split())
                break
    return sorted(flags & {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8"})


def read_bandwidth_gb_per_s(gigabytes: float = 2.0, repeats: int = 5) -> float:
    """Best of a few full reads of a buffer far larger than any cache."""
    import torch

    data = torch.ones(int(gigabytes * 1e9 / 4), dtype=torch.float32)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        data.sum()
        best = min(best, time.perf_counter() - started)
    return data.numel() * 4 / best / 1e9


def kernel_probe(precision: str, rows: tuple[int, ...] = (1, 16)) -> dict[str, float]:
    """One decode step's weight-matrix multiplies over ~1.6 GB of fp32-equivalent shapes at this
    precision, with the server's kernels: seconds per step at each row count."""
    import torch

    from deepseek_operator.serving.loading import Int8Linear

    torch.manual_seed(0)
    shapes = [(8960, 1536), (1536, 8960), (8960, 1536), (2048, 1536)] * 8  # ~32 layers' worth
    dtype = torch.float32 if precision == "fp32" else torch.bfloat16
    layers: list[Any] = []
    for out_features, in_features in shapes:
        linear = torch.nn.Linear(in_features, out_features, bias=False, dtype=dtype)
        if precision == "int8":
            linear = Int8Linear.from_weight(linear.weight.detach(), linear)
        layers.append(linear)
    weight_bytes = sum(
        (
            m.weight_int8.numel()
            if precision == "int8"
            else m.weight.numel() * m.weight.element_size()
        )
        for m in layers
    )
    result: dict[str, float] = {"weight_bytes": float(weight_bytes)}
    with torch.no_grad():
        for count in rows:
            inputs = {
                in_f: torch.randn(count, in_f, dtype=dtype) for in_f in {s[1] for s in shapes}
            }
            best = float("inf")
            for _ in range(4):
                started = time.perf_counter()
                for layer, (_, in_features) in zip(layers, shapes, strict=True):
                    layer(inputs[in_features])
                best = min(best, time.perf_counter() - started)
            result[f"seconds_{count}"] = best
    del layers
    return result


# ---- serving -------------------------------------------------------------------------------


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def logged_gigabytes(log: Path, pattern: str) -> float | None:
    """A figure the server logged at start-up (`serving/loading.py`), in bytes."""
    import re

    found = re.search(pattern, log.read_text(errors="replace"))
    return float(found.group(1)) * 1e9 if found else None


@contextlib.contextmanager
def serve(directory: Path, precision: str, log: Path) -> Any:
    port = free_port()
    command = [
        sys.executable, "-c", "from deepseek_operator.cli import main; main()", "serve",
        "--weights", str(directory), "--precision", precision, "--port", str(port),
        "--served-model-name", "bench", "--seed", "0", "--log-level", "info",
    ]  # fmt: skip
    with log.open("w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"serve exited {process.returncode}; see {log}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                    break
            time.sleep(0.5)
        else:
            raise TimeoutError(f"not ready; see {log}")
        yield url, process.pid
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(60)
        if process.poll() is None:
            process.kill()


def measure_levels(url: str, tokens: int) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        limits = httpx.Limits(max_connections=max(LEVELS) + 4)
        async with httpx.AsyncClient(base_url=url, timeout=1800, limits=limits) as client:
            models = (await client.get("/v1/models")).json()["data"][0]
            await run_level(client, model="bench", concurrency=2, requests=2, max_tokens=4)
            results: dict[str, Any] = {"max_model_len": models["max_model_len"]}
            for level in LEVELS:
                outcome = await run_level(
                    client,
                    model="bench",
                    concurrency=level,
                    requests=level,
                    max_tokens=tokens,
                    prompt=PROMPT,
                )
                first = max(outcome.time_to_first_token_seconds, default=0.0)
                # steady decode: the tokens after each request's first, over the time after
                # the last first token (all requests start together)
                decode = (outcome.completion_tokens - outcome.requests) / max(
                    outcome.wall_seconds - first, 1e-9
                )
                results[str(level)] = {
                    "tokens": outcome.completion_tokens,
                    "wall_seconds": outcome.wall_seconds,
                    "ttft_seconds": first,
                    "decode_tokens_per_s": decode,
                    "errors": outcome.errors,
                }
            return results

    return asyncio.run(run())


# ---- quality -------------------------------------------------------------------------------


def quality(directory: Path, length: int = 256) -> dict[str, Any]:
    """Logits of one fixed sequence at each precision, against fp32."""
    import torch

    from deepseek_operator.serving.loading import load_cpu_model

    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 400, (1, length), generator=generator)
    out: dict[str, Any] = {}
    reference: Any = None
    for precision in PRECISIONS:
        model = load_cpu_model(directory, precision)
        with torch.no_grad():
            logits = model(ids).logits[0].float()
        del model
        nll = torch.nn.functional.cross_entropy(logits[:-1], ids[0, 1:]).item()
        entry: dict[str, float] = {"perplexity": float(torch.exp(torch.tensor(nll)))}
        if reference is None:
            reference = logits
        else:
            entry["relative_logit_error"] = float(
                (logits - reference).pow(2).mean().sqrt() / reference.pow(2).mean().sqrt()
            )
            entry["top1_agreement"] = float(
                (logits.argmax(-1) == reference.argmax(-1)).float().mean()
            )
        out[precision] = entry
        del logits
    return out


# ---- prediction ----------------------------------------------------------------------------


def predictions(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    from deepseek_operator.core.costing.catalog import HardwareSpec, model_named
    from deepseek_operator.core.costing.throughput import (
        batching_gain_for,
        machine_efficiencies,
        roofline_single_stream_tokens_per_s,
    )

    machine = results["machine"]
    efficiency, compute_ratio = machine_efficiencies(
        machine["read_bandwidth_gb_per_s"], machine["kernels"]
    )
    hardware = HardwareSpec(
        name="this-machine",
        kind="cpu",
        memory_gib=machine["memory_gib"],
        memory_bandwidth_gb_per_s=machine["read_bandwidth_gb_per_s"],
        board_power_watts=0,
        purchase_price=0,
        purchase_currency="USD",
        cloud_price_per_hour_usd=None,
        devices_per_node=1,
        sources={},
        bandwidth_efficiency=efficiency,
        batch_compute_ratio=compute_ratio,
    )
    model = model_named("r1-distill-qwen-1.5b")
    table: dict[str, dict[str, float]] = {}
    for precision in PRECISIONS:
        single = roofline_single_stream_tokens_per_s(
            model,
            precision,
            hardware,
            1,
            context_tokens=64,  # type: ignore[arg-type]
        )
        table[precision] = {
            str(level): single * batching_gain_for(hardware, precision, level)  # type: ignore[arg-type]
            for level in LEVELS
        }
    return table


def report(results: dict[str, Any]) -> None:
    machine = results["machine"]
    print(
        f"machine: {machine['cpus']} CPUs ({', '.join(machine['features'])}), "
        f"read bandwidth {machine['read_bandwidth_gb_per_s']:.1f} GB/s (measured)"
    )
    for precision, kernel in machine["kernels"].items():
        gb = kernel["weight_bytes"] / kernel["seconds_1"] / 1e9
        extra = (kernel["seconds_16"] - kernel["seconds_1"]) / 15 / kernel["seconds_1"]
        print(
            f"  kernel {precision}: {gb:.1f} GB/s at 1 row; each extra row adds "
            f"{extra:.3f} of a 1-row step (measured)"
        )
    predicted = predictions(results)
    print(
        "\n| precision | weights | peak RSS while loading | ÷ weights | KV cache | "
        "peak RSS serving |"
    )
    print("|---|---|---|---|---|---|")
    for precision in PRECISIONS:
        served = results["serving"].get(precision)
        if not served or not served.get("peak_rss_bytes"):
            continue
        weights, peak = served["weight_bytes"], served["peak_rss_bytes"]
        print(
            f"| {precision} | {weights / 1e9:.2f} GB | {peak / 1e9:.2f} GB | "
            f"{peak / weights:.2f} ({'within' if peak <= 1.5 * weights else 'over'} 1.5) | "
            f"{(served.get('kv_cache_bytes') or 0) / 1e9:.2f} GB | "
            f"{served.get('serving_peak_rss_bytes', 0) / 1e9:.2f} GB |"
        )
    print("\n| precision | concurrency | predicted tok/s | measured tok/s | predicted / measured |")
    print("|---|---|---|---|---|")
    for precision in PRECISIONS:
        served = results["serving"].get(precision)
        if not served:
            continue
        for level in LEVELS:
            measured = served["levels"][str(level)]["decode_tokens_per_s"]
            guess = predicted[precision][str(level)]
            print(
                f"| {precision} | {level} | {guess:.1f} | {measured:.1f} | {guess / measured:.2f} |"
            )
    if results.get("quality"):
        print("\n| precision | relative RMS logit error vs fp32 | top-1 agreement | perplexity |")
        print("|---|---|---|---|")
        for precision, entry in results["quality"].items():
            error = entry.get("relative_logit_error")
            agree = entry.get("top1_agreement")
            print(
                f"| {precision} | {'-' if error is None else f'{error * 100:.2f} %'} | "
                f"{'-' if agree is None else f'{agree * 100:.1f} %'} | {entry['perplexity']:.1f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64, help="max_tokens per request")
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("/tmp/throughput_model.json"))
    parser.add_argument("--report", type=Path, help="print the tables of an earlier run")
    args = parser.parse_args()
    if args.report:
        report(json.loads(args.report.read_text()))
        return
    import torch

    from deepseek_operator.serving.memory import checkpoint_shape

    directory = build_real_shape(0)
    shape = checkpoint_shape(directory)
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "tokens_per_request": args.tokens,
        "machine": {
            "cpus": os.cpu_count(),
            "features": cpu_features(),
            "memory_gib": os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30,
            "torch_threads": torch.get_num_threads(),
            "read_bandwidth_gb_per_s": read_bandwidth_gb_per_s(),
            "kernels": {p: kernel_probe(p) for p in PRECISIONS},
        },
        "serving": {},
    }
    args.out.write_text(json.dumps(results, indent=1))
    for precision in args.precisions.split(","):
        log = args.out.with_name(f"serve-{precision}.log")
        with serve(directory, precision, log) as (url, pid):
            levels = measure_levels(url, args.tokens)
            serving_peak = peak_rss_bytes(pid)
        results["serving"][precision] = {
            # while the weights were read, before the KV cache exists (the loader logs it)
            "peak_rss_bytes": logged_gigabytes(log, r"peak ([0-9.]+) GB while loading"),
            # after serving: weights, the KV cache transformers zero-fills, activations
            "serving_peak_rss_bytes": serving_peak,
            "kv_cache_bytes": logged_gigabytes(
                log, r"KV cache \d+ blocks of \d+ tokens \(([0-9.]+) GB"
            ),
            "weight_bytes": shape.weight_bytes(precision),
            "levels": levels,
        }
        args.out.write_text(json.dumps(results, indent=1))
        print(precision, json.dumps(results["serving"][precision]), flush=True)
    if not args.skip_quality:
        results["quality"] = quality(directory)
        args.out.write_text(json.dumps(results, indent=1))
    report(results)


if __name__ == "__main__":
    main()
