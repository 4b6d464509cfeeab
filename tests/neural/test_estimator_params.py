"""OasisDeconvolver and PixelRidge are scikit-learn estimators: ``clone`` / ``set_params`` work,
the constructor only stores, a bad parameter is a one-line ConfigError naming it, and PixelRidge
raises NotFittedError before ``fit``."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import check_get_params_invariance, check_no_attributes_set_in_init, \
    check_set_params

from neuroaikit.errors import ConfigError
from neuroaikit.neural.baselines import PixelRidge
from neuroaikit.neural.calcium import OasisDeconvolver
from neuroaikit.neural.dataset import NeuralDataset


def _trace(n: int = 600, rate: float = 10.0, seed: int = 0) -> np.ndarray:
    """AR(1) calcium from sparse spikes plus noise (dF/F)."""
    rng = np.random.default_rng(seed)
    spikes = (rng.random(n) < 0.03).astype(float)
    g = np.exp(-1.0 / (0.7 * rate))
    c = np.zeros(n)
    for t in range(n):
        c[t] = (g * c[t - 1] if t else 0.0) + spikes[t]
    return c + rng.normal(0, 0.1, n)


def _ridge_data(seed: int = 0) -> NeuralDataset:
    rng = np.random.default_rng(seed)
    stimuli = rng.random((20, 8, 8)).astype(np.float32)
    ids = np.repeat(np.arange(20), 2)
    responses = stimuli.reshape(20, -1)[ids] @ rng.normal(size=(64, 3)) + rng.normal(0, 0.5, (40, 3))
    return NeuralDataset(stimuli, responses, ids, np.array(["train"] * 40), stimulus_index=ids)


@pytest.mark.parametrize("estimator", [OasisDeconvolver(tau_decay_s=0.7, backend="numpy"),
                                       PixelRidge(size=(4, 4), alphas=(1.0, 10.0))], ids=lambda e: type(e).__name__)
def test_scikit_learn_contract(estimator):
    name = type(estimator).__name__
    check_no_attributes_set_in_init(name, estimator)
    check_get_params_invariance(name, estimator)
    check_set_params(name, estimator)
    copy = clone(estimator)
    assert copy is not estimator and copy.get_params() == estimator.get_params()


def test_oasis_clone_infers_the_same_spikes():
    deconvolver = OasisDeconvolver(tau_decay_s=0.7, backend="numpy")
    trace = _trace()
    a = deconvolver.infer(trace, frame_rate=10.0)
    b = clone(deconvolver).set_params(smoothing_s=0.2).infer(trace, frame_rate=10.0)
    np.testing.assert_array_equal(a.spikes, b.spikes)


@pytest.mark.parametrize("params, message", [
    ({"tau_decay_s": "0.7"}, "tau_decay_s must be a number > 0, got '0.7'"),
    ({"tau_decay_s": True}, "tau_decay_s must be a number > 0"),
    ({"tau_decay_s": float("nan")}, "tau_decay_s must be a number > 0"),
    ({"tau_rise_s": -0.1}, "tau_rise_s must be a number >= 0"),
    ({"smoothing_s": None}, "smoothing_s must be a number >= 0, got None"),
    ({"ar_order": 3}, r"ar_order must be an integer in \[1, 2\]"),
    ({"penalty": "l2"}, "penalty must be one of 'l1', 'l0'"),
    ({"backend": "gpu"}, "backend must be one of 'auto', 'oasis', 'numpy'"),
])
def test_oasis_bad_parameter_is_a_one_line_config_error(params, message):
    deconvolver = OasisDeconvolver(**params)  # the constructor only stores
    for call in (deconvolver.resolve_backend, lambda: deconvolver.infer(_trace(), frame_rate=10.0)):
        with pytest.raises(ConfigError, match=message) as info:
            call()
        assert "\n" not in str(info.value)


def test_pixel_ridge_clone_refits_to_the_same_result():
    ds = _ridge_data()
    ridge = PixelRidge(size=(4, 4), alphas=(0.1, 10.0, 1000.0)).fit(ds)
    copy = clone(ridge)
    assert not hasattr(copy, "coef_")
    np.testing.assert_array_equal(copy.fit(ds).coef_, ridge.coef_)
    assert copy.alpha_ == ridge.alpha_


def test_pixel_ridge_predict_before_fit_is_not_fitted_error():
    with pytest.raises(NotFittedError):
        PixelRidge().predict(np.zeros((2, 8, 8), dtype=np.float32))


def test_pixel_ridge_predicts_any_image_size_but_only_the_fitted_channels():
    from neuroaikit.errors import DataError

    ds = _ridge_data()
    ridge = PixelRidge(size=(4, 4), alpha=1.0).fit(ds)
    images = np.asarray(ds.stimuli[:3], dtype=np.float32)
    assert ridge.predict(images).shape == (3, ds.n_neurons)
    bigger = np.repeat(np.repeat(images, 2, axis=-2), 2, axis=-1)  # area averaging: the same pixels at 4 x 4
    np.testing.assert_allclose(ridge.predict(bigger), ridge.predict(images), rtol=1e-5, atol=1e-5)
    with pytest.raises(DataError, match=r"fitted on images of 1 channel\(s\).*got shape \(3, 3, "):
        ridge.predict(np.repeat(images.reshape(3, 1, *images.shape[-2:]), 3, axis=1))


@pytest.mark.parametrize("params, message", [
    ({"alpha": -5.0}, "alpha must be a number > 0, got -5.0"),
    ({"alpha": 0.0}, "alpha must be a number > 0"),
    ({"alphas": ()}, "alphas must be a non-empty sequence of penalties > 0"),
    ({"alphas": (1.0, -1.0)}, "alphas must be a non-empty sequence of penalties > 0"),
    ({"size": (0, 4)}, r"size must be a pair of integers >= 1 \(height, width\)"),
    ({"size": 4}, "size must be a pair of integers >= 1"),
])
def test_pixel_ridge_bad_parameter_is_a_one_line_config_error_at_fit(params, message):
    ridge = PixelRidge(**params)  # the constructor only stores
    with pytest.raises(ConfigError, match=message) as info:
        ridge.fit(_ridge_data())
    assert "\n" not in str(info.value)
    assert not hasattr(ridge, "size_")  # refused before anything was fitted


@pytest.mark.parametrize("ar_order", [1, 2, 2.0, True, 3])
def test_the_infer_config_and_its_deconvolver_agree_on_ar_order(tmp_path, ar_order):
    from neuroaikit.neural.calcium.pipeline import InferConfig

    def accepted(build) -> bool:
        try:
            build()
        except ConfigError:
            return False
        return True

    by_config = accepted(lambda: InferConfig(trace_file=str(tmp_path / "t.npy"), frame_rate=30.0, ar_order=ar_order))
    by_estimator = accepted(lambda: OasisDeconvolver(ar_order=ar_order).resolve_backend())
    assert by_config == by_estimator == (ar_order in (1, 2) and type(ar_order) is int)
