"""The accuracy matrix and its metrics on scripted streams, computed by hand."""

from __future__ import annotations

import math

import pytest

from neuroaikit.continual import (AverageAccuracy, BackwardTransfer, Forgetting, ForwardTransfer, accuracy_curve,
                                  summarise)
from neuroaikit.errors import ConfigError

# a scripted three-task stream: R[i][j] after training task i, tested on task j
R = [[0.90, 0.20, 0.10],
     [0.60, 0.95, 0.30],
     [0.50, 0.70, 0.80]]
UNTRAINED = [0.10, 0.10, 0.20]


def test_metrics_of_a_scripted_stream():
    assert AverageAccuracy()(R) == pytest.approx((0.50 + 0.70 + 0.80) / 3)
    assert BackwardTransfer()(R) == pytest.approx(((0.50 - 0.90) + (0.70 - 0.95)) / 2)
    assert ForwardTransfer()(R, UNTRAINED) == pytest.approx(((0.20 - 0.10) + (0.30 - 0.20)) / 2)
    # forgetting: best earlier accuracy minus final (task 0: max(0.90, 0.60) - 0.50; task 1: 0.95 - 0.70)
    assert Forgetting()(R) == pytest.approx((0.40 + 0.25) / 2)
    assert accuracy_curve(R) == pytest.approx([0.90, (0.60 + 0.95) / 2, (0.50 + 0.70 + 0.80) / 3])


def test_forgetting_uses_the_best_accuracy_not_the_first():
    rising = [[0.5, 0.0], [0.4, 0.9]]
    assert Forgetting()(rising) == pytest.approx(0.1)
    matrix = [[0.5, 0.0, 0.0], [0.8, 0.9, 0.0], [0.6, 0.9, 0.7]]
    assert Forgetting()(matrix) == pytest.approx(((0.8 - 0.6) + (0.9 - 0.9)) / 2)
    assert BackwardTransfer()(matrix) == pytest.approx(((0.6 - 0.5) + (0.9 - 0.9)) / 2)


def test_one_task_and_missing_baseline_are_undefined_not_zero():
    figures = summarise([[0.7]])
    assert figures["average_accuracy"] == pytest.approx(0.7)
    assert math.isnan(figures["backward_transfer"]) and math.isnan(figures["forgetting"])
    assert math.isnan(ForwardTransfer()(R))


def test_the_summary_line_of_one_task_says_n_a_not_nan():
    """The line the run log and ``neuroaikit continual`` print: undefined metrics read n/a."""
    from neuroaikit.continual import ContinualResult

    figures = summarise([[0.7]], [0.1])
    result = ContinualResult(benchmark="split-mnist", scenario="class", strategy="finetune",
                             accuracy_matrix=[[0.7]], accuracy_curve=[0.7], **figures)
    assert result.summary() == ("average accuracy 0.7000; forgetting n/a; backward transfer n/a; "
                                "forward transfer n/a")
    result.forward_transfer, result.backward_transfer = 0.05, -0.125
    assert "backward transfer -0.1250; forward transfer +0.0500" in result.summary()


def test_bad_matrices_are_one_line_errors():
    with pytest.raises(ConfigError, match="square"):
        AverageAccuracy()([[0.1, 0.2]])
    with pytest.raises(ConfigError, match="one entry per task"):
        ForwardTransfer()(R, [0.1])
