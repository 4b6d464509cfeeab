"""``calcium infer`` / ``calcium evaluate`` on the workflow core: configs, run lifecycle,
progress, typed results, CLI errors, and the fixed bugs (.mat + --rate, all-NaN traces,
spikes after the last frame, the backend the report names)."""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest
import torch
import scipy.io as sio

from neuroaikit.cli.main import main
from neuroaikit.errors import ConfigError, DataError
from neuroaikit.execution import ExecutionConfig
from neuroaikit.neural.calcium import (
    CalciumEvaluation,
    CalciumInference,
    CalciumRecording,
    EvaluationConfig,
    InferConfig,
    load_cascade_mat,
    oasis_available,
    run_evaluation,
    run_inference,
)
from neuroaikit.progress import Progress, silent
from neuroaikit.report import escape
from neuroaikit.runs import Run

DS14_FILE = "calcium/DS14-GCaMP6s-m-V1/CAttached_Chen2013_GC6s_cell1_full_mini.mat"
ONE_POINT_GRID = {"tau_decay_s": [1.5], "tau_rise_s": [0.0], "penalty": ["l1"], "smoothing_s": [0.2]}


def synthetic_dff(seconds=40.0, rate=30.0, tau=0.8, seed=0):
    """AR(1) calcium driven by Poisson spikes plus noise: (dff, spike times in s)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    counts = rng.poisson(0.5 / rate, n)
    g = np.exp(-1.0 / (tau * rate))
    calcium = np.zeros(n)
    for t in range(n):
        calcium[t] = (g * calcium[t - 1] if t else 0.0) + 0.3 * counts[t]
    return calcium + rng.normal(0, 0.05, n), np.repeat(np.arange(n) / rate, counts)


def write_cascade_mat(path, traces, spikes, rate=30.0):
    """A Cascade-format file: struct array CAttached, spike times in units of 1e-4 s."""
    records = np.zeros((1, len(traces)), dtype=[(n, object) for n in ("fluo_time", "fluo_mean", "events_AP")])
    for i, trace in enumerate(traces):
        records[0, i]["fluo_time"] = np.arange(len(trace)) / rate
        records[0, i]["fluo_mean"] = np.asarray(trace, float)
        records[0, i]["events_AP"] = np.asarray(spikes[i], float) * 1e4
    sio.savemat(str(path), {"CAttached": records})
    return path


def nothing_created(out) -> bool:
    return not out.exists() and not out.with_name(out.name + ".partial").exists()


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err, err
    return err


@pytest.fixture
def npy_traces(tmp_path):
    dff, _ = synthetic_dff()
    path = tmp_path / "dff.npy"
    np.save(path, np.stack([dff, dff[::-1]]))
    return path


# -- configs --------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [InferConfig, EvaluationConfig])
def test_every_config_field_declares_constraints(cls):
    names = {f.name for f in dataclasses.fields(cls)} - {"execution"}
    assert names == set(cls._parameter_constraints)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"smoothing_s": 0}, "smoothing_s"),
        ({"frame_rate": -1.0}, "frame_rate"),
        ({"baseline_percentile": 150}, "baseline_percentile"),
        ({"baseline_window_s": 0}, "baseline_window_s"),
        ({"ar_order": 3}, "ar_order"),
        ({"penalty": "l2"}, "penalty"),
        ({"backend": "gpu"}, "backend"),
        ({"tau_decay_s": float("nan")}, "tau_decay_s"),
        ({"tau_decay_s": 0.5, "tau_rise_s": 0.5}, "tau_rise_s"),
        ({"tau_rise_s": 0.05}, "tau_decay_s"),
        ({"params_indicator": "GCaMP6s"}, "params_from"),
        ({"raw": True, "trace_file": "x.mat"}, "raw"),
        ({"execution": {"threads": 0}}, "threads"),
        ({"execution": {"device": "tpu"}}, "device"),
    ],
)
def test_infer_config_bad_values_are_one_line_errors(changes, field):
    values = {"trace_file": "x.npy", **changes}
    with pytest.raises(ConfigError, match=field) as info:
        InferConfig.from_dict(values)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"smoothing_s": 0.0}, "smoothing_s"),
        ({"rate_hz": -1}, "rate_hz"),
        ({"noise_level": 0}, "noise_level"),
        ({"datasets": []}, "datasets"),
        ({"max_recordings": 0}, "max_recordings"),
        ({"seed": -1}, "seed"),
        ({"grid": "huge"}, "grid"),
        ({"grid": {**ONE_POINT_GRID, "tau_decay_s": []}}, "grid.tau_decay_s"),
        ({"grid": {**ONE_POINT_GRID, "tau_decay_s": [1.0, -2.0]}}, r"grid.tau_decay_s\[1\]"),
        ({"grid": {**ONE_POINT_GRID, "penalty": ["l2"]}}, r"grid.penalty\[0\]"),
        ({"grid": {**ONE_POINT_GRID, "decay": [1.0]}}, "unknown key"),
    ],
)
def test_evaluation_config_bad_values_are_one_line_errors(changes, field):
    with pytest.raises(ConfigError, match=field) as info:
        EvaluationConfig.from_dict({"data_dir": "d", **changes})
    assert "\n" not in str(info.value)


def test_evaluation_grid_preset_is_expanded_and_recorded():
    cfg = EvaluationConfig("d", grid="quick")
    assert cfg.grid["tau_decay_s"] == [None, 0.45, 1.0, 2.2]
    assert EvaluationConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


@pytest.mark.parametrize(
    "argv, option",
    [
        (["infer", "{npy}", "--rate", "30", "--smoothing", "0"], "--smoothing"),
        (["infer", "{npy}", "--rate", "-1"], "--rate"),
        (["infer", "{npy}", "--rate", "30", "--raw", "--baseline-percentile", "150"], "--baseline-percentile"),
        (["infer", "{npy}", "--rate", "30", "--ar-order", "3"], "--ar-order"),
        (["infer", "{npy}", "--rate", "30", "--penalty", "l2"], "--penalty"),
        (["infer", "{npy}", "--rate", "30", "--threads", "0"], "threads"),
        (["evaluate", "--data-dir", "{data}", "--smoothing", "0"], "--smoothing"),
        (["evaluate", "--data-dir", "{data}", "--grid", "huge"], "--grid"),
        (["evaluate", "--data-dir", "{data}", "--max-recordings", "0"], "--max-recordings"),
    ],
)
def test_cli_bad_values_exit_2_with_one_line_and_create_nothing(tmp_path, npy_traces, capsys, argv, option):
    out = tmp_path / "out"
    argv = [a.format(npy=npy_traces, data=tmp_path) for a in argv]
    assert main(["calcium", *argv, "--out", str(out)]) == 2
    assert option in one_line_error(capsys)
    assert nothing_created(out)


# -- run lifecycle --------------------------------------------------------------------------
def test_infer_refuses_to_replace_a_finished_run_without_overwrite(tmp_path, npy_traces, capsys):
    out = tmp_path / "spikes"
    argv = ["calcium", "infer", str(npy_traces), "--rate", "30", "--tau", "0.8", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    before = (out / "results" / "calcium_inference.json").read_bytes()
    capsys.readouterr()
    assert main([*argv[:-1], "--smoothing", "0.3", "--quiet"]) == 2
    assert "--overwrite" in one_line_error(capsys)
    assert (out / "results" / "calcium_inference.json").read_bytes() == before
    assert not out.with_name("spikes.partial").exists()
    assert main([*argv, "--smoothing", "0.3", "--overwrite"]) == 0
    assert CalciumInference.load(Run.open(out)).smoothing_s == 0.3


def test_evaluate_refuses_to_replace_a_finished_run_without_overwrite(tmp_path, shared_data, capsys):
    out = tmp_path / "eval"
    argv = ["calcium", "evaluate", "--data-dir", str(shared_data / "calcium"), "--dataset", "DS01", "--grid", "quick",
            "--max-recordings", "1", "--out", str(out), "--quiet", "--no-report"]
    assert main(argv) == 0
    before = (out / "results" / "calcium_evaluation.json").read_bytes()
    capsys.readouterr()
    assert main(argv) == 2
    assert "--overwrite" in one_line_error(capsys)
    assert (out / "results" / "calcium_evaluation.json").read_bytes() == before
    assert main([*argv, "--overwrite", "--seed", "1"]) == 0
    assert Run.open(out).config["seed"] == 1


def test_bad_input_creates_nothing(tmp_path, npy_traces, shared_data, capsys):
    out = tmp_path / "out"
    cases = [
        (["infer", str(tmp_path / "missing.npy"), "--rate", "30"], "does not exist"),
        (["infer", str(npy_traces)], "--rate"),  # an array file needs its frame rate
        (["infer", str(npy_traces), "--rate", "30", "--params-from", str(tmp_path / "nowhere")], "does not exist"),
        (["evaluate", "--data-dir", str(tmp_path / "nowhere")], "does not exist"),
        (["evaluate", "--data-dir", str(shared_data / "calcium"), "--dataset", "DS99"], "DS99"),
        # the numpy backend cannot run an AR(2)-only grid: refused before anything is made
        (["evaluate", "--data-dir", str(shared_data / "calcium"), "--dataset", "DS01", "--backend", "numpy",
          "--grid", "full", "--max-recordings", "1"], None),
    ]
    for argv, message in cases[:-1]:
        assert main(["calcium", *argv, "--out", str(out)]) == 2, argv
        assert message in one_line_error(capsys)
        assert nothing_created(out), argv
    # a params-from folder that is a run without a calcium evaluation
    other = tmp_path / "infer-run"
    run_inference(InferConfig(str(npy_traces), frame_rate=30.0), other, progress=silent(), report=False)
    with pytest.raises(DataError, match="calcium_evaluation"):
        run_inference(InferConfig(str(npy_traces), frame_rate=30.0, params_from=str(other)), out, progress=silent())
    assert nothing_created(out)
    grid = {"tau_decay_s": [1.0], "tau_rise_s": [0.05], "penalty": ["l1"], "smoothing_s": [0.2]}
    cfg = EvaluationConfig(str(shared_data / "calcium"), datasets=["DS01"], grid=grid, backend="numpy")
    with pytest.raises(ConfigError, match="no valid parameter combination"):
        run_evaluation(cfg, out, progress=silent())
    assert nothing_created(out)


def test_report_failure_is_logged_and_keeps_the_results(tmp_path, npy_traces, monkeypatch):
    import neuroaikit.report

    def broken(*args, **kwargs):
        raise RuntimeError("matplotlib exploded")

    monkeypatch.setattr(neuroaikit.report, "build_report", broken)
    lines: list[str] = []
    run = run_inference(InferConfig(str(npy_traces), frame_rate=30.0), tmp_path / "run",
                        progress=Progress(echo=lines.append, stream=io.StringIO()))
    assert run.path == tmp_path / "run" and not (run.path / "report.html").exists()
    assert len(CalciumInference.load(run).traces) == 2 and (run.path / "spikes.npz").is_file()
    assert "report not built (RuntimeError: matplotlib exploded)" in (run.path / "log.txt").read_text()
    assert any("report not built" in line for line in lines)


# -- progress and execution ----------------------------------------------------------------
def test_evaluate_shows_tasks_over_datasets_and_grid(tmp_path, shared_data):
    stream, lines = io.StringIO(), []
    progress = Progress(stream=stream, interactive=False, interval=0.0, echo=lines.append)
    cfg = EvaluationConfig(str(shared_data / "calcium"), datasets=["DS01"], grid="quick", max_recordings=1,
                           execution=ExecutionConfig(threads=1))
    run = run_evaluation(cfg, tmp_path / "ev", progress=progress, report=False)
    shown = stream.getvalue()
    assert "calcium evaluate: 1/1 datasets" in shown
    assert "DS01-OGB1-m-V1: tuning: 4/4 fits" in shown  # 4 decay values x 1 tuning recording
    assert "DS01-OGB1-m-V1: scoring: 2/2 recordings" in shown
    assert any("held-out mean r" in line for line in lines)
    assert "held-out mean r" in (run.path / "log.txt").read_text()
    record = run.metrics["execution"]
    assert record["device"] == "cpu" and record["threads"] == 1 and record["torch_threads"] == 1
    assert record["thread_pools"] and set(record["thread_pools"].values()) == {1}


def test_infer_threads_are_limited_then_restored(tmp_path, npy_traces):
    from threadpoolctl import threadpool_info

    before = {p["internal_api"]: p["num_threads"] for p in threadpool_info()}
    stream = io.StringIO()
    progress = Progress(stream=stream, interactive=False, interval=0.0, echo=None)
    cfg = InferConfig(str(npy_traces), frame_rate=30.0, execution=ExecutionConfig(device="cpu", threads=1))
    run = run_inference(cfg, tmp_path / "run", progress=progress, report=False)
    assert "calcium infer: 2/2 traces" in stream.getvalue()
    record = run.metrics["execution"]
    assert record["requested_device"] == "cpu" and set(record["thread_pools"].values()) == {1}
    assert {p["internal_api"]: p["num_threads"] for p in threadpool_info()} == before
    if not torch.cuda.is_available():  # a device that is not there was recorded as requested, and the run made
        from neuroaikit.errors import ConfigError

        with pytest.raises(ConfigError, match="no CUDA device is available"):
            run_inference(cfg.replace(execution=ExecutionConfig(device="cuda:7")), tmp_path / "cuda", progress=silent())
        assert not (tmp_path / "cuda").exists() and not (tmp_path / "cuda.partial").exists()


# -- bug fixes -------------------------------------------------------------------------------
def test_rate_resamples_mat_recordings_in_infer(tmp_path, shared_data):
    path = shared_data / DS14_FILE
    native = run_inference(InferConfig(str(path), tau_decay_s=2.2), tmp_path / "native", progress=silent(),
                           report=False)
    low = run_inference(InferConfig(str(path), frame_rate=15.0, tau_decay_s=2.2), tmp_path / "low",
                        progress=silent(), report=False)
    a, b = CalciumInference.load(native), CalciumInference.load(low)
    assert a.traces[0].frame_rate_hz == pytest.approx(60.06, abs=0.05) and b.traces[0].frame_rate_hz == 15.0
    assert abs(b.traces[0].frames - a.traces[0].frames * 15.0 / a.traces[0].frame_rate_hz) <= 1
    assert any("resampled from 60.1 Hz to 15 Hz" in note for note in b.traces[0].notes)
    assert b.resampled_to_hz == 15.0 and a.resampled_to_hz is None
    assert np.diff(np.load(low.path / "spikes.npz")["time_0"]) == pytest.approx(1 / 15.0)
    # the same spikes are counted and still found at the lower rate
    assert [t.n_true_spikes for t in b.traces] == [t.n_true_spikes for t in a.traces]
    assert all(t.r_ground_truth > 0.6 for t in b.traces), [t.r_ground_truth for t in b.traces]


def test_an_all_nan_recording_is_skipped_not_fatal(tmp_path):
    dff, spikes = synthetic_dff()
    path = write_cascade_mat(tmp_path / "cell.mat", [np.full(dff.size, np.nan), dff], [[1.0], spikes])
    run = run_inference(InferConfig(str(path), tau_decay_s=0.8), tmp_path / "run", progress=silent(), report=False)
    result = CalciumInference.load(run)
    assert [t.trace for t in result.traces] == ["cell#1"] and result.traces[0].index == 1
    assert len(result.skipped) == 1 and result.skipped[0].startswith("cell#0: skipped") and "all NaN" in result.skipped[0]
    assert "cell#0: skipped" in (run.path / "log.txt").read_text()
    assert set(np.load(run.path / "spikes.npz").files) == {f"{k}_1" for k in ("time", "dff", "spikes", "rate", "denoised")}
    assert result.traces[0].r_ground_truth > 0.8


def test_unusable_rows_of_an_array_file_are_skipped(tmp_path):
    dff, _ = synthetic_dff()
    np.save(tmp_path / "t.npy", np.stack([dff, np.full(dff.size, np.nan), np.ones(dff.size)]))
    run = run_inference(InferConfig(str(tmp_path / "t.npy"), frame_rate=30.0), tmp_path / "run", progress=silent(),
                        report=False)
    result = CalciumInference.load(run)
    assert [t.index for t in result.traces] == [0]
    assert [line.split(":")[0] for line in result.skipped] == ["t#1", "t#2"]
    assert "all NaN" in result.skipped[0] and "constant" in result.skipped[1]
    assert run.metrics["n_skipped"] == 2
    np.save(tmp_path / "nan.npy", np.full((2, 50), np.nan))
    out = tmp_path / "none"
    with pytest.raises(DataError, match="no usable trace"):
        run_inference(InferConfig(str(tmp_path / "nan.npy"), frame_rate=30.0), out, progress=silent())
    assert nothing_created(out)


def test_spikes_outside_the_imaged_time_are_not_counted(tmp_path):
    dff, _ = synthetic_dff(seconds=10.0)  # frames at 0 .. 9.967 s
    spikes = [-2.0, 1.0, 2.0, 3.0, 9.98, 15.0, 20.0]  # 9.98 s lies in the last frame's bin
    path = write_cascade_mat(tmp_path / "cell.mat", [dff], [spikes])
    rec = load_cascade_mat(path)[0]
    assert rec.spike_times.size == 7 and rec.n_spikes == 4 and rec.n_spikes_outside == 3
    assert any("3 of 7 ground-truth spikes lie outside the imaged time" in note for note in rec.notes)
    run = run_inference(InferConfig(str(path)), tmp_path / "run", progress=silent(), report=False)
    assert CalciumInference.load(run).traces[0].n_true_spikes == 4
    bare = CalciumRecording.from_trace(dff, 30.0, spike_times=[5.0, 100.0])
    assert bare.n_spikes == 1


# -- typed results and the report ------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numpy"] + (["oasis"] if oasis_available() else []))
def test_report_names_the_backend_that_ran(tmp_path, npy_traces, shared_data, backend):
    run = run_inference(InferConfig(str(npy_traces), frame_rate=30.0, tau_decay_s=0.8, backend=backend),
                        tmp_path / "infer", progress=silent())
    result = CalciumInference.load(run)
    assert result.backend == backend and {t.backend for t in result.traces} == {backend}
    html = (run.path / "report.html").read_text()
    expected, other = ("NumPy", "oasis-deconv") if backend == "numpy" else ("oasis-deconv", "NumPy")
    assert expected in html and other not in html

    cfg = EvaluationConfig(str(shared_data / "calcium"), datasets=["DS01"], grid=ONE_POINT_GRID, max_recordings=1,
                           backend=backend)
    ev = run_evaluation(cfg, tmp_path / "eval", progress=silent())
    evaluation = CalciumEvaluation.load(ev)
    assert evaluation.protocol.backend == backend and ev.metrics["backend"] == backend
    html = (ev.path / "report.html").read_text()
    assert f"Method: {escape(evaluation.protocol.method)}" in html and expected in html and other not in html
    # no recollected paper figures in the report
    assert "UNVERIFIED" not in html.upper() and "recalled" not in html
    assert "Settings checked against Cascade" in html


def test_report_of_an_older_result_drops_the_unverified_figures(tmp_path, shared_data):
    from neuroaikit.report import build_report

    cfg = EvaluationConfig(str(shared_data / "calcium"), datasets=["DS01"], grid=ONE_POINT_GRID, max_recordings=1)
    run = run_evaluation(cfg, tmp_path / "eval", progress=silent(), report=False)
    file = run.path / "results" / "calcium_evaluation.json"
    old = json.loads(file.read_text())
    old["cascade_reference"]["figures_unverified"] = "global model roughly 0.7-0.8 (recalled from the paper's Fig. 4d)"
    old["protocol"]["method"] = "OASIS (oasis-deconv) with noise-constrained sparsity"  # what older runs wrote
    del old["protocol"]["backend"]
    file.write_text(json.dumps(old))
    html = build_report(run.path).read_text()
    assert "0.7-0.8" not in html and "recalled" not in html
    assert "held-out correlation per dataset" in html


def test_inference_result_keeps_its_json_layout(tmp_path, shared_data):
    run = run_inference(InferConfig(str(shared_data / DS14_FILE), tau_decay_s=2.2), tmp_path / "run",
                        progress=silent(), report=False)
    raw = run.result("calcium_inference")
    assert {"trace_file", "params", "smoothing_s", "traces", "example", "arrays"} <= set(raw)
    assert {"trace", "frames", "frame_rate_hz", "noise_level", "nan_frames", "tau_decay_s", "noise_sd", "baseline",
            "active_frames", "backend", "notes", "n_true_spikes", "r_ground_truth"} <= set(raw["traces"][0])
    assert raw["params"]["tau_decay_s"] == 2.2 and raw["arrays"] == "spikes.npz"
    typed = CalciumInference.load(run)
    assert CalciumInference.from_dict(json.loads(json.dumps(typed.to_dict()))) == typed
    assert typed.mean_r_ground_truth == pytest.approx(run.metrics["mean_r_ground_truth"])


def test_evaluation_skips_recordings_it_cannot_resample_and_says_why(shared_data, tmp_path):
    """A recording below the evaluation's rate (resampling up without noise) stopped the whole
    evaluation with a DataError; it is skipped with the reason, as unusable traces are."""
    from neuroaikit.neural.calcium.evaluate import evaluate_calcium

    class Notes(Progress):
        def __init__(self):
            super().__init__(enabled=False)
            self.lines = []

        def message(self, text):
            self.lines.append(text)

    cfg = EvaluationConfig(str(shared_data / "calcium"), datasets=["DS01"], grid=ONE_POINT_GRID, max_recordings=1,
                           rate_hz=100.0)
    notes = Notes()
    with pytest.raises(ConfigError, match="had enough usable files to tune and test") as info:
        evaluate_calcium(cfg, progress=notes)
    assert "\n" not in str(info.value)
    assert any("resampling up from" in line and "(--rate)" in line for line in notes.lines), notes.lines
    noisy = evaluate_calcium(cfg.replace(noise_level=2.0), progress=silent())
    assert noisy.datasets and noisy.datasets[0].frame_rate_hz == pytest.approx(100.0)
