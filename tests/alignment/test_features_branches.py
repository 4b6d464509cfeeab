"""Mean-over-draws features of a model whose noise sits on two parallel branches."""

import pytest
import torch
from torch import nn

from neuroaikit.alignment import extract_features
from neuroaikit.noise import inject_noise


class TwoBranches(nn.Module):
    """``out(a(x) + b(x))``: the noise at ``b`` sits on a branch that skips the noise at ``a``."""

    def __init__(self):
        super().__init__()
        self.a = nn.Identity()
        self.b = nn.Identity()
        self.out = nn.Identity()

    def forward(self, x):
        return self.out(self.a(x) + self.b(x))


@pytest.mark.parametrize("batch_size", [1, 3])
def test_features_average_independent_draws_on_both_branches(batch_size):
    # the mean of N draws of two independent N(0, 1) noises has variance 2 / N; were b's draw
    # shared by every copy it would be 1 + 1 / N
    model = inject_noise(TwoBranches(), {"a": "gaussian:1.0", "b": "gaussian:1.0"})
    n = 50
    feats = extract_features(model, torch.zeros(3, 2000), ["out"], noise=n, batch_size=batch_size, seed=0)["out"]
    assert feats.shape == (3, 2000)
    assert float(feats.var()) == pytest.approx(2 / n, rel=0.15)
