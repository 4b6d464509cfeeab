"""Reading and epoching: our epochs equal mne.Epochs; the SSVEP event codes; the readers' metadata."""

from __future__ import annotations

import mne
import numpy as np
import pytest

from neuroaikit.bmi.epochs import EpochsDataset, PreprocessConfig, epoch, find_events, preprocess, read_raw
from neuroaikit.errors import DataError


def test_epochs_equal_mne_epochs(eeg_dir):
    path = eeg_dir / "physionet-eegmmidb" / "S001" / "S001R04.edf"
    raw = read_raw(path)
    mne.datasets.eegbci.standardize(raw)
    config = PreprocessConfig(l_freq=8.0, h_freq=32.0, tmin=-0.5, tmax=2.0)
    events, found = find_events(raw)
    raws, events = preprocess(raw, config, events)
    ours = epoch(raws, events, {"T1": found["T1"], "T2": found["T2"]}, config)
    theirs = mne.Epochs(raws[0], events, {"T1": found["T1"], "T2": found["T2"]}, tmin=-0.5, tmax=2.0, baseline=None,
                        preload=True, verbose="error")
    assert ours.X.shape == theirs.get_data().shape
    np.testing.assert_allclose(ours.X, theirs.get_data() * 1e6, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(ours.y, (theirs.events[:, 2] == found["T2"]).astype(int))


def test_ssvep_fif_codes_match_the_original_gdf(eeg_dir):
    """GDF 33024 rest, 33025 13 Hz, 33026 21 Hz, 33027 17 Hz -> FIF 1 rest, 2 13 Hz, 3 21 Hz, 4 17 Hz."""
    from neuroaikit.bmi.datasets import SSVEP_EVENT_ID

    sub = eeg_dir / "ssvep-exoskeleton" / "subject01"
    gdf = read_raw(next(sub.glob("*.gdf")))
    gdf_events, gdf_ids = mne.events_from_annotations(gdf, verbose="error")
    fif_events = mne.read_events(next(sub.glob("*19.02.16*-eve.fif")))
    code_to_name = {gdf_ids["33024"]: "rest", gdf_ids["33025"]: "13", gdf_ids["33026"]: "21", gdf_ids["33027"]: "17"}
    stim = gdf_events[np.isin(gdf_events[:, 2], list(code_to_name))]
    assert len(stim) == len(fif_events) == 32
    names = [code_to_name[c] for c in stim[:, 2]]
    assert [SSVEP_EVENT_ID[n] for n in names] == list(fif_events[:, 2])


def test_readers_metadata(ssvep, motor):
    assert ssvep.X.shape == (64, 8, 513) and ssvep.class_counts() == {"13": 16, "17": 16, "21": 16, "rest": 16}
    assert set(ssvep.run) == {"1", "2"} and set(ssvep.session) == {"1"}
    assert motor.sfreq == 160 and set(motor.run) == {"4", "8", "12"} and len(motor) == 45
    assert abs(ssvep.X).max() < 1e3  # microvolts, not volts


def test_ssvep_files_are_millivolts(eeg_dir, ssvep):
    """The FIF samples sit on a 16-bit grid of full scale 1.0 and within +-0.5: the g.MOBIlab+'s
    +-500 uV range in mV. After the reader's rescaling the 7-45 Hz band is scalp-EEG sized."""
    raw = read_raw(next((eeg_dir / "ssvep-exoskeleton" / "subject01").glob("*_raw.fif")))
    values = np.unique(raw.get_data()[0])
    step = np.diff(values).min()
    np.testing.assert_allclose(step, 2.0 ** -16, rtol=0.05)
    assert np.abs(raw.get_data()).max() < 0.5
    assert 1.0 < ssvep.X.std() < 30.0


def test_rejection_and_resampling(eeg_dir):
    from neuroaikit.bmi.datasets import load_ssvep_exo

    ds = load_ssvep_exo(eeg_dir, 1, config=PreprocessConfig(l_freq=7.0, h_freq=45.0, tmin=2.0, tmax=4.0,
                                                            resample=128.0, reject_uv=25.0))
    assert ds.sfreq == 128 and ds.n_samples == 257
    assert 0 < len(ds) < 64  # some trials exceed 25 uV peak-to-peak
    assert (np.ptp(ds.X, axis=-1) <= 25).all()


def test_unequal_epoch_lengths_are_one_line_errors():
    with pytest.raises(DataError, match="unequal length"):
        EpochsDataset([np.zeros((2, 10)), np.zeros((2, 11))], [0, 1], ["a", "b"], 100.0, ["x", "y"])


def test_picked_channels_equal_picking_the_epochs_afterwards(eeg_dir, motor):
    """``channels`` picks before filtering (IIR per channel): the same numbers as epoching all 64
    channels and keeping the 14 afterwards (the ``motor`` fixture), in the order asked."""
    from neuroaikit.bmi.datasets import PHYSIONET_MI_RECIPE, load_physionet_mi

    picked = load_physionet_mi(eeg_dir, 1, config=PHYSIONET_MI_RECIPE.replace(channels=[c.lower() for c in motor.ch_names]))
    assert picked.ch_names == motor.ch_names
    np.testing.assert_allclose(picked.X, motor.X, atol=1e-9, rtol=0)


def test_average_reference_is_over_every_channel_before_the_pick():
    names = ["C3", "Cz", "C4", "O1"]
    data = np.random.default_rng(1).normal(size=(4, 500)) * 1e-5
    raw = mne.io.RawArray(data, mne.create_info(names, 100.0, "eeg"), verbose="error")
    (kept,), _ = preprocess(raw, PreprocessConfig(reference="average", channels=["C4", "C3"]))
    assert kept.ch_names == ["C4", "C3"]
    np.testing.assert_allclose(kept.get_data(), data[[2, 0]] - data.mean(axis=0), atol=1e-15)


def test_channels_marked_bad_are_left_out_as_mne_leaves_them_out():
    """A channel in ``info['bads']`` is not decoded, not re-referenced with, not checked against
    the montage (it may lack a position) and, being left out, cannot reject every epoch."""
    names = ["C3", "Cz", "C4", "X1"]
    data = np.random.default_rng(1).normal(size=(4, 500)) * 1e-5
    data[3] *= 100  # the bad channel is loud
    raw = mne.io.RawArray(data, mne.create_info(names, 100.0, "eeg"), verbose="error")
    raw.info["bads"] = ["X1"]
    (kept,), _ = preprocess(raw, PreprocessConfig(reference="average", montage="standard_1020"))
    assert kept.ch_names == ["C3", "Cz", "C4"]
    np.testing.assert_allclose(kept.get_data(), data[:3] - data[:3].mean(axis=0), atol=1e-15)


def test_the_reference_channel_is_named_in_any_case():
    names = ["C3", "Cz", "C4"]
    data = np.random.default_rng(2).normal(size=(3, 300)) * 1e-5
    raw = mne.io.RawArray(data, mne.create_info(names, 100.0, "eeg"), verbose="error")
    (lower,), _ = preprocess(raw, PreprocessConfig(reference="cz"))
    (exact,), _ = preprocess(raw, PreprocessConfig(reference="Cz"))
    np.testing.assert_array_equal(lower.get_data(), exact.get_data())
    np.testing.assert_allclose(exact.get_data()[0], data[0] - data[1], atol=1e-15)
    with pytest.raises(DataError, match="reference channel 'Pz' is not in the recording"):
        preprocess(raw, PreprocessConfig(reference="Pz"))


def test_a_channel_marked_bad_is_named_as_such_when_asked_for():
    names = ["C3", "Cz", "C4"]
    raw = mne.io.RawArray(np.random.default_rng(3).normal(size=(3, 300)) * 1e-5, mne.create_info(names, 100.0, "eeg"),
                          verbose="error")
    raw.info["bads"] = ["Cz"]
    for config in (PreprocessConfig(reference="cz"), PreprocessConfig(channels=["C3", "Cz"])):
        with pytest.raises(DataError, match=r"channel\(s\) .*(cz|Cz) are marked bad in the recording"):
            preprocess(raw, config)


def test_annotation_names_get_the_callers_codes(tmp_path):
    """``load_epochs(f, {"right": 1, "left": 2})`` on annotations took MNE's alphabetical codes for
    the callers', so the classes swapped; on a left/rest/right file "right" held the rest trials."""
    from neuroaikit.bmi.epochs import load_epochs

    sfreq, onsets = 100.0, np.arange(1.0, 61.0, 2.0)
    labels = ["left", "rest", "right"] * 10
    X = np.random.default_rng(0).normal(scale=1e-6, size=(2, int(64 * sfreq)))
    for onset, label in zip(onsets, labels):  # each class marks itself: left on C3, right on C4
        if label != "rest":
            X[0 if label == "left" else 1, int(onset * sfreq):int((onset + 1) * sfreq)] += \
                50e-6 * np.sin(2 * np.pi * 10 * np.arange(int(sfreq)) / sfreq)
    raw = mne.io.RawArray(X, mne.create_info(["C3", "C4"], sfreq, "eeg"), verbose="error")
    raw.set_annotations(mne.Annotations(onsets, [0.0] * len(onsets), labels))
    raw.save(tmp_path / "own_raw.fif", verbose="error")
    config = PreprocessConfig(l_freq=None, h_freq=None, tmin=0.0, tmax=0.99)
    for event_id in ({"left": 1, "right": 2}, {"right": 1, "left": 2}, {"left": 7, "right": 3}):
        data = load_epochs(tmp_path / "own_raw.fif", event_id, config)
        power = {c: data.X[data.y == k].std(axis=(0, 2)) for k, c in enumerate(data.classes)}
        assert data.class_counts() == {"left": 10, "right": 10}
        assert power["left"][0] > 10 * power["left"][1] and power["right"][1] > 10 * power["right"][0], power
    with pytest.raises(DataError, match=r"none of the events \['up'\] occur; its annotations are \['left', 'rest', "):
        load_epochs(tmp_path / "own_raw.fif", {"up": 1}, config)
