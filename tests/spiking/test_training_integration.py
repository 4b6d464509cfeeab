"""Spiking models go through the toolkit's training loop and run folders like any model."""

import torch

from neuroaikit.runs import load_run
from neuroaikit.training import TrainConfig, train


def test_train_snn_cnn_on_digits_and_rebuild_from_the_run_folder(tmp_path):
    config = TrainConfig(dataset="digits", model="snn_cnn", model_kwargs={"T": 2, "channels": [4, 8], "hidden": 16},
                         noise={"conv2": "gaussian:0.1"}, epochs=2, batch_size=64, lr=5e-3, eval_draws=2,
                         out=str(tmp_path / "snn"))
    run = train(config, echo=None)
    acc = run.metrics["test_accuracy"]["noise_off"]
    assert acc > 0.5  # 10 classes: chance is 0.1
    model = load_run(run.path)
    x = torch.rand(3, 1, 8, 8)
    assert model(x).shape == (3, 10)
