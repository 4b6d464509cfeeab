"""Randomness detection and training mode: randomness that a forward ties to ``self.training``
without a dropout module (``F.dropout(x, training=self.training)``) is found to disappear under
``model.eval()``, and the model's own modes are left as they were."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from neuroaikit.attacks import detect_randomness


class FunctionalDropout(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 3)

    def forward(self, x):
        return self.lin(F.dropout(x.flatten(1), 0.5, training=self.training))


def test_functional_dropout_is_random_only_in_training_mode():
    torch.manual_seed(0)
    model = FunctionalDropout()  # left in training mode
    x = torch.rand(16, 1, 2, 4)
    found = detect_randomness(model, x, declare=False)
    assert model.training and model.lin.training  # modes as they were
    # what eval() does to the model itself, computed directly: repeated passes agree
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    model.train()
    with torch.no_grad():
        assert not torch.equal(model(x), model(x))
    assert found.own_randomness and found.per_row and not found.own_randomness_in_eval
    assert found.training_modules == []  # no dropout or batch-norm module to name
    assert found.warnings == ["the randomness disappears under model.eval(): it comes from modules left in "
                              "training mode"]
    assert found.describe().startswith("stochastic: the model's own forward pass (only in training mode)")


def test_randomness_in_eval_mode_is_still_found_with_modules_in_training_mode():
    """A module in training mode makes the check rerun under eval(); noise that ignores the mode stays."""
    class Noisy(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(8, 3)

        def forward(self, x):
            return self.lin(x.flatten(1)) + torch.randn(x.shape[0], 3)

    found = detect_randomness(Noisy(), torch.rand(4, 1, 2, 4), declare=False)
    assert found.own_randomness and found.own_randomness_in_eval and found.warnings == []
