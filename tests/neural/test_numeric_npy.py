"""A corrupt ``.npy`` / ``.npz`` given to a recording loader is a one-line error naming the file,
not numpy's advice to load it with ``allow_pickle=`` (recordings are never unpickled that way,
and a file that is no numpy file is no pickle either)."""

from __future__ import annotations

import importlib.util
import pathlib
import zipfile

import numpy as np
import pytest

from neuroaikit.cli.main import main
from neuroaikit.errors import DataError
from neuroaikit.neural import SyntheticCortex, load_neural
from neuroaikit.neural.dataset import numeric_npy
from neuroaikit.neural.npz import load_allen

NOT_NUMERIC = r"not a numeric \.npy array \(unreadable, or holds Python objects\)$"


def _write_suite2p(root):
    spec = importlib.util.spec_from_file_location("suite2p_tests", pathlib.Path(__file__).with_name("test_suite2p.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_suite2p(root)


def _refused(call, match):
    with pytest.raises(DataError, match=match) as info:
        call()
    message = str(info.value)
    assert "allow_pickle" not in message and "\n" not in message
    return message


@pytest.mark.parametrize("content", [b"hello", b"\x93NUMPY\x01\x00truncated", "objects"])
def test_a_suite2p_file_that_is_no_numeric_array_is_named_in_one_line(tmp_path, content):
    _write_suite2p(tmp_path)
    f = tmp_path / "suite2p" / "plane0" / "F.npy"
    if content == "objects":
        np.save(f, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    else:
        f.write_bytes(content)
    assert _refused(lambda: load_neural(tmp_path), NOT_NUMERIC).startswith(str(f))


def test_the_cli_says_it_in_one_line_and_writes_nothing(tmp_path, capsys):
    data = tmp_path / "rec"
    data.mkdir()
    _write_suite2p(data)
    (data / "images.npy").write_text("hello")
    out = tmp_path / "run"
    assert main(["twin", "fit", str(data), "--max-epochs", "1", "--threads", "1", "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {data / 'images.npy'}: not a numeric .npy array (unreadable, or holds Python objects)"
    assert not out.exists() and not out.with_name("run.partial").exists()


@pytest.fixture(scope="module")
def synthetic():
    cortex = SyntheticCortex(n_neurons=6, image_shape=(9, 16), seed=3)
    return cortex, cortex.sample(n_train=20, n_validation=4, n_test_images=3, repeats=2)


def test_a_corrupt_filetree_array_is_named_in_one_line_in_a_folder_and_a_zip(tmp_path, synthetic):
    cortex, ds = synthetic
    tree = cortex.write(ds, tmp_path / "static-synthetic")
    (tree / "meta" / "trials" / "tiers.npy").write_text("hello")
    _refused(lambda: load_neural(tree), r"tiers\.npy: " + NOT_NUMERIC)
    archive = tmp_path / "static-synthetic.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in tree.rglob("*"):
            if file.is_file():
                zf.write(file, file.relative_to(tmp_path).as_posix())
    _refused(lambda: load_neural(archive), r"static-synthetic\.zip.*tiers\.npy: " + NOT_NUMERIC)


def test_a_corrupt_receptive_field_truth_is_named_in_one_line(tmp_path, synthetic):
    from neuroaikit.neural.twin import _truth_centers

    cortex, ds = synthetic
    tree = cortex.write(ds, tmp_path / "static-synthetic")
    truth = tree / "meta" / "neurons" / "rf_centers.npy"
    np.testing.assert_array_equal(_truth_centers(load_neural(tree), str(tree), None), cortex.rf_centers_)
    truth.write_text("hello")
    _refused(lambda: _truth_centers(load_neural(tree), str(tree), None), r"rf_centers\.npy: " + NOT_NUMERIC)


def test_a_corrupt_npz_recording_is_named_in_one_line(tmp_path):
    file = tmp_path / "allen_natural_scenes_v1.npz"
    file.write_text("hello")
    _refused(lambda: load_allen(file), r"allen_natural_scenes_v1\.npz: not a numeric \.npz file \(unreadable, or "
                                       r"holds Python objects\)$")
    arrays = dict.fromkeys(["train_image_index", "test_image_index", "train_responses", "test_responses"], np.ones(2))
    np.savez(file, images=np.array([{}], dtype=object), **arrays)
    _refused(lambda: load_allen(file), r"\.npz: not a numeric \.npz file")
    np.save(open(file, "wb"), np.ones(3))
    _refused(lambda: load_allen(file), r"\.npz: not a numeric \.npz file \(a single \.npy array\)$")


def test_numeric_npy_refuses_an_npz_archive(tmp_path):
    file = tmp_path / "a.npy"
    np.savez(open(file, "wb"), a=np.ones(2))
    _refused(lambda: numeric_npy(file), r"a\.npy: not a numeric \.npy array \(an \.npz archive\)$")
    np.save(file, np.arange(3))
    np.testing.assert_array_equal(numeric_npy(file), np.arange(3))
