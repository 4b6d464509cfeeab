"""The decoders follow scikit-learn's estimator contract, so they work inside its pipelines,
``clone`` and model selection: parameters stored as given, ``fit`` returns ``self`` and adds only
attributes ending in ``_``, an unfitted decoder raises ``NotFittedError``, and a clone is unfitted.
Checked on small synthetic epochs (sklearn's own check suite feeds 2-D tables, which EEG
decoders refuse by design; its applicable checks run here)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_set_params,
)

from neuroaikit.bmi.decoders import CCA, FBCCA, TRCA, DeepDecoder, FilterBankCSP

SFREQ = 128.0
FREQUENCIES = (9.0, 13.0)


def epochs(n_per_class: int = 12, n_channels: int = 4, n_samples: int = 256, seed: int = 0):
    """Two classes of noisy epochs: a sine at each class's frequency, stronger on channel 0."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / SFREQ
    X, y = [], []
    for label, frequency in enumerate(FREQUENCIES):
        for _ in range(n_per_class):
            trial = rng.normal(size=(n_channels, n_samples))
            trial += np.linspace(2.0, 0.5, n_channels)[:, None] * np.sin(2 * np.pi * frequency * t + rng.uniform(0, 6))
            X.append(trial)
            y.append(label)
    return np.stack(X), np.array(y)


DECODERS = {
    "CCA": lambda: CCA(frequencies=FREQUENCIES, sfreq=SFREQ),
    "FBCCA": lambda: FBCCA(frequencies=FREQUENCIES, sfreq=SFREQ, bands=((6, 40), (10, 40))),
    "TRCA": lambda: TRCA(frequencies=FREQUENCIES, sfreq=SFREQ),
    "FilterBankCSP": lambda: FilterBankCSP(sfreq=SFREQ, bands=((8, 12), (12, 16)), n_components=2),
    "DeepDecoder": lambda: DeepDecoder("shallow", sfreq=SFREQ, epochs=20, batch_size=8, lr=3e-3),
}
OUTPUT = {"FilterBankCSP": "transform"}
NEEDS_MNE = {"FilterBankCSP"}  # its CSP is MNE's; the others need numpy, scipy and torch only


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_scikit_learn_contract(name):
    if name in NEEDS_MNE:
        pytest.importorskip("mne")
    decoder = DECODERS[name]()
    check_no_attributes_set_in_init(name, decoder)
    check_get_params_invariance(name, decoder)
    check_set_params(name, decoder)
    params = decoder.get_params()
    assert clone(decoder).get_params() == params

    X, y = epochs()
    method = OUTPUT.get(name, "predict")
    with pytest.raises(NotFittedError):
        getattr(decoder, method)(X)
    before = set(vars(decoder))
    assert decoder.fit(X, y) is decoder
    added = set(vars(decoder)) - before
    assert added and all(a.endswith("_") and not a.startswith("_") for a in added), added
    assert decoder.get_params() == params  # fit leaves the parameters as given
    output = getattr(decoder, method)(X)
    assert len(output) == len(X)
    if method == "predict":
        assert set(np.unique(output)) <= set(y) and (output == y).mean() > 0.5
    with pytest.raises(NotFittedError):
        getattr(clone(decoder), method)(X)


PIPELINES = ["csp_lda", "ts_lr", "mdm", "xdawn_ts_lr"]


@pytest.mark.parametrize("name", PIPELINES)
def test_the_built_pipelines_clone_and_refit(name):
    pytest.importorskip("mne")
    pytest.importorskip("pyriemann")
    from sklearn.pipeline import Pipeline

    from neuroaikit.bmi.decoders import spatial

    decoder = getattr(spatial, name)()
    assert isinstance(decoder, Pipeline)
    X, y = epochs()
    twin = clone(decoder)
    assert twin.get_params().keys() == decoder.get_params().keys()
    np.testing.assert_array_equal(decoder.fit(X, y).predict(X), twin.fit(X, y).predict(X))


def test_grid_search_over_a_decoder():
    from sklearn.model_selection import GridSearchCV

    search = GridSearchCV(CCA(frequencies=FREQUENCIES, sfreq=SFREQ), {"n_harmonics": [1, 2]}, cv=3).fit(*epochs())
    assert search.best_params_["n_harmonics"] in (1, 2) and search.best_score_ > 0.5


TORCH_DECODERS = ["CCA", "FBCCA", "TRCA", "DeepDecoder"]


@pytest.mark.parametrize("name", TORCH_DECODERS)
def test_two_class_scores_take_scikit_learns_shape_and_any_input_dtype(name):
    """With two classes ``decision_function`` is ``(n,)`` (ROC-AUC scorers refused ``(n, 2)``);
    float32 tensors, float64 tensors and arrays give the same predictions (the SSVEP decoders
    refused float32 tensors)."""
    import torch
    from sklearn.model_selection import cross_val_score

    X, y = epochs()
    decoder = DECODERS[name]().fit(X, y)
    scores = decoder.decision_function(X)
    assert scores.shape == (len(X),)
    np.testing.assert_array_equal(decoder.predict(X), decoder.classes_[(scores > 0).astype(int)])
    for x in (torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(X), X.astype(np.float32)):
        np.testing.assert_array_equal(decoder.predict(x), decoder.predict(X))
    auc = cross_val_score(DECODERS[name](), X, y, cv=3, scoring="roc_auc", error_score="raise")
    # TRCA learns phase-locked templates, and these epochs' phases are random: chance there
    assert auc.shape == (3,) and ((auc > 0.5).all() if name != "TRCA" else ((auc >= 0) & (auc <= 1)).all())
    three = np.concatenate([X, X[:6] + 0.1]), np.concatenate([y, np.full(6, 2)])
    if name != "DeepDecoder":  # the SSVEP decoders need one frequency per class
        three_decoder = DECODERS[name]().set_params(frequencies=(*FREQUENCIES, 17.0)).fit(*three)
    else:
        three_decoder = DECODERS[name]().set_params(epochs=1).fit(*three)
    assert three_decoder.decision_function(three[0]).shape == (len(three[0]), 3)


@pytest.mark.parametrize("name", TORCH_DECODERS)
def test_a_twin_in_double_precision_is_gradient_checked_and_leaves_the_decoder_working(name):
    """``as_torch(decoder).double()`` runs in float64 (gradcheck needs it; the deep decoder's
    shared network refused float32 input after it), and the decoder still predicts."""
    import torch

    from neuroaikit.bmi.decoders import as_torch

    X, y = epochs(n_samples=128)
    decoder = DECODERS[name]().fit(X, y)
    before = decoder.predict(X)
    twin = as_torch(decoder).double()
    x = torch.as_tensor(X[:2], dtype=torch.float64).requires_grad_(True)
    assert twin(x).dtype == torch.float64
    assert torch.autograd.gradcheck(twin, (x,), eps=1e-6, atol=1e-4, fast_mode=True)
    np.testing.assert_array_equal(decoder.predict(X), before)
