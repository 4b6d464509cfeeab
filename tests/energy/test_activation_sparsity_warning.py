"""ActivationSparsity warns and reports "not counted" (None) instead of a silent 0.0 ("fully
dense") when it counted no activation: functional activations (F.relu) are invisible to its
module hooks."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuroaikit.energy import ActivationSparsity, measure
from neuroaikit.energy.measure import format_energy


class FunctionalReLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 8), nn.Linear(8, 2)

    def forward(self, x):
        return self.b(F.relu(self.a(x)))


class UnusedReLU(FunctionalReLU):
    def __init__(self):
        super().__init__()
        self.act = nn.ReLU()  # registered, but forward uses F.relu


def test_measure_warns_for_functional_activations():
    with pytest.warns(UserWarning, match=r"ActivationSparsity: FunctionalReLU has no activation module.*F\.relu"):
        result = measure(FunctionalReLU(), torch.rand(5, 4))
    assert result["ActivationSparsity"] is None
    assert "ActivationSparsity not counted" in format_energy(result)


def test_warns_when_activation_modules_never_ran():
    metric = ActivationSparsity().attach(UnusedReLU())
    metric.begin_batch()
    metric.end_batch(1)
    metric.detach()
    with pytest.warns(UserWarning, match="UnusedReLU's activation modules produced no output"):
        assert metric.compute() is None


def test_no_warning_when_activations_are_counted():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    metric = ActivationSparsity().attach(model)
    metric.begin_batch()
    model(torch.rand(3, 4))
    metric.end_batch(3)
    metric.detach()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert 0.0 <= metric.compute() <= 1.0
