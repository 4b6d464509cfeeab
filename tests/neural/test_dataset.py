from __future__ import annotations

import numpy as np
import pytest

from neuroaikit.errors import DataError
from neuroaikit.neural import NeuralDataset, group_repeats, load_allen, load_antolik
from neuroaikit.neural.dataset import HELD_OUT_IMAGE_FRACTION, tiers_from_repeats


def small_dataset(n_neurons=4):
    rng = np.random.default_rng(0)
    # image 10 shown 3 times, image 11 twice, image 12 once; two train trials
    image_ids = np.array([10, 11, 10, 12, 11, 10, 0, 1])
    tiers = np.array(["test"] * 6 + ["train"] * 2)
    stimuli = rng.random((13, 5, 6)).astype(np.float32)
    return NeuralDataset(stimuli, rng.random((8, n_neurons)), image_ids, tiers, stimulus_index=image_ids)


def test_repeats_are_nan_padded_and_grouped_by_image():
    ds = small_dataset()
    rep = ds.repeats("test")
    assert rep.shape == (3, 3, 4)
    assert ds.repeat_image_ids("test").tolist() == [10, 11, 12]
    np.testing.assert_allclose(rep[0], ds.responses[[0, 2, 5]], rtol=1e-6)
    np.testing.assert_allclose(rep[1, :2], ds.responses[[1, 4]], rtol=1e-6)
    assert np.isnan(rep[1, 2]).all() and np.isnan(rep[2, 1:]).all()
    avg = ds.trial_average("test")
    np.testing.assert_allclose(avg[1], ds.responses[[1, 4]].mean(0), rtol=1e-6)
    assert ds.average_stimuli("test").shape == (3, 1, 5, 6)
    np.testing.assert_array_equal(ds.average_stimuli("test")[0, 0], ds.stimuli[10])


def test_subset_select_and_std():
    ds = small_dataset()
    train = ds.subset("train")
    assert train.n_trials == 2 and set(train.tiers) == {"train"}
    assert ds.select_neurons([0, 2]).n_neurons == 2
    np.testing.assert_allclose(ds.response_std("train"), ds.responses[6:].std(0), rtol=1e-5)
    assert ds.trial_stimuli("train").shape == (2, 1, 5, 6)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(tiers=np.array(["test"] * 7 + ["bogus"])), "unknown tier"),
        (dict(image_ids=np.arange(3)), "image_ids has 3 entries"),
        (dict(responses=np.full((8, 4), np.nan)), "NaN"),
        (dict(stimulus_index=np.full(8, 99)), "outside"),
    ],
)
def test_bad_input_names_the_problem(change, message):
    ds = small_dataset()
    kwargs = dict(stimuli=ds.stimuli, responses=ds.responses, image_ids=ds.image_ids, tiers=ds.tiers, stimulus_index=ds.stimulus_index)
    kwargs.update(change)
    with pytest.raises(DataError, match=message):
        NeuralDataset(**kwargs)
    with pytest.raises(DataError, match="empty"):
        ds.repeats("validation")


def test_group_repeats_matches_manual():
    resp = np.arange(12.0).reshape(6, 2)
    out = group_repeats(resp, np.array([3, 1, 3, 1, 2, 3]))
    assert out.shape == (3, 3, 2)
    np.testing.assert_array_equal(out[2], resp[[0, 2, 5]])


def test_antolik_loader_matches_the_file(shared_data):
    raw = np.load(shared_data / "neural" / "antolik2016_mouse_v1.npz")
    for region, n_rep, n_neur in ((1, 10, 103), (2, 8, 55), (3, 12, 102)):
        ds = load_antolik(shared_data, region)
        assert ds.repeats("test").shape == (50, n_rep, n_neur)
        np.testing.assert_allclose(ds.repeats("test"), raw[f"region{region}_raw_validation_set"].transpose(1, 0, 2), rtol=1e-6)
        np.testing.assert_allclose(ds.trial_average("test"), raw[f"region{region}_raw_validation_set"].mean(0), rtol=1e-4, atol=1e-6)
    with pytest.raises(DataError, match="region"):
        load_antolik(shared_data, 4)


def test_allen_loader(shared_data):
    ds = load_allen(shared_data / "neural")
    assert ds.n_neurons == 212 and ds.image_shape == (1, 31, 31)
    assert ds.trial_average("train").shape == (100, 212) and ds.trial_average("test").shape == (18, 212)
    raw = np.load(shared_data / "neural" / "allen_natural_scenes_v1.npz")
    np.testing.assert_array_equal(ds.average_stimuli("test")[:, 0], raw["images"][np.sort(raw["test_image_index"])].astype(np.float32))


def test_a_labs_own_npz_is_named_after_its_file_and_fractional_indices_are_refused(shared_data, tmp_path):
    """Any such .npz was named allen-natural-scenes-511510667 in results and errors; image indices
    0.5, 1.5, ... were truncated without a word."""
    raw = dict(np.load(shared_data / "neural" / "allen_natural_scenes_v1.npz"))
    assert load_allen(shared_data / "neural").name == "allen-natural-scenes-511510667"
    np.savez(tmp_path / "my_mouse.npz", **raw)
    assert load_allen(tmp_path / "my_mouse.npz").name == "my_mouse"
    np.savez(tmp_path / "halves.npz", **{**raw, "train_image_index": raw["train_image_index"] + 0.5})
    with pytest.raises(DataError, match="halves.npz: train_image_index holds values that are not whole numbers"):
        load_allen(tmp_path / "halves.npz")


def test_missing_npz_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_allen(tmp_path)
    bad = tmp_path / "allen_natural_scenes_v1.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="npz"):
        load_allen(bad)


def test_load_neural_dispatches_by_format(shared_data, tmp_path):
    from neuroaikit.neural import load_neural

    assert load_neural(shared_data / "neural" / "antolik2016_mouse_v1.npz", region=2).n_neurons == 55
    assert load_neural(shared_data / "neural", region=3).n_neurons == 102
    assert load_neural(shared_data / "neural" / "allen_natural_scenes_v1.npz").n_neurons == 212
    odd = tmp_path / "data.csv"
    odd.write_text("1,2")
    with pytest.raises(DataError, match="unknown neural data format"):
        load_neural(odd)
    with pytest.raises(DataError, match="not a Sensorium FileTree folder"):
        load_neural(tmp_path)


def test_window_means_mark_only_the_windows_holding_a_nan_frame():
    from neuroaikit.neural.dataset import window_means

    frames = np.arange(40, dtype=np.float32).reshape(20, 2)
    frames[7, 1] = np.nan  # unit 1 loses frame 7
    start, stop = np.array([0, 5, 8, 15]), np.array([5, 8, 12, 20])
    means = window_means(frames, start, stop)
    direct = np.array([[frames[a:b, u].mean() for u in range(2)] for a, b in zip(start, stop)])
    assert np.isnan(means[1, 1]) and np.isfinite(np.delete(means.ravel(), 3)).all()
    np.testing.assert_allclose(np.delete(means.ravel(), 3), np.delete(direct.ravel(), 3), rtol=1e-6)


def test_nan_policy_raises_naming_the_option_or_drops_only_the_nan_trials(caplog):
    from neuroaikit.neural.dataset import with_nan_policy

    ds = small_dataset()
    responses = ds.responses.copy()
    responses[[2, 6], 1] = np.nan
    fields = dict(stimuli=ds.stimuli, responses=responses, image_ids=ds.image_ids, tiers=ds.tiers,
                  stimulus_index=ds.stimulus_index, behavior=np.arange(16.0).reshape(8, 2))
    with pytest.raises(DataError, match=r"^rec: responses hold NaN/inf in 2 trial\(s\) \(first: trial 2\); leave "
                                        r"them out with --drop-nan-trials \(twin fit, twin evaluate, align\)"):
        with_nan_policy("raise", "rec", **fields)
    with caplog.at_level("WARNING"):
        kept = with_nan_policy("drop", "rec", **fields)
    assert "rec: dropped 2 trial(s)" in caplog.text
    assert kept.trial_ids.tolist() == [0, 1, 3, 4, 5, 7] and kept.info["dropped_nan_trials"] == 2
    np.testing.assert_array_equal(kept.image_ids, ds.image_ids[[0, 1, 3, 4, 5, 7]])
    np.testing.assert_array_equal(kept.behavior[:, 0], [0, 2, 6, 8, 10, 14])
    np.testing.assert_allclose(kept.responses, responses[[0, 1, 3, 4, 5, 7]])
    with pytest.raises(DataError, match="every trial"):
        with_nan_policy("drop", "rec", **{**fields, "responses": np.full_like(responses, np.nan)})
    with pytest.raises(DataError, match="nan_policy must be 'raise' or 'drop'"):
        with_nan_policy("skip", "rec", **fields)


def test_nan_behaviour_and_pupil_take_their_column_train_tier_mean(caplog):
    ds = small_dataset()  # trials 6 and 7 are the train tier
    behavior = np.arange(24.0).reshape(8, 3)
    behavior[[1, 4], 0] = np.nan  # blinks
    behavior[[6, 7], 1] = np.nan  # no train value: the mean of the other trials
    behavior[:, 2] = np.nan  # a sensor that recorded nothing
    pupil = np.ones((8, 2))
    with caplog.at_level("WARNING"):
        out = NeuralDataset(ds.stimuli, ds.responses, ds.image_ids, ds.tiers, stimulus_index=ds.stimulus_index,
                            behavior=behavior, pupil_center=pupil, name="rec")
    assert "rec: behavior: replaced NaN/inf in 8 trial(s) by the column's train-tier mean" in caplog.text
    np.testing.assert_allclose(out.behavior[[1, 4], 0], (18.0 + 21.0) / 2)  # the test tier's values left out
    np.testing.assert_allclose(out.behavior[[6, 7], 1], np.mean([1.0, 4.0, 7.0, 10.0, 13.0, 16.0]))
    assert (out.behavior[:, 2] == 0).all() and np.isnan(behavior[1, 0])  # the caller's array is untouched
    assert out.pupil_center is not None and (out.pupil_center == 1).all()


def test_channels_last_colour_images_are_moved_channels_first():
    from neuroaikit.neural.dataset import channels_first

    rgb = np.random.default_rng(0).random((5, 9, 16, 3))
    moved = channels_first(rgb, "images.npy")
    assert moved.shape == (5, 3, 9, 16) and np.array_equal(moved[:, 1], rgb[..., 1])
    assert channels_first(moved, "x") is moved  # already channels-first
    grey = np.zeros((5, 9, 16))
    assert channels_first(grey, "x") is grey
    ambiguous = np.zeros((5, 3, 9, 3))  # 3 channels of 9x3, or 3x9 images of 3 channels: kept as given
    assert channels_first(ambiguous, "x") is ambiguous
    # every data set does it, whatever loaded the images (a FileTree, a user's arrays)
    ds = NeuralDataset(rgb.astype(np.float32), np.ones((5, 2)), np.arange(5), np.array(["train"] * 5))
    assert ds.image_shape == (3, 9, 16) and ds.subset("train").image_shape == (3, 9, 16)


def test_tiers_from_repeats_takes_the_repeated_images_as_test():
    ids = np.array([0, 1, 1, 2, 3, 3, 3, 4])
    tiers = tiers_from_repeats(ids, 2, "log")
    assert tiers.tolist() == ["train", "test", "test", "train", "test", "test", "test", "train"]
    # with a higher threshold only image 3 is test
    assert set(ids[tiers_from_repeats(ids, 3, "log") == "test"]) == {3}


def test_tiers_from_repeats_holds_out_whole_images_when_every_image_repeats(caplog):
    rng = np.random.default_rng(5)
    ids = rng.permutation(np.repeat(np.arange(118), 50))  # the Brain Observatory's natural scenes
    with caplog.at_level("INFO"):
        tiers = tiers_from_repeats(ids, 2, "scenes.nwb")
    test_images, train_images = set(ids[tiers == "test"]), set(ids[tiers == "train"])
    assert len(test_images) == round(118 * HELD_OUT_IMAGE_FRACTION) and len(train_images) == 118 - len(test_images)
    assert not test_images & train_images  # every repeat of a held-out image is test: unseen in training
    assert "24 of 118 images (all their trials) held out as test" in caplog.text
    np.testing.assert_array_equal(tiers_from_repeats(ids, 2, "scenes.nwb"), tiers)  # the same split each load
    # Visual Behavior: 8 images flashed hundreds of times -> 2 test, 6 train (5 after validation)
    flashes = np.tile(np.arange(8), 300)
    assert len(set(flashes[tiers_from_repeats(flashes, 2, "vb.nwb") == "test"])) == 2


def test_tiers_from_repeats_warns_when_too_few_images_to_split(caplog):
    with caplog.at_level("WARNING"):
        tiers = tiers_from_repeats(np.tile(np.arange(3), 10), 2, "three.nwb")
    assert (tiers == "test").all()
    assert "only 3 distinct images, too few to hold some out" in caplog.text


def test_a_window_the_recording_cuts_before_any_frame_is_left_out_under_drop():
    """A stimulus shown after the last frame's timestamp but before that frame ends: its window
    holds no frame, which stopped the load even when cut trials were to be left out."""
    from neuroaikit.neural.dataset import response_window_frames, window_means

    times = np.arange(10) * 0.1  # the last frame ends at 1.0 s
    onsets = np.array([0.2, 0.95])
    with pytest.raises(DataError, match="partly outside the recording"):
        response_window_frames(times, onsets, (0.0, 0.3), "log")
    lo, hi, cut = response_window_frames(times, onsets, (0.0, 0.3), "log", nan_policy="drop")
    means = window_means(np.arange(10.0)[:, None], lo, hi, cut)
    assert cut.tolist() == [False, True] and means[0, 0] == pytest.approx(3.0) and np.isnan(means[1, 0])


def test_nan_pixels_and_fractional_image_indices_are_refused():
    """A NaN pixel trained the twin to NaN (an internal error, or an exit 0 with every metric None);
    stimulus indices 0.5, 1.5, ... were truncated to 0, 1, ... without a word."""
    ds = small_dataset()
    stimuli = ds.stimuli.copy()
    stimuli[[3, 7], 1, 2] = [np.nan, np.inf]
    with pytest.raises(DataError, match=r"^rec: stimuli hold NaN/inf pixels in 2 image\(s\)"):
        NeuralDataset(stimuli, ds.responses, ds.image_ids, ds.tiers, stimulus_index=ds.stimulus_index, name="rec")
    with pytest.raises(DataError, match=r"^rec: stimulus_index holds values that are not whole numbers \(e.g. 10.5\)"):
        NeuralDataset(ds.stimuli, ds.responses, ds.image_ids, ds.tiers, stimulus_index=ds.stimulus_index + 0.5,
                      name="rec")
    whole = NeuralDataset(ds.stimuli, ds.responses, ds.image_ids, ds.tiers, stimulus_index=ds.stimulus_index * 1.0)
    assert whole.stimulus_index.dtype == np.int64 and whole.stimulus_index.tolist() == ds.stimulus_index.tolist()
