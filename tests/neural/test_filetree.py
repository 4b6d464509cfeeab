from __future__ import annotations

import zipfile

import numpy as np
import pytest

from neuroaikit.errors import DataError
from neuroaikit.neural import SyntheticCortex, load_filetree, load_neural, write_filetree


@pytest.fixture(scope="module")
def synthetic():
    cortex = SyntheticCortex(n_neurons=12, image_shape=(9, 16), seed=3)
    return cortex, cortex.sample(n_train=40, n_validation=8, n_test_images=5, repeats=3)


@pytest.fixture()
def tree(tmp_path, synthetic):
    cortex, ds = synthetic
    return cortex.write(ds, tmp_path / "static-synthetic")


def _same(a, b):
    np.testing.assert_allclose(a.responses, b.responses, rtol=1e-6)
    np.testing.assert_array_equal(a.tiers, b.tiers)
    np.testing.assert_array_equal(a.image_ids, b.image_ids)
    np.testing.assert_allclose(a.trial_stimuli(), b.trial_stimuli())
    np.testing.assert_allclose(a.behavior, b.behavior)
    np.testing.assert_allclose(a.pupil_center, b.pupil_center)
    np.testing.assert_allclose(a.cortical_positions, b.cortical_positions, rtol=1e-5)


def test_published_layout_is_written_and_read(tree, synthetic):
    _, ds = synthetic
    for rel in ("config.json", "data/images/0.npy", "data/responses/0.npy", "data/behavior/0.npy", "data/pupil_center/0.npy",
                "meta/trials/tiers.npy", "meta/trials/frame_image_id.npy", "meta/trials/trial_idx.npy",
                "meta/neurons/unit_ids.npy", "meta/neurons/cell_motor_coordinates.npy", "meta/neurons/area.npy",
                "meta/neurons/layer.npy", "meta/statistics/responses/all/mean.npy", "meta/statistics/images/stimulus_frame/std.npy"):
        assert (tree / rel).is_file(), rel
    assert np.load(tree / "data/images/0.npy").shape == (1, 9, 16)
    assert np.load(tree / "data/responses/0.npy").dtype == np.float64
    loaded = load_filetree(tree)
    _same(ds, loaded)
    assert loaded.repeats("test").shape == (5, 3, 12)
    assert "responses" in loaded.info["statistics"]


def test_zip_with_and_without_top_folder(tmp_path, tree, synthetic):
    _, ds = synthetic
    zipped = tmp_path / "flat.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        for f in tree.rglob("*"):
            if f.is_file():
                zf.write(f, f.relative_to(tree).as_posix())
    _same(ds, load_filetree(zipped))
    written = write_filetree(ds, tmp_path / "nested.zip", as_zip=True)
    assert any(n.startswith("nested/meta/") for n in zipfile.ZipFile(written).namelist())
    _same(ds, load_neural(written))


def test_hostile_zip_members_are_never_written(tmp_path, tree):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        for f in tree.rglob("*"):
            if f.is_file():
                zf.write(f, f.relative_to(tree).as_posix())
        zf.writestr("../../escaped.txt", "x")
        zf.writestr("/abs/escaped.txt", "x")
    work = tmp_path / "cwd"
    work.mkdir()
    before = set(p for p in tmp_path.parent.rglob("escaped.txt"))
    load_filetree(evil)
    assert set(p for p in tmp_path.parent.rglob("escaped.txt")) == before
    assert not any(work.iterdir())


def test_missing_tier_file(tree):
    (tree / "meta/trials/tiers.npy").unlink()
    with pytest.raises(DataError, match=r"tiers\.npy is missing"):
        load_filetree(tree)


def test_response_length_differs(tree):
    np.save(tree / "data/responses/7.npy", np.zeros(5))
    with pytest.raises(DataError, match=r"responses/7\.npy: responses shape \(5,\) differs"):
        load_filetree(tree)


def test_missing_trial_file(tree):
    (tree / "data/responses/4.npy").unlink()
    with pytest.raises(DataError, match=r"responses/4\.npy is missing"):
        load_filetree(tree)


def test_nan_responses_raise_or_are_dropped_with_a_log(tree, caplog):
    r = np.load(tree / "data/responses/2.npy")
    r[0] = np.nan
    np.save(tree / "data/responses/2.npy", r)
    with pytest.raises(DataError, match=r"responses/2\.npy: responses hold NaN"):
        load_filetree(tree)
    with caplog.at_level("WARNING"):
        ds = load_filetree(tree, nan_policy="drop")
    assert "dropped 1 trial" in caplog.text
    assert np.isfinite(ds.responses).all() and ds.n_trials == len(np.load(tree / "meta/trials/tiers.npy")) - 1


def test_empty_tier_file_and_not_a_tree(tmp_path, tree):
    np.save(tree / "meta/trials/tiers.npy", np.array([], dtype="<U5"))
    with pytest.raises(DataError, match="empty"):
        load_filetree(tree)
    with pytest.raises(DataError, match="does not exist"):
        load_filetree(tmp_path / "nothing")
    junk = tmp_path / "junk.zip"
    with zipfile.ZipFile(junk, "w") as zf:
        zf.writestr("readme.txt", "x")
    with pytest.raises(DataError, match="tiers.npy"):
        load_filetree(junk)
