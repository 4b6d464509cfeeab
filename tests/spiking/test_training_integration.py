"""Spiking models go through the toolkit's training loop and run folders like any model."""

import torch

from neuroaikit.execution import ExecutionConfig
from neuroaikit.progress import silent
from neuroaikit.runs import load_run
from neuroaikit.training import TrainConfig, TrainingResult, train


def test_train_snn_cnn_on_digits_and_rebuild_from_the_run_folder(tmp_path):
    config = TrainConfig(dataset="digits", model="snn_cnn", model_kwargs={"T": 2, "channels": [4, 8], "hidden": 16},
                         noise={"conv2": "gaussian:0.1"}, epochs=3, batch_size=64, lr=1e-2, eval_draws=2,
                         execution=ExecutionConfig(device="cpu"))
    run = train(config, tmp_path / "snn", progress=silent())
    acc = TrainingResult.load(run).test_accuracy["noise_off"]
    assert acc > 0.5  # 10 classes: chance is 0.1
    model = load_run(run.path)
    x = torch.rand(3, 1, 8, 8)
    assert model(x).shape == (3, 10)


def test_a_noisy_snn_run_goes_through_the_robustness_protocol_and_alignment(tmp_path, shared_data):
    from neuroaikit.alignment import AlignmentConfig, align_run
    from neuroaikit.attacks.evaluate import RobustnessConfig, evaluate_run
    from neuroaikit.models import build_from_spec, model_spec
    from neuroaikit.runs import Run

    torch.manual_seed(0)
    kwargs = {"T": 2, "channels": [4, 8], "hidden": 16, "image_size": 28}
    noise = {"conv2": "gaussian:0.1"}
    run = Run(tmp_path / "snn-mnist")
    spec = model_spec("snn_cnn", kwargs, noise)
    model = build_from_spec(spec)
    with torch.no_grad():  # an untrained network this small barely fires; stronger weights make every layer spike
        for p in model.parameters():
            p.mul_(4)
    run.save_model(model, spec)
    run.save_config({"dataset": "mnist", "data_dir": str(shared_data / "mnist")})
    config = RobustnessConfig(n_examples=6, eps=[0.1, 0.5], steps=2, eot=2, square_queries=3, random_trials=2,
                              checks=3, max_extensions=0)
    result = evaluate_run(run.path, config=config, progress=silent())
    assert result.stochastic and result.protocol.eot == 2
    assert {0.1, 0.5} <= {row.eps for row in result.sweep}
    gradient_check = next(c for c in result.checks if "gradients" in c.name)
    assert gradient_check.numbers == {"finite": True, "fraction_nonzero": 1.0}  # surrogate gradients reach the input
    antolik = shared_data / "neural" / "antolik2016_mouse_v1.npz"
    aligned = align_run(run.path, antolik, AlignmentConfig(layers=["rate1", "rate3"], n_boot=20), save=False,
                        progress=silent())
    assert [entry.layer for entry in aligned.layers] == ["rate1", "rate3"]
    assert all(entry.rsa.error is None for entry in aligned.layers)
