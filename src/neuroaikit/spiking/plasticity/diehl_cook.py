"""Unsupervised digit learning with STDP (after Diehl & Cook 2015, Front. Comput. Neurosci. 9:99).

Poisson inputs (rate proportional to intensity, 63.75 Hz at full intensity) drive excitatory
LIF neurons through plastic weights; lateral inhibition (each spike inhibits every other
excitatory neuron, standing in for the 1:1 inhibitory layer) makes them compete; adaptive
thresholds (``theta`` grows at each spike) spread the work. STDP (:mod:`.stdp`) learns the
input weights, which are normalised per neuron after each batch. Neurons are then labelled
with the class they respond to most, and an image is classified by the class whose neurons
fire most on average.

Simplifications, stated: current-based (not conductance-based) synapses and inhibition,
dt = 1 ms, no refractory period, no re-presentation of images that evoke < 5 spikes, and
images are presented ``batch_size`` at a time with their STDP updates summed (``batch_size = 1``
is the original sequential protocol).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...errors import ConfigError
from ..encoders import poisson_encode
from ..neurons import check_steps
from .stdp import STDPLearner, STDPParameters


class DiehlCookNetwork(nn.Module):
    """Args:
        n_inputs (int): 784 for MNIST. n_neurons (int): excitatory neurons, default 400.
        T (int): steps (ms) per image, default 250 (the paper: 350 + 150 rest).
        max_rate_hz (float): input rate at intensity 1, default 63.75.
        tau_mem (float): membrane time constant (ms), default 100.
        v_th (float): base threshold above rest, default 13 (mV in the paper's units).
        inhibition (float): drop of every other neuron's potential per spike, default 17.
        theta_plus (float): threshold increase per spike, default 0.05. tau_theta (float): its decay (ms), 1e7.
        weight_total (float): per-neuron sum of input weights after normalisation, default 78.
        stdp (STDPParameters): default ``a_plus = 1e-2`` (nu_post), ``a_minus = 1e-4`` (nu_pre), traces 20 ms.
        seed (int): initial weights ~ U(0, 0.3).

    Fitted attributes: ``assignments_`` (n_neurons,) class of each neuron.
    """

    def __init__(self, n_inputs: int = 784, n_neurons: int = 400, T: int = 250, max_rate_hz: float = 63.75,
                 tau_mem: float = 100.0, v_th: float = 13.0, inhibition: float = 17.0, theta_plus: float = 0.05,
                 tau_theta: float = 1e7, weight_total: float = 78.0, stdp: STDPParameters = STDPParameters(),
                 seed: int = 0):
        super().__init__()
        self.T = check_steps(T)
        if tau_mem <= 0 or tau_theta <= 0:
            raise ConfigError(f"time constants must be > 0, got tau_mem={tau_mem}, tau_theta={tau_theta}")
        if v_th <= 0:
            raise ConfigError(f"threshold v_th must be > 0, got {v_th}")
        if not 0 < max_rate_hz <= 1000:
            raise ConfigError(f"max_rate_hz must be in (0, 1000] at dt = 1 ms, got {max_rate_hz}")
        self.max_prob = max_rate_hz / 1000.0
        self.beta = math.exp(-1 / tau_mem)
        self.theta_decay = math.exp(-1 / tau_theta)
        self.v_th, self.inhibition, self.theta_plus, self.weight_total = v_th, inhibition, theta_plus, weight_total
        gen = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.rand(n_neurons, n_inputs, generator=gen) * 0.3, requires_grad=False)
        self.register_buffer("theta", torch.zeros(n_neurons))
        self.stdp = stdp.check()
        self.assignments_: torch.Tensor | None = None
        self.normalise()

    @torch.no_grad()
    def normalise(self) -> None:
        self.weight.mul_(self.weight_total / self.weight.sum(1, keepdim=True).clamp_min(1e-12))

    @torch.no_grad()
    def run(self, images: torch.Tensor, learner: STDPLearner | None = None) -> torch.Tensor:
        """Present a batch ``(B, n_inputs)`` in [0, 1]; returns spike counts ``(B, n_neurons)``.
        With a ``learner``, STDP updates are accumulated and thresholds adapt."""
        x = poisson_encode(images, self.T, self.max_prob)
        B = images.shape[0]
        v = torch.zeros(B, self.weight.shape[0])
        z = torch.zeros_like(v)
        counts = torch.zeros_like(v)
        theta = self.theta.clone()
        for t in range(self.T):
            inhib = self.inhibition * (z.sum(1, keepdim=True) - z)
            v = (self.beta * v * (1 - z) + x[t] @ self.weight.t() - inhib).clamp_min(-self.inhibition)
            z = (v > self.v_th + theta).to(v.dtype)
            counts += z
            if learner is not None:
                learner.step(x[t], z)
                theta = theta * self.theta_decay + self.theta_plus * z.sum(0) / B
        if learner is not None:
            self.theta.copy_(theta)
        return counts

    def fit(self, images: torch.Tensor, labels: torch.Tensor, epochs: int = 1, batch_size: int = 16,
            echo=None) -> "DiehlCookNetwork":
        """Unsupervised STDP on ``images (N, ...)`` in [0, 1], then label assignment with ``labels``."""
        images = images.flatten(1)
        learner = STDPLearner(self.weight, self.stdp)
        optimizer = torch.optim.SGD([self.weight], lr=1.0)  # the rule's -dw in .grad; lr 1 keeps its amplitudes
        for epoch in range(epochs):
            for start in range(0, len(images), batch_size):
                learner.reset()
                self.run(images[start:start + batch_size], learner)
                optimizer.zero_grad(set_to_none=True)
                learner.write_grad()
                optimizer.step()
                learner.clip()
                self.normalise()
                if echo and (start // batch_size) % 50 == 0:
                    echo(f"  epoch {epoch + 1}: {start + batch_size}/{len(images)} images")
        self.assign_labels(images, labels)
        return self

    @torch.no_grad()
    def assign_labels(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 100) -> torch.Tensor:
        """Label every neuron with the class of highest mean response (``assignments_``)."""
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
