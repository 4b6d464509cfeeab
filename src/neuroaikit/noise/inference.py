"""Inference rules for stochastic models: one draw, mean of softmaxes, majority vote."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError
from ..execution import model_device
from ..stats import vote_scores
from .draws import forward_draws

RULES = ("single", "mean", "vote")


@dataclass(frozen=True)
class InferenceRule:
    """How a stochastic classifier is deployed.

    ``single``: the class of one noise draw; ``mean``: the class of the mean softmax over
    ``n_draws`` draws; ``vote``: the most frequent class over ``n_draws`` draws (Ukita & Ohki
    vote over 100). Ties in a vote go to the class with the highest mean softmax.
    """

    rule: str = "single"
    n_draws: int = 1

    def __post_init__(self):
        if self.rule not in RULES:
            raise ConfigError(f"inference rule must be one of {', '.join(RULES)}, got {self.rule!r}")
        if int(self.n_draws) < 1:
            raise ConfigError(f"n_draws must be >= 1, got {self.n_draws}")
        if self.rule == "single":
            object.__setattr__(self, "n_draws", 1)

    def probabilities(self, model: nn.Module, x: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        """Class scores ``(B, K)`` under the rule: mean softmax, or vote fractions (+ 1e-6 x mean
        softmax, :func:`neuroaikit.stats.vote_scores`) for ``vote``."""
        return self.scores(_draws_in_chunks(model, x, self.n_draws, chunk))

    def scores(self, draws: torch.Tensor) -> torch.Tensor:
        """Class scores ``(B, K)`` of the logits of draws already taken ``(N, B, K)``: vote
        scores for ``vote``, the mean softmax otherwise."""
        if self.rule == "vote":
            return vote_scores(draws)
        return torch.softmax(draws, dim=-1).mean(0)

    def predict(self, model: nn.Module, x: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        return self.probabilities(model, x, chunk).argmax(-1)


def _draws_in_chunks(model: nn.Module, x: torch.Tensor, n_draws: int, chunk: int | None) -> torch.Tensor:
    chunk = chunk or n_draws
    parts = []
    done = 0
    while done < n_draws:
        n = min(chunk, n_draws - done)
        parts.append(forward_draws(model, x, n))
        done += n
    return torch.cat(parts, 0)


def predict(model: nn.Module, x: torch.Tensor, rule: str = "single", n_draws: int = 1) -> torch.Tensor:
    """Predicted classes ``(B,)`` of ``model`` on ``x`` under an inference rule."""
    return InferenceRule(rule, n_draws).predict(model, x)


@torch.no_grad()
def accuracy(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    rule: str = "single",
    n_draws: int = 1,
    batch_size: int = 500,
) -> float:
    """Fraction of ``images`` classified correctly under the rule, in batches."""
    inference = InferenceRule(rule, n_draws)
    device = model_device(model)
    # vectorised draws multiply the batch: keep the replicated batch near batch_size rows
    step = max(1, batch_size // max(1, min(inference.n_draws, 20)))
    correct = 0
    for start in range(0, len(images), step):
        xb = images[start : start + step].to(device)
        yb = labels[start : start + step].to(device)
        correct += int((inference.predict(model, xb, chunk=20) == yb).sum().item())
    return correct / max(1, len(images))
