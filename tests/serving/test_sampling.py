"""The server's nucleus sampler draws from exactly the distribution transformers' top-p defines."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, GenerationConfig
from transformers.generation.configuration_utils import ContinuousBatchingConfig
from transformers.generation.continuous_batching.cb_logits_processors import (
    ContinuousBatchingTopPLogitsWarper,
)
from transformers.generation.logits_process import TopPLogitsWarper

from deepseek_operator.serving.sampling import (
    REJECTION_TRIES,
    NucleusSampler,
    install,
    sample_nucleus,
)

LOGITS = torch.tensor([3.0, 2.6, 2.2, 1.5, 0.5, 0.0, -1.0, -3.0])
TOP_P = 0.9
DRAWS = 40_000


def transformers_top_p(scores: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """transformers' own per-request top-p: the reference the sampler must reproduce."""
    warper = ContinuousBatchingTopPLogitsWarper(TopPLogitsWarper(0.5))
    return warper(scores, top_p.to(torch.float32).view(dtype=torch.int32))


def nucleus_distribution(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    masked = transformers_top_p(logits.unsqueeze(0), torch.tensor([top_p]))
    return torch.softmax(masked, dim=-1).squeeze(0)


def frequencies(tries: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(7)
    scores = LOGITS.expand(DRAWS, -1).contiguous()
    drawn = sample_nucleus(scores, torch.full((DRAWS,), TOP_P), tries=tries, generator=generator)
    return torch.bincount(drawn, minlength=LOGITS.numel()).to(torch.float64) / DRAWS


@pytest.mark.parametrize("tries", [REJECTION_TRIES, 0], ids=["rejection", "sorted"])
def test_draws_follow_transformers_nucleus_distribution(tries: int) -> None:
    expected = nucleus_distribution(LOGITS, TOP_P).to(torch.float64)
    # The case must tell a right nucleus from near misses: four tokens are in it, and the fourth
    # is the one whose own mass crosses top-p, which a rule off by one token would drop or keep.
    assert (expected > 0).sum() == 4
    seen = frequencies(tries)
    assert seen[expected == 0].sum() == 0
    # 40,000 draws: the standard error of a share near 0.4 is 0.0025
    assert torch.allclose(seen, expected, atol=0.01), (seen, expected)


def test_draws_at_full_vocabulary_stay_inside_each_rows_nucleus() -> None:
    generator = torch.Generator().manual_seed(3)
    scores = torch.randn(12, 151_936, generator=generator) * 3
    top_p = torch.tensor([1.0, 0.95, 0.9, 0.5, 0.2, 0.05, 0.01, 1e-4, 0.99, 0.7, 0.3, 1.0])
    allowed = torch.isfinite(transformers_top_p(scores, top_p))
    for _ in range(20):
        drawn = sample_nucleus(scores, top_p, generator=generator)
        assert allowed.gather(-1, drawn.unsqueeze(-1)).all()


def test_a_tiny_temperature_draws_the_argmax() -> None:
    scores = torch.randn(6, 151_936, generator=torch.Generator().manual_seed(5)) / 1e-5
    for top_p in (1.0, 0.5):
        drawn = sample_nucleus(scores, torch.full((6,), top_p))
        assert torch.equal(drawn, scores.argmax(dim=-1))


def test_the_processor_leaves_only_the_drawn_token_finite() -> None:
    sampler = NucleusSampler(ContinuousBatchingTopPLogitsWarper(TopPLogitsWarper(0.5)))
    scores = torch.randn(4, 1000)
    chosen = sampler(scores, torch.full((4,), 0.9).view(dtype=torch.int32))
    assert (torch.isfinite(chosen).sum(dim=-1) == 1).all()


def test_install_swaps_top_p_for_the_sampler_and_draws_by_argmax(random_weights: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(random_weights)
    config = GenerationConfig(do_sample=True, temperature=0.5, top_p=0.5, top_k=None)  # type: ignore[no-untyped-call]
    manager = model.init_continuous_batching(
        generation_config=config,
        continuous_batching_config=ContinuousBatchingConfig(per_request_processors=True),
    )
    install(manager)
    assert isinstance(manager.logit_processor.logits_processor[-1], NucleusSampler)
    assert manager.generation_config.do_sample is False


def test_install_refuses_a_manager_without_top_p_last(random_weights: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(random_weights)
    config = GenerationConfig(do_sample=True, temperature=0.5, top_p=None, top_k=None)  # type: ignore[no-untyped-call]
    manager = model.init_continuous_batching(generation_config=config)
    with pytest.raises(RuntimeError, match="top-p processor last"):
        install(manager)
