"""Downloads against a local HTTP server on 127.0.0.1 serving the real files."""

from __future__ import annotations

import gzip
import io
import shutil
import tarfile

import pytest
import torch

from neuroaikit.data import download_dataset, fetch, load_dataset, md5_file
from neuroaikit.errors import ConfigError, DataError


def test_download_mnist_then_load(tmp_path, http_serve, shared_data, mnist_dir):
    base = http_serve(shared_data) + "mnist/"
    lines = []
    folder = download_dataset("mnist", tmp_path / "data", base_url=base, echo=lines.append)
    assert folder == tmp_path / "data" / "mnist"
    for path in mnist_dir.glob("*.gz"):
        assert md5_file(folder / path.name) == md5_file(path)
    assert len(http_serve.requests) == 4 and all(line.startswith("downloading http://127.0.0.1") for line in lines)
    assert not list(folder.glob(".*tmp"))  # no temporary left behind
    # a second call finds the files with the right md5 and fetches nothing
    download_dataset("mnist", tmp_path / "data", base_url=base)
    assert len(http_serve.requests) == 4
    ds = load_dataset("mnist", "test", data_dir=tmp_path / "data")
    assert len(ds) == 10000


def test_uncompressed_files_that_the_loader_reads_are_not_downloaded_again(tmp_path, http_serve, shared_data,
                                                                           mnist_dir):
    """A folder of good gunzipped IDX files (one .gz kept) is complete: nothing is fetched; a
    corrupt uncompressed file is not taken for a good one."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    for path in sorted(mnist_dir.glob("*.gz")):
        if path.name.startswith("t10k-labels"):
            shutil.copy(path, folder / path.name)
        else:
            (folder / path.stem).write_bytes(gzip.decompress(path.read_bytes()))
    base = http_serve(shared_data) + "mnist/"
    lines = []
    assert download_dataset("mnist", folder, base_url=base, echo=lines.append) == folder
    assert http_serve.requests == [] and all(line.endswith("present, md5 ok") for line in lines)
    assert any("train-images-idx3-ubyte: present" in line for line in lines)
    broken = folder / "train-labels-idx1-ubyte"
    content = broken.read_bytes()
    broken.write_bytes(content[:-1] + bytes([content[-1] ^ 1]))
    download_dataset("mnist", folder, base_url=base)
    assert len(http_serve.requests) == 1 and (folder / "train-labels-idx1-ubyte.gz").is_file()
    # a bad .gz beside a good uncompressed file is what the loader would read: it is fetched again
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"not a gzip")
    download_dataset("mnist", folder, base_url=base)
    assert len(http_serve.requests) == 2
    assert md5_file(folder / "train-images-idx3-ubyte.gz") == md5_file(mnist_dir / "train-images-idx3-ubyte.gz")


def test_load_dataset_download_flag(tmp_path, http_serve, shared_data):
    base = http_serve(shared_data) + "fashion-mnist/"
    target = tmp_path / "fashion-mnist"  # data_dir already named after the dataset: files go there
    ds = load_dataset("fashion-mnist", "test", data_dir=target, download=True, base_url=base)
    assert len(ds) == 10000 and sorted(p.name for p in target.iterdir())[0] == "t10k-images-idx3-ubyte.gz"


def test_md5_mismatch_leaves_nothing(tmp_path, http_serve, mnist_dir):
    served = tmp_path / "served"
    served.mkdir()
    for path in mnist_dir.glob("*.gz"):
        shutil.copy(path, served / path.name)
    bad = served / "t10k-labels-idx1-ubyte.gz"
    labels = bytearray(gzip.decompress(bad.read_bytes()))
    labels[50] = (labels[50] + 1) % 10
    bad.write_bytes(gzip.compress(bytes(labels)))
    target = tmp_path / "data"
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz: downloaded file has md5 [0-9a-f]{32}, "
                                        r"expected ec29112d.*nothing was written"):
        download_dataset("mnist", target, base_url=http_serve(served))
    names = sorted(p.name for p in (target / "mnist").iterdir())
    assert "t10k-labels-idx1-ubyte.gz" not in names and not [n for n in names if n.endswith(".tmp")]


def test_missing_on_server_and_unreachable(tmp_path, http_serve):
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: download failed \(HTTP 404"):
        download_dataset("mnist", tmp_path, base_url=http_serve(tmp_path / "empty"))
    with pytest.raises(DataError, match="download failed"):
        fetch("http://127.0.0.1:9/nothing.gz", tmp_path / "x.gz", timeout=2)
    assert not (tmp_path / "x.gz").exists()


def test_digits_has_nothing_to_download():
    with pytest.raises(ConfigError, match="embedded"):
        download_dataset("digits")


def _tarball(folder, dest, extra_members=()):
    with tarfile.open(dest, "w:gz", compresslevel=1) as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=f"cifar-10-batches-py/{path.name}")
        for name, data in extra_members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return dest


def test_download_cifar_archive(tmp_path, http_serve, cifar_pickle_folder):
    built = cifar_pickle_folder(root=tmp_path / "built")
    served = tmp_path / "served"
    served.mkdir()
    _tarball(built, served / "cifar-10-python.tar.gz", extra_members=[("../escape.txt", b"x")])
    base = http_serve(served)
    target = tmp_path / "data"
    # the built archive is not the official one: the md5 check refuses it and writes nothing
    with pytest.raises(DataError, match=r"cifar-10-python.tar.gz: downloaded file has md5 .* expected c58f3010"):
        download_dataset("cifar10", target, base_url=base)
    assert not (target / "cifar-10-batches-py").exists() and not (target / "cifar-10-python.tar.gz").exists()
    folder = download_dataset("cifar10", target, base_url=base, verify=False)
    assert folder == target / "cifar-10-batches-py"
    assert not (target / "cifar-10-python.tar.gz").exists() and not (tmp_path / "escape.txt").exists()
    ds = load_dataset("cifar10", "test", data_dir=target, verify=False)
    ref = load_dataset("cifar10", "test", data_dir=built, verify=False)
    assert torch.equal(ds.images, ref.images) and torch.equal(ds.labels, ref.labels)


def test_corrupt_cifar_archive(tmp_path, http_serve):
    served = tmp_path / "served"
    served.mkdir()
    (served / "cifar-10-python.tar.gz").write_bytes(b"\x1f\x8b" + b"not really" * 100)
    with pytest.raises(DataError, match="cifar-10-python.tar.gz: corrupt or truncated archive"):
        download_dataset("cifar10", tmp_path / "data", base_url=http_serve(served), verify=False)
    assert not (tmp_path / "data" / "cifar-10-python.tar.gz").exists()


def test_download_into_a_file_path_is_an_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DataError, match="cannot create the download folder"):
        download_dataset("mnist", blocker / "sub", base_url="http://127.0.0.1:9/")
