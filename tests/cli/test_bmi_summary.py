"""What ``neuroaikit bmi`` prints: per-subject accuracy, robustness and pseudo-online tables."""

from __future__ import annotations

import math

from neuroaikit.bmi.results import BMIResult, DecoderResult
from neuroaikit.cli.cmd_bmi import print_result
from neuroaikit.results import MISSING


def _row(name, per_subject, robustness=None, pseudo_online=None):
    return DecoderResult(name=name, scheme="within-session", accuracy=0.7, interval=[0.6, 0.8], n_trials=128,
                         per_subject=per_subject, confusion=[[1]], fit_time_s=0.1, predict_time_s_per_trial=0.001,
                         robustness=robustness, pseudo_online=pseudo_online)


def _result(decoders, subjects):
    dataset = {"name": "ssvep-exo", "n_trials": 128, "n_channels": 8, "classes": ["13", "17", "21", "rest"],
               "subjects": subjects}
    return BMIResult(dataset=dataset, decoders=decoders, chance=0.25)


def _lines(capsys):
    return [line.split() for line in capsys.readouterr().out.splitlines()]


def test_per_subject_accuracy_and_mean_with_several_subjects(capsys):
    print_result(_result([_row("cca", {"1": 0.75, "2": 0.5}), _row("trca", {"1": 1.0})], ["1", "2"]))
    lines = _lines(capsys)
    start = lines.index(["accuracy", "by", "subject:"])
    assert lines[start + 1:start + 4] == [["decoder", "1", "2", "mean"], ["cca", "0.750", "0.500", "0.625"],
                                          ["trca", "1.000", MISSING, "1.000"]]


def test_one_subject_prints_no_per_subject_table(capsys):
    print_result(_result([_row("cca", {"1": 0.75})], ["1"]))
    out = capsys.readouterr().out
    assert "by subject" not in out and "robustness" not in out and "pseudo-online" not in out


def test_robustness_and_windows_tables(capsys):
    robustness = {"clean": 0.7, "noise_model": "sensor", "eot": 1, "noise": {"10": 0.6}, "channels_lost": {"1": 0.5},
                  "electrode_shift": math.nan, "apgd": {"0.5": 0.1}}
    windows = [{"window_s": 1.0, "accuracy": 0.45, "inference_s_per_window": 0.001, "latency_s": 3.001},
               {"window_s": 2.0, "accuracy": 0.55, "inference_s_per_window": 0.002, "latency_s": 4.002}]
    print_result(_result([_row("cca", {"1": 0.7}, robustness, windows)], ["1"]))
    lines = _lines(capsys)
    start = next(i for i, line in enumerate(lines) if line[0] == "robustness")
    assert "sensor" in lines[start]
    assert lines[start + 1] == ["decoder", "clean", "SNR", "10", "dB", "1", "ch", "lost", "shift", "APGD", "0.5", "uV"]
    assert lines[start + 2] == ["cca", "0.700", "0.600", "0.500", MISSING, "0.100"]
    start = next(i for i, line in enumerate(lines) if line[0] == "pseudo-online")
    assert lines[start + 2:start + 4] == [["cca", "1", "0.450", "3.001"], ["cca", "2", "0.550", "4.002"]]
