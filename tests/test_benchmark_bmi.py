"""benchmarks/bmi.py times every decoder on what its field says: one 1-s window."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from benchmark_modules import load_benchmark


class _Recorder:
    """A decoder that keeps the shapes it was fitted and asked on."""

    def __init__(self):
        self.shapes = []

    def fit(self, X, y):
        self.shapes.append(("fit", X.shape))
        return self

    def predict(self, X):
        self.shapes.append(("predict", X.shape))
        return np.zeros(len(X), dtype=int)


def test_inference_is_timed_on_a_1s_window_of_a_decoder_fitted_on_1s_windows():
    bench = load_benchmark("bmi")
    ds = SimpleNamespace(X=np.zeros((6, 4, 30)), y=np.array([0, 1] * 3), sfreq=10.0)  # 3-s epochs
    decoder = _Recorder()
    assert bench.window_inference_s(lambda: decoder, ds, repeats=2) >= 0
    assert decoder.shapes == [("fit", (6, 4, 10)), ("predict", (1, 4, 10)), ("predict", (1, 4, 10))]


def _run(dropout, seed, accuracy, per_subject):
    return {"dropout": dropout, "seed": seed, "accuracy": accuracy, "per_subject": per_subject}


def test_dropout_runs_are_paired_by_seed_and_by_held_out_subject():
    bench = load_benchmark("bmi_dropout")
    runs = [_run(0.25, 1, 0.50, {"1": 0.4, "2": 0.6}), _run(0.5, 1, 0.40, {"1": 0.3, "2": 0.5}),
            _run(0.25, 2, 0.30, {"1": 0.2, "2": 0.4}), _run(0.5, 2, 0.35, {"1": 0.3, "2": 0.4}),
            _run(0.25, 3, 0.45, {"1": 0.5, "2": 0.4})]  # seed 3 has no 0.5 run: left out of the pairs
    paired = bench.paired_summary(runs, 0.25, 0.5)
    assert paired["seeds"] == [1, 2]
    assert paired["per_seed"] == pytest.approx({"1": 0.10, "2": -0.05})
    assert paired["mean"] == pytest.approx(0.025)
    assert paired["sd"] == pytest.approx(np.std([0.10, -0.05], ddof=1))
    assert (paired["seeds_first_better"], paired["seeds_tied"]) == (1, 0)
    assert paired["per_subject_mean"] == pytest.approx({"1": 0.0, "2": 0.05})
    summary = bench.rate_summary(runs, 0.25)
    assert summary["n_seeds"] == 3 and summary["mean"] == pytest.approx(1.25 / 3)
    assert (summary["min"], summary["max"]) == (0.30, 0.50)


@pytest.mark.parametrize("argv, message", [
    (["--dropouts", "0.25", "0.25"], "--dropouts and --seeds must not repeat a value"),
    (["--dropouts", "1.0"], "deep_dropout must be a number in [0, 1), got 1.0"),
    (["--seeds", "-1"], "seed must be"),
    (["--subjects", "3"], "no SSVEP subject 3 in"),
])
def test_bad_dropout_settings_are_one_line_before_anything_trains(argv, message, tmp_path, capsys, monkeypatch):
    bench = load_benchmark("bmi_dropout")
    import neuroaikit.bmi

    def must_not_decode(*args, **kwargs):
        raise AssertionError("a decoder was trained although the job should have been refused")

    monkeypatch.setattr(neuroaikit.bmi, "decode", must_not_decode)
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--data-dir", str(tmp_path), "--quick", "--subjects", "1", "2", *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]


def test_a_data_folder_without_subjects_is_one_line(tmp_path, capsys):
    bench = load_benchmark("bmi_dropout")
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--data-dir", str(tmp_path), "--quick"])
    assert exit_info.value.code == 2
    assert "no SSVEP exoskeleton subject folders (subjectNN) in it" in capsys.readouterr().err.strip().splitlines()[-1]


def test_cca_rule_benchmark_argmax_never_answers_rest(shared_data, tmp_path):
    """MOABB's argmax rule gets every rest trial wrong, so its accuracy is exactly its accuracy on
    the stimulated trials times their share; the LDA rule is the bmi decoder, 5-fold."""
    import json

    from neuroaikit.bmi import load_ssvep_exo, make_decoder
    from neuroaikit.bmi.evaluation import cross_validate

    bench = load_benchmark("bmi_cca_rule")
    out = tmp_path / "cca.json"
    figures = bench.main(["--data-dir", str(shared_data / "eeg"), "--subjects", "1", "--json", str(out)])
    row = figures["per_subject"]["1"]
    assert row["argmax_ceiling"] == pytest.approx(0.75)  # four balanced classes, one of them rest
    assert row["argmax_accuracy"] == pytest.approx(row["argmax_accuracy_stimulated"] * row["argmax_ceiling"])
    ds = load_ssvep_exo(shared_data / "eeg", [1])
    assert row["lda_accuracy"] == cross_validate(make_decoder("cca", ds), ds, "within-session", 5, seed=42).accuracy
    assert json.loads(out.read_text())["mean"]["lda_accuracy"] == row["lda_accuracy"]


def test_cca_rule_benchmark_maps_scores_to_class_labels_not_positions():
    from types import SimpleNamespace

    import torch

    bench = load_benchmark("bmi_cca_rule")
    decoder = SimpleNamespace(classes_=np.array([10, 20, 30, 40]), stimulated_=[0, 1, 3],
                              scores=lambda X: torch.tensor([[0.1, 0.9, 0.2], [0.8, 0.1, 0.3], [0.1, 0.2, 0.7]]))
    assert bench.stimulated_classes(decoder).tolist() == [10, 20, 40]
    assert bench.argmax_rule(decoder, SimpleNamespace(X=None)).tolist() == [20, 10, 40]
