"""The throughput model against this machine, at the real R1-Distill-Qwen-1.5B shape.

Run: ``flock /work/heavy.lock python benchmarks/throughput_model.py [--tokens 48]
[--skip-quality]`` (at normal priority: see "a shared machine" below).

1. Builds (once, cached in ``~/.cache/deepseek-operator/models/``) the 1.5B shape with seeded
   random weights (`real_shape.py`).
2. Measures the machine: read bandwidth (a sum over 2 GB), and for each precision, loaded as the
   server loads it, one decode step of the model itself (transformers, no server) for 1, 2, 4,
   8, 16 and 32 sequences, and the server's sampling at the same sizes. From those times come
   the two facts the throughput model takes per precision (`core/costing/throughput.py`,
   `machine_efficiencies`): the share of the bandwidth one stream reaches, and the step curve
   t(s)/t(1) that sets the CPU batching gain s / (t(s)/t(1)). Nothing is fitted to the served
   numbers.
3. Unless ``--skip-quality``: the logits of a fixed 256-token sequence at each precision against
   fp32: relative RMS error, top-1 agreement, perplexity.
4. Serves the model with `deepseek-operator serve` at default flags (fp32, bf16, int8; each
   server a process of its own), reads the peak resident memory the loader logs once the
   weights are in (before the KV cache exists) and the peak after serving, and measures
   steady-decode tokens/s at concurrency 1, 4 and 16.
5. Prints the model's prediction beside each measurement (predicted / measured).

Results are also written as JSON (``--out``), and ``--report FILE`` prints the tables from such
a file without measuring again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
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
PROBED_BATCHES = (1, 2, 4, 8, 16, 32)
"""Batch sizes the model's decode step is timed at: the CPU step curve's points (up to the
server's default of 32 sequences)."""
PROMPT = "Placing replicas on GPU pools by day and CPU pools at night"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ---- a shared machine ----------------------------------------------------------------------
# Other people's processes share the two cores. `nice` does not keep them out of the way across
# sessions (the kernel's autogroup scheduling shares CPU between sessions first), and a torch op
# split over both cores waits for the slower one, so one busy neighbour can halve a measurement.
# Each measurement therefore waits for the machine to be quiet, records how much CPU others used
# while it ran, and is retried when that was more than QUIET_CORES.

QUIET_CORES = 0.15
TRIES = 2


def _jiffies_busy() -> int:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(values) - values[3] - values[4]  # all but idle and iowait


def _jiffies_of(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime, all threads
    return total


class OthersCpu:
    """Cores other processes kept busy while the block ran."""

    def __init__(self, own: list[int]) -> None:
        self.own = own
        self.cores = 0.0

    def __enter__(self) -> OthersCpu:
        self._start = (time.monotonic(), _jiffies_busy(), _jiffies_of(self.own))
        return self

    def __exit__(self, *exc: object) -> None:
        started, busy, own = self._start
        seconds = max(time.monotonic() - started, 1e-3)
        others = (_jiffies_busy() - busy) - (_jiffies_of(self.own) - own)
        self.cores = max(others, 0) / os.sysconf("SC_CLK_TCK") / seconds


def wait_until_quiet(own: list[int], timeout: float = 90.0) -> float:
    """Sample 2-second windows until others use under QUIET_CORES; the last sample."""
    deadline = time.monotonic() + timeout
    while True:
        with OthersCpu(own) as sample:
            time.sleep(2.0)
        if sample.cores < QUIET_CORES or time.monotonic() > deadline:
            return sample.cores


def quietly(own: list[int], measure: Any) -> tuple[Any, float]:
    """`measure()` on a quiet machine: up to TRIES times, the least disturbed result and the
    cores others used during it."""
    best: tuple[Any, float] | None = None
    for _ in range(TRIES):
        wait_until_quiet(own)
        with OthersCpu(own) as others:
            result = measure()
        if best is None or others.cores < best[1]:
            best = (result, others.cores)
        if others.cores < QUIET_CORES:
            break
    assert best is not None
    return best


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


def bytes_per_token(precision: str) -> float:
    """What the throughput model counts as read per decoded token at the 1.5B shape."""
    from deepseek_operator.core.costing.catalog import model_named
    from deepseek_operator.core.costing.throughput import bytes_read_per_output_token

    model = model_named("r1-distill-qwen-1.5b")
    return bytes_read_per_output_token(model, precision, 0, precision)  # type: ignore[arg-type]


def step_probe(
    model: Any, precision: str, rows: tuple[int, ...] = PROBED_BATCHES
) -> dict[str, float]:
    """Seconds per decode step of the loaded model itself (transformers, a 32-token context, no
    server) for each probed batch size: the hardware-and-kernel facts the throughput model takes.
    The median of 8 steps after 2 warm-up steps."""
    import statistics

    import torch

    result: dict[str, float] = {"weight_bytes": bytes_per_token(precision)}
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for count in rows:
            ids = torch.randint(0, 400, (count, 32), generator=generator)
            out = model(ids, use_cache=True)
            past, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
            times = []
            for _ in range(10):
                started = time.perf_counter()
                out = model(token, past_key_values=past, use_cache=True)
                past, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
                times.append(time.perf_counter() - started)
            result[f"seconds_{count}"] = statistics.median(times[2:])
    return result


def sampling_probe(
    rows: tuple[int, ...] = PROBED_BATCHES, vocabulary: int = 151_936
) -> dict[str, float]:
    """Seconds the server's sampling takes per step at each probed batch size, which the model's
    own step does not include: each request's temperature, then the server's nucleus sampler
    (serving/sampling.py) and the manager's argmax over what it returns. The benchmark's
    requests ask for top-p 1, as OpenAI clients do by default. The median of 8 after 2 warm-up
    rounds, on fp32 logits as the server samples."""
    import statistics

    import torch
    from transformers.generation.continuous_batching.cb_logits_processors import (
        ContinuousBatchingTopPLogitsWarper,
    )
    from transformers.generation.logits_process import TopPLogitsWarper

    from deepseek_operator.serving.sampling import NucleusSampler

    sampler = NucleusSampler(ContinuousBatchingTopPLogitsWarper(TopPLogitsWarper(0.5)))
    result: dict[str, float] = {}
    generator = torch.Generator().manual_seed(2)
    for count in rows:
        logits = torch.randn(count, vocabulary, generator=generator)
        temperature = torch.ones(count, 1)
        top_p = torch.ones(count).view(dtype=torch.int32)
        times = []
        for _ in range(10):
            started = time.perf_counter()
            sampler(logits / temperature, top_p).argmax(dim=-1)
            times.append(time.perf_counter() - started)
        result[f"seconds_{count}"] = statistics.median(times[2:])
    return result


def probes_and_quality(directory: Path, with_quality: bool, length: int = 256) -> dict[str, Any]:
    """For each precision, loaded as the server loads it: the decode-step probe (on a quiet
    machine) and the logits of one fixed sequence against fp32 (relative RMS error, top-1
    agreement, perplexity)."""
    import torch

    from deepseek_operator.serving.loading import load_cpu_model

    ids = torch.randint(0, 400, (1, length), generator=torch.Generator().manual_seed(0))
    steps: dict[str, Any] = {}
    quality: dict[str, Any] = {}
    reference: Any = None
    for precision in PRECISIONS:
        model = load_cpu_model(directory, precision)
        probe, others = quietly(
            [os.getpid()], lambda model=model, p=precision: step_probe(model, p)
        )
        steps[precision] = {**probe, "others_cores": others}
        print(f"  step probe {precision}: {json.dumps(steps[precision])}", flush=True)
        if with_quality:
            with torch.no_grad():
                logits = model(ids).logits[0].float()
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
            quality[precision] = entry
            del logits
        del model
        gc.collect()
    return {"steps": steps, "quality": quality}


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


def measure_levels(url: str, tokens: int, server_pid: int) -> dict[str, Any]:
    """Steady-decode tokens/s at each level, each measured on a quiet machine (`quietly`)."""

    async def level_once(level: int) -> dict[str, Any]:
        limits = httpx.Limits(max_connections=max(LEVELS) + 4)
        async with httpx.AsyncClient(base_url=url, timeout=1800, limits=limits) as client:
            outcome = await run_level(
                client,
                model="bench",
                concurrency=level,
                requests=level,
                max_tokens=tokens,
                prompt=PROMPT,
            )
        first = max(outcome.time_to_first_token_seconds, default=0.0)
        # steady decode: the tokens after each request's first, over the time after the last
        # first token (all requests start together)
        decode = (outcome.completion_tokens - outcome.requests) / max(
            outcome.wall_seconds - first, 1e-9
        )
        return {
            "tokens": outcome.completion_tokens,
            "wall_seconds": outcome.wall_seconds,
            "ttft_seconds": first,
            "decode_tokens_per_s": decode,
            "errors": outcome.errors,
        }

    async def warm_up() -> int:
        async with httpx.AsyncClient(base_url=url, timeout=1800) as client:
            models = (await client.get("/v1/models")).json()["data"][0]
            await run_level(client, model="bench", concurrency=2, requests=2, max_tokens=4)
            return int(models["max_model_len"])

    results: dict[str, Any] = {"max_model_len": asyncio.run(warm_up())}
    own = [os.getpid(), server_pid]
    for level in LEVELS:
        entry, others = quietly(own, lambda level=level: asyncio.run(level_once(level)))
        results[str(level)] = {**entry, "others_cores": others}
        print(f"  c={level}: {entry['decode_tokens_per_s']:.2f} tok/s (others {others:.2f} cores)")
    return results


# ---- prediction ----------------------------------------------------------------------------


def server_steps(machine: dict[str, Any]) -> dict[str, dict[str, float]]:
    """A served decode step: the model's own step plus the server's sampling (both probed)."""
    sampling = machine.get("sampling", {})
    return {
        precision: {
            **step,
            **{
                key: value + sampling.get(key, 0.0)
                for key, value in step.items()
                if key.startswith("seconds_")
            },
        }
        for precision, step in machine["steps"].items()
    }


def predictions(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    from deepseek_operator.core.costing.catalog import HardwareSpec, model_named
    from deepseek_operator.core.costing.throughput import (
        batching_gain_for,
        machine_efficiencies,
        roofline_single_stream_tokens_per_s,
    )

    machine = results["machine"]
    efficiency, curves = machine_efficiencies(
        machine["read_bandwidth_gb_per_s"], server_steps(machine)
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
        batch_step_curve=curves,
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
    from deepseek_operator.core.costing.throughput import machine_efficiencies

    machine = results["machine"]
    print(
        f"machine: {machine['cpus']} CPUs ({', '.join(machine['features'])}), "
        f"read bandwidth {machine['read_bandwidth_gb_per_s']:.1f} GB/s (measured)"
    )
    served = server_steps(machine)
    efficiency, curves = machine_efficiencies(machine["read_bandwidth_gb_per_s"], served)
    sampling = machine.get("sampling", {})
    if sampling:
        print(
            "  sampling (temperature, nucleus draw over 151,936 ids), ms at "
            + ", ".join(
                f"{key.removeprefix('seconds_')}: {value * 1e3:.1f}"
                for key, value in sampling.items()
            )
            + " sequences (measured)"
        )
    for precision, step in machine["steps"].items():
        gb = step["weight_bytes"] / served[precision]["seconds_1"] / 1e9
        times = ", ".join(
            f"{key.removeprefix('seconds_')}: {value * 1e3:.0f}"
            for key, value in step.items()
            if key.startswith("seconds_")
        )
        curve = ", ".join(f"{size}: {ratio:.2f}" for size, ratio in curves[precision])
        print(
            f"  decode step {precision}, ms at {times} sequences (measured); with sampling "
            f"{gb:.1f} GB/s at 1, efficiency {efficiency[precision]:.2f}, step curve t(s)/t(1) "
            f"{curve} (derived)"
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
            "read_bandwidth_gb_per_s": quietly([os.getpid()], read_bandwidth_gb_per_s)[0],
        },
        "serving": {},
    }
    results["machine"]["sampling"] = quietly([os.getpid()], sampling_probe)[0]
    probed = probes_and_quality(directory, with_quality=not args.skip_quality)
    results["machine"]["steps"] = probed["steps"]
    results["quality"] = probed["quality"]
    args.out.write_text(json.dumps(results, indent=1))
    for precision in args.precisions.split(","):
        log = args.out.with_name(f"serve-{precision}.log")
        with serve(directory, precision, log) as (url, pid):
            levels = measure_levels(url, args.tokens, pid)
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
    report(results)


if __name__ == "__main__":
    main()
