"""MNIST / Fashion-MNIST from the real idx files, and every failure mode on small copies."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
import torch

from neuroaikit.data import check_file, load_dataset
from neuroaikit.errors import ConfigError, DataError

MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # LeCun's published test split


@pytest.fixture(scope="module")
def mnist_train(mnist_dir):
    return load_dataset("mnist", "train", data_dir=mnist_dir)


def test_mnist_real_train(mnist_train, mnist_dir):
    ds = mnist_train
    assert len(ds) == 60000 and ds.shape == (1, 28, 28) and ds.split == "train"
    assert ds.images.dtype == torch.float32 and ds.labels.dtype == torch.int64
    assert float(ds.images.min()) == 0.0 and float(ds.images.max()) == 1.0
    assert ds.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    # pixels are exactly byte / 255, independently of our reader
    raw = np.frombuffer(gzip.decompress((mnist_dir / "train-images-idx3-ubyte.gz").read_bytes()), np.uint8, offset=16)
    assert torch.equal(ds.images[:100].reshape(-1), torch.from_numpy(raw[: 100 * 784].astype(np.float32)) / 255)


def test_mnist_real_test_from_parent_folder(shared_data):
    ds = load_dataset("mnist", "test", data_dir=shared_data)
    assert len(ds) == 10000 and ds.class_counts() == MNIST_TEST_COUNTS and ds.classes[3] == "3"


def test_fashion_mnist_real(fashion_dir):
    ds = load_dataset("fashion-mnist", "test", data_dir=fashion_dir)
    assert len(ds) == 10000 and ds.class_counts() == [1000] * 10
    assert ds.classes[0] == "T-shirt/top" and ds.shape == (1, 28, 28)


def test_env_var_default(monkeypatch, shared_data):
    monkeypatch.setenv("NEUROAIKIT_DATA", str(shared_data))
    assert len(load_dataset("fashion-mnist", "test")) == 10000


def test_real_files_pass_md5(mnist_dir, fashion_dir):
    for folder in (mnist_dir, fashion_dir):
        for path in sorted(folder.glob("*.gz")):
            assert check_file(folder.name, path).status == "ok", path


def test_uncompressed_and_dotted_names(tmp_path, mnist_dir):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for stem, name in (("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
                       ("t10k-labels-idx1-ubyte", "t10k-labels-idx1-ubyte")):
        (folder / name).write_bytes(gzip.decompress((mnist_dir / f"{stem}.gz").read_bytes()))
    raw = load_dataset("mnist", "test", data_dir=tmp_path)  # parent folder, md5 of raw files checked
    assert [check_file("mnist", p).status for p in sorted(folder.iterdir())] == ["ok", "ok"]
    gz = load_dataset("mnist", "test", data_dir=mnist_dir)
    assert torch.equal(raw.images, gz.images) and torch.equal(raw.labels, gz.labels)


def test_recompressed_gz_passes_on_content(tmp_path, mnist_dir):
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        content = gzip.decompress((mnist_dir / name).read_bytes())
        (tmp_path / name).write_bytes(gzip.compress(content, compresslevel=1, mtime=0))
    assert check_file("mnist", tmp_path / "t10k-labels-idx1-ubyte.gz").status == "ok-content"
    assert len(load_dataset("mnist", "test", data_dir=tmp_path)) == 10000


def test_synthetic_idx_values(tmp_path, tiny_idx):
    arrays = tiny_idx(tmp_path, n_train=5, n_test=3)
    ds = load_dataset("mnist", "train", data_dir=tmp_path, verify=False)
    images, labels = arrays["train"]
    assert torch.equal(ds.images[:, 0], torch.from_numpy(images.astype(np.float32)) / 255)
    assert ds.labels.tolist() == labels.tolist()


def test_synthetic_files_fail_md5_when_verified(tmp_path, tiny_idx):
    tiny_idx(tmp_path)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: md5 is [0-9a-f]{32}, expected f68b3c2d"):
        load_dataset("mnist", "train", data_dir=tmp_path)


# --- failure modes: each a one-line DataError naming the file ---------------------------------------


def _copy_test_files(src, dst):
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(src / name, dst / name)
    return dst


def _one_line(exc_info):
    message = str(exc_info.value)
    assert "\n" not in message
    return message


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="data folder not found") as exc:
        load_dataset("mnist", data_dir=tmp_path / "nope")
    assert str(tmp_path / "nope") in _one_line(exc)


def test_folder_without_files(tmp_path):
    with pytest.raises(DataError, match=r"no mnist train files found.*train-images-idx3-ubyte\[\.gz\]") as exc:
        load_dataset("mnist", data_dir=tmp_path)
    _one_line(exc)


def test_missing_labels_file(tmp_path, mnist_dir):
    folder = _copy_test_files(mnist_dir, tmp_path)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: file not found") as exc:
        load_dataset("mnist", "test", data_dir=folder)
    _one_line(exc)


@pytest.mark.parametrize("verify", [True, False])
def test_truncated_gzip(tmp_path, mnist_dir, verify):
    folder = _copy_test_files(mnist_dir, tmp_path)
    path = folder / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[: 500_000])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: truncated gzip") as exc:
        load_dataset("mnist", "test", data_dir=folder, verify=verify)
    _one_line(exc)


def test_corrupt_gzip(tmp_path, mnist_dir):
    folder = _copy_test_files(mnist_dir, tmp_path)
    path = folder / "t10k-images-idx3-ubyte.gz"
    data = bytearray(path.read_bytes())
    for i in range(1000, 1100):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: corrupt gzip") as exc:
        load_dataset("mnist", "test", data_dir=folder)
    _one_line(exc)


def test_not_gzip_at_all(tmp_path, tiny_idx):
    tiny_idx(tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").write_text("<html>404 not found</html>")
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: corrupt gzip"):
        load_dataset("mnist", data_dir=tmp_path, verify=False)


def test_wrong_magic_number(tmp_path, mnist_dir):
    # images and labels swapped: each file has the other's magic number
    tmp_path.mkdir(exist_ok=True)
    shutil.copy(mnist_dir / "t10k-labels-idx1-ubyte.gz", tmp_path / "t10k-images-idx3-ubyte.gz")
    shutil.copy(mnist_dir / "t10k-images-idx3-ubyte.gz", tmp_path / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz: wrong magic number 0x00000801, "
                                        r"expected 0x00000803") as exc:
        load_dataset("mnist", "test", data_dir=tmp_path, verify=False)
    _one_line(exc)


def test_mismatched_counts(tmp_path, mnist_dir):
    shutil.copy(mnist_dir / "t10k-images-idx3-ubyte.gz", tmp_path / "t10k-images-idx3-ubyte.gz")
    shutil.copy(mnist_dir / "train-labels-idx1-ubyte.gz", tmp_path / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: 60000 labels but t10k-images-idx3-ubyte.gz "
                                        "holds 10000 images") as exc:
        load_dataset("mnist", "test", data_dir=tmp_path, verify=False)
    _one_line(exc)


def test_truncated_idx_payload(tmp_path, tiny_idx):
    tiny_idx(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: truncated: the header says shape \(6, 28, 28\)"):
        load_dataset("mnist", data_dir=tmp_path, verify=False)


def test_wrong_md5_of_valid_looking_file(tmp_path, mnist_dir):
    """One flipped label keeps the file well-formed; only the md5 catches it."""
    labels = bytearray(gzip.decompress((mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    labels[100] = (labels[100] + 1) % 10
    shutil.copy(mnist_dir / "t10k-images-idx3-ubyte.gz", tmp_path / "t10k-images-idx3-ubyte.gz")
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(bytes(labels))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte: md5 is [0-9a-f]{32}, expected 27ae3e4e") as exc:
        load_dataset("mnist", "test", data_dir=tmp_path)
    _one_line(exc)
    assert len(load_dataset("mnist", "test", data_dir=tmp_path, verify=False)) == 10000


def test_labels_out_of_range(tmp_path, tiny_idx, idx_writer):
    tiny_idx(tmp_path)
    idx_writer(tmp_path / "train-labels-idx1-ubyte.gz", np.array([0, 1, 2, 3, 4, 12], dtype=np.uint8))
    with pytest.raises(DataError, match=r"labels range over \[0, 12\], expected 0..9"):
        load_dataset("mnist", data_dir=tmp_path, verify=False)


def test_bad_split(mnist_dir):
    with pytest.raises(ConfigError, match="unknown split .val."):
        load_dataset("mnist", "val", data_dir=mnist_dir)


def test_data_dir_may_name_a_file(mnist_dir):
    assert len(load_dataset("mnist", "test", data_dir=mnist_dir / "t10k-labels-idx1-ubyte.gz")) == 10000


def test_default_folder_named_in_error(monkeypatch, tmp_path):
    monkeypatch.delenv("NEUROAIKIT_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(DataError, match=r"\.neuroaikit/data: data folder not found \(default data folder; "
                                        r"set \$NEUROAIKIT_DATA or pass data_dir, --data-dir on the command line\)"):
        load_dataset("fashion-mnist")
