"""CIFAR-10 from the real npz subset and from official-format pickle batches built from it."""

from __future__ import annotations

import os
import pickle
import shutil

import numpy as np
import pytest
import torch

from neuroaikit.data import load_dataset
from neuroaikit.data.cifar import read_meta, restricted_load
from neuroaikit.errors import DataError

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(scope="module")
def npz_arrays(cifar_npz):
    with np.load(cifar_npz) as z:
        return {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}


def _expected(npz_arrays, split):
    x = torch.from_numpy(npz_arrays[f"x_{split}"].transpose(0, 3, 1, 2).astype(np.float32)) / 255
    return x, torch.from_numpy(npz_arrays[f"y_{split}"].astype(np.int64))


def test_npz_subset_real(shared_data, npz_arrays):
    for split, n in (("train", 4000), ("test", 1000)):
        ds = load_dataset("cifar10", split, data_dir=shared_data)  # parent: finds cifar10-subset/
        assert len(ds) == n and ds.shape == (3, 32, 32) and ds.classes == CLASSES
        x, y = _expected(npz_arrays, split)
        assert torch.equal(ds.images, x) and torch.equal(ds.labels, y)


def test_official_meta_through_restricted_unpickler(cifar_npz):
    assert read_meta(cifar_npz.parent / "batches.meta") == CLASSES


@pytest.mark.parametrize("style", ["py2", "protocol2", "protocol4"])
def test_pickle_batches_match_npz(cifar_pickle_folder, npz_arrays, tmp_path, style):
    folder = cifar_pickle_folder(style)
    for split in ("train", "test"):
        ds = load_dataset("cifar10", split, data_dir=tmp_path, verify=False)  # parent of cifar-10-batches-py
        x, y = _expected(npz_arrays, split)
        assert torch.equal(ds.images, x) and torch.equal(ds.labels, y) and ds.classes == CLASSES
    assert "data_batch_5" in load_dataset("cifar10", "train", data_dir=folder, verify=False).source


def test_pickle_batches_prefered_over_npz_and_md5_checked(cifar_pickle_folder, cifar_npz):
    folder = cifar_pickle_folder()
    shutil.copy(cifar_npz, folder / "cifar10_subset.npz")
    with pytest.raises(DataError, match=r"data_batch_1: md5 is [0-9a-f]{32}, expected c99cafc1"):
        load_dataset("cifar10", "train", data_dir=folder)  # built batches are not the originals
    assert "test_batch" in load_dataset("cifar10", "test", data_dir=folder, verify=False).source


def test_nested_cifar_folder(tmp_path, cifar_pickle_folder):
    cifar_pickle_folder(root=tmp_path / "cifar10")
    assert len(load_dataset("cifar10", "test", data_dir=tmp_path, verify=False)) == 1000


def test_missing_batch(cifar_pickle_folder):
    folder = cifar_pickle_folder()
    (folder / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3: file not found; expected the CIFAR-10 train batches"):
        load_dataset("cifar10", "train", data_dir=folder, verify=False)


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_pickle_with_forbidden_global_is_refused(tmp_path, cifar_pickle_folder):
    folder = cifar_pickle_folder()
    marker = tmp_path / "pwned"
    with open(folder / "test_batch", "wb") as handle:
        pickle.dump({"data": _RunsCode(marker), "labels": [0]}, handle, protocol=2)
    refused = r"test_batch: refused to unpickle: forbidden global (posix|nt|os)\.system"
    with pytest.raises(DataError, match=refused) as exc:
        load_dataset("cifar10", "test", data_dir=folder, verify=False)
    assert "\n" not in str(exc.value)
    assert not marker.exists()


@pytest.mark.parametrize("payload", [
    {"data": np.array([1, "a"], dtype=object), "labels": [0, 1]},  # object arrays hold arbitrary objects
    {"data": torch.zeros(2), "labels": [0, 1]},                     # any other class
    {"data": print, "labels": []},                                  # builtins
])
def test_restricted_unpickler_refuses_anything_but_plain_data(tmp_path, payload):
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(DataError, match="refused to unpickle"):
        restricted_load(path)


def test_truncated_pickle(cifar_pickle_folder):
    folder = cifar_pickle_folder()
    path = folder / "test_batch"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DataError, match="test_batch: (corrupt or truncated|not a valid) pickle"):
        load_dataset("cifar10", "test", data_dir=folder, verify=False)


def test_batch_with_mismatched_counts(cifar_pickle_folder, cifar_batch_writer, npz_arrays):
    folder = cifar_pickle_folder()
    path = folder / "test_batch"
    cifar_batch_writer(path, npz_arrays["x_test"][:10], npz_arrays["y_test"][:10])
    batch = pickle.loads(path.read_bytes())
    batch["labels"] = batch["labels"][:7]
    path.write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(DataError, match="test_batch: 10 images but 7 labels"):
        load_dataset("cifar10", "test", data_dir=folder, verify=False)


def test_batch_wrong_structure(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(pickle.dumps({"pixels": [1, 2]}, protocol=2))
    with pytest.raises(DataError, match=r"test_batch: expected a dict with 'data' and 'labels', found \['pixels'\]"):
        load_dataset("cifar10", "test", data_dir=tmp_path, verify=False)


def test_npz_errors(tmp_path, npz_arrays):
    folder = tmp_path / "cifar10"
    folder.mkdir()
    np.savez(folder / "cifar10.npz", x_train=npz_arrays["x_train"][:5], y_train=npz_arrays["y_train"][:4])
    with pytest.raises(DataError, match="x_train holds 5 images but y_train 4 labels"):
        load_dataset("cifar10", data_dir=tmp_path)
    with pytest.raises(DataError, match=r"expected arrays 'x_test' and 'y_test', found \['x_train', 'y_train'\]"):
        load_dataset("cifar10", "test", data_dir=tmp_path)
    (folder / "cifar10.npz").write_bytes((folder / "cifar10.npz").read_bytes()[:300])
    with pytest.raises(DataError, match="cifar10.npz: corrupt or truncated .npz"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_npz_nchw_layout_accepted(tmp_path, npz_arrays):
    x = npz_arrays["x_test"][:20]
    np.savez(tmp_path / "cifar_nchw.npz", x_test=x.transpose(0, 3, 1, 2), y_test=npz_arrays["y_test"][:20])
    ds = load_dataset("cifar10", "test", data_dir=tmp_path)
    assert torch.equal(ds.images, torch.from_numpy(x.transpose(0, 3, 1, 2).astype(np.float32)) / 255)
    assert ds.classes == CLASSES  # no batches.meta: the standard names


def test_a_data_dir_naming_one_npz_loads_that_file_and_a_folder_of_several_is_refused(tmp_path, npz_arrays):
    """Two CIFAR-10 .npz files side by side: naming one as --data-dir used to load the other
    (the first in the folder); the folder alone is now ambiguous and refused."""
    small = {k: v[:40] if k.startswith(("x_train", "y_train")) else v[:10] for k, v in npz_arrays.items()}
    large = {k: v[:70] if k.startswith(("x_train", "y_train")) else v[:10] for k, v in npz_arrays.items()}
    np.savez(tmp_path / "cifar10_a.npz", **small)
    np.savez(tmp_path / "cifar10_b.npz", **large)
    assert len(load_dataset("cifar10", "train", data_dir=tmp_path / "cifar10_b.npz")) == 70
    assert len(load_dataset("cifar10", "train", data_dir=tmp_path / "cifar10_a.npz")) == 40
    with pytest.raises(DataError, match=r"several CIFAR-10 \.npz files \(cifar10_a\.npz, cifar10_b\.npz\)"):
        load_dataset("cifar10", "train", data_dir=tmp_path)


def test_a_cifar100_file_beside_cifar10_is_not_a_candidate(tmp_path, npz_arrays):
    np.savez(tmp_path / "cifar10.npz", **{k: v[:30] for k, v in npz_arrays.items()})
    np.savez(tmp_path / "cifar100.npz", **{k: v[:20] for k, v in npz_arrays.items()})
    assert len(load_dataset("cifar10", "train", data_dir=tmp_path)) == 30


def test_a_split_without_images_is_refused_before_training(tmp_path):
    """A cifar10.npz of zero images loaded, and `train` ended in a ZeroDivisionError (internal error)."""
    from neuroaikit.data.loader import load_train_test

    empty = np.zeros((0, 32, 32, 3), np.uint8)
    np.savez(tmp_path / "cifar10.npz", x_train=empty, y_train=np.zeros(0, int), x_test=empty, y_test=np.zeros(0, int))
    with pytest.raises(DataError, match="cifar10: the train split holds no images"):
        load_train_test("cifar10", tmp_path)
