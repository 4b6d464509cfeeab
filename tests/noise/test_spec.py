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
