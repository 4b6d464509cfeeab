from __future__ import annotations

import json

from neuroaikit.cli.main import main


def test_data_list(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "cifar10" in out and "3x32x32" in out and "60000/10000" in out


def test_data_info_real_mnist(capsys, shared_data):
    assert main(["data", "info", "--dataset", "mnist", "--data-dir", str(shared_data)]) == 0
    out = capsys.readouterr().out
    assert "train: 60000 images" in out and "test: 10000 images" in out
    assert out.count("md5 ok (official)") == 4 and "MISMATCH" not in out


def test_data_info_json_cifar(capsys, shared_data):
    assert main(["data", "info", "--dataset", "cifar10", "--data-dir", str(shared_data), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["splits"]["train"]["n"] == 4000 and info["classes"][0] == "airplane"
    assert {f["status"] for f in info["files"]} == {"ok", "unknown"}  # batches.meta official, npz has no md5


def test_data_info_reports_mismatch_with_exit_2(capsys, tmp_path, tiny_idx):
    tiny_idx(tmp_path)
    assert main(["data", "info", "--dataset", "mnist", "--data-dir", str(tmp_path)]) == 2
    out = capsys.readouterr().out
    assert "md5 MISMATCH" in out and "train: 6 images" in out


def test_bad_data_dir_is_one_line_error(capsys, tmp_path):
    assert main(["data", "info", "--dataset", "fashion-mnist", "--data-dir", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "does not exist" in err and "Traceback" not in err
    assert err.count("\n") == 1


def test_data_download_cli(capsys, tmp_path, http_serve, shared_data):
    base = http_serve(shared_data) + "fashion-mnist/"
    assert main(["data", "download", "--dataset", "fashion-mnist", "--data-dir", str(tmp_path),
                 "--base-url", base]) == 0
    assert "files in" in capsys.readouterr().out
    assert len(list((tmp_path / "fashion-mnist").glob("*.gz"))) == 4
    assert main(["data", "download", "--dataset", "mnist", "--data-dir", str(tmp_path),
                 "--base-url", http_serve(tmp_path / "empty")]) == 2
    assert "HTTP 404" in capsys.readouterr().err


def test_data_info_lists_every_files_md5_when_a_split_fails_to_load(capsys, tmp_path, shared_data):
    """A truncated test file stopped its split before any md5 of that split was listed, the
    intact labels file's included."""
    import shutil

    folder = tmp_path / "mnist"
    folder.mkdir()
    for path in (shared_data / "mnist").glob("*.gz"):
        shutil.copy(path, folder / path.name)
    cut = folder / "t10k-images-idx3-ubyte.gz"
    cut.write_bytes(cut.read_bytes()[:500_000])
    assert main(["data", "info", "--dataset", "mnist", "--data-dir", str(tmp_path)]) == 2
    out = capsys.readouterr().out
    assert "t10k-images-idx3-ubyte.gz: md5 MISMATCH" in out and "t10k-labels-idx1-ubyte.gz: md5 ok (official)" in out
    assert out.count("md5 ok (official)") == 3 and "problem: test: " in out and "truncated gzip" in out
