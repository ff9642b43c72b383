"""Decode attention for continuous batching without flash kernels (every CPU): each sequence
attends over its own keys only.

transformers' continuous batching on a paged cache with SDPA hands attention one row of every
sequence's queries and the concatenation of every sequence's cached keys and values, separated by
a block-diagonal mask. SDPA then scores each query against all sequences' keys, and for a
grouped-query model it first copies the keys and values once per query head. A decode step of `s`
sequences of `c` cached tokens thus does `s × s·c` dot products and copies `s·c` rows per query
head, where `s·c` dot products are needed. On the 1.5B shape at 16 sequences of about 60 tokens,
the served bf16 step was 30 % slower than the model's own step, and the excess grows with both the
batch and the context.

When every sequence of a batch decodes one token, the steady state of a serving batch, this
computes the same attention per sequence: the keys and values are gathered into a padded batch
(one copy, at the key-value head count) and each sequence's query heads attend over its own rows.
Every other call (prefill and mixed batches, sliding windows, models outside continuous batching)
goes to transformers' own SDPA function unchanged.
"""

from __future__ import annotations

from typing import Any

ATTENTION_NAME = "sdpa"
"""The implementation this replaces: the one the server loads models with and continuous batching
keeps on CPU."""


def decode_attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """transformers' attention-function signature: `query` is (1, heads, tokens, dim), `key` and
    `value` are (1, kv heads, cached tokens, dim); returns (1, tokens, heads, dim)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if not _one_token_per_sequence(query, key, dropout, kwargs):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    return _attend_per_sequence(query, key, value, kwargs["cu_seq_lens_k"], scaling)


def _attend_per_sequence(
    query: Any, key: Any, value: Any, starts_and_ends: Any, scaling: float | None
) -> tuple[Any, None]:
    """One query token per sequence; `starts_and_ends` bounds each sequence's rows of `key`."""
    import torch

    sequences, heads, dim = query.shape[2], query.shape[1], query.shape[3]
    kv_heads = key.shape[1]
    lengths = starts_and_ends.diff()
    offsets = torch.arange(int(lengths.max()), device=query.device)
    # row j of sequence i: its j-th cached token, repeated past its end (masked out below)
    rows = starts_and_ends[:-1, None] + torch.minimum(offsets[None, :], lengths[:, None] - 1)
    # (1, kv heads, tokens, dim) -> (sequences, kv heads, longest, dim): one gather each
    keys = key[0].transpose(0, 1)[rows].transpose(1, 2)
    values = value[0].transpose(0, 1)[rows].transpose(1, 2)
    # query heads grouped by the key-value head they share: (sequences, kv heads, group, dim)
    grouped = query[0].transpose(0, 1).reshape(sequences, kv_heads, heads // kv_heads, dim)
    within = (offsets[None, :] < lengths[:, None])[:, None, None, :]
    output = torch.nn.functional.scaled_dot_product_attention(
        grouped, keys, values, attn_mask=within, scale=scaling
    )
    return output.reshape(1, sequences, heads, dim), None


def _one_token_per_sequence(query: Any, key: Any, dropout: float, kwargs: dict[str, Any]) -> bool:
    """A continuous-batching decode step this function computes exactly; anything else is not."""
    import torch

    queries, keys = kwargs.get("cu_seq_lens_q"), kwargs.get("cu_seq_lens_k")
    if not (isinstance(queries, torch.Tensor) and isinstance(keys, torch.Tensor)):
        return False
    sequences = queries.numel() - 1
    return (
        sequences > 1
        # every sequence has at least one query token, so this many tokens means one each
        and query.shape[0] == 1
        and query.shape[2] == sequences
        and keys.numel() == sequences + 1
        and key.shape[0] == 1
        and int(keys[-1]) == key.shape[2]
        and query.shape[1] % key.shape[1] == 0
        and kwargs.get("sliding_window") is None
        and kwargs.get("position_bias") is None
        and kwargs.get("softcap") is None
        and dropout == 0.0
    )


def install() -> None:
    """Route this process's SDPA attention through `decode_attention` (idempotent). The server
    process serves one model; every call but a batched decode step still runs transformers' SDPA."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    ALL_ATTENTION_FUNCTIONS[ATTENTION_NAME] = decode_attention
