"""Streaming text pieces: reasoning split, stop sequences and detokenisation do not depend on
how the output happens to be chunked."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepseek_operator.serving.detokenizer import IncrementalDetokenizer
from deepseek_operator.serving.reasoning import ReasoningSplitter, Split, split_reasoning
from deepseek_operator.serving.stops import StopMatcher
from deepseek_operator.serving.testing import build_tokenizer

pytestmark = pytest.mark.serving

alphabet = st.sampled_from(
    ["a", " ", "\n", "<", ">", "/", "t", "h", "i", "n", "k", "<think>", "</think>", "é"]
)
texts = st.lists(alphabet, max_size=40).map("".join)


def chunked(text: str, cuts: list[int]) -> list[str]:
    points = sorted({min(cut, len(text)) for cut in cuts})
    pieces, start = [], 0
    for point in [*points, len(text)]:
        pieces.append(text[start:point])
        start = point
    return pieces


@settings(max_examples=300)
@given(text=texts, cuts=st.lists(st.integers(0, 60), max_size=10), opened=st.booleans())
def test_reasoning_split_is_the_same_for_any_chunking(
    text: str, cuts: list[int], opened: bool
) -> None:
    splitter = ReasoningSplitter(opened)
    parts = [splitter.feed(piece) for piece in chunked(text, cuts)] + [splitter.finish()]
    streamed = Split("".join(p.reasoning for p in parts), "".join(p.content for p in parts))
    assert streamed == split_reasoning(text, opened)


@pytest.mark.parametrize(
    ("text", "opened", "reasoning", "content"),
    [
        ("Let me see.</think>\n\nFour.", True, "Let me see.", "Four."),
        ("<think>\nhmm</think>Four.", False, "hmm", "Four."),
        ("Just an answer.", False, "", "Just an answer."),
        ("still thinking when cut", True, "still thinking when cut", ""),
        ("a </thi", True, "a </thi", ""),
        ("x</think>y</think>z", True, "x", "y</think>z"),
    ],
)
def test_reasoning_split_examples(text: str, opened: bool, reasoning: str, content: str) -> None:
    assert split_reasoning(text, opened) == Split(reasoning, content)


def reference_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    """Character by character: the first stop to complete wins (the longest if several do)."""
    for end in range(1, len(text) + 1):
        done = [stop for stop in stops if stop and text[:end].endswith(stop)]
        if done:
            return text[: end - max(len(stop) for stop in done)], True
    return text, False


@settings(max_examples=300)
@given(
    text=texts,
    cuts=st.lists(st.integers(0, 60), max_size=10),
    stops=st.lists(st.lists(alphabet, min_size=1, max_size=3).map("".join), max_size=3),
)
def test_stop_sequences_cut_at_the_first_match_for_any_chunking(
    text: str, cuts: list[int], stops: list[str]
) -> None:
    matcher = StopMatcher(tuple(stops))
    out: list[str] = []
    stopped = False
    for piece in chunked(text, cuts):
        result = matcher.feed(piece)
        out.append(result.text)
        if result.stopped:
            stopped = True
            break
    out.append(matcher.finish())
    assert ("".join(out), stopped) == reference_stop(text, stops)


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    return build_tokenizer()


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=40))
def test_incremental_detokenizing_equals_decoding_the_whole(tokenizer, text: str) -> None:  # type: ignore[no-untyped-def]
    ids = tokenizer.encode(text, add_special_tokens=False)
    prompt = tokenizer.encode("Hello there", add_special_tokens=False)
    detokenizer = IncrementalDetokenizer(tokenizer, prompt)
    pieces = [detokenizer.step(ids[: i + 1]) for i in range(len(ids))]
    pieces.append(detokenizer.flush(ids))
    assert "".join(pieces) == tokenizer.decode(ids, skip_special_tokens=True)
