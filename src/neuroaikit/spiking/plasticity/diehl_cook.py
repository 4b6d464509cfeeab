"""Unsupervised digit learning with STDP (after Diehl & Cook 2015, Front. Comput. Neurosci. 9:99).

Poisson inputs (rate proportional to intensity, 63.75 Hz at full intensity) drive excitatory
LIF neurons through plastic weights; lateral inhibition (each spike inhibits every other
excitatory neuron, standing in for the 1:1 inhibitory layer) makes them compete; adaptive
thresholds (``theta`` grows by ``theta_plus`` at each spike) spread the work. STDP
(:func:`neuroaikit.spiking.plasticity.stdp_sequence`) learns the input weights, which are normalised per neuron (sum
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

Energy: the network reports its products to :class:`~neuroaikit.energy.SynapticOperations`
(:class:`~neuroaikit.spiking.synapses.ReportsProducts`): per presentation actually simulated
(re-presentations included), each input spike reaches the neurons it has a non-zero weight to
(ACs) and each excitatory spike the ``n_neurons - 1`` others through the folded inhibition (ACs);
dense: ``T`` steps x (``n_inputs`` x ``n_neurons`` + ``n_neurons`` x ``n_neurons``). Decoding (class
votes) is not counted.

Devices: everything runs where the weights are (CPU, CUDA, MPS); input spikes are drawn with the
``generator`` the methods take (a generator on that device; ``None``: torch's global one). On
the CPU the input currents come from one sparse product and the time loop skips the work of
steps without spikes; elsewhere the product is dense (sparse kernels differ between backends,
MPS has none) and the loop runs the same arithmetic unconditionally, because asking the device
whether anything fired would stall it at every step. Both loops give the same results.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...errors import ConfigError
from ...models.registry import register_model
from ..neurons import check_steps
from ..synapses import ReportsProducts
from .stdp import STDPLearner, STDPParameters

#: the paper's per-neuron weight sum for its 784 MNIST inputs; other input sizes keep its mean weight
PAPER_WEIGHT_TOTAL, PAPER_INPUTS = 78.0, 784


def default_weight_total(n_inputs: int) -> float:
    """The default per-neuron weight sum: the paper's 78 for 784 inputs, scaled to ``n_inputs``
    (``78 * n_inputs / 784``, the same mean weight, 0.0995): 78 on MNIST, 6.37 on the 64-pixel
    digits, 305.6 on CIFAR-10's 3,072 inputs. A fixed 78 would put the mean weight of 64 inputs
    at 1.22, above the STDP bound ``w_max`` 1."""
    return PAPER_WEIGHT_TOTAL * n_inputs / PAPER_INPUTS


class DiehlCookNetwork(ReportsProducts, nn.Module):
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
        tau_syn_exc, tau_syn_inh (float): synaptic time constants (ms), default 1 and 2. These four
            are for conductance synapses only (``DiehlCookConfig`` refuses them with current ones).
        refractory (int): steps a neuron stays at rest after a spike, default 5.
        theta_plus (float): threshold increase per spike, default 0.05. tau_theta (float): its decay (ms), 1e7.
        weight_total (float | None): per-neuron sum of input weights after normalisation; default
            ``None``: ``default_weight_total(n_inputs)`` (78 for MNIST's 784 inputs, the paper's, and the
            same mean weight for other input sizes).
        min_spikes (int): fewer spikes than this -> present again at a higher rate, default 5.
        max_repeats (int): most extra presentations per image, default 10 (rates capped at 1 spike per step).
        stdp (STDPParameters): default ``a_plus = 1e-2`` (nu_post), ``a_minus = 1e-4`` (nu_pre), traces 20 ms.
        seed (int): initial weights ~ U(0, 0.3).
        n_classes (int | None): classes of the labels (default: inferred by :meth:`assign_labels`).

    Fitted state (buffers, so a run folder stores them): ``theta`` (n_neurons,) the adaptive
    thresholds, ``assignments`` (n_neurons,) the class of each neuron (-1: not labelled yet);
    ``assignments_`` is ``None`` until :meth:`assign_labels` ran.

    Example::

        net = DiehlCookNetwork(784, 400)
        net.fit(train_images, train_labels)          # STDP, then label assignment
        accuracy = (net.predict(test_images) == test_labels).float().mean()
    """

    theta: torch.Tensor
    assignments: torch.Tensor
    # pixels are Poisson rates: what in-silico images and certify keep to (declared_input_range)
    input_range = (0.0, 1.0)

    def __init__(self, n_inputs: int = 784, n_neurons: int = 400, T: int = 350, max_rate_hz: float = 63.75,
                 tau_mem: float = 100.0, v_th: float = 13.0, synapses: str = "conductance", inhibition: float = 17.0,
                 e_exc: float = 65.0, e_inh: float = -35.0, tau_syn_exc: float = 1.0, tau_syn_inh: float = 2.0,
                 refractory: int = 5, theta_plus: float = 0.05, tau_theta: float = 1e7,
                 weight_total: float | None = None, min_spikes: int = 5, max_repeats: int = 10,
                 stdp: STDPParameters = STDPParameters(), seed: int = 0, n_classes: int | None = None):
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
        if n_classes is not None and n_classes < 1:
            raise ConfigError(f"n_classes must be >= 1, got {n_classes}")
        self.max_prob = max_rate_hz / 1000.0
        self.beta = math.exp(-1 / tau_mem)
        self.theta_decay = math.exp(-1 / tau_theta)
        self.v_th, self.inhibition, self.refractory = v_th, inhibition, int(refractory)
        self.synapses, self.e_exc, self.e_inh = synapses, e_exc, e_inh
        self.exc_gain = tau_syn_exc / tau_mem if synapses == "conductance" else 1.0
        self.inh_gain = inhibition * tau_syn_inh / tau_mem
        self.theta_plus = theta_plus
        self.weight_total = default_weight_total(n_inputs) if weight_total is None else weight_total
        self.min_spikes, self.max_repeats = int(min_spikes), int(max_repeats)
        self.n_classes = n_classes
        gen = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.rand(n_neurons, n_inputs, generator=gen) * 0.3, requires_grad=False)
        self.register_buffer("theta", torch.zeros(n_neurons))
        self.register_buffer("assignments", torch.full((n_neurons,), -1, dtype=torch.long))
        self.stdp = stdp.check()
        #: whether each step runs without asking if anything fired, so it never synchronises (``None``
        #: decides by device, skipping the spike-free work on a CPU and never synchronising elsewhere);
        #: tests force either
        self.sync_free: bool | None = None
        self.normalise()

    @property
    def assignments_(self) -> torch.Tensor | None:
        """The class of each neuron, or ``None`` before :meth:`assign_labels`."""
        return None if bool((self.assignments < 0).all()) else self.assignments

    @torch.no_grad()
    def normalise(self) -> None:
        self.weight.mul_(self.weight_total / self.weight.sum(1, keepdim=True).clamp_min(1e-12))

    def _input_spikes(self, images: torch.Tensor, prob: float,
                      generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Bernoulli spikes with probability ``pixel * prob`` per step, drawn for non-zero pixels only:
        rows ``t * B + b`` and input indices of every spike, rows in increasing order."""
        B = images.shape[0]
        batch, pixel = images.nonzero(as_tuple=True)
        draws = torch.rand(self.T, len(batch), generator=generator, device=images.device, dtype=images.dtype)
        fire = draws < images[batch, pixel] * prob
        steps, which = fire.nonzero(as_tuple=True)
        return steps * B + batch[which], pixel[which]

    def _present(self, images: torch.Tensor, rate_scale: float, learner: STDPLearner | None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        B, (n_neurons, n_inputs) = images.shape[0], self.weight.shape
        device, dtype = self.weight.device, self.weight.dtype
        rows, inputs = self._input_spikes(images, min(1.0, self.max_prob * rate_scale), generator)
        pre_dense = None
        # the weights are fixed during a presentation, so all input currents come from one product
        if device.type == "cpu":
            pre = torch.sparse_coo_tensor(torch.stack([rows, inputs]), torch.ones(len(rows), dtype=dtype, device=device),
                                          (self.T * B, n_inputs), device=device, check_invariants=False)
            current = torch.sparse.mm(pre, self.weight.t())
        else:
            pre_dense = torch.zeros(self.T * B, n_inputs, device=device, dtype=dtype)
            pre_dense[rows, inputs] = 1.0
            current = pre_dense @ self.weight.t()
        if self.reports_products:
            self.report_product(pre if pre_dense is None else pre_dense, self.weight)
        current = current.view(self.T, B, n_neurons)
        # between spikes the update is linear, v <- decay[t] * v + drive[t], and most steps have no spike
        if self.synapses == "conductance":
            # at most the leak's beta: v <- (beta - g) v + g e_exc then stays between its start and
            # e_exc (many coincident input spikes with a short tau_mem overshot e_exc, then diverged)
            gain = (current * self.exc_gain).clamp_max(self.beta)
            decay, drive = self.beta - gain, gain * self.e_exc
        else:
            decay, drive = torch.full_like(current, self.beta), current
        sync_free = device.type != "cpu" if self.sync_free is None else self.sync_free
        v = torch.zeros(B, n_neurons, device=device, dtype=dtype)
        z = torch.zeros_like(v)
        ready_at = torch.zeros_like(v)  # first step at which a neuron may fire again
        spikes = torch.zeros(self.T, B, n_neurons, device=device, dtype=dtype)
        threshold = self.v_th + self.theta
        spiked, blocked_until = False, -1
        for t in range(self.T):
            v = torch.addcmul(drive[t], v, decay[t])
            if sync_free:
                # the same arithmetic without asking whether anything fired: inhibition applies
                # when any neuron of the batch fired at the previous step, as below
                v = torch.where(z.any(), self._inhibit(v, z), v)
                v = v.masked_fill(ready_at > t, 0.0)
                fired = v > threshold
                z = fired.to(dtype)
                v = v.masked_fill(fired, 0.0)
                spikes[t] = z
                if self.refractory:
                    ready_at = ready_at.masked_fill(fired, float(t + 1 + self.refractory))
                if learner is not None:
                    threshold = threshold + self.theta_plus * z.sum(0)
                continue
            if spiked:  # inhibition from every other neuron that fired at the previous step
                v = self._inhibit(v, z)
            if t < blocked_until:
                v = v.masked_fill(ready_at > t, 0.0)
            fired = v > threshold
            spiked = bool(fired.any())
            if spiked:
                z = fired.to(dtype)
                v = v.masked_fill(fired, 0.0)
                spikes[t] = z
                if self.refractory:
                    ready_at = ready_at.masked_fill(fired, float(t + 1 + self.refractory))
                    blocked_until = t + 1 + self.refractory
                if learner is not None:
                    threshold = threshold + self.theta_plus * z.sum(0)
        if self.reports_products and self.inhibition:
            # the folded inhibitory layer: every spike reaches the n - 1 other neurons
            lateral = torch.full((n_neurons, n_neurons), -self.inhibition, device=device, dtype=dtype)
            self.report_product(spikes.view(self.T * B, n_neurons), lateral.fill_diagonal_(0.0))
        if learner is not None:
            self.theta.copy_((threshold - self.v_th) * self.theta_decay ** self.T)
            if pre_dense is None:
                pre_dense = pre.to_dense()
            learner.step_sequence(pre_dense.view(self.T, B, n_inputs), spikes)
        return spikes.sum(0)

    def _inhibit(self, v: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Lateral inhibition of ``v (B, n)`` by the other neurons' spikes ``z`` of the previous step."""
        others = z.sum(1, keepdim=True) - z
        if self.synapses == "conductance":
            return v + (self.inh_gain * others).clamp_max(1.0) * (self.e_inh - v)
        return (v - self.inhibition * others).clamp_min(-self.inhibition)

    @torch.no_grad()
    def run(self, images: torch.Tensor, learner: STDPLearner | None = None,
            generator: torch.Generator | None = None) -> torch.Tensor:
        """Present a batch ``(B, n_inputs)`` in [0, 1]; returns spike counts ``(B, n_neurons)`` of the
        last presentation of each image. With a ``learner``, STDP updates are accumulated and
        thresholds adapt. ``generator`` (on the weights' device) draws the input spikes."""
        if images.numel() and (not torch.isfinite(images).all() or images.min() < 0 or images.max() > 1):
            raise ConfigError(f"DiehlCookNetwork expects pixel values in [0, 1], "
                              f"got range [{images.min().item():.4g}, {images.max().item():.4g}]")
        images = images.to(self.weight.device, self.weight.dtype)
        counts = self._present(images, 1.0, learner, generator)
        for repeat in range(1, self.max_repeats + 1):
            quiet = (counts.sum(1) < self.min_spikes).nonzero(as_tuple=True)[0]
            if len(quiet) == 0:
                break
            counts[quiet] = self._present(images[quiet], 1.0 + 0.5 * repeat, learner, generator)
        return counts

    @torch.no_grad()
    def learn_batch(self, images: torch.Tensor, learner: STDPLearner, optimizer: torch.optim.Optimizer,
                    generator: torch.Generator | None = None) -> None:
        """One presentation of ``images (B, n_inputs)`` with STDP: the rule's update through
        ``optimizer`` (SGD, lr 1), weights clipped and normalised, thresholds adapted."""
        learner.reset()
        self.run(images, learner, generator)
        optimizer.zero_grad(set_to_none=True)
        learner.write_grad()
        optimizer.step()
        learner.clip()
        self.normalise()

    def learn(self, images: torch.Tensor, epochs: int = 1, batch_size: int = 1, progress=None,
              generator: torch.Generator | None = None) -> "DiehlCookNetwork":
        """Unsupervised STDP on ``images (N, ...)`` in [0, 1] (thresholds adapt); ``progress``
        (a :class:`~neuroaikit.progress.Progress`) shows a task over the images."""
        images = images.flatten(1)
        learner = STDPLearner(self.weight, self.stdp)
        optimizer = torch.optim.SGD([self.weight], lr=1.0)  # the rule's -dw in .grad; lr 1 keeps its amplitudes
        task = progress.task("STDP", total=epochs * len(images), unit="images") if progress is not None else None
        try:
            for _ in range(epochs):
                for start in range(0, len(images), batch_size):
                    batch = images[start:start + batch_size]
                    self.learn_batch(batch, learner, optimizer, generator)
                    if task is not None:
                        task.update(len(batch))
        finally:
            if task is not None:
                task.close()
        return self

    def fit(self, images: torch.Tensor, labels: torch.Tensor, epochs: int = 1, batch_size: int = 1,
            progress=None, generator: torch.Generator | None = None) -> "DiehlCookNetwork":
        """Unsupervised STDP on ``images (N, ...)`` in [0, 1], then label assignment with ``labels``."""
        self.learn(images, epochs, batch_size, progress, generator)
        self.assign_labels(images, labels, generator=generator)
        return self

    @torch.no_grad()
    def assign_labels(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 100,
                      generator: torch.Generator | None = None, task=None) -> torch.Tensor:
        """Label every neuron with the class of highest mean response (``assignments``), thresholds frozen."""
        counts = self.responses(images, batch_size, generator, task)
        return self.assign_from_counts(counts, labels)

    @torch.no_grad()
    def assign_from_counts(self, counts: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Assignments from spike counts ``(N, n_neurons)`` of labelled images ``labels (N,)``."""
        labels = labels.to(counts.device)
        if self.n_classes is None:
            self.n_classes = int(labels.max()) + 1
        per_class = torch.zeros(self.n_classes, counts.shape[1], device=counts.device, dtype=counts.dtype)
        per_class.index_add_(0, labels, counts)
        per_class /= torch.bincount(labels, minlength=self.n_classes).clamp_min(1).unsqueeze(1).to(counts.dtype)
        self.assignments.copy_(per_class.argmax(0))
        return self.assignments

    @torch.no_grad()
    def responses(self, images: torch.Tensor, batch_size: int = 100, generator: torch.Generator | None = None,
                  task=None) -> torch.Tensor:
        """Spike counts ``(N, n_neurons)`` of ``images (N, ...)``, thresholds frozen; ``task``
        (a progress task) is advanced by the images done."""
        images = images.flatten(1)
        out = []
        for start in range(0, len(images), batch_size):
            out.append(self.run(images[start:start + batch_size], generator=generator))
            if task is not None:
                task.update(len(out[-1]))
        return torch.cat(out) if out else torch.zeros(0, self.weight.shape[0], device=self.weight.device)

    @torch.no_grad()
    def votes(self, counts: torch.Tensor) -> torch.Tensor:
        """Mean spike count of each class's neurons ``(N, n_classes)`` (0 for a class without neurons)."""
        if self.assignments_ is None:
            raise ConfigError("DiehlCookNetwork has no label assignments yet: call fit() first")
        n_classes = self.n_classes or int(self.assignments.max()) + 1
        members = torch.nn.functional.one_hot(self.assignments, n_classes).to(counts.dtype)  # (n_neurons, K)
        return (counts @ members) / members.sum(0).clamp_min(1)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 100, generator: torch.Generator | None = None,
                task=None) -> torch.Tensor:
        if self.assignments_ is None:
            raise ConfigError("DiehlCookNetwork has no label assignments yet: call fit() first")
        return self.votes(self.responses(images, batch_size, generator, task)).argmax(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class votes ``(B, n_classes)`` for images ``(B, ...)``: stochastic (Poisson inputs), no gradient."""
        return self.votes(self.responses(x))


@register_model("diehl_cook")
def diehl_cook_classifier(in_channels: int = 1, image_size: int = 28, n_classes: int = 10, n_neurons: int = 400,
                          **kwargs) -> DiehlCookNetwork:
    """The network a ``neuroaikit plasticity --rule diehl-cook`` run stores, rebuilt for inference
    (``forward`` gives class votes); ``kwargs`` are :class:`DiehlCookNetwork`'s neuron parameters."""
    return DiehlCookNetwork(in_channels * image_size * image_size, n_neurons, n_classes=n_classes, **kwargs)
