"""A noise layer's own random stream, saved and restored."""

def test_a_generator_state_of_another_kind_of_device_restarts_the_stream_from_the_seed():
    import torch

    from neuroaikit.noise import NoiseLayer

    x = torch.zeros(5)
    saved = NoiseLayer("gaussian:0.5", seed=3)
    saved(x)
    state, following = saved.rng_state(), saved(x)
    resumed = NoiseLayer("gaussian:0.5", seed=3)
    assert resumed.set_rng_state(state) and torch.equal(resumed(x), following)  # the same kind: continued
    cuda_like = torch.zeros(16, dtype=torch.uint8)  # a CUDA generator's state is 16 bytes, a CPU one's is not
    fresh = NoiseLayer("gaussian:0.5", seed=3)
    assert not fresh.set_rng_state(cuda_like)
    assert torch.equal(fresh(x), NoiseLayer("gaussian:0.5", seed=3)(x))  # afresh from the seed
