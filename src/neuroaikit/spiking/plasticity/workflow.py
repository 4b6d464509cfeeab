"""The plasticity workflow: a local learning rule on an image dataset, into a run folder.

``learn(config, out)`` (what ``neuroaikit plasticity`` calls) trains one of two rules and
writes a normal run folder through :class:`~neuroaikit.runs.RunWriter`:

- ``"krotov-hopfield"``: competing hidden units (:class:`.CompetingHiddenUnits`) learned
  without labels, then a linear readout of their standardised ``relu(W v)^n`` features
  (Adam, both learning rates annealed linearly to 0); a checkpoint after every unsupervised
  epoch and every tenth of the readout epochs;
- ``"diehl-cook"``: STDP with lateral inhibition and adaptive thresholds
  (:class:`.DiehlCookNetwork`), neurons then labelled by their mean response per class; a
  checkpoint every ``checkpoint_every`` images and after the labelling.

The run folder holds ``config.json`` (with only the chosen rule's settings), ``model.json`` +
``weights.safetensors`` (the trained network: ``neuroaikit.runs.load_run`` rebuilds it as the
registered model ``krotov_hopfield`` or ``diehl_cook``), ``metrics.json``
(:class:`PlasticityResult`) and ``log.txt``. ``resume=True`` continues an interrupted job from
its checkpoint and ends with the weights an uninterrupted job would have: every random stream
(initial weights, data order, input spikes) is derived from ``(seed, phase, epoch, batch)``.

Devices: ``config.execution`` chooses the device (``auto``, ``cpu``, ``cuda``, ``mps``) and
threads; every tensor lives on it. Precision is float32 only (see
:class:`PlasticityConfig`). One process: the rules are sequential, so ``torchrun`` is refused.
Diehl & Cook's protocol presents one image at a time for 350 steps of a few small tensor
operations each; on a GPU each step is a handful of tiny kernels, so expect no speed-up there
for ``batch_size = 1`` (not measured); its labelling and testing present 100 images at once.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F

from ...config import (NON_NEGATIVE, PATH, POSITIVE, POSITIVE_INT, STRING, AppliesOnly, Config, InstanceOf, Interval,
                       Options)
from ...data import load_train_test
from ...errors import ConfigError
from ...execution import Execution, ExecutionConfig, derive_seed, refuse_torchrun, require_float32
from ...progress import Progress, default_progress
from ...results import Result
from ...runs import Run, RunWriter
from .diehl_cook import DiehlCookNetwork
from .krotov_hopfield import KrotovHopfieldClassifier
from .stdp import WEIGHT_DEPENDENCES, STDPLearner, STDPParameters

RULES = ("krotov-hopfield", "diehl-cook")
#: the config section of each rule
SECTIONS = {"krotov-hopfield": "krotov_hopfield", "diehl-cook": "diehl_cook"}
# independent random streams: derive_seed(seed, STREAM, ...)
_INIT, _ORDER, _READOUT_ORDER, _STDP_SPIKES, _LABEL_SPIKES, _TEST_SPIKES = range(6)
_FEATURE_CHUNK = 10_000  # rows per feature product: bounds the memory of relu(Wv)^n temporaries


@dataclass
class KrotovHopfieldConfig(Config):
    """Krotov-Hopfield settings; defaults are the protocol the README reports (97.4 % on MNIST).

    Args:
        n_hidden (int): hidden units. Default 2000.
        p (float): Lebesgue norm of the rule (>= 2). Default 3.
        k (int): rank of the anti-Hebbian unit (2 .. n_hidden). Default 7.
        delta (float): anti-Hebbian strength. Default 0.4.
        epochs (int): unsupervised epochs. Default 60 (the paper: 1,000).
        lr (float): initial learning rate of the rule, annealed linearly to 0. Default 0.04.
        batch_size (int): images per update. Default 100.
        power (float): feature nonlinearity ``relu(W v)^power``. Default 3 (the paper: 4.5; 3 reads
            out better with a standardised linear readout).
        readout_epochs (int): epochs of the supervised linear readout. Default 100.
        readout_lr (float): Adam's initial learning rate, annealed linearly to 0. Default 1e-3.
        readout_batch_size (int): default 100.
    """

    n_hidden: int = 2000
    p: float = 3.0
    k: int = 7
    delta: float = 0.4
    epochs: int = 60
    lr: float = 0.04
    batch_size: int = 100
    power: float = 3.0
    readout_epochs: int = 100
    readout_lr: float = 1e-3
    readout_batch_size: int = 100

    _where: ClassVar[str] = "krotov_hopfield."
    _parameter_constraints: ClassVar[dict] = {
        "n_hidden": [POSITIVE_INT],
        "p": [Interval(float, 2, None)],
        "k": [Interval(int, 2, None)],
        "delta": [NON_NEGATIVE],
        "epochs": [POSITIVE_INT],
        "lr": [POSITIVE],
        "batch_size": [POSITIVE_INT],
        "power": [POSITIVE],
        "readout_epochs": [POSITIVE_INT],
        "readout_lr": [POSITIVE],
        "readout_batch_size": [POSITIVE_INT],
    }

    def _check(self) -> None:
        if self.k > self.n_hidden:
            raise ConfigError(f"krotov_hopfield.k must be <= n_hidden ({self.n_hidden}), got {self.k}")


@dataclass
class DiehlCookConfig(Config):
    """Diehl & Cook settings; defaults are the paper's protocol as the README reports it
    (400 neurons, one sequential pass: 89.1 % on MNIST, results page ``local_learning_dc_full``).
    See :class:`.DiehlCookNetwork` for the neuron parameters.

    Args:
        n_neurons (int): excitatory neurons. Default 400.
        T (int): steps (ms) per presentation. Default 350.
        epochs (int): passes over the STDP images. Default 1.
        batch_size (int): images presented at once (1: the paper's sequential protocol).
        stdp_images (int | None): training images used for STDP (the first N; default all).
        label_images (int | None): training images used to label the neurons (default all).
        synapses (str): ``"conductance"`` or ``"current"`` (which refuses ``e_exc``, ``e_inh``,
            ``tau_syn_exc`` and ``tau_syn_inh`` changed from their defaults: it has no use for them).
        max_rate_hz, tau_mem, v_th, inhibition, e_exc, e_inh, tau_syn_exc, tau_syn_inh, \
            refractory, theta_plus, tau_theta, weight_total, min_spikes, max_repeats: the network's
            (``weight_total`` ``None``: 78 x inputs / 784, the paper's 78 on MNIST).
        a_plus, a_minus, tau_pre, tau_post, w_min, w_max, weight_dependence: the STDP rule's.
        checkpoint_every (int): images between checkpoints during STDP. Default 1000.
        eval_batch_size (int): images presented at once for labelling and testing. Default 100.
    """

    n_neurons: int = 400
    T: int = 350
    epochs: int = 1
    batch_size: int = 1
    stdp_images: int | None = None
    label_images: int | None = None
    synapses: str = "conductance"
    max_rate_hz: float = 63.75
    tau_mem: float = 100.0
    v_th: float = 13.0
    inhibition: float = 17.0
    e_exc: float = 65.0
    e_inh: float = -35.0
    tau_syn_exc: float = 1.0
    tau_syn_inh: float = 2.0
    refractory: int = 5
    theta_plus: float = 0.05
    tau_theta: float = 1e7
    weight_total: float | None = None
    min_spikes: int = 5
    max_repeats: int = 10
    a_plus: float = 1e-2
    a_minus: float = 1e-4
    tau_pre: float = 20.0
    tau_post: float = 20.0
    w_min: float = 0.0
    w_max: float = 1.0
    weight_dependence: str = "additive"
    checkpoint_every: int = 1000
    eval_batch_size: int = 100

    _where: ClassVar[str] = "diehl_cook."
    # current-based synapses add w (and subtract the inhibition) whatever the potential: they have
    # no reversal potentials and no synaptic time constants
    _applies_only: ClassVar[tuple[AppliesOnly, ...]] = (
        AppliesOnly(("e_exc", "e_inh", "tau_syn_exc", "tau_syn_inh"), lambda c: c.synapses == "conductance",
                    "applies only with {synapses} conductance", ("synapses",)),
        # re-presentations at a higher rate happen only for images that drew fewer than min_spikes spikes
        AppliesOnly(("max_repeats",), lambda c: c.min_spikes > 0, "applies only with {min_spikes} > 0",
                    ("min_spikes",)),
    )
    _refuse_unused_changes: ClassVar[bool] = True
    _parameter_constraints: ClassVar[dict] = {
        "n_neurons": [POSITIVE_INT],
        "T": [POSITIVE_INT],
        "epochs": [POSITIVE_INT],
        "batch_size": [POSITIVE_INT],
        "stdp_images": [POSITIVE_INT, None],
        "label_images": [POSITIVE_INT, None],
        "synapses": [Options(("conductance", "current"))],
        "max_rate_hz": [Interval(float, 0, 1000, closed="right")],
        "tau_mem": [POSITIVE],
        "v_th": [POSITIVE],
        "inhibition": [NON_NEGATIVE],
        "e_exc": [Interval(float, None, None)],
        "e_inh": [Interval(float, None, None)],
        "tau_syn_exc": [POSITIVE],
        "tau_syn_inh": [POSITIVE],
        "refractory": [Interval(int, 0, None)],
        "theta_plus": [NON_NEGATIVE],
        "tau_theta": [POSITIVE],
        "weight_total": [POSITIVE, None],
        "min_spikes": [Interval(int, 0, None)],
        "max_repeats": [Interval(int, 0, None)],
        "a_plus": [NON_NEGATIVE],
        "a_minus": [NON_NEGATIVE],
        "tau_pre": [POSITIVE],
        "tau_post": [POSITIVE],
        "w_min": [Interval(float, None, None)],
        "w_max": [Interval(float, None, None)],
        "weight_dependence": [Options(WEIGHT_DEPENDENCES)],
        "checkpoint_every": [POSITIVE_INT],
        "eval_batch_size": [POSITIVE_INT],
    }

    def _check(self) -> None:
        if self.synapses == "conductance" and not self.e_inh < 0 < self.v_th < self.e_exc:
            raise ConfigError(f"diehl_cook: conductance synapses need e_inh < 0 < v_th < e_exc, got e_inh "
                              f"{self.e_inh:g}, v_th {self.v_th:g}, e_exc {self.e_exc:g}")
        if self.w_max <= self.w_min:
            raise ConfigError(f"diehl_cook.w_max must exceed w_min ({self.w_min:g}), got {self.w_max:g}")

    def stdp(self) -> STDPParameters:
        return STDPParameters(self.a_plus, self.a_minus, self.tau_pre, self.tau_post, self.w_min, self.w_max,
                              self.weight_dependence)

    def network_kwargs(self) -> dict:
        """The :class:`.DiehlCookNetwork` arguments besides shapes, STDP and seed (JSON values)."""
        names = ("T", "max_rate_hz", "tau_mem", "v_th", "synapses", "inhibition", "e_exc", "e_inh", "tau_syn_exc",
                 "tau_syn_inh", "refractory", "theta_plus", "tau_theta", "weight_total", "min_spikes", "max_repeats")
        return {name: getattr(self, name) for name in names}


@dataclass
class PlasticityConfig(Config):
    """A plasticity job: which rule, on which data, where it computes.

    Args:
        rule (str): ``"krotov-hopfield"`` or ``"diehl-cook"``.
        dataset (str): ``"mnist"``, ``"fashion-mnist"``, ``"cifar10"`` or ``"digits"`` (images in [0, 1]).
        data_dir (str | None): folder holding the dataset files.
        train_subset, test_subset (int | None): use only the first N images of each split.
        seed (int): seeds the initial weights, the data order and the input spikes.
        krotov_hopfield (KrotovHopfieldConfig): the Krotov-Hopfield rule's settings.
        diehl_cook (DiehlCookConfig): the Diehl & Cook rule's settings (only the chosen rule's
            are used and recorded).
        execution (ExecutionConfig): device and threads. Precision must be ``"32"``: the rules
            rank close values against each other (the Krotov-Hopfield winner and its k-th
            competitor; Diehl & Cook thresholds near 13 growing by 0.05 per spike, below
            bfloat16's step of 0.0625 there), so half precision changes which unit learns
            (bfloat16 changed 1.5 % of the winners and 11 % of the anti-Hebbian units per batch
            on MNIST), float16 cannot hold ``relu(h)^4.5`` features (they exceed its 65,504), and
            the rules' small matrix products gain nothing from it.
    """

    rule: str = "krotov-hopfield"
    dataset: str = "mnist"
    data_dir: str | None = None
    train_subset: int | None = None
    test_subset: int | None = None
    seed: int = 0
    krotov_hopfield: KrotovHopfieldConfig = field(default_factory=KrotovHopfieldConfig)
    diehl_cook: DiehlCookConfig = field(default_factory=DiehlCookConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)

    _parameter_constraints: ClassVar[dict] = {
        "rule": [Options(RULES)],
        "dataset": [STRING],
        "data_dir": [PATH, None],
        "train_subset": [POSITIVE_INT, None],
        "test_subset": [POSITIVE_INT, None],
        "seed": [Interval(int, 0, None)],
        "krotov_hopfield": [InstanceOf(KrotovHopfieldConfig)],
        "diehl_cook": [InstanceOf(DiehlCookConfig)],
        "execution": [InstanceOf(ExecutionConfig)],
    }

    def _check(self) -> None:
        if self.data_dir is not None:
            self.data_dir = str(self.data_dir)
        if self.train_subset is not None and self.train_subset < 2:
            # the readout's features are standardised over the training images: one has no spread
            raise ConfigError(f"train_subset must be >= 2 images, got {self.train_subset}")
        require_float32(self.execution, "the plasticity rules", "their winner-take-all competition ranks values "
                        "that half precision cannot tell apart")

    def record(self) -> dict:
        """``config.json``: every setting, with only the chosen rule's section."""
        values = self.to_dict()
        for rule, section in SECTIONS.items():
            if rule != self.rule:
                values.pop(section)
        return values


@dataclass
class KrotovHopfieldFigures(Result):
    """What a Krotov-Hopfield run measured (``metrics.json["krotov_hopfield"]``).

    Attributes:
        n_hidden, power, unsupervised_epochs, readout_epochs: the protocol.
        train_accuracy: the readout's accuracy on the training images.
        time_unsupervised_s, time_readout_s: seconds (all resumed segments together).
        norm_deviation: mean ``| ||W_mu||_p^p - 1 |`` at the end (0 at the rule's fixed point).
        unsupervised_history: per epoch ``epoch``, ``lr``, ``norm_deviation``, ``seconds``.
        readout_history: per readout epoch ``epoch``, ``lr``, ``loss``.
    """

    n_hidden: int
    power: float
    unsupervised_epochs: int
    readout_epochs: int
    train_accuracy: float
    time_unsupervised_s: float
    time_readout_s: float
    norm_deviation: float
    unsupervised_history: list[dict] = field(default_factory=list)
    readout_history: list[dict] = field(default_factory=list)


@dataclass
class DiehlCookFigures(Result):
    """What a Diehl & Cook run measured (``metrics.json["diehl_cook"]``).

    Attributes:
        n_neurons, synapses, T, epochs, batch_size, theta_plus, refractory, min_spikes: the protocol.
        n_stdp, n_label: training images used for STDP and for labelling.
        time_stdp_s, time_label_s, time_test_s: seconds (STDP: all resumed segments together).
        mean_theta: mean adaptive threshold at the end.
        neurons_per_class: how many neurons were labelled with each class.
        stdp_history: at each checkpoint ``images`` done, ``seconds``, ``mean_theta``.
    """

    n_neurons: int
    synapses: str
    T: int
    epochs: int
    batch_size: int
    theta_plus: float
    refractory: int
    min_spikes: int
    n_stdp: int
    n_label: int
    time_stdp_s: float
    time_label_s: float
    time_test_s: float
    mean_theta: float
    neurons_per_class: list[int] = field(default_factory=list)
    stdp_history: list[dict] = field(default_factory=list)


@dataclass
class PlasticityResult(Result):
    """``metrics.json`` of a plasticity run.

    Attributes:
        rule, dataset, n_train, n_test: what was learned from what.
        test_accuracy: accuracy on the test images (the readout's, or the labelled neurons' vote).
        krotov_hopfield, diehl_cook: the rule's own figures (the other is ``None``).
        execution: what it ran on (device, threads, torch version).
    """

    rule: str
    dataset: str
    n_train: int
    n_test: int
    test_accuracy: float
    krotov_hopfield: KrotovHopfieldFigures | None = None
    diehl_cook: DiehlCookFigures | None = None
    execution: dict = field(default_factory=dict)


def learn(config: PlasticityConfig, out: str | os.PathLike, *, overwrite: bool = False, resume: bool = False,
          progress: Progress | None = None) -> Run:
    """Train ``config.rule`` and write the run folder ``out``; returns the finished :class:`~neuroaikit.runs.Run`.

    Args:
        config: the rule, its settings, the data and the device.
        out: the run folder to create.
        overwrite: replace a finished run at ``out`` (removed only once the new one is
            complete), or discard an interrupted job.
        resume: continue the interrupted job in ``out.partial`` from its checkpoint (the same
            settings; device and threads may change).
        progress: messages and progress bars (default: shown).
    """
    if not isinstance(config, PlasticityConfig):
        raise ConfigError(f"config must be a PlasticityConfig, got {type(config).__name__}")
    progress = default_progress(progress)
    refuse_torchrun("plasticity", "the rules learn sequentially")
    with Execution(config.execution) as ex:
        writer = RunWriter(out, config.record(), overwrite=overwrite, resume=resume, progress=progress, execution=ex)
        train_set, test_set = load_train_test(config.dataset, config.data_dir, train_subset=config.train_subset,
                                              test_subset=config.test_subset, progress=progress)
        if len(train_set) == 0 or len(test_set) == 0:
            raise ConfigError(f"{config.dataset}: no images to learn from or to test on "
                              f"({len(train_set)} train, {len(test_set)} test)")
        job = _krotov_hopfield if config.rule == "krotov-hopfield" else _diehl_cook
        with writer:
            writer.say(f"{config.rule} on {config.dataset}: {len(train_set)} train / {len(test_set)} test images, "
                       f"device {ex.device}, {torch.get_num_threads()} threads")
            result = job(config, writer, ex, train_set, test_set, progress)
            result.execution = ex.describe()
            result.save(writer.run)
            return writer.commit()


def _flat(dataset, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    return dataset.images.flatten(1).to(device), dataset.labels.to(device)


def _order(n: int, *seed_parts: int, device: torch.device) -> torch.Tensor:
    """A permutation of ``n`` drawn from ``derive_seed(*seed_parts)`` (identical on every device)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(derive_seed(*seed_parts))).to(device)


def _cpu(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().cpu().clone()


# -- Krotov-Hopfield -------------------------------------------------------------------------
def _krotov_hopfield(config: PlasticityConfig, writer: RunWriter, ex: Execution, train_set, test_set,
                     progress: Progress) -> PlasticityResult:
    kh, seed, device = config.krotov_hopfield, config.seed, ex.device
    channels, size, _ = train_set.images.shape[1:]
    kwargs = {"in_channels": channels, "image_size": size, "n_classes": len(train_set.classes),
              "n_hidden": kh.n_hidden, "p": kh.p, "k": kh.k, "delta": kh.delta, "n_power": kh.power}
    with torch.random.fork_rng(devices=[]):  # the initial weights, the same on every device
        torch.manual_seed(derive_seed(seed, _INIT))
        model = KrotovHopfieldClassifier(**kwargs)
    model = model.to(device)
    hidden = model.hidden
    xtr, ytr = _flat(train_set, device)
    xte, yte = _flat(test_set, device)
    optimizer = torch.optim.SGD([hidden.weight], lr=kh.lr)
    readout_optimizer = torch.optim.Adam(model.readout.parameters(), lr=kh.readout_lr)

    history: list[dict] = []
    readout_history: list[dict] = []
    start_epoch = start_readout = 0
    t_unsup = t_readout = 0.0
    state = writer.load_checkpoint(map_location=device)
    if state is not None:
        hidden.weight.copy_(state["hidden"])
        history, start_epoch, t_unsup = list(state["history"]), int(state["epoch"]), float(state["time_unsupervised"])
        if state["phase"] == "readout":
            model.readout.load_state_dict(state["readout"])
            readout_optimizer.load_state_dict(state["optimizer"])
            readout_history, start_readout = list(state["readout_history"]), int(state["readout_epoch"])
            t_readout = float(state["time_readout"])
        writer.say(f"resumed from {writer.checkpoint_path}: {start_epoch} unsupervised epoch(s)"
                   + (f", {start_readout} readout epoch(s)" if start_readout else "") + " done")

    def checkpoint(phase: str) -> None:
        writer.save_checkpoint({
            "phase": phase, "hidden": _cpu(hidden.weight), "history": history, "epoch": len(history),
            "time_unsupervised": t_unsup, "readout": {k: _cpu(v) for k, v in model.readout.state_dict().items()},
            "optimizer": readout_optimizer.state_dict(), "readout_history": readout_history,
            "readout_epoch": len(readout_history), "time_readout": t_readout,
        })

    n = len(xtr)
    with progress.task("unsupervised", total=kh.epochs, unit="epochs") as task:
        task.update(start_epoch)
        for epoch in range(start_epoch, kh.epochs):
            t0 = time.perf_counter()
            lr = kh.lr * (1 - epoch / kh.epochs)  # linearly annealed, as in the paper's code
            for group in optimizer.param_groups:
                group["lr"] = lr
            order = _order(n, seed, _ORDER, epoch, device=device)
            for start in range(0, n, kh.batch_size):
                hidden.hebbian_grad(xtr[order[start:start + kh.batch_size]])
                optimizer.step()
            deviation = hidden.norm_deviation()  # also waits for the device, so the time is honest
            t_unsup += time.perf_counter() - t0
            history.append({"epoch": epoch + 1, "lr": lr, "norm_deviation": deviation, "seconds": t_unsup})
            writer.run.log(f"unsupervised epoch {epoch + 1}/{kh.epochs}: lr {lr:.4g}, norm deviation "
                           f"{deviation:.4g}, {t_unsup:.1f} s")
            checkpoint("unsupervised")
            task.update(1, norm_deviation=deviation)
    writer.say(f"  unsupervised: {kh.epochs} epochs, {t_unsup:.0f} s")

    t0 = time.perf_counter()
    with torch.no_grad():
        features = torch.empty(n, kh.n_hidden, device=device)
        for start in range(0, n, _FEATURE_CHUNK):
            features[start:start + _FEATURE_CHUNK] = hidden(xtr[start:start + _FEATURE_CHUNK])
        # relu(h)^n spans many decades: standardise each feature on the training set
        model.feature_mean.copy_(features.mean(0))
        model.feature_std.copy_(features.std(0).clamp_min(1e-12))
        features.sub_(model.feature_mean).div_(model.feature_std)
    every = max(1, kh.readout_epochs // 10)
    with progress.task("readout", total=kh.readout_epochs, unit="epochs") as task:
        task.update(start_readout)
        for epoch in range(start_readout, kh.readout_epochs):
            lr = kh.readout_lr * (1 - epoch / kh.readout_epochs)  # annealed like the hidden layer
            for group in readout_optimizer.param_groups:
                group["lr"] = lr
            order = _order(n, seed, _READOUT_ORDER, epoch, device=device)
            total = torch.zeros((), device=device)
            for start in range(0, n, kh.readout_batch_size):
                idx = order[start:start + kh.readout_batch_size]
                loss = F.cross_entropy(model.readout(features[idx]), ytr[idx])
                readout_optimizer.zero_grad(set_to_none=True)
                loss.backward()
                readout_optimizer.step()
                total += loss.detach() * len(idx)
            loss_value = float(total) / n
            if not math.isfinite(loss_value):
                raise ConfigError(f"the readout diverged at epoch {epoch + 1} (loss {loss_value}); lower "
                                  f"krotov_hopfield.readout_lr")
            t_readout += time.perf_counter() - t0
            t0 = time.perf_counter()
            readout_history.append({"epoch": epoch + 1, "lr": lr, "loss": loss_value})
            task.update(1, loss=loss_value)
            if (epoch + 1) % every == 0 or epoch + 1 == kh.readout_epochs:
                checkpoint("readout")
        with torch.no_grad():
            train_accuracy = _accuracy(model.readout, features, ytr)
            del features
            test_accuracy = _accuracy(model, xte, yte)
    t_readout += time.perf_counter() - t0
    writer.say(f"  Krotov-Hopfield ({kh.n_hidden} units, relu^{kh.power:g}) + linear readout: test accuracy "
               f"{test_accuracy:.4f} (unsupervised {t_unsup:.0f} s, readout {t_readout:.0f} s)")
    from ...models import model_spec

    writer.run.save_model(model, model_spec("krotov_hopfield", kwargs))
    figures = KrotovHopfieldFigures(
        n_hidden=kh.n_hidden, power=kh.power, unsupervised_epochs=kh.epochs, readout_epochs=kh.readout_epochs,
        train_accuracy=train_accuracy, time_unsupervised_s=t_unsup, time_readout_s=t_readout,
        norm_deviation=hidden.norm_deviation(), unsupervised_history=history, readout_history=readout_history)
    return PlasticityResult(rule=config.rule, dataset=config.dataset, n_train=n, n_test=len(xte),
                            test_accuracy=test_accuracy, krotov_hopfield=figures)


@torch.no_grad()
def _accuracy(model, x: torch.Tensor, y: torch.Tensor, batch_size: int = _FEATURE_CHUNK) -> float:
    correct = sum(int((model(x[s:s + batch_size]).argmax(1) == y[s:s + batch_size]).sum())
                  for s in range(0, len(x), batch_size))
    return correct / max(len(x), 1)


# -- Diehl & Cook ----------------------------------------------------------------------------
def _diehl_cook(config: PlasticityConfig, writer: RunWriter, ex: Execution, train_set, test_set,
                progress: Progress) -> PlasticityResult:
    dc, seed, device = config.diehl_cook, config.seed, ex.device
    channels, size, _ = train_set.images.shape[1:]
    n_classes = len(train_set.classes)
    net = DiehlCookNetwork(channels * size * size, dc.n_neurons, stdp=dc.stdp(), seed=derive_seed(seed, _INIT),
                           n_classes=n_classes, **dc.network_kwargs()).to(device)
    xtr, ytr = _flat(train_set, device)
    xte, yte = _flat(test_set, device)
    n_stdp = min(dc.stdp_images or len(xtr), len(xtr))
    n_label = min(dc.label_images or len(xtr), len(xtr))
    learner = STDPLearner(net.weight, net.stdp)
    optimizer = torch.optim.SGD([net.weight], lr=1.0)  # the rule's -dw in .grad; lr 1 keeps its amplitudes
    generator = torch.Generator(device=device)
    batches = -(-n_stdp // dc.batch_size)
    total_steps = dc.epochs * batches

    step, t_stdp, t_label, history = 0, 0.0, 0.0, []
    state = writer.load_checkpoint(map_location=device)
    if state is not None:
        net.weight.copy_(state["weight"])
        net.theta.copy_(state["theta"])
        step, t_stdp, history = int(state["step"]), float(state["time_stdp"]), list(state["history"])
        if state["phase"] == "labelled":
            net.assignments.copy_(state["assignments"])
            t_label = float(state["time_label"])
        writer.say(f"resumed from {writer.checkpoint_path}: {_images_done(step, batches, dc.batch_size, n_stdp)} "
                   f"of {dc.epochs * n_stdp} STDP images done" + (", neurons labelled" if t_label else ""))

    def checkpoint(phase: str) -> None:
        writer.save_checkpoint({"phase": phase, "weight": _cpu(net.weight), "theta": _cpu(net.theta),
                                "assignments": _cpu(net.assignments), "step": step, "history": history,
                                "time_stdp": t_stdp, "time_label": t_label})

    with progress.task("STDP", total=dc.epochs * n_stdp, unit="images") as task:
        done = _images_done(step, batches, dc.batch_size, n_stdp)
        task.update(done)
        last_checkpoint, t0 = done, time.perf_counter()
        while step < total_steps:
            epoch, batch = divmod(step, batches)
            generator.manual_seed(derive_seed(seed, _STDP_SPIKES, epoch, batch))
            images = xtr[batch * dc.batch_size:min((batch + 1) * dc.batch_size, n_stdp)]
            net.learn_batch(images, learner, optimizer, generator)
            step += 1
            done += len(images)
            task.update(len(images))
            if done - last_checkpoint >= dc.checkpoint_every or step == total_steps:
                mean_theta = float(net.theta.mean())  # waits for the device: the time is honest
                t_stdp += time.perf_counter() - t0
                t0, last_checkpoint = time.perf_counter(), done
                history.append({"images": done, "seconds": t_stdp, "mean_theta": mean_theta})
                writer.run.log(f"STDP: {done}/{dc.epochs * n_stdp} images, {t_stdp:.0f} s, mean theta "
                               f"{mean_theta:.3f}")
                task.update(0, mean_theta=mean_theta)
                checkpoint("stdp")

    if net.assignments_ is None:
        t0 = time.perf_counter()
        generator.manual_seed(derive_seed(seed, _LABEL_SPIKES))
        with progress.task("labelling", total=n_label, unit="images") as task:
            net.assign_labels(xtr[:n_label], ytr[:n_label], dc.eval_batch_size, generator, task)
        t_label = time.perf_counter() - t0
        checkpoint("labelled")
    t0 = time.perf_counter()
    generator.manual_seed(derive_seed(seed, _TEST_SPIKES))
    with progress.task("test", total=len(xte), unit="images") as task:
        test_accuracy = int((net.predict(xte, dc.eval_batch_size, generator, task) == yte).sum()) / len(xte)
    t_test = time.perf_counter() - t0
    mean_theta = float(net.theta.mean())
    writer.say(f"  Diehl & Cook ({dc.n_neurons} neurons, {dc.synapses} synapses, T={dc.T} ms, {dc.epochs} x {n_stdp} "
               f"training images, batch {dc.batch_size}, labels from {n_label} images): test accuracy "
               f"{test_accuracy:.4f} on {len(xte)} images (STDP {t_stdp:.0f} s, labelling {t_label:.0f} s, "
               f"test {t_test:.0f} s)")
    from ...models import model_spec

    spec_kwargs = {"in_channels": channels, "image_size": size, "n_classes": n_classes, "n_neurons": dc.n_neurons,
                   **dc.network_kwargs()}
    writer.run.save_model(net, model_spec("diehl_cook", spec_kwargs))
    figures = DiehlCookFigures(
        n_neurons=dc.n_neurons, synapses=dc.synapses, T=dc.T, epochs=dc.epochs, batch_size=dc.batch_size,
        theta_plus=dc.theta_plus, refractory=dc.refractory, min_spikes=dc.min_spikes, n_stdp=n_stdp,
        n_label=n_label, time_stdp_s=t_stdp, time_label_s=t_label, time_test_s=t_test, mean_theta=mean_theta,
        neurons_per_class=torch.bincount(net.assignments.cpu(), minlength=n_classes).tolist(), stdp_history=history)
    return PlasticityResult(rule=config.rule, dataset=config.dataset, n_train=len(xtr), n_test=len(xte),
                            test_accuracy=test_accuracy, diehl_cook=figures)


def _images_done(step: int, batches: int, batch_size: int, n_images: int) -> int:
    """Images presented after ``step`` batches (the last batch of an epoch may be short)."""
    epochs, batch = divmod(step, batches)
    return epochs * n_images + min(batch * batch_size, n_images)
