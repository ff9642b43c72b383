"""The DeepSeek-R1-Distill-Qwen-1.5B shape with seeded random weights, built once and cached.

Qwen2: hidden 1536, 28 layers, 12 attention heads, 2 KV heads, intermediate 8960, vocabulary
151,936 (1.78 B parameters). Weights are stored in bf16, as the published checkpoint is, so that
loading at bf16 reads them as they are. The tokenizer is the tiny test tokenizer (a few hundred
ids): like real Qwen2 checkpoints, the model's vocabulary is larger than the tokenizer's.

Cached outside the repository (``~/.cache/deepseek-operator/models/``), keyed by the seed.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

SHAPE = {
    "hidden_size": 1536,
    "intermediate_size": 8960,
    "num_hidden_layers": 28,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "vocab_size": 151936,
    "max_position_embeddings": 131072,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
}
CACHE = Path.home() / ".cache" / "deepseek-operator" / "models"


def real_shape_dir(seed: int = 0) -> Path:
    return CACHE / f"r1-distill-qwen-1.5b-shape-seed{seed}"


def build_real_shape(seed: int = 0) -> Path:
    """The checkpoint directory; built on first use (about a minute, 3.6 GB on disk)."""
    directory = real_shape_dir(seed)
    if (directory / "model.safetensors").is_file() or (
        directory / "model.safetensors.index.json"
    ).is_file():
        return directory
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    from deepseek_operator.serving.testing import build_tokenizer

    tokenizer = build_tokenizer()
    config = Qwen2Config(
        **SHAPE,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # initialise in bf16: never hold an fp32 copy
    try:
        model = Qwen2ForCausalLM(config).eval()  # type: ignore[no-untyped-call]
    finally:
        torch.set_default_dtype(previous)
    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    partial = directory.with_name(directory.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(partial, max_shard_size="20GB")
    tokenizer.save_pretrained(partial)
    partial.rename(directory)
    return directory


if __name__ == "__main__":
    print(build_real_shape(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
