"""CPU int8 schemes against bf16: kernel speed at 1 and 16 rows, and logits at the 1.5B shape.

Run: ``flock /work/heavy.lock .venv/bin/python benchmarks/int8_variants.py [--skip-quality]``

Why the server's int8 is weight-only with per-channel scales (`serving/loading.py`): this
compares it with torch's dynamic int8 (fbgemm; int8 activations, per-channel weight scales),
the fastest int8 kernel on AVX-512 CPUs, on
1. the matrix multiplies of six decoder layers of the 1.5B shape (184 M weights), at 1 and 16
   activation rows, best of 5 (fp32, bf16, weight-only int8, dynamic int8);
2. the logits of a fixed 256-token sequence of the seeded real-shape model (`real_shape.py`)
   against fp32: relative RMS error, top-1 agreement, perplexity.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SHAPES = [(8960, 1536), (1536, 8960), (2048, 1536)] * 6


def _best(run: Callable[[], object], repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def _passes(apply: Callable[[Any, Any], Any], inputs: list[Any], layers: list[Any]) -> Any:
    """One pass over every layer, each with its input."""
    return lambda: [apply(x, layer) for x, layer in zip(inputs, layers, strict=True)]


def _dynamic_int8(weight: Any) -> Any:
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    linear.weight.data = weight
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice
        return quantize_dynamic(
            torch.nn.Sequential(linear),
            {torch.nn.Linear: per_channel_dynamic_qconfig},
            dtype=torch.qint8,
        )


def kernels() -> None:
    import torch

    from deepseek_operator.serving.loading import Int8Linear

    torch.manual_seed(0)
    weights = [torch.randn(o, i) * 0.02 for o, i in SHAPES]
    bf16 = [w.bfloat16() for w in weights]
    pack = []
    for w in bf16:
        linear = torch.nn.Linear(w.shape[1], w.shape[0], bias=False, dtype=torch.bfloat16)
        pack.append(Int8Linear.from_weight(w, linear))
    dynamic = [_dynamic_int8(w) for w in weights]
    print(f"{sum(w.numel() for w in weights) / 1e6:.0f} M weights; ms per pass (best of 5)")
    print("| rows | fp32 | bf16 | int8 weight-only (served) | int8 dynamic |")
    print("|---|---|---|---|---|")
    with torch.no_grad():
        for rows in (1, 16):
            x32 = [torch.randn(rows, i) for _, i in SHAPES]
            x16 = [x.bfloat16() for x in x32]
            cells = [
                _best(_passes(torch.nn.functional.linear, x32, weights)),
                _best(_passes(torch.nn.functional.linear, x16, bf16)),
                _best(_passes(lambda x, m: m(x), x16, pack)),
                _best(_passes(lambda x, m: m(x), x32, dynamic)),
            ]
            print(f"| {rows} | " + " | ".join(f"{c * 1e3:.1f}" for c in cells) + " |")


def quality(length: int = 256) -> None:
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    from deepseek_operator.serving.loading import load_cpu_model
    from real_shape import build_real_shape

    directory = build_real_shape(0)
    ids = torch.randint(0, 400, (1, length), generator=torch.Generator().manual_seed(0))

    def logits(model: Any) -> Any:
        with torch.no_grad():
            return model(ids).logits[0].float()

    def line(name: str, values: Any, reference: Any) -> None:
        nll = torch.nn.functional.cross_entropy(values[:-1], ids[0, 1:]).item()
        error = (values - reference).pow(2).mean().sqrt() / reference.pow(2).mean().sqrt()
        agree = (values.argmax(-1) == reference.argmax(-1)).float().mean()
        print(
            f"| {name} | {error.item() * 100:.2f} % | {agree.item() * 100:.1f} % | "
            f"{torch.exp(torch.tensor(nll)).item():,.0f} |"
        )

    print("| precision | relative RMS logit error | top-1 agreement | perplexity |")
    print("|---|---|---|---|")
    model = load_cpu_model(directory, "fp32")
    reference = logits(model)
    line("fp32", reference, reference)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(
            model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True
        )
    line("int8 dynamic (per-channel weights, per-tensor activations)", logits(model), reference)
    del model
    gc.collect()
    for precision, name in (("bf16", "bf16"), ("int8", "int8 weight-only, per channel")):
        model = load_cpu_model(directory, precision)
        line(name, logits(model), reference)
        del model
        gc.collect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()
    kernels()
    if not args.skip_quality:
        print()
        quality()


if __name__ == "__main__":
    main()
