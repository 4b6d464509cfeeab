"""Pseudo-online windows see no future, noise is the same for every decoder at an SNR, two-class
decoders get MOABB's ROC-AUC, the ITR's time per selection runs from the cue."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from neuroaikit.bmi.epochs import EpochsDataset, PreprocessConfig, preprocess
from neuroaikit.bmi.evaluation import cross_validate, pseudo_online
from neuroaikit.bmi.robustness import SensorNoise
from neuroaikit.errors import ConfigError

from .test_evaluation import _MeanClassifier

SFREQ = 256.0


def _raw_with_late_signal(onset_s=6.0, duration_s=12.0):
    """Two channels, silent until ``onset_s``, then a 13-Hz sinusoid."""
    import mne

    t = np.arange(int(duration_s * SFREQ)) / SFREQ
    data = np.where(t >= onset_s, np.sin(2 * np.pi * 13 * t), 0.0) * 1e-5
    info = mne.create_info(["O1", "O2"], SFREQ, "eeg")
    return mne.io.RawArray(np.stack([data, data]), info, verbose="error"), t, onset_s


@pytest.mark.parametrize("recipe", [PreprocessConfig(l_freq=7.0, h_freq=45.0),
                                    PreprocessConfig(filter_bank=[[12.5, 13.5], [16.5, 17.5]])])
def test_causal_filtering_puts_nothing_before_the_signal(recipe):
    raw, t, onset = _raw_with_late_signal()
    before = t < onset
    zero_phase, _ = preprocess(raw, recipe)
    causal, _ = preprocess(raw, recipe.replace(causal=True))
    for zp, c in zip(zero_phase, causal):
        # zero phase: the filter's backward pass carries the sinusoid to before its onset (the leak
        # a pseudo-online window would read); causal: nothing can come before the input
        assert np.abs(zp.get_data()[:, before]).max() > 1e-3 * np.abs(zp.get_data()).max()
        assert np.abs(c.get_data()[:, before]).max() == 0.0
        assert np.abs(c.get_data()[:, ~before]).max() > 0


def test_causal_recipe_refuses_resampling():
    with pytest.raises(ConfigError, match="causal recipe cannot resample"):
        PreprocessConfig(l_freq=7.0, h_freq=45.0, causal=True, resample=128.0)


class _Threshold(_MeanClassifier):
    """The mean-amplitude threshold with a decision function (scores for the ROC-AUC)."""

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        return super().fit(X, y)

    def decision_function(self, X):
        return X.mean((1, 2)) - self.t_


def _two_class(tmin=0.0, n=40):
    rng = np.random.default_rng(3)
    y = np.tile([0, 1], n // 2)
    X = rng.normal(size=(n, 2, 30)) + 0.4 * y[:, None, None]
    return EpochsDataset(X, y, ["left", "right"], 10.0, ["C3", "C4"], tmin=tmin)


def test_roc_auc_is_the_mean_of_each_folds_auc():
    ds = _two_class()
    pred = cross_validate(_Threshold(), ds, "within-session", folds=5, seed=42)
    expected = []
    for train, test in StratifiedKFold(5, shuffle=True, random_state=42).split(ds.X, ds.y):
        model = _Threshold().fit(ds.X[train], ds.y[train])
        expected.append(roc_auc_score(ds.y[test], model.decision_function(ds.X[test])))
    assert pred.roc_auc == pytest.approx(np.mean(expected), abs=1e-12)
    # ranking, not the thresholded accuracy: the two differ on these data
    assert pred.roc_auc != pytest.approx(pred.accuracy)


def test_pseudo_online_latency_counts_from_the_cue():
    ds = _two_class(tmin=2.0)
    rows = pseudo_online(_Threshold(), ds, [1.0, 2.0], folds=5)
    for row in rows:
        assert row["latency_s"] == pytest.approx(2.0 + row["window_s"] + row["inference_s_per_window"])


def _filtered(white, band, pad):
    import mne

    out = mne.filter.filter_data(white, SFREQ, band[0], band[1], method="iir", verbose="error")
    return out[..., pad:out.shape[-1] - pad]


def test_sensor_noise_is_one_white_draw_through_the_recipes_filters_at_the_stated_snr():
    rng = np.random.default_rng(0)
    n_trials, n_electrodes, n_samples = 4, 3, 257
    reference = rng.normal(size=(n_trials, n_electrodes, n_samples)) * np.array([1.0, 2.0, 3.0, 4.0])[:, None, None]
    power = (reference ** 2).mean(axis=(1, 2))
    bank = [[12.5, 13.5], [16.5, 17.5]]
    plain_noise = SensorNoise(SFREQ, [[7.0, 45.0]], [7.0, 45.0], power)
    bank_noise = SensorNoise(SFREQ, bank, [7.0, 45.0], power)
    snr = 5.0
    added_plain = plain_noise.add(np.zeros_like(reference), snr, np.random.default_rng(1))
    added_bank = bank_noise.add(np.zeros((n_trials, 2 * n_electrodes, n_samples)), snr, np.random.default_rng(1))
    # the SNR in the reference band is the one stated, trial by trial
    np.testing.assert_allclose((added_plain ** 2).mean(axis=(1, 2)), power / 10 ** (snr / 10), rtol=1e-9)
    # independently: one white draw per electrode, each band its filter of it, one scale per trial
    pad = int(2.0 * SFREQ)
    white = np.random.default_rng(1).standard_normal((n_trials, n_electrodes, n_samples + 2 * pad))
    in_band = _filtered(white, [7.0, 45.0], pad)
    scale = np.sqrt(power / 10 ** (snr / 10) / (in_band ** 2).mean(axis=(1, 2)))[:, None, None]
    np.testing.assert_allclose(added_plain, scale * in_band, rtol=1e-9, atol=1e-12)
    expected_bank = np.concatenate([scale * _filtered(white, band, pad) for band in bank], axis=1)
    np.testing.assert_allclose(added_bank, expected_bank, rtol=1e-9, atol=1e-12)


def test_filter_bank_csp_reads_a_band_that_holds_its_bank():
    from neuroaikit.bmi.decoders.spatial import FBCSP_BANDS
    from neuroaikit.bmi.workflow import BMIConfig, recipe_for

    config = BMIConfig(dataset="physionet-mi", decoders=["csp_lda", "fbcsp_lda"])
    fbcsp = recipe_for(config, "fbcsp_lda")
    assert fbcsp.l_freq <= min(lo for lo, _ in FBCSP_BANDS) and fbcsp.h_freq >= max(hi for _, hi in FBCSP_BANDS)
    assert (recipe_for(config, "csp_lda").l_freq, recipe_for(config, "csp_lda").h_freq) == (8.0, 32.0)
    assert recipe_for(config, "csp_lda", causal=True).causal


def test_selection_time_runs_from_the_cue_to_the_epochs_end():
    from neuroaikit.bmi.workflow import BMIConfig, selection_time

    assert selection_time(BMIConfig(dataset="ssvep-exo")) == 4.0  # epochs 2-4 s after the cue
    assert selection_time(BMIConfig(dataset="physionet-mi", decoders=["csp_lda"])) == 3.0
    assert selection_time(BMIConfig(dataset="ssvep-exo", selection_s=6.5)) == 6.5


def test_channel_sd_range_is_over_subjects_and_channels():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 2, 50)) * np.array([1.0, 3.0])[None, :, None]
    X[4:] *= 2
    ds = EpochsDataset(X, np.tile([0, 1], 4), ["a", "b"], 10.0, ["C3", "C4"], subject=np.repeat([1, 2], 4))
    sds = [X[:4].std(axis=(0, 2)), X[4:].std(axis=(0, 2))]
    assert ds.summary()["channel_sd_uv"] == pytest.approx([min(s.min() for s in sds), max(s.max() for s in sds)])


def test_physionet_two_classes_get_roc_auc_beside_moabbs(eeg_dir, tmp_path, capsys):
    from neuroaikit.bmi.results import BMIResult
    from neuroaikit.cli.main import main
    from neuroaikit.runs import Run

    from .conftest import SENSORIMOTOR

    out = tmp_path / "mi"
    code = main(["bmi", "--dataset", "physionet-mi", "--data-dir", str(eeg_dir), "--channels", *SENSORIMOTOR,
                 "--decoders", "csp_lda", "--folds", "3", "--quiet", "--no-report", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    row = BMIResult.load(Run(out)).decoders[0]
    assert 0.0 <= row.roc_auc <= 1.0 and row.itr_selection_s == 3.0
    assert "MOABB AUC" in printed and "3 s per selection" in printed
    assert BMIResult.load(Run(out)).published["metric"] == "roc_auc"
