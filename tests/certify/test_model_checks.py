"""What the certifiers check about the model before drawing: batch norm in training mode is refused,
dropout in training mode is warned about once, and randomness drawn once per forward pass (shared
by the batch) gets one pass per draw, so the draws of one image are independent."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from neuroaikit.certify import ABSTAIN, CertificationConfig, GaussianSmoothing, HiddenNoiseCertifier, certify
from neuroaikit.certify.workflow import PAPER_RADII, curve_radii
from neuroaikit.errors import ConfigError
from neuroaikit.noise import inject_noise
from neuroaikit.progress import Progress

P_WRONG = 0.45  # the probability of class 1, the wrong one: the smoothed class is 0 (p_A = 0.55)


class SharedDraw(nn.Module):
    """Logits (0, z - Phi^-1(0.55)) for every input, ``z ~ N(0, 1)`` drawn once per forward pass
    and shared by every row of the batch."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 2)
        with torch.no_grad():
            self.lin.weight.zero_()
            self.lin.bias.zero_()

    def forward(self, x):
        z = torch.randn(())
        return self.lin(x.flatten(1)) + torch.stack([torch.zeros(()), z - stats.norm.ppf(1 - P_WRONG)])


def _repeated_counts(certifier, x: torch.Tensor, n: int, repeats: int) -> np.ndarray:
    return np.array([int(certifier.counts(x, n)[0, 1]) for _ in range(repeats)])


@pytest.mark.parametrize("method", ["smoothing", "hidden"])
def test_draws_of_one_image_are_independent_when_the_model_shares_its_randomness(method, caplog):
    """Class-1 votes of n draws must be Binomial(n, 0.45): variance n p (1 - p). Draws that share
    one pass would give 0 or n votes (variance near n^2 p (1 - p))."""
    torch.manual_seed(0)
    model = SharedDraw().eval()
    x = torch.zeros(1, 1, 2, 2)
    if method == "smoothing":
        certifier = GaussianSmoothing(model, sigma=0.25, max_rows=256)
    else:
        noisy = inject_noise(model, {"input": "gaussian:0.25"})
        certifier = HiddenNoiseCertifier(noisy, input_shape=(1, 2, 2), site="input", max_rows=256)
    n, repeats = 30, 100
    with caplog.at_level(logging.INFO, logger="neuroaikit"):
        votes = _repeated_counts(certifier, x, n, repeats)
    binomial = n * P_WRONG * (1 - P_WRONG)
    assert abs(votes.mean() - n * P_WRONG) < 4 * np.sqrt(binomial / repeats)
    # the sample variance of 100 binomial counts lies within about +-15 % of n p (1 - p)
    assert 0.6 * binomial < votes.var(ddof=1) < 1.6 * binomial
    assert certifier.shared_randomness
    assert [r.getMessage() for r in caplog.records].count(
        "the model's own randomness is drawn once per forward pass and shared by the batch: each image's draws come "
        "from separate passes, one draw per image each") == 1


def test_shared_randomness_does_not_certify_the_wrong_class():
    """CERTIFY with alpha 0.001 may return class 1 (probability 0.45) in at most 0.1 % of runs;
    with the draws of a pass alike, 100 draws in one pass certify it about 0.45 * 0.45 of the time."""
    torch.manual_seed(0)
    smoothed = GaussianSmoothing(SharedDraw().eval(), sigma=0.25, max_rows=256)
    x = torch.zeros(1, 1, 2, 2)
    certified = [smoothed.certify(x, n0=10, n=100, alpha=0.001)[0].item() for _ in range(20)]
    assert certified.count(1) == 0
    assert set(certified) <= {0, ABSTAIN}


def test_per_row_randomness_keeps_batched_draws_and_the_random_stream():
    """A model that draws per row keeps many draws per pass, and checking it leaves the random
    stream as it was: the counts equal those of draws taken without the check."""
    class PerRow(nn.Module):
        def forward(self, x):
            return torch.stack([x.flatten(1).mean(1) * 0 + torch.randn(x.shape[0]), torch.zeros(x.shape[0])], 1)

    x = torch.rand(3, 1, 4, 4)
    smoothed = GaussianSmoothing(PerRow(), sigma=0.5, max_rows=60)
    torch.manual_seed(5)
    counts = smoothed.counts(x, 100)
    assert smoothed.randomness is not None and smoothed.randomness.per_row and not smoothed.shared_randomness
    unchecked = GaussianSmoothing(PerRow(), sigma=0.5, max_rows=60)
    unchecked.randomness = smoothed.randomness  # as if checked already: no check runs
    torch.manual_seed(5)
    assert torch.equal(unchecked.counts(x, 100), counts)


def _batchnorm_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


def test_batch_norm_in_training_mode_is_refused_and_left_untouched():
    net = _batchnorm_net()  # in training mode, as a module is when built
    before = net[1].running_mean.clone()
    message = r"^cannot certify with batch norm left in training mode \(1\): .*call model.eval\(\) first$"
    with pytest.raises(ConfigError, match=message):
        GaussianSmoothing(net, sigma=0.25)
    with pytest.raises(ConfigError, match=message):
        certify(net, torch.rand(4, 1, 8, 8), torch.zeros(4, dtype=torch.long), CertificationConfig(sigma=0.25, n0=5, n=20))
    noisy = inject_noise(net, {"0": "gaussian:1.0"})
    with pytest.raises(ConfigError, match="batch norm left in training mode"):
        HiddenNoiseCertifier(noisy, input_shape=(1, 8, 8), site="0")
    assert torch.equal(net[1].running_mean, before)
    GaussianSmoothing(net.eval(), sigma=0.25).certify(torch.rand(4, 1, 8, 8), n0=5, n=20)  # eval mode: certified
    assert torch.equal(net[1].running_mean, before)


def test_batch_norm_without_running_statistics_is_refused_in_eval_mode_too():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4, track_running_stats=False), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4 * 6 * 6, 3))
    for mode in (net.train(), net.eval()):  # in training mode too: model.eval() would not help
        with pytest.raises(ConfigError, match=r"^cannot certify with batch norm without running statistics \(1; "
                                              r"track_running_stats=False\)"):
            GaussianSmoothing(mode, sigma=0.25)


def test_dropout_in_training_mode_is_warned_about_once(caplog):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3), nn.Dropout(0.5))
    smoothed = GaussianSmoothing(net, sigma=0.25)
    with caplog.at_level(logging.INFO, logger="neuroaikit"):
        smoothed.certify(torch.rand(2, 1, 4, 4), n0=10, n=50)
        smoothed.certify(torch.rand(2, 1, 4, 4), n0=10, n=50)
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warned] == [
        "dropout left in training mode (2): the model is evaluated as the random model it is; call model.eval() "
        "first if it is deployed without dropout"]
    assert net.training  # the model is certified as it is
    lines: list[str] = []
    caplog.clear()
    certificate = certify(nn.Sequential(nn.Flatten(), nn.Linear(16, 3), nn.Dropout(0.5)), torch.rand(3, 1, 4, 4),
                          torch.zeros(3, dtype=torch.long), CertificationConfig(sigma=0.25, n0=5, n=20),
                          progress=Progress(echo=lines.append))
    assert [line for line in lines if "dropout" in line] == [
        "warning: dropout left in training mode (2): the model is evaluated as the random model it is; "
        "call model.eval() first if it is deployed without dropout"]
    assert not [r for r in caplog.records if "dropout" in r.getMessage()]  # said by the job, not twice
    # the certificate keeps it: a caller without progress output (the API's default) still finds it
    assert certificate.warnings == [
        "dropout left in training mode (2): the model is evaluated as the random model it is; "
        "call model.eval() first if it is deployed without dropout"]
    quiet = certify(nn.Sequential(nn.Flatten(), nn.Linear(16, 3), nn.Dropout(0.5)), torch.rand(3, 1, 4, 4),
                    torch.zeros(3, dtype=torch.long), CertificationConfig(sigma=0.25, n0=5, n=20))
    assert quiet.warnings == certificate.warnings
    assert certify(nn.Sequential(nn.Flatten(), nn.Linear(16, 3)), torch.rand(3, 1, 4, 4),
                   torch.zeros(3, dtype=torch.long), CertificationConfig(sigma=0.25, n0=5, n=20)).warnings == []


def test_numpy_numbers_are_taken_and_empty_or_unusable_inputs_refused_in_one_line():
    """Sample sizes, sigma and alpha may be NumPy scalars (as the configurations and attacks take
    them); no images, or a batch size of 0, are one-line errors rather than torch's."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()
    smoothed = GaussianSmoothing(net, sigma=np.float32(0.25))
    assert smoothed.sigma == 0.25
    predictions, radii, _ = smoothed.certify(torch.rand(2, 1, 4, 4), n0=np.int64(10), n=np.int64(50),
                                             alpha=np.float64(0.01))
    assert predictions.shape == radii.shape == (2,)
    with pytest.raises(ConfigError, match="batch_size must be an integer >= 1, got 0"):
        smoothed.predict(torch.rand(2, 1, 4, 4), n=20, batch_size=0)
    with pytest.raises(ConfigError, match="batch_size must be an integer >= 1, got 0"):
        smoothed.certify(torch.rand(2, 1, 4, 4), n0=10, n=50, batch_size=0)
    with pytest.raises(ConfigError, match="sigma must be a finite number > 0"):
        GaussianSmoothing(net, sigma=float("inf"))
    with pytest.raises(ConfigError, match="no images to certify"):
        certify(net, torch.rand(0, 1, 4, 4), torch.zeros(0, dtype=torch.long), CertificationConfig(sigma=0.25))


def test_default_curve_is_21_even_steps_to_the_largest_radius_plus_the_paper_radii():
    radii = [0.0, 0.3, 1.37, 0.8]
    expected = sorted(set(np.round(np.linspace(0, 1.37, 21), 4).tolist()) | {r for r in PAPER_RADII if r <= 1.37})
    assert curve_radii(radii) == expected
    assert curve_radii([0.0, 0.0]) == [0.0]


def test_the_curve_ends_at_or_below_the_largest_radius_never_past_it():
    """Rounded to 4 decimals, 0.0271786 became 0.0272, where no image is certified: the curve's
    last point read 0 at 'the largest certified radius'."""
    grid = curve_radii([0.01, 0.0271786])
    assert grid[-1] == 0.0271 and max(grid) <= 0.0271786
    assert np.round(np.linspace(0, 0.0271786, 21), 4)[10] in grid  # the inner steps as before
    assert curve_radii([0.3])[-1] == 0.3


@pytest.mark.parametrize("name, kwargs", [("snn_mlp", {"T": 3, "encoder": "poisson"}), ("diehl_cook", {})])
def test_a_model_that_takes_only_unit_range_inputs_is_refused_naming_the_smoothing_noise(name, kwargs):
    """Certifying Diehl & Cook failed in its encoder with "expects [0, 1], got range [-0.79, 1.76]",
    which did not say that the smoothing noise had put the pixels there."""
    from neuroaikit.models import build_model
    import neuroaikit.spiking.plasticity  # noqa: F401 - registers diehl_cook

    model = build_model(name, in_channels=1, image_size=8, n_classes=3, **kwargs)
    with pytest.raises(ConfigError, match=r"takes inputs only in \[0, 1\].*adds N\(0, 0.25\^2\) noise"):
        GaussianSmoothing(model, sigma=0.25)
    direct = build_model("snn_mlp", in_channels=1, image_size=8, n_classes=3, T=3)
    assert GaussianSmoothing(direct, sigma=0.25).sigma == 0.25  # the direct encoder takes any input
