import math

import pytest
import torch

from neuroaikit.errors import ConfigError
from neuroaikit.spiking.plasticity import (CompetingHiddenUnits, DiehlCookNetwork, STDPLearner, STDPParameters,
                                          stdp_step)


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


def test_diehl_cook_learns_two_separable_patterns():
    torch.manual_seed(0)
    a = torch.zeros(40, 16)
    a[:20, :8] = 1.0
    a[20:, 8:] = 1.0
    labels = torch.tensor([0] * 20 + [1] * 20)
    order = torch.randperm(40)
    net = DiehlCookNetwork(16, n_neurons=6, T=60, v_th=2.0, inhibition=5.0, weight_total=4.0,
                           max_rate_hz=300.0, seed=0)
    net.fit(a[order], labels[order], batch_size=4)
    assert net.assignments_.shape == (6,)
    assert (net.predict(a) == labels).float().mean() >= 0.9
    with pytest.raises(ConfigError):
        DiehlCookNetwork(16, v_th=0)
