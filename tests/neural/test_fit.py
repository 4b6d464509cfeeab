from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch

from neuroaikit.errors import DataError
from neuroaikit.neural import PixelRidge, SyntheticCortex, TwinFitConfig, TwinModelConfig, fit_twin, predict
from neuroaikit.neural.fit import split_validation, validation_correlation
from neuroaikit.neural.metrics import single_trial_correlation


@pytest.fixture(scope="module")
def data():
    cortex = SyntheticCortex(n_neurons=20, image_shape=(12, 16), seed=5, mean_rate=1.0)
    return cortex, cortex.sample(n_train=600, n_validation=60, n_test_images=20, repeats=4)


def test_fit_learns_and_stops_early(data):
    cortex, ds = data
    cfg = TwinFitConfig(model=TwinModelConfig(hidden_channels=8, layers=2), max_epochs=8, patience=2, max_lr_decays=1,
                        batch_size=32)
    model, history = fit_twin(ds, cfg)
    epochs = [r for r in history if "epoch" in r]
    assert history[-1]["best_validation_correlation"] == max(r["validation_correlation"] for r in epochs)
    assert epochs[-1]["validation_correlation"] > epochs[0]["validation_correlation"]
    pred = predict(model, ds, "test")
    assert pred.shape == (80, 20) and (pred > 0).all()
    r = single_trial_correlation(ds.responses[ds.tier_mask("test")], pred).mean()
    assert r > 0.15, r


@pytest.mark.parametrize("settings, reason", [
    # no epoch can beat the best by the tolerance, so the second epoch ends the fit
    (dict(max_epochs=5, patience=1, max_lr_decays=0, tolerance=1.0), "early_stopping"),
    (dict(max_epochs=5, time_limit=1e-3), "time_limit"),
    (dict(max_epochs=1), "max_epochs"),
])
def test_the_history_says_why_the_fit_stopped(data, settings, reason):
    _, ds = data
    cfg = TwinFitConfig(model=TwinModelConfig(hidden_channels=4, layers=1), batch_size=64, **settings)
    _, history = fit_twin(ds, cfg)
    assert history[-1]["stopped_by"] == reason
    assert len(history) - 1 == {"early_stopping": 2, "time_limit": 1, "max_epochs": 1}[reason]


def test_behaviour_modulator_and_shifter_fit(data):
    _, ds = data
    cfg = TwinFitConfig(model=TwinModelConfig(hidden_channels=4, layers=1, use_behavior=True, shifter=True, cortex_grid=False),
                        max_epochs=1)
    model, _ = fit_twin(ds, cfg)
    assert model.modulators is not None and model.shifters is not None
    assert torch.isfinite(torch.as_tensor(predict(model, ds, "validation"))).all()


def test_channels_last_is_a_layout_not_a_different_fit(data):
    """The CPU default (NHWC weights and activations) computes the same fit as NCHW."""
    _, ds = data
    histories, predictions = [], []
    for layout in (True, False):
        cfg = TwinFitConfig(model=TwinModelConfig(hidden_channels=8, layers=2), max_epochs=2, batch_size=32,
                            channels_last=layout)
        model, history = fit_twin(ds, cfg)
        features = model.core(torch.zeros(2, 1, *ds.image_shape[-2:]))
        assert features.is_contiguous() is not layout  # NHWC activations are not NCHW-contiguous
        histories.append([r["validation_correlation"] for r in history if "epoch" in r])
        predictions.append(predict(model, ds, "test"))
    assert histories[0] == pytest.approx(histories[1], abs=1e-4)
    assert predictions[0] == pytest.approx(predictions[1], rel=1e-3, abs=1e-4)


def test_validation_is_carved_from_train_when_missing(data, caplog):
    _, ds = data
    no_val = ds.subset(ds.tiers != "validation")
    with caplog.at_level("INFO"):
        split = split_validation(no_val, 0.1, 0)
    assert (split.tiers == "validation").sum() == 60 and "held out 60 of 600" in caplog.text
    with pytest.raises(DataError, match=r"no train trials to fit on \(tiers present: \['test'\]\); give the trials a "
                                        r"tier column that marks some train$"):
        split_validation(ds.subset("test"), 0.1, 0)


def test_pixel_ridge_baseline(data):
    _, ds = data
    ridge = PixelRidge(size=(6, 8)).fit(ds)
    assert ridge.coef_.shape == (48, 20) and ridge.alpha_ in ridge.alphas
    r = single_trial_correlation(ds.responses[ds.tier_mask("test")], ridge.predict_tier(ds, "test")).mean()
    assert r > 0.05


def test_shared_core_with_one_readout_per_session():
    a = SyntheticCortex(n_neurons=6, image_shape=(10, 12), seed=1).sample(n_train=80, n_validation=10, n_test_images=3, repeats=2)
    b = SyntheticCortex(n_neurons=9, image_shape=(10, 12), seed=2).sample(n_train=60, n_validation=10, n_test_images=3, repeats=2)
    model, history = fit_twin({"mouse_a": a, "mouse_b": b}, TwinFitConfig(model=TwinModelConfig(hidden_channels=4, layers=1), max_epochs=2))
    assert sorted(model.readouts) == ["mouse_a", "mouse_b"]
    assert predict(model, a, "test", session="mouse_a").shape == (6, 6)
    assert predict(model, b, "test", session="mouse_b").shape == (6, 9)
    assert len([r for r in history if "epoch" in r]) == 2
    with pytest.raises(DataError, match="image shapes"):
        fit_twin({"a": a, "c": SyntheticCortex(n_neurons=3, image_shape=(8, 8)).sample(40, 5, 2, 2)}, TwinFitConfig(max_epochs=1))


def test_resume_state_continues_exactly(data):
    """A fit stopped after epoch 2 and resumed from its saved state ends with the same weights
    as one never stopped (the batch order and sampling restart from (seed, epoch))."""
    _, ds = data
    cfg = TwinFitConfig(model=TwinModelConfig(hidden_channels=4, layers=1), max_epochs=3, batch_size=64)
    states = []
    straight, _ = fit_twin(ds, cfg, save_state=lambda s: states.append(copy.deepcopy(s)))
    for state in states[:2]:  # after the first epoch (its starts), and after the second
        resumed, history = fit_twin(ds, cfg, resume_state=state)
        assert [r["epoch"] for r in history if "epoch" in r] == [1, 2, 3]
        for key, value in straight.state_dict().items():
            assert torch.equal(value, resumed.state_dict()[key]), key


def test_the_fit_goes_on_from_the_best_of_its_starts(data):
    """The first epoch is trained from each start, the first being the seed's own initialisation;
    the fit continues from the start with the best validation correlation."""
    _, ds = data
    cfg = TwinFitConfig(model=TwinModelConfig(hidden_channels=4, layers=1), max_epochs=1, batch_size=64)
    _, one = fit_twin(ds, replace(cfg, starts=1))
    model, three = fit_twin(ds, replace(cfg, starts=3))
    assert "starts" not in one[0]
    starts = three[0]["starts"]
    assert len(starts) == 3 and len({s["seed"] for s in starts}) == 3 and starts[0]["seed"] == cfg.seed
    assert starts[0]["validation_correlation"] == pytest.approx(one[0]["validation_correlation"], abs=1e-6)
    best = max(s["validation_correlation"] for s in starts)
    assert three[0]["validation_correlation"] == three[-1]["best_validation_correlation"] == best
    # the model returned is the best start's, not the last one tried
    assert validation_correlation([predict(model, ds, "validation")], [ds]) == pytest.approx(best, abs=1e-6)


def test_extra_starts_take_at_most_a_tenth_of_the_time_limit(data):
    _, ds = data
    cfg = TwinFitConfig(model=TwinModelConfig(hidden_channels=4, layers=1), max_epochs=1, starts=3, time_limit=1e-3)
    _, history = fit_twin(ds, cfg)
    assert [s["seed"] for s in history[0]["starts"]] == [cfg.seed]


def test_bad_fit_settings_are_one_line_errors():
    from neuroaikit.errors import ConfigError

    with pytest.raises(ConfigError, match="time_limit must be a number > 0"):
        TwinFitConfig(time_limit=-5)
    with pytest.raises(ConfigError, match="starts must be an integer >= 1"):
        TwinFitConfig(starts=0)
    with pytest.raises(ConfigError, match="hidden_channels must be an integer >= 1"):
        TwinModelConfig(hidden_channels=0)
    with pytest.raises(ConfigError, match="unknown .* option"):
        TwinFitConfig.from_dict({"hidden_channels": 8})  # model settings live in the nested model config


def test_a_memory_mapped_recording_and_loader_workers_fit_the_same_twin(data, tmp_path, device):
    """Batches gathered from a memory-mapped copy, in DataLoader workers or not (pinned and copied
    to a GPU when there is one), are the same batches: the fit is the same as from memory."""
    from neuroaikit.execution import ExecutionConfig
    from neuroaikit.neural import load_filetree, write_filetree

    _, ds = data
    folder = write_filetree(ds, tmp_path / "rec")
    in_memory = load_filetree(folder, memory_map=False)
    mapped = load_filetree(folder, memory_map=True, cache=tmp_path / "cache")
    results = []
    for recording, workers in ((in_memory, 0), (mapped, 0), (mapped, 1)):
        cfg = TwinFitConfig(model=TwinModelConfig(hidden_channels=4, layers=1), max_epochs=2, loader_workers=workers,
                            execution=ExecutionConfig(device=device))
        model, history = fit_twin(recording, cfg)
        results.append(([r["validation_correlation"] for r in history if "epoch" in r], predict(model, ds, "test")))
    tolerance = 1e-6 if device == "cpu" else 1e-4  # GPU kernels need not sum in one order
    for history, prediction in results[1:]:
        assert history == pytest.approx(results[0][0], abs=tolerance)
        assert prediction == pytest.approx(results[0][1], rel=10 * tolerance, abs=tolerance)
