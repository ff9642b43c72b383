"""Split DeepSeek-R1 output into the reasoning (inside `<think>...</think>`) and the answer.

DeepSeek's API returns the chain of thought as `reasoning_content` beside `content`. R1's chat
template opens the `<think>` block in the prompt, so the generated text usually carries only the
closing tag; a model may also open the block itself. Text arrives in arbitrary pieces while
streaming, so a tag split across pieces is held back until it is complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from deepseek_operator.serving.stops import partial_suffix

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"

_Mode = Literal["start", "reasoning_start", "reasoning", "content_start", "content"]


@dataclass(frozen=True)
class Split:
    reasoning: str = ""
    content: str = ""


def prompt_opens_reasoning(prompt_text: str) -> bool:
    """Whether the rendered prompt ends inside an open `<think>` block."""
    return prompt_text.rstrip().endswith(OPEN_TAG)


class ReasoningSplitter:
    """Incremental splitter: `feed` pieces of generated text, then `finish` once."""

    def __init__(self, starts_in_reasoning: bool) -> None:
        self._mode: _Mode = "reasoning_start" if starts_in_reasoning else "start"
        self._pending = ""
        self.saw_reasoning = starts_in_reasoning

    def feed(self, text: str) -> Split:
        self._pending += text
        reasoning: list[str] = []
        content: list[str] = []
        while self._pending:
            if self._mode == "start":
                stripped = self._pending.lstrip()
                if stripped.startswith(OPEN_TAG):
                    self._pending = stripped[len(OPEN_TAG) :]
                    self._mode = "reasoning_start"
                    self.saw_reasoning = True
                    continue
                if not stripped or OPEN_TAG.startswith(stripped):
                    break  # could still become "<think>"
                self._mode = "content"
                continue
            if self._mode in ("reasoning_start", "content_start"):
                stripped = self._pending.lstrip()
                if not stripped:
                    self._pending = ""
                    break
                self._pending = stripped
                self._mode = "reasoning" if self._mode == "reasoning_start" else "content"
                continue
            if self._mode == "reasoning":
                index = self._pending.find(CLOSE_TAG)
                if index >= 0:
                    reasoning.append(self._pending[:index])
                    self._pending = self._pending[index + len(CLOSE_TAG) :]
                    self._mode = "content_start"
                    continue
                keep = partial_suffix(self._pending, CLOSE_TAG)
                reasoning.append(self._pending[: len(self._pending) - keep])
                self._pending = self._pending[len(self._pending) - keep :]
                break
            content.append(self._pending)
            self._pending = ""
        return Split("".join(reasoning), "".join(content))

    def finish(self) -> Split:
        """Release what was held back waiting for a tag that never completed."""
        pending, self._pending = self._pending, ""
        if self._mode in ("reasoning", "reasoning_start"):
            return Split(reasoning=pending.lstrip() if self._mode == "reasoning_start" else pending)
        if self._mode == "content_start":
            return Split(content=pending.lstrip())
        return Split(content=pending)


def split_reasoning(text: str, starts_in_reasoning: bool) -> Split:
    """The whole-text split: what the incremental splitter yields summed over any chunking."""
    splitter = ReasoningSplitter(starts_in_reasoning)
    first = splitter.feed(text)
    last = splitter.finish()
    return Split(first.reasoning + last.reasoning, first.content + last.content)
