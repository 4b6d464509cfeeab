"""Small models for tests that count what the code under test asks of a model."""

from __future__ import annotations

import torch


class RowCountingLinear(torch.nn.Module):
    """A linear classifier of flattened inputs that records the rows of every forward pass in
    ``rows``; ``autograd=False`` computes without autograd, as the plasticity networks do."""

    def __init__(self, n_inputs: int, n_classes: int, autograd: bool = True):
        super().__init__()
        self.fc = torch.nn.Linear(n_inputs, n_classes)
        self.autograd = autograd
        self.rows: list[int] = []

    def forward(self, x):
        self.rows.append(x.shape[0])
        with torch.set_grad_enabled(self.autograd and torch.is_grad_enabled()):
            return self.fc(x.flatten(1))
