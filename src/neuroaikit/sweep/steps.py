"""Follow-up steps a sweep runs on each finished trial (see :data:`neuroaikit.sweep.STEPS`).

Each is ``step(run_dir, config, overwrite=, execution=, progress=)``: it refuses to replace its
result unless ``overwrite`` (before computing), computes on the trial's device and threads (so a
trial gives the same bits on every backend) in float32 whatever precision the trial trained in,
as ``neuroaikit evaluate`` / ``align`` do on any run, and writes ``results/<name>.json``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from ..config import NON_NEGATIVE, POSITIVE, POSITIVE_INT, Config, Interval, Options
from ..errors import ConfigError
from ..execution import Execution, ExecutionConfig, derive_seed
from ..attacks.evaluate import with_deployed_rule
from ..noise import RULES
from ..results import Result


def in_float32(execution: ExecutionConfig) -> ExecutionConfig:
    """The trial's execution as the steps compute on it: its device and threads in float32. A
    trial's precision says how it trained; attacks, and the features alignment reads, need float32
    (a bf16-trained model is evaluated in float32, as ``neuroaikit evaluate`` evaluates it)."""
    return execution.replace(precision="32")


def _config_changes(stored: dict, config: Config) -> list[tuple[str, Any, Any]]:
    from ..runs import config_differences

    old = stored.get("config")
    if not isinstance(old, dict):
        return []
    return config_differences(old, config.to_dict(), ignore=("execution",), read_as=type(config))


# -- evaluate: the full robustness protocol ----------------------------------------------------


def evaluate_step(run_dir, config, *, overwrite: bool, execution: ExecutionConfig, progress) -> None:
    """``neuroaikit evaluate`` on the trial (:func:`neuroaikit.attacks.evaluate_run`), in float32."""
    from ..attacks.evaluate import evaluate_run

    evaluate_run(run_dir, config=config, overwrite=overwrite, execution=in_float32(execution), progress=progress)


def evaluate_changes(config, stored: dict, run) -> list[tuple[str, Any, Any]]:
    """The settings of ``config`` (a :class:`~neuroaikit.attacks.RobustnessConfig`,
    rule resolved from the run) that differ from those ``results/robustness.json`` records."""
    return _config_changes(stored, with_deployed_rule(config, run.config))


# -- eot-pgd: a quick adaptive white-box check -----------------------------------------------


@dataclass
class EotPgdConfig(Config):
    """A quick adaptive white-box check: Linf EOT-PGD on the loss of the deployed rule.

    Args:
        eps (float): the Linf budget (images in [0, 1]). Default 0.1.
        alpha (float): step size. Default 0.01.
        steps (int): PGD iterations. Default 20.
        eot (int): noise draws averaged per gradient. Default 10.
        n_images (int): the first N images of the split. Default 100.
        rule (str | None): the deployed inference rule (``None``: the run's ``eval_rule``).
        n_draws (int | None): the rule's noise draws (``None``: the run's ``eval_draws``).
        split (str): ``"test"`` or ``"train"``.
        seed (int): seeds the random start and the noise draws. Default 0.
    """

    eps: float = 0.1
    alpha: float = 0.01
    steps: int = 20
    eot: int = 10
    n_images: int = 100
    rule: str | None = None
    n_draws: int | None = None
    split: str = "test"
    seed: int = 0

    _parameter_constraints: ClassVar[dict] = {
        "eps": [NON_NEGATIVE],
        "alpha": [POSITIVE],
        "steps": [POSITIVE_INT],
        "eot": [POSITIVE_INT],
        "n_images": [POSITIVE_INT],
        "rule": [Options(RULES), None],
        "n_draws": [POSITIVE_INT, None],
        "split": [Options(("test", "train"))],
        "seed": [Interval(int, 0, None)],
    }


@dataclass
class EotPgdResult(Result):
    """``results/eot_pgd.json``: accuracy of the deployed rule on clean and EOT-PGD images.

    Attributes:
        robust_accuracy: the rule's accuracy on the adversarial images (one fresh evaluation).
        clean_accuracy: the rule's accuracy on the same clean images.
        config: the :class:`EotPgdConfig` it ran with, rule and draws resolved.
        dataset, split, n_images: what was attacked.
        execution: what it ran on.
    """

    result_name: ClassVar[str] = "eot_pgd"

    robust_accuracy: float
    clean_accuracy: float
    config: dict
    dataset: str = ""
    split: str = "test"
    n_images: int = 0
    execution: dict = field(default_factory=dict)

    @property
    def attack(self) -> str:
        c = self.config
        return (f"Linf EOT-PGD, eps {c.get('eps')}, {c.get('steps')} steps of {c.get('alpha')}, "
                f"gradients over {c.get('eot')} noise draws of the {c.get('rule')} rule ({c.get('n_draws')} draws)")


def eot_pgd(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, config: EotPgdConfig,
            device: torch.device | str = "cpu") -> tuple[float, float]:
    """``(clean, robust)`` accuracy of ``config.rule`` on ``images`` ``(N, C, H, W)`` in [0, 1]
    and on their EOT-PGD versions (gradients through the noise, loss of the rule's scores)."""
    from ..attacks import PGD
    from ..noise import NOISE_STREAM, InferenceRule, seed_noise

    model = model.to(device)
    x, y = images.to(device), labels.to(device)
    rule = InferenceRule(config.rule or "single", config.n_draws or 1)
    seed_noise(model, derive_seed(config.seed, NOISE_STREAM))
    attack = PGD(model, eps=config.eps, alpha=config.alpha, steps=config.steps, eot=config.eot, rule=rule,
                 seed=config.seed)
    x_adv = attack(x, y)
    with torch.no_grad():
        seed_noise(model, config.seed + 1)
        clean = (rule.predict(model, x) == y).float().mean().item()
        robust = (rule.predict(model, x_adv) == y).float().mean().item()
    return clean, robust


def resolve_eot_pgd(config: EotPgdConfig, trained: dict) -> EotPgdConfig:
    """``config`` as the step runs and records it on a run trained with ``trained``: the rule
    and its draws from the run when not given (one draw when neither says)."""
    config = with_deployed_rule(config, trained)
    return config if config.n_draws is not None else config.replace(n_draws=1)


def eot_pgd_changes(config: EotPgdConfig, stored: dict, run) -> list[tuple[str, Any, Any]]:
    """The settings of ``config`` that differ from those ``results/eot_pgd.json`` records."""
    return _config_changes(stored, resolve_eot_pgd(config, run.config))


def eot_pgd_step(run_dir, config: EotPgdConfig, *, overwrite: bool, execution: ExecutionConfig, progress) -> None:
    """The quick EOT-PGD check on a trained run, in float32; writes ``results/eot_pgd.json``."""
    from ..data import load_dataset
    from ..runs import Run

    run = Run.open(run_dir)
    run.check_result_writable(EotPgdResult.result_name, overwrite)
    trained = run.config
    dataset = trained.get("dataset")
    if not dataset:
        raise ConfigError(f"{run.path / 'config.json'} does not say which dataset the model was trained on")
    config = resolve_eot_pgd(config, trained)
    data = load_dataset(dataset, config.split, data_dir=trained.get("data_dir")).subset(config.n_images)
    with Execution(in_float32(execution)) as ex:
        model = run.load_model(map_location=ex.device)
        clean, robust = eot_pgd(model, data.images, data.labels, config, ex.device)
        described = ex.describe()
    result = EotPgdResult(robust_accuracy=robust, clean_accuracy=clean, config=config.to_dict(), dataset=dataset,
                          split=config.split, n_images=len(data.labels), execution=described)
    result.save(run)
    run.log(f"eot-pgd: {result.attack}: accuracy {clean:.4f} clean, {robust:.4f} attacked ({len(data.labels)} images)")


# -- align: the layer-by-layer alignment profile ------------------------------------------------


@dataclass
class AlignStep:
    """The ``align`` step's settings: the neural data and an
    :class:`~neuroaikit.alignment.AlignmentConfig` (built from the other keys)."""

    neural: str
    config: Any
    execution_given: bool


def build_align(values: dict, where: str) -> AlignStep:
    from ..alignment import AlignmentConfig

    values = dict(values or {})
    neural = values.pop("neural", None)
    if not isinstance(neural, str) or not neural:
        raise ConfigError(f"{where}.neural is required: the neural data file or folder to align to")
    if not os.path.exists(neural):  # found now, not after the trial has trained
        raise ConfigError(f"{where}.neural: {neural}: no such file or folder")
    return AlignStep(neural=neural, config=AlignmentConfig.from_dict(values, where=where),
                     execution_given="execution" in values)


def _align_config(step: AlignStep, execution: ExecutionConfig):
    """The alignment settings the step runs with: the trial's device and threads in float32 unless
    the step gives its own execution (building them refuses a precision alignment cannot use)."""
    return step.config if step.execution_given else step.config.replace(execution=in_float32(execution))


#: the jobs whose runs name the image dataset their model was trained on (what evaluate and eot-pgd attack)
IMAGE_DATASET_JOBS = ("train",)
#: the jobs whose runs record their model's input size (what align resizes the stimuli to)
INPUT_SIZE_JOBS = ("train", "continual")


def image_dataset_job_check(job: str, config: Any) -> None:
    """Refuse an attack step on a job whose runs name no image dataset to attack."""
    if job not in IMAGE_DATASET_JOBS:
        raise ConfigError(f"attacks a model on the image dataset it was trained on, which a {job} run does not "
                          f"name; it follows {' or '.join(IMAGE_DATASET_JOBS)} jobs")


def align_job_check(job: str, step: AlignStep) -> None:
    """Refuse an align step on a job whose runs do not record their model's input size, unless
    the step gives it (``input_shape``)."""
    if job not in INPUT_SIZE_JOBS and step.config.input_shape is None:
        raise ConfigError(f"a {job} run does not record its model's input size: give input_shape "
                          f"([channels, height, width]) in the step")


def align_check(step: AlignStep, execution: ExecutionConfig) -> None:
    """Refuse, before any trial trains, an execution that :func:`align_step` would refuse."""
    _align_config(step, execution)


def align_step(run_dir, step: AlignStep, *, overwrite: bool, execution: ExecutionConfig, progress) -> None:
    """``neuroaikit align`` on the trial (:func:`neuroaikit.alignment.align_run`)."""
    from ..alignment import align_run

    align_run(run_dir, step.neural, config=_align_config(step, execution), overwrite=overwrite, progress=progress)


def align_changes(step: AlignStep, stored: dict, run) -> list[tuple[str, Any, Any]]:
    """The settings of ``step`` that differ from those ``results/alignment.json`` records
    (execution aside). The result stores them in its own form: the neural data as its source,
    the layers and input shape as profiled (defaults resolved from the run's model), the
    Antolik region in the data's name (``antolik2016-region2``)."""
    import re

    from ..alignment.features import default_layers
    from ..alignment.profile import full_input_shape, model_input_shape

    c = step.config
    settings = stored.get("settings") or {}
    neural = stored.get("neural") or {}
    input_shape = full_input_shape(c.input_shape or model_input_shape(run.model_spec, run.config))
    region = re.search(r"-region([123])$", str(neural.get("name", "")))
    pairs = {
        "neural": (neural.get("source"), str(step.neural)),
        "region": (int(region.group(1)) if region else None, (c.region or 1) if region else c.region),
        "layers": ([e.get("layer") for e in stored.get("layers") or []],
                   list(c.layers) if c.layers else default_layers(run.load_model())),
        "input_shape": (settings.get("input_shape"), input_shape),
        "rdm_method": (settings.get("rdm"), c.rdm_method),
        "level": (settings.get("ci_level"), c.level),
        # results written before the setting existed read their NaN trials as "raise" did
        "nan_policy": (settings.get("nan_policy", "raise"), c.nan_policy),
    }
    for name in ("noise", "compare", "cka_kernel", "cka_debiased", "mapping", "n_folds", "convention", "n_boot",
                 "n_splits", "seed"):
        pairs[name] = (settings.get(name), getattr(c, name))
    return [(name, old, now) for name, (old, now) in pairs.items() if old != now]
