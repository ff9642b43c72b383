"""Turn a growing list of token ids into text deltas without re-decoding the whole output.

Decoding token by token breaks multi-byte characters and drops the leading spaces some
tokenizers encode in the following token, so each step decodes a short window that starts a few
tokens back, and holds the text back while it ends in an incomplete character (U+FFFD).

A model's vocabulary may be larger than its tokenizer's: real Qwen2 checkpoints pad the
embedding matrix beyond the ids the tokenizer knows, and a model can emit those ids. They have
no text; they are left out of what is decoded (some tokenizers raise on them, others drop them)
but still count as generated tokens, and the text of the ids around them streams as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

PROMPT_CONTEXT_TOKENS = 5
_INCOMPLETE = "\ufffd"


class Decoder(Protocol):
    def decode(self, token_ids: list[int], skip_special_tokens: bool = ...) -> str: ...


class IncrementalDetokenizer:
    def __init__(
        self, decoder: Decoder, prompt_ids: Sequence[int], vocabulary_size: int | None = None
    ) -> None:
        self._decoder = decoder
        self._vocabulary_size = vocabulary_size
        """Ids from this one up have no text (None: every id is decoded)."""
        self._context = list(prompt_ids[-PROMPT_CONTEXT_TOKENS:])
        self._prefix_offset = 0
        self._read_offset = len(self._context)

    def step(self, generated_ids: Sequence[int]) -> str:
        """The new text that `generated_ids` (all tokens so far) adds since the last step."""
        end = len(self._context) + len(generated_ids)
        prefix = self._decode(self._slice(generated_ids, self._prefix_offset, self._read_offset))
        text = self._decode(self._slice(generated_ids, self._prefix_offset, end))
        if len(text) > len(prefix) and not text.endswith(_INCOMPLETE):
            self._prefix_offset = self._read_offset
            self._read_offset = end
            return text[len(prefix) :]
        return ""

    def flush(self, generated_ids: Sequence[int]) -> str:
        """Whatever is left at the end, incomplete characters included."""
        end = len(self._context) + len(generated_ids)
        prefix = self._decode(self._slice(generated_ids, self._prefix_offset, self._read_offset))
        text = self._decode(self._slice(generated_ids, self._prefix_offset, end))
        self._prefix_offset = self._read_offset = end
        return text[len(prefix) :] if len(text) > len(prefix) else ""

    def _slice(self, generated_ids: Sequence[int], start: int, end: int) -> list[int]:
        """Tokens [start, end) of prompt context + generated, without copying the whole output."""
        context = len(self._context)
        if start >= context:
            return list(generated_ids[start - context : end - context])
        return self._context[start:end] + list(generated_ids[: max(end - context, 0)])

    def _decode(self, ids: list[int]) -> str:
        size = self._vocabulary_size
        if size is not None:
            ids = [token for token in ids if 0 <= token < size]
        if not ids:
            return ""
        return self._decoder.decode(ids, skip_special_tokens=True)
