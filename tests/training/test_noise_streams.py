"""Training seeds the noise layers apart from torch's global RNG, and reproducibly."""

import pytest
import torch

import neuroaikit.certify  # noqa: F401  (registers gaussian_augmentation)
from neuroaikit.noise.layer import NoiseLayer
from neuroaikit.progress import silent
from neuroaikit.training import TrainConfig, objectives, train


def _train_recording(tmp_path, name) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """One epoch of gaussian_augmentation with input noise; the objective's noise of each batch
    (peeked from the global RNG, which the objective then draws itself) and the noise layer's draws."""
    augmentation: list[torch.Tensor] = []
    layer_eps: list[torch.Tensor] = []
    original_draw = NoiseLayer._draw
    original_objective = objectives.get_objective("gaussian_augmentation")

    def draw(self, shape, like):
        eps = original_draw(self, shape, like)
        layer_eps.append(eps.detach().clone())
        return eps

    def objective(model, x, y, sigma=0.25):
        state = torch.get_rng_state()
        augmentation.append(torch.randn_like(x))
        torch.set_rng_state(state)
        return original_objective(model, x, y, sigma=sigma)

    config = TrainConfig(dataset="digits", model="mlp", model_kwargs={"hidden": [16]}, noise={"input": "gaussian:0.25"},
                         objective="gaussian_augmentation", objective_params={"sigma": 0.25}, epochs=1,
                         batch_size=64, train_subset=256, test_subset=32, eval_draws=2, seed=3)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(NoiseLayer, "_draw", draw)
        patch.setitem(objectives._OBJECTIVES, "gaussian_augmentation", objective)
        train(config, tmp_path / name, progress=silent())
    # training batches only: the objective check before training uses 2 examples, the evaluation 32
    batches = [a for a in augmentation if a.shape[0] == 64]
    return batches, [e for e in layer_eps if e.shape[0] == 64][: len(batches)]


def test_objective_noise_and_noise_layer_draws_are_independent(tmp_path):
    batches, draws = _train_recording(tmp_path, "a")
    assert len(batches) == len(draws) == 4
    for a, e in zip(batches, draws):
        assert not torch.equal(a, e)
        # 4096 values per batch: the correlation of independent noises is 0 +- 0.016 (s.d.)
        r = torch.corrcoef(torch.stack([a.flatten(), e.flatten()]))[0, 1]
        assert abs(float(r)) < 0.1
    again, draws_again = _train_recording(tmp_path, "b")
    assert all(torch.equal(a, b) for a, b in zip(batches + draws, again + draws_again))
    assert (tmp_path / "a" / "weights.safetensors").read_bytes() == (tmp_path / "b" / "weights.safetensors").read_bytes()


def test_the_global_rng_does_not_repeat_the_data_order_stream(tmp_path):
    """derive_seed ignores trailing zeros: rank 0's seed for torch's global RNG must still differ
    from the data-order generator's, or an objective's noise repeats the draws of the shuffle."""
    from neuroaikit.execution import derive_seed

    states: list[torch.Tensor] = []
    original_objective = objectives.get_objective("gaussian_augmentation")

    def objective(model, x, y, sigma=0.25):
        states.append(torch.get_rng_state())
        return original_objective(model, x, y, sigma=sigma)

    config = TrainConfig(dataset="digits", model="mlp", model_kwargs={"hidden": [8]},
                         objective="gaussian_augmentation", objective_params={"sigma": 0.25}, epochs=1,
                         batch_size=64, train_subset=64, test_subset=16, seed=3)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(objectives._OBJECTIVES, "gaussian_augmentation", objective)
        train(config, tmp_path / "run", progress=silent())
    first_batch = states[1]  # states[0]: the objective check before training
    data_order = torch.Generator().manual_seed(derive_seed(3, 0)).get_state()
    assert not torch.equal(first_batch, data_order)
    fresh = torch.Generator().manual_seed(derive_seed(3, 0, 0x474C4F42, 0)).get_state()
    assert torch.equal(first_batch, fresh)  # seeded afresh at the epoch's start, from its own stream
