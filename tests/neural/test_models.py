from __future__ import annotations

import pytest
import torch

from neuroaikit.models import build_from_spec, build_model, model_spec
from neuroaikit.neural import CortexTwin, FactorizedReadout, GaussianReadout, Stacked2dCore


@pytest.mark.parametrize("name", ["twin", "twin-ln"])
@pytest.mark.parametrize("readout", ["gaussian", "factorized"])
def test_built_from_shapes_alone(name, readout):
    model = build_model(name, image_shape=(1, 12, 20), n_neurons=7, readout=readout, hidden_channels=4, layers=2)
    out = model(torch.rand(3, 1, 12, 20))
    assert out.shape == (3, 7) and (out > 0).all()  # ELU + 1
    assert torch.isfinite(model.regularizer())
    spec = model_spec(name, {"image_shape": [1, 12, 20], "n_neurons": 7, "readout": readout, "hidden_channels": 4, "layers": 2})
    rebuilt = build_from_spec(spec)
    rebuilt.load_state_dict(model.state_dict())
    model.eval(), rebuilt.eval()
    x = torch.rand(2, 1, 12, 20)
    torch.testing.assert_close(model(x), rebuilt(x))


def test_linear_core_is_linear():
    core = Stacked2dCore(1, 4, layers=3, linear=True).eval()
    a, b = torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8)
    base = core(torch.zeros(1, 1, 8, 8))
    torch.testing.assert_close(core(a + b) - base, (core(a) - base) + (core(b) - base), atol=1e-5, rtol=1e-4)


def test_gaussian_readout_reads_at_mu_and_uses_cortex_grid():
    readout = GaussianReadout((1, 5, 5), 1, init_sigma=0.0).eval()
    with torch.no_grad():
        readout.mu.copy_(torch.tensor([[1.0, -1.0]]))  # x right, y top
        readout.weight.fill_(1.0)
    feat = torch.zeros(1, 1, 5, 5)
    feat[0, 0, 0, 4] = 3.0
    assert readout(feat).item() == pytest.approx(3.0)
    grid = GaussianReadout((2, 5, 5), 4, cortex_grid=True)
    grid.set_positions(torch.rand(4, 3))
    assert grid.grid_mean().shape == (4, 2)
    assert grid.grid_mean().requires_grad
    fac = FactorizedReadout((2, 5, 5), 3)
    assert fac(torch.rand(2, 2, 5, 5)).shape == (2, 3) and fac.grid_mean().shape == (3, 2)


def test_sessions_behaviour_and_shifter():
    model = CortexTwin((1, 10, 12), {"mouse_a": 3, "mouse_b": 5}, hidden_channels=4, layers=2, n_behavior=3, shifter=True).eval()
    x, beh, pupil = torch.rand(2, 1, 10, 12), torch.rand(2, 3), torch.rand(2, 2)
    assert model(x, beh, pupil, session="mouse_a").shape == (2, 3)
    assert model(x, beh, pupil, session="mouse_b").shape == (2, 5)
    assert model.core is model.core  # one shared core
    with pytest.raises(ValueError, match="name one"):
        model(x)
    with pytest.raises(ValueError, match="unknown session"):
        model(x, session="mouse_c")


def test_the_factorized_readouts_centre_of_mass_follows_the_twins_dtype():
    """``grid_mean`` built its grid in float32 on the CPU: after ``.double()`` (or on a GPU) it failed."""
    twin = CortexTwin(image_shape=(1, 12, 16), n_neurons=4, readout="factorized").double()
    readout = twin.readouts[twin.sessions[0]]
    centre = readout.grid_mean()
    assert centre.dtype == torch.float64 and centre.shape == (4, 2) and centre.abs().max() <= 1
