from __future__ import annotations

import numpy as np
import pytest

from neuroaikit.neural import SyntheticCortex
from neuroaikit.neural.metrics import oracle_correlation


def test_known_rfs_tiers_and_repeats():
    cortex = SyntheticCortex(n_neurons=20, image_shape=(18, 32), seed=0)
    ds = cortex.sample(n_train=60, n_validation=10, n_test_images=6, repeats=4, n_final_test_images=2)
    assert ds.tier_names == ["train", "validation", "test", "final_test"]
    assert ds.repeats("test").shape == (6, 4, 20) and ds.repeats("final_test").shape == (2, 4, 20)
    c = cortex.rf_centers_
    assert (c[:, 0] >= 0).all() and (c[:, 0] <= 31).all() and (c[:, 1] <= 17).all()
    # the energy of each filter peaks near its stated centre
    energy = cortex.filters_[0] ** 2 + cortex.filters_[1] ** 2
    peak = np.array([np.unravel_index(e.argmax(), e.shape)[::-1] for e in energy])
    assert np.median(np.linalg.norm(peak - c, axis=1)) < 1.5
    assert (ds.responses >= 0).all()


def test_variance_grows_with_the_mean():
    cortex = SyntheticCortex(n_neurons=30, image_shape=(12, 16), seed=1)
    ds = cortex.sample(n_train=10, n_validation=2, n_test_images=40, repeats=20)
    rep = ds.repeats("test")
    mean, var = rep.mean(1).ravel(), rep.var(1).ravel()
    assert np.corrcoef(mean, var)[0, 1] > 0.8
    assert 0.1 < oracle_correlation(rep).mean() < 0.95


def test_calcium_dynamics_carry_over_between_trials():
    cortex = SyntheticCortex(n_neurons=10, image_shape=(12, 16), seed=2, calcium=True, tau=1.0, calcium_noise=0.0)
    ds = cortex.sample(n_train=300, n_validation=10, n_test_images=2, repeats=2)
    order = np.argsort(ds.trial_ids)
    r = ds.responses[order]
    lagged = np.mean([np.corrcoef(r[1:, i], r[:-1, i])[0, 1] for i in range(10)])
    assert lagged > 0.3  # slow indicator: each trial still holds the previous trial's calcium
    assert ds.response_kind == "dff"


def test_surround_contrast_suppresses_the_response():
    """Contrast in the annulus around a receptive field divides the response (and only with
    ``surround_suppression`` > 0): the same centre, a busier surround, a smaller rate."""
    kw = dict(n_neurons=40, image_shape=(36, 64), seed=3, kinds=(1.0, 0.0, 0.0))
    plain, suppressed = SyntheticCortex(**kw).build(), SyntheticCortex(surround_suppression=3.0, **kw).build()
    rng = np.random.default_rng(0)
    centre = np.clip(127.5 + 60 * rng.standard_normal((200, 36, 64)), 0, 255).astype(np.float32)
    quiet = np.full_like(centre, 127.5)
    yy, xx = np.mgrid[0:36, 0:64]
    ratios = []
    for i in range(40):
        r2 = (xx - suppressed.rf_centers_[i, 0]) ** 2 + (yy - suppressed.rf_centers_[i, 1]) ** 2
        inside = r2 <= (1.5 * suppressed.sigma_[i]) ** 2
        alone = np.where(inside, centre, quiet)  # the RF driven, a grey surround
        busy = np.where(inside, centre, centre[::-1])  # the same centre, a textured surround
        ratios.append([m.rates(busy)[:, i].mean() / max(m.rates(alone)[:, i].mean(), 1e-9) for m in (plain, suppressed)])
    ratios = np.array(ratios)
    strong = suppressed.suppression_ > 1.5
    assert np.median(ratios[strong, 1]) < 0.8 * np.median(ratios[strong, 0])
    assert plain.suppression_.max() == 0


def test_shared_gain_noise_over_disperses_without_changing_the_mean_rates():
    kw = dict(n_neurons=30, image_shape=(12, 16), seed=2)
    fano = {}
    for gain_noise in (0.0, 0.5):
        ds = SyntheticCortex(gain_noise=gain_noise, **kw).sample(n_train=10, n_validation=2, n_test_images=30, repeats=30)
        rep = ds.repeats("test")
        mean, var = rep.mean(1), rep.var(1)
        fano[gain_noise] = var[mean > 0.2].sum() / mean[mean > 0.2].sum()  # many rates are rectified to 0
        rates = ds.info["rates"]
    base = SyntheticCortex(**kw).sample(n_train=10, n_validation=2, n_test_images=30, repeats=30).info["rates"]
    np.testing.assert_allclose(rates, base, rtol=1e-6)  # the noise-free rates (the oracle) are unchanged
    assert fano[0.5] > 1.3 * fano[0.0]


def test_realistic_cortex_is_as_hard_to_predict_as_a_real_recording():
    """Its jackknife oracle is near a real Sensorium mouse's (~0.38), where the plain default's is ~0.6."""
    cortex = SyntheticCortex.realistic(n_neurons=150, seed=4)
    assert cortex.calcium and cortex.gain_noise > 0 and cortex.surround_suppression > 0
    ds = cortex.sample(n_train=100, n_validation=0, n_test_images=60, repeats=10)
    oracle = oracle_correlation(ds.repeats("test")).mean()
    assert 0.3 < oracle < 0.46, oracle
    assert SyntheticCortex.realistic(seed=1, mean_rate=1.0).mean_rate == 1.0  # overrides win


def test_synthetic_presets_from_flat_options():
    from neuroaikit.errors import ConfigError
    from neuroaikit.neural.simulate import SyntheticDataConfig

    cfg = SyntheticDataConfig.from_flat({"preset": "realistic", "n_neurons": 12, "gain_noise": 0.1})
    assert cfg.cortex.calcium and cfg.cortex.surround_suppression == SyntheticCortex.REALISTIC["surround_suppression"]
    assert cfg.cortex.gain_noise == 0.1 and cfg.cortex.n_neurons == 12  # explicit keys override the preset
    assert not SyntheticDataConfig.from_flat({"n_neurons": 12}).cortex.calcium
    with pytest.raises(ConfigError, match="preset must be one of plain, realistic"):
        SyntheticDataConfig.from_flat({"preset": "real"})


@pytest.mark.parametrize("settings, unused", [
    ({"tau": 1.0}, "tau applies only with calcium"),
    ({"trial_duration": 1.0}, "trial_duration applies only with calcium"),
    ({"calcium_noise": 0.0}, "calcium_noise applies only with calcium"),
    ({"channel_correlation": 0.2}, "channel_correlation applies only with image_channels > 1"),
])
def test_a_simulator_setting_the_simulation_would_not_use_is_refused(settings, unused):
    """Each was accepted, recorded in the run's config.json and ignored."""
    from neuroaikit.config import UnusedSettingError
    from neuroaikit.neural.simulate import SyntheticDataConfig

    with pytest.raises(UnusedSettingError, match=unused):
        SyntheticCortex(n_neurons=5, **settings)
    with pytest.raises(UnusedSettingError, match=unused):
        SyntheticDataConfig.from_flat({"n_neurons": 5, **settings})
    used = {"calcium": True} if "channel_correlation" not in settings else {"image_channels": 2}
    assert SyntheticCortex(n_neurons=5, **settings, **used).n_neurons == 5
    assert SyntheticDataConfig.from_flat({"preset": "realistic", "tau": 1.0}).cortex.tau == 1.0  # the preset has calcium
    SyntheticCortex(n_neurons=5, tau=0.6)  # the default is no setting
