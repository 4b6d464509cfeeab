import math

import pytest
import torch

from neuroaikit.errors import ConfigError
from neuroaikit.spiking import (IF, LIF, IFCell, IFParameters, LIFCell, LIFParameters, LIFState, if_step, lif_sequence,
                                lif_step, spike)
from neuroaikit.spiking.surrogate import SURROGATES


def test_subthreshold_lif_matches_closed_form():
    p = LIFParameters(tau_mem=4.0, v_th=100.0)
    beta = math.exp(-1 / 4.0)
    current = torch.full((3,), 0.7)
    state = None
    for t in range(1, 21):
        z, state = lif_step(current, state, p)
        expected = 0.7 * (1 - beta**t) / (1 - beta)
        assert torch.allclose(state.v, torch.full((3,), expected), atol=1e-5)
        assert not z.any()


def test_if_neuron_fires_at_the_right_steps_with_subtract_and_zero_reset():
    x = torch.full((10, 1), 0.3)
    z, _ = lif_sequence(x, None, IFParameters(reset="subtract"))
    # cumulative charge 0.3 t: spikes whenever it crosses another integer (t = 4, 7, 10)
    assert z.flatten().nonzero().flatten().tolist() == [3, 6, 9]
    z, _ = lif_sequence(x, None, IFParameters(reset="zero"))
    # reset to zero loses the overshoot: 0.3, 0.6, 0.9, 1.2 -> spike every 4 steps
    assert z.flatten().nonzero().flatten().tolist() == [3, 7]


def test_spike_is_strictly_above_threshold():
    z, _ = if_step(torch.tensor([1.0, 1.0001]), None)
    assert z.tolist() == [0.0, 1.0]


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_fused_sequence_equals_step_loop_values_and_gradients(reset):
    p = LIFParameters(tau_mem=3.0, reset=reset)
    x = (torch.randn(7, 4, 5) * 1.5).requires_grad_()
    v0 = (torch.rand(4, 5) * 1.5).requires_grad_()
    z0 = (v0.detach() > 1.0).float()
    weights = torch.randn(7, 4, 5)

    def loss(out, final):  # every output of the sequence carries a gradient
        return (out * weights).sum() + final.v.sum() + 2 * final.z.sum()

    state, zs = LIFState(v0, z0), []
    for t in range(7):
        z, state = lif_step(x[t], state, p)
        zs.append(z)
    ref = torch.stack(zs)
    loss(ref, state).backward()
    g_ref, g_v0_ref = x.grad.clone(), v0.grad.clone()
    x.grad = v0.grad = None
    out, final = lif_sequence(x, LIFState(v0, z0), p)
    loss(out, final).backward()
    assert torch.equal(out, ref)
    assert torch.allclose(x.grad, g_ref, atol=1e-5)
    assert torch.allclose(v0.grad, g_v0_ref, atol=1e-5)


def test_modules_wrap_the_step_functions_and_keep_no_state():
    x = torch.rand(6, 2, 3) * 2
    cell, seq = LIFCell(LIFParameters(tau_mem=5.0)), LIF(LIFParameters(tau_mem=5.0))
    state, out = None, []
    for xt in x:
        z, state = cell(xt, state)
        out.append(z)
    z_seq, _ = seq(x)
    assert torch.equal(torch.stack(out), z_seq)
    assert torch.equal(seq(x)[0], z_seq)  # a second call starts from rest again
    assert isinstance(IFCell(), LIFCell) and isinstance(IF(), LIF)


@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_surrogate_gradients_follow_their_formula(name):
    u = torch.linspace(-1, 1, 21, requires_grad=True)
    s = spike(u, name)
    assert torch.equal(s, (u > 0).float())
    s.sum().backward()
    u0 = u.detach()
    expected = {
        "atan": (2 / 2) / (1 + (math.pi / 2 * 2 * u0) ** 2),
        "fast_sigmoid": 1 / (1 + 25 * u0.abs()) ** 2,
        "straight_through": torch.ones_like(u0),
    }[name]
    assert torch.allclose(u.grad, expected)


def test_surrogate_slope_is_configurable():
    u = torch.tensor([0.1], requires_grad=True)
    spike(u, "fast_sigmoid", alpha=10.0).backward()
    assert torch.allclose(u.grad, torch.tensor([1 / (1 + 1.0) ** 2]))


@pytest.mark.parametrize("kwargs, message", [
    ({"tau_mem": -1.0}, "tau_mem"), ({"tau_mem": 0.0}, "tau_mem"), ({"v_th": 0.0}, "threshold"),
    ({"v_th": -1.0}, "threshold"), ({"reset": "soft"}, "reset"), ({"surrogate": "bogus"}, "surrogate"),
    ({"alpha": -2.0}, "alpha"), ({"dt": 0.0}, "dt"), ({"v_th": float("inf")}, "threshold v_th must be a finite"),
    ({"dt": float("inf")}, "dt must be a finite"), ({"tau_mem": float("inf")}, "tau_mem must be a finite"),
    ({"surrogate": "straight_through", "alpha": 5.0}, "alpha applies only to a surrogate with a slope"),
])
def test_bad_parameters_raise_one_line_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message) as info:
        LIFCell(LIFParameters(**kwargs))
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError):
        lif_step(torch.zeros(2), None, LIFParameters(**kwargs))


def test_if_threshold_and_steps_validation():
    with pytest.raises(ConfigError, match="threshold"):
        IF(IFParameters(v_th=0))
    with pytest.raises(ConfigError, match="T >= 1"):
        lif_sequence(torch.zeros(0, 3))
    with pytest.raises(ConfigError, match="beta"):
        LIFParameters.from_beta(1.5)
    assert LIFParameters.from_beta(0.9).beta == pytest.approx(0.9)


@pytest.mark.parametrize("field, value", [("tau_mem", "5"), ("dt", None), ("v_th", "1"), ("alpha", "2"),
                                          ("alpha", float("inf"))])
def test_a_value_of_the_wrong_type_is_a_config_error(field, value):
    """A string or None from a hand-written spec was a raw TypeError from ``math.isfinite``."""
    with pytest.raises(ConfigError, match=rf"{field} must be a finite number > 0, got {value!r}"):
        LIFParameters(**{field: value}).check()
