"""Decoders: twins equal the fitted pipelines; our pipelines equal explicit MNE/pyriemann ones on
the same folds; the deep architectures layer by layer; the attack's budget in microvolts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from neuroaikit.bmi.decoders import as_torch, covariance, make_decoder
from neuroaikit.bmi.evaluation import cross_validate
from neuroaikit.errors import ConfigError


@pytest.mark.parametrize("name", ["cca", "fbcca", "trca", "ts_lr", "mdm"])
def test_ssvep_twin_predicts_as_the_pipeline(name, ssvep, ssvep_bank):
    ds = ssvep_bank if name in ("ts_lr", "mdm") else ssvep
    decoder = make_decoder(name, ds).fit(ds.X[::2], ds.y[::2])
    twin = as_torch(decoder)
    np.testing.assert_array_equal(twin(torch.as_tensor(ds.X[1::2])).argmax(1).numpy(), decoder.predict(ds.X[1::2]))


@pytest.mark.parametrize("name", ["csp_lda", "fbcsp_lda", "ts_lr"])
def test_motor_twin_predicts_as_the_pipeline(name, motor):
    decoder = make_decoder(name, motor).fit(motor.X[::2], motor.y[::2])
    twin = as_torch(decoder)
    np.testing.assert_array_equal(twin(torch.as_tensor(motor.X[1::2])).argmax(1).numpy(),
                                  decoder.predict(motor.X[1::2]))


def test_oas_equals_pyriemann(ssvep):
    from pyriemann.estimation import Covariances

    ours = covariance(torch.as_tensor(ssvep.X[:5]), "oas").numpy()
    np.testing.assert_allclose(ours, Covariances("oas").fit_transform(ssvep.X[:5]), rtol=1e-10, atol=1e-10)


def test_pipelines_equal_explicit_peer_pipelines_on_the_same_folds(motor):
    from mne.decoding import CSP
    from pyriemann.estimation import Covariances
    from pyriemann.tangentspace import TangentSpace
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    folds = StratifiedKFold(5, shuffle=True, random_state=42)
    explicit = {
        "csp_lda": make_pipeline(CSP(n_components=6, log=True), LinearDiscriminantAnalysis()),
        "ts_lr": make_pipeline(Covariances("oas"), TangentSpace(metric="riemann"),
                               LogisticRegression(C=1.0, max_iter=1000)),
    }
    for name, peer in explicit.items():
        ours = cross_validate(make_decoder(name, motor), motor, "within-session", 5, seed=42)
        theirs = cross_val_predict(peer, motor.X, motor.y, cv=folds)
        np.testing.assert_array_equal(ours.y_pred, theirs)
        assert ours.accuracy > 0.5


def test_cca_finds_a_synthetic_ssvep():
    from neuroaikit.bmi.decoders import CCA

    rng = np.random.default_rng(0)
    t = np.arange(256) / 128
    freqs = [8.0, 10.0, 12.0]
    y = np.repeat([0, 1, 2], 10)
    X = rng.normal(size=(30, 4, 256)) + np.array([np.sin(2 * np.pi * freqs[k] * t + rng.uniform(0, 6))
                                                  for k in y])[:, None, :]
    decoder = CCA(frequencies=freqs, sfreq=128, n_harmonics=2).fit(X, y)
    assert (decoder.predict(X) == y).mean() == 1.0


def test_eegnet_layers_match_the_paper():
    """Lawhern et al. 2018, Table 2 (C = 64 channels, T = 128 samples at 128 Hz, N = 4 classes)."""
    from neuroaikit.bmi.decoders import EEGNet

    net = EEGNet(64, 128, 4, sfreq=128)
    assert net.temporal.weight.shape == (8, 1, 1, 64)
    assert net.spatial.layer.weight.shape == (16, 1, 64, 1)
    assert net.separable_depth.weight.shape == (16, 1, 1, 16) and net.separable_point.weight.shape == (16, 16, 1, 1)
    assert net.classifier.layer.in_features == 16 * (128 // 32)
    # Table 2's parameter counts: 512 + 16 (BN) + 1024 + 32 + 256 + 256 + 32 + (64 + 4) * 4 ... per layer
    conv = sum(p.numel() for m in (net.temporal, net.spatial, net.separable_depth, net.separable_point)
               for p in m.parameters())
    assert conv == 512 + 1024 + 256 + 256
    assert net(torch.zeros(2, 64, 128)).shape == (2, 4)


def test_shallow_convnet_layers_match_the_paper():
    """Schirrmeister et al. 2017: 40 temporal filters of 25 taps, 40 spatial filters, pool 75 / 15 at 250 Hz."""
    from neuroaikit.bmi.decoders import ShallowConvNet

    net = ShallowConvNet(22, 1000, 4, sfreq=250)
    assert net.temporal.weight.shape == (40, 1, 1, 25)
    assert net.spatial.weight.shape == (40, 40, 22, 1) and net.spatial.bias is None
    assert net.pool.kernel_size == (1, 75) and net.pool.stride == (1, 15)
    assert net.classifier.in_features == 40 * ((1000 - 25 + 1 - 75) // 15 + 1)
    assert net(torch.zeros(2, 22, 1000)).shape == (2, 4)


@pytest.mark.parametrize("noise", [None, {"input": {"kind": "gaussian", "sigma": 0.5}}])
def test_deep_decoder_trains_through_the_execution_layer(ssvep, device, noise):
    """Trained on each device of the session (``make test-gpu``: CUDA), with and without brain
    noise (``--deep-noise``), then predicted and attacked (with EOT where noisy) as the BMI
    workflow does, with the decoder's twin back on the CPU."""
    from neuroaikit.bmi.robustness import apgd_accuracy
    from neuroaikit.execution import ExecutionConfig

    decoder = make_decoder("eegnet", ssvep, epochs=3, noise=noise, execution=ExecutionConfig(device=device, threads=1))
    decoder.fit(ssvep.X[::2], ssvep.y[::2])
    assert decoder.device_.startswith(device) and len(decoder.history_) == 3 and np.isfinite(decoder.history_).all()
    twin = as_torch(decoder)
    if noise is None:
        np.testing.assert_array_equal(twin(torch.as_tensor(ssvep.X[1::2])).argmax(1).numpy(),
                                      decoder.predict(ssvep.X[1::2]))
    eot = 1 if noise is None else 2
    assert 0 <= apgd_accuracy(decoder, ssvep.X[1::8], ssvep.y[1::8], eps_uv=0.1, steps=2, eot=eot) <= 1


@pytest.mark.parametrize("architecture", ["eegnet", "shallow"])
def test_deep_decoder_builds_its_network_with_the_dropout_asked_for(ssvep, architecture):
    """Lawhern et al. 2018 trained EEGNet with dropout 0.5 within subjects and 0.25 across them."""
    from neuroaikit.errors import ConfigError
    from neuroaikit.execution import ExecutionConfig

    decoder = make_decoder(architecture, ssvep, epochs=1, dropout=0.25, execution=ExecutionConfig(device="cpu",
                                                                                                  threads=1))
    rates = {m.p for m in decoder.fit(ssvep.X[::4], ssvep.y[::4]).module_.modules() if isinstance(m, torch.nn.Dropout)}
    assert rates == {0.25}
    with pytest.raises(ConfigError, match=r"dropout must be a number in \[0, 1\), got 1.0"):
        make_decoder(architecture, ssvep, dropout=1.0).fit(ssvep.X[::4], ssvep.y[::4])


def test_apgd_budget_is_in_microvolts(ssvep):
    """The attack stays inside an L-inf ball of eps uV, leaves the [0, 1] image box, and hurts."""
    from neuroaikit.attacks import APGD

    decoder = make_decoder("cca", ssvep).fit(ssvep.X, ssvep.y)
    twin = as_torch(decoder)
    x = torch.as_tensor(ssvep.X[:16], dtype=torch.float32)
    y = torch.as_tensor(ssvep.y[:16])
    attack = APGD(twin, eps=2.0, steps=10)  # the signal is ~6 uV std per channel
    attack.box = None
    x_adv = attack(x, y)
    assert (x_adv - x).abs().max() <= 2.0 * (1 + 1e-5)
    assert x.abs().max() > 1  # real uV, far outside [0, 1]
    clean = (decoder.predict(x.double().numpy()) == ssvep.y[:16]).mean()
    assert (decoder.predict(x_adv.double().numpy()) == ssvep.y[:16]).mean() < clean


def test_csp_rank_is_full_only_for_independent_channels(motor):
    """Full rank skips MNE's per-fit rank estimate (the same filters: the peer test above);
    average-referenced data lose one dimension and keep MNE's estimate."""
    from neuroaikit.bmi.decoders import csp_rank

    assert csp_rank(motor.X) == "full"
    assert csp_rank(motor.X - motor.X.mean(1, keepdims=True)) is None


def test_eegnet_refuses_epochs_shorter_than_its_poolings_in_one_line():
    from neuroaikit.bmi.decoders import EEGNet
    from neuroaikit.errors import DataError

    assert EEGNet(4, 32, 2, sfreq=128)(torch.zeros(1, 4, 32)).shape == (1, 2)
    with pytest.raises(DataError, match="EEGNet needs epochs of at least 32 samples .* got 25 at 250 Hz"):
        EEGNet(4, 25, 2, sfreq=250)


@pytest.mark.parametrize("name", ["CCA", "FBCCA", "TRCA"])
def test_ssvep_decoders_fit_a_training_set_without_one_class(name):
    """A run with no trials of one class (no rest trials, say): integer labels index the
    frequencies, so the decoder fits on the classes present and answers with their labels."""
    from neuroaikit.bmi import decoders

    rng = np.random.default_rng(0)
    t = np.arange(256) / 128
    freqs = [8.0, 10.0, 12.0, 14.0]
    y = np.repeat([0, 1, 3], 10)  # no trial of class 2 (12 Hz)
    X = rng.normal(size=(30, 4, 256)) * 0.5 + np.array([np.sin(2 * np.pi * freqs[k] * t + k)  # phase-locked
                                                        for k in y])[:, None, :]
    decoder = getattr(decoders, name)(frequencies=freqs, sfreq=128).fit(X, y)
    assert decoder.classes_.tolist() == [0, 1, 3] and decoder.frequencies_ == [8.0, 10.0, 14.0]
    assert (decoder.predict(X) == y).mean() >= 0.9
    with pytest.raises(ConfigError, match=r"4 frequencies for 3 classes \[1, 2, 3\]; give one per class"):
        # labels without 0 could count from 1: refused, not guessed
        getattr(decoders, name)(frequencies=freqs, sfreq=128).fit(X, y + 1 - (y == 3))
    with pytest.raises(ConfigError, match=r"4 frequencies for 3 classes \['a', 'b', 'd'\]; give one per class"):
        getattr(decoders, name)(frequencies=freqs, sfreq=128).fit(X, np.array(list("abd"))[np.searchsorted([0, 1, 3], y)])
