"""What a sweep runs: the spec (a YAML or JSON file), its jobs and steps, and its trials.

A spec names one job per trial (``train``, ``twin-fit`` or ``continual``), the job's ``base`` settings, a
``grid`` of dotted settings to vary (the cartesian product of its lists) and/or an explicit
list of ``trials``, optional follow-up ``steps`` run on every finished trial (``evaluate``,
``eot-pgd``, ``align``) and which figures the ``summary`` tabulates and plots::

    job: train
    base: {dataset: digits, model: cnn, epochs: 5, noise_warmup: 1.0, eval_draws: 21}
    grid:
      noise.relu1.sigma: [0.1, 0.5, 1.0]
      seed: [0, 1]
    steps:
      eot-pgd: {eps: 0.1}
    summary:
      metrics: [test_accuracy, "eot_pgd:robust_accuracy"]
      x: noise.relu1.sigma

:func:`expand_trials` turns a spec into :class:`Trial` objects, building (so validating)
every trial's configuration first: a bad key or value is a one-line error naming the trial.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..config import (
    BOOL,
    MAPPING,
    NON_NEGATIVE,
    POSITIVE_INT,
    STRING,
    Config,
    InstanceOf,
    Options,
    Satisfies,
)
from ..errors import ConfigError, NeuroAIKitError

# -- jobs ----------------------------------------------------------------------------------


def _import(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class JobKind:
    """A workflow that creates one run folder per trial.

    Attributes:
        name: what specs call it.
        config: ``"module:Class"`` of its configuration.
        runner: ``"module:function"`` called as ``runner(config, out, resume=, overwrite=, progress=) -> Run``.
        execution: the path of its :class:`~neuroaikit.execution.ExecutionConfig` in the config.
        metrics: the summary's default figures (paths into ``metrics.json``).
        check: ``"module:function"`` called as ``check(config)`` before the sweep creates
            anything: it raises a one-line error for what the config alone cannot show (missing
            data files, a model that cannot be built) without reading the data.
        results: the ``results/<name>.json`` files its runs hold (what ``RESULT:path`` summary
            metrics may read besides the steps' results).
    """

    name: str
    config: str
    runner: str
    execution: tuple[str, ...]
    metrics: tuple[str, ...]
    check: str | None = None
    results: tuple[str, ...] = ()

    def config_class(self) -> type[Config]:
        return _import(self.config)

    def run(self, config: Config, out, *, resume: bool, overwrite: bool, progress):
        return _import(self.runner)(config, out, resume=resume, overwrite=overwrite, progress=progress)

    def check_config(self, config: Config) -> None:
        if self.check is not None:
            _import(self.check)(config)

    def execution_of(self, config: Config):
        value = config
        for part in self.execution:
            value = getattr(value, part)
        return value


JOBS: dict[str, JobKind] = {
    "train": JobKind("train", "neuroaikit.training:TrainConfig", "neuroaikit.training:train", ("execution",),
                     ("test_accuracy", "train_time_s"), "neuroaikit.training.loop:check_train_config"),
    "twin-fit": JobKind("twin-fit", "neuroaikit.neural.twin:TwinFitJob", "neuroaikit.neural.twin:fit_run",
                        ("fit", "execution"),
                        ("twin_single_trial_correlation", "twin_fraction_of_oracle", "fit_seconds"),
                        "neuroaikit.neural.twin:check_fit_job", results=("twin_fit", "twin_eval")),
    "continual": JobKind("continual", "neuroaikit.continual:ContinualConfig", "neuroaikit.continual:run_continual",
                         ("execution",), ("average_accuracy", "forgetting", "backward_transfer", "train_time_s"),
                         "neuroaikit.continual.learner:check_continual_config"),
}

#: settings that say where and how fast a trial computes, not what: a finished trial whose
#: config differs only in these is the same trial (as for ``--resume``)
WHERE_NOT_WHAT = ("execution", "data_dir", "fit.execution")


# -- steps ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepKind:
    """A follow-up computation on a finished trial's run folder, stored as ``results/<result>.json``.

    Attributes:
        name: what specs call it.
        config: ``"module:attr"`` of its settings: a :class:`~neuroaikit.config.Config` class (built with
            ``from_dict``) or a builder ``f(values, where)`` that validates them.
        runner: ``"module:function"`` called as ``runner(run_dir, config, overwrite=, execution=, progress=)``.
        result: the result file it writes.
        metrics: the summary's default figures (``"result:path"``).
        stored_config: the key of the stored result that holds the settings it ran with, or
            ``None``. On rerun every field of the spec's built config, defaults included, is
            compared with it (execution settings aside).
        changes: ``"module:function"`` called as ``changes(config, stored, run)`` with the built
            config, the stored result (a dict) and the trial's :class:`~neuroaikit.runs.Run`:
            the settings that differ, as ``(name, stored, now)``; for a step that resolves
            settings from the run or stores them in another form. Replaces the comparison with
            ``stored_config``.
        check: ``"module:function"`` called as ``check(config, execution)`` with the built config
            and a trial's :class:`~neuroaikit.execution.ExecutionConfig` before the sweep creates
            anything: it raises a one-line error for a trial the step could not run on (a
            precision it refuses), so that it is found before the trials train.
        job_check: ``"module:function"`` called as ``job_check(job, config)`` with the sweep's
            job name and the built config before the sweep creates anything: a one-line error
            when the runs of that job cannot serve the step (no image dataset to attack, no
            recorded input size), rather than every trial failing after it has trained.
    """

    name: str
    config: str
    runner: str
    result: str
    metrics: tuple[str, ...] = ()
    stored_config: str | None = None
    changes: str | None = None
    check: str | None = None
    job_check: str | None = None

    def build(self, values: dict | None, where: str) -> Any:
        maker = _import(self.config)
        if isinstance(maker, type) and issubclass(maker, Config):
            return maker.from_dict(values or {}, where=where)
        return maker(values or {}, where)

    def run(self, run_dir, config, *, overwrite: bool, execution, progress) -> None:
        _import(self.runner)(run_dir, config, overwrite=overwrite, execution=execution, progress=progress)

    def check_execution(self, config: Any, execution) -> None:
        if self.check is not None:
            _import(self.check)(config, execution)

    def check_job(self, job: str, config: Any) -> None:
        if self.job_check is not None:
            _import(self.job_check)(job, config)

    def changed_settings(self, config: Any, stored: Any, run) -> list[tuple[str, Any, Any]]:
        """``(name, stored, now)`` for the settings of ``config`` that differ from those the stored
        result ``stored`` ran with (``[]`` when the step records none)."""
        if not isinstance(stored, dict):
            return []
        if self.changes is not None:
            return list(_import(self.changes)(config, stored, run))
        old = stored.get(self.stored_config) if self.stored_config else None
        if not isinstance(old, dict) or not hasattr(config, "to_dict"):
            return []
        from ..runs import config_differences

        return config_differences(old, config.to_dict(), ignore=("execution",),
                                  read_as=type(config) if isinstance(config, Config) else None)


STEPS: dict[str, StepKind] = {
    "evaluate": StepKind("evaluate", "neuroaikit.attacks.evaluate:RobustnessConfig",
                         "neuroaikit.sweep.steps:evaluate_step", "robustness",
                         ("robustness:clean_accuracy", "robustness:robust_accuracy"), stored_config="config",
                         changes="neuroaikit.sweep.steps:evaluate_changes",
                         job_check="neuroaikit.sweep.steps:image_dataset_job_check"),
    "eot-pgd": StepKind("eot-pgd", "neuroaikit.sweep.steps:EotPgdConfig", "neuroaikit.sweep.steps:eot_pgd_step",
                        "eot_pgd", ("eot_pgd:robust_accuracy",), stored_config="config",
                        changes="neuroaikit.sweep.steps:eot_pgd_changes",
                        job_check="neuroaikit.sweep.steps:image_dataset_job_check"),
    "align": StepKind("align", "neuroaikit.sweep.steps:build_align", "neuroaikit.sweep.steps:align_step",
                      "alignment", changes="neuroaikit.sweep.steps:align_changes",
                      check="neuroaikit.sweep.steps:align_check", job_check="neuroaikit.sweep.steps:align_job_check"),
}


def step_kind(name: str) -> StepKind:
    """A built-in step, or ``"package.module:NAME"``: a :class:`StepKind` defined in an importable module."""
    if name in STEPS:
        return STEPS[name]
    if ":" in name:
        try:
            found = _import(name)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"step {name!r} cannot be imported: {exc}") from None
        if not isinstance(found, StepKind):
            raise ConfigError(f"step {name!r} is a {type(found).__name__}, not a neuroaikit.sweep.StepKind")
        return found
    raise ConfigError(f"unknown step {name!r}; known: {', '.join(STEPS)} (or package.module:NAME of a StepKind)")


# -- the spec ------------------------------------------------------------------------------


def _metric_list(value: Any) -> bool:
    return isinstance(value, list) and len(value) > 0 and all(isinstance(v, str) and v.strip() for v in value)


@dataclass
class SummaryConfig(Config):
    """What the summary shows.

    Args:
        metrics (list of str | None): figures per trial: a dotted path into the trial's
            ``metrics.json`` (``test_accuracy.single``), or ``RESULT:path`` into
            ``results/RESULT.json`` (``eot_pgd:robust_accuracy``); a path that reaches a mapping
            of numbers gives one column per number. ``None``: the job's and the steps' defaults.
        x (str | None): the grid axis or tag on the figure's x axis (``None``: the first grid
            axis whose values are all numbers; no figure if there is none).
        plot (bool): draw the figure (one panel per metric, one line per combination of the
            other varied settings).
    """

    metrics: list | None = None
    x: str | None = None
    plot: bool = True

    _parameter_constraints: ClassVar[dict] = {
        "metrics": [Satisfies(_metric_list, "a non-empty list of metric paths"), None],
        "x": [STRING, None],
        "plot": [BOOL],
    }


def _trial_list(value: Any) -> bool:
    return isinstance(value, list) and len(value) > 0 and all(isinstance(t, dict) for t in value)


@dataclass
class SweepSpec(Config):
    """A sweep (see the module docstring for an example).

    Args:
        job (str): ``"train"``, ``"twin-fit"`` or ``"continual"``: what each trial runs.
        base (dict): the job's settings common to every trial (its config fields; nested
            configs as mappings).
        grid (dict): dotted setting -> list of values; every combination is a trial
            (``noise.relu1.sigma: [0.1, 0.5]``, ``seed: [0, 1]``, ``fit.lr: [0.005, 0.01]``).
        trials (list of dict | None): explicit trials, each a mapping of dotted settings, with
            optional ``name`` (its folder name) and ``tags`` (labels shown in the summary, not
            settings). With a grid too, every explicit trial is combined with every grid point.
            With neither, the sweep is one trial, named ``base`` (the job with its steps).
        steps (dict): follow-up steps on each finished trial, in order: ``evaluate``
            (:class:`~neuroaikit.attacks.RobustnessConfig`), ``eot-pgd``
            (:class:`~neuroaikit.sweep.EotPgdConfig`), ``align`` (alignment settings,
            with ``neural``), mapped to their settings (``{}`` for the defaults).
        summary (SummaryConfig): metrics, x axis, figure.
        cpus_per_trial (int): CPUs Ray reserves per trial; also the trial's torch threads
            unless ``base`` sets them. Default 1.
        gpus_per_trial (float): GPUs Ray reserves per trial (fractions share a GPU). With 0
            (default) trials run on the CPU unless ``base`` sets a device.
        name (str | None): what the report calls the sweep.
    """

    job: str | None = None
    base: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    trials: list | None = None
    steps: dict = field(default_factory=dict)
    summary: SummaryConfig = field(default_factory=SummaryConfig)
    cpus_per_trial: int = 1
    gpus_per_trial: float = 0.0
    name: str | None = None

    _parameter_constraints: ClassVar[dict] = {
        "job": [Options(tuple(JOBS)), None],
        "base": [MAPPING],
        "grid": [MAPPING],
        "trials": [Satisfies(_trial_list, "a non-empty list of mappings (one per trial)"), None],
        "steps": [MAPPING],
        "summary": [InstanceOf(SummaryConfig)],
        "cpus_per_trial": [POSITIVE_INT],
        "gpus_per_trial": [NON_NEGATIVE],
        "name": [STRING, None],
    }

    def _check(self) -> None:
        if self.job is None:
            raise ConfigError(f"job is required: one of {', '.join(JOBS)}")
        known = self.job_kind.config_class().field_names()
        used = _references(self.base) | _references(self.trials or [])
        for key, values in self.grid.items():
            if isinstance(key, str) and key in known and key in used:
                raise ConfigError(f"grid.{key} is a {self.job} setting, so it sets {key} and fills no ${{{key}}}; "
                                  f"rename the axis (e.g. {key}_value) to use it as a placeholder")
            if not (isinstance(key, str) and _VARIABLE.fullmatch(key) and key not in known and key in used):
                _check_key(key, known, self.job, "grid", variable=isinstance(key, str) and "." not in key)
            if not isinstance(values, list):
                raise ConfigError(f"grid.{key} must be a list of values, got {_short(values)}")
            if not values:
                raise ConfigError(f"grid.{key} is an empty list: it would make no trials")
        for i, entry in enumerate(self.trials or []):
            for key in entry:
                if key not in ("name", "tags"):
                    _check_key(key, known, self.job, f"trials[{i}]")
            if "name" in entry and not (isinstance(entry["name"], str) and entry["name"]):
                raise ConfigError(f"trials[{i}].name must be a non-empty string, got {_short(entry['name'])}")
            if "tags" in entry and not isinstance(entry["tags"], dict):
                raise ConfigError(f"trials[{i}].tags must be a mapping of labels, got {_short(entry['tags'])}")
        undefined = sorted(used - set(self.grid))
        if undefined:
            raise ConfigError(f"${{{undefined[0]}}} is used but no grid axis {undefined[0]!r} defines it")
        for name, values in self.steps.items():
            kind = step_kind(name)
            if values is not None and not isinstance(values, dict):
                raise ConfigError(f"steps.{name} must be a mapping of its settings ({{}} for the defaults), "
                                  f"got {_short(values)}")
            try:
                kind.build(values, where=f"steps.{name}")
            except ConfigError as exc:
                text = str(exc)
                raise ConfigError(text if text.startswith(("unknown steps.", f"steps.{name}")) else
                                  f"steps.{name}: {text}") from None
        self._check_metric_sources()

    def _check_metric_sources(self) -> None:
        """A ``RESULT:path`` summary metric reads a result that this sweep's trials hold."""
        written = list(dict.fromkeys([*self.job_kind.results, *(step_kind(n).result for n in self.steps)]))
        for path in self.summary.metrics or []:
            source, sep, _ = path.partition(":")
            if sep and source not in written:
                known = f"RESULT is one of: {', '.join(written)}" if written else "this sweep writes no results"
                raise ConfigError(f"summary.metrics: {path!r} reads results/{source}.json, which neither the "
                                  f"{self.job} job nor a step of this sweep writes; {known} (a path without "
                                  f"RESULT: reads metrics.json)")

    @property
    def job_kind(self) -> JobKind:
        if self.job is None:  # pragma: no cover - _check refuses it
            raise ConfigError(f"job is required: one of {', '.join(JOBS)}")
        return JOBS[self.job]

    @property
    def variables(self) -> list[str]:
        """Grid axes that are not settings but ``${name}`` placeholders."""
        known = self.job_kind.config_class().field_names()
        return [k for k in self.grid if k not in known and "." not in k]


_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _references(value: Any) -> set[str]:
    """The ``${name}`` placeholders in keys and string values of ``value``."""
    if isinstance(value, str):
        return set(_PLACEHOLDER.findall(value))
    if isinstance(value, dict):
        found: set[str] = set()
        for k, v in value.items():
            found |= _references(k) | _references(v)
        return found
    if isinstance(value, list):
        return set().union(*(_references(v) for v in value)) if value else set()
    return set()


def _substitute(value: Any, variables: dict[str, Any]) -> Any:
    """``value`` with each ``${name}`` replaced: a string that is just a placeholder takes the
    variable's value (a number stays a number); inside a longer string it is written out."""
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole:
            return copy.deepcopy(variables[whole.group(1)])
        return _PLACEHOLDER.sub(lambda m: format_value(variables[m.group(1)]), value)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            key = _substitute(k, variables) if isinstance(k, str) else k
            out[key if isinstance(key, str) else format_value(key)] = _substitute(v, variables)
        return out
    if isinstance(value, list):
        return [_substitute(v, variables) for v in value]
    return value


def _check_key(key: Any, known: list[str], job: str, where: str, variable: bool = False) -> None:
    if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"{where}: {key!r} is not a dotted setting name")
    if key.split(".")[0] not in known:
        hint = f" nor a variable used as ${{{key}}} in base or trials" if variable else ""
        raise ConfigError(f"{where}: {key!r} is not a {job} setting{hint}; settings: {', '.join(known)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def load_spec(path) -> SweepSpec:
    """Read a spec file (YAML or JSON); any problem is a one-line error naming the file."""
    from ..config import load_config_file

    values = load_config_file(path)
    try:
        return SweepSpec.from_dict(values, where="sweep spec")
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


# -- trials --------------------------------------------------------------------------------

_SAFE = re.compile(r"[^A-Za-z0-9._=,+@-]")
MAX_NAME = 96


@dataclass
class Trial:
    """One trial: its folder name, what varies, its labels, its built config and its steps."""

    name: str
    params: dict[str, Any]
    tags: dict[str, Any]
    config: Config
    steps: list[tuple[str, Any, dict]] = field(default_factory=list)  # (step name, built config, values given)


def format_value(value: Any) -> str:
    """A setting's value as it appears in a trial name and the summary."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def trial_name(params: dict[str, Any], given: str | None = None) -> str:
    """A deterministic, filesystem-safe folder name: ``given`` and/or ``key=value`` pairs; names
    that need other characters or are long become a readable prefix and a hash of the full name."""
    parts = [given] if given else []
    parts += [f"{k}={format_value(v)}" for k, v in params.items()]
    raw = ",".join(parts) or "base"
    safe = _SAFE.sub("-", raw)
    if safe != raw or len(safe) > MAX_NAME or safe.startswith(".") or safe.endswith((".partial", ".replaced")):
        digest = hashlib.sha1(raw.encode("utf-8")).hexdigest()[:10]
        safe = f"{safe.lstrip('.')[: MAX_NAME - 11]}-{digest}"
    return safe


def _assign(values: dict, dotted: str, value: Any, where: str) -> None:
    parts = dotted.split(".")
    node = values
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            raise ConfigError(f"{where}: cannot set {dotted}: {'.'.join(parts[: i + 1])} is {_short(child)}, "
                              f"not a mapping")
        node = child
    node[parts[-1]] = copy.deepcopy(value)


def _default_execution(values: dict, path: tuple[str, ...], spec: SweepSpec, where: str) -> None:
    """Threads and device set explicitly in every trial, so a trial computes the same bits on
    any backend: threads = cpus_per_trial, device cpu (cuda with gpus_per_trial) unless given."""
    node = values
    for part in path:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            raise ConfigError(f"{where}: {'.'.join(path)} must be a mapping (device, precision, threads)")
        node = child
    if node.get("threads") is None:
        node["threads"] = spec.cpus_per_trial
    if node.get("device") is None:
        node["device"] = "cuda" if spec.gpus_per_trial > 0 else "cpu"


def expand_trials(spec: SweepSpec) -> list[Trial]:
    """Every trial of ``spec``, its config built and validated; errors name the trial."""
    job = spec.job_kind
    cls = job.config_class()
    entries = spec.trials or [{}]
    grid_keys = list(spec.grid)
    points = list(itertools.product(*(spec.grid[k] for k in grid_keys)))
    trials: list[Trial] = []
    seen: dict[str, dict] = {}
    by_settings: dict[str, str] = {}
    for entry in entries:
        given = entry.get("name")
        tags = dict(entry.get("tags") or {})
        fixed = {k: v for k, v in entry.items() if k not in ("name", "tags")}
        for point in points:
            params = {**({} if given else fixed), **dict(zip(grid_keys, point))}
            name = trial_name(params, given)
            where = f"trial {name!r}"
            values = copy.deepcopy(spec.base)
            variables = {k: v for k, v in zip(grid_keys, point) if k in spec.variables}
            for key, value in {**fixed, **dict(zip(grid_keys, point))}.items():
                if key not in variables:
                    _assign(values, key, value, where)
            if variables:
                values = _substitute(values, variables)
            _default_execution(values, job.execution, spec, where)
            try:
                config = cls.from_dict(values, where="config")
            except NeuroAIKitError as exc:
                raise ConfigError(f"{where}: {exc}") from None
            except TypeError as exc:  # a nested value of the wrong shape reaching a constructor
                raise ConfigError(f"{where}: {exc}") from None
            all_params = {**fixed, **dict(zip(grid_keys, point))}
            if name in seen:
                same = seen[name] == config.to_dict()
                raise ConfigError(f"{where} appears twice" + ("" if same else " with different settings (give the "
                                                               "explicit trials distinct names)"))
            seen[name] = config.to_dict()
            key = _canonical(seen[name])
            if key in by_settings:
                raise ConfigError(f"{where} has the same settings as trial {by_settings[key]!r}: they would run "
                                  f"the same job twice (grid values equal but written differently, e.g. 1 and 1.0?)")
            by_settings[key] = name
            steps = []
            for step_name, step_values in spec.steps.items():
                kind = step_kind(step_name)
                steps.append((step_name, kind.build(step_values, where=f"steps.{step_name}"), dict(step_values or {})))
            trials.append(Trial(name=name, params=all_params, tags=tags, config=config, steps=steps))
    _check_summary(spec, trials)
    return trials


def _canonical(values: Any) -> str:
    """A trial's settings as text that is equal exactly when they are: ``1`` and ``1.0`` alike."""
    def plain(value: Any) -> Any:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return json.dumps(plain(values), sort_keys=True, default=str)


def varied_columns(spec: SweepSpec, trials: list[Trial]) -> tuple[list[str], list[str]]:
    """The setting columns (explicit trials' keys, then grid keys) and the tag columns."""
    params = list(dict.fromkeys(k for t in trials for k in t.params))
    tags = list(dict.fromkeys(k for t in trials for k in t.tags))
    return params, tags


def _check_summary(spec: SweepSpec, trials: list[Trial]) -> None:
    params, tags = varied_columns(spec, trials)
    clash = sorted(set(params) & set(tags))
    if clash:
        raise ConfigError(f"tag {clash[0]!r} has the name of a varied setting: the summary needs distinct column "
                          f"names, rename the tag")
    x = spec.summary.x
    if x is None:
        return
    params, tags = varied_columns(spec, trials)
    if x not in params and x not in tags:
        axes = ", ".join(params + tags) or "none"
        raise ConfigError(f"summary.x {x!r} is not a varied setting or tag of this sweep; these are: {axes}")


def default_x(spec: SweepSpec, trials: list[Trial]) -> str | None:
    """``summary.x``, else the first grid axis (or tag) whose values are all numbers and vary."""
    if spec.summary.x is not None:
        return spec.summary.x
    params, tags = varied_columns(spec, trials)
    for key in [k for k in params if k in spec.grid] + tags:
        values = [t.params.get(key, t.tags.get(key)) for t in trials]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) and len(set(values)) > 1:
            return key
    return None


def summary_metrics(spec: SweepSpec) -> list[str]:
    if spec.summary.metrics is not None:
        return list(spec.summary.metrics)
    found = list(spec.job_kind.metrics)
    for name in spec.steps:
        found += list(step_kind(name).metrics)
    return found


def resolve_metric(path: str, metrics: dict, results: Callable[[str], Any]) -> dict[str, Any]:
    """``{column: value}`` for one metric path (see :class:`SummaryConfig`); missing: ``{}``."""
    source, sep, rest = path.partition(":")
    if sep:
        value: Any = results(source)
        keys = [k for k in rest.split(".") if k]
    else:
        value, keys = metrics, [k for k in path.split(".") if k]
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return {}
        value = value[key]
    if isinstance(value, dict):
        return {f"{path}.{k}": v for k, v in value.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return {path: value}
    return {}
