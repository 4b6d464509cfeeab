"""Is a model random? Found by running it, not by looking for our noise layers.

A user's own stochastic model (noise written into its ``forward``, dropout left on, a
VOneNet-style front-end) has none of the toolkit's noise layers, yet attacking it with one
draw per step and judging it with one pass over-rates it (Athalye et al. 2018). Like
AutoAttack's ``checks.check_randomized``, :func:`detect_randomness` compares repeated forward
passes on the same batch, once as the model is and once under ``model.eval()``, and declares
any randomness it finds to :func:`neuroaikit.noise.mark_stochastic`, so that every attack and
check of the protocol then takes independent draws of it.
"""

from __future__ import annotations

import copy
import weakref
from dataclasses import dataclass, field

import torch
from torch import nn

from ..noise import is_stochastic, mark_stochastic, noise_layers, noise_mode
from ..results import Result

# models detect_randomness declared, with their training mode then: an attack that needs to know
# probes a model once, not per call, and again only when dropout may have been switched since
_PROBED: "weakref.WeakKeyDictionary[nn.Module, bool]" = weakref.WeakKeyDictionary()


@dataclass
class RandomnessCheck(Result):
    """What :func:`detect_randomness` found.

    Attributes:
        stochastic: repeated forward passes of the model, as given, differ (or it has noise
            layers that are on).
        noise_layers: the toolkit's noise layers that are on.
        own_randomness: passes differ with every noise layer off: the model's own ``forward``
            (or a module left in training mode) is random.
        own_randomness_in_eval: the same, under ``model.eval()``.
        per_row: each row of a batch gets its own draw of that randomness (``False``: one draw
            is shared by the whole batch, so draws need one pass each).
        training_modules: dropout and batch-norm modules left in training mode.
        max_difference: largest difference between two passes with the noise layers off, per row
            relative to the row's largest logit.
        passes: forward passes compared.
        warnings: what a user should know, one line each.
    """

    stochastic: bool
    noise_layers: list[str] = field(default_factory=list)
    own_randomness: bool = False
    own_randomness_in_eval: bool = False
    per_row: bool = True
    training_modules: list[str] = field(default_factory=list)
    max_difference: float = 0.0
    passes: int = 0
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line: where the randomness comes from."""
        if not self.stochastic:
            return "deterministic: repeated forward passes agree"
        sources = []
        if self.noise_layers:
            sources.append(f"noise layers {', '.join(self.noise_layers)}")
        if self.own_randomness:
            sources.append("the model's own forward pass" + ("" if self.own_randomness_in_eval else
                                                             " (only in training mode)"))
        return ("stochastic: " + "; ".join(sources) + " (attacked with EOT, judged by a majority of fresh "
                "evaluations; a one-draw rule's robust verdicts also by one more pass)")


def _relative_difference(outs: list[torch.Tensor]) -> float:
    """Largest difference of any pass from the first, per row relative to that row's own largest
    logit: a fixed floor would make the tolerance absolute for a model with small logits."""
    scale = torch.stack([o.abs().amax(1) for o in outs]).amax(0).clamp_min(torch.finfo(torch.float32).tiny)
    return max(float(((o - outs[0]).abs().amax(1) / scale).max()) for o in outs[1:])


def _differ(outs: list[torch.Tensor], tolerance: float) -> tuple[bool, float]:
    """Whether passes ``outs`` differ (beyond ``tolerance``, or in any prediction), and by how much."""
    spread = _relative_difference(outs)
    # a changed prediction is randomness whatever its size (AutoAttack compares the number correct)
    flips = any(bool((o.argmax(1) != outs[0].argmax(1)).any()) for o in outs[1:])
    return spread > tolerance or flips, spread


def _passes(model: nn.Module, x: torch.Tensor, passes: int) -> list[torch.Tensor]:
    with torch.no_grad():
        return [out.reshape(out.shape[0], -1) for out in (model(x).float() for _ in range(passes))]


def in_training_mode(model: nn.Module, kind: type) -> list[str]:
    """Names of the modules of ``model`` of type ``kind`` that are in training mode."""
    return [name or type(m).__name__ for name, m in model.named_modules() if m.training and isinstance(m, kind)]


def dropout_warning(names: list[str]) -> str:
    """The one-line warning about dropout modules ``names`` left in training mode."""
    return (f"dropout left in training mode ({', '.join(names[:5])}): the model is evaluated as the random model it "
            "is; call model.eval() first if it is deployed without dropout")


def batchnorm_warning(names: list[str]) -> str:
    """The one-line warning about batch-norm modules ``names`` left in training mode."""
    return (f"batch norm left in training mode ({', '.join(names[:5])}): outputs depend on the rest of the batch "
            "and the running statistics change; call model.eval() first")


def batch_statistics_modules(model: nn.Module) -> list[str]:
    """Names of the batch-norm modules of ``model`` without running statistics
    (``track_running_stats=False``): they normalise with each batch's statistics in eval mode too."""
    return [name or type(m).__name__ for name, m in model.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is None]


def batch_statistics_warning(names: list[str]) -> str:
    """The one-line warning about batch-norm modules ``names`` without running statistics."""
    return (f"batch norm without running statistics ({', '.join(names[:5])}; track_running_stats=False): it "
            "normalises every batch with that batch's statistics even in eval mode, so an output depends on the "
            "other inputs of its batch")


def detect_randomness(model: nn.Module, x: torch.Tensor, passes: int = 4, tolerance: float = 1e-4,
                      declare: bool = True) -> RandomnessCheck:
    """Find out whether ``model`` is random by running it.

    Args:
        model (nn.Module): returns logits for ``x``.
        x (torch.Tensor): a few inputs (the first 16 are used).
        passes (int): forward passes compared (AutoAttack compares 5). Default 4.
        tolerance (float): difference, relative to each row's largest logit, below which passes
            count as equal (floating-point non-determinism of GPU kernels stays below it); passes
            that change any prediction always differ. Default 1e-4.
        declare (bool): call :func:`neuroaikit.noise.mark_stochastic` on ``model`` when its own
            forward pass is random, so that attacks take independent draws of it. Default True.

    Returns:
        RandomnessCheck: what was found, with warnings about dropout or batch norm left in
        training mode, and batch norm without running statistics. The model itself is not run (a copy is), so batch-norm statistics and
        noise settings are untouched.
    """
    passes = max(2, int(passes))
    x = x[:16].detach()
    probe = copy.deepcopy(model)  # batch norm in training mode would update its statistics
    layers_on = [name for name, layer in noise_layers(probe) if layer.mode == "on"]
    dropout = in_training_mode(probe, nn.modules.dropout._DropoutNd)
    batchnorm = in_training_mode(probe, nn.modules.batchnorm._BatchNorm)
    training = dropout + batchnorm
    with noise_mode(probe, "off"):
        own, spread = _differ(_passes(probe, x, passes), tolerance)
        per_row = True
        if own:
            # one input twice in a batch: equal rows mean one draw serves the whole batch
            pair = _passes(probe, torch.cat([x[:1], x[:1]]), 1)[0]
            per_row = _differ([pair[:1], pair[1:]], tolerance)[0]
        own_in_eval = own
        # any module in training mode, not only dropout and batch norm: a forward may branch on
        # self.training itself (F.dropout(x, training=self.training)); the probe is a copy, so
        # the model's own modes stay as they are
        if own and any(m.training for m in probe.modules()):
            probe.eval()
            own_in_eval = _differ(_passes(probe, x, passes), tolerance)[0]
    warnings = []
    batch_statistics = batch_statistics_modules(probe)
    if batch_statistics:
        warnings.append(batch_statistics_warning(batch_statistics))
    if dropout:
        warnings.append(dropout_warning(dropout))
    if batchnorm:
        warnings.append(batchnorm_warning(batchnorm))
    if own and not own_in_eval:
        warnings.append("the randomness disappears under model.eval(): it comes from modules left in training mode")
    if declare:
        _PROBED[model] = model.training
        if own:
            mark_stochastic(model, per_row=per_row)
    return RandomnessCheck(
        stochastic=bool(layers_on) or own, noise_layers=layers_on, own_randomness=own,
        own_randomness_in_eval=own_in_eval, per_row=per_row, training_modules=training,
        max_difference=spread, passes=passes, warnings=warnings,
    )


def declare_randomness(model: nn.Module, x: torch.Tensor) -> bool:
    """Whether ``model`` is random (:func:`~neuroaikit.noise.is_stochastic`), running
    :func:`detect_randomness` on ``x`` first when the model has no noise layers and was neither
    declared nor probed in its current training mode: several draws of an undeclared model would
    be one draw, repeated. The global random state is left as it was, so an attack's seeded
    stream does not depend on whether the probe ran."""
    if not is_stochastic(model) and _PROBED.get(model) != model.training:
        with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
            detect_randomness(model, x)
    return is_stochastic(model)
