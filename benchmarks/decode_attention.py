"""Decode attention on a continuous batch: transformers' SDPA against the server's per-sequence path.

Run: ``.venv/bin/python benchmarks/decode_attention.py [--repeats 7] [--threads 2]``

One layer of the R1-Distill-Qwen-1.5B shape (12 query heads over 2 key-value heads, head size
128) at one decode step: `s` sequences of `c` cached tokens each, laid out as transformers'
paged cache hands them to attention (every query in one row, all keys concatenated, a
block-diagonal additive mask). Both functions get the same tensors in the same run; the table
gives the median seconds of each, their ratio, and the per-step cost over the model's 28
layers. Both results are checked equal before timing.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

LAYERS = 28
SEQUENCES = (4, 16, 32)
CONTEXTS = (64, 512, 2048)
DTYPES = {"bf16": "bfloat16", "fp32": "float32"}


def median_seconds(call: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--dtypes", default="bf16,fp32", help="comma-separated: bf16, fp32")
    args = parser.parse_args()
    names = args.dtypes.split(",")
    if args.repeats < 1:
        parser.error(f"--repeats: must be at least 1 (got {args.repeats})")
    if args.threads < 0:
        parser.error(f"--threads: must be 0 or more (got {args.threads})")
    if not set(names) <= set(DTYPES):
        parser.error(f"--dtypes: each must be one of {', '.join(DTYPES)} (got {args.dtypes!r})")

    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from deepseek_operator.serving.attention import decode_attention

    if args.threads:
        torch.set_num_threads(args.threads)

    class Layer:
        num_key_value_groups = 6
        is_causal = True

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; one layer, {LAYERS}× per step"
    )
    print(
        "\n| dtype | sequences | context | transformers SDPA | per-sequence | ratio | "
        f"per step ({LAYERS} layers), SDPA → per-sequence |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in names:
        dtype = getattr(torch, DTYPES[name])
        for sequences in SEQUENCES:
            for context in CONTEXTS:
                tokens = sequences * context
                generator = torch.Generator().manual_seed(tokens)
                query = torch.randn(1, 12, sequences, 128, generator=generator).to(dtype)
                key = torch.randn(tokens, 2, 128, generator=generator).to(dtype)
                value = torch.randn(tokens, 2, 128, generator=generator).to(dtype)
                key, value = (x.transpose(0, 1).unsqueeze(0) for x in (key, value))
                ends = torch.arange(0, tokens + 1, context, dtype=torch.int32)
                mask = torch.full((1, 1, sequences, tokens), torch.finfo(dtype).min, dtype=dtype)
                for i in range(sequences):
                    mask[0, 0, i, i * context : (i + 1) * context] = 0
                kwargs = {
                    "cu_seq_lens_q": torch.arange(sequences + 1, dtype=torch.int32),
                    "cu_seq_lens_k": ends,
                    "max_length_q": 1,
                    "max_length_k": context,
                    "sliding_window": None,
                }
                arguments = (Layer(), query, key, value, mask)
                stock = functools.partial(
                    sdpa_attention_forward, *arguments, scaling=0.088, **kwargs
                )
                ours = functools.partial(decode_attention, *arguments, scaling=0.088, **kwargs)

                with torch.no_grad():
                    same = torch.allclose(stock()[0].float(), ours()[0].float(), atol=2e-2, rtol=0)
                    if not same:
                        raise SystemExit(f"results differ at {name}, s={sequences}, c={context}")
                    before = median_seconds(stock, args.repeats)
                    after = median_seconds(ours, args.repeats)
                print(
                    f"| {name} | {sequences} | {context:,} | {before * 1e3:.2f} ms | "
                    f"{after * 1e3:.2f} ms | {after / before:.2f} | "
                    f"{before * LAYERS * 1e3:.0f} → {after * LAYERS * 1e3:.0f} ms |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
