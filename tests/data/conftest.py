"""Fixtures for the dataset tests: small files built on the fly and a local HTTP server."""

from __future__ import annotations

import functools
import gzip
import http.server
import pickle
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

SERVER_LIFETIME_S = 120  # a forgotten server stops by itself


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        type(self).requests.append(self.path)
        super().do_GET()


@pytest.fixture
def http_serve():
    """``serve(folder) -> base_url``: an HTTP server on 127.0.0.1 in a thread; ``serve.requests`` lists paths."""
    servers = []
    handler_class = type("Handler", (_QuietHandler,), {"requests": []})

    def serve(folder: Path) -> str:
        handler = functools.partial(handler_class, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        timer = threading.Timer(SERVER_LIFETIME_S, server.shutdown)
        timer.daemon = True
        timer.start()
        servers.append((server, thread, timer))
        return f"http://127.0.0.1:{server.server_address[1]}/"

    serve.requests = handler_class.requests
    yield serve
    for server, thread, timer in servers:
        timer.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def write_idx(path: Path, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write a uint8 array in idx format (gzip when the name ends in .gz)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.tobytes()
    compress = path.name.endswith(".gz") if compress is None else compress
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.fixture
def tiny_idx():
    """``make(folder, n_train, n_test, ...)`` writes four tiny MNIST-format files; returns the arrays."""

    def make(folder: Path, n_train: int = 6, n_test: int = 4, gz: bool = True, seed: int = 0) -> dict:
        rng = np.random.default_rng(seed)
        folder.mkdir(parents=True, exist_ok=True)
        suffix = ".gz" if gz else ""
        arrays = {}
        for prefix, n in (("train", n_train), ("t10k", n_test)):
            images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
            labels = rng.integers(0, 10, size=n, dtype=np.uint8)
            write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
            write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
            arrays[prefix] = (images, labels)
        return arrays

    return make


class _Py2Array:
    """Pickles like a numpy array loaded from a Python-2 pickle with encoding='latin1'
    (the official CIFAR-10 batches): ``_reconstruct`` plus a latin-1 *str* of the pixel bytes."""

    def __init__(self, array: np.ndarray):
        self.array = np.ascontiguousarray(array)

    def __reduce__(self):
        reconstruct = np.zeros(1).__reduce__()[0]
        state = (1, self.array.shape, self.array.dtype, False, self.array.tobytes().decode("latin1"))
        return reconstruct, (np.ndarray, (0,), b"b"), state


def write_cifar_batch(path: Path, images_nhwc: np.ndarray, labels: np.ndarray, style: str = "py2") -> Path:
    """One batch in the official layout: dict of data (N, 3072) uint8 rows R..G..B, labels list, names."""
    data = np.ascontiguousarray(images_nhwc.transpose(0, 3, 1, 2)).reshape(len(images_nhwc), 3072)
    batch = {
        "batch_label": f"batch built by the tests from {path.name}",
        "labels": [int(v) for v in labels],
        "data": _Py2Array(data) if style == "py2" else data,
        "filenames": [f"img_{i}.png" for i in range(len(labels))],
    }
    protocol = 4 if style == "protocol4" else 2
    with open(path, "wb") as handle:
        pickle.dump(batch, handle, protocol=protocol)
    return path


@pytest.fixture(scope="session")
def cifar_npz(shared_data) -> Path:
    path = shared_data / "cifar10-subset" / "cifar10_subset.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture
def cifar_pickle_folder(tmp_path, cifar_npz):
    """``make(style) -> folder``: an official-format ``cifar-10-batches-py`` built from the real npz
    subset: 5 training batches of 800 images, a test batch of 1,000, and the original batches.meta."""

    def make(style: str = "py2", root: Path | None = None) -> Path:
        folder = (root or tmp_path) / "cifar-10-batches-py"
        folder.mkdir(parents=True, exist_ok=True)
        with np.load(cifar_npz) as z:
            x_train, y_train, x_test, y_test = z["x_train"], z["y_train"], z["x_test"], z["y_test"]
        for i in range(5):
            part = slice(800 * i, 800 * (i + 1))
            write_cifar_batch(folder / f"data_batch_{i + 1}", x_train[part], y_train[part], style)
        write_cifar_batch(folder / "test_batch", x_test, y_test, style)
        shutil.copy(cifar_npz.parent / "batches.meta", folder / "batches.meta")
        return folder

    return make


@pytest.fixture
def idx_writer():
    return write_idx


@pytest.fixture
def cifar_batch_writer():
    return write_cifar_batch


def _shared_folder(shared_data: Path, name: str) -> Path:
    path = shared_data / name
    if not path.is_dir():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="session")
def mnist_dir(shared_data) -> Path:
    return _shared_folder(shared_data, "mnist")


@pytest.fixture(scope="session")
def fashion_dir(shared_data) -> Path:
    return _shared_folder(shared_data, "fashion-mnist")
