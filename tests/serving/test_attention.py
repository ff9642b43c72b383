"""Per-sequence decode attention gives what transformers' SDPA gives on a continuous batch, and
the server's batched decode steps really take it."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from deepseek_operator.serving import attention
from deepseek_operator.serving.attention import decode_attention

from .conftest import MODEL_NAME, RunningServer

pytestmark = pytest.mark.serving


class GroupedQueryLayer:
    """What the attention functions read from a module: 12 query heads over 2 key-value heads."""

    num_key_value_groups = 6
    is_causal = True


def continuous_batch(
    lengths: list[int], queries_per_sequence: list[int], dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Tensors shaped as transformers' paged cache hands them to attention: every sequence's
    queries in one row, every sequence's keys concatenated, a block-diagonal additive mask."""
    generator = torch.Generator().manual_seed(sum(lengths))
    tokens = sum(lengths)
    queries = sum(queries_per_sequence)
    query = torch.randn(1, 12, queries, 128, generator=generator).to(dtype)
    # the cache returns (tokens, kv heads, dim) transposed, not contiguous
    key = torch.randn(tokens, 2, 128, generator=generator).to(dtype).transpose(0, 1).unsqueeze(0)
    value = torch.randn(tokens, 2, 128, generator=generator).to(dtype).transpose(0, 1).unsqueeze(0)
    ends_k = torch.tensor([0, *lengths]).cumsum(0).to(torch.int32)
    ends_q = torch.tensor([0, *queries_per_sequence]).cumsum(0).to(torch.int32)
    mask = torch.full((1, 1, queries, tokens), torch.finfo(dtype).min, dtype=dtype)
    for i, (length, asked) in enumerate(zip(lengths, queries_per_sequence, strict=True)):
        for q in range(asked):  # causal within the sequence: its last query sees every key
            seen = length - asked + q + 1
            mask[0, 0, ends_q[i] + q, ends_k[i] : ends_k[i] + seen] = 0
    kwargs = {
        "cu_seq_lens_q": ends_q,
        "cu_seq_lens_k": ends_k,
        "max_length_q": max(queries_per_sequence),
        "max_length_k": max(lengths),
        "sliding_window": None,
    }
    return query, key, value, mask, kwargs


@pytest.mark.parametrize(
    ("dtype", "tolerance"), [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)], ids=["fp32", "bf16"]
)
@pytest.mark.parametrize(
    "lengths",
    [[5, 17, 1, 33, 8], [2, 2], [64] * 16, [1, 300, 7]],
    ids=["mixed", "two", "16", "long"],
)
def test_a_decode_step_equals_transformers_sdpa(
    lengths: list[int], dtype: torch.dtype, tolerance: float
) -> None:
    query, key, value, mask, kwargs = continuous_batch(lengths, [1] * len(lengths), dtype)
    layer = GroupedQueryLayer()
    expected, _ = sdpa_attention_forward(layer, query, key, value, mask, scaling=0.088, **kwargs)
    got, _ = decode_attention(layer, query, key, value, mask, scaling=0.088, **kwargs)
    assert got.shape == expected.shape == (1, len(lengths), 12, 128)
    assert torch.allclose(got.float(), expected.float(), atol=tolerance, rtol=0)


@pytest.mark.parametrize(
    "case",
    ["prefill and decode in one batch", "one sequence", "sliding window", "outside a batch"],
)
def test_every_other_call_is_transformers_sdpa_unchanged(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("took the per-sequence path")

    monkeypatch.setattr(attention, "_attend_per_sequence", refuse)
    queries = [1, 6, 1] if case == "prefill and decode in one batch" else [1, 1, 1]
    lengths = [9] if case == "one sequence" else [9, 6, 4]
    if case == "one sequence":
        queries = [1]
    query, key, value, mask, kwargs = continuous_batch(lengths, queries, torch.float32)
    if case == "sliding window":
        kwargs["sliding_window"] = 4
    if case == "outside a batch":
        kwargs = {}
    layer = GroupedQueryLayer()
    expected, _ = sdpa_attention_forward(layer, query, key, value, mask, **kwargs)
    got, _ = decode_attention(layer, query, key, value, mask, **kwargs)
    assert torch.equal(got, expected)


def greedy_alone(model: Any, ids: list[int], tokens: int) -> list[int]:
    """The argmax continuation of one prompt, on its own, EOS included like any other id (the
    requests ask `ignore_eos`; `generate`'s `min_new_tokens` would suppress EOS instead)."""
    sequence = list(ids)
    with torch.no_grad():
        for _ in range(tokens):
            sequence.append(int(model(torch.tensor([sequence])).logits[0, -1].argmax()))
    return sequence[len(ids) :]


def test_served_batches_decode_per_sequence_with_generate_s_output(
    random_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prompts of very different lengths share decode steps; each still gets exactly what
    `generate` gives it alone, and the steps went through the per-sequence path."""
    steps: list[int] = []
    inner = attention._attend_per_sequence

    def counted(query: torch.Tensor, *args: Any) -> tuple[torch.Tensor, None]:
        steps.append(query.shape[2])
        return inner(query, *args)

    monkeypatch.setattr(attention, "_attend_per_sequence", counted)
    prompts = [
        "Hi",
        "Continuous batching lets many requests share one forward pass",
        "A much longer prompt: " + " ".join(f"word{i}" for i in range(12)),
        "Night traffic",
    ]

    async def all_at_once() -> list[str]:
        async with openai.AsyncOpenAI(
            base_url=f"{random_server.base_url}/v1", api_key="unused", max_retries=0, timeout=120
        ) as client:
            replies = await asyncio.gather(
                *(
                    client.completions.create(
                        model=MODEL_NAME,
                        prompt=prompt,
                        max_tokens=10,
                        temperature=0,
                        extra_body={"ignore_eos": True},
                    )
                    for prompt in prompts
                )
            )
        return [reply.choices[0].text for reply in replies]

    texts = asyncio.run(all_at_once())
    tokenizer = AutoTokenizer.from_pretrained(random_server.settings.weights)
    model = AutoModelForCausalLM.from_pretrained(random_server.settings.weights)
    for prompt, text in zip(prompts, texts, strict=True):
        ids = tokenizer.encode(prompt, add_special_tokens=True)
        assert text == tokenizer.decode(greedy_alone(model, ids, 10), skip_special_tokens=True)
    assert steps and max(steps) > 1, "no batched decode step took the per-sequence path"
