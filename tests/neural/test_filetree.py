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


def _memory_mapped(array: np.ndarray) -> bool:
    while array is not None:
        if isinstance(array, np.memmap):
            return True
        array = array.base if isinstance(array.base, np.ndarray) else None
    return False


def test_memory_mapped_copy_holds_the_same_recording(tmp_path, tree, synthetic, caplog):
    _, ds = synthetic
    zipped = write_filetree(ds, tmp_path / "rec.zip", as_zip=True)
    cache = tmp_path / "cache"
    for source in (tree, zipped):
        with caplog.at_level("INFO"):
            mapped = load_filetree(source, memory_map=True, cache=cache)
        assert "copied to" in caplog.text
        assert _memory_mapped(mapped.responses) and _memory_mapped(mapped.stimuli)
        _same(ds, mapped)
        np.testing.assert_array_equal(mapped.stimuli, load_filetree(source).stimuli)
        caplog.clear()
        with caplog.at_level("INFO"):
            again = load_filetree(source, memory_map=True, cache=cache)
        assert "memory-mapped from" in caplog.text and "copied to" not in caplog.text
        _same(ds, again)
    assert sorted(p.name.startswith(".") for p in cache.iterdir()) == [False, False]  # no leftover work folders
    np.testing.assert_allclose(mapped.response_std("train"), ds.responses[ds.tier_mask("train")].std(0), rtol=1e-5)


def test_a_changed_recording_gets_a_new_copy_and_nan_trials_are_handled_alike(tree, tmp_path):
    cache = tmp_path / "cache"
    load_filetree(tree, memory_map=True, cache=cache)
    (first_copy,) = cache.iterdir()
    other = write_filetree(load_filetree(tree), tmp_path / "other")
    load_filetree(other, memory_map=True, cache=cache)  # another recording's copy stays
    r = np.load(tree / "data/responses/2.npy")
    r[0] = np.nan
    np.save(tree / "data/responses/2.npy", r)
    with pytest.raises(DataError, match=r"responses/2\.npy: responses hold NaN"):
        load_filetree(tree, memory_map=True, cache=cache)
    dropped = load_filetree(tree, memory_map=True, cache=cache, nan_policy="drop")
    in_memory = load_filetree(tree, nan_policy="drop")
    np.testing.assert_array_equal(dropped.responses, in_memory.responses)
    np.testing.assert_array_equal(dropped.stimulus_index, in_memory.stimulus_index)
    copies = sorted(cache.iterdir())
    assert len(copies) == 2 and first_copy not in copies  # the stale copy of `tree` was removed


def test_memory_mapping_is_chosen_when_memory_is_short(tree, tmp_path, monkeypatch, caplog):
    from neuroaikit.neural import filetree

    monkeypatch.setenv("NEUROAIKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(filetree, "_available_memory", lambda: 10_000)
    with caplog.at_level("INFO"):
        assert _memory_mapped(load_neural(tree).responses)
    assert "memory-mapping them" in caplog.text
    assert (tmp_path / "cache" / "filetree").is_dir()
    monkeypatch.setattr(filetree, "_available_memory", lambda: 10**12)
    assert not _memory_mapped(load_neural(tree).responses)
    assert not _memory_mapped(load_neural(tree, memory_map=False).responses)


def test_an_interrupted_copy_leaves_nothing_behind(tree, tmp_path, monkeypatch):
    from neuroaikit.neural import filetree

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(filetree, "_write_rows", fail)
    with pytest.raises(KeyboardInterrupt):
        load_filetree(tree, memory_map=True, cache=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_memory_mapping_other_formats_is_a_one_line_error(tmp_path):
    npz = tmp_path / "allen_natural_scenes_v1.npz"
    np.savez(npz, x=np.zeros(1))
    with pytest.raises(DataError, match="memory mapping applies to Sensorium FileTree"):
        load_neural(npz, memory_map=True)


def test_large_info_arrays_stay_out_of_config_json(tmp_path, synthetic, monkeypatch):
    """config.json is read whole on every load: a simulator's true rates must not go into it."""
    import json

    from neuroaikit.neural import filetree

    monkeypatch.setattr(filetree, "MAX_INFO_ELEMENTS", 30)
    _, ds = synthetic  # info: the true rates (trials x 12 neurons), RF centres (12 x 2)
    folder = write_filetree(ds, tmp_path / "rec")
    config = json.loads((folder / "config.json").read_text())["neuroaikit"]
    assert "rates" not in config and len(config["rf_centers"]) == 12 and config["simulator"] == "SyntheticCortex"


def test_a_real_recording_memory_mapped_equals_it_in_memory(shared_data, tmp_path):
    """Antolik et al. 2016, region 1 (real two-photon responses), written as a FileTree zip: the
    memory-mapped copy gives the same trials, repeats and the statistics the twin reads in blocks."""
    from neuroaikit.neural import load_antolik

    real = load_antolik(shared_data, 1)
    zipped = write_filetree(real, tmp_path / "antolik.zip", as_zip=True)
    in_memory = load_filetree(zipped)
    mapped = load_filetree(zipped, memory_map=True, cache=tmp_path / "cache")
    assert _memory_mapped(mapped.responses) and _memory_mapped(mapped.stimuli)
    np.testing.assert_allclose(mapped.responses, real.responses, rtol=1e-6)
    np.testing.assert_array_equal(mapped.tiers, in_memory.tiers)
    np.testing.assert_array_equal(mapped.image_ids, in_memory.image_ids)
    np.testing.assert_array_equal(mapped.trial_stimuli(), in_memory.trial_stimuli())
    np.testing.assert_array_equal(mapped.repeats("test"), in_memory.repeats("test"))
    for tier in in_memory.tier_names:
        for ours, theirs in zip(mapped.response_moments(tier), in_memory.response_moments(tier)):
            np.testing.assert_allclose(ours, theirs, rtol=1e-6)


@pytest.mark.parametrize("field", ["image_id", "colorframeprojector_image_id"])
def test_image_ids_under_the_other_names_recordings_use(tree, synthetic, field):
    (tree / "meta/trials/frame_image_id.npy").rename(tree / f"meta/trials/{field}.npy")
    _same(load_filetree(tree), synthetic[1])


def test_no_image_ids_names_the_files_looked_for(tree):
    (tree / "meta/trials/frame_image_id.npy").unlink()
    with pytest.raises(DataError, match=r"trials: no image ids \(frame_image_id.npy, image_id.npy, colorframeprojector"):
        load_filetree(tree)


def test_image_ids_that_are_labels_group_the_repeats_as_numbers_do(tree, synthetic):
    """Some recordings name their images (``"im0119"``); the ids only say which trials show the same
    image, so labels load as their rank, and the test tier's repeats are those of the numbered ids."""
    _, ds = synthetic
    ids = np.load(tree / "meta/trials/frame_image_id.npy")
    np.save(tree / "meta/trials/frame_image_id.npy", np.array([f"im{i:04d}" for i in ids]))
    loaded = load_filetree(tree)
    np.testing.assert_array_equal(loaded.image_ids, np.unique(ids, return_inverse=True)[1])
    np.testing.assert_array_equal(loaded.repeats("test"), ds.repeats("test"))
    np.testing.assert_allclose(loaded.trial_stimuli(), ds.trial_stimuli())


def test_image_ids_with_a_fraction_are_refused(tree):
    ids = np.load(tree / "meta/trials/frame_image_id.npy").astype(np.float64)
    ids[3] += 0.5
    np.save(tree / "meta/trials/frame_image_id.npy", ids)
    with pytest.raises(DataError, match=r"image_ids must be whole numbers or labels; entry 3 is"):
        load_filetree(tree)
