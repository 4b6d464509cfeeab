"""``twin fit --resume`` takes other execution settings (device, threads, precision), as its
help says, and still refuses other fit settings."""

import pytest

import neuroaikit.neural.twin as twin
from neuroaikit.errors import ConfigError
from neuroaikit.neural.twin import TwinFitJob, fit_run
from neuroaikit.progress import silent
from neuroaikit.runs import partial_dir


def job(threads=1, max_epochs=2):
    return TwinFitJob.from_dict({
        "data": "synthetic", "baselines": False,
        "synthetic": {"cortex": {"n_neurons": 12, "image_shape": [10, 14], "seed": 3},
                      "sample": {"n_train": 120, "n_validation": 20, "n_test_images": 6, "repeats": 3}},
        "fit": {"max_epochs": max_epochs, "starts": 1, "model": {"layers": 1, "hidden_channels": 4},
                "execution": {"device": "cpu", "threads": threads}}})


class Kill(BaseException):
    pass


def interrupted_after_training(out, monkeypatch):
    def killed(*args, **kwargs):  # after the last epoch's checkpoint, before the run is scored
        raise Kill

    with monkeypatch.context() as patch:
        patch.setattr(twin, "_finish_fit", killed)
        with pytest.raises(Kill):
            fit_run(job(threads=1), out, progress=silent())
    assert (partial_dir(out) / "checkpoint.pt").is_file()


def test_resume_with_other_threads_finishes_the_interrupted_fit(tmp_path, monkeypatch):
    reference = fit_run(job(threads=1), tmp_path / "reference", progress=silent())
    interrupted_after_training(tmp_path / "run", monkeypatch)
    resumed = fit_run(job(threads=2), tmp_path / "run", resume=True, progress=silent())
    assert resumed.config["fit"]["execution"]["threads"] == 2  # recorded as it ran
    # the fit had ended before the kill: the resumed run holds the weights the checkpoint held
    assert (resumed.path / "weights.safetensors").read_bytes() == \
        (reference.path / "weights.safetensors").read_bytes()


def test_resume_with_other_fit_settings_is_refused(tmp_path, monkeypatch):
    interrupted_after_training(tmp_path / "run", monkeypatch)
    with pytest.raises(ConfigError, match=r"^--resume: .*fit\.max_epochs: 2 -> 3"):
        fit_run(job(threads=1, max_epochs=3), tmp_path / "run", resume=True, progress=silent())
