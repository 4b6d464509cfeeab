"""Attack settings are validated with a one-line ConfigError naming them: APGD's rho and Square's
p_init are fractions, eot an integer >= 1, and Transfer refuses a keyword its inner attack lacks."""

from __future__ import annotations

import pytest
from torch import nn

from neuroaikit.attacks import APGD, FGSM, PGD, Square, Transfer
from neuroaikit.errors import ConfigError


def tiny():
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 3))


@pytest.mark.parametrize("rho", [5, -0.1, 1.5, float("nan"), "0.5", True])
def test_apgd_refuses_rho_outside_unit_interval(rho):
    with pytest.raises(ConfigError, match=r"rho must be a fraction in \[0, 1\]"):
        APGD(tiny(), eps=0.1, steps=2, rho=rho)


@pytest.mark.parametrize("rho", [0, 0.75, 1])
def test_apgd_accepts_rho_in_unit_interval(rho):
    assert APGD(tiny(), eps=0.1, steps=2, rho=rho).rho == float(rho)


@pytest.mark.parametrize("p_init", [2.0, 0.0, -0.5, float("nan")])
def test_square_refuses_p_init_outside_unit_interval(p_init):
    with pytest.raises(ConfigError, match=r"p_init must be a fraction in \(0, 1\]"):
        Square(tiny(), eps=0.1, n_queries=3, p_init=p_init)


def test_square_accepts_full_square():
    assert Square(tiny(), eps=0.1, n_queries=3, p_init=1).p_init == 1.0


@pytest.mark.parametrize("eot", ["a", 0, 2.5, None])
def test_eot_must_be_a_positive_integer(eot):
    with pytest.raises(ConfigError, match="eot must be an integer >= 1"):
        FGSM(tiny(), eot=eot)


def test_numpy_numbers_and_whole_floats_are_accepted_as_before():
    import numpy as np

    assert APGD(tiny(), eps=0.1, eot=np.int64(2), rho=np.float32(0.75)).eot == 2
    assert PGD(tiny(), eps=np.float32(0.1), eot=2.0, steps=np.int32(3)).steps == 3


def test_transfer_names_an_unknown_inner_setting():
    with pytest.raises(ConfigError, match=r"inner attack PGD has no setting 'stepz'"):
        Transfer(tiny(), tiny(), eps=0.1, stepz=3)


def test_transfer_passes_known_settings():
    transfer = Transfer(tiny(), tiny(), eps=0.1, steps=3, alpha=0.01)
    assert isinstance(transfer.attack, PGD) and transfer.attack.steps == 3
