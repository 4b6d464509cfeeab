import math

import pytest
import torch

from neuroaikit.errors import ConfigError
from neuroaikit.spiking.plasticity import stdp as stdp_module
from neuroaikit.spiking.plasticity import (CompetingHiddenUnits, DiehlCookNetwork, STDPLearner, STDPParameters,
                                          stdp_sequence, stdp_step)


def run_pair(pre_time, post_time, T=10, params=STDPParameters(a_plus=1.0, a_minus=1.0, tau_pre=5.0, tau_post=5.0)):
    state, total = None, torch.zeros(1, 1)
    for t in range(T):
        pre = torch.tensor([[float(t == pre_time)]])
        post = torch.tensor([[float(t == post_time)]])
        dw, state = stdp_step(pre, post, state, params)
        total += dw
    return total.item()


def test_stdp_pre_before_post_potentiates_with_trace_amplitude():
    assert run_pair(2, 5) == pytest.approx(math.exp(-3 / 5.0))


def test_stdp_post_before_pre_depresses_with_trace_amplitude():
    assert run_pair(5, 2) == pytest.approx(-math.exp(-3 / 5.0))


def test_learner_writes_negative_update_into_grad_and_sgd_applies_the_rule():
    w = torch.nn.Parameter(torch.full((1, 1), 0.5))
    learner = STDPLearner(w, STDPParameters(a_plus=0.1, a_minus=0.0))
    learner.step(torch.ones(1, 1), torch.ones(1, 1))  # simultaneous: potentiation a_plus * x_pre(=1)
    learner.write_grad()
    assert w.grad.item() == pytest.approx(-0.1)
    torch.optim.SGD([w], lr=1.0).step()
    assert w.item() == pytest.approx(0.6)


def test_multiplicative_weight_dependence_vanishes_at_bounds():
    p = STDPParameters(a_plus=1.0, a_minus=1.0, weight_dependence="multiplicative")
    dw, _ = stdp_step(torch.ones(1, 1), torch.ones(1, 1), None, p, weight=torch.ones(1, 1))
    assert dw.item() == 0.0
    with pytest.raises(ConfigError):
        stdp_step(torch.ones(1, 1), torch.ones(1, 1), None, p)


@pytest.mark.parametrize("dense_path", [False, True])
@pytest.mark.parametrize("dependence", ["additive", "multiplicative"])
def test_stdp_sequence_equals_summed_steps(dependence, dense_path, monkeypatch):
    if dense_path:  # the fallback for dense activity steps the traces instead of listing spike pairs
        monkeypatch.setattr(stdp_module, "MAX_PAIRS", 0)
    torch.manual_seed(0)
    params = STDPParameters(a_plus=0.3, a_minus=0.2, tau_pre=5.0, tau_post=7.0, weight_dependence=dependence)
    pre = (torch.rand(30, 3, 6) < 0.2).float()
    post = (torch.rand(30, 3, 4) < 0.1).float()
    post[:, 1] = 0  # a sample without post spikes
    weight = torch.rand(4, 6)
    state, total = None, torch.zeros(4, 6)
    for t in range(30):
        dw, state = stdp_step(pre[t], post[t], state, params, weight)
        total += dw
    assert torch.allclose(stdp_sequence(pre, post, params, weight), total, atol=1e-5)
    with pytest.raises(ConfigError):
        stdp_sequence(pre[0], post[0], params, weight)


@pytest.mark.parametrize("kwargs", [{"tau_pre": -1.0}, {"a_plus": -0.1}, {"w_max": -1.0}, {"weight_dependence": "x"}])
def test_bad_stdp_parameters(kwargs):
    with pytest.raises(ConfigError):
        STDPParameters(**kwargs).check()


def test_krotov_hopfield_winner_moves_toward_the_input():
    torch.manual_seed(0)
    layer = CompetingHiddenUnits(4, n_hidden=5, k=2)
    v = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    before = layer.weight.clone()
    winner = (layer.weight.sign() * layer.weight.abs() ** 2 @ v.t()).argmax()
    layer.hebbian_grad(v)
    torch.optim.SGD([layer.weight], lr=0.1).step()
    change = layer.weight - before
    # Hebbian: the winner's first weight moves toward <W, v>-scaled input; only 2 rows change
    assert (change.abs().sum(1) > 0).sum() == 2
    assert change[winner, 0] * (1 - before[winner, 0] * (before[winner].sign() * before[winner].abs() ** 2 @ v[0])) >= 0
    with pytest.raises(ConfigError):
        CompetingHiddenUnits(4, n_hidden=5, k=9)


def test_krotov_hopfield_rows_converge_toward_unit_p_norm():
    torch.manual_seed(0)
    layer = CompetingHiddenUnits(20, n_hidden=10, k=2)
    opt = torch.optim.SGD([layer.weight], lr=0.05)
    data = torch.rand(400, 20)
    for _ in range(5):
        for start in range(0, 400, 20):
            layer.hebbian_grad(data[start:start + 20])
            opt.step()
    norms = (layer.weight.abs() ** 3).sum(1)
    assert (norms - 1).abs().min() < 0.2


@pytest.mark.parametrize("batch_size", [1, 4])
def test_diehl_cook_learns_two_separable_patterns(batch_size):
    torch.manual_seed(0)
    a = torch.zeros(40, 16)
    a[:20, :8] = 1.0
    a[20:, 8:] = 1.0
    labels = torch.tensor([0] * 20 + [1] * 20)
    order = torch.randperm(40)
    net = DiehlCookNetwork(16, n_neurons=6, T=60, v_th=2.0, inhibition=5.0, weight_total=4.0,
                           max_rate_hz=300.0, seed=0)
    net.fit(a[order], labels[order], batch_size=batch_size)
    assert net.assignments_.shape == (6,)
    assert (net.predict(a) == labels).float().mean() >= 0.9


@pytest.mark.parametrize("kwargs", [{"v_th": 0}, {"synapses": "x"}, {"v_th": 70.0}, {"max_rate_hz": 2000.0},
                                    {"refractory": -1}])
def test_diehl_cook_bad_parameters(kwargs):
    with pytest.raises(ConfigError):
        DiehlCookNetwork(16, **kwargs)


def test_diehl_cook_rejects_pixels_outside_unit_range():
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        DiehlCookNetwork(4, n_neurons=2, T=5).run(torch.full((1, 4), 2.0))


def strong_single_neuron(**kwargs):
    net = DiehlCookNetwork(4, n_neurons=1, T=60, max_rate_hz=1000.0, weight_total=40.0, min_spikes=0, **kwargs)
    return net, torch.ones(1, 4)


def test_conductance_synapses_cannot_drive_past_the_excitatory_reversal():
    net, image = strong_single_neuron()
    assert net.run(image).sum() > 0
    net.theta.fill_(60.0)  # threshold 13 + 60 lies above e_exc = 65: the neuron is silenced for good
    assert net.run(image).sum() == 0
    current, _ = strong_single_neuron(synapses="current")
    current.theta.fill_(60.0)  # current-based input has no ceiling
    assert current.run(image).sum() > 0
    # a short membrane time constant makes each input's pull large: it is capped, not an overshoot
    # past e_exc that then diverged (tau_mem 5 ms, 1,000 Hz inputs of weight 10)
    fast, _ = strong_single_neuron(tau_mem=5.0)
    assert fast.run(image).sum() > 0
    fast.theta.fill_(60.0)
    assert fast.run(image).sum() == 0


def test_refractory_period_caps_the_rate():
    net, image = strong_single_neuron(refractory=5)
    assert 0 < net.run(image).sum() <= 10  # at most one spike per 6 steps in 60
    free, _ = strong_single_neuron(refractory=0)
    assert free.run(image).sum() > 10


def test_thresholds_grow_by_theta_plus_per_spike_over_the_whole_batch():
    torch.manual_seed(0)
    net = DiehlCookNetwork(16, n_neurons=5, T=40, max_rate_hz=300.0, min_spikes=0, theta_plus=0.5,
                           weight_total=78.0)  # strong input (mean weight 4.9): the neurons fire
    learner = STDPLearner(net.weight, net.stdp)
    counts = net.run(torch.rand(3, 16), learner)
    assert counts.sum() > 0
    assert torch.allclose(net.theta, 0.5 * counts.sum(0), rtol=1e-5)
    assert learner.dw.abs().sum() > 0
    frozen = net.theta.clone()
    net.run(torch.rand(3, 16))  # no learner: thresholds stay
    assert torch.equal(net.theta, frozen)


def test_quiet_images_are_shown_again_at_higher_rates(monkeypatch):
    net = DiehlCookNetwork(16, n_neurons=3, T=5, min_spikes=10**6, max_repeats=3)
    scales = []
    original = net._present

    def spy(images, rate_scale, learner, generator=None):
        scales.append((len(images), rate_scale))
        return original(images, rate_scale, learner, generator)

    monkeypatch.setattr(net, "_present", spy)
    net.run(torch.rand(2, 16))
    assert scales == [(2, 1.0), (2, 1.5), (2, 2.0), (2, 2.5)]


@pytest.mark.parametrize("n_inputs, total", [(64, 78 * 64 / 784), (784, 78.0), (3072, 78 * 3072 / 784)])
def test_diehl_cook_default_weight_total_keeps_the_papers_mean_weight(n_inputs, total):
    from neuroaikit.spiking.plasticity import DiehlCookConfig

    net = DiehlCookNetwork(n_inputs, n_neurons=3, **DiehlCookConfig().network_kwargs() | {"T": 5})
    assert net.weight_total == pytest.approx(total, rel=1e-12)
    assert torch.allclose(net.weight.sum(1), torch.full((3,), total), rtol=1e-5)
    assert net.weight.mean() < net.stdp.w_max  # a fixed 78 over 64 inputs: mean 1.22 > w_max 1
    assert DiehlCookNetwork(n_inputs, n_neurons=3, weight_total=5.0).weight_total == 5.0
