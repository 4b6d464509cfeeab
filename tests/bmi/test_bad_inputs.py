"""Bad input to ``neuroaikit bmi`` and the EEG readers: one-line errors, exit 2, nothing created."""

from __future__ import annotations

import mne
import numpy as np
import pytest

from neuroaikit.bmi.epochs import PreprocessConfig, check_montage, find_events, preprocess, read_raw
from neuroaikit.cli.main import main
from neuroaikit.errors import DataError


def _one_line(capsys, code, contains):
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and contains in err, err


def _raw(sfreq=100.0, names=("C3", "C4")):
    return mne.io.RawArray(np.random.default_rng(0).normal(size=(len(names), 1000)) * 1e-5,
                           mne.create_info(list(names), sfreq, "eeg"), verbose="error")


def test_file_without_events(tmp_path, capsys):
    path = tmp_path / "no_events_raw.fif"
    _raw().save(path, verbose="error")
    with pytest.raises(DataError, match="no events"):
        find_events(read_raw(path))


def test_sampling_rate_below_twice_the_upper_edge():
    with pytest.raises(DataError, match="not above twice the filter's upper edge"):
        preprocess(_raw(sfreq=60.0), PreprocessConfig(l_freq=8.0, h_freq=32.0))


def test_channels_missing_for_a_montage():
    with pytest.raises(DataError, match="missing from montage standard_1005: EMG1"):
        check_montage(_raw(names=("C3", "EMG1")), "standard_1005")


def test_cli_unknown_decoder_and_subject(eeg_dir, tmp_path, capsys):
    out = tmp_path / "run"
    _one_line(capsys, main(["bmi", "--data-dir", str(eeg_dir), "--decoders", "cca", "magic", "--out", str(out)]),
              "--decoders must be a list of decoders")
    _one_line(capsys, main(["bmi", "--data-dir", str(eeg_dir), "--subjects", "9", "--out", str(out)]),
              "no SSVEP subject 9")
    _one_line(capsys, main(["bmi", "--dataset", "physionet-mi", "--decoders", "cca", "--data-dir", str(eeg_dir),
                            "--out", str(out)]), "decodes SSVEP")
    assert not out.exists()


def test_cli_without_mne_names_the_extra(monkeypatch, tmp_path, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "mne", None)
    _one_line(capsys, main(["bmi", "--out", str(tmp_path / "r")]), "pip install neuroaikit[bmi]")


def test_channels_the_recording_lacks_and_repeated_channels():
    from neuroaikit.errors import ConfigError

    with pytest.raises(DataError, match=r"channel\(s\) Cz not in the recording; its EEG channels: C3, C4"):
        preprocess(_raw(), PreprocessConfig(channels=["c3", "Cz"]))
    with pytest.raises(ConfigError, match="channels must be a non-empty list of distinct channel names"):
        PreprocessConfig(channels=["C3", "c3"])


def test_cli_channels_the_recording_lacks_fail_before_the_run_folder(eeg_dir, tmp_path, capsys):
    out = tmp_path / "run"
    _one_line(capsys, main(["bmi", "--dataset", "physionet-mi", "--data-dir", str(eeg_dir), "--decoders", "csp_lda",
                            "--channels", "C3", "C9", "--out", str(out)]), "channel(s) C9 not in the recording")
    assert not out.exists() and not out.with_name("run.partial").exists()
