"""The pupil / shifter path on data in rig units (eye-camera pixels, cm/s): the shifter sees
standardised pupil centres, readout positions keep their gradient at the grid border, and
behaviour plus shifter beat images alone when the simulated cortex has real gain modulation
and eye movements."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroaikit.neural import CortexTwin, SyntheticCortex, TwinFitConfig, TwinModelConfig, fit_twin
from neuroaikit.neural.fit import build_twin_for
from neuroaikit.neural.models import GaussianReadout
from neuroaikit.neural.simulate import EYE_CENTER_PX


@pytest.fixture(scope="module")
def moving_eye():
    cortex = SyntheticCortex(n_neurons=30, image_shape=(12, 16), seed=3, mean_rate=1.0, behavior_modulation=0.5,
                             eye_shift=1.5)
    return cortex.sample(n_train=600, n_validation=100, n_test_images=10, repeats=3)


def test_synthetic_behaviour_is_in_rig_units(moving_eye):
    pupil, behavior = moving_eye.pupil_center, moving_eye.behavior
    np.testing.assert_allclose(pupil.mean(0), EYE_CENTER_PX, atol=3.0)  # eye-camera pixels, not z-scores
    assert 2.0 < pupil.std(0).min() and pupil.std(0).max() < 10.0
    assert 10 < behavior[:, 0].mean() < 30  # pupil dilation (px)
    running = behavior[:, 2]
    assert (running >= 0).all() and (running < 1).mean() > 0.2 and running.max() > 15  # cm/s: sitting and running


def test_shifter_input_is_standardised_with_train_statistics(moving_eye):
    cfg = TwinFitConfig(model=TwinModelConfig(hidden_channels=4, layers=1, use_behavior=True, shifter=True))
    model, _ = build_twin_for(moving_eye, cfg)
    mean, std = model.pupil_scaling()
    train = moving_eye.pupil_center[moving_eye.tier_mask("train")]
    np.testing.assert_allclose(mean.numpy(), train.mean(0), rtol=1e-5)
    np.testing.assert_allclose(std.numpy(), train.std(0, ddof=1), rtol=1e-4)
    # a fresh shifter does not move the readout, whatever the pixel frame of the eye camera
    shift = model.shifters["session0"]((torch.as_tensor(train[:5]) - mean) / std)
    assert torch.count_nonzero(shift) == 0
    # the scaling travels with the weights
    assert {"pupil_mean_session0", "pupil_std_session0"} <= set(model.state_dict())


def test_a_twin_saved_without_pupil_scaling_still_loads():
    model = CortexTwin((1, 8, 8), 3, hidden_channels=2, layers=1, shifter=True)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("pupil_")}
    model.load_state_dict(state)
    assert model.pupil_scaling()[1].tolist() == [1.0, 1.0]


def test_readout_positions_past_the_border_keep_their_gradient():
    readout = GaussianReadout((2, 6, 6), 4, init_mu_range=0.0).eval()
    features = torch.rand(3, 2, 6, 6)
    shift = torch.full((3, 2), 1.5, requires_grad=True)  # pushes every neuron off the grid
    readout(features, shift).sum().backward()
    assert shift.grad is not None and shift.grad.abs().sum() > 0
    assert readout.mu.grad is not None and readout.mu.grad.abs().sum() > 0


def test_shifter_explains_only_deviations_from_the_mean_eye_position():
    """A constant shift would duplicate the readout positions (and drifted with them, pushing the
    readouts off the grid on a Lurz-size recording): at the mean eye position the shift is 0
    whatever the shifter's weights, and elsewhere it still moves."""
    from neuroaikit.neural.models import Shifter

    shifter = Shifter()
    with torch.no_grad():
        for p in shifter.parameters():
            p.copy_(torch.randn_like(p) + 0.5)  # far from the zero start, with a large output bias
    mean_eye = torch.zeros(3, 2)  # standardised pupil centre: the train-tier mean
    assert shifter(mean_eye).abs().max() < 1e-6
    assert shifter(torch.tensor([[1.5, -1.0]])).abs().max() > 1e-3


def test_behaviour_and_shifter_beat_images_alone(moving_eye):
    """Fails on the unstandardised shifter: raw pixel centres saturate its tanh units into a
    constant shift that pushes the readout off the grid, and the twin gets worse than without it."""
    scores = {}
    for name, behavior, shifter in (("images", False, False), ("behavior", True, False), ("behavior+shifter", True, True)):
        cfg = TwinFitConfig(model=TwinModelConfig(hidden_channels=8, layers=2, use_behavior=behavior, shifter=shifter),
                            max_epochs=6, batch_size=32)
        _, history = fit_twin(moving_eye, cfg)
        scores[name] = history[-1]["best_validation_correlation"]
    assert scores["behavior"] > scores["images"], scores
    assert scores["behavior+shifter"] > scores["behavior"] + 0.05, scores


def test_an_older_run_saved_with_a_now_refused_setting_still_names_its_data(tmp_path):
    """A run fitted before ``--shifter`` with the factorized readout (or ``--region`` with the
    synthetic cortex) was refused still evaluates on the data it recorded, rather than saying
    config.json records none."""
    from types import SimpleNamespace

    from neuroaikit.config import UnusedSettingError
    from neuroaikit.neural.twin import TwinFitJob, _job_of

    saved = TwinFitJob(data="synthetic").to_dict()
    saved["fit"]["model"].update(shifter=True, readout="factorized")
    saved["fit"]["max_epochs"] = 7
    with pytest.raises(UnusedSettingError):
        TwinFitJob.from_dict(saved)
    job = _job_of(SimpleNamespace(config=saved, path=tmp_path))
    assert job is not None and job.data == "synthetic"
    # only the refused setting is left out: the rest of the recorded fit is read back
    assert job.fit.max_epochs == 7 and job.fit.model.readout == "factorized" and not job.fit.model.shifter
    assert saved["fit"]["model"]["shifter"] is True  # the run's own record is not changed
    transfer = {**TwinFitJob(data="synthetic").to_dict(), "core_from": str(tmp_path)}
    transfer["fit"]["model"]["hidden_channels"] = 48  # taken from the copied core: refused since
    with pytest.raises(UnusedSettingError) as raised:
        TwinFitJob.from_dict(transfer)
    assert (raised.value.field, raised.value.path) == ("hidden_channels", ("fit", "model"))
    job = _job_of(SimpleNamespace(config=transfer, path=tmp_path))
    assert job is not None and job.core_from == str(tmp_path)
    saved = {**TwinFitJob(data="synthetic").to_dict(), "region": 2}
    job = _job_of(SimpleNamespace(config=saved, path=tmp_path))
    assert job is not None and job.data == "synthetic" and job.region is None
    saved["fit"]["model"].update(shifter=True, readout="factorized")  # both at once
    job = _job_of(SimpleNamespace(config=saved, path=tmp_path))
    assert job is not None and job.data == "synthetic" and job.region is None


def test_an_older_run_with_a_now_refused_simulator_setting_keeps_its_recorded_simulator(tmp_path):
    """A run simulated with ``tau`` but no calcium (a setting that shaped nothing) is read back
    with its other simulator settings, not with the default simulator."""
    from types import SimpleNamespace

    from neuroaikit.config import UnusedSettingError
    from neuroaikit.neural.simulate import SyntheticDataConfig
    from neuroaikit.neural.twin import TwinFitJob, _job_of

    saved = TwinFitJob(data="synthetic", synthetic=SyntheticDataConfig.from_flat({"n_neurons": 7})).to_dict()
    saved["synthetic"]["cortex"].update(tau=1.0, channel_correlation=0.2)
    saved["fit"]["model"].update(shifter=True, readout="factorized")  # and a refused model setting
    with pytest.raises(UnusedSettingError):
        TwinFitJob.from_dict(saved)
    job = _job_of(SimpleNamespace(config=saved, path=tmp_path))
    assert job is not None and job.data == "synthetic"
    assert job.synthetic.cortex.n_neurons == 7 and job.synthetic.cortex.tau == 0.6
