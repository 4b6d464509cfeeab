"""Unsupervised digit learning with STDP (after Diehl & Cook 2015, Front. Comput. Neurosci. 9:99).

Poisson inputs (rate proportional to intensity, 63.75 Hz at full intensity) drive excitatory
LIF neurons through plastic weights; lateral inhibition (each spike inhibits every other
excitatory neuron, standing in for the 1:1 inhibitory layer) makes them compete; adaptive
thresholds (``theta`` grows by ``theta_plus`` at each spike) spread the work. STDP
(:func:`.stdp.stdp_sequence`) learns the input weights, which are normalised per neuron (sum
``weight_total``) after each presentation. An image that evokes fewer than ``min_spikes`` spikes
is shown again with the input rate raised by half its base value (the paper's intensity 2 -> 3
-> 4 ...). Neurons are then labelled with the class they respond to most on average (thresholds
frozen), and an image is classified by the class whose neurons fire most on average.

Synapses are conductance-based by default, as in the paper: an input of weight ``w`` moves
the potential by ``w * tau_syn_exc / tau_mem * (e_exc - v)`` (0.65 w mV at rest), so it can never
pass the excitatory reversal potential, and a neuron whose threshold has grown past it falls
silent (with current-based input a tuned neuron keeps firing whatever its threshold); each spike
of another neuron moves it by ``inhibition * tau_syn_inh / tau_mem * (e_inh - v)``.
``synapses="current"`` adds ``w`` and subtracts ``inhibition`` instead (floor ``-inhibition``).

Simplifications, stated: synaptic conductances last one step (the paper's 1 ms and 2 ms decays),
the inhibitory layer is folded into direct inhibition one step later, dt = 1 ms, the state is
reset between images instead of the 150 ms rest, weights change after each presentation rather
than during it, and the rule is pair-based STDP with additive traces (the authors' code
multiplies the pre trace by a second, 40 ms post trace). ``batch_size > 1`` presents several
images at once with shared thresholds and summed STDP updates; ``batch_size = 1``, the default,
is the original sequential protocol.
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn

from ...errors import ConfigError
from ..neurons import check_steps
from .stdp import STDPLearner, STDPParameters


class DiehlCookNetwork(nn.Module):
    """Args:
        n_inputs (int): 784 for MNIST. n_neurons (int): excitatory neurons, default 400.
        T (int): steps (ms) per presentation, default 350 (the paper's 350 ms; its 150 ms rest is
            replaced by resetting the state).
        max_rate_hz (float): input rate at intensity 1, default 63.75.
        tau_mem (float): membrane time constant (ms), default 100.
        v_th (float): base threshold above rest, default 13 (mV in the paper's units).
        synapses (str): ``"conductance"`` (default, the paper's) or ``"current"``.
        inhibition (float): inhibitory weight per spike of another neuron, default 17 (nS in the paper).
        e_exc, e_inh (float): reversal potentials relative to rest, default 65 and -35 (0 and -100 mV).
        tau_syn_exc, tau_syn_inh (float): synaptic time constants (ms), default 1 and 2.
        refractory (int): steps a neuron stays at rest after a spike, default 5.
        theta_plus (float): threshold increase per spike, default 0.05. tau_theta (float): its decay (ms), 1e7.
        weight_total (float): per-neuron sum of input weights after normalisation, default 78.
        min_spikes (int): fewer spikes than this -> present again at a higher rate, default 5.
        max_repeats (int): most extra presentations per image, default 10 (rates capped at 1 spike per step).
        stdp (STDPParameters): default ``a_plus = 1e-2`` (nu_post), ``a_minus = 1e-4`` (nu_pre), traces 20 ms.
        seed (int): initial weights ~ U(0, 0.3).

    Fitted attributes: ``assignments_`` (n_neurons,) class of each neuron.

    Example::

        net = DiehlCookNetwork(784, 400)
        net.fit(train_images, train_labels)          # STDP, then label assignment
        accuracy = (net.predict(test_images) == test_labels).float().mean()
    """

    def __init__(self, n_inputs: int = 784, n_neurons: int = 400, T: int = 350, max_rate_hz: float = 63.75,
                 tau_mem: float = 100.0, v_th: float = 13.0, synapses: str = "conductance", inhibition: float = 17.0,
                 e_exc: float = 65.0, e_inh: float = -35.0, tau_syn_exc: float = 1.0, tau_syn_inh: float = 2.0,
                 refractory: int = 5, theta_plus: float = 0.05, tau_theta: float = 1e7, weight_total: float = 78.0,
                 min_spikes: int = 5, max_repeats: int = 10, stdp: STDPParameters = STDPParameters(), seed: int = 0):
        super().__init__()
        self.T = check_steps(T)
        if tau_mem <= 0 or tau_theta <= 0:
            raise ConfigError(f"time constants must be > 0, got tau_mem={tau_mem}, tau_theta={tau_theta}")
        if synapses not in ("conductance", "current"):
            raise ConfigError(f"synapses must be 'conductance' or 'current', got {synapses!r}")
        if synapses == "conductance" and not e_inh < 0 < v_th < e_exc:
            raise ConfigError(f"conductance synapses need e_inh < 0 < v_th < e_exc, got {e_inh}, {v_th}, {e_exc}")
        if v_th <= 0:
            raise ConfigError(f"threshold v_th must be > 0, got {v_th}")
        if refractory < 0 or min_spikes < 0 or max_repeats < 0:
            raise ConfigError(f"refractory, min_spikes and max_repeats must be >= 0, "
                              f"got {refractory}, {min_spikes}, {max_repeats}")
        if not 0 < max_rate_hz <= 1000:
            raise ConfigError(f"max_rate_hz must be in (0, 1000] at dt = 1 ms, got {max_rate_hz}")
        self.max_prob = max_rate_hz / 1000.0
        self.beta = math.exp(-1 / tau_mem)
        self.theta_decay = math.exp(-1 / tau_theta)
        self.v_th, self.inhibition, self.refractory = v_th, inhibition, int(refractory)
        self.synapses, self.e_exc, self.e_inh = synapses, e_exc, e_inh
        self.exc_gain = tau_syn_exc / tau_mem if synapses == "conductance" else 1.0
        self.inh_gain = inhibition * tau_syn_inh / tau_mem
        self.theta_plus, self.weight_total = theta_plus, weight_total
        self.min_spikes, self.max_repeats = int(min_spikes), int(max_repeats)
        gen = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.rand(n_neurons, n_inputs, generator=gen) * 0.3, requires_grad=False)
        self.register_buffer("theta", torch.zeros(n_neurons))
        self.stdp = stdp.check()
        self.assignments_: torch.Tensor | None = None
        self.normalise()

    @torch.no_grad()
    def normalise(self) -> None:
        self.weight.mul_(self.weight_total / self.weight.sum(1, keepdim=True).clamp_min(1e-12))

    def _input_spikes(self, images: torch.Tensor, prob: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Bernoulli spikes with probability ``pixel * prob`` per step, drawn for non-zero pixels only:
        rows ``t * B + b`` and input indices of every spike, rows in increasing order."""
        B = images.shape[0]
        batch, pixel = images.nonzero(as_tuple=True)
        fire = torch.rand(self.T, len(batch)) < images[batch, pixel] * prob
        steps, which = fire.nonzero(as_tuple=True)
        return steps * B + batch[which], pixel[which]

    def _present(self, images: torch.Tensor, rate_scale: float, learner: STDPLearner | None) -> torch.Tensor:
        B, n_neurons, n_inputs = images.shape[0], self.weight.shape[0], self.weight.shape[1]
        rows, inputs = self._input_spikes(images, min(1.0, self.max_prob * rate_scale))
        pre = torch.sparse_coo_tensor(torch.stack([rows, inputs]), torch.ones(len(rows)),
                                      (self.T * B, n_inputs), check_invariants=False)
        # the weights are fixed during a presentation, so all input currents come from one product
        current = torch.sparse.mm(pre, self.weight.t()).view(self.T, B, n_neurons)
        # between spikes the update is linear, v <- decay[t] * v + drive[t], and most steps have no spike
        if self.synapses == "conductance":
            gain = current * self.exc_gain
            decay, drive = self.beta - gain, gain * self.e_exc
        else:
            decay, drive = torch.full_like(current, self.beta), current
        v = torch.zeros(B, n_neurons)
        z = torch.zeros_like(v)
        ready_at = torch.zeros_like(v)  # first step at which a neuron may fire again
        spikes = torch.zeros(self.T, B, n_neurons)
        threshold = self.v_th + self.theta
        spiked, blocked_until = False, -1
        for t in range(self.T):
            v = torch.addcmul(drive[t], v, decay[t])
            if spiked:  # inhibition from every other neuron that fired at the previous step
                others = z.sum(1, keepdim=True) - z
                if self.synapses == "conductance":
                    v = v + (self.inh_gain * others).clamp_max(1.0) * (self.e_inh - v)
                else:
                    v = (v - self.inhibition * others).clamp_min(-self.inhibition)
            if t < blocked_until:
                v = v.masked_fill(ready_at > t, 0.0)
            fired = v > threshold
            spiked = bool(fired.any())
            if spiked:
                z = fired.to(v.dtype)
                v = v.masked_fill(fired, 0.0)
                spikes[t] = z
                if self.refractory:
                    ready_at = ready_at.masked_fill(fired, float(t + 1 + self.refractory))
                    blocked_until = t + 1 + self.refractory
                if learner is not None:
                    threshold = threshold + self.theta_plus * z.sum(0)
        if learner is not None:
            self.theta.copy_((threshold - self.v_th) * self.theta_decay ** self.T)
            learner.step_sequence(pre.to_dense().view(self.T, B, n_inputs), spikes)
        return spikes.sum(0)

    @torch.no_grad()
    def run(self, images: torch.Tensor, learner: STDPLearner | None = None) -> torch.Tensor:
        """Present a batch ``(B, n_inputs)`` in [0, 1]; returns spike counts ``(B, n_neurons)`` of the
        last presentation of each image. With a ``learner``, STDP updates are accumulated and
        thresholds adapt."""
        if images.numel() and (not torch.isfinite(images).all() or images.min() < 0 or images.max() > 1):
            raise ConfigError(f"DiehlCookNetwork expects pixel values in [0, 1], "
                              f"got range [{images.min().item():.4g}, {images.max().item():.4g}]")
        counts = self._present(images, 1.0, learner)
        for repeat in range(1, self.max_repeats + 1):
            quiet = (counts.sum(1) < self.min_spikes).nonzero(as_tuple=True)[0]
            if len(quiet) == 0:
                break
            counts[quiet] = self._present(images[quiet], 1.0 + 0.5 * repeat, learner)
        return counts

    def learn(self, images: torch.Tensor, epochs: int = 1, batch_size: int = 1, echo=None) -> "DiehlCookNetwork":
        """Unsupervised STDP on ``images (N, ...)`` in [0, 1] (thresholds adapt)."""
        images = images.flatten(1)
        learner = STDPLearner(self.weight, self.stdp)
        optimizer = torch.optim.SGD([self.weight], lr=1.0)  # the rule's -dw in .grad; lr 1 keeps its amplitudes
        start_time = time.perf_counter()
        n_batches = math.ceil(len(images) / batch_size)
        for epoch in range(epochs):
            for batch, start in enumerate(range(0, len(images), batch_size)):
                learner.reset()
                self.run(images[start:start + batch_size], learner)
                optimizer.zero_grad(set_to_none=True)
                learner.write_grad()
                optimizer.step()
                learner.clip()
                self.normalise()
                if echo and (batch + 1) % max(1, n_batches // 20) == 0:
                    echo(f"  epoch {epoch + 1}: {min(start + batch_size, len(images))}/{len(images)} images, "
                         f"{time.perf_counter() - start_time:.0f} s, mean theta {self.theta.mean().item():.2f}")
        return self

    def fit(self, images: torch.Tensor, labels: torch.Tensor, epochs: int = 1, batch_size: int = 1,
            echo=None) -> "DiehlCookNetwork":
        """Unsupervised STDP on ``images (N, ...)`` in [0, 1], then label assignment with ``labels``."""
        self.learn(images, epochs, batch_size, echo)
        self.assign_labels(images, labels)
        return self

    @torch.no_grad()
    def assign_labels(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 100) -> torch.Tensor:
        """Label every neuron with the class of highest mean response (``assignments_``), thresholds frozen."""
        counts = self.responses(images, batch_size)
        n_classes = int(labels.max()) + 1
        per_class = torch.zeros(n_classes, counts.shape[1])
        per_class.index_add_(0, labels, counts)
        per_class /= torch.bincount(labels, minlength=n_classes).clamp_min(1).unsqueeze(1).float()
        self.assignments_ = per_class.argmax(0)
        return self.assignments_

    @torch.no_grad()
    def responses(self, images: torch.Tensor, batch_size: int = 100) -> torch.Tensor:
        images = images.flatten(1)
        return torch.cat([self.run(images[s:s + batch_size]) for s in range(0, len(images), batch_size)])

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 100) -> torch.Tensor:
        if self.assignments_ is None:
            raise ConfigError("DiehlCookNetwork has no label assignments yet: call fit() first")
        counts = self.responses(images, batch_size)
        n_classes = int(self.assignments_.max()) + 1
        votes = torch.stack([counts[:, self.assignments_ == c].mean(1) if (self.assignments_ == c).any()
                             else torch.zeros(len(counts)) for c in range(n_classes)], 1)
        return votes.argmax(1)
