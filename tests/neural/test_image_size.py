"""Images resampled before a twin sees them: ``NeuralDataset.resized`` and ``twin fit --image-size``
(Sensorium 2022's files hold 144x256 images that its own loaders scale by 0.25 to 36x64)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuroaikit.cli.main import main
from neuroaikit.errors import ConfigError, DataError
from neuroaikit.neural import NeuralDataset, SyntheticCortex
from neuroaikit.neural.dataset import rescale_points
from neuroaikit.neural.twin import TwinFitJob, working_image_size
from neuroaikit.runs import Run


def _dataset(stimuli, **info):
    n = len(stimuli)
    return NeuralDataset(stimuli=stimuli, responses=np.ones((n, 2)), image_ids=np.arange(n),
                         tiers=np.array(["train"] * n), info=info)


@pytest.mark.parametrize("channels", [None, 3])
def test_a_shrink_by_four_averages_each_four_by_four_block(channels):
    rng = np.random.default_rng(0)
    shape = (5, 144, 256) if channels is None else (5, channels, 144, 256)
    ds = _dataset(rng.normal(size=shape).astype(np.float32), rf_centers=np.array([[0.0, 0.0], [127.5, 71.5]]))
    small = ds.resized(36, 64)
    blocks = ds.stimuli.reshape(shape[:-2] + (36, 4, 64, 4)).mean(axis=(-3, -1))
    np.testing.assert_allclose(small.stimuli, blocks, atol=1e-6)
    assert small.image_shape == ((1,) if channels is None else (channels,)) + (36, 64)
    assert small.info["resized_from"] == [144, 256]
    # pixel 0 spans [-0.5, 3.5] of the original: its centre is 1.5; the image centre stays the centre
    np.testing.assert_allclose(small.info["rf_centers"], [[-0.375, -0.375], [31.5, 17.5]])
    assert small.resized(72, 128).info["resized_from"] == [144, 256]  # the recording's own size is kept
    assert ds.resized(144, 256) is ds


def test_an_enlargement_interpolates_and_points_map_back():
    ds = _dataset(np.tile(np.arange(8, dtype=np.float32), (2, 6, 1)))  # a horizontal ramp
    big = ds.resized(12, 16)
    assert big.stimuli.shape == (2, 12, 16)
    assert np.all(np.diff(big.stimuli[0, 0]) >= 0) and big.stimuli.min() >= 0 and big.stimuli.max() <= 7
    points = np.array([[3.0, 2.0], [0.0, 5.0]])
    np.testing.assert_allclose(rescale_points(rescale_points(points, (6, 8), (12, 16)), (12, 16), (6, 8)), points)


def test_resizing_to_nothing_is_refused():
    with pytest.raises(DataError, match="cannot resize images to 0x5"):
        _dataset(np.zeros((2, 6, 8), np.float32)).resized(0, 5)


@pytest.mark.parametrize("shape, size, expected", [
    ((144, 256), "auto", (36, 64)),      # Sensorium 2022 files -> the size its loaders train at
    ((36, 64), "auto", (36, 64)),        # Lurz et al. 2021 / Sensorium-size recordings: kept
    ((31, 31), "auto", (31, 31)),        # Antolik, Allen patches: kept
    ((918, 1174), "auto", (36, 46)),     # Allen Brain Observatory natural scenes, aspect kept
    ((256, 144), "auto", (64, 36)),      # the shorter side decides
    ((144, 256), "native", (144, 256)),
    ((144, 256), [72, 128], (72, 128)),
])
def test_working_image_size(shape, size, expected):
    assert working_image_size(shape, size) == expected


@pytest.mark.parametrize("bad", ["small", [36], [4, 64], [36.0, 64], [True, 64]])
def test_image_size_is_validated(bad):
    with pytest.raises(ConfigError, match="image_size must be 'auto', 'native' or \\[height, width\\]"):
        TwinFitJob(image_size=bad)


@pytest.fixture(scope="module")
def large_images(tmp_path_factory):
    """A synthetic recording written as a FileTree at twice Sensorium's working size (72x128)."""
    cortex = SyntheticCortex(n_neurons=8, image_shape=(72, 128), seed=1, mean_rate=1.0)
    ds = cortex.sample(n_train=200, n_validation=60, n_test_images=20, repeats=4)
    return cortex, str(cortex.write(ds, tmp_path_factory.mktemp("large") / "mouse"))


def test_twin_fit_resamples_large_images_and_evaluate_does_the_same(large_images, tmp_path, capsys):
    cortex, path = large_images
    out = tmp_path / "run"
    common = ["--channels", "4", "--layers", "1", "--max-epochs", "1", "--starts", "1", "--threads", "1", "--no-report"]
    assert main(["twin", "fit", path, *common, "--out", str(out)]) == 0
    assert f"{path}: images resampled from 72x128 to 36x64 (--image-size auto)" in capsys.readouterr().out
    run = Run.open(out)
    assert run.load_model().image_shape == (1, 36, 64) and run.config["image_size"] == "auto"
    # the receptive-field recovery compares centres in the pixels the twin saw
    truth = run.result("twin_eval")["synthetic"]["rf_truth"]
    np.testing.assert_allclose(truth, rescale_points(cortex.rf_centers_, (72, 128), (36, 64)))

    # new data at the recording's own size is resampled as the fit's was
    assert main(["twin", "evaluate", str(out), path, "--overwrite", "--no-report"]) == 0
    assert "resampled from 72x128 to 36x64" in capsys.readouterr().out
    assert run.result("twin_eval")["dataset"]["image_shape"] == [1, 36, 64]

    native = tmp_path / "native"
    assert main(["twin", "fit", path, *common, "--image-size", "native", "--no-baselines", "--out", str(native)]) == 0
    assert Run.open(native).load_model().image_shape == (1, 72, 128)
    assert "resampled" not in capsys.readouterr().out


def test_evaluate_refuses_images_the_twin_does_not_take(large_images, tmp_path, capsys):
    _, path = large_images
    out = tmp_path / "run"
    assert main(["twin", "fit", path, "--channels", "4", "--layers", "1", "--max-epochs", "1", "--starts", "1",
                 "--threads", "1", "--no-report", "--no-baselines", "--image-size", "48x80", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["image_size"] == [48, 80]
    del config["image_size"]  # as a run from before --image-size: it saw its images as recorded
    (out / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    assert main(["twin", "evaluate", str(out), path, "--overwrite", "--no-report"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("images 1x72x128 (channels x height x width), the twin in " + str(out) + " takes 1x48x80")
    assert "Traceback" not in err


def test_cli_image_size_errors_are_one_line(large_images, tmp_path, capsys):
    _, path = large_images
    with pytest.raises(SystemExit) as exit_:  # argparse's usage error
        main(["twin", "fit", path, "--image-size", "36by64", "--out", str(tmp_path / "x")])
    assert exit_.value.code == 2
    assert "expected auto, native or HEIGHTxWIDTH (e.g. 36x64), got '36by64'" in capsys.readouterr().err
    assert main(["twin", "fit", path, "--image-size", "6x10", "--out", str(tmp_path / "x")]) == 2
    assert "error: --image-size must be 'auto', 'native' or [height, width], each >= 8, got [6, 10]" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_the_simulated_cortex_at_a_large_size_is_scored_against_its_own_rates(tmp_path):
    out = tmp_path / "run"
    assert main(["twin", "fit", "synthetic", "--synthetic", "n_neurons=6", "--synthetic", "image_shape=[72,128]",
                 "--synthetic", "n_train=120", "--synthetic", "n_validation=40", "--synthetic", "n_test_images=10",
                 "--channels", "4", "--layers", "1", "--max-epochs", "1", "--starts", "1", "--threads", "1",
                 "--no-report", "--quiet", "--out", str(out)]) == 0
    ev = Run.open(out).result("twin_eval")
    assert ev["dataset"]["image_shape"] == [1, 36, 64]
    # the simulator's own noise-free rates (from the images as simulated) predict better than any model
    oracle = ev["models"]["simulator_oracle"]["single_trial_correlation"]
    assert oracle > max(ev["models"]["twin"]["single_trial_correlation"], 0.1)


def test_a_resized_recording_without_its_rates_cannot_be_predicted_by_the_simulator():
    cortex = SyntheticCortex(n_neurons=4, image_shape=(16, 24), seed=0)
    ds = cortex.sample(n_train=10, n_validation=4, n_test_images=2, repeats=2)
    small = ds.resized(8, 12)
    np.testing.assert_allclose(cortex.oracle_predictions(small), ds.info["rates"])
    with pytest.raises(DataError, match="its images were resampled, so the simulator cannot predict them"):
        cortex.oracle_predictions(small.subset("test"))


def test_a_side_that_shrinks_while_the_other_grows_is_antialiased():
    stripes = np.tile(np.array([0.0, 1.0], np.float32), (1, 8, 15))  # 1-px vertical stripes, 8x30
    out = _dataset(stripes).resized(16, 7)  # taller, about a quarter as wide: the stripes average out
    np.testing.assert_allclose(out.stimuli, 0.5, atol=0.05)  # sampled without antialiasing: 0.07 to 0.93
