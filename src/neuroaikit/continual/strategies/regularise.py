"""Shared parts of the parameter-regularisation strategies (EWC, online EWC, SI)."""

from __future__ import annotations

import torch


def named_parameters(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def quadratic_penalty(model: torch.nn.Module, anchors: dict[str, torch.Tensor],
                      weights: dict[str, torch.Tensor]) -> torch.Tensor:
    """``sum_i w_i (theta_i - anchor_i)^2`` over the model's parameters."""
    total = torch.zeros((), device=next(model.parameters()).device)
    for name, p in named_parameters(model).items():
        if name in weights:
            total = total + (weights[name] * (p - anchors[name]) ** 2).sum()
    return total


def detached_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in named_parameters(model).items()}
