"""The decoders check their parameters at ``fit`` (a one-line ConfigError naming the parameter,
before anything is computed) and refuse epochs whose shape differs from what ``fit`` saw (a
one-line DataError naming both), instead of failing deep inside numpy, scipy or torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroaikit.bmi.decoders import CCA, FBCCA, TRCA, DeepDecoder, FilterBankCSP
from neuroaikit.errors import ConfigError, DataError

SFREQ = 64.0
FREQUENCIES = [10.0, 12.0, 15.0]


def _epochs(n_channels: int = 4, n_samples: int = 64):
    rng = np.random.default_rng(0)
    return rng.normal(size=(12, n_channels, n_samples)), np.repeat([0, 1, 2], 4)


def _deep(**params):
    return DeepDecoder("eegnet", sfreq=SFREQ, **{"epochs": 1, **params})


@pytest.mark.parametrize("build, message", [
    (lambda: _deep(batch_size=0), "DeepDecoder: batch_size must be an integer >= 2, got 0"),
    (lambda: _deep(batch_size=1), "batch_size must be an integer >= 2, got 1"),
    (lambda: _deep(lr=-1.0), "DeepDecoder: lr must be a number > 0, got -1.0"),
    (lambda: _deep(epochs=0), "epochs must be an integer >= 1, got 0"),
    (lambda: _deep(seed=-1), "seed must be an integer >= 0"),
    (lambda: _deep(noise="gaussian:0.5"), "noise must be a mapping of noise sites to noise specs, got 'gaussian:0.5'"),
    (lambda: _deep(execution={"device": "cpu"}), "execution must be an ExecutionConfig, got"),
    (lambda: DeepDecoder("foo", sfreq=SFREQ), "architecture must be one of 'eegnet', 'shallow', got 'foo'"),
    (lambda: DeepDecoder(sfreq=0.0), "DeepDecoder: sfreq must be a number > 0, got 0.0"),
    (lambda: CCA(FREQUENCIES, sfreq=SFREQ, n_harmonics=0), "CCA: n_harmonics must be an integer >= 1, got 0"),
    (lambda: CCA((), sfreq=SFREQ), "frequencies must be a non-empty sequence of frequencies > 0"),
    (lambda: CCA([10.0, -12.0, None], sfreq=SFREQ), "frequencies must be a non-empty sequence of frequencies > 0"),
    (lambda: TRCA(FREQUENCIES, sfreq=-1.0), "TRCA: sfreq must be a number > 0"),
    (lambda: FBCCA(FREQUENCIES, sfreq=SFREQ, bands=((20, 10),)),
     r"FBCCA: bands must be a non-empty list of \(low, high\) bands in Hz with 0 < low < high, got \(\(20, 10\),\)"),
    (lambda: FBCCA(FREQUENCIES, sfreq=SFREQ, bands=()), "FBCCA: bands must be a non-empty list"),
    (lambda: FBCCA(FREQUENCIES, sfreq=SFREQ, bands=((8, 30),), b=-1.0), "FBCCA: b must be a number >= 0"),
    (lambda: FBCCA(FREQUENCIES, sfreq=SFREQ, bands=((8, 20), (8, 40), (12, 32))),
     r"FBCCA: band\(s\) 8-40, 12-32 Hz reach Nyquist \(32 Hz at sfreq 64 Hz\)"),
    (lambda: FBCCA(FREQUENCIES, sfreq=SFREQ, bands=((8, 30),), n_harmonics=1.5), "n_harmonics must be an integer"),
])
def test_bad_parameter_is_a_one_line_config_error_at_fit(build, message):
    decoder = build()  # the constructor only stores
    X, y = _epochs()
    with pytest.raises(ConfigError, match=message) as info:
        decoder.fit(X, y)
    assert "\n" not in str(info.value)
    assert not [a for a in vars(decoder) if a.endswith("_")]  # refused before anything was fitted


@pytest.mark.parametrize("build, message", [
    (lambda: FilterBankCSP(sfreq=-16.0), "FilterBankCSP: sfreq must be a number > 0"),
    (lambda: FilterBankCSP(sfreq=SFREQ, n_components=0), "n_components must be an integer >= 1, got 0"),
    (lambda: FilterBankCSP(sfreq=SFREQ, bands=((12, 8),)), "bands must be a non-empty list of"),
    (lambda: FilterBankCSP(sfreq=SFREQ, rank="some"), "rank must be one of 'full', 'info' or a mapping, got 'some'"),
    # no band of the default bank (4-40 Hz) below Nyquist: refused at fit, not at transform
    (lambda: FilterBankCSP(sfreq=16.0),
     r"FilterBankCSP: every band reaches Nyquist \(8 Hz at sfreq 16 Hz\); the lowest band ends at 8 Hz"),
])
def test_filter_bank_csp_bad_parameter_is_a_one_line_config_error_at_fit(build, message):
    pytest.importorskip("mne")
    decoder = build()
    X, y = _epochs()
    with pytest.raises(ConfigError, match=message) as info:
        decoder.fit(X, (y > 0).astype(int))
    assert "\n" not in str(info.value)
    assert not [a for a in vars(decoder) if a.endswith("_")]


def test_bands_given_as_an_array_are_accepted_and_a_bad_array_is_one_line():
    pytest.importorskip("mne")
    X, y = _epochs()
    FBCCA(frequencies=FREQUENCIES, sfreq=SFREQ, bands=np.array([[8.0, 30.0], [12.0, 30.0]])).fit(X, y)
    FilterBankCSP(sfreq=SFREQ, bands=np.array([[8, 12], [12, 16]]), n_components=2).fit(X, (y > 0).astype(int))
    with pytest.raises(ConfigError) as error:
        FBCCA(frequencies=FREQUENCIES, sfreq=SFREQ, bands=np.array([[30.0, 8.0], [12.0, 30.0]])).fit(X, y)
    assert "\n" not in str(error.value) and "0 < low < high" in str(error.value)


def test_filter_bank_csp_keeps_the_bands_below_nyquist():
    pytest.importorskip("mne")
    X, y = _epochs()
    decoder = FilterBankCSP(sfreq=SFREQ, bands=((8, 12), (12, 16), (28, 36)), n_components=2).fit(X, (y > 0).astype(int))
    assert decoder.bands_ == [(8, 12), (12, 16)]
    assert decoder.transform(X).shape == (12, 4)


@pytest.mark.parametrize("build", [
    lambda: CCA(FREQUENCIES, sfreq=SFREQ),
    lambda: FBCCA(FREQUENCIES, sfreq=SFREQ, bands=((8, 30), (12, 30))),
    lambda: TRCA(FREQUENCIES, sfreq=SFREQ),
    lambda: FilterBankCSP(sfreq=SFREQ, bands=((8, 12), (12, 16)), n_components=2),
    lambda: DeepDecoder("eegnet", sfreq=SFREQ, epochs=1, batch_size=4),
], ids=["CCA", "FBCCA", "TRCA", "FilterBankCSP", "DeepDecoder"])
def test_epochs_of_another_shape_than_fit_saw_are_a_one_line_data_error(build):
    decoder = build()
    if isinstance(decoder, FilterBankCSP):
        pytest.importorskip("mne")
    X, y = _epochs()
    if isinstance(decoder, FilterBankCSP):
        y = (y > 0).astype(int)
    decoder.fit(X, y)
    name = type(decoder).__name__
    out = decoder.transform if isinstance(decoder, FilterBankCSP) else decoder.predict
    assert len(out(X)) == len(X)
    with pytest.raises(DataError, match=f"{name} was fitted on epochs of 4 channels x 64 samples, "
                                        f"got 4 channels x 32 samples") as info:
        out(X[:, :, :32])
    assert "\n" not in str(info.value)
    with pytest.raises(DataError, match="got 3 channels x 64 samples"):
        out(X[:, :3])
    with pytest.raises(DataError, match=rf"{name} needs epochs \(trials, channels, samples\), got shape \(4, 64\)"):
        out(X[0])
    # the differentiable path (white-box attacks) checks the same
    differentiable = decoder.torch_transform if isinstance(decoder, FilterBankCSP) else decoder.logits
    with pytest.raises(DataError, match="got 4 channels x 32 samples"):
        differentiable(torch.as_tensor(X[:, :, :32]))
