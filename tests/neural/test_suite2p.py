"""suite2p output + stimulus log + frame times -> NeuralDataset: round trip, the restricted
unpickler on stat.npy / ops.npy, and one-line errors naming the file at fault."""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import pickle

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
    probability = np.linspace(0.9, 0.1, N_ROIS)  # the last ROIs are not cells
    label = probability >= 0.5
    label[[3, 5]] = False, True  # curated in the suite2p GUI: one cell rejected, one accepted
    iscell = np.column_stack([label, probability]).astype(np.float64)
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
    return truth[:, label], ids


def test_round_trip_gives_the_written_responses(tmp_path):
    truth, ids = write_suite2p(tmp_path)
    ds = load_neural(tmp_path)  # the folder: suite2p/, stimulus_log.csv, images.npy, frame_times.npy
    np.testing.assert_allclose(ds.responses, truth, rtol=1e-5)
    np.testing.assert_array_equal(ds.image_ids, ids)
    assert ds.n_neurons == 4  # the ROIs iscell.npy labels as cells, curation included
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


def test_iscell_labels_keep_curation_and_a_threshold_reads_the_probability(tmp_path):
    write_suite2p(tmp_path)
    paths = dict(suite2p=str(tmp_path / "suite2p"), stimulus_log=str(tmp_path / "stimulus_log.csv"),
                 images=str(tmp_path / "images.npy"), frame_times=str(tmp_path / "frame_times.npy"))
    iscell = np.load(tmp_path / "suite2p" / "plane0" / "iscell.npy")
    by_label = Suite2pRecording(**paths).load()
    by_probability = Suite2pRecording(**paths, iscell_threshold=0.5).load()
    # the curated labels keep ROI 5 and drop ROI 3; the probability does the opposite
    assert np.flatnonzero(iscell[:, 0]).tolist() == [0, 1, 2, 5]
    assert np.flatnonzero(iscell[:, 1] >= 0.5).tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(by_label.responses[:, :3], by_probability.responses[:, :3])
    assert not np.allclose(by_label.responses[:, 3], by_probability.responses[:, 3])
    # each ROI keeps its stat.npy index as its id, so a twin matches a re-curated folder by ROI, not
    # by position (both had ids 0-3, and the fourth readout was scored against another ROI)
    assert by_label.unit_ids.tolist() == [0, 1, 2, 5] and by_probability.unit_ids.tolist() == [0, 1, 2, 3]
    assert "unit_ids_filled" not in by_label.info
    np.save(tmp_path / "suite2p" / "plane0" / "iscell.npy", np.column_stack([np.zeros(N_ROIS), iscell[:, 1]]))
    with pytest.raises(DataError, match="no ROI is labelled a cell in iscell.npy"):
        Suite2pRecording(**paths).load()


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

    row = log[3].split(",")  # the third trial's image id (the log's second column) gets a fraction
    (tmp_path / "stimulus_log.csv").write_text("\n".join(log[:3] + [",".join([row[0], row[1] + ".6", *row[2:]])]
                                                          + log[4:]) + "\n")
    with pytest.raises(DataError, match=r"stimulus_log\.csv: 1 image id\(s\) are not whole numbers \(first: row 2, "):
        load_neural(tmp_path)
    (tmp_path / "stimulus_log.csv").write_text("\n".join(log) + "\n")

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


def test_blank_behaviour_cells_take_the_column_train_tier_mean(tmp_path):
    write_suite2p(tmp_path)
    log = (tmp_path / "stimulus_log.csv").read_text().splitlines()
    cells = log[2].split(",")
    cells[4] = ""  # running speed not recorded on trial 1
    log[2] = ",".join(cells)
    (tmp_path / "stimulus_log.csv").write_text("\n".join(log) + "\n")
    ds = load_neural(tmp_path)
    train = np.flatnonzero(ds.tier_mask("train"))
    others = ds.behavior[train[train != 1], 2]  # the test tier's values stay out of the fill
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
    (tmp_path / "recording.json").write_text('{"suite2p": "suite2p", ')  # was "--config file ... is not valid JSON"
    assert main(["twin", "fit", str(tmp_path / "recording.json"), "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.startswith(f"error: recording file {tmp_path / 'recording.json'} is not valid JSON")


# -- what suite2p itself writes ------------------------------------------------------------------
# The objects below have the types suite2p puts in ops.npy / stat.npy (read from its source,
# 0.10.3, 0.12.1, 0.13.1, 0.14.0, 0.14.6, 1.0.0.1 and 1.1.0): run_s2p.py, pipeline_s2p.py,
# registration/register.py, detection/{sparsedetect,stats,detect}.py, io/{utils,save}.py.

def _stat_entry(rng, version):
    """One ROI as suite2p's detection (sparsery), roi_stats and extraction leave it."""
    n = int(rng.integers(14, 30))
    ypix = rng.integers(0, 20, n).astype(int)  # int64 arrays
    xpix = rng.integers(0, 30, n).astype(int)
    roi = {"ypix": ypix, "xpix": xpix, "lam": rng.random(n).astype(np.float32),
           "med": [ypix[n // 2], xpix[n // 2]],  # numpy int64 scalars in a list
           "footprint": np.float64(rng.random()) if version != "0.10" else 1,
           "mrs": np.float64(0.9), "mrs0": np.float64(0.8), "compact": np.float64(1.1),
           "solidity": 1.0, "npix": n, "npix_soma": np.int64(n - 2),
           "soma_crop": np.arange(n) < n - 2, "overlap": np.zeros(n, bool),  # bool arrays
           "radius": np.float64(3.2), "aspect_ratio": np.float64(1.05),
           "npix_norm": np.float32(1.0) if version == "1.x" else np.float64(1.0),
           "npix_norm_no_crop": np.float32(1.1), "skew": np.float32(0.7), "std": np.float32(5.0)}
    if version == "1.x":
        roi["snr"] = np.float32(0.4)
    else:
        roi["neuropil_mask"] = rng.integers(0, 600, 40).astype(np.int32)
    roi["inmerge"] = 0  # the GUI adds this when it re-saves stat.npy
    return roi


def _registration(rng, n_frames, ly, lx):
    return {"refImg": rng.integers(0, 900, (ly, lx)).astype(np.int16), "rmin": np.int16(-3), "rmax": np.int16(870),
            "yoff": np.zeros(n_frames, np.int32), "xoff": np.zeros(n_frames, np.int32),
            "corrXY": rng.random(n_frames).astype(np.float32), "yoff1": np.zeros((n_frames, 4), np.float32),
            "xoff1": np.zeros((n_frames, 4), np.float32), "corrXY1": np.zeros((n_frames, 4), np.float32),
            "meanImg": rng.random((ly, lx)).astype(np.float32), "meanImgE": rng.random((ly, lx)),
            "badframes": np.zeros(n_frames, bool), "yrange": [0, ly], "xrange": [0, lx], "bidiphase": 0,
            "tPC": rng.random((n_frames // 10, 3)), "regPC": rng.random((2, 3, ly, lx)).astype(np.float32),
            "regDX": rng.random((3, 3))}


def _detection(rng, ly, lx):
    return {"Vmax": rng.random(5), "ihop": np.arange(5), "Vsplit": rng.random(5), "Vcorr": rng.random((ly, lx)),
            "Vmap": np.asanyarray([rng.random((ly, lx)), rng.random((ly // 2, lx // 2))], dtype=object),
            "spatscale_pix": np.int64(6), "max_proj": rng.random((ly, lx)).astype(np.float32)}


def _save_pickle(path, obj, numpy1=False):
    """As suite2p saves: ``np.save`` of a dict (0-d object array) or of an object array.
    ``numpy1``: the pickle numpy 1.x wrote (protocol 3, ``numpy.core`` module paths)."""
    array = obj if isinstance(obj, np.ndarray) else np.array(obj, dtype=object)
    if not numpy1:
        np.save(path, array, allow_pickle=True)
        return
    raw = pickle.dumps(array, protocol=3).replace(b"numpy._core.", b"numpy.core.")
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in raw  # protocol 3: text globals, no lengths to fix
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "|O", "fortran_order": False, "shape": array.shape})
        fh.write(raw)


def write_real_suite2p(root, version, n_planes=2, seed=1, combined=True, save_ops=True, nrois=1):
    """``root/suite2p/plane0..`` (+ ``combined``) holding what suite2p ``version`` ("0.10",
    "0.14" or "1.x") writes, a stimulus log, images and frame times. ``nrois`` > 1: a
    mesoscope's strips, one folder per plane and strip (plane * nrois + strip), each strip
    ``lx`` pixels right and 5 down of the one before. Returns the per-trial responses computed
    directly from the written spks / iscell / frame times, the image ids and the ROI centres
    (x, y, in the plane's field) and plane numbers of the kept ROIs."""
    rng = np.random.default_rng(seed)
    save0 = root / "suite2p"
    ids = rng.permutation(np.concatenate([np.arange(N_IMAGES - 2), np.repeat([N_IMAGES - 2, N_IMAGES - 1], 4)]))
    n_frames, ly, lx = int((len(ids) + 1) * FS), 24, 32
    times = np.arange(n_frames) / FS + 0.013
    onsets = 0.5 + np.arange(len(ids)) * 1.0 + 0.02
    numpy1 = version != "1.x"  # suite2p < 1.0 mostly ran under numpy 1.x
    data_path = [pathlib.Path(root) / "tiffs"]  # a caller's pathlib path, kept as given
    kept_spks, kept_pos, stats, arrays = [], [], [], []
    for p in range(n_planes * nrois):
        plane = save0 / f"plane{p}"
        plane.mkdir(parents=True)
        z, strip = divmod(p, nrois)
        meso = {} if nrois == 1 else {"nrois": nrois, "iplane": np.int64(z), "dx": np.int64(strip * lx),
                                      "dy": np.int64(5 * strip), "lines": list(range(strip * ly, (strip + 1) * ly))}
        n_rois = 5 + p
        spks = rng.gamma(0.5, 1.0, (n_rois, n_frames)).astype(np.float32)
        f = (rng.normal(300, 20, spks.shape) + 50 * spks).astype(np.float32)
        fneu = (0.5 * f + rng.normal(0, 5, f.shape)).astype(np.float32)
        prob = rng.uniform(0, 1, n_rois)
        prob[:2] = [0.95, 0.2]
        iscell = np.column_stack([prob > 0.5, prob])  # float64 (label, probability), as classify() returns
        stat = np.array([_stat_entry(rng, version) for _ in range(n_rois)])  # object array of dicts
        for name, value in (("F", f), ("Fneu", fneu), ("spks", spks), ("iscell", iscell)):
            np.save(plane / f"{name}.npy", value)
        np.save(plane / "redcell.npy", np.column_stack([np.zeros(n_rois), rng.random(n_rois)]))
        _save_pickle(plane / "stat.npy", stat, numpy1)
        paths = {"save_path": str(plane), "reg_file": str(plane / "data.bin")}
        if version == "1.x":
            db = {"data_path": data_path, "save_path0": data_path[0], "save_folder": "suite2p", "input_format": "tif",
                  "look_one_level_down": False, "keep_movie_raw": False, "nplanes": n_planes, "nrois": 1,
                  "nchannels": 1, "functional_chan": 1, "lines": None, "dy": None, "dx": None,
                  "ignore_flyback": None, "subfolders": None, "file_list": [str(data_path[0] / "f0.tif")],
                  "first_files": np.array([True]), "fast_disk": str(plane), "iplane": np.int64(p),
                  "db_path": str(plane / "db.npy"), "settings_path": str(plane / "settings.npy"),
                  "nframes": n_frames, "Ly": ly, "Lx": lx, "batch_size": 500, **paths,
                  **meso, **({} if nrois == 1 else {"iroi": np.int64(strip)})}
            settings = {"torch_device": "cuda", "tau": 1.0, "fs": FS, "diameter": np.array([12.0, 12.0]),
                        "run": {"do_registration": 1, "do_regmetrics": True, "do_detection": True,
                                "do_deconvolution": True, "multiplane_parallel": False},
                        "io": {"combined": True, "save_mat": False, "save_NWB": False, "save_ops_orig": save_ops,
                               "delete_bin": False, "move_bin": False},
                        "registration": {"align_by_chan2": False, "nimg_init": 400, "maxregshift": 0.1,
                                         "block_size": (128, 128), "bidiphase": 0.0, "nonrigid": True},
                        "detection": {"algorithm": "sparsery", "threshold_scaling": 1.0, "max_overlap": 0.75,
                                      "sparsery_settings": {"highpass_neuropil": 25, "spatial_scale": 0}},
                        "classification": {"classifier_path": None, "use_builtin_classifier": False,
                                           "preclassify": 0.0},
                        "extraction": {"neuropil_coefficient": 0.7, "snr_threshold": 0.0},
                        "dcnv_preprocess": {"baseline": "maximin", "win_baseline": 60.0},
                        "date_proc": datetime.datetime.now().astimezone(), "version": "1.1.0"}
            reg, det = _registration(rng, n_frames, ly, lx), {**_detection(rng, ly, lx), "diameter": np.array([12.0, 12.0])}
            _save_pickle(plane / "db.npy", db)
            _save_pickle(plane / "settings.npy", settings)
            _save_pickle(plane / "reg_outputs.npy", reg)
            _save_pickle(plane / "detect_outputs.npy", det)
            if save_ops:
                ops = {**db, **settings, **reg, **det,
                       "plane_times": {"registration": 1.2, "detection": 3.4, "total_plane_runtime": 7.9}}
                _save_pickle(plane / "ops.npy", ops)
        else:
            ops = {"suite2p_version": "0.14.6" if version == "0.14" else "0.10.3", "look_one_level_down": False,
                   "fast_disk": [], "delete_bin": False, "h5py": [], "h5py_key": "data", "save_path0": str(root),
                   "save_folder": [], "subfolders": [], "nplanes": n_planes, "nchannels": 1, "functional_chan": 1,
                   "tau": 1.0, "fs": FS, "frames_include": -1, "ignore_flyback": [], "preclassify": 0.0,
                   "combined": True, "aspect": 1.0, "do_bidiphase": False, "bidi_corrected": False,
                   "do_registration": True, "nonrigid": True, "block_size": [128, 128], "smooth_sigma": 1.15,
                   "diameter": 0, "classifier_path": "", "neucoeff": 0.7, "baseline": "maximin",
                   "data_path": data_path, "ops_path": str(plane / "ops.npy"),
                   "filelist": [str(data_path[0] / "f0.tif")], "first_tiffs": np.array([True]),
                   "frames_per_file": np.array([n_frames]), "frames_per_folder": np.array([n_frames], np.int32),
                   "nframes": np.int64(n_frames), "Ly": ly, "Lx": lx, "Lyc": ly, "Lxc": lx,
                   **paths, **_registration(rng, n_frames, ly, lx), **_detection(rng, ly, lx),
                   # 0.10 stamps datetime.now(); 0.12 onwards datetime.now().astimezone()
                   "date_proc": datetime.datetime.now() if version == "0.10" else datetime.datetime.now().astimezone(),
                   "timing": {"registration": 1.2, "detection": 3.4, "extraction": 0.5, "classification": 0.1,
                              "deconvolution": 0.2, "total_plane_runtime": 5.6}, **meso}
            _save_pickle(plane / "ops.npy", ops, numpy1)
        keep = iscell[:, 0] > 0.5  # the labels, as the loader keeps by default
        kept_spks.append(spks[keep])
        shift = (0, 0) if nrois == 1 else (strip * lx, 5 * strip)
        kept_pos.append([(float(s["med"][1]) + shift[0], float(s["med"][0]) + shift[1], float(z))
                         for s in stat[keep]])
        stats.append(stat)
        arrays.append((f, fneu, spks, iscell))
    if combined and n_planes * nrois > 1:  # suite2p's combined view: every folder's ROIs again, tagged with iplane
        folder = save0 / "combined"
        folder.mkdir()
        for k, name in enumerate(("F", "Fneu", "spks", "iscell")):
            np.save(folder / f"{name}.npy", np.concatenate([a[k] for a in arrays]))
        for k, stat in enumerate(stats):  # the plane folders' stat.npy are written already
            for roi in stat:
                roi["iplane"] = k
        _save_pickle(folder / "stat.npy", np.concatenate(stats), numpy1)
        if version == "1.x":
            _save_pickle(folder / "db.npy", {"nplanes": n_planes, "save_path": str(folder), "iplane": np.int64(1),
                                             "nrois": nrois})
            _save_pickle(folder / "settings.npy", {"fs": FS, "tau": 1.0, "version": "1.1.0",
                                                   "date_proc": datetime.datetime.now().astimezone()})
        else:
            _save_pickle(folder / "ops.npy", {"fs": FS, "save_path": str(folder), "Ly": ly, "Lx": 2 * lx,
                                              "nplanes": n_planes, "nrois": nrois,  # the last folder's
                                              "date_proc": datetime.datetime.now().astimezone()}, numpy1)
    np.save(root / "images.npy", rng.uniform(0, 255, (N_IMAGES, 9, 16)).astype(np.float32))
    np.save(root / "frame_times.npy", times)
    with open(root / "stimulus_log.csv", "w") as fh:
        fh.write("onset,image_id\n")
        fh.writelines(f"{onset:.4f},{i}\n" for onset, i in zip(onsets, ids))
    cells = np.concatenate(kept_spks)
    truth = np.stack([cells[:, (times >= onset) & (times < onset + 0.5)].mean(1) for onset in onsets])
    return truth, ids, np.concatenate([np.array(p, float).reshape(-1, 3) for p in kept_pos])


@pytest.mark.parametrize("version", ["0.10", "0.14", "1.x"])
def test_what_suite2p_writes_loads_with_the_directly_computed_responses(tmp_path, version):
    """ops.npy / stat.npy holding what each suite2p writes (time-zone-aware date_proc, timing,
    pathlib paths, numpy scalars, bool masks, nested settings, object arrays; numpy-1 pickles
    for suite2p < 1.0) load; two planes plus suite2p's combined folder give each ROI once."""
    truth, ids, positions = write_real_suite2p(tmp_path, version)
    ds = load_neural(tmp_path)
    assert ds.n_neurons == truth.shape[1]  # the combined folder is not read beside plane0, plane1
    np.testing.assert_allclose(ds.responses, truth, rtol=1e-5)
    np.testing.assert_array_equal(ds.image_ids, ids)
    np.testing.assert_allclose(ds.cortical_positions, positions)  # med (y, x) -> (x, y), plane number
    ops = read_pickled_npy(tmp_path / "suite2p" / "plane1" / "ops.npy")
    assert ops["fs"] == FS and ops["data_path"] == [str(tmp_path / "tiffs")]  # a path comes back as its string
    assert ops["date_proc"].tzinfo is not None or version == "0.10"
    stat = read_pickled_npy(tmp_path / "suite2p" / "plane0" / "stat.npy")
    assert stat[0]["soma_crop"].dtype == bool and isinstance(stat[0]["npix_soma"], np.int64)
    # the combined folder read alone: every ROI, at the depth of its plane
    combined = Suite2pRecording(suite2p=str(tmp_path / "suite2p" / "combined"),
                                stimulus_log=str(tmp_path / "stimulus_log.csv"), images=str(tmp_path / "images.npy"),
                                frame_times=str(tmp_path / "frame_times.npy")).load()
    np.testing.assert_allclose(combined.cortical_positions, positions)
    np.testing.assert_allclose(combined.responses, truth, rtol=1e-5)


def test_suite2p_1x_without_ops_npy_reads_db_and_settings(tmp_path):
    """suite2p 1.x with ``save_ops_orig`` off leaves no ops.npy: db.npy and settings.npy give fs."""
    truth, ids, _ = write_real_suite2p(tmp_path, "1.x", save_ops=False)
    os.remove(tmp_path / "frame_times.npy")  # the frame clock from settings["fs"]
    assert not (tmp_path / "suite2p" / "plane0" / "ops.npy").exists()
    ds = load_neural(tmp_path)
    assert ds.n_neurons == truth.shape[1] and ds.n_trials == len(ids)
    os.remove(tmp_path / "suite2p" / "plane1" / "settings.npy")
    with pytest.raises(DataError, match=r"plane1: suite2p output lacks ops\.npy"):
        load_neural(tmp_path)


def test_planes_are_read_in_plane_number_order(tmp_path):
    from neuroaikit.neural.suite2p import find_planes

    for name in [f"plane{i}" for i in range(12)] + ["combined", "plane3_old"]:
        (tmp_path / "suite2p" / name).mkdir(parents=True)
        np.save(tmp_path / "suite2p" / name / "F.npy", np.zeros((1, 2)))
    assert [p.name for p in find_planes(tmp_path)] == [f"plane{i}" for i in range(12)]


def test_a_frame_rate_stored_as_a_numpy_number_is_used(tmp_path):
    write_suite2p(tmp_path)
    plane = tmp_path / "suite2p" / "plane0"
    ops = read_pickled_npy(plane / "ops.npy")
    np.save(plane / "ops.npy", np.array({**ops, "fs": np.float32(FS)}, dtype=object), allow_pickle=True)
    os.remove(tmp_path / "frame_times.npy")
    assert load_neural(tmp_path).n_trials == len(np.loadtxt(tmp_path / "stimulus_log.csv", delimiter=",", skiprows=1))


class _PathExploit:
    """A pickle reaching pathlib for something other than building a path."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
            return pathlib.Path.write_text, (pathlib.PosixPath(self.marker), "pwned")


class _PathOfNonStrings:
    def __reduce__(self):
            return pathlib.PurePosixPath, (b"/etc", 3)


@pytest.mark.parametrize("payload, refusal", [
    (_PathExploit, r"forbidden global pathlib\.Path\.write_text"),
    (lambda marker: _PathOfNonStrings(), r"pathlib\.PurePosixPath with non-string parts is not allowed"),
])
def test_paths_are_admitted_only_as_strings(tmp_path, payload, refusal):
    write_suite2p(tmp_path)
    marker = tmp_path / "pwned"
    ops = np.array({"fs": FS, "save_path": payload(marker)}, dtype=object)
    np.save(tmp_path / "suite2p" / "plane0" / "ops.npy", ops, allow_pickle=True)
    with pytest.raises(DataError, match=rf"ops\.npy: refused to unpickle: {refusal}"):
        load_neural(tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize("module", [b"pathlib", b"pathlib._local"])  # Python 3.13 pickles from pathlib._local
def test_paths_from_any_python_and_os_read_as_strings(tmp_path, module):
    ops = {"data_path": [pathlib.PurePosixPath("/data/m1")], "save_path0": pathlib.PureWindowsPath(r"D:\data\m1")}
    raw = pickle.dumps(np.array(ops, dtype=object), protocol=3)
    raw = raw.replace(b"cpathlib\nPurePosixPath\n", b"c" + module + b"\nPosixPath\n")
    raw = raw.replace(b"cpathlib\nPureWindowsPath\n", b"c" + module + b"\nWindowsPath\n")  # written on Windows
    assert b"c" + module + b"\nPosixPath\n" in raw and b"c" + module + b"\nWindowsPath\n" in raw
    path = tmp_path / "ops.npy"
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "|O", "fortran_order": False, "shape": ()})
        fh.write(raw)
    assert read_pickled_npy(path) == {"data_path": ["/data/m1"], "save_path0": r"D:\data\m1"}


def _plane_responses(root, plane, times, onsets, window=0.5):
    """Direct means of a plane's kept ``spks`` over each onset's window on the clock ``times``."""
    folder = root / "suite2p" / f"plane{plane}"
    spks = np.load(folder / "spks.npy")[np.load(folder / "iscell.npy")[:, 0] > 0.5]
    return np.stack([spks[:, (times >= t) & (times < t + window)].mean(1) for t in onsets])


def test_each_plane_of_a_multi_plane_recording_runs_on_its_own_frame_clock(tmp_path, caplog):
    """Planes are imaged one after another: the scope's frame clock (one time per imaging frame
    of every plane) gives plane k every second time from the k-th, for the plane folders, one
    plane folder alone (its ops' nplanes) and suite2p's combined folder (each ROI's iplane);
    without frame times plane 1 is half a frame later than plane 0; one time per volume is
    shared, as before."""
    write_real_suite2p(tmp_path, "0.14")
    n_frames = np.load(tmp_path / "suite2p" / "plane0" / "F.npy").shape[1]
    clock = np.arange(2 * n_frames) / (2 * FS) + 0.013
    np.save(tmp_path / "frame_times.npy", clock)
    onsets = np.loadtxt(tmp_path / "stimulus_log.csv", delimiter=",", skiprows=1)[:, 0]
    per_plane = [_plane_responses(tmp_path, k, clock[k::2], onsets) for k in (0, 1)]
    with caplog.at_level("INFO"):
        ds = load_neural(tmp_path)
    np.testing.assert_allclose(ds.responses, np.hstack(per_plane), rtol=1e-5)
    assert "one per imaging frame, each plane taking its own" in caplog.text
    # the two clocks give different responses: sharing plane 0's clock would be wrong for plane 1
    assert np.abs(per_plane[1] - _plane_responses(tmp_path, 1, clock[0::2], onsets)).max() > 0.1

    def recording(folder, **kw):
        return Suite2pRecording(suite2p=str(folder), stimulus_log=str(tmp_path / "stimulus_log.csv"),
                                images=str(tmp_path / "images.npy"), **kw).load()

    alone = recording(tmp_path / "suite2p" / "plane1", frame_times=str(tmp_path / "frame_times.npy"))
    np.testing.assert_allclose(alone.responses, per_plane[1], rtol=1e-5)
    combined = recording(tmp_path / "suite2p" / "combined", frame_times=str(tmp_path / "frame_times.npy"))
    np.testing.assert_allclose(combined.responses, np.hstack(per_plane), rtol=1e-5)
    # no frame times: ops["fs"] is the rate per plane, plane k offset by k / nplanes of a frame
    os.remove(tmp_path / "frame_times.npy")
    offsets = [_plane_responses(tmp_path, k, (np.arange(n_frames) + k / 2) / FS, onsets) for k in (0, 1)]
    np.testing.assert_allclose(load_neural(tmp_path).responses, np.hstack(offsets), rtol=1e-5)
    # one time per volume: every plane on that clock
    volumes = np.arange(n_frames) / FS + 0.013
    np.save(tmp_path / "frame_times.npy", volumes)
    shared = [_plane_responses(tmp_path, k, volumes, onsets) for k in (0, 1)]
    np.testing.assert_allclose(load_neural(tmp_path).responses, np.hstack(shared), rtol=1e-5)


def test_a_recording_whose_every_image_repeats_holds_some_images_out_for_test(tmp_path):
    """Without a tier column and with every image shown at least ``test_repeats`` times, a fifth
    of the images (all their trials) are the test tier and the rest train, not everything test."""
    write_suite2p(tmp_path)
    rows = np.loadtxt(tmp_path / "stimulus_log.csv", delimiter=",", skiprows=1)
    with open(tmp_path / "stimulus_log.csv", "w") as fh:
        fh.write("onset,image_id\n")
        fh.writelines(f"{onset:.4f},{k % 5}\n" for k, onset in enumerate(rows[:, 0]))
    ds = load_neural(tmp_path)
    test, train = set(ds.image_ids[ds.tiers == "test"]), set(ds.image_ids[ds.tiers == "train"])
    assert len(test) == 1 and len(train) == 4 and not test & train


def _clock_and_onsets(root, per_volume):
    """The scope's frame clock (one time per imaging frame of each of ``per_volume`` planes),
    saved as the recording's frame times, and the log's onsets."""
    n_frames = np.load(root / "suite2p" / "plane1" / "F.npy").shape[1]
    clock = np.arange(per_volume * n_frames) / (per_volume * FS) + 0.013
    np.save(root / "frame_times.npy", clock)
    return clock, n_frames, np.loadtxt(root / "stimulus_log.csv", delimiter=",", skiprows=1)[:, 0]


@pytest.mark.parametrize("version", ["0.14", "1.x"])
def test_a_flyback_plane_keeps_its_place_in_the_plane_cycle(tmp_path, version):
    """suite2p skips the planes in ``ignore_flyback`` but keeps their folders and numbers (with
    no F.npy) and counts them in ``nplanes``: plane k still takes every third time from the k-th;
    the flyback folder read alone is a one-line error saying why."""
    write_real_suite2p(tmp_path, version, n_planes=3, combined=False)
    flyback = tmp_path / "suite2p" / "plane0"
    for name in ("F", "Fneu", "spks", "iscell", "stat"):
        os.remove(flyback / f"{name}.npy")
    clock, _, onsets = _clock_and_onsets(tmp_path, 3)
    expected = [_plane_responses(tmp_path, k, clock[k::3], onsets) for k in (1, 2)]
    np.testing.assert_allclose(load_neural(tmp_path).responses, np.hstack(expected), rtol=1e-5)
    with pytest.raises(DataError, match=r"plane0: suite2p extracted no traces here \(no F.npy\): a flyback"):
        Suite2pRecording(suite2p=str(flyback), stimulus_log=str(tmp_path / "stimulus_log.csv")).load()


@pytest.mark.parametrize("version", ["0.14", "1.x"])
def test_a_mesoscope_s_strips_share_their_plane_s_clock_and_field(tmp_path, version):
    """A mesoscope images every strip of a plane in one scanner frame. suite2p writes one folder
    per plane and strip (plane * nrois + strip; nplanes the planes, 1.x adds iroi): the strips of
    plane z take the clock's every second time from the z-th, their
    ROIs sit at dx, dy in the plane's field at depth z; the combined folder (each ROI's folder
    number) and, without frame times, offsets of z / nplanes of a frame agree."""
    _, _, positions = write_real_suite2p(tmp_path, version, n_planes=2, nrois=2)
    clock, n_frames, onsets = _clock_and_onsets(tmp_path, 2)
    expected = np.hstack([_plane_responses(tmp_path, j, clock[j // 2::2], onsets) for j in range(4)])
    ds = load_neural(tmp_path)
    np.testing.assert_allclose(ds.responses, expected, rtol=1e-5)
    np.testing.assert_allclose(ds.cortical_positions, positions)
    assert sorted(set(ds.cortical_positions[:, 2])) == [0.0, 1.0]
    combined = Suite2pRecording(suite2p=str(tmp_path / "suite2p" / "combined"),
                                stimulus_log=str(tmp_path / "stimulus_log.csv"), images=str(tmp_path / "images.npy"),
                                frame_times=str(tmp_path / "frame_times.npy")).load()
    np.testing.assert_allclose(combined.responses, expected, rtol=1e-5)
    np.testing.assert_array_equal(combined.cortical_positions[:, 2], ds.cortical_positions[:, 2])
    os.remove(tmp_path / "frame_times.npy")
    offsets = [_plane_responses(tmp_path, j, (np.arange(n_frames) + (j // 2) / 2) / FS, onsets) for j in range(4)]
    np.testing.assert_allclose(load_neural(tmp_path).responses, np.hstack(offsets), rtol=1e-5)


@pytest.mark.parametrize("version", ["0.14", "1.x"])
def test_the_combined_folder_beside_a_flyback_plane_numbers_its_rois_as_its_suite2p_does(tmp_path, version):
    """suite2p's combined folder leaves a flyback plane out. 0.14 tags each ROI with its folder
    number; 1.x counts only the folders it combined (plane 1 is 0 there), which its settings'
    ignore_flyback and version tell: both read back on each plane's own clock."""
    write_real_suite2p(tmp_path, version, n_planes=3, combined=False)
    save0 = tmp_path / "suite2p"
    for name in ("F", "Fneu", "spks", "iscell", "stat"):
        os.remove(save0 / "plane0" / f"{name}.npy")
    combined = save0 / "combined"
    combined.mkdir()
    for name in ("F", "Fneu", "spks", "iscell"):
        np.save(combined / f"{name}.npy", np.concatenate([np.load(save0 / f"plane{k}" / f"{name}.npy") for k in (1, 2)]))
    stat = []
    for k in (1, 2):
        for roi in read_pickled_npy(save0 / f"plane{k}" / "stat.npy"):
            stat.append({**roi, "iplane": k - 1 if version == "1.x" else k})
    _save_pickle(combined / "stat.npy", np.array(stat, dtype=object))
    if version == "1.x":
        _save_pickle(combined / "db.npy", {"nplanes": 3, "nrois": 1, "iplane": np.int64(2), "ignore_flyback": [0]})
        _save_pickle(combined / "settings.npy", {"fs": FS, "version": "1.1.0"})
    else:
        _save_pickle(combined / "ops.npy", {"fs": FS, "nplanes": 3, "ignore_flyback": [0], "suite2p_version": "0.14.6"})
    clock, _, onsets = _clock_and_onsets(tmp_path, 3)
    expected = np.hstack([_plane_responses(tmp_path, k, clock[k::3], onsets) for k in (1, 2)])
    ds = Suite2pRecording(suite2p=str(combined), stimulus_log=str(tmp_path / "stimulus_log.csv"),
                          images=str(tmp_path / "images.npy"), frame_times=str(tmp_path / "frame_times.npy")).load()
    np.testing.assert_allclose(ds.responses, expected, rtol=1e-5)
    assert sorted(set(ds.cortical_positions[:, 2])) == [1.0, 2.0]


def test_frame_times_that_fit_no_plane_layout_or_have_a_header_are_one_line_errors(tmp_path):
    """Two planes: frame times between one per volume and one per imaging frame, a CSV with a
    header row, and plane settings without nplanes are refused naming the file."""
    write_real_suite2p(tmp_path, "0.14", combined=False)
    n_frames = np.load(tmp_path / "suite2p" / "plane0" / "F.npy").shape[1]
    np.save(tmp_path / "frame_times.npy", np.arange(int(1.6 * n_frames)) / 20.0)
    with pytest.raises(DataError, match=rf"frame_times.npy: {int(1.6 * n_frames)} frame times for {n_frames} frames "
                                        rf"of each of 2 planes: neither one per volume"):
        load_neural(tmp_path)
    os.remove(tmp_path / "frame_times.npy")
    (tmp_path / "times.csv").write_text("time\n" + "\n".join(str(i / 10) for i in range(n_frames)))
    with pytest.raises(DataError, match=r"times\.csv: frame times must be numbers only, one per frame, no header"):
        Suite2pRecording(suite2p=str(tmp_path), frame_times=str(tmp_path / "times.csv")).load()
    for plane in ("plane0", "plane1"):
        ops = read_pickled_npy(tmp_path / "suite2p" / plane / "ops.npy")
        del ops["nplanes"]
        _save_pickle(tmp_path / "suite2p" / plane / "ops.npy", ops)
    with pytest.raises(DataError, match=r"plane0: no 'nplanes' in suite2p's settings"):
        load_neural(tmp_path)


def test_a_trial_the_recording_s_end_cuts_is_left_out_when_asked(tmp_path, capsys):
    """A stimulus shown as imaging stopped: its response window runs past the last frame. The
    default stops with the option named; --drop-nan-trials leaves that trial out, as it leaves out a
    trial with a dropped frame, and every other trial keeps its response."""
    truth, ids = write_suite2p(tmp_path)
    times = np.load(tmp_path / "frame_times.npy")
    log = (tmp_path / "stimulus_log.csv").read_text().splitlines()
    last = log[-1].split(",")
    cut_onset = times[-1] - 0.2  # its 0.5 s window ends 0.3 s after the last frame
    (tmp_path / "stimulus_log.csv").write_text("\n".join(log + [",".join([f"{cut_onset:.4f}", *last[1:]])]) + "\n")
    with pytest.raises(DataError, match=r"stimulus_log\.csv: 1 stimulus onset\(s\) .* partly outside the recording "
                                        r".*--drop-nan-trials"):
        load_neural(tmp_path)
    ds = load_neural(tmp_path, nan_policy="drop")
    assert ds.n_trials == len(ids) and ds.info["dropped_nan_trials"] == 1
    np.testing.assert_allclose(ds.responses, truth, rtol=1e-5)


def test_a_log_with_some_behaviour_columns_gives_those_and_half_a_pupil_is_refused(tmp_path):
    """A log with running_speed alone gave no behaviour at all ("the data set has no behaviour")."""
    import csv

    write_suite2p(tmp_path)
    log = tmp_path / "stimulus_log.csv"
    with open(log, newline="") as fh:
        rows = list(csv.DictReader(fh))
    with open(log, "w", newline="") as fh:
        writer = csv.DictWriter(fh, ["onset", "image_id", "running_speed", "pupil_x"])
        writer.writeheader()
        writer.writerows({k: row[k] for k in writer.fieldnames} for row in rows)
    with pytest.raises(DataError, match="a pupil centre needs both columns pupil_x and pupil_y; only pupil_x"):
        load_neural(tmp_path)
    with open(log, "w", newline="") as fh:
        writer = csv.DictWriter(fh, ["onset", "image_id", "running_speed"])
        writer.writeheader()
        writer.writerows({k: row[k] for k in writer.fieldnames} for row in rows)
    log.write_bytes(b"\xef\xbb\xbf" + log.read_bytes())  # as Excel saves "CSV UTF-8": its header was '\ufeffonset'
    ds = load_neural(tmp_path)
    assert ds.behavior.shape == (len(rows), 1) and ds.pupil_center is None
    np.testing.assert_allclose(ds.behavior[:, 0], [float(row["running_speed"]) for row in rows], rtol=1e-6)


def test_align_reads_a_suite2p_recording(tmp_path):
    """align's --neural took only the Antolik / Allen files and FileTree folders: a suite2p folder
    was "meta/trials/tiers.npy is missing"."""
    from neuroaikit.alignment.profile import load_target

    write_suite2p(tmp_path)
    target = load_target(tmp_path)
    ds = load_neural(tmp_path)
    assert target.info["tier"] == "test" and target.average.shape == (2, ds.n_neurons)
    np.testing.assert_allclose(target.average, np.nanmean(ds.repeats("test"), axis=1), rtol=1e-6)


def test_roi_ids_of_several_planes_are_integers_the_writers_store(tmp_path):
    """Ids like "plane0/0" made write_filetree and write_nwb fail on int()."""
    from neuroaikit.neural.filetree import load_filetree, write_filetree

    write_real_suite2p(tmp_path / "rec", "0.14")
    ds = load_neural(tmp_path / "rec")
    assert ds.unit_ids.dtype.kind == "i" and len(set(ds.unit_ids.tolist())) == ds.n_neurons
    assert (ds.unit_ids >= 1_000_000).any()  # the second plane's ROIs
    back = load_filetree(write_filetree(ds, tmp_path / "ft"))
    np.testing.assert_array_equal(back.unit_ids, ds.unit_ids)
