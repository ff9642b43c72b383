"""A model whose vocabulary is larger than its tokenizer's (as real Qwen2 checkpoints are): the
ids without text are counted, the text around them streams, and the first chunk comes with the
first token, so time to first token never waits for text."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from deepseek_operator.calibration.measure import run_level
from deepseek_operator.serving.detokenizer import IncrementalDetokenizer
from deepseek_operator.serving.settings import ServerSettings
from deepseek_operator.serving.testing import TinyModelSpec, build_tiny_model

from .conftest import MODEL_NAME, free_port, serve_in_thread

pytestmark = pytest.mark.serving

MODEL_IDS = 1600
"""Four times the tiny tokenizer's ids (400 BPE ids and a few added tokens)."""


class StrictDecoder:
    """Raises on ids it does not know, as SentencePiece tokenizers do."""

    def __init__(self, pieces: dict[int, str]) -> None:
        self.pieces = pieces

    def decode(self, token_ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(self.pieces[token] for token in token_ids)


def test_detokenizer_streams_around_ids_it_cannot_decode() -> None:
    decoder = StrictDecoder({0: "a", 1: "b", 2: " c"})
    detokenizer = IncrementalDetokenizer(decoder, [0], vocabulary_size=3)
    generated: list[int] = []
    pieces = []
    for token in [900, 1, 70_000, 2, 3, 0]:
        generated.append(token)
        pieces.append(detokenizer.step(generated))
    pieces.append(detokenizer.flush(generated))
    assert pieces == ["", "b", "", " c", "", "a", ""]


@pytest.fixture(scope="module")
def padded_vocabulary_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(
        tmp_path_factory.mktemp("padded") / MODEL_NAME,
        TinyModelSpec(model_vocab_size=MODEL_IDS, seed=3),
    )


def test_padded_vocabulary_streams_decodable_text_and_counts_every_token(
    padded_vocabulary_weights: Path,
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(padded_vocabulary_weights)
    known_ids = len(tokenizer)
    assert known_ids < MODEL_IDS // 3
    model = AutoModelForCausalLM.from_pretrained(padded_vocabulary_weights)
    prompt = "Continuous batching lets many requests"
    ids = tokenizer.encode(prompt, add_special_tokens=True)
    generated = model.generate(
        torch.tensor([ids]), do_sample=False, max_new_tokens=24, min_new_tokens=24
    )[0, len(ids) :].tolist()
    beyond = [token for token in generated if token >= known_ids]
    known = [token for token in generated if token < known_ids]
    # this seed's greedy output mixes both kinds, which is what the test is about
    assert beyond and known and generated[0] >= known_ids
    settings = ServerSettings(
        weights=padded_vocabulary_weights, served_model_name=MODEL_NAME, port=free_port(), seed=0
    )
    with serve_in_thread(settings) as server, server.client() as client:
        body = {
            "model": MODEL_NAME,
            "prompt": prompt,
            "max_tokens": 24,
            "temperature": 0,
            "ignore_eos": True,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        chunks = []
        with client.stream("POST", "/v1/completions", json=body) as response:
            for line in response.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    chunks.append(httpx.Response(200, content=line[6:]).json())
        texts = [c["choices"][0]["text"] for c in chunks if c["choices"]]
        usage = [c["usage"] for c in chunks if c.get("usage")]
        assert texts[0] == ""  # the first token has no text, and still has its chunk
        assert "".join(texts) == tokenizer.decode(known, skip_special_tokens=True) != ""
        assert usage[-1]["completion_tokens"] == 24

        async def calibrate() -> tuple[int, int]:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
                level = await run_level(
                    http, model=MODEL_NAME, concurrency=2, requests=4, max_tokens=8
                )
            return len(level.time_to_first_token_seconds), level.completion_tokens

        with_ttft, tokens = asyncio.run(calibrate())
        assert (with_ttft, tokens) == (4, 32)
