"""Calcium -> spikes: dF/F, OASIS inference, Cascade-style evaluation, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io as sio

from neuroaikit.errors import ConfigError, DataError
from neuroaikit.neural.calcium import (
    CalciumInference,
    CalciumRecording,
    EvaluationConfig,
    InferConfig,
    OasisDeconvolver,
    SpikeRateCorrelation,
    delta_f_over_f,
    evaluate_calcium,
    ground_truth_rate,
    load_cascade_mat,
    load_traces,
    noise_level,
    oasis_available,
    pearson,
    run_evaluation,
    run_inference,
    running_percentile_baseline,
    tuned_params,
)
from neuroaikit.neural.calcium.inference import oasis_ar1_l1
from neuroaikit.progress import silent

DS09_FILE = "DS09-GCaMP6f-m-V1/CAttached_Chen2013_GC6f_cell1B_full_mini.mat"
DS14_FILE = "DS14-GCaMP6s-m-V1/CAttached_Chen2013_GC6s_cell1_full_mini.mat"
DS01_FILE = "DS01-OGB1-m-V1/CAttached_Theis16_set2_OGB_V1_cell_12_mini.mat"
BACKENDS = ["numpy"] + (["oasis"] if oasis_available() else [])


def simulate(seconds=120.0, rate=30.0, tau=0.8, spike_rate=0.5, amplitude=0.3, noise=0.05, seed=0, baseline=0.0):
    """AR(1) calcium driven by Poisson spikes, plus white noise and ``baseline``; returns (recording,
    spike times)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    counts = rng.poisson(spike_rate / rate, n)
    g = np.exp(-1.0 / (tau * rate))
    calcium = np.zeros(n)
    for t in range(n):
        calcium[t] = (g * calcium[t - 1] if t else 0.0) + amplitude * counts[t]
    dff = baseline + calcium + rng.normal(0, noise, n)
    time = np.arange(n) / rate
    spikes = np.repeat(time, counts) + rng.uniform(-0.4, 0.4, counts.sum()) / rate
    return CalciumRecording(time, dff, spikes, rate, indicator="synthetic", name="sim"), spikes


def write_cascade_mat(path, traces, rate=30.0, spikes=None, field_names=("fluo_time", "fluo_mean", "events_AP")):
    """A Cascade-format file: struct array CAttached, spike times in 1e-4 s."""
    dtype = [(name, object) for name in field_names]
    records = np.zeros((1, len(traces)), dtype=dtype)
    for i, trace in enumerate(traces):
        time = np.arange(len(trace)) / rate
        values = {"fluo_time": time, "fluo_mean": np.asarray(trace, float), "events_AP": np.asarray(spikes[i] if spikes else [1.0]) * 1e4}
        for name in field_names:
            records[0, i][name] = values.get(name, np.zeros(3))
    sio.savemat(str(path), {"CAttached": records})
    return path


# -- synthetic ground truth --------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("tau", [0.8, None])
def test_synthetic_ar1_spikes_are_recovered(backend, tau):
    rec, spikes = simulate()
    result = OasisDeconvolver(tau_decay_s=tau, smoothing_s=0.2, backend=backend).infer(rec)
    r = SpikeRateCorrelation(0.2)(result.rate, spikes, rec.time)
    assert result.rate.shape == rec.dff.shape and (result.spikes >= 0).all()
    assert r > (0.85 if tau else 0.75), r
    if tau is None:  # the estimated decay is near the simulated 0.8 s
        assert 0.4 < result.tau_decay_s < 1.6, result.tau_decay_s


def test_numpy_oasis_matches_package():
    pytest.importorskip("oasis")
    from oasis.oasis_methods import oasisAR1

    rec, _ = simulate(seconds=40)
    for lam in (0.0, 0.3):
        c_ref, s_ref = oasisAR1(rec.dff.copy(), 0.96, lam)
        c, s = oasis_ar1_l1(rec.dff, 0.96, lam)
        np.testing.assert_allclose(c, c_ref, atol=1e-8)
        np.testing.assert_allclose(s, s_ref, atol=1e-8)


def test_ground_truth_rate_is_cascade_binning():
    frames = np.arange(100) / 10.0  # 10 Hz
    rate = ground_truth_rate([1.0, 1.04, 5.0], frames, smoothing_s=0.0)
    np.testing.assert_allclose([rate[10], rate[50], rate.sum()], [20.0, 10.0, 30.0])
    smooth = ground_truth_rate([1.0, 1.04, 5.0], frames, smoothing_s=0.2)
    assert np.argmax(smooth) == 10 and smooth.sum() == pytest.approx(30.0, rel=1e-6)


def test_noise_level_of_white_noise():
    rng = np.random.default_rng(1)
    rate, sd = 30.0, 0.02
    nu = noise_level(rng.normal(0, sd, 20000), rate)
    assert nu == pytest.approx(0.6745 * np.sqrt(2) * sd * 100 / np.sqrt(rate), rel=0.03)


# -- dF/F ----------------------------------------------------------------------------------
def test_dff_recovers_known_baseline():
    rate = 20.0
    t = np.arange(int(600 * rate)) / rate
    baseline = 200.0 + 40.0 * np.exp(-t / 300.0) + 10.0 * np.sin(2 * np.pi * t / 400.0)
    rec, _ = simulate(seconds=600, rate=rate, spike_rate=0.3, noise=0.0, seed=3)
    true_dff = rec.dff
    rng = np.random.default_rng(0)
    f = baseline * (1 + true_dff) + rng.normal(0, 0.5, t.size)
    f0 = running_percentile_baseline(f, rate, window_s=30.0, percentile=10.0)
    inner = slice(int(30 * rate), -int(30 * rate))
    assert np.max(np.abs(f0[inner] / baseline[inner] - 1)) < 0.02
    dff = delta_f_over_f(f, rate, window_s=30.0, percentile=10.0)
    assert np.corrcoef(dff, true_dff)[0, 1] > 0.99
    assert np.median(np.abs(dff - true_dff)) < 0.01


def test_dff_bad_input():
    with pytest.raises(ConfigError, match="frame rate"):
        delta_f_over_f(np.ones(100), 0.0)
    with pytest.raises(DataError, match="all NaN"):
        delta_f_over_f(np.full(100, np.nan), 10.0)
    with pytest.raises(DataError, match="baseline is <= 0"):
        delta_f_over_f(np.zeros(100) - 1.0, 10.0)
    with pytest.raises(ConfigError, match="percentile"):
        running_percentile_baseline(np.ones(100), 10.0, percentile=120)


# -- real ground-truth files --------------------------------------------------------------
def test_load_real_cascade_file(shared_data):
    recs = load_cascade_mat(shared_data / "calcium" / DS14_FILE)
    assert len(recs) == 2
    rec = recs[0]
    assert rec.indicator == "GCaMP6s" and rec.dataset == "DS14-GCaMP6s-m-V1"
    assert rec.frame_rate == pytest.approx(60.06, abs=0.05)
    assert rec.n_spikes == 12 and rec.dff.size == 14400
    assert rec.time[0] <= rec.spike_times.min() and rec.spike_times.max() <= rec.time[-1]
    ogb = load_cascade_mat(shared_data / "calcium" / "DS01-OGB1-m-V1" / "CAttached_Theis16_set2_OGB_V1_cell_12_mini.mat")
    assert ogb[0].indicator == "OGB-1" and ogb[0].frame_rate == pytest.approx(11.6, abs=0.1)


def test_real_recording_correlation_above_chance(shared_data):
    rec = load_cascade_mat(shared_data / "calcium" / DS09_FILE)[0]
    result = OasisDeconvolver(smoothing_s=0.2).infer(rec)  # untuned: decay estimated from the trace
    truth = ground_truth_rate(rec.spike_times, rec.time, 0.2)
    r = pearson(result.rate, truth)
    chance = pearson(result.rate, np.roll(truth, truth.size // 2))
    assert r > 0.6 and r - chance > 0.4, (r, chance)


def test_nan_frames_are_interpolated_and_excluded(tmp_path, shared_data):
    rec = load_cascade_mat(shared_data / "calcium" / DS09_FILE)[0]
    dff = rec.dff.copy()
    dff[:50] = np.nan
    dff[3000:3100] = np.nan
    path = write_cascade_mat(tmp_path / "nan.mat", [dff], rate=rec.frame_rate, spikes=[rec.spike_times - rec.time[0]])
    loaded = load_cascade_mat(path)[0]
    assert (~loaded.valid).sum() == 150 and any("NaN" in n for n in loaded.notes)
    assert np.isfinite(loaded.filled_dff()).all()
    result = OasisDeconvolver(smoothing_s=0.2).infer(loaded)
    assert np.isfinite(result.rate).all()
    r = SpikeRateCorrelation(0.2)(result.rate, loaded.spike_times, loaded.time, loaded.valid)
    assert r > 0.6
    run = run_inference(InferConfig(str(path), tau_decay_s=0.7), tmp_path / "run", progress=silent())
    text = (run.path / "results" / "calcium_inference.json").read_text()

    def no_nan(token):
        raise AssertionError(f"non-standard JSON constant {token}")

    traces = json.loads(text, parse_constant=no_nan)["traces"]
    assert traces[0]["nan_frames"] == 150 and traces[0]["r_ground_truth"] > 0.6


def test_all_nan_and_bad_files(tmp_path):
    path = write_cascade_mat(tmp_path / "allnan.mat", [np.full(200, np.nan), np.random.default_rng(0).normal(size=200)])
    with pytest.raises(DataError, match="all NaN"):
        load_cascade_mat(path)
    assert len(load_cascade_mat(path, on_bad="skip")) == 1
    with pytest.raises(DataError, match="does not exist"):
        load_cascade_mat(tmp_path / "missing.mat")
    sio.savemat(str(tmp_path / "other.mat"), {"traces": np.zeros((3, 10))})
    with pytest.raises(DataError, match="CAttached"):
        load_cascade_mat(tmp_path / "other.mat")
    bad = write_cascade_mat(tmp_path / "nofield.mat", [np.zeros(20)], field_names=("fluo_time", "events_AP"))
    with pytest.raises(DataError, match="fluo_mean"):
        load_cascade_mat(bad)
    (tmp_path / "junk.mat").write_bytes(b"not a mat file")
    with pytest.raises(DataError, match="not a readable"):
        load_cascade_mat(tmp_path / "junk.mat")
    with pytest.raises(ConfigError, match="frame rate"):
        CalciumRecording.from_trace(np.zeros(10), 0.0)
    with pytest.raises(ConfigError, match="frame rate"):
        CalciumRecording.from_trace(np.zeros(10), -5)
    np.save(tmp_path / "t.npy", np.zeros(10))
    with pytest.raises(ConfigError, match="--rate"):
        load_traces(tmp_path / "t.npy")
    with pytest.raises(DataError, match="constant"):
        OasisDeconvolver().infer(np.zeros(100), frame_rate=10.0)
    with pytest.raises(ConfigError, match="penalty"):
        OasisDeconvolver(penalty="l2").infer(np.ones(10), frame_rate=10.0)


def test_evaluate_holds_out_files(shared_data):
    grid = {"tau_decay_s": [None, 1.5], "tau_rise_s": [0.0], "penalty": ["l1"], "smoothing_s": [0.2]}
    cfg = EvaluationConfig(str(shared_data), datasets=["DS01"], grid=grid, max_recordings=2)
    result = evaluate_calcium(cfg, progress=silent())
    summary = result.datasets[0]
    assert summary.indicator == "OGB-1"
    assert not set(summary.tune_files) & set(summary.test_files)
    assert summary.n_tune_recordings == summary.n_test_recordings == 2
    assert summary.test_mean_r > 0.5 and summary.test_mean_r - summary.test_mean_r_chance > 0.4
    assert {row.split for row in result.recordings} == {"tune", "test"}
    assert len(result.tuning_tables[summary.dataset]) == 2  # two decay times x one smoothing
    json.dumps(result.to_dict(), allow_nan=False)  # strict JSON as it stands


# -- CLI ---------------------------------------------------------------------------------
def test_cli_infer_and_evaluate(tmp_path, shared_data, capsys):
    from neuroaikit.cli.main import main
    from neuroaikit.runs import Run

    rec, _ = simulate(seconds=60)
    f = 500.0 * (1 + rec.dff - rec.dff.min())
    np.save(tmp_path / "raw.npy", np.stack([f, f[::-1]]))
    out = tmp_path / "infer"
    assert main(["calcium", "infer", str(tmp_path / "raw.npy"), "--rate", "30", "--raw", "--tau", "0.8", "--out", str(out)]) == 0
    arrays = np.load(out / "spikes.npz")
    assert arrays["rate_0"].shape == (1800,) and arrays["spikes_1"].shape == (1800,)
    assert "Spike inference: traces" in (out / "report.html").read_text()

    ev = tmp_path / "eval"
    grid = {"tau_decay_s": [1.5], "tau_rise_s": [0.0], "penalty": ["l1"], "smoothing_s": [0.2]}
    run_evaluation(EvaluationConfig(str(shared_data / "calcium"), datasets=["DS01"], grid=grid, max_recordings=2), ev,
                   progress=silent())
    assert "held-out correlation per dataset" in (ev / "report.html").read_text()
    assert tuned_params(ev, indicator="OGB-1")["tau_decay_s"] == 1.5
    assert Run.open(ev).metrics["DS01_test_mean_r"] > 0.5

    mat_out = tmp_path / "infer-mat"
    cfg = InferConfig(str(shared_data / "calcium" / DS01_FILE), params_from=str(ev), params_dataset="DS01")
    run_inference(cfg, mat_out, progress=silent())
    traces = CalciumInference.load(Run.open(mat_out)).traces
    assert len(traces) == 1 and traces[0].r_ground_truth > 0.6

    capsys.readouterr()
    assert main(["calcium", "infer", str(tmp_path / "missing.npy"), "--rate", "30", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "does not exist" in err and "\n" not in err
    assert main(["calcium", "infer", str(tmp_path / "raw.npy"), "--rate", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--rate must be a number > 0" in capsys.readouterr().err
    assert main(["calcium", "evaluate", "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "y")]) == 2
    assert not list(tmp_path.glob("x*")) and not list(tmp_path.glob("y*"))  # no run folder, no .partial


def test_resample_and_noise_matching_reach_cascade_conditions():
    from neuroaikit.neural.calcium.evaluate import match_noise, resample_recording

    rec, spikes = simulate(seconds=120, rate=30.0, noise=0.01)
    rec.dff[100:110] = np.nan
    low = resample_recording(rec, 7.5)
    assert low.frame_rate == 7.5 and abs(low.dff.size - rec.dff.size / 4) <= 1
    assert 1 <= (~low.valid).sum() <= 4 and np.array_equal(low.spike_times, rec.spike_times)
    noisy = match_noise(low, 2.0, np.random.default_rng(0))
    assert noise_level(noisy.dff, noisy.frame_rate) == pytest.approx(2.0, rel=0.15)
    kept = match_noise(noisy, 0.5, np.random.default_rng(0))  # already noisier: unchanged, with a note
    assert np.array_equal(kept.dff, noisy.dff, equal_nan=True) and "already at or above the target 0.50" in kept.notes[-1]
    result = OasisDeconvolver(tau_decay_s=0.8).infer(noisy)
    assert SpikeRateCorrelation(0.2)(result.rate, spikes, noisy.time, noisy.valid) > 0.6


def test_load_traces_formats(tmp_path):
    traces = np.random.default_rng(0).normal(size=(3, 50))
    np.savez(tmp_path / "t.npz", dff=traces, other=np.zeros(2))
    np.savetxt(tmp_path / "t.csv", traces, delimiter=",")
    for path in (tmp_path / "t.npz", tmp_path / "t.csv"):
        recs = load_traces(path, frame_rate=20.0)
        assert len(recs) == 3 and recs[1].frame_rate == 20.0
        np.testing.assert_allclose(recs[2].dff, traces[2])
    with pytest.raises(DataError, match="no array .missing.; arrays"):
        load_traces(tmp_path / "t.npz", frame_rate=20.0, key="missing")
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 5)))
    with pytest.raises(DataError, match="neurons, frames"):
        load_traces(tmp_path / "cube.npy", frame_rate=20.0)
    (tmp_path / "t.xyz").write_text("1 2 3")
    with pytest.raises(DataError, match="unknown trace format"):
        load_traces(tmp_path / "t.xyz", frame_rate=20.0)
    # a (frames, neurons) array read as rows of a few frames each: one line, not a failed fit per row
    np.save(tmp_path / "transposed.npy", traces.T)
    with pytest.raises(DataError, match=r"transposed\.npy: 50 traces of 3 frames each; traces are the rows, "
                                        r"\(neurons, frames\): if the array is \(frames, neurons\), transpose it"):
        load_traces(tmp_path / "transposed.npy", frame_rate=20.0)


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_a_key_for_a_file_without_named_arrays_is_refused(tmp_path, suffix):
    path = tmp_path / f"t{suffix}"
    if suffix == ".npy":
        np.save(path, np.random.default_rng(0).random(50))
    else:
        np.savetxt(path, np.random.default_rng(0).random(50), delimiter=",")
    with pytest.raises(ConfigError, match=r"key 'dff' names an array inside a \.npz file"):
        load_traces(path, frame_rate=30.0, key="dff")
    assert len(load_traces(path, frame_rate=30.0)) == 1

