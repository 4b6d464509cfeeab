"""CaImAn results (``cnm.save``) + stimulus log + frame times -> NeuralDataset: round trip,
accepted components, footprint centres, and one-line errors naming the file at fault.

The files are written in the layout of CaImAn's ``save_dict_to_hdf5``: nested dicts as groups, a
sparse matrix as a group of its CSC arrays, ``None`` as the text ``"NoneType"``."""

from __future__ import annotations

import logging

import h5py
import numpy as np
import pytest
import scipy.sparse

from neuroaikit.errors import ConfigError, DataError
from neuroaikit.neural import load_neural
from neuroaikit.neural.caiman import CaimanRecording, is_caiman_file

FR = 15.0  # Hz
N_COMPONENTS, N_IMAGES, DIMS = 6, 10, (20, 30)
ACCEPTED = np.array([0, 2, 3, 5])


def _save(group, values: dict) -> None:
    for key, value in values.items():
        if value is None:
            group[key] = "NoneType"
        elif isinstance(value, dict):
            _save(group.create_group(key), value)
        elif scipy.sparse.issparse(value):
            sub = group.create_group(key)
            for part in ("data", "indices", "indptr", "shape"):
                sub[part] = np.asarray(getattr(value, part))
        else:
            group[key] = value


def write_caiman(root, seed=0, **changes):
    """CaImAn results with footprints of known centres, a stimulus log (1 s per trial), images and
    frame times; returns the known per-trial mean of S over 0-0.5 s for the accepted components,
    the image ids and the footprint centres (x, y)."""
    rng = np.random.default_rng(seed)
    ids = rng.permutation(np.concatenate([np.arange(N_IMAGES - 2), np.repeat([N_IMAGES - 2, N_IMAGES - 1], 3)]))
    n_trials = len(ids)
    n_frames = int((n_trials + 1) * FR)
    times = np.arange(n_frames) / FR + 0.01
    onsets = 0.5 + np.arange(n_trials) + 0.03
    spikes = rng.gamma(0.5, 1.0, (N_COMPONENTS, n_frames))
    calcium = np.stack([np.convolve(s, np.exp(-np.arange(30) / 10.0))[:n_frames] for s in spikes])
    footprints = np.zeros((np.prod(DIMS), N_COMPONENTS))
    centres = []
    for k in range(N_COMPONENTS):
        image = np.zeros(DIMS)
        row, col = 3 + 2 * k, 4 + 3 * k
        image[row - 1:row + 2, col - 1:col + 2] = 1.0
        image[row, col] = 4.0
        footprints[:, k] = image.ravel(order="F")  # CaImAn's pixel order
        centres.append((col, row))
    estimates = {"A": scipy.sparse.csc_matrix(footprints), "C": calcium, "S": spikes, "YrA": 0.1 * calcium,
                 "F_dff": calcium / 10.0, "idx_components": ACCEPTED, "idx_components_bad": None,
                 "dims": np.array(DIMS), "b": rng.random((np.prod(DIMS), 1)), "f": rng.random((1, n_frames))}
    estimates.update(changes)
    with h5py.File(root / "cnmf_results.hdf5", "w") as fh:
        _save(fh, {"estimates": estimates, "params": {"data": {"fr": FR, "decay_time": 0.4}}, "dims": np.array(DIMS),
                   "dview": None})
    np.save(root / "images.npy", rng.uniform(0, 255, (N_IMAGES, 9, 16)).astype(np.float32))
    np.save(root / "frame_times.npy", times)
    with open(root / "stimulus_log.csv", "w") as fh:
        fh.write("onset,image_id\n")
        fh.writelines(f"{onset:.4f},{i}\n" for onset, i in zip(onsets, ids))
    truth = np.stack([spikes[:, (times >= t) & (times < t + 0.5)].mean(1) for t in onsets])
    return truth, ids, np.array(centres, dtype=float)


def test_round_trip_gives_the_written_responses_of_the_accepted_components(tmp_path):
    truth, ids, centres = write_caiman(tmp_path)
    path = tmp_path / "cnmf_results.hdf5"
    assert is_caiman_file(path) and not is_caiman_file(tmp_path / "images.npy")
    ds = load_neural(path)  # stimulus_log.csv, images.npy and frame_times.npy beside it
    np.testing.assert_allclose(ds.responses, truth[:, ACCEPTED], rtol=1e-5)
    np.testing.assert_array_equal(ds.image_ids, ids)
    assert ds.response_kind == "S" and ds.name == "cnmf_results"
    np.testing.assert_allclose(ds.cortical_positions[:, :2], centres[ACCEPTED], atol=1e-5)
    assert set(ds.image_ids[ds.tiers == "test"]) == {N_IMAGES - 2, N_IMAGES - 1}
    # the components keep CaImAn's indices as ids (they were renumbered 0..n-1)
    assert ds.unit_ids.tolist() == list(np.arange(len(centres))[ACCEPTED]) and "unit_ids_filled" not in ds.info


def test_recording_file_signals_components_and_the_frame_rate(tmp_path):
    truth, _, _ = write_caiman(tmp_path)
    (tmp_path / "rec.yaml").write_text("caiman: cnmf_results.hdf5\nsignal: C\ncomponents: all\nwindow: [0.1, 0.6]\n")
    ds = load_neural(tmp_path / "rec.yaml")
    assert ds.n_neurons == N_COMPONENTS and ds.response_kind == "C"
    results = str(tmp_path / "cnmf_results.hdf5")
    calcium = CaimanRecording(caiman=results, signal="C").load()
    dff = CaimanRecording(caiman=results, signal="F_dff").load()
    np.testing.assert_allclose(dff.responses, calcium.responses / 10.0, rtol=1e-5)  # F_dff was written as C / 10
    # without frame times the clock is i / fr: the same frames but where the 0.01 s offset moves one
    (tmp_path / "frame_times.npy").unlink()
    no_times = load_neural(results)
    assert no_times.responses.shape == truth[:, ACCEPTED].shape
    assert np.corrcoef(no_times.responses.ravel(), truth[:, ACCEPTED].ravel())[0, 1] > 0.95


def test_components_not_evaluated_are_all_kept_and_f_dff_not_computed_is_named(tmp_path, caplog):
    truth, _, _ = write_caiman(tmp_path, idx_components=None, F_dff=None)
    with caplog.at_level(logging.INFO, logger="neuroaikit"):
        ds = load_neural(tmp_path / "cnmf_results.hdf5")
    np.testing.assert_allclose(ds.responses, truth, rtol=1e-5)
    # said, since components CaImAn would have rejected are in the fit (the CLI shows it as a note)
    assert "components not evaluated): every component kept" in caplog.text
    with pytest.raises(DataError, match=r"estimates/F_dff is empty \(run estimates.detrend_df_f"):
        CaimanRecording(caiman=str(tmp_path / "cnmf_results.hdf5"), signal="F_dff").load()


@pytest.mark.parametrize("changes, message", [
    ({"S": np.zeros((3, 5))}, r"estimates/S has shape \(3, 5\), estimates/C"),
    ({"idx_components": np.array([0, 9])}, "idx_components names component 9, estimates/C has 6"),
    ({"idx_components": np.array([], dtype=np.int64)}, "accepts no component"),
    ({"C": np.zeros(5)}, r"estimates/C must be \(components, frames\)"),
    ({"C": "some text"}, "estimates/C holds the text 'some text'"),
])
def test_inconsistent_results_name_the_file_and_the_array(tmp_path, changes, message):
    write_caiman(tmp_path, **changes)
    with pytest.raises(DataError, match=message) as err:
        load_neural(tmp_path / "cnmf_results.hdf5")
    assert "cnmf_results.hdf5" in str(err.value) and "\n" not in str(err.value)


def test_missing_files_and_other_hdf5_are_one_line_errors(tmp_path):
    write_caiman(tmp_path)
    (tmp_path / "frame_times.npy").write_bytes(np.save.__doc__.encode()[:10])
    with pytest.raises(DataError, match="frame_times.npy"):
        load_neural(tmp_path / "cnmf_results.hdf5")
    np.save(tmp_path / "frame_times.npy", np.arange(5) / FR)
    with pytest.raises(DataError, match=r"5 frame times for \d+ frames of estimates/C"):
        load_neural(tmp_path / "cnmf_results.hdf5")
    (tmp_path / "frame_times.npy").unlink()
    (tmp_path / "stimulus_log.csv").unlink()
    with pytest.raises(DataError, match="no stimulus log given and no stimulus_log.csv beside it"):
        load_neural(tmp_path / "cnmf_results.hdf5")
    with h5py.File(tmp_path / "other.h5", "w") as fh:
        fh["x"] = np.zeros(3)
    with pytest.raises(DataError, match="no 'estimates' group: not results saved by CaImAn"):
        load_neural(tmp_path / "other.h5")
    (tmp_path / "broken.hdf5").write_bytes(b"not hdf5")
    with pytest.raises(DataError, match="broken.hdf5: not a readable HDF5 file"):
        load_neural(tmp_path / "broken.hdf5")
    with pytest.raises(ConfigError, match="signal"):
        CaimanRecording(caiman=str(tmp_path / "cnmf_results.hdf5"), signal="spks")


def test_twin_fit_reads_caiman_results_and_bad_input_is_one_line(tmp_path, capsys):
    from neuroaikit.cli.main import main

    write_caiman(tmp_path)
    results = str(tmp_path / "cnmf_results.hdf5")
    assert main(["twin", "fit", results, "--out", str(tmp_path / "run"), "--max-epochs", "1", "--starts", "1",
                 "--channels", "4", "--layers", "1", "--no-report", "--quiet", "--shifter"]) == 0
    assert (tmp_path / "run" / "results" / "twin_eval.json").is_file()
    # the log has no pupil columns: the shifter asked for is left out, said once in the run's log
    log = (tmp_path / "run" / "log.txt").read_text()
    assert log.count(f"note: no pupil centre in {results}: fitting without a shifter") == 1
    with h5py.File(results, "a") as fh:
        del fh["estimates/S"]
        fh["estimates/S"] = np.zeros((2, 2))
    assert main(["twin", "fit", results, "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "estimates/S has shape (2, 2)" in err[-1]
    assert not (tmp_path / "bad").exists() and not (tmp_path / "bad.partial").exists()
