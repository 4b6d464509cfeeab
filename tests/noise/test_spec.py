import pytest

from neuroaikit.errors import ConfigError
from neuroaikit.noise import NoiseSpec


@pytest.mark.parametrize(
    "text, expected",
    [
        ("gaussian:0.5", NoiseSpec("gaussian", sigma=0.5)),
        ("gaussian:0.5,rectify", NoiseSpec("gaussian", sigma=0.5, rectify=True)),
        ("poisson:gain=2,floor=0.01", NoiseSpec("poisson", gain=2.0, floor=0.01)),
        ("poisson:0.3", NoiseSpec("poisson", gain=0.3)),
        ("multiplicative:sigma=0.2", NoiseSpec("multiplicative", sigma=0.2)),
    ],
)
def test_parse_strings(text, expected):
    assert NoiseSpec.from_any(text) == expected


def test_float_dict_and_roundtrip():
    assert NoiseSpec.from_any(0.3) == NoiseSpec("gaussian", sigma=0.3)
    spec = NoiseSpec("poisson", gain=1.5, floor=0.1, rectify=True)
    assert NoiseSpec.from_any(spec.to_dict()) == spec


@pytest.mark.parametrize(
    "bad, message",
    [("laplace:0.1", "unknown noise kind"), ("gaussian:abc", "expected a number"), ({"sigma": -1}, ">= 0"),
     ({"sgima": 1}, "unknown noise spec keys"), (True, "cannot read")],
)
def test_bad_specs_name_the_problem(bad, message):
    with pytest.raises(ConfigError, match=message):
        NoiseSpec.from_any(bad)


@pytest.mark.parametrize("value, message", [
    ({"kind": "gaussian", "sigma": 0.3, "rectify": "no"}, "rectify must be true or false, got 'no'"),
    ("gaussian:0.5,rectify=maybe", "rectify must be true or false, got 'maybe'"),
    ({"kind": "gaussian", "sigma": True}, "sigma must be a finite number >= 0, got True"),
    ("gaussian:inf", "sigma must be a finite number >= 0, got inf"),
    ("poisson:gain=inf", "gain must be a finite number >= 0, got inf"),
])
def test_values_that_would_be_misread_are_refused(value, message):
    """A text "no" for rectify was true (it clipped the noise at 0); an infinite sigma trained to
    NaN and was reported as a learning-rate problem."""
    with pytest.raises(ConfigError, match=message):
        NoiseSpec.from_any(value)
    assert NoiseSpec.from_any("gaussian:0.5,rectify=false").rectify is False


def test_settings_a_kind_does_not_use_are_named():
    assert NoiseSpec.from_any("multiplicative:gain=2").unused_settings() == ["gain"]
    assert NoiseSpec.from_any("poisson:sigma=0.7").unused_settings() == ["sigma"]
    assert NoiseSpec.from_any("gaussian:0.5,rectify").unused_settings() == []
    from neuroaikit.training import TrainConfig

    with pytest.raises(ConfigError, match=r"noise at relu1: gain does not apply to multiplicative noise \(it uses "
                                          r"sigma\)"):
        TrainConfig(dataset="digits", noise={"relu1": "multiplicative:gain=2"})


def test_a_numpy_number_is_a_gaussian_sigma():
    import numpy as np

    assert NoiseSpec.from_any(np.float32(0.25)) == NoiseSpec("gaussian", sigma=0.25)
