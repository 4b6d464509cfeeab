import pytest
import torch

from neuroaikit.errors import ConfigError
from neuroaikit.spiking import (DirectEncoder, LatencyEncoder, PoissonEncoder, direct_encode, latency_encode,
                                poisson_encode)


def test_direct_encoding_repeats_the_input():
    x = torch.rand(2, 3)
    out = direct_encode(x, 4)
    assert out.shape == (4, 2, 3) and torch.equal(out[3], x)
    assert DirectEncoder(2)(x).shape == (2, 2, 3)


def test_poisson_rate_matches_intensity():
    x = torch.tensor([0.0, 0.25, 1.0])
    gen = torch.Generator().manual_seed(0)
    out = poisson_encode(x.expand(4000, 3), 10, generator=gen)
    rates = out.mean(dim=(0, 1))
    assert rates[0] == 0 and rates[2] == 1
    assert abs(rates[1].item() - 0.25) < 0.01
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert PoissonEncoder(5)(torch.rand(2, 4)).shape == (5, 2, 4)


def test_latency_one_spike_earlier_for_brighter_inputs():
    x = torch.tensor([1.0, 0.5, 0.0, 0.2])
    out = latency_encode(x, 11)
    assert out.sum(0).tolist() == [1.0, 1.0, 0.0, 1.0]  # below threshold never fires
    first = out.argmax(0)
    assert first[0] == 0 and first[1] == 5 and first[3] == 8
    assert LatencyEncoder(4)(torch.rand(3)).shape == (4, 3)


@pytest.mark.parametrize("encode", [poisson_encode, latency_encode])
@pytest.mark.parametrize("bad", [torch.tensor([1.5]), torch.tensor([-0.1]), torch.tensor([float("nan")])])
def test_inputs_outside_unit_range_raise(encode, bad):
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        encode(bad, 4)


@pytest.mark.parametrize("threshold", [-1.0, 2.0, float("nan"), "0.1"])
def test_a_latency_threshold_outside_the_input_range_is_refused(threshold):
    """Below 0 every zero pixel would fire at the last step; above 1 no pixel would fire."""
    with pytest.raises(ConfigError, match="latency threshold must be a number in \\[0, 1\\]"):
        latency_encode(torch.zeros(2), 4, threshold=threshold)
    with pytest.raises(ConfigError, match="latency threshold"):
        LatencyEncoder(4, threshold=threshold)


def test_numpy_step_counts_are_taken():
    import numpy as np

    assert direct_encode(torch.zeros(1), np.int64(3)).shape[0] == 3


@pytest.mark.parametrize("T", [0, -3, 2.5, "4"])
def test_bad_number_of_steps(T):
    with pytest.raises(ConfigError, match="T"):
        direct_encode(torch.zeros(1), T)
    with pytest.raises(ConfigError):
        PoissonEncoder(T)
