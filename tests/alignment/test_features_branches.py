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


@pytest.mark.parametrize("batch_size", [50, 150])  # rows per pass: one image and three images of 50 draws
def test_features_average_independent_draws_on_both_branches(batch_size):
    # the mean of N draws of two independent N(0, 1) noises has variance 2 / N; were b's draw
    # shared by every copy it would be 1 + 1 / N
    model = inject_noise(TwoBranches(), {"a": "gaussian:1.0", "b": "gaussian:1.0"})
    n = 50
    feats = extract_features(model, torch.zeros(3, 2000), ["out"], noise=n, batch_size=batch_size, seed=0)["out"]
    assert feats.shape == (3, 2000)
    assert float(feats.var()) == pytest.approx(2 / n, rel=0.15)


def test_features_are_computed_on_the_models_device_by_default():
    """The batches go where the model's weights are (a model on a GPU was fed CPU batches). The
    ``meta`` device stands in for a GPU here: its forward pass runs, its values cannot be copied out."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).to("meta")
    seen = []
    model.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].device))
    with pytest.raises(NotImplementedError, match="meta"):
        extract_features(model, torch.rand(2, 1, 2, 2), ["1"])
    assert seen == [torch.device("meta")]
    cpu = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    assert extract_features(cpu, torch.rand(2, 1, 2, 2), ["1"])["1"].shape == (2, 3)


def test_noise_draws_keep_the_rows_of_a_pass():
    """Each image is N rows with N draws: align --noise 16 passed 16 x 256 rows at a time (1.6 GB
    per activation of a wide layer)."""
    rows = []
    base = TwoBranches()
    base.out.register_forward_hook(lambda module, inputs, output: rows.append(output.shape[0]))
    model = inject_noise(base, {"a": "gaussian:1.0", "b": "gaussian:1.0"})
    extract_features(model, torch.zeros(10, 4), ["out"], noise=4, batch_size=8, seed=0)
    assert max(rows) <= 8 and sum(rows) == 10 * 4
