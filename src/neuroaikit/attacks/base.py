"""What every attack shares: input validation, the EOT loss on the deployed inference rule,
projection onto the threat model, and keeping the best iterate per example.

An attack never changes the noise setting of the model it attacks: the noise layers are
read, never switched (a noise-off or frozen copy is made where an attack needs one).
"""

from __future__ import annotations

import copy
import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from ..config import is_finite_number, is_real_number
from ..errors import ConfigError
from ..noise import InferenceRule, forward_draws, noise_layers, set_noise
from .randomness import declare_randomness

NORMS = ("Linf", "L2")
MAX_ROWS = 512  # rows per forward pass when EOT draws are taken in chunks


def as_rule(rule: InferenceRule | str, n_draws: int | None = None) -> InferenceRule:
    if isinstance(rule, InferenceRule):
        return rule
    return InferenceRule(rule, n_draws or (1 if rule == "single" else 20))


def noise_modes(model: nn.Module) -> dict[str, str]:
    return {name: layer.mode for name, layer in noise_layers(model)}


def noise_twin(model: nn.Module, mode: str = "off") -> nn.Module:
    """A deep copy of ``model`` with every noise layer set to ``mode`` (the original is untouched)."""
    twin = copy.deepcopy(model)
    set_noise(twin, mode)
    return twin


def dlr_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Difference of Logits Ratio (Croce & Hein 2020), per example; larger = closer to fooled.

    The ratio divides the margin by the gap between the largest and the third-largest logit. With
    two classes there is no third logit (AutoAttack's loss fails there); the loss is then the
    margin itself (:func:`margin_loss`), which keeps what DLR is for: unlike cross-entropy it does
    not saturate when the model is confident, and the attacks' steps (signs, normalised
    gradients) do not depend on its scale."""
    if logits.shape[1] < 3:
        if logits.shape[1] < 2:
            raise ConfigError(f"the DLR loss needs at least 2 classes, got logits of shape {tuple(logits.shape)}")
        return margin_loss(logits, y)
    sorted_logits, order = logits.sort(dim=1)
    top_is_true = (order[:, -1] == y).float()
    true_logit = logits.gather(1, y[:, None]).squeeze(1)
    best_other = sorted_logits[:, -2] * top_is_true + sorted_logits[:, -1] * (1.0 - top_is_true)
    return -(true_logit - best_other) / (sorted_logits[:, -1] - sorted_logits[:, -3] + 1e-12)


def margin_loss(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``max_{k != y} s_k - s_y`` per example; positive means misclassified."""
    true = scores.gather(1, y[:, None]).squeeze(1)
    other = scores.clone()
    other.scatter_(1, y[:, None], -float("inf"))
    return other.max(1).values - true


LOSSES = ("ce", "dlr", "margin")


def rule_loss(draws: torch.Tensor, y: torch.Tensor, rule: InferenceRule, loss: str = "ce") -> torch.Tensor:
    """Per-example loss ``(B,)`` of the deployed rule from ``draws`` ``(N, B, K)`` of logits.

    ``single``: the mean of the per-draw losses (EOT over the one draw the defense makes);
    ``mean``: the loss of the log of the mean softmax; ``vote``: the same mean-softmax
    surrogate (a vote has no gradient).
    """
    n, b, k = draws.shape
    if rule.rule == "single":
        flat = draws.reshape(n * b, k)
        yy = y.repeat(n)
        if loss == "ce":
            per = F.cross_entropy(flat, yy, reduction="none")
        elif loss == "dlr":
            per = dlr_loss(flat, yy)
        else:
            per = margin_loss(flat, yy)
        return per.view(n, b).mean(0)
    log_mean_prob = torch.logsumexp(torch.log_softmax(draws, -1), 0) - math.log(n)
    if loss == "ce":
        return F.nll_loss(log_mean_prob, y, reduction="none")
    if loss == "dlr":
        return dlr_loss(log_mean_prob, y)
    return margin_loss(log_mean_prob, y)


def fooled_fraction(draws: torch.Tensor, y: torch.Tensor, rule: InferenceRule) -> torch.Tensor:
    """Per example, how often the rule is wrong on these draws: the fraction of wrong draws
    for ``single``, 0 or 1 for the mean/vote over all draws."""
    if rule.rule == "single":
        return (draws.argmax(-1) != y[None]).float().mean(0)
    return (rule.scores(draws).argmax(-1) != y).float()


def clamp_box(x: torch.Tensor, box: tuple[float, float] | None = (0.0, 1.0)) -> torch.Tensor:
    """``x`` clamped to the input domain ``box`` (``None``: unbounded, e.g. EEG in uV)."""
    return x if box is None else x.clamp(box[0], box[1])


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: float, norm: str,
            box: tuple[float, float] | None = (0.0, 1.0)) -> torch.Tensor:
    """Project onto the ``norm`` ball of radius ``eps`` around ``x`` and the input ``box``
    (images: [0, 1]; ``None`` for signals without bounds, whose ``eps`` is in their units)."""
    delta = x_adv - x
    if norm == "Linf":
        delta = delta.clamp(-eps, eps)
    else:
        norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
        factor = torch.clamp(eps / norms, max=1.0)
        delta = delta * factor.view(-1, *([1] * (x.dim() - 1)))
    return clamp_box(x + delta, box)


def l2_normalise(g: torch.Tensor) -> torch.Tensor:
    return g / g.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (g.dim() - 1)))


class Attack:
    """Base class: ``attack(x, y) -> x_adv`` with validation and the EOT machinery.

    Args:
        model (nn.Module): returns logits ``(B, K)`` for images ``(B, C, H, W)`` in [0, 1].
        eps (float): size of the threat model (``None`` for unbounded attacks).
        eot (int): noise draws averaged per gradient (Expectation over Transformation). With
            ``eot > 1``, a model without noise layers that was never declared random is first run
            by :func:`~neuroaikit.attacks.detect_randomness` (once per model), so that
            randomness in its own ``forward`` gets independent draws.
        rule (InferenceRule | str): the deployed inference rule whose loss is attacked:
            ``"single"`` (default; mean of per-draw losses), ``"mean"`` or ``"vote"`` (loss of
            the mean softmax over the ``eot`` draws).
        seed (int | None): seeds the attack's own randomness (random starts, squares).

    ``box`` (class attribute, or set on an instance): the input domain, ``(0, 1)`` for images;
    ``None`` for unbounded signals such as EEG in microvolts, where ``eps`` is an amplitude
    budget in the data's units and inputs are not range-checked.
    """

    name = "attack"
    white_box = True
    box: tuple[float, float] | None = (0.0, 1.0)
    #: whether the attack works on 2-D images only (its squares or total variation have a height and width)
    needs_images = False

    def __init__(self, model: nn.Module, eps: float | None = None, eot: int = 1,
                 rule: InferenceRule | str = "single", seed: int | None = 0):
        if not isinstance(model, nn.Module):
            raise ConfigError(f"{type(self).__name__} needs an nn.Module, got {type(model).__name__}")
        if eps is not None and not (is_finite_number(eps) and eps >= 0):
            raise ConfigError(f"eps must be a finite number >= 0 (None: no budget), got {eps!r}")
        self.model = model
        self.eps = None if eps is None else float(eps)
        self.eot = check_steps(eot, "eot")
        self.rule = as_rule(rule)
        self.seed = seed
        self._checked_logits = False

    # -- public ---------------------------------------------------------------
    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        before = noise_modes(self.model)
        device = next((p.device for p in self.model.parameters()), getattr(x, "device", torch.device("cpu")))
        # torch.manual_seed reseeds the GPU generators too: the model's GPU stream is restored as the CPU one
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else [], enabled=self.seed is not None):
            if self.seed is not None:
                torch.manual_seed(self.seed)
            x, y = self.validate(x, y)
            x_adv = self.forward(x, y)
        if noise_modes(self.model) != before:  # pragma: no cover - a bug in an attack
            raise RuntimeError(f"{type(self).__name__} changed the model's noise setting")
        return x_adv.detach()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    # -- validation -------------------------------------------------------------
    def validate(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not torch.is_tensor(x) or not torch.is_tensor(y):
            raise ConfigError("images and labels must be torch tensors")
        if x.dim() < 2 or y.dim() != 1 or x.shape[0] != y.shape[0]:
            raise ConfigError(
                f"labels must be a vector with one entry per image: got images {tuple(x.shape)}, labels {tuple(y.shape)}"
            )
        if self.needs_images and x.dim() != 4:
            raise ConfigError(f"{type(self).__name__} works on images (batch, channels, height, width); "
                              f"got inputs of shape {tuple(x.shape)}")
        if y.dtype in (torch.float16, torch.float32, torch.float64, torch.bool):
            raise ConfigError(f"labels must be integer class indices, got dtype {y.dtype}")
        if x.numel() and not torch.isfinite(x).all():
            raise ConfigError("inputs hold NaN or inf")
        if x.numel() and self.box is not None and (x.min() < self.box[0] - 1e-6 or x.max() > self.box[1] + 1e-6):
            raise ConfigError(
                f"images must lie in [0, 1] (got min {x.min().item():.3g}, max {x.max().item():.3g}); rescale them first"
            )
        device = next((p.device for p in self.model.parameters()), x.device)
        # float32, or float64 for a model in double precision (a float32 input would not run through it)
        double = any(p.dtype == torch.float64 for p in self.model.parameters())
        x = clamp_box(x.detach().to(device, torch.float64 if double else torch.float32), self.box)
        y = y.detach().to(device).long()
        if not self._checked_logits and len(x):  # an empty batch tells nothing: the first real one is checked
            with torch.no_grad():
                out = self.model(x[:8])
            if out.dim() != 2 or out.shape[0] != min(8, x.shape[0]):
                raise ConfigError(f"the model must return logits of shape (B, K); got {tuple(out.shape)}")
            if y.numel() and (y.min() < 0 or y.max() >= out.shape[1]):
                raise ConfigError(f"labels must lie in 0..{out.shape[1] - 1}, got {y.min().item()}..{y.max().item()}")
            if (out >= 0).all() and torch.allclose(out.sum(1), torch.ones_like(out[:, 0]), atol=1e-3):
                warnings.warn(
                    "the model's outputs are non-negative and sum to 1: it seems to return probabilities, "
                    "but attacks expect logits (remove the final softmax)",
                    stacklevel=3,
                )
            self._checked_logits = True
        if self.eot > 1:
            declare_randomness(self.model, x)
        return x, y

    # -- EOT loss -----------------------------------------------------------
    def draws(self, x: torch.Tensor, n: int | None = None) -> torch.Tensor:
        """Logits of ``n`` (default ``eot``) noise draws, ``(n, B, K)``, in one vectorised pass."""
        return forward_draws(self.model, x, n or self.eot)

    def loss_and_grad(self, x: torch.Tensor, y: torch.Tensor, loss: str = "ce"):
        """Per-example EOT loss on the deployed rule, its input gradient (averaged over
        draws), and the per-example fooled fraction of these draws."""
        x = x.detach().requires_grad_(True)
        # the single-draw loss is a mean over draws, so draws can be taken in chunks that fit
        # the CPU cache (measured faster than one huge batch); mean/vote losses need all at once
        chunk = self.eot if self.rule.rule != "single" else max(1, min(self.eot, MAX_ROWS // max(1, x.shape[0])))
        losses, fooled, grad = [], [], torch.zeros_like(x)
        done = 0
        while done < self.eot:
            n = min(chunk, self.eot - done)
            with torch.enable_grad():
                draws = self.draws(x, n)
                per_example = rule_loss(draws, y, self.rule, loss)
                require_input_gradient(self.model, per_example)
                g, = torch.autograd.grad(per_example.sum() * (n / self.eot), x)
            grad += g
            losses.append(per_example.detach() * n)
            fooled.append(fooled_fraction(draws.detach(), y, self.rule) * n)
            done += n
        return sum(losses) / self.eot, grad.detach(), sum(fooled) / self.eot

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor, loss: str = "ce") -> tuple[torch.Tensor, torch.Tensor]:
        draws = self.draws(x)
        return rule_loss(draws, y, self.rule, loss), fooled_fraction(draws, y, self.rule)

    def __repr__(self) -> str:
        skip = {"model", "surrogate", "attack"}
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k not in skip and not k.startswith("_"))
        return f"{type(self).__name__}({args})"


def require_input_gradient(model, loss: torch.Tensor) -> None:
    """A one-line refusal when ``loss`` (computed from inputs that require a gradient) carries
    none: the model computes without autograd (a plasticity network, a forward under
    ``torch.no_grad``), so white-box attacks cannot run on it; black-box ones can."""
    if not loss.requires_grad:
        raise ConfigError(f"{type(model).__name__} gives no gradient with respect to its input (its "
                          f"forward runs without autograd): gradient attacks, which the robustness protocol "
                          f"(evaluate) needs, cannot run on it; only black-box ones (square, random) can")


class BestTracker:
    """Per example, keep the iterate the rule gets wrong most often; ties go to the higher loss."""

    def __init__(self, x: torch.Tensor):
        self.x = x.clone()
        self.fooled = torch.full((x.shape[0],), -1.0, dtype=x.dtype, device=x.device)
        self.loss = torch.full((x.shape[0],), -float("inf"), dtype=x.dtype, device=x.device)

    def update(self, x: torch.Tensor, loss: torch.Tensor, fooled: torch.Tensor) -> None:
        better = (fooled > self.fooled) | ((fooled == self.fooled) & (loss > self.loss))
        self.x[better] = x[better]
        self.fooled = torch.where(better, fooled, self.fooled)
        self.loss = torch.where(better, loss, self.loss)


def check_norm(norm: str) -> str:
    if norm not in NORMS:
        raise ConfigError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
    return norm


def check_steps(steps: int, name: str = "steps") -> int:
    """``steps`` as an int >= 1; a whole number of another type (``np.int64(2)``, ``2.0``) counts."""
    if not is_real_number(steps) or not math.isfinite(steps) or steps < 1 or steps != int(steps):
        raise ConfigError(f"{name} must be an integer >= 1, got {steps!r}")
    return int(steps)


def check_positive(value: float, name: str) -> float:
    if not (is_finite_number(value) and value > 0):
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_fraction(value: float, name: str, zero_allowed: bool = False) -> float:
    """``value`` as a float in ``(0, 1]`` (``[0, 1]`` with ``zero_allowed``), else a ConfigError."""
    interval = "[0, 1]" if zero_allowed else "(0, 1]"
    # comparisons written so NaN fails them
    if not is_real_number(value) or not (0 <= value <= 1 if zero_allowed else 0 < value <= 1):
        raise ConfigError(f"{name} must be a fraction in {interval}, got {value!r}")
    return float(value)
