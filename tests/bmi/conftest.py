"""Fixtures of the BMI tests: the shared EEG data (skipped without it) and MNE/pyriemann."""

from __future__ import annotations

import pytest

pytest.importorskip("mne")
pytest.importorskip("pyriemann")


@pytest.fixture(scope="session")
def eeg_dir(shared_data):
    path = shared_data / "eeg"
    if not path.is_dir():
        pytest.skip("the shared EEG data are not here")
    return path


@pytest.fixture(scope="session")
def ssvep(eeg_dir):
    from neuroaikit.bmi.datasets import load_ssvep_exo

    return load_ssvep_exo(eeg_dir, 1)


@pytest.fixture(scope="session")
def ssvep_bank(eeg_dir):
    from neuroaikit.bmi.datasets import SSVEP_FILTER_BANK_RECIPE, load_ssvep_exo

    return load_ssvep_exo(eeg_dir, 1, config=SSVEP_FILTER_BANK_RECIPE)


@pytest.fixture(scope="session")
def motor(eeg_dir):
    """S001 imagined left vs right fist, 8-32 Hz, on 14 sensorimotor channels (fast tests)."""
    from neuroaikit.bmi.datasets import load_physionet_mi

    ds = load_physionet_mi(eeg_dir, 1)
    keep = [i for i, c in enumerate(ds.ch_names) if c in SENSORIMOTOR]
    ds.X, ds.ch_names = ds.X[:, keep], [ds.ch_names[i] for i in keep]
    return ds


SENSORIMOTOR = ("FC3", "FC1", "FCz", "FC2", "FC4", "C5", "C3", "C1", "Cz", "C2", "C4", "C6", "CP3", "CP4")
