"""stdp_step and stdp_sequence check their parameters (as lif_step does): a misspelled weight
dependence must not silently train additively, and bad values fail with a ConfigError naming the
field instead of a ZeroDivisionError or a sign-flipped rule."""

from __future__ import annotations

import pytest
import torch

from neuroaikit.errors import ConfigError
from neuroaikit.spiking.plasticity import STDPParameters, stdp_sequence, stdp_step

BAD = [
    (dict(weight_dependence="multiplictive"), "weight_dependence"),
    (dict(tau_pre=0.0), "tau_pre"),
    (dict(tau_post=-1.0), "tau_post"),
    (dict(a_plus=-1.0), "a_plus"),
    (dict(a_minus=float("nan")), "a_minus"),
    (dict(w_min=1.0, w_max=1.0), "w_max"),
]


@pytest.mark.parametrize("fields, named", BAD)
def test_stdp_step_refuses_bad_parameters(fields, named):
    pre, post = torch.ones(2, 3), torch.ones(2, 4)
    with pytest.raises(ConfigError, match=named):
        stdp_step(pre, post, None, STDPParameters(**fields), torch.full((4, 3), 0.5))


@pytest.mark.parametrize("fields, named", BAD)
def test_stdp_sequence_refuses_bad_parameters(fields, named):
    pre, post = torch.ones(5, 2, 3), torch.ones(5, 2, 4)
    with pytest.raises(ConfigError, match=named):
        stdp_sequence(pre, post, STDPParameters(**fields), torch.full((4, 3), 0.5))


def test_valid_parameters_still_run():
    pre, post = torch.ones(5, 2, 3), torch.ones(5, 2, 4)
    params = STDPParameters(weight_dependence="multiplicative")
    dw = stdp_sequence(pre, post, params, torch.full((4, 3), 0.5))
    assert dw.shape == (4, 3) and torch.isfinite(dw).all()
