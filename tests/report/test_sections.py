"""Report sections say what was stored and what ran: undefined values as n/a, ceilings on their
axis's scale, the attacks and splits that ran, the epochs trained, user strings literally, and a
malformed result file as a one-line DataError naming it."""

import json
import math
import re

import pytest

from neuroaikit.errors import DataError
from neuroaikit.report import Section, build_report, render_page
from neuroaikit.runs import Run


def _run(path) -> Run:
    """An empty run folder that results can be saved into."""
    path.mkdir(parents=True)
    (path / "metrics.json").write_text("{}")
    return Run(path)


def _cells(page: str) -> list[str]:
    return re.findall(r"<td>([^<]*)</td>", page)


def test_table_cells_show_undefined_values_as_na():
    page = render_page("t", [Section("s").table(["a", "b", "c", "d", "e"], [[None, math.nan, math.inf, 0.25, 3]])])
    assert _cells(page) == ["n/a", "n/a", "n/a", f"{0.25:.4g}", "3"]
    import numpy as np

    page = render_page("t", [Section("s").table(["a", "b", "c"], [[np.float32("nan"), np.float32(0.5), np.int64(7)]])])
    assert _cells(page) == ["n/a", "0.5", "7"]  # numpy scalars as their Python kin


def test_twin_table_read_back_from_json_shows_na_for_undefined_scores(tmp_path):
    """Stored scores that were NaN are null on disk and None when read: the key is there, so the
    table's ``.get(key, "n/a")`` fallback never applied and the page said None."""
    run = _run(tmp_path / "twin")
    block = {"single_trial_correlation": 0.2, "n_trials": 10, "n_neurons": 3, "correlation_to_average": None,
             "feve": math.nan, "fraction_of_oracle": None, "single_trial_over_oracle": None}
    run.save_result("twin_eval", {"data": "x", "dataset": {"name": "x"}, "tier": "test", "models": {"twin": block}})
    page = build_report(run.path).read_text()
    assert "<td>twin</td><td>0.2</td><td>n/a</td><td>n/a</td><td>n/a</td><td>n/a</td>" in page
    assert "None" not in "".join(_cells(page)) and "nan" not in "".join(_cells(page))


def test_insilico_table_shows_na_for_a_measure_no_unit_has(tmp_path):
    """A layer where no unit has a defined SF bandwidth (every value None) has no median: n/a; each
    median says over how many units it was taken."""
    import numpy as np

    from neuroaikit.insilico.characterize import UnitMeasures
    from neuroaikit.insilico.results import InsilicoResult, LayerProbe

    curves = {"directions_deg": [0.0, 90.0, 180.0, 270.0], "direction": [[1.0, 2.0, 1.0, 0.5]],
              "spatial_frequencies": [0.05, 0.1, 0.2], "sf": [[1.0, 2.0, 1.0]]}
    osi = [0.2, 0.4, None]
    measures = UnitMeasures(n_units=3, orientation_selectivity=osi, sf_bandwidth=[None, None, None], curves=curves)
    run = _run(tmp_path / "probe")
    InsilicoResult(run="r", dataset="digits", n_images=10,
                   layers=[LayerProbe(layer="relu1", measures=measures)]).save(run)
    page = build_report(run.path).read_text()
    row = re.search(r"<tr><td>relu1</td>.*?</tr>", page).group(0)
    cells = _cells(row)
    assert cells[2] == f"{float(np.median([0.2, 0.4])):.4g} (2)"  # 1-CV: the median of the 2 defined values
    assert cells[5] == "n/a (0)"  # SF bandwidth: no unit has one
    assert "None" not in row


def _alignment(convention: str, median_reliability: float):
    from neuroaikit.alignment.results import (AlignmentResult, AlignmentSettings, Ceilings, CKACeiling, LayerAlignment,
                                              MetricScore, NeuralSummary, PredictivityCeiling, PredictivityScore,
                                              RSACeiling)

    stored = median_reliability ** 0.5 if convention.startswith("r/") else median_reliability  # as profile.py stores
    layers = [LayerAlignment(layer=f"l{k}", n_units=4,
                             rsa=MetricScore(score=0.1 * k, ceiling=0.8),
                             cka=MetricScore(score=0.2 * k, ceiling=0.9),
                             predictivity=PredictivityScore(score=0.3 * k, ceiling=stored, convention=convention))
              for k in (1, 2)]
    settings = AlignmentSettings(rdm="correlation", compare="spearman", cka_kernel="linear", cka_debiased=True,
                                 mapping="ridge", n_folds=3, convention=convention, n_boot=10, ci_level=0.95,
                                 n_splits=5, noise="off", seed=0, input_shape=[1, 8, 8])
    ceilings = Ceilings(rsa=RSACeiling(ceiling=0.8), cka=CKACeiling(ceiling=0.9),
                        predictivity=PredictivityCeiling(median_reliability=median_reliability, convention=convention))
    return AlignmentResult(neural=NeuralSummary(name="n", n_stimuli=5, n_neurons=4, n_repeats=4), settings=settings,
                           ceilings=ceilings, neural_rdm=[0.1] * 10, layers=layers)


@pytest.mark.parametrize("convention", ["r/sqrt(reliability)", "r2/reliability"])
def test_alignment_figure_draws_each_ceiling_on_its_axis_scale(convention):
    """The predictivity panel plots median r; its ceiling is sqrt(median reliability) under both
    conventions, though r2/reliability stores the reliability itself (an r^2 scale)."""
    import matplotlib.pyplot as plt

    from neuroaikit.report.sections.alignment import _score_figure

    reliability = 0.64
    fig = _score_figure(_alignment(convention, reliability))
    red = [[line.get_ydata()[0] for line in ax.get_lines() if line.get_color() == "tab:red"] for ax in fig.axes[:3]]
    plt.close(fig)
    assert red[0] == [pytest.approx(0.8)] and red[1] == [pytest.approx(0.9)]  # RSA, CKA: as stored
    assert red[2] == [pytest.approx(math.sqrt(reliability))]


def test_alignment_interval_that_excludes_its_score_is_drawn_as_stored():
    """A percentile bootstrap with few resamples gave fc1 a predictivity of -0.2358 with the
    interval [-0.2335, -0.1868]; the error bars got a negative length and the report, built after
    alignment.json was saved, ended in an internal error."""
    import matplotlib.pyplot as plt

    from neuroaikit.report.sections.alignment import _score_figure

    result = _alignment("r/sqrt(reliability)", 0.64)
    part = result.layers[0].predictivity
    part.score, part.ci_low, part.ci_high = -0.2358, -0.2335, -0.1868
    fig = _score_figure(result)
    segments = fig.axes[2].collections[0].get_segments()
    plt.close(fig)
    assert segments[0][:, 1].tolist() == pytest.approx([-0.2335, -0.1868])


def test_twin_start_whose_nan_was_stored_as_null_reads_as_na(tmp_path):
    """A start that predicted constants has a NaN validation r, null in the JSON file and None
    when read back; the report said internal error formatting it."""
    run = _run(tmp_path / "twin")
    starts = [{"seed": 0, "validation_correlation": 0.09}, {"seed": 77, "validation_correlation": 0.37},
              {"seed": 78, "validation_correlation": math.nan}]
    run.save_result("twin_fit", {"history": [{"epoch": 1, "validation_correlation": 0.37, "starts": starts},
                                             {"epoch": 2, "validation_correlation": None}],
                                 "best": {"best_epoch": 1, "stopped_by": "max_epochs"}, "seconds": 3})
    assert json.loads((run.path / "results" / "twin_fit.json").read_text())["history"][0]["starts"][2][
        "validation_correlation"] is None
    page = build_report(run.path).read_text()
    best = max(range(2), key=lambda i: starts[i]["validation_correlation"])  # the NaN start never wins
    assert (f"from 3 starts (validation r {0.09:.4f}, {0.37:.4f}, n/a); the fit went on from start {best + 1} "
            f"(seed {starts[best]['seed']})") in page


def _robustness(norm: str, stochastic: bool, attacks: list[str]):
    from neuroaikit.attacks.results import DeployedRule, RobustnessResult, SweepRow

    config = {"norm": norm, "steps": 7, "eot": 5, "square_queries": 30, "random_trials": 4, "checks": 3}
    sweep = [SweepRow(eps=eps, attacks={name: 0.5 for name in attacks}, worst_case=0.5, black_box_only_successes=0.0)
             for eps in (0.1, 0.3)]
    return RobustnessResult(rule=DeployedRule(rule="single", n_draws=1), threat_model=norm, stochastic=stochastic,
                            n_examples=100, n_classes=10, chance=0.1, config=config, clean_accuracy=0.9,
                            clean_accuracy_one_pass=0.9, sweep=sweep, reference_eps=0.3, robust_accuracy=0.5,
                            robust_accuracy_per_attack={name: 0.5 for name in attacks})


def test_robustness_text_names_the_attacks_that_ran(tmp_path):
    """Square runs for L-inf only; a deterministic model is attacked with EOT 1 whatever --eot was."""
    l2 = tmp_path / "l2"
    _robustness("L2", True, ["apgd-ce", "apgd-dlr", "transfer", "random"]).save(_run(l2))
    page = build_report(l2).read_text()
    assert ("APGD 7 steps with EOT 5, transfer from the noise-off twin, random noise (4 trials). An image"
            in page)
    assert "Square" not in page

    det = tmp_path / "det"
    _robustness("Linf", False, ["apgd-ce", "apgd-dlr", "transfer", "random", "square", "mine"]).save(_run(det))
    page = build_report(det).read_text()
    assert ("APGD 7 steps with EOT 1 (the model is deterministic), transfer from the noise-off twin, random noise "
            "(4 trials), Square 30 queries, mine (user attack). An image") in page
    assert "EOT 5" not in page


def _bmi(run_dir, scheme: str, itr, classes=("left", "right")):
    from neuroaikit.bmi.results import BMIResult, DecoderResult

    robustness = {"clean": 0.7, "noise": {"10": 0.6}, "channels_lost": {"2": 0.65}, "electrode_shift": 0.66,
                  "apgd": {"1": 0.4}, "eot": 1, "noise_model": "sensor"}
    decoder = DecoderResult(name="csp_lda", scheme=scheme, accuracy=0.7, interval=[0.6, 0.8], n_trials=90,
                            per_subject={"1": 0.7, "2": 0.7}, confusion=[[30, 15], [12, 33]], fit_time_s=1.0,
                            predict_time_s_per_trial=0.001, itr_bits_per_min=itr, robustness=robustness)
    BMIResult(dataset={"name": "physionet-mi", "n_trials": 90, "n_channels": 3, "n_samples": 480, "sfreq": 160.0,
                       "classes": list(classes)}, decoders=[decoder], chance=0.5).save(_run(run_dir))
    return build_report(run_dir).read_text()


def test_bmi_robustness_caption_follows_the_scheme(tmp_path):
    loso = _bmi(tmp_path / "loso", "loso", 1.0)
    assert "leave-one-subject-out: fitted on the other subjects, every trial of the held-out one perturbed" in loso
    assert "held-out 25 %" not in loso
    within = _bmi(tmp_path / "within", "within-session", 1.0)
    assert "robustness (held-out 25 % per subject, mean over subjects" in within
    assert "leave-one-subject-out" not in within


def test_bmi_missing_itr_is_na_not_zero(tmp_path):
    itr_cell = 6  # decoder, evaluation, accuracy, CI, ROC-AUC, p, ITR
    assert _cells(_bmi(tmp_path / "none", "within-session", None))[itr_cell] == "n/a"
    assert _cells(_bmi(tmp_path / "some", "within-session", 12.345))[itr_cell] == f"{12.345:.2f}"


def test_dollar_signs_in_user_strings_are_drawn_literally(tmp_path):
    """Class names reach the confusion matrices' tick labels: "$_$" made matplotlib's math text fail."""
    import matplotlib

    before = matplotlib.rcParams["text.parse_math"]
    page = _bmi(tmp_path / "dollar", "within-session", 1.0, classes=("lr$_$0.1", "b$"))
    assert "classes lr$_$0.1, b$" in page
    assert matplotlib.rcParams["text.parse_math"] == before  # the report's setting does not leak


def _training_metrics(history, **overrides):
    metrics = {"dataset": "digits", "model": "cnn", "noise": {}, "n_train": 100, "n_test": 50,
               "test_accuracy": {"single": 0.9}, "history": history, "train_time_s": 1.0}
    return {**metrics, **overrides}


def _epoch(k, **extra):
    return {"epoch": k, "loss": 1.0 / k, "test_acc": 0.5 + 0.1 * k, **extra}


def test_training_text_gives_the_epochs_that_ran(tmp_path):
    """A callback can stop training before the configured epochs (training.loop: stop_training)."""
    history = [_epoch(1), _epoch(2, stop_training=1.0)]
    stopped = tmp_path / "stopped"
    stopped.mkdir()
    (stopped / "config.json").write_text(json.dumps({"epochs": 10, "optimizer": "adam", "lr": 0.001}))
    (stopped / "metrics.json").write_text(json.dumps(_training_metrics(history)))
    page = build_report(stopped).read_text()
    assert (f"{len(history)} epochs of the 10 configured (training stopped early at a callback&#x27;s request), "
            "training time") in page

    full = tmp_path / "full"
    full.mkdir()
    (full / "config.json").write_text(json.dumps({"epochs": len(history)}))
    (full / "metrics.json").write_text(json.dumps(_training_metrics([_epoch(1), _epoch(2)])))
    assert f"{len(history)} epochs, training time" in build_report(full).read_text()


@pytest.mark.parametrize("name, content, problem", [
    ("metrics.json", _training_metrics([], test_accuracy=5), "test_accuracy must be a JSON object, not a number"),
    ("metrics.json", {"history": [], "test_accuracy": {}}, "TrainingResult: the stored result lacks dataset"),
    ("metrics.json", _training_metrics([{"epoch": 1}]), "history[0] lacks loss, test_acc"),
    ("results/bmi.json", {"dataset": {}, "decoders": [], "chance": 0.5}, "dataset lacks name"),
    ("metrics.json", _training_metrics([_epoch(1), {**_epoch(2), "test_acc": "0.7"}]),
     "history[1].test_acc must be a number, not a string"),
    ("metrics.json", _training_metrics([_epoch(1)], train_time_s="1.5"), "TrainingResult: train_time_s must be a number"),
    ("metrics.json", _training_metrics([_epoch(1)], n_train=True), "TrainingResult: n_train must be a number, not true or false"),
    ("results/robustness.json", {"clean_accuracy": 0.9, "robust_accuracy_per_attack": {"square": "0.5"}},
     "RobustnessResult: robust_accuracy_per_attack.square must be a number, not a string"),
    ("metrics.json", _training_metrics([_epoch(1)], test_accuracy={"single": "0.9"}),
     "test_accuracy.single must be a number, not a string"),
    ("results/bmi.json", {"dataset": {"name": "d", "n_trials": 1, "n_channels": 1, "n_samples": 1, "sfreq": 1.0,
                                      "classes": ["a"]}, "decoders": [], "chance": "0.5"},
     "BMIResult: chance must be a number, not a string"),
    ("results/bmi.json", {"dataset": {"name": "d", "n_trials": 1, "n_channels": 1, "n_samples": 1, "sfreq": 1.0,
                                      "classes": ["a"]}, "chance": 0.5, "decoders": [
        {"name": "lda", "scheme": "s", "accuracy": 0.7, "interval": [0.6, 0.8], "n_trials": 9, "per_subject": {"1": 0.7},
         "confusion": [[1]], "fit_time_s": 1.0, "predict_time_s_per_trial": 0.1,
         "robustness": {"clean": 0.7, "noise": {"10": "0.6"}, "channels_lost": {}, "electrode_shift": 0.6, "apgd": {}}}]},
     "lda.robustness.noise.10 must be a number, not a string"),
    ("results/twin_eval.json", "x", "TwinEvaluation: expected a JSON object, got a string"),
    ("results/twin_eval.json", {"data": "x", "dataset": {}, "tier": "t", "models": {"twin": 1}},
     "models.twin must be a JSON object, not a number"),
    ("results/twin_fit.json", {"history": "x", "best": {}, "seconds": 1}, "history must be a JSON array, not a string"),
    ("results/bmi.json", {"dataset": {"name": "d", "n_trials": 1, "n_channels": 1, "n_samples": 1, "sfreq": 1.0,
                                      "classes": ["a"]}, "decoders": [3], "chance": 0.5},
     "decoders[0] must be a JSON object, not a number"),
])
def test_malformed_result_files_are_a_data_error_naming_the_file(tmp_path, name, content, problem):
    run = tmp_path / "run"
    (run / "results").mkdir(parents=True)
    (run / "metrics.json").write_text("{}")
    (run / name).write_text(json.dumps(content))
    with pytest.raises(DataError) as info:
        build_report(run)
    assert str(info.value).startswith(f"{run / name}: {problem}")
    assert "\n" not in str(info.value)
