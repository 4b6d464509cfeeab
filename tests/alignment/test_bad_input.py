"""Bad input gives a one-line DataError / ConfigError, never a silent NaN score."""

from __future__ import annotations

import numpy as np
import pytest

from neuroaikit.alignment import (cka, compare_rdms, crossnobis_rdm, decode, fit_mean_variance, linear_predictivity,
                                  rdm, rsa_noise_ceiling, split_half_reliability)
from neuroaikit.errors import ConfigError, DataError


def _one_line(exc):
    assert "\n" not in str(exc.value) and str(exc.value)


def test_mismatched_stimulus_counts(rng):
    x, y = rng.normal(size=(20, 5)), rng.normal(size=(21, 5))
    for call in (lambda: cka(x, y), lambda: linear_predictivity(x, y),
                 lambda: compare_rdms(rdm(x), rdm(y)), lambda: decode(x, np.arange(21) % 2)):
        with pytest.raises(DataError, match="stimuli|entries|labels") as exc:
            call()
        _one_line(exc)


def test_fewer_than_two_repeats(rng):
    one = rng.normal(size=(10, 1, 4))
    for call in (crossnobis_rdm, split_half_reliability, fit_mean_variance):
        with pytest.raises(DataError, match=">= 2 repeats") as exc:
            call(one)
        _one_line(exc)
    with pytest.raises(DataError, match=">= 2 RDMs"):
        rsa_noise_ceiling(rng.random((1, 45)))


def test_nans_are_rejected(rng):
    x = rng.normal(size=(10, 4))
    x[3, 2] = np.nan
    for call in (lambda: rdm(x), lambda: cka(x, x), lambda: linear_predictivity(x, x, n_folds=2)):
        with pytest.raises(DataError, match="NaN") as exc:
            call()
        _one_line(exc)
    rep = rng.normal(size=(10, 3, 4))
    rep[0, 2] = np.nan  # NaN-padded repeats
    with pytest.raises(DataError, match="NaN"):
        crossnobis_rdm(rep)


def test_constant_inputs(rng):
    x = rng.normal(size=(10, 4))
    flat_stimulus = x.copy()
    flat_stimulus[4] = 1.0
    with pytest.raises(DataError, match="stimulus pattern 4 is constant"):
        rdm(flat_stimulus, "correlation")
    with pytest.raises(DataError, match="constant"):
        cka(np.ones((10, 3)), x)
    with pytest.raises(DataError, match="constant"):
        compare_rdms(np.ones(45), rdm(x), "pearson")
    with pytest.raises(DataError, match="constant"):
        linear_predictivity(np.ones((10, 3)), x, n_folds=2)
    with pytest.raises(DataError, match="defined held-out correlation"):
        linear_predictivity(x, np.ones((10, 2)), n_folds=2)
    # a constant unit is documented masking: NaN reliability, counted, excluded
    rep = rng.normal(size=(10, 4, 3))
    rep[:, :, 1] = 2.0
    rel = split_half_reliability(rep)
    assert not bool(rel.valid[1]) and rel.summary()["n_masked_units"] == 1
    assert np.isfinite(rel.summary()["median_reliability"])


def test_unknown_methods():
    with pytest.raises(ConfigError, match="unknown RDM method"):
        rdm(np.eye(3), "manhattan")
    with pytest.raises(ConfigError, match="unknown RDM comparison"):
        compare_rdms(np.arange(3.0), np.arange(3.0), "bures")
    with pytest.raises(ConfigError, match="unknown CKA kernel"):
        cka(np.eye(4), np.eye(4), kernel="poly")


# -- the profile's settings and data: checked before anything is computed ---------------------
def _target(rng, n=12, neurons=5, repeats=None):
    from neuroaikit.alignment import NeuralTarget

    rep = None if repeats is None else rng.normal(size=(n, repeats, neurons))
    average = rng.normal(size=(n, neurons)) if rep is None else rep.mean(1)
    return NeuralTarget(rng.random((n, 8, 8)), average, rep, "toy")


@pytest.mark.parametrize("field, value, expected", [
    ("n_folds", 1, "n_folds must be an integer >= 2"),
    ("n_boot", 0, "n_boot must be an integer >= 1"),
    ("level", 1.0, "level must be a number in (0, 1)"),
    ("noise", "lots", "noise must be one of 'off', 'draw' or an integer >= 1"),
    ("rdm_method", "manhattan", "rdm_method must be one of"),
    ("compare", "whitened_cosine", "compare must be one of"),
    ("layers", [], "layers must be a non-empty list of layer names"),
    ("input_shape", [1, 0], "input_shape must be [channels, size]"),
    ("region", True, "region must be an integer in [1, 3]"),
])
def test_alignment_config_rejects_bad_values_in_one_line(field, value, expected):
    from neuroaikit.alignment import AlignmentConfig

    with pytest.raises(ConfigError) as exc:
        AlignmentConfig(**{field: value})
    _one_line(exc)
    assert str(exc.value).startswith(expected)


def test_alignment_config_from_a_mapping():
    from neuroaikit.alignment import AlignmentConfig

    config = AlignmentConfig.from_dict({"n_folds": 5, "execution": {"device": "cpu"}})
    assert config.n_folds == 5 and config.execution.device == "cpu"
    assert AlignmentConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="unknown .* option.*folds; known: region"):
        AlignmentConfig.from_dict({"folds": 5})
    with pytest.raises(ConfigError, match="execution.precision must be '32'"):
        AlignmentConfig.from_dict({"execution": {"precision": "bf16-mixed"}})


def test_alignment_profile_keeps_its_keyword_api_and_validates_it(rng):
    import torch

    from neuroaikit.alignment import AlignmentResult, alignment_profile

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 6), torch.nn.ReLU())
    target = _target(rng, repeats=4)
    raw = alignment_profile(model, target, (1, 8), n_folds=3, n_boot=20, n_splits=3)
    assert [entry["layer"] for entry in raw["layers"]] == ["1", "2"]  # the plain dict, as before
    result = AlignmentResult.from_dict(raw)
    assert result.layer_names == ["1", "2"] and result.ceilings.available and result.settings.n_folds == 3
    assert result.to_dict() == raw
    with pytest.raises(ConfigError, match="n_boot must be an integer >= 1"):
        alignment_profile(model, target, (1, 8), n_boot=0)
    with pytest.raises(ConfigError, match="convention must be one of"):
        alignment_profile(model, target, (1, 8), convention="r")


def test_check_target_rejects_unusable_data(rng):
    from neuroaikit.alignment import AlignmentConfig, check_target

    config = AlignmentConfig()
    target = _target(rng)
    target.average[2, 1] = np.nan
    with pytest.raises(DataError, match="NaN") as exc:
        check_target(target, config)
    _one_line(exc)
    with pytest.raises(DataError, match="at least 4"):
        check_target(_target(rng, n=3), config)
    with pytest.raises(ConfigError, match="n_folds 10 is too many for toy's 8 stimuli"):
        check_target(_target(rng, n=8), config)
    bad = _target(rng, repeats=3)
    bad.repeats = bad.repeats[:, :, :2]
    with pytest.raises(DataError, match="repeats must be"):
        check_target(bad, config)
