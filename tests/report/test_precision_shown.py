"""Each section's opening paragraph says where and in what precision its result was computed,
from the execution the run stores (one phrase for all: ``report.sections.computed_on``)."""

from __future__ import annotations

import json

from neuroaikit.report import build_report
from neuroaikit.report.sections import computed_on, device_and_precision
from neuroaikit.runs import Run

BF16 = {"device": "cpu", "precision": "bf16-mixed", "threads": 1}


def _run(path) -> Run:
    path.mkdir(parents=True)
    (path / "metrics.json").write_text("{}")
    return Run(path)


def test_the_phrase_names_the_device_and_the_precision():
    assert computed_on(BF16, "Trained") == " Trained on cpu, bf16-mixed."
    assert computed_on({"device": "cuda:0", "precision": "32"}) == " Computed on cuda:0, float32."
    assert computed_on({"precision": "16-mixed"}) == " Computed in 16-mixed."
    assert computed_on({}) == computed_on(None) == ""  # a result written before the record was kept
    assert device_and_precision("cpu", "bf16-mixed") == "cpu, bf16-mixed"


def test_a_training_run_says_it_trained_in_bf16(tmp_path):
    run = tmp_path / "train"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"epochs": 1, "optimizer": "adam", "lr": 0.001}))
    (run / "metrics.json").write_text(json.dumps({
        "dataset": "digits", "model": "mlp", "noise": {}, "n_train": 100, "n_test": 50, "train_time_s": 1.0,
        "test_accuracy": {"single": 0.9}, "history": [{"epoch": 1, "loss": 1.0, "test_acc": 0.9}], "execution": BF16}))
    assert "training time 1.0 s. Trained on cpu, bf16-mixed.</p>" in build_report(run).read_text()


def test_a_continual_run_says_it_trained_in_bf16(tmp_path):
    from neuroaikit.continual import ContinualResult

    run = _run(tmp_path / "continual")
    ContinualResult(benchmark="split_mnist", scenario="task", strategy="finetune", accuracy_matrix=[[0.9]],
                    average_accuracy=0.9, backward_transfer=0.0, forward_transfer=0.0, forgetting=0.0,
                    accuracy_curve=[0.9], n_tasks=1, iters=10, execution=BF16).save(run)
    assert "s of training. Trained on cpu, bf16-mixed.</p>" in build_report(run.path).read_text()


def test_a_twin_says_where_it_was_fitted(tmp_path):
    run = _run(tmp_path / "twin")
    run.save_result("twin_fit", {"history": [{"epoch": 1, "validation_correlation": 0.3}], "best": {"best_epoch": 1},
                                 "seconds": 2.0, "execution": BF16})
    assert "<p>Twin fitted on cpu, bf16-mixed.</p>" in build_report(run.path).read_text()
    run.save_result("twin_eval", {"data": "x", "dataset": {"name": "x"}, "tier": "test",
                                  "models": {"twin": {"single_trial_correlation": 0.2, "n_trials": 10, "n_neurons": 3}}})
    assert "repeat ceiling. Twin fitted on cpu, bf16-mixed.</p>" in build_report(run.path).read_text()


def _bmi(run_dir, decoder: str) -> str:
    from neuroaikit.bmi.results import BMIResult, DecoderResult

    row = DecoderResult(name=decoder, scheme="within-session", accuracy=0.7, interval=[0.6, 0.8], n_trials=90,
                        per_subject={"1": 0.7}, confusion=[[30, 15], [12, 33]], fit_time_s=1.0,
                        predict_time_s_per_trial=0.001, itr_bits_per_min=1.0)
    BMIResult(dataset={"name": "physionet-mi", "n_trials": 90, "n_channels": 3, "n_samples": 480, "sfreq": 160.0,
                       "classes": ["left", "right"]}, decoders=[row], chance=0.5, execution=BF16).save(_run(run_dir))
    return build_report(run_dir).read_text()


def test_a_bmi_run_says_where_its_deep_decoders_trained(tmp_path):
    assert "chance 0.50. Deep decoders (eegnet, shallow) trained on cpu, bf16-mixed.</p>" in \
        _bmi(tmp_path / "deep", "eegnet")
    assert "trained on" not in _bmi(tmp_path / "riemann", "ts_lr")  # the setting never reached it


def test_a_robustness_evaluation_says_it_attacked_in_float32(tmp_path):
    from neuroaikit.attacks.results import DeployedRule, RobustnessResult, SweepRow

    run = _run(tmp_path / "robust")
    RobustnessResult(rule=DeployedRule(rule="single", n_draws=1), threat_model="Linf", stochastic=False,
                     n_examples=10, n_classes=10, chance=0.1, config={"norm": "Linf", "steps": 2, "checks": 1},
                     clean_accuracy=0.9, clean_accuracy_one_pass=0.9,
                     sweep=[SweepRow(eps=0.1, attacks={"apgd-ce": 0.5}, worst_case=0.5, black_box_only_successes=0.0)],
                     reference_eps=0.1, robust_accuracy=0.5, robust_accuracy_per_attack={"apgd-ce": 0.5},
                     execution={"device": "cpu", "precision": "32"}).save(run)
    assert "fresh evaluations. Attacked on cpu, float32.</p>" in build_report(run.path).read_text()


def test_an_in_silico_probe_says_where_it_was_computed(tmp_path):
    from neuroaikit.insilico.results import InsilicoResult

    run = _run(tmp_path / "probe")
    InsilicoResult(run=str(run.path), dataset="digits", n_images=10, input_shape=[1, 8, 8], visual_degrees=None,
                   noise="off", species="mouse", execution={"device": "cpu", "precision": "32"}).save(run)
    assert "marks simple-like units. Probed on cpu, float32.</p>" in build_report(run.path).read_text()
