"""A unit that never responds has undefined (nan / None) tuning measures, never 0, and drops out
of distributions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from neuroaikit.insilico import Geometry, GratingProtocol, characterize, tuning_curves
from neuroaikit.insilico.groundtruth import GaborUnits
from neuroaikit.insilico.measures import (circular_variance, dsi, lifetime_sparseness, orientation_selectivity, osi,
                                          preferred_angle, spatial_frequency_tuning)
from neuroaikit.insilico.reference import ks_distance, published

SHAPE = (32, 32)
ANGLES = np.arange(8) * np.pi / 8


class _WithSilentUnit(nn.Module):
    """Two Gabor simple cells and, between them, a unit whose output is 0 for every image."""

    def __init__(self):
        super().__init__()
        self.gabors = GaborUnits(SHAPE, np.radians([0.0, 60.0]), np.array([0.1, 0.12]), sigma=4.0)
        self.input_mean, self.input_std = self.gabors.input_mean, self.gabors.input_std

    def forward(self, x):
        r = self.gabors(x)
        return torch.stack([r[:, 0], torch.zeros_like(r[:, 0]), r[:, 1]], 1)


@pytest.mark.parametrize("measure", [
    lambda r: circular_variance(r, ANGLES),
    lambda r: orientation_selectivity(r, ANGLES),
    lambda r: preferred_angle(r, ANGLES),
    lambda r: osi(r, ANGLES),
    lambda r: dsi(r, 2 * ANGLES),
    lambda r: spatial_frequency_tuning(r, np.geomspace(0.05, 0.4, 8))[0],
    lambda r: lifetime_sparseness(r),
], ids=["circular_variance", "1-CV", "preferred_angle", "osi", "dsi", "preferred_sf", "lifetime_sparseness"])
def test_a_silent_unit_is_undefined_not_zero(measure):
    tuned = np.exp(np.cos(2 * ANGLES))  # a responsive unit
    below_baseline = -np.ones(8)  # rectified to nothing
    values = measure(np.stack([tuned, np.zeros(8), below_baseline], 1))
    assert np.isfinite(values[0])
    assert np.isnan(values[1:]).all()


def test_characterize_reports_silent_units_as_none_and_excludes_them():
    protocol = GratingProtocol(n_directions=8, spatial_frequencies=[0.05, 0.1, 0.2], n_phases=4, sizes=[8, 16, 45])
    units = _WithSilentUnit()
    images = torch.rand(20, 1, *SHAPE)
    measured = characterize(units, Geometry(SHAPE), protocol, natural_images=images)
    assert measured.responsive == [True, False, True]
    for name in ("preferred_orientation", "orientation_selectivity", "osi", "direction_selectivity", "dsi",
                 "preferred_sf", "modulation_ratio", "suppression_index", "lifetime_sparseness"):
        values = getattr(measured, name)
        assert values[1] is None, name
        assert values[0] is not None and values[2] is not None, name
    # a static Gabor answers a grating and its opposite alike: no preferred direction (its
    # resultant is rounding, whose angle was reported), and no direction selectivity
    assert measured.preferred_direction == [None, None, None]
    assert measured.dsi[0] == pytest.approx(0, abs=1e-9) and measured.dsi[2] == pytest.approx(0, abs=1e-9)
    # the silent unit is left out of a distance to a published distribution, not counted as 0
    sfs = measured.array("preferred_sf")
    reference = published("macaque", "preferred_sf")
    assert ks_distance(sfs, reference) == ks_distance(sfs[[0, 2]], reference)


class _Linear(nn.Module):
    """A linear unit (a convolution's pre-activation): phase-averaged gratings leave it at its
    grey-screen response, so only float32 rounding separates them."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 9)
        self.input_mean, self.input_std = 0.5, 0.25

    def forward(self, x):
        return self.conv(x)[:, :, 12, 12]


def test_units_no_grating_drives_above_rounding_have_no_measures():
    protocol = GratingProtocol(n_directions=8, spatial_frequencies=[0.05, 0.1, 0.2], n_phases=8, sizes=[8, 16, 45])
    torch.manual_seed(0)
    measured = characterize(_Linear(), Geometry(SHAPE), protocol)
    assert measured.responsive == [False, False, False]
    for name in ("preferred_orientation", "orientation_selectivity", "osi", "modulation_ratio", "preferred_sf"):
        assert getattr(measured, name) == [None, None, None], name
    tuning = tuning_curves(_Linear(), SHAPE, n_orientations=8, spatial_frequencies=(0.05, 0.1, 0.2), n_phases=8)
    assert not tuning["responsive"].any() and np.isnan(tuning["osi"]).all()


def test_tuning_curves_marks_silent_units():
    tuning = tuning_curves(_WithSilentUnit(), SHAPE, n_orientations=8, spatial_frequencies=(0.05, 0.1, 0.2),
                           n_phases=4)
    for key in ("osi", "preferred_orientation", "preferred_sf"):
        assert np.isnan(tuning[key][1]) and np.isfinite(tuning[key][[0, 2]]).all(), key
