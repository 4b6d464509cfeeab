"""suite2p output + stimulus log + frame times -> NeuralDataset: round trip, the restricted
unpickler on stat.npy / ops.npy, and one-line errors naming the file at fault."""

from __future__ import annotations

import datetime
import json
import os

import numpy as np
import pytest

from neuroaikit.errors import DataError
from neuroaikit.neural import load_neural
from neuroaikit.neural.suite2p import Suite2pRecording, read_pickled_npy

FS = 10.0  # Hz
N_ROIS, N_IMAGES = 7, 12


def write_suite2p(root, seed=0):
    """A suite2p plane folder as suite2p writes it, a stimulus log (1 s per trial, onsets jittered
    inside the frame clock), images, frame times; returns the known per-trial responses of the
    cells (mean spks in the 0-0.5 s window) and their image ids."""
    rng = np.random.default_rng(seed)
    plane = root / "suite2p" / "plane0"
    plane.mkdir(parents=True)
    ids = np.concatenate([np.arange(N_IMAGES - 2), np.repeat([N_IMAGES - 2, N_IMAGES - 1], 4)])
    ids = rng.permutation(ids)
    n_trials = len(ids)
    n_frames = int((n_trials + 1) * FS)
    times = np.arange(n_frames) / FS + 0.013  # the frame clock starts a little after 0
    onsets = 0.5 + np.arange(n_trials) * 1.0 + 0.02
    spks = rng.gamma(0.5, 1.0, (N_ROIS, n_frames)).astype(np.float32)
    truth = np.zeros((n_trials, N_ROIS))
    for t, onset in enumerate(onsets):
        frames = (times >= onset) & (times < onset + 0.5)
        truth[t] = spks[:, frames].mean(1)
    f = (rng.normal(300, 20, (N_ROIS, n_frames)) + 50 * spks).astype(np.float32)
    np.save(plane / "F.npy", f)
    np.save(plane / "Fneu.npy", (0.5 * f + rng.normal(0, 5, f.shape)).astype(np.float32))
    np.save(plane / "spks.npy", spks)
    iscell = np.column_stack([np.ones(N_ROIS), np.linspace(0.9, 0.1, N_ROIS)])  # the last ROIs are not cells
    np.save(plane / "iscell.npy", iscell)
    stat = np.array([{"ypix": np.arange(3) + 5 * i, "xpix": np.arange(3) + 2 * i, "lam": np.ones(3, np.float32),
                      "med": [5 * i + 1, 2 * i + 1], "npix": 3, "radius": 2.5} for i in range(N_ROIS)], dtype=object)
    np.save(plane / "stat.npy", stat, allow_pickle=True)
    ops = {"fs": FS, "nframes": n_frames, "Ly": 64, "Lx": 64, "save_path": str(plane), "tau": 1.0,
           "date_proc": datetime.datetime(2024, 5, 1, 12, 0), "meanImg": rng.random((4, 4)), "filelist": ["a.tif"]}
    np.save(plane / "ops.npy", np.array(ops, dtype=object), allow_pickle=True)
    np.save(root / "images.npy", rng.uniform(0, 255, (N_IMAGES, 9, 16)).astype(np.float32))
    np.save(root / "frame_times.npy", times)
    behaviour = rng.normal(size=(n_trials, 5)) * [4, 1, 10, 6, 4] + [20, 0, 10, 755, 471]
    with open(root / "stimulus_log.csv", "w") as fh:
        fh.write("onset,image_id,pupil_dilation,pupil_dilation_derivative,running_speed,pupil_x,pupil_y\n")
        for t in range(n_trials):
            fh.write(f"{onsets[t]:.4f},{ids[t]}," + ",".join(f"{v:.3f}" for v in behaviour[t]) + "\n")
    keep = iscell[:, 1] >= 0.5
    return truth[:, keep], ids


def test_round_trip_gives_the_written_responses(tmp_path):
    truth, ids = write_suite2p(tmp_path)
    ds = load_neural(tmp_path)  # the folder: suite2p/, stimulus_log.csv, images.npy, frame_times.npy
    np.testing.assert_allclose(ds.responses, truth, rtol=1e-5)
    np.testing.assert_array_equal(ds.image_ids, ids)
    assert ds.n_neurons == 4  # iscell probability >= 0.5
    # images shown 4 times form the test tier, the rest train
    assert set(ds.image_ids[ds.tiers == "test"]) == {N_IMAGES - 2, N_IMAGES - 1}
    assert ds.behavior.shape == (len(ids), 3) and ds.pupil_center.mean() > 400
    assert ds.cortical_positions[:, :2].tolist()[1] == [3.0, 6.0]  # stat med (y, x) -> (x, y)
    assert ds.repeats("test").shape == (2, 4, 4)


def test_recording_file_and_signal_options(tmp_path):
    write_suite2p(tmp_path)
    spec = {"suite2p": "suite2p/plane0", "stimulus_log": "stimulus_log.csv", "images": "images.npy",
            "frame_times": "frame_times.npy", "signal": "dff", "neuropil": 0.7, "iscell_threshold": 0.0}
    (tmp_path / "recording.json").write_text(json.dumps(spec))
    ds = load_neural(tmp_path / "recording.json")
    assert ds.n_neurons == N_ROIS and ds.response_kind == "dff"
    # without frame times the frame clock comes from ops["fs"] (starting at 0)
    ds_fs = Suite2pRecording(suite2p=str(tmp_path / "suite2p"), stimulus_log=str(tmp_path / "stimulus_log.csv"),
                             images=str(tmp_path / "images.npy"), frame_times=None)
    os.remove(tmp_path / "frame_times.npy")
    assert ds_fs.load().n_trials == ds.n_trials


def test_ops_and_stat_are_read_without_running_code(tmp_path):
    write_suite2p(tmp_path)
    ops = read_pickled_npy(tmp_path / "suite2p" / "plane0" / "ops.npy")
    assert ops["fs"] == FS and ops["date_proc"].year == 2024
    assert read_pickled_npy(tmp_path / "suite2p" / "plane0" / "stat.npy")[2]["npix"] == 3


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("name", ["stat.npy", "ops.npy"])
def test_a_malicious_pickle_is_refused_and_nothing_runs(tmp_path, name):
    write_suite2p(tmp_path)
    marker = tmp_path / "pwned"
    payload = np.array([{"med": [1, 1]}, _Exploit(marker)], dtype=object)
    np.save(tmp_path / "suite2p" / "plane0" / name, payload, allow_pickle=True)
    with pytest.raises(DataError, match=rf"{name}: refused to unpickle: forbidden global (posix|nt)\.system"):
        load_neural(tmp_path)
    assert not marker.exists()


def test_missing_or_inconsistent_files_name_the_file(tmp_path):
    write_suite2p(tmp_path)
    plane = tmp_path / "suite2p" / "plane0"
    times = np.load(tmp_path / "frame_times.npy")
    np.save(tmp_path / "frame_times.npy", times[:-5])
    with pytest.raises(DataError, match=r"frame_times\.npy: \d+ frame times for \d+ frames of F\.npy"):
        load_neural(tmp_path)
    np.save(tmp_path / "frame_times.npy", times)

    log = (tmp_path / "stimulus_log.csv").read_text().splitlines()
    (tmp_path / "stimulus_log.csv").write_text("\n".join(log + ["9999.0,1,20,0,10,755,471"]) + "\n")
    with pytest.raises(DataError, match=r"stimulus_log\.csv: 1 stimulus onset\(s\) \(first at 9999\.000 s\)"):
        load_neural(tmp_path)
    (tmp_path / "stimulus_log.csv").write_text("\n".join(log) + "\n")

    iscell = np.load(plane / "iscell.npy")
    np.save(plane / "iscell.npy", iscell[:-1])
    with pytest.raises(DataError, match=r"iscell\.npy: 6 ROIs, F\.npy has 7"):
        load_neural(tmp_path)
    np.save(plane / "iscell.npy", iscell)

    os.remove(plane / "spks.npy")
    with pytest.raises(DataError, match=r"plane0: suite2p output lacks spks\.npy"):
        load_neural(tmp_path)


def test_a_nan_frame_stops_the_load_or_drops_only_the_trials_whose_window_holds_it(tmp_path, capsys):
    """A dropped imaging frame (NaN in one ROI's spks) makes NaN only the trial whose response
    window holds it: the default stops with the option named (CLI: exit 2, nothing written);
    ``nan_policy="drop"`` leaves that trial out and keeps every other response as written."""
    from neuroaikit.cli.main import main

    truth, ids = write_suite2p(tmp_path)
    spks_path = tmp_path / "suite2p" / "plane0" / "spks.npy"
    spks = np.load(spks_path)
    times = np.load(tmp_path / "frame_times.npy")
    frame = int(np.searchsorted(times, 0.5 + 3 * 1.0 + 0.02)) + 1  # inside trial 3's 0-0.5 s window
    spks[1, frame] = np.nan
    np.save(spks_path, spks)
    with pytest.raises(DataError, match=r"spks signal: responses hold NaN/inf in 1 trial\(s\) \(first: trial 3\)"):
        load_neural(tmp_path)
    assert main(["twin", "fit", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--drop-nan-trials" in err[0] and not (tmp_path / "run.partial").exists()
    ds = load_neural(tmp_path, nan_policy="drop")
    kept = np.delete(np.arange(len(ids)), 3)
    assert ds.trial_ids.tolist() == kept.tolist()
    np.testing.assert_allclose(ds.responses, truth[kept], rtol=1e-5)
    np.testing.assert_array_equal(ds.image_ids, ids[kept])


def test_blank_behaviour_cells_take_the_column_mean(tmp_path):
    write_suite2p(tmp_path)
    log = (tmp_path / "stimulus_log.csv").read_text().splitlines()
    cells = log[2].split(",")
    cells[4] = ""  # running speed not recorded on trial 1
    log[2] = ",".join(cells)
    (tmp_path / "stimulus_log.csv").write_text("\n".join(log) + "\n")
    ds = load_neural(tmp_path)
    others = np.delete(ds.behavior[:, 2], 1)
    assert np.isfinite(ds.behavior).all() and ds.behavior[1, 2] == pytest.approx(others.mean(), rel=1e-5)


def test_colour_images_saved_channels_last_are_read_channels_first(tmp_path):
    """An (n, H, W, 3) uint8 stack is read as (n, 3, H, W); the twin fits it and is probed with
    achromatic stimuli and, channel by channel, in colour (``twin probe`` end to end, report included)."""
    from neuroaikit.cli.main import main
    from neuroaikit.runs import Run

    write_suite2p(tmp_path)
    grey = np.load(tmp_path / "images.npy")
    rgb = np.stack([grey, 0.5 * grey, 255 - grey], -1).astype(np.uint8)  # (n, H, W, 3) as image libraries save
    np.save(tmp_path / "images.npy", rgb)
    ds = load_neural(tmp_path)
    assert ds.image_shape == (3, 9, 16)
    np.testing.assert_array_equal(ds.stimuli[:, 2], rgb[..., 2])
    run = tmp_path / "run"
    assert main(["twin", "fit", str(tmp_path), "--channels", "4", "--layers", "1", "--max-epochs", "1", "--starts", "1",
                 "--threads", "1", "--no-report", "--quiet", "--out", str(run)]) == 0
    assert main(["twin", "probe", str(run), "--neurons", "2", "--mei-steps", "2", "--noise-images", "50", "--quiet"]) == 0
    probe = Run.open(run).result("twin_probe")
    assert probe["image_shape"] == [9, 16] and np.asarray(probe["gradient_maps"]).shape == (2, 9, 16)
    colour = probe["colour"]  # and, in colour, which channel drives each neuron and colour MEIs
    assert colour["channels"] == 3 and np.asarray(colour["meis"]).shape == (2, 3, 9, 16)
    assert np.asarray(colour["peak_over_grey"]).shape == (3, 2) and len(colour["dominant_channel_all"]) == ds.n_neurons
    np.testing.assert_allclose(np.asarray(colour["mei_channel_energy"]).sum(1), 1.0, rtol=1e-6)
    assert colour["preference_index_all"] is None  # defined for two channels
    assert "Colour (3 input channels)" in (run / "report.html").read_text()


def test_bad_cli_input_is_one_line(tmp_path, capsys):
    from neuroaikit.cli.main import main

    write_suite2p(tmp_path)
    np.save(tmp_path / "suite2p" / "plane0" / "iscell.npy", np.ones((3, 2)))
    assert main(["twin", "fit", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "iscell.npy: 3 ROIs" in err[0]
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.partial").exists()
