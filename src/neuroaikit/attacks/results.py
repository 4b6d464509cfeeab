"""Typed result of the robustness protocol (``results/robustness.json``).

:func:`~neuroaikit.attacks.evaluate_robustness` returns a :class:`RobustnessResult`;
``to_dict()`` keeps the JSON layout the protocol has always written, so run folders evaluated
before these types existed keep loading (``RobustnessResult.load(run)``). The report section and
the ``evaluate`` command read these attributes, never literal JSON keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ..results import Result
from .randomness import RandomnessCheck

if TYPE_CHECKING:  # evaluate.py imports this module; the config is only needed lazily
    from .evaluate import RobustnessConfig

#: name of the sanity check that gates every other one (see :func:`chance_level_test`)
BETTER_THAN_CHANCE = "the model is better than chance"
#: one-sided binomial p-value above which clean accuracy is not evidence of learning
CHANCE_ALPHA = 0.01
#: the documentation page that explains each sanity check: ``docs/protocol/<page>.md``
PROTOCOL_PAGES = {
    BETTER_THAN_CHANCE: "better-than-chance",
    "accuracy falls to chance at large eps": "falls-to-chance",
    "more iterations do not lower accuracy": "more-iterations",
    "more EOT samples do not lower accuracy": "more-eot-samples",
    "attack succeeds with the noise frozen to one draw": "frozen-noise",
    "black box, transfer and random noise are not stronger than white box per example": "black-box-not-stronger",
    "input gradients are finite and non-zero": "finite-gradients",
}


def protocol_page(check_name: str) -> str:
    """Where the documentation explains the sanity check ``check_name`` (a path in the repository,
    built into the site by ``make docs``); the protocol's overview for an unknown name."""
    return f"docs/protocol/{PROTOCOL_PAGES.get(check_name, 'index')}.md"


def binomial_tail(n: int, k: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed in log space (no overflow for large n)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q
             for i in range(k, n + 1)]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def chance_level_test(accuracy: float, chance: float, n_examples: int, tolerance: float) -> tuple[bool, float]:
    """Is a clean accuracy evidence that the model learned the task?

    Returns ``(better, p_value)``: ``better`` needs the accuracy above ``chance + 2 * tolerance``
    (the margin the protocol's checks need to see a fall to chance) and a one-sided binomial
    test against chance on ``n_examples`` images with p < :data:`CHANCE_ALPHA`.
    """
    correct = int(round(accuracy * n_examples))
    p_value = binomial_tail(n_examples, correct, chance)
    return accuracy > chance + 2 * tolerance and p_value < CHANCE_ALPHA, p_value


@dataclass
class DeployedRule(Result):
    """The inference rule under attack: ``"single"`` (one draw), ``"mean"`` or ``"vote"`` of ``n_draws``."""

    rule: str
    n_draws: int


@dataclass
class SweepRow(Result):
    """One eps of the sweep.

    Attributes:
        eps: the perturbation budget (in the norm of the threat model).
        attacks: accuracy under each attack (fraction of the evaluated images, majority of fresh draws;
            white-box attacks on a stochastic one-draw model also need one more right pass).
        worst_case: fraction robust to every attack at once (per example).
        black_box_only_successes: largest fraction of images that survive both APGD losses but
            fall to a black-box, transfer or random-noise attack, every side judged by the majority
            of fresh draws alone (gradient masking if large).
        seconds: time spent on this eps.
    """

    eps: float
    attacks: dict[str, float]
    worst_case: float
    black_box_only_successes: float
    seconds: float = 0.0


@dataclass
class SanityCheck(Result):
    """One check of the protocol: ``status`` is ``"pass"`` or ``"warn"``; ``numbers`` are the
    figures it compared, ``detail`` says them in words."""

    name: str
    status: str
    numbers: dict[str, Any] = field(default_factory=dict)
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    @property
    def page(self) -> str:
        """The documentation page that explains this check (see ``protocol_page``)."""
        return protocol_page(self.name)


@dataclass
class AdversarialExamples(Result):
    """A few images at the reference eps: uint8 pixel lists ``(N, C, H, W)`` and the deployed rule's predictions."""

    attack: str
    labels: list[int]
    clean_prediction: list[int]
    adversarial_prediction: list[int]
    clean: list
    adversarial: list


@dataclass
class RobustnessResult(Result):
    """``results/robustness.json``: what :func:`~neuroaikit.attacks.evaluate_robustness` found.

    Attributes:
        rule: the deployed inference rule.
        threat_model: in words (norm, white box with EOT).
        stochastic: whether repeated forward passes differ (noise layers on, or randomness of
            the model's own, found by :func:`~neuroaikit.attacks.detect_randomness`).
        n_examples, n_classes, chance: images evaluated, classes, 1 / classes.
        config: the :class:`~neuroaikit.attacks.RobustnessConfig` as a dict (see :attr:`protocol`).
        clean_accuracy: the fraction of images the deployed rule gets right in a strict majority
            of the final check's fresh evaluations.
        clean_accuracy_one_pass: the same rule, one evaluation.
        sweep: one :class:`SweepRow` per eps, ascending (extended towards chance).
        reference_eps: where the headline figure is read and the checks run.
        robust_accuracy: the per-example worst case at ``reference_eps``.
        robust_accuracy_per_attack: each attack's accuracy at ``reference_eps``.
        checks: the sanity checks.
        examples: adversarial examples at ``reference_eps`` (``None``: none kept).
        seconds: wall time of the protocol.
        dataset, split, execution: set by :func:`~neuroaikit.attacks.evaluate_run`.
        randomness: how the model was found random or not (``None`` in results written before
            the protocol ran the model to find out).
        extra_attacks: the user's own attacks beside the protocol's, name -> the callable that
            made them (``module.qualified_name``); ``None``: none.
    """

    result_name: ClassVar[str] = "robustness"
    #: written only when set, so that results of ``evaluate_robustness`` keep their layout
    _OPTIONAL: ClassVar[tuple[str, ...]] = ("dataset", "split", "execution", "randomness", "extra_attacks")

    rule: DeployedRule
    threat_model: str
    stochastic: bool
    n_examples: int
    n_classes: int
    chance: float
    config: dict[str, Any]
    clean_accuracy: float
    clean_accuracy_one_pass: float
    sweep: list[SweepRow]
    reference_eps: float
    robust_accuracy: float
    robust_accuracy_per_attack: dict[str, float]
    checks: list[SanityCheck] = field(default_factory=list)
    examples: AdversarialExamples | None = None
    seconds: float = 0.0
    dataset: str | None = None
    split: str | None = None
    execution: dict[str, Any] | None = None
    randomness: RandomnessCheck | None = None
    extra_attacks: dict[str, str] | None = None

    # -- JSON layout -----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if out["examples"] is None:
            out["examples"] = {}  # the layout has always held an object here
        for name in self._OPTIONAL:
            if out[name] is None:
                del out[name]
        return out

    @classmethod
    def from_dict(cls, values: Any) -> "RobustnessResult":
        if isinstance(values, dict) and values.get("examples") == {}:
            values = {**values, "examples": None}
        return super().from_dict(values)

    # -- reading -------------------------------------------------------------------
    @property
    def protocol(self) -> "RobustnessConfig":
        """``config`` as a :class:`~neuroaikit.attacks.RobustnessConfig` (keys it does not know are dropped)."""
        from .evaluate import RobustnessConfig

        known = set(RobustnessConfig.field_names())
        return RobustnessConfig.from_dict({k: v for k, v in self.config.items() if k in known}, where="robustness config")

    @property
    def norm(self) -> str:
        return self.config.get("norm", "Linf")

    @property
    def tolerance(self) -> float:
        return self.config.get("tolerance", 0.03)

    @property
    def attack_names(self) -> list[str]:
        return list(self.sweep[0].attacks) if self.sweep else []

    @property
    def reference_row(self) -> SweepRow | None:
        return next((row for row in self.sweep if row.eps == self.reference_eps), None)

    def check(self, name: str) -> SanityCheck | None:
        return next((c for c in self.checks if c.name == name), None)

    @property
    def warnings(self) -> list[SanityCheck]:
        return [c for c in self.checks if not c.passed]

    @property
    def better_than_chance(self) -> bool:
        """Whether the clean accuracy shows the model learned the task (recomputed, so results
        written before the check existed are judged too). When it is ``False`` the robust
        accuracy and the other checks say nothing about robustness."""
        stored = self.check(BETTER_THAN_CHANCE)
        if stored is not None:
            return stored.passed
        return chance_level_test(self.clean_accuracy, self.chance, self.n_examples, self.tolerance)[0]

    def chance_warning(self) -> str | None:
        """One line to show loudly when the model is not better than chance, else ``None``."""
        if self.better_than_chance:
            return None
        return (f"clean accuracy {self.clean_accuracy:.3f} on {self.n_examples} images is not clearly above chance "
                f"({self.chance:.3f}): the model has not learned the task, so the robust accuracy and the sanity "
                f"checks say nothing about robustness (see {protocol_page(BETTER_THAN_CHANCE)})")
