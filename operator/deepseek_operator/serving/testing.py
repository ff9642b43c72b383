"""Tiny checkpoints with DeepSeek-R1-Distill-Qwen's architecture, built locally in seconds.

Tests, benchmarks and demos need a real model directory the server can load, without
downloading anything. These are Qwen2 models (the architecture of the R1 Qwen distills) with a
byte-level BPE tokenizer trained here on a few sentences, R1's special tokens, and a chat
template that opens a `<think>` block as R1's does.

`scripted=True` makes the model answer deterministically: attention and MLP outputs are zeroed,
so each next token depends on the current token only, and the output layer maps the prompt's
last token through a fixed chain: a short reasoning, `</think>`, a short answer, end of sequence.
That lets tests check `reasoning_content` and `content` exactly.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"
PAD = "<｜▁pad▁｜>"
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

SCRIPTED_REASONING = "Let me think"
SCRIPTED_ANSWER = "The answer is four!"

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] in ['system', 'developer'] %}{{ message['content'] }}"
    "{% elif message['role'] == 'user' %}" + USER + "{{ message['content'] }}"
    "{% elif message['role'] == 'assistant' %}"
    + ASSISTANT
    + "{{ message['content'] }}"
    + EOS
    + "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}" + ASSISTANT + THINK_OPEN + "\n{% endif %}"
)

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Let me think about the question before I answer it.",
    "The answer is four! Two plus two is four.",
    "DeepSeek R1 reasons step by step, then gives a short answer.",
    "Placing replicas on GPU pools by day and CPU pools at night saves money.",
    "Hello, how are you today? I am fine, thank you.",
    "Continuous batching lets many requests share one forward pass.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000.",
]


@dataclass(frozen=True)
class TinyModelSpec:
    hidden_size: int = 64
    intermediate_size: int = 128
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    context: int = 256
    vocab_size: int = 400
    seed: int = 0
    model_vocab_size: int | None = None
    """Rows of the embedding matrices, when larger than the tokenizer (real Qwen2 checkpoints pad
    their vocabulary beyond the ids the tokenizer knows); None: the tokenizer's size."""


def build_tokenizer(vocab_size: int = 400):  # type: ignore[no-untyped-def]
    """A byte-level BPE tokenizer with R1's special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[BOS, EOS, PAD, USER, ASSISTANT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(CORPUS * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        chat_template=CHAT_TEMPLATE,
    )
    tokenizer.add_tokens([THINK_OPEN, THINK_CLOSE])  # ordinary (not special) tokens, as in R1
    return tokenizer


def build_tiny_model(
    directory: Path, spec: TinyModelSpec | None = None, *, scripted: bool = False
) -> Path:
    """Write a tiny Qwen2 checkpoint with random weights (and its tokenizer) to `directory`."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    spec = spec or TinyModelSpec()
    tokenizer = build_tokenizer(spec.vocab_size)
    config = Qwen2Config(
        vocab_size=spec.model_vocab_size or len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.kv_heads,
        max_position_embeddings=spec.context,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(spec.seed)
    model = Qwen2ForCausalLM(config).eval()  # type: ignore[no-untyped-call]
    if scripted:
        _script(model, tokenizer, spec.seed)
    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def scripted_chain(tokenizer) -> list[int]:  # type: ignore[no-untyped-def]
    """Token ids the scripted model walks after the prompt's final newline."""
    reasoning = tokenizer.encode(SCRIPTED_REASONING, add_special_tokens=False)
    answer = tokenizer.encode(SCRIPTED_ANSWER, add_special_tokens=False)
    close = tokenizer.convert_tokens_to_ids(THINK_CLOSE)
    chain = [*reasoning, close, *answer, tokenizer.eos_token_id]
    newline = tokenizer.encode("\n", add_special_tokens=False)
    full = newline + chain
    if len(set(full)) != len(full):
        raise ValueError("the scripted chain repeats a token; choose other words")
    return [int(token) for token in full]


def _script(model, tokenizer, seed: int) -> None:  # type: ignore[no-untyped-def]
    import torch

    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embeddings = model.model.embed_tokens.weight
        vocab = embeddings.shape[0]
        eos = tokenizer.eos_token_id
        chain = scripted_chain(tokenizer)
        successor = torch.randint(0, vocab, (vocab,), generator=generator)
        successor[successor == eos] = (eos + 1) % vocab
        for current, following in itertools.pairwise(chain):
            successor[current] = following
        unit = embeddings / embeddings.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        head = torch.zeros_like(model.lm_head.weight)
        head.index_add_(0, successor, unit * 40.0)
        model.lm_head.weight.copy_(head)
        # The chain must really be the argmax at every step.
        hidden = model.model.norm(embeddings[torch.tensor(chain[:-1])])
        picked = model.lm_head(hidden).argmax(dim=-1).tolist()
        if picked != chain[1:]:
            raise ValueError("the scripted model does not follow its chain; change the seed")
