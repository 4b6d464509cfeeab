"""The evaluation protocol for stochastic defenses: an eps sweep with white-box (APGD-CE +
APGD-DLR with EOT), black-box (Square with an EOT loss), transfer (from the noise-off twin)
and random-noise attacks, the per-example worst case, a repeated final check and sanity
checks (Athalye et al. 2018; Carlini et al. 2019; Croce & Hein 2020).

``evaluate_robustness(model, images, labels, RobustnessConfig(...))`` returns a
:class:`~neuroaikit.attacks.RobustnessResult`; ``evaluate_run(run_dir)`` does the same
for a run folder and writes it to ``results/robustness.json``.
"""

from __future__ import annotations

import math
import time
from functools import partial
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping, TypeVar

import torch
from torch import nn

from ..execution import Execution, ExecutionConfig, evaluation_mode, model_device, require_float32
from ..progress import Progress, default_progress, silent
from ..config import NON_NEGATIVE, POSITIVE_INT, AppliesOnly, Config, Interval, Options, Satisfies, is_finite_number
from ..errors import ConfigError, NeuroAIKitError
from ..noise import RULES, InferenceRule, forward_draws, is_stochastic
from .apgd import APGD
from .base import NORMS, as_rule, fooled_fraction, noise_modes, noise_twin, require_input_gradient, rule_loss
from .random_noise import RandomNoise
from .randomness import detect_randomness
from .results import (BETTER_THAN_CHANCE, CHANCE_ALPHA, AdversarialExamples, DeployedRule, RobustnessResult,
                      SanityCheck, SweepRow, chance_level_test)
from .square import Square
from .transfer import Transfer

WHITE_BOX = ("apgd-ce", "apgd-dlr")
OTHER = ("square", "transfer", "random")
#: ``make(model, eps=, eot=, rule=, seed=) -> attack``, ``attack(x, y) -> x_adv``: a user's own attack
AttackFactory = Callable[..., Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]
#: how far past the budget or the [0, 1] box an attack's output may lie (float rounding)
BUDGET_SLACK = 1e-5
MNIST_LIKE_EPS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
CIFAR_EPS = (1 / 255, 2 / 255, 4 / 255, 8 / 255, 16 / 255, 32 / 255)
MNIST_LIKE_L2 = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
CIFAR_L2 = (0.125, 0.25, 0.5, 1.0, 2.0)
#: why attacks run in float32 only: a reduced-precision forward pass rounds the small logit and
#: gradient differences the attacks follow, which masks gradients and over-rates robustness
ATTACKS_NEED_FLOAT32 = "attacks in reduced precision can mask gradients and over-rate robustness"

_C = TypeVar("_C", bound=Config)


def _ascending_eps(value) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) > 0
            and all(is_finite_number(e) and e >= 0 for e in value))


@dataclass
class RobustnessConfig(Config):
    """Settings of the protocol; the defaults are AutoAttack's ``rand`` version.

    Args:
        eps (list of float | None): the sweep (ascending). ``None``: Linf 0.05 ... 0.5 for
            1-channel images, 1/255 ... 32/255 for colour images (L2: 0.5 ... 4 and
            0.125 ... 2). The sweep is extended by doubling (Linf: up to 1) until the
            worst-case accuracy reaches chance.
        reference_eps (float | None): where the sanity checks run and the headline figure is
            read. ``None``: Linf 0.3 for 1-channel images, 8/255 otherwise (L2: 2.0 and 0.5).
        norm (str): ``"Linf"`` (Square is Linf only, so it is skipped for ``"L2"``).
        n_examples (int): the first N test images. Default 200.
        steps (int): APGD iterations. Default 100.
        eot (int): noise draws per gradient. Default 20.
        square_queries (int): Square queries per example. Default 1000.
        random_trials (int): random-noise perturbations per example. Default 100.
        checks (int): fresh evaluations of the deployed rule in the final check: clean accuracy is
            the fraction it gets right in a strict majority; an example is robust only if it is
            right in a majority on the clean image and on every attack's output, and, for a
            one-draw rule on a stochastic model, in one more pass on the clean image and on each
            white-box output (AutoAttack rand's verdict). Default 10 (>= 10 for a claim).
        rule, n_draws: the deployed inference rule (``None``: from the run, else ``"single"``;
            ``n_draws`` ``None``: the run's, whatever the rule, else 20).
        tolerance (float): the accuracy change the sanity checks tolerate. Default 0.03.
        batch_size (int): examples attacked together. Default 100.
        seed (int): seeds attacks and noise draws. Default 0.
        max_extensions (int): how often the sweep may be extended towards chance.
    """

    eps: list | None = None
    reference_eps: float | None = None
    norm: str = "Linf"
    n_examples: int = 200
    steps: int = 100
    eot: int = 20
    square_queries: int = 1000
    random_trials: int = 100
    checks: int = 10
    rule: str | None = None
    n_draws: int | None = None
    tolerance: float = 0.03
    batch_size: int = 100
    seed: int = 0
    max_extensions: int = 3

    _parameter_constraints: ClassVar[dict] = {
        "eps": [Satisfies(_ascending_eps, "a non-empty list of numbers >= 0"), None],
        "reference_eps": [NON_NEGATIVE, None],
        "norm": [Options(NORMS)],
        "n_examples": [POSITIVE_INT],
        "steps": [POSITIVE_INT],
        "eot": [POSITIVE_INT],
        "square_queries": [POSITIVE_INT],
        "random_trials": [POSITIVE_INT],
        "checks": [POSITIVE_INT],
        "rule": [Options(RULES), None],
        "n_draws": [POSITIVE_INT, None],
        "tolerance": [Interval(float, 0, 1)],
        "batch_size": [POSITIVE_INT],
        "seed": [Interval(int, 0, None)],
        "max_extensions": [Interval(int, 0, None)],
    }

    # refused where typed (``neuroaikit evaluate``); quick() and sweeps set them for every norm
    _applies_only: ClassVar[tuple[AppliesOnly, ...]] = (
        AppliesOnly(("square_queries",), lambda c: c.norm == "Linf",
                    "applies only with {norm} Linf (the Square attack is run for Linf only)", ("norm",)),
        AppliesOnly(("n_draws",), lambda c: c.rule != "single",
                    "applies only to a {rule} that draws several times (single, given or the run's own, draws once)",
                    ("rule",)),
    )

    @classmethod
    def quick(cls, **overrides) -> "RobustnessConfig":
        """A short run for a first look (not for a claim): 32 examples, 20 steps, EOT 5."""
        values: dict[str, Any] = dict(n_examples=32, steps=20, eot=5, square_queries=100, random_trials=20)
        values.update(overrides)
        return cls(**values)

    def _check(self) -> None:
        if self.eps is not None:
            self.eps = sorted({float(e) for e in self.eps})
        beyond = [e for e in (self.eps or []) + ([self.reference_eps] if self.reference_eps is not None else []) if e > 1]
        if self.norm == "Linf" and beyond:
            raise ConfigError(f"eps {beyond[-1]:g} is beyond the images' [0, 1] range in Linf: every image can be "
                              "replaced by any other; give budgets <= 1")


# -- the repeated final check --------------------------------------------------
@torch.no_grad()
def majority_correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, rule: InferenceRule, checks: int,
                     max_rows: int = 4096) -> torch.Tensor:
    """Per example: is the deployed rule right in a strict majority of ``checks`` fresh
    evaluations (each with its own ``rule.n_draws`` draws)? Deterministic models need one."""
    if not is_stochastic(model):
        checks = 1
    per_eval = rule.n_draws
    step = max(1, max_rows // (per_eval * checks))
    out = []
    for start in range(0, x.shape[0], step):
        xb, yb = x[start : start + step], y[start : start + step]
        draws = forward_draws(model, xb, per_eval * checks)  # (checks * N, b, K)
        draws = draws.view(checks, per_eval, *draws.shape[1:])
        wrong = torch.stack([fooled_fraction(d, yb, rule) if rule.rule != "single" else
                             (d[0].argmax(-1) != yb).float() for d in draws])
        out.append((1 - wrong).sum(0) > checks / 2)
    return torch.cat(out)


def _batched(attack, x, y, batch_size):
    return torch.cat([attack(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def _check_extra_attacks(extra_attacks: Mapping[str, AttackFactory] | None) -> dict[str, AttackFactory]:
    extra = dict(extra_attacks or {})
    for name, make in extra.items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"extra_attacks: a name must be a non-empty string, got {name!r}")
        if name in WHITE_BOX + OTHER:
            raise ConfigError(f"extra_attacks: {name!r} is one of the protocol's own attacks; give yours another name")
        if not callable(make):
            raise ConfigError(f"extra_attacks[{name!r}] must be a callable make(model, eps=, eot=, rule=, seed=), "
                              f"got {type(make).__name__}")
    return extra


def import_attack(spec: str) -> AttackFactory:
    """The attack factory ``spec`` names: ``package.module:Name`` (importable) or
    ``path/to/file.py:Name``; for ``neuroaikit evaluate --attack NAME=SPEC``."""
    import importlib
    import importlib.util
    from pathlib import Path

    module_name, _, attr = str(spec).rpartition(":")
    if not module_name or not attr:
        raise ConfigError(f"attack {spec!r}: expected MODULE:NAME or FILE.py:NAME")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise ConfigError(f"attack {spec!r}: no file {path}")
            loader_spec = importlib.util.spec_from_file_location(f"neuroaikit_user_attack_{path.stem}", path)
            if loader_spec is None or loader_spec.loader is None:  # never for a .py file: its loader is by suffix
                raise ConfigError(f"attack {spec!r}: cannot load {path} as a Python module")
            module = importlib.util.module_from_spec(loader_spec)
            loader_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to import the user's code is one line
        raise ConfigError(f"attack {spec!r}: cannot import {module_name} ({type(exc).__name__}: {exc})") from None
    make = getattr(module, attr, None)
    if not callable(make):
        raise ConfigError(f"attack {spec!r}: {module_name} has no callable {attr!r}")
    return make


def _user_code(name: str, call, *args, **kwargs):
    """``call(*args, **kwargs)`` of a user's attack, its failure one line that names the attack
    (the user's code, not a bug of the toolkit)."""
    try:
        return call(*args, **kwargs)
    except (NeuroAIKitError, KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the user's attack raises
        lines = str(exc).strip().splitlines()
        raise ConfigError(f"extra attack {name!r} failed: {type(exc).__name__}: {lines[0][:200] if lines else ''}") from exc


def _check_within_budget(name: str, x: torch.Tensor, x_adv, eps: float, norm: str, ex: Execution | None) -> None:
    """A user's attack must return images of the same shape, inside the eps ball and [0, 1]:
    an attack with other conventions (another norm, [0, 255] images) would distort the figures.
    Under ``torchrun`` the excesses are summed over the processes, so all of them stop together."""
    wrong_shape = not (isinstance(x_adv, torch.Tensor) and x_adv.shape == x.shape)
    beyond_eps = outside_box = 0.0
    if not wrong_shape and len(x):
        delta = (x_adv - x).flatten(1)
        size = delta.abs().amax(1) if norm == "Linf" else delta.norm(dim=1)
        beyond_eps = float((size - eps - BUDGET_SLACK).clamp_min(0).max())
        outside_box = float((-x_adv - BUDGET_SLACK).clamp_min(0).max() + (x_adv - 1 - BUDGET_SLACK).clamp_min(0).max())
    found = [float(wrong_shape), beyond_eps, outside_box]
    if ex is not None and ex.distributed:
        found = ex.all_sum(found)
    if found[0]:
        raise ConfigError(f"extra attack {name!r} returned something other than images of shape {tuple(x.shape)}")
    if found[1]:
        raise ConfigError(f"extra attack {name!r} perturbed an image beyond eps {eps:.4g} ({norm}) by {found[1]:.4g}")
    if found[2]:
        raise ConfigError(f"extra attack {name!r} returned pixels outside [0, 1] (by {found[2]:.4g})")


@torch.no_grad()
def _one_pass_correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, max_rows: int = 4096) -> torch.Tensor:
    """Per example: is one fresh draw of the model right?"""
    return torch.cat([model(x[i : i + max_rows]).argmax(1) for i in range(0, len(x), max_rows)]) == y


@torch.no_grad()
def _batched_predictions(model, x, batch_size):
    return torch.cat([model(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


class SeededDraw(nn.Module):
    """One fixed draw of randomness the toolkit does not own (noise in a model's own forward):
    every forward pass reseeds torch's generator, so a batch of a given shape always gets the
    same draw. The frozen-noise check needs it for models without noise layers."""

    def __init__(self, model: nn.Module, seed: int):
        super().__init__()
        self.model = model
        self.seed = seed

    def forward(self, x):
        devices = [x.device] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed)
            return self.model(x)


def _default_eps(channels: int, norm: str) -> tuple[list[float], float]:
    if norm == "L2":
        return (list(MNIST_LIKE_L2), 2.0) if channels == 1 else (list(CIFAR_L2), 0.5)
    return (list(MNIST_LIKE_EPS), 0.3) if channels == 1 else (list(CIFAR_EPS), 8 / 255)


def _status(ok: bool) -> str:
    return "pass" if ok else "warn"


def _global_mean(ex: Execution | None, mask: torch.Tensor) -> float:
    """The fraction of true entries over every process's examples (an exact ratio of counts)."""
    counts = [float(mask.sum()), float(mask.numel())]
    total, count = ex.all_sum(counts) if ex is not None and ex.distributed else counts
    return total / max(count, 1.0)


def evaluate_robustness(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                        config: RobustnessConfig | None = None, progress: Progress | None = None,
                        execution: Execution | None = None,
                        extra_attacks: Mapping[str, AttackFactory] | None = None) -> RobustnessResult:
    """Run the protocol on ``model`` (logits, images ``(N, C, H, W)`` in [0, 1], labels ``(N,)``).

    Returns a :class:`~neuroaikit.attacks.RobustnessResult`: clean accuracy (repeated
    check, same rule), the sweep (per eps: accuracy per attack and the per-example worst case),
    the robust accuracy at the reference eps, the sanity checks (pass/warn; the first says
    whether the model is better than chance at all) and a few adversarial examples.

    With an ``execution`` of several processes (``torchrun``), each process attacks an equal
    share of the examples (so there must be at least as many as processes) and every figure is
    computed over all of them (the attacks are per-example, so the result is the one-process
    result up to the random draws); the stored examples are the first images, as with one process.

    ``extra_attacks`` adds your own attacks to every eps of the sweep: ``{name: make}``, where
    ``make(model, eps=, eot=, rule=, seed=)`` returns ``attack(x, y) -> x_adv`` (any
    :class:`~neuroaikit.attacks.Attack` subclass is such a ``make``). Their examples count in
    the per-example worst case as the protocol's own do (white-box ones, the default, also by one
    pass for a single-draw rule); an output beyond eps in the configured norm or outside [0, 1] is
    a one-line error rather than a figure.
    """
    config = config or RobustnessConfig()
    extra = _check_extra_attacks(extra_attacks)
    if execution is not None:
        require_float32(execution.config, "robustness evaluation", ATTACKS_NEED_FLOAT32)
    progress = progress or silent()
    log = progress.message
    if images.dim() != 4 or images.shape[0] != labels.shape[0]:
        raise ConfigError(f"need images (N, C, H, W) and one label each; got {tuple(images.shape)} and {tuple(labels.shape)}")
    started = time.time()
    modes_before = noise_modes(model)
    ex = execution
    # one process keeps the configured seed (results comparable with earlier runs); several draw
    # independent streams, so no two examples share noise draws or random starts
    torch.manual_seed(config.seed if ex is None or not ex.distributed else ex.process_seed(config.seed))
    device = model_device(model)
    progress.note_if_fewer(config.n_examples, images.shape[0], "images to attack")
    n = min(config.n_examples, images.shape[0])
    x, y = images[:n], labels[:n]
    if ex is not None and ex.distributed:
        ex.require_shares(n, "n_examples")
        x, y = ex.shard(x), ex.shard(y)
    x = x.float().to(device)
    y = y.long().to(device)
    mean = partial(_global_mean, ex)
    rule = as_rule(config.rule or "single", config.n_draws)
    tol = config.tolerance
    eps_list, reference = _default_eps(x.shape[1], config.norm)
    if config.eps is not None:
        eps_list = list(config.eps)
    reference = config.reference_eps if config.reference_eps is not None else reference
    if reference not in eps_list:
        eps_list = sorted(set(eps_list + [reference]))
    randomness = detect_randomness(model, x)
    stochastic = randomness.stochastic
    log(randomness.describe())
    for warning in randomness.warnings:
        log(f"warning: {warning}")
    # in eval mode, then as the user left it: batch norm in training mode takes no batch of one (nor learns from it)
    # the protocol's white-box attacks need an input gradient: refused here, before the clean pass
    # costs anything, in the one pass that reads the class count (another would shift every later noise draw)
    with torch.enable_grad(), evaluation_mode(model):
        logits = model(x[:1].clone().requires_grad_(True))
        require_input_gradient(model, logits.sum())
        n_classes = logits.shape[1]
    del logits
    chance = 1.0 / n_classes
    twin = noise_twin(model, "off")
    common: dict[str, Any] = dict(eot=config.eot if stochastic else 1, rule=rule, seed=config.seed)

    clean_majority = majority_correct(model, x, y, rule, config.checks)
    # A single-draw rule answers each query with one draw. AutoAttack's rand version judges the clean
    # image and every white-box output by one pass and keeps an image broken once any pass was wrong;
    # the robust verdicts add the same passes, so the protocol is never more lenient than AutoAttack
    # rand at the same budget. (A strict majority alone rates an image the attack fools in 40% of
    # draws robust.) The clean figure stays the majority: the extra pass would understate it.
    single_pass = stochastic and rule.rule == "single"
    clean_ok = clean_majority & _one_pass_correct(model, x, y) if single_pass else clean_majority
    clean_accuracy = mean(clean_majority)
    with torch.no_grad():
        one_pass = mean(rule.predict(model, x) == y)
    log(f"clean accuracy ({rule.rule}, {rule.n_draws} draws, majority of {config.checks}): {clean_accuracy:.4f}")
    learned, _ = chance_level_test(clean_accuracy, chance, n, tol)
    if not learned:
        log(f"warning: clean accuracy {clean_accuracy:.4f} is not clearly above chance ({chance:.4f}); "
            "the robustness figures and checks of this model mean nothing")

    def attacks_for(eps: float) -> dict:
        found = {
            "apgd-ce": APGD(model, eps=eps, steps=config.steps, norm=config.norm, loss="ce", **common),
            "apgd-dlr": APGD(model, eps=eps, steps=config.steps, norm=config.norm, loss="dlr", **common),
            "transfer": Transfer(model, twin, attack=APGD, eps=eps, steps=config.steps, norm=config.norm, seed=config.seed),
            "random": RandomNoise(model, eps=eps, trials=config.random_trials, norm=config.norm, **common),
        }
        if config.norm == "Linf":
            found["square"] = Square(model, eps=eps, n_queries=config.square_queries, **common)
        for name, make in extra.items():
            found[name] = _user_code(name, make, model, eps=eps, **common)
        return found

    def judge(x_adv: torch.Tensor, white_box: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Per example, the robust verdict on ``x_adv`` and its majority part alone: every figure
        compared with another must come from the same verdict."""
        held = clean_ok & majority_correct(model, x_adv, y, rule, config.checks)
        return (held & _one_pass_correct(model, x_adv, y) if single_pass and white_box else held), held

    sweep: list[SweepRow] = []
    adversarial: dict[str, torch.Tensor] = {}
    queue = list(eps_list)
    extensions = 0
    while queue:
        eps = queue.pop(0)
        t0 = time.time()
        accuracies: dict[str, float] = {}
        robust_all = clean_ok.clone()
        eps_masks, majority_masks = {}, {}
        attacks = attacks_for(eps)
        with progress.task(f"eps {eps:.4g}", total=len(attacks), unit="attacks") as task:
            for name, attack in attacks.items():
                x_adv = (_user_code(name, _batched, attack, x, y, config.batch_size) if name in extra
                         else _batched(attack, x, y, config.batch_size))
                if name in extra:
                    if isinstance(x_adv, torch.Tensor):
                        # an attack written with NumPy hands back CPU images, in float64
                        x_adv = x_adv.to(x.device, x.dtype)
                    _check_within_budget(name, x, x_adv, eps, config.norm, ex)
                white_box = name in WHITE_BOX or (name in extra and getattr(attack, "white_box", True))
                ok, majority_masks[name] = judge(x_adv, white_box)
                eps_masks[name] = ok
                accuracies[name] = mean(ok)
                robust_all &= ok
                if eps == reference:
                    adversarial[name] = x_adv
                task.update(**{name: accuracies[name]})  # shown beside the count, keyed by attack
        # the other attacks get no one-pass verdict, so the white box is judged by the majority alone here too
        white = majority_masks["apgd-ce"] & majority_masks["apgd-dlr"]
        others = [majority_masks[k] for k in OTHER if k in majority_masks]
        row = SweepRow(eps=eps, attacks=accuracies, worst_case=mean(robust_all),
                       black_box_only_successes=max(mean(white & ~m) for m in others),
                       seconds=round(time.time() - t0, 2))
        sweep.append(row)
        log(f"eps {eps:.4g}: worst case {row.worst_case:.4f} "
            + " ".join(f"{k} {v:.3f}" for k, v in row.attacks.items()) + f" ({row.seconds} s)")
        ceiling = 1.0 if config.norm == "Linf" else math.sqrt(x[0].numel())
        if not queue and row.worst_case > chance + tol and eps < ceiling and extensions < config.max_extensions:
            queue.append(min(ceiling, 2 * eps if eps > 0 else 0.1))
            extensions += 1

    ref_row = next(r for r in sweep if r.eps == reference)
    checks = [_chance_check(clean_accuracy, chance, n, tol)]
    checks += _sanity_checks(model, x, y, rule, config, sweep, ref_row, reference, chance, stochastic, common, clean_ok,
                             learned, mean, judge, randomness.own_randomness)
    if noise_modes(model) != modes_before:  # pragma: no cover - would be a bug
        raise RuntimeError("the evaluation changed the model's noise setting")
    return RobustnessResult(
        randomness=randomness,
        rule=DeployedRule(rule=rule.rule, n_draws=rule.n_draws),
        threat_model=f"{config.norm}, white box with EOT over the model's noise",
        extra_attacks={name: f"{getattr(make, '__module__', '?')}.{getattr(make, '__qualname__', type(make).__name__)}"
                       for name, make in extra.items()} or None,
        stochastic=stochastic,
        n_examples=n,
        n_classes=n_classes,
        chance=chance,
        config=config.to_dict(),
        clean_accuracy=clean_accuracy,
        clean_accuracy_one_pass=one_pass,
        sweep=sweep,
        reference_eps=reference,
        robust_accuracy=ref_row.worst_case,
        robust_accuracy_per_attack=dict(ref_row.attacks),
        checks=checks,
        examples=_examples(model, x, y, adversarial, rule, ex),
        seconds=round(time.time() - started, 1),
    )


def _chance_check(clean_accuracy: float, chance: float, n: int, tol: float) -> SanityCheck:
    # without this gate an untrained model "falls to chance" at every eps and passes the checks below
    learned, p_value = chance_level_test(clean_accuracy, chance, n, tol)
    return SanityCheck(
        name=BETTER_THAN_CHANCE,
        status=_status(learned),
        numbers={"clean_accuracy": clean_accuracy, "chance": chance, "margin": 2 * tol, "n_examples": n,
                 "p_value": p_value},
        detail=f"clean accuracy {clean_accuracy:.3f} on {n} images against chance {chance:.3f}: needs more than "
               f"chance + {2 * tol:.3g} and a one-sided binomial p-value below {CHANCE_ALPHA} (p = {p_value:.2g})"
               + ("" if learned else "; the model has not learned the task, so the other checks mean nothing"),
    )


def _sanity_checks(model, x, y, rule, config, sweep, ref_row, reference, chance, stochastic, common, clean_ok,
                   learned: bool, mean, judge, own_randomness: bool = False) -> list[SanityCheck]:
    tol = config.tolerance
    checks = []
    worst = [r.worst_case for r in sweep]
    rises = [b - a for a, b in zip(worst, worst[1:])]
    falls = worst[-1] <= chance + tol
    monotone = max(rises, default=0.0) <= tol
    # a model at chance is "at chance" before any attack: that is no evidence the attacks work
    checks.append(SanityCheck(
        name="accuracy falls to chance at large eps",
        status=_status(falls and monotone and learned),
        numbers={"eps": sweep[-1].eps, "worst_case": worst[-1], "chance": chance, "largest_rise": max(rises, default=0.0)},
        detail=f"worst case {worst[-1]:.3f} at eps {sweep[-1].eps:.3g} (chance {chance:.3f}); largest rise "
               f"between consecutive eps {max(rises, default=0.0):.3f} (tolerance {tol})"
               + ("" if learned else "; the clean accuracy is already at chance, so the fall shows nothing"),
    ))

    ce_ref = ref_row.attacks["apgd-ce"]
    more_steps = APGD(model, eps=reference, steps=2 * config.steps, norm=config.norm, loss="ce", **common)
    # judged as the reference figure was: a laxer verdict would hide an attack that has not converged
    acc_steps = mean(judge(_batched(more_steps, x, y, config.batch_size))[0])
    checks.append(SanityCheck(
        name="more iterations do not lower accuracy",
        status=_status(ce_ref - acc_steps <= tol),
        numbers={"steps": config.steps, "accuracy": ce_ref, "steps_doubled": 2 * config.steps, "accuracy_doubled": acc_steps},
        detail=f"APGD-CE at eps {reference:.3g}: {ce_ref:.3f} with {config.steps} steps, {acc_steps:.3f} with "
               f"{2 * config.steps} (tolerance {tol})",
    ))
    if stochastic:
        more_eot = APGD(model, eps=reference, steps=config.steps, norm=config.norm, loss="ce", eot=2 * common["eot"],
                        rule=rule, seed=config.seed + 1)
        acc_eot = mean(judge(_batched(more_eot, x, y, config.batch_size))[0])
        checks.append(SanityCheck(
            name="more EOT samples do not lower accuracy",
            status=_status(ce_ref - acc_eot <= tol),
            numbers={"eot": common["eot"], "accuracy": ce_ref, "eot_doubled": 2 * common["eot"], "accuracy_doubled": acc_eot},
            detail=f"APGD-CE at eps {reference:.3g}: {ce_ref:.3f} with EOT {common['eot']}, {acc_eot:.3f} with "
                   f"EOT {2 * common['eot']} (tolerance {tol})",
        ))
        frozen = noise_twin(model, "frozen")
        if own_randomness:
            frozen = SeededDraw(frozen, config.seed)
        frozen_attack = APGD(frozen, eps=reference, steps=config.steps, norm=config.norm, loss="ce", seed=config.seed)
        x_frozen = _batched(frozen_attack, x, y, config.batch_size)
        # in the attack's batches: a seeded draw of the model's own randomness depends on the batch
        frozen_clean = _batched_predictions(frozen, x, config.batch_size) == y
        acc_frozen = mean(frozen_clean & (_batched_predictions(frozen, x_frozen, config.batch_size) == y))
        checks.append(SanityCheck(
            name="attack succeeds with the noise frozen to one draw",
            status=_status(acc_frozen <= ref_row.worst_case + tol),
            numbers={"frozen_accuracy": acc_frozen, "stochastic_worst_case": ref_row.worst_case,
                     "frozen_clean": mean(frozen_clean)},
            detail=f"APGD-CE at eps {reference:.3g} on one frozen draw: {acc_frozen:.3f}; worst case with the noise "
                   f"on: {ref_row.worst_case:.3f}. If the noise-on figure is much higher, the randomness carries "
                   f"the robustness: check the EOT convergence rows",
        ))
    gaps = [r.black_box_only_successes for r in sweep]
    checks.append(SanityCheck(
        name="black box, transfer and random noise are not stronger than white box per example",
        status=_status(max(gaps) <= tol),
        numbers={"largest_fraction": max(gaps), "eps": sweep[gaps.index(max(gaps))].eps},
        detail=f"largest fraction of examples that survive APGD-CE and APGD-DLR but fall to another attack: "
               f"{max(gaps):.3f} (tolerance {tol}); more flags gradient masking",
    ))
    xg = x[clean_ok] if clean_ok.any() else x
    yg = y[clean_ok] if clean_ok.any() else y
    xg = xg.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        draws = forward_draws(model, xg, common["eot"])
        grad, = torch.autograd.grad(rule_loss(draws, yg, rule, "ce").sum(), xg)
    finite = mean(~torch.isfinite(grad).all().reshape(1)) == 0.0
    nonzero = mean(grad.flatten(1).abs().sum(1) > 0)
    checks.append(SanityCheck(
        name="input gradients are finite and non-zero",
        status=_status(finite and nonzero >= 0.95),
        numbers={"finite": finite, "fraction_nonzero": nonzero},
        detail=f"EOT gradient of the CE loss at the clean images: finite {finite}, non-zero for {nonzero:.3f} "
               f"of correctly classified examples (need >= 0.95)",
    ))
    return checks


def _examples(model, x, y, adversarial, rule, ex: Execution | None = None,
              count: int = 6) -> AdversarialExamples | None:
    """The first ``count`` examples and their APGD-CE images at the reference eps; under
    ``torchrun`` gathered from the processes' shares (in rank order, so the first images of the
    whole set), the same examples one process stores."""
    if not adversarial:
        return None
    name = "apgd-ce"
    x_adv = adversarial[name][:count]
    with torch.no_grad():
        clean_pred = rule.predict(model, x[:count]).tolist()
        adv_pred = rule.predict(model, x_adv).tolist()
    mine = {
        "labels": y[:count].tolist(),
        "clean_prediction": clean_pred,
        "adversarial_prediction": adv_pred,
        "clean": x[:count].mul(255).round().to(torch.uint8).tolist(),
        "adversarial": x_adv.mul(255).round().to(torch.uint8).tolist(),
    }
    if ex is not None and ex.distributed:
        shares = ex.gather(mine)
        mine = {key: [item for share in shares for item in share[key]][:count] for key in mine}
    return AdversarialExamples(attack=name, **mine)


def with_deployed_rule(config: _C, trained: dict) -> _C:
    """``config`` (any config with ``rule`` and ``n_draws``) completed from the trained run's
    ``config.json`` values ``trained``: the run's rule where ``config`` names none, and the run's
    draws where ``config`` gives none, whatever the rule (``--rule vote`` keeps the run's N, not
    20). The one resolution that ``evaluate`` and the sweep steps share."""
    settings: Any = config  # RobustnessConfig or a sweep step's config, both with rule and n_draws
    if settings.rule is None:
        config = config.replace(rule=trained.get("eval_rule", "single"))
    if settings.n_draws is None and trained.get("eval_draws") is not None:
        config = config.replace(n_draws=trained["eval_draws"])
    return config


def evaluate_run(run_dir, data_dir=None, config: RobustnessConfig | None = None, split: str = "test",
                 overwrite: bool = False, execution: ExecutionConfig | None = None,
                 progress: Progress | None = None,
                 extra_attacks: Mapping[str, AttackFactory] | None = None) -> RobustnessResult:
    """Evaluate the model of a run folder on its dataset's test split and write
    ``results/robustness.json`` (atomically; an existing one is replaced only with
    ``overwrite``). ``data_dir`` defaults to the run's; ``extra_attacks`` as in
    :func:`evaluate_robustness`."""
    from ..data import load_dataset
    from ..runs import Run

    require_float32(execution, "robustness evaluation", ATTACKS_NEED_FLOAT32)
    _check_extra_attacks(extra_attacks)
    progress = default_progress(progress)
    run = Run.open(run_dir)
    run.check_result_writable(RobustnessResult.result_name, overwrite)
    train_config = run.config
    dataset = run.model_dataset()
    config = with_deployed_rule(config or RobustnessConfig(), train_config)
    data = load_dataset(dataset, split=split, data_dir=data_dir or train_config.get("data_dir"))
    with Execution(execution) as ex:
        progress.for_rank(ex.rank)
        model = run.load_model(map_location=ex.device)
        result = evaluate_robustness(model, data.images, data.labels, config, progress=progress, execution=ex,
                                     extra_attacks=extra_attacks)
        result.execution = ex.describe()
    result.dataset = dataset
    result.split = split
    if not ex.is_main:
        return result
    result.save(run)
    run.log(f"evaluate: robust accuracy {result.robust_accuracy:.4f} at eps {result.reference_eps:.4g} "
            f"(clean {result.clean_accuracy:.4f}, {result.rule.rule} rule)"
            + ("" if result.better_than_chance else "; WARNING: the model is not better than chance"))
    return result
