"""Shared parts of the parameter-regularisation strategies (EWC, online EWC, SI)."""

from __future__ import annotations

import torch


def named_parameters(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


class _WeightedSquares(torch.autograd.Function):
    """``sum w (theta - anchor)^2`` and its gradient ``2 w (theta - anchor)``: a pass over the
    weights each way, where autograd's chain of sub, pow, mul and sum takes several (the penalty
    is as large as the network, and is paid at every step)."""

    @staticmethod
    def forward(ctx, theta, anchor, weight, keep):
        with torch.autocast(theta.device.type, enabled=False):
            gap = theta.detach().float() - anchor
            weighted = weight * gap
            value = torch.dot(weighted.reshape(-1), gap.reshape(-1))
        ctx.save_for_backward(weighted)
        ctx.theta_dtype = theta.dtype
        if keep is not None:
            keep.append(weighted)
        return value

    @staticmethod
    def backward(ctx, grad_value):
        (weighted,) = ctx.saved_tensors
        return (weighted * (2.0 * grad_value)).to(ctx.theta_dtype), None, None, None


def quadratic_penalty(model: torch.nn.Module, anchors: dict[str, torch.Tensor],
                      weights: dict[str, torch.Tensor], keep: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """``sum_i w_i (theta_i - anchor_i)^2`` over the model's parameters; ``keep`` receives each
    parameter's ``w (theta - anchor)`` (half the penalty's gradient, for callers that need it)."""
    total = torch.zeros((), device=next(model.parameters()).device)
    for name, p in named_parameters(model).items():
        if name in weights:
            kept: list[torch.Tensor] | None = [] if keep is not None else None
            total = total + _WeightedSquares.apply(p, anchors[name], weights[name], kept)
            if keep is not None and kept:
                keep[name] = kept[0]
    return total


def detached_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in named_parameters(model).items()}
