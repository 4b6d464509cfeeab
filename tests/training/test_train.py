"""Training writes complete run folders, resumes, and never replaces a good run with a failed one."""

import json

import pytest
import torch

from neuroaikit import load_run
from neuroaikit.errors import ConfigError
from neuroaikit.noise import noise_layers, noise_mode
from neuroaikit.runs import Run, partial_dir
from neuroaikit.training import TrainConfig, train


def digits_config(tmp_path, **overrides):
    values = dict(dataset="digits", model="cnn", model_kwargs={"hidden": 64}, epochs=3, batch_size=64,
                  noise={"relu1": "gaussian:0.1,rectify"}, eval_draws=5)
    values.update(overrides)
    return TrainConfig(**values)


def quiet():
    from neuroaikit.progress import silent

    return silent()


def test_run_folder_is_complete_and_rebuilds_the_model(tmp_path):
    run = train(digits_config(tmp_path), tmp_path / "run", progress=quiet())
    for name in ("config.json", "model.json", "weights.safetensors", "metrics.json", "log.txt"):
        assert (run.path / name).is_file(), name
    assert not partial_dir(run.path).exists()
    metrics = run.metrics
    assert set(metrics["test_accuracy"]) == {"single", "vote@5", "noise_off"}
    assert metrics["test_accuracy"]["single"] > 0.5  # 3 epochs on digits: far above chance (0.1)
    assert len(metrics["history"]) == 3
    model = load_run(run.path)
    assert [n for n, _ in noise_layers(model)] == ["noise.relu1"]
    config = json.loads((run.path / "config.json").read_text())
    assert config["noise"]["relu1"]["sigma"] == 0.1
    x = torch.rand(4, 1, 8, 8)
    trained = Run(run.path).load_model()
    with noise_mode(model, "off"), noise_mode(trained, "off"):
        assert torch.equal(model(x), trained(x))


def test_same_seed_same_weights(tmp_path):
    a = train(digits_config(tmp_path, epochs=1), tmp_path / "a", progress=quiet())
    b = train(digits_config(tmp_path, epochs=1), tmp_path / "b", progress=quiet())
    assert (a.path / "weights.safetensors").read_bytes() == (b.path / "weights.safetensors").read_bytes()


class Interrupt(Exception):
    pass


def test_interrupted_job_resumes_and_never_replaces_a_good_run(tmp_path):
    good = train(digits_config(tmp_path, epochs=1), tmp_path / "run", progress=quiet())
    good_weights = (good.path / "weights.safetensors").read_bytes()

    def crash_at_epoch_2(model, epoch, record):
        if epoch == 2:
            raise Interrupt()

    with pytest.raises(Interrupt):
        train(digits_config(tmp_path, epochs=3), tmp_path / "run", overwrite=True, callbacks=[crash_at_epoch_2],
              progress=quiet())
    # the good run is intact and the partial job kept its checkpoint of epoch 1
    assert (good.path / "weights.safetensors").read_bytes() == good_weights
    assert (partial_dir(good.path) / "checkpoint.pt").is_file()

    with pytest.raises(ConfigError, match="lr: 0.001 -> 0.05"):  # nor resumed with other settings
        train(digits_config(tmp_path, epochs=3, lr=0.05), tmp_path / "run", resume=True, overwrite=True,
              progress=quiet())
    resumed = train(digits_config(tmp_path, epochs=3), tmp_path / "run", resume=True, overwrite=True, progress=quiet())
    assert [h["epoch"] for h in resumed.metrics["history"]] == [1, 2, 3]
    assert "resumed from" in (resumed.path / "log.txt").read_text()
    uninterrupted = train(digits_config(tmp_path, epochs=3), tmp_path / "straight", progress=quiet())
    # bit-exact: same weights as a job that was never interrupted (batch order, augmentation and noise RNGs restored)
    assert (resumed.path / "weights.safetensors").read_bytes() == (uninterrupted.path / "weights.safetensors").read_bytes()


def test_interrupted_job_is_not_discarded_silently(tmp_path):
    def crash(model, epoch, record):
        if epoch == 2:
            raise Interrupt()

    with pytest.raises(Interrupt):
        train(digits_config(tmp_path, epochs=2), tmp_path / "run", callbacks=[crash], progress=quiet())
    with pytest.raises(ConfigError, match="pass --resume to continue it or --overwrite to discard it"):
        train(digits_config(tmp_path, epochs=2), tmp_path / "run", progress=quiet())
    assert (tmp_path / "run.partial" / "checkpoint.pt").is_file()
    run = train(digits_config(tmp_path, epochs=2), tmp_path / "run", overwrite=True, progress=quiet())
    assert [h["epoch"] for h in run.metrics["history"]] == [1, 2]
    assert "resumed" not in (run.path / "log.txt").read_text()


def test_errors_before_the_first_checkpoint_leave_nothing(tmp_path):
    def crash(model, epoch, record):
        raise Interrupt()

    with pytest.raises(Interrupt):  # the callback runs before the first checkpoint is written
        train(digits_config(tmp_path, epochs=2), tmp_path / "run", callbacks=[crash], progress=quiet())
    assert not (tmp_path / "run.partial").exists() and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "overrides, message",
    [(dict(optimizer="rmsprop"), "optimizer"), (dict(epochs=0), "epochs"), (dict(lr=-1.0), "lr"),
     (dict(noise={"relu1": "laplace:1"}), "noise kind"), (dict(eval_rule="best"), "eval_rule")],
)
def test_bad_configs(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        digits_config(tmp_path, **overrides)


def test_unknown_noise_site_fails_before_training(tmp_path):
    with pytest.raises(ConfigError, match="valid names: input, conv1"):
        train(digits_config(tmp_path, noise={"relu7": 0.1}), tmp_path / "run", progress=quiet())
    assert not (tmp_path / "run.partial").exists() and not (tmp_path / "run").exists()


def test_mnist_real_data_hidden_noise(shared_data, tmp_path):
    """A hidden-noise CNN learns real MNIST: 6,000 training images, one epoch."""
    config = TrainConfig(dataset="mnist", data_dir=str(shared_data), noise={"relu1": "gaussian:0.1"},
                         epochs=1, train_subset=6000, test_subset=1000, eval_draws=5)
    run = train(config, tmp_path / "mnist", progress=quiet())
    assert run.metrics["n_train"] == 6000 and run.metrics["n_test"] == 1000
    assert run.metrics["test_accuracy"]["single"] > 0.85  # one epoch of 47 Adam steps; chance is 0.1


def test_noise_warmup_ramps_then_evaluates_with_full_noise(tmp_path):
    from neuroaikit.training.loop import _set_noise_scale

    seen = []
    run = train(digits_config(tmp_path, epochs=2, noise_warmup=1.5), tmp_path / "run", progress=quiet())
    model = load_run(run.path)
    layer = noise_layers(model)[0][1]
    assert layer.scale == 1.0  # a rebuilt model always carries its full noise
    for progress in (0.0, 0.75, 1.5, 3.0):
        _set_noise_scale(model, 1.5, progress)
        seen.append(layer.scale)
    assert seen == [0.0, 0.5, 1.0, 1.0]
    with pytest.raises(ConfigError, match="noise_warmup"):
        digits_config(tmp_path, noise_warmup=-1)
    # a warm-up longer than the training would leave the noise below its s.d. to the end
    digits_config(tmp_path, epochs=2, noise_warmup=2)
    with pytest.raises(ConfigError, match=r"noise_warmup \(2.5 epochs\) is longer than the training \(2 epochs\)"):
        digits_config(tmp_path, epochs=2, noise_warmup=2.5)


def test_refuses_to_replace_what_is_not_a_run(tmp_path):
    precious = tmp_path / "my-data"
    precious.mkdir()
    (precious / "recording.npy").write_bytes(b"irreplaceable")
    with pytest.raises(ConfigError, match="not a run folder"):
        train(digits_config(tmp_path), precious, progress=quiet())
    assert (precious / "recording.npy").read_bytes() == b"irreplaceable"
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    with pytest.raises(ConfigError, match="is a file"):
        train(digits_config(tmp_path), a_file, progress=quiet())
    assert a_file.read_text() == "keep me"


@pytest.mark.parametrize("objective, params, message", [
    ("pgd", {"steps": "abc"}, "steps must be an integer >= 1, got 'abc'"),
    ("pgd", {"steps": -5}, "steps must be an integer >= 1, got -5"),
    ("pgd", {"eps": float("inf")}, "eps must be a finite number >= 0, got inf"),
    ("trades", {"beta": -3}, "beta must be a finite number >= 0, got -3"),
    ("fgsm_rs", {"alpha": -1}, r"alpha must be a finite number > 0 \(the attack's step\), got -1"),
    ("gaussian_augmentation", {"sigma": float("inf")}, "sigma must be a finite number > 0, got inf"),
    ("cross_entropy", {"label_smoothing": 2}, "objective 'cross_entropy': label_smoothing must be between"),
])
def test_objective_settings_are_checked_before_the_run_and_named(tmp_path, objective, params, message):
    """A non-number stopped with an internal error; negative steps trained on the random start
    alone, a negative beta flipped the robustness term, and a torch message about a setting was
    reported as the model not taking the data's inputs."""
    with pytest.raises(ConfigError, match=message):
        train(digits_config(tmp_path, objective=objective, objective_params=params, epochs=1), tmp_path / "run",
              progress=quiet())
    assert not (tmp_path / "run.partial").exists() and not (tmp_path / "run").exists()


def test_the_single_rule_is_recorded_as_the_one_draw_it_makes(tmp_path):
    train(digits_config(tmp_path, epochs=1, eval_rule="single", eval_draws=20), tmp_path / "run", progress=quiet())
    metrics = Run.open(tmp_path / "run").metrics
    assert metrics["inference_rule"] == {"rule": "single", "n_draws": 1}
    assert "single@1" in metrics["test_accuracy"] and "single@20" not in metrics["test_accuracy"]
