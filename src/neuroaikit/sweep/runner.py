"""Running a sweep: plan (validate everything, create nothing), run the trials on Ray or in
this process, write the summary.

The sweep folder ``OUT`` is a container, not a run that is committed by rename: it must
survive an interruption so that a rerun skips the trials already finished::

    OUT/config.json             the spec
    OUT/trials/<name>/          one normal run folder per trial (train / twin fit lifecycle)
    OUT/summary.json, .csv      one row per trial: its settings, tags, figures, status
    OUT/metrics.json            counts and timing (so ``neuroaikit report OUT`` works)
    OUT/log.txt                 one line per finished trial; tracebacks of internal errors
    OUT/report.html             the summary table and figure

A trial is skipped when ``trials/<name>`` is finished with the same settings (execution and
data_dir aside: they say where it computed, not what); its follow-up steps run if their
results are missing. A step result computed with other settings (every setting compared,
defaults included, execution aside) is an error unless ``overwrite``, which recomputes it.
An interrupted trial (``<name>.partial`` with a checkpoint) is resumed, execution settings
changed or not (its job accepts them on resume). A finished trial that a kill left moved
aside during its replacement (``<name>.replaced``, no ``<name>``) is put back when planning,
as its job would put it back, so it counts as finished.
A finished trial with other settings is an error unless ``overwrite``. A call that replaces
figures the summary shows (a trial replaced or rerun, a step recomputed) removes the summary,
``metrics.json`` and ``report.html`` before it writes the new spec, and writes them again at
the end, so a kill in between never leaves old figures reading as the new spec's. Before anything is
created, every trial to run passes its job's check (:attr:`~neuroaikit.sweep.JobKind.check`)
and has a device that can compute in its precision (``16-mixed`` needs CUDA; on Ray, a trial that
needs CUDA needs ``gpus_per_trial``), and a node of the Ray cluster has its CPUs and GPUs.
Every trial computes with explicit threads and device, so the Ray and the serial backend give
the same bits.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, NeuroAIKitError
from ..execution import refuse_torchrun
from ..io import read_json, write_json, write_text
from ..progress import Progress, default_progress, silent
from ..results import Result
from ..runs import (
    CHECKPOINT,
    Run,
    check_writable_parent,
    config_differences,
    partial_dir,
    recover_interrupted_commit,
)
from .spec import (
    JOBS,
    WHERE_NOT_WHAT,
    SweepSpec,
    Trial,
    default_x,
    expand_trials,
    format_value,
    resolve_metric,
    step_kind,
    summary_metrics,
    varied_columns,
)

BACKENDS = ("ray", "serial")
TRIALS = "trials"


# -- results -------------------------------------------------------------------------------


@dataclass
class TrialRow(Result):
    """One row of the summary.

    Attributes:
        name: the trial's folder under ``OUT/trials``.
        status: ``ran``, ``resumed``, ``replaced``, ``skipped`` (finished before), ``steps``
            (finished before; steps ran now) or ``failed``.
        params, tags: the trial's varied settings and labels.
        metrics: the summary's figures (column -> value); a failed trial shows none from a run or
            step result that an earlier sweep left with other settings.
        seconds: wall time of what ran now (``None`` when skipped).
        error: the one-line error of a failed trial; ``error_kind``: ``user`` or ``internal``.
    """

    name: str
    status: str
    params: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    seconds: float | None = None
    error: str | None = None
    error_kind: str | None = None


@dataclass
class SweepSummary(Result):
    """``OUT/summary.json``: the table of a sweep.

    Attributes:
        name, job, steps: what ran.
        params, tags, metrics: the columns (varied settings, labels, figures).
        x: the figure's x axis (``None``: no figure); plot: draw it.
        rows: one per trial, in the spec's order.
        counts: trials per status; backend, workers: how it ran; time_s: wall time of this call.
    """

    job: str
    rows: list[TrialRow]
    name: str | None = None
    steps: list[str] = field(default_factory=list)
    params: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    x: str | None = None
    plot: bool = True
    counts: dict = field(default_factory=dict)
    backend: str = "serial"
    workers: int | None = None
    time_s: float = 0.0

    @property
    def failed(self) -> list[TrialRow]:
        return [r for r in self.rows if r.status == "failed"]

    def exit_status(self) -> int:
        """0 when every trial finished; 2 when some failed on bad input; 1 on an internal error."""
        if not self.failed:
            return 0
        return 1 if any(r.error_kind == "internal" for r in self.failed) else 2

    @classmethod
    def read(cls, out) -> SweepSummary | None:
        file = Path(out) / "summary.json"
        return cls.from_dict(read_json(file)) if file.is_file() else None


# -- the sweep folder ------------------------------------------------------------------------


def is_sweep_folder(path) -> bool:
    """A folder this module wrote: its ``config.json`` is a sweep spec."""
    file = Path(path) / "config.json"
    if not file.is_file():
        return False
    try:
        values = read_json(file)
    except NeuroAIKitError:
        return False
    return isinstance(values, dict) and {"job", "base", "grid", "steps"} <= set(values)


def check_sweep_folder(out: Path, what: str = "sweep") -> None:
    """``out`` may hold a sweep: it does not exist, is empty, or is a sweep folder."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file; refusing to replace it (choose another output folder)")
    if out.is_dir() and any(out.iterdir()) and not is_sweep_folder(out):
        raise ConfigError(f"{out} exists and is not a {what} folder; refusing to write into it "
                          f"(choose another output folder)")
    check_writable_parent(out)
    if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write in {out}: no permission")


# -- the plan --------------------------------------------------------------------------------


@dataclass
class PlannedTrial:
    """What a sweep does with one trial: ``action`` is ``run``, ``resume``, ``replace`` or
    ``skip`` (the job), ``steps`` the follow-up steps to run (name -> overwrite)."""

    trial: Trial
    action: str
    steps: dict[str, bool]
    overwrite: bool = False
    note: str = ""
    conflict: str | None = None

    @property
    def needs_work(self) -> bool:
        return self.conflict is None and (self.action != "skip" or bool(self.steps))

    def describe(self) -> str:
        if self.conflict:
            return f"conflict: {self.conflict}"
        if self.action == "skip":
            return f"skip ({self.note})" + (f"; steps {', '.join(self.steps)}" if self.steps else "")
        text = self.action + (f" ({self.note})" if self.note else "")
        return text + (f", then {', '.join(self.steps)}" if self.steps else "")


@dataclass
class SweepPlan:
    spec: SweepSpec
    out: Path
    trials: list[PlannedTrial]

    @property
    def conflicts(self) -> list[PlannedTrial]:
        return [p for p in self.trials if p.conflict]

    @property
    def to_run(self) -> list[PlannedTrial]:
        return [p for p in self.trials if p.needs_work]

    def raise_conflicts(self) -> None:
        found = self.conflicts
        if found:
            more = f" (and {len(found) - 1} more trial(s))" if len(found) > 1 else ""
            raise ConfigError(f"trial {found[0].trial.name!r}: {found[0].conflict}{more}")


def _diff_text(diffs) -> str:
    def short(v: Any) -> str:
        text = format_value(v)
        return text if len(text) <= 30 else text[:27] + "..."

    shown = "; ".join(f"{k}: {short(a)} -> {short(b)}" for k, a, b in diffs[:3])
    return shown + (f"; {len(diffs) - 3} more" if len(diffs) > 3 else "")


def _finished(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "metrics.json").is_file()


def _plan_steps(trial: Trial, folder: Path, overwrite: bool) -> tuple[dict[str, bool], str | None]:
    """For a finished trial: the steps whose results are missing (or differ, with overwrite).

    Every setting counts, defaults included: a setting removed from the spec falls back to its
    default, and a result computed with the old value is as stale as after an edited value."""
    steps: dict[str, bool] = {}
    run = Run(folder)
    for name, config, _ in trial.steps:
        kind = step_kind(name)
        stored = run.result(kind.result)
        if stored is None:
            steps[name] = False
            continue
        try:
            diffs = kind.changed_settings(config, stored, run)
        except NeuroAIKitError as exc:
            return steps, f"results/{kind.result}.json cannot be compared with the {name} settings: {exc}"
        if diffs:
            if not overwrite:
                return steps, (f"results/{kind.result}.json was computed with other {name} settings "
                               f"({_diff_text(diffs)}); pass --overwrite to recompute it")
            steps[name] = True
    return steps, None


def _settings_differences(trial: Trial, config_file: Path) -> list:
    """How the settings a run folder's ``config.json`` holds differ from the trial's (a missing
    file holds none); where it computed (execution, data_dir) is not what it computed."""
    old = read_json(config_file) if config_file.is_file() else {}
    return config_differences(old if isinstance(old, dict) else {}, trial.config.to_dict(), ignore=WHERE_NOT_WHAT,
                              read_as=type(trial.config))


def _plan_trial(trial: Trial, root: Path, overwrite: bool, rerun: bool) -> PlannedTrial:
    final = root / TRIALS / trial.name
    work = partial_dir(final)
    all_steps = {name: False for name, _, _ in trial.steps}
    if not final.exists():
        # a kill during a replacement's commit left the previous trial moved aside (NAME.replaced):
        # put it back, as the trial's job would, so the plan sees the finished trial it is
        recover_interrupted_commit(final)
    if final.exists() and not final.is_dir():
        return PlannedTrial(trial, "run", all_steps, conflict=f"{final} is a file; remove it first")
    if final.is_dir() and any(final.iterdir()):
        if not _finished(final):
            return PlannedTrial(trial, "run", all_steps,
                                conflict=f"{final} exists but is not a finished trial (no config.json and "
                                         f"metrics.json); move it away")
        diffs = _settings_differences(trial, final / "config.json")
        if diffs and not (overwrite or rerun):
            return PlannedTrial(trial, "replace", all_steps,
                                conflict=f"{final} finished with other settings ({_diff_text(diffs)}); pass "
                                         f"--overwrite to replace it")
        if diffs or rerun:
            return PlannedTrial(trial, "replace", all_steps, overwrite=True,
                                note="other settings" if diffs else "rerun")
        steps, conflict = _plan_steps(trial, final, overwrite)
        return PlannedTrial(trial, "skip", steps, note="finished", conflict=conflict)
    if work.is_dir() and (work / CHECKPOINT).is_file():
        diffs = _settings_differences(trial, work / "config.json")
        if rerun or (diffs and overwrite):
            return PlannedTrial(trial, "run", all_steps, overwrite=True, note="interrupted job discarded")
        if diffs:
            return PlannedTrial(trial, "resume", all_steps,
                                conflict=f"{work} holds an interrupted job with other settings ({_diff_text(diffs)});"
                                         f" pass --overwrite to discard it")
        return PlannedTrial(trial, "resume", all_steps, note="interrupted")
    return PlannedTrial(trial, "run", all_steps)


def plan_sweep(spec: SweepSpec, out, *, overwrite: bool = False, rerun: bool = False) -> SweepPlan:
    """Validate the spec, every trial's settings and the folders, and decide what each trial
    does; creates nothing. A finished trial that a killed replacement left moved aside
    (``NAME.replaced``) is put back first, as every reader of a run folder does (a dry run too).
    Conflicts are collected (``SweepPlan.raise_conflicts``)."""
    out = Path(out)
    if str(out) in ("", "."):
        raise ConfigError("the sweep folder must be named (--out)")
    check_sweep_folder(out)
    _check_same_job(spec, out, overwrite)
    trials = expand_trials(spec)
    plan = SweepPlan(spec, out, [_plan_trial(t, out, overwrite, rerun) for t in trials])
    _check_trials(spec, [p.trial for p in plan.trials if p.action != "skip"])
    _check_devices(spec, [p.trial for p in plan.trials if p.action != "skip"])
    _check_steps(spec, [p for p in plan.trials if p.needs_work])
    return plan


def _check_same_job(spec: SweepSpec, out: Path, overwrite: bool) -> None:
    """A sweep folder holds one job's trials: another job takes it over only with ``overwrite``."""
    if not is_sweep_folder(out):
        return
    stored = read_json(out / "config.json").get("job")
    if stored != spec.job and not overwrite:
        raise ConfigError(f"{out} holds a sweep of {stored!r} trials, not {spec.job!r}; choose another output "
                          f"folder, or pass --overwrite to make it a {spec.job} sweep")


def _may_use_cuda(device: str, spec: SweepSpec) -> bool:
    """Whether a trial with ``device`` (``cuda``, ``cuda:N`` or ``auto``) can compute on a CUDA
    GPU: with GPUs for the trial (``gpus_per_trial``) or on this machine (the serial backend; on
    Ray, :func:`check_local_gpus` refuses a trial that needs CUDA without ``gpus_per_trial``)."""
    if device != "auto" and not device.startswith("cuda"):
        return False
    import torch

    return spec.gpus_per_trial > 0 or torch.cuda.is_available()


def _needs_cuda(execution) -> str | None:
    """What makes a trial compute only on a CUDA GPU (its device, or precision ``16-mixed``), or ``None``."""
    if execution.device.startswith("cuda"):
        return f"device {execution.device!r}"
    if execution.precision == "16-mixed":
        return "precision '16-mixed'"
    return None


def _check_devices(spec: SweepSpec, trials: list[Trial]) -> None:
    """Refuse a trial whose device is ``cuda`` or whose precision is ``16-mixed`` where it cannot
    get a CUDA GPU, naming it, before anything is created: its job would refuse it
    (:class:`~neuroaikit.execution.Execution`) only once the sweep had created ``OUT`` and
    trained the trials before it."""
    job = spec.job_kind
    for trial in trials:
        execution = job.execution_of(trial.config)
        if execution.device.startswith("cuda") and not _may_use_cuda(execution.device, spec):
            raise ConfigError(f"trial {trial.name!r}: device {execution.device!r} but this machine has no CUDA GPU "
                              f"and gpus_per_trial is 0; set device cpu, or gpus_per_trial for a cluster's GPUs")
        if execution.precision == "16-mixed" and not _may_use_cuda(execution.device, spec):
            # the words Execution.__enter__ refuses it with, so the sweep and the job say the same
            raise ConfigError(f"trial {trial.name!r}: precision '16-mixed' needs a CUDA device (float16 gradients "
                              f"underflow without CUDA's gradient scaler); use bf16-mixed or 32 (the trial "
                              f"computes on {execution.device}"
                              + ("; gpus_per_trial is 0" if spec.gpus_per_trial == 0 else "") + ")")


def _check_steps(spec: SweepSpec, planned: list[PlannedTrial]) -> None:
    """Every step that will run accepts its trial's execution (see
    :attr:`~neuroaikit.sweep.StepKind.check`), so that a bad combination is found before
    the trials train, once per distinct execution."""
    job = spec.job_kind
    checked: set[tuple[str, str]] = set()
    for p in planned:
        execution = job.execution_of(p.trial.config)
        for name, config, _ in p.trial.steps:
            key = (name, json.dumps(execution.to_dict(), sort_keys=True, default=str))
            if name not in p.steps or key in checked:
                continue
            try:
                step_kind(name).check_job(job.name, config)
                step_kind(name).check_execution(config, execution)
            except NeuroAIKitError as exc:
                raise type(exc)(f"trial {p.trial.name!r}: steps.{name}: {exc}") from None
            checked.add(key)


def _check_trials(spec: SweepSpec, trials: list[Trial]) -> None:
    """The job's own checks (data present, model buildable) on every trial that will run,
    once per distinct config: trials differing only in seeds or execution check alike."""
    job = spec.job_kind
    checked: set[str] = set()
    for trial in trials:
        key = json.dumps(_without_seeds(trial.config.to_dict()), sort_keys=True, default=str)
        if key in checked:
            continue
        try:
            job.check_config(trial.config)
        except NeuroAIKitError as exc:
            raise type(exc)(f"trial {trial.name!r}: {exc}") from None
        checked.add(key)


def _without_seeds(values: Any) -> Any:
    if isinstance(values, dict):
        return {k: _without_seeds(v) for k, v in values.items() if k not in ("seed", "execution")}
    return values


# -- one trial (in a Ray worker or in this process) ------------------------------------------


@dataclass
class TrialTask:
    """What a worker needs to run one trial (plain values: it travels to Ray workers)."""

    name: str
    job: str
    config: dict
    out: str
    action: str
    overwrite: bool
    steps: list[tuple[str, dict, bool]]  # (step, values given, overwrite)
    cwd: str = ""


@dataclass
class TrialOutcome:
    name: str
    status: str
    seconds: float
    error: str | None = None
    error_kind: str | None = None
    traceback: str | None = None


_STATUS = {"run": "ran", "resume": "resumed", "replace": "replaced", "skip": "steps"}


def execute_trial(task: TrialTask) -> TrialOutcome:
    """Run one trial's job (unless finished) and its steps; never raises: a failure is an outcome."""
    start = time.perf_counter()
    try:
        if task.cwd and os.path.isdir(task.cwd) and os.getcwd() != task.cwd:
            os.chdir(task.cwd)  # relative data paths in the spec mean what they meant to the driver
        job = JOBS[task.job]
        config = job.config_class().from_dict(task.config, where=f"trial {task.name!r}")
        progress = silent()  # the trial's messages still reach its log.txt
        if task.action != "skip":
            job.run(config, task.out, resume=task.action == "resume", overwrite=task.overwrite, progress=progress)
        execution = job.execution_of(config)
        for name, values, overwrite in task.steps:
            kind = step_kind(name)
            kind.run(task.out, kind.build(values, where=f"steps.{name}"), overwrite=overwrite, execution=execution,
                     progress=progress)
        return TrialOutcome(task.name, _STATUS[task.action], time.perf_counter() - start)
    except NeuroAIKitError as exc:
        text = str(exc).strip().splitlines()
        return TrialOutcome(task.name, "failed", time.perf_counter() - start, error=text[0] if text else type(exc).__name__,
                            error_kind="user")
    except Exception as exc:  # noqa: BLE001 - one trial's bug must not stop the others; reported with its traceback
        text = str(exc).strip().splitlines()
        return TrialOutcome(task.name, "failed", time.perf_counter() - start,
                            error=f"internal error ({type(exc).__name__}: {text[0][:200] if text else ''})",
                            error_kind="internal", traceback=traceback.format_exc())


def _task(planned: PlannedTrial, root: Path, job: str) -> TrialTask:
    return TrialTask(name=planned.trial.name, job=job, config=planned.trial.config.to_dict(),
                     out=str((root / TRIALS / planned.trial.name).absolute()), action=planned.action,
                     overwrite=planned.overwrite,
                     steps=[(name, given, planned.steps[name]) for name, _, given in planned.trial.steps
                            if name in planned.steps],
                     cwd=os.getcwd())


# -- backends ----------------------------------------------------------------------------------


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("backend 'ray' needs Ray (pip install 'neuroaikit[ray]'), or use --backend serial") from None
    return ray


def default_workers(cpus_per_trial: int = 1) -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, cpus // cpus_per_trial)


def _run_serial(tasks: list[TrialTask], on_done) -> None:
    for task in tasks:
        on_done(execute_trial(task))


@contextlib.contextmanager
def ray_session(spec: SweepSpec, workers: int | None, address: str | None):
    """Ray for the trials: the one already initialised in this process, else a quiet local
    instance (``workers`` x ``cpus_per_trial`` CPUs, no dashboard) or a connection to
    ``address``; shut down on exit if started here. A failed connection is a one-line error."""
    import logging

    ray = _import_ray()
    if ray.is_initialized():
        yield ray
        return
    options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False,
                               "configure_logging": True}
    if address:
        check_reachable(address)
    try:
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=(workers or default_workers(spec.cpus_per_trial)) * spec.cpus_per_trial, **options)
    except (ConnectionError, ValueError, RuntimeError, TimeoutError) as exc:
        text = str(exc).strip().splitlines()
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise ConfigError(f"cannot start or reach {where}: {text[0] if text else type(exc).__name__}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Refuse a ``HOST:PORT`` address where nothing listens: Ray itself would retry for minutes,
    printing its connection warnings, before it gave up. ``auto`` and ``ray://`` addresses are
    left to Ray, which refuses them at once when no cluster is there."""
    import socket

    if address == "auto" or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        return  # Ray names the malformed address itself
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot reach the Ray cluster at {address}: "
                          f"{exc.strerror or exc or type(exc).__name__} (is its head node running?)") from None


def _run_ray(ray, tasks: list[TrialTask], on_done, spec: SweepSpec, workers: int | None) -> None:
    remote = ray.remote(execute_trial).options(num_cpus=spec.cpus_per_trial, num_gpus=spec.gpus_per_trial,
                                               max_retries=0)
    limit = workers or len(tasks)  # trials in flight at once (a cluster's resources also decide)
    waiting = list(tasks)
    pending: dict[Any, tuple[TrialTask, float]] = {}  # with its submit time: a dead worker reports no time
    while waiting or pending:
        while waiting and len(pending) < limit:
            task = waiting.pop(0)
            pending[remote.remote(task)] = (task, time.perf_counter())
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            task, submitted = pending.pop(ref)
            try:
                outcome = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - a worker that died (killed, out of memory)
                text = str(exc).strip().splitlines()
                outcome = TrialOutcome(task.name, "failed", time.perf_counter() - submitted,
                                       error=f"the Ray worker failed ({type(exc).__name__}: "
                                             f"{text[0][:200] if text else ''})", error_kind="internal")
            on_done(outcome)


# -- the sweep ---------------------------------------------------------------------------------


def refuse_sweep_under_torchrun(command: str = "sweep") -> None:
    """A sweep (the demo is one) started under ``torchrun`` would run whole in every process, into
    one folder: refused in one line before anything exists."""
    refuse_torchrun(command, "its trials are separate jobs, on Ray or one after the other")


def run_sweep(spec: SweepSpec, out, *, backend: str = "ray", workers: int | None = None, address: str | None = None,
              overwrite: bool = False, rerun: bool = False, progress: Progress | None = None,
              build_html: bool = True) -> SweepSummary:
    """Run every trial of ``spec`` into ``out`` (see the module docstring); returns the summary.

    Args:
        spec: the sweep.
        out: the sweep folder (created; an existing sweep folder is continued).
        backend: ``"ray"`` (a local Ray with ``workers`` CPUs x ``cpus_per_trial``, or the
            cluster at ``address``; an already initialised Ray is used as it is) or ``"serial"``
            (this process, one trial after the other).
        workers: trials at once (default: the CPUs this process may use / ``cpus_per_trial``;
            with ``address``: no limit but the cluster's).
        address: an existing Ray cluster (``"auto"`` or ``"HOST:PORT"``); ``out`` and the
            trials' data must then be on a file system every node sees, and this machine too:
            the checks before the sweep look for the data files here.
        overwrite: replace finished trials (and step results) whose settings differ from the spec.
        rerun: run every trial again (each finished one is replaced once its new run is complete).
        progress: messages (one line per finished trial) and the trials task.
        build_html: write ``OUT/report.html``.

    Failing trials do not stop the others: they are rows with status ``failed`` and an error
    (:meth:`SweepSummary.exit_status`). A bad spec, a bad trial setting, a trial its job's check
    refuses (missing data, a model or noise site that cannot be built), a trial in ``16-mixed``
    on a device without CUDA, a step that refuses a trial's execution, ``gpus_per_trial`` that this machine (serial, a
    local Ray) cannot give, ``cpus_per_trial`` or ``gpus_per_trial`` more than the largest node of the Ray cluster
    has, a trial that needs CUDA (device ``cuda``, ``16-mixed``) on Ray with ``gpus_per_trial`` 0, or a trial that
    would replace another one's results raises a one-line error before anything is created.
    """
    refuse_sweep_under_torchrun()
    check_backend(backend, workers, address)
    progress = default_progress(progress)
    start = time.perf_counter()
    plan = plan_sweep(spec, out, overwrite=overwrite, rerun=rerun)
    plan.raise_conflicts()
    todo = plan.to_run
    use_ray = backend == "ray" and bool(todo)
    check_local_gpus(plan, backend, address)  # cheap, before a local Ray starts; a cluster's nodes are counted below
    with ray_session(spec, workers, address) if use_ray else contextlib.nullcontext() as ray:
        if ray is not None:
            check_ray_resources(spec, ray)
        return _run_plan(plan, ray, backend, workers, address, progress, build_html, start)


def _ray_running() -> bool:
    """Whether this process is already connected to a Ray (which may have GPUs elsewhere)."""
    ray = sys.modules.get("ray")
    return ray is not None and bool(ray.is_initialized())


def check_local_gpus(plan: SweepPlan, backend: str, address: str | None) -> None:
    """Refuse, before the sweep creates anything, GPUs a trial cannot have: on Ray, a trial that
    needs CUDA (device ``cuda``, precision ``16-mixed``) with ``gpus_per_trial`` 0, which Ray
    would start with no GPU reserved, so that every trial in flight computed on the same GPU
    (the serial backend runs one trial at a time on this machine's GPU); and ``gpus_per_trial`` on
    a machine without CUDA when trials would run here (serial or a local Ray): each trial would
    fail, or a local Ray wait forever. A cluster (``address``, or a Ray this process already
    joined) counts its own GPUs (:func:`check_ray_resources`)."""
    spec = plan.spec
    if not plan.to_run:
        return
    if backend == "ray" and spec.gpus_per_trial == 0:
        job = spec.job_kind
        for planned in plan.to_run:  # a finished trial's steps compute on its device too
            needs = _needs_cuda(job.execution_of(planned.trial.config))
            if needs:
                raise ConfigError(f"trial {planned.trial.name!r}: {needs} needs a CUDA GPU but gpus_per_trial is 0, "
                                  f"so Ray would reserve none and run every trial on the same GPU at once; set "
                                  f"gpus_per_trial (0.5 lets two trials share a GPU), or use the serial backend")
    if backend == "ray" and (address or _ray_running()):
        return
    if spec.gpus_per_trial > 0:
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"gpus_per_trial is {format_value(spec.gpus_per_trial)} but this machine has no "
                              f"CUDA GPU; set gpus_per_trial: 0 to run the trials on the CPU")


def check_ray_resources(spec: SweepSpec, ray) -> None:
    """Refuse ``cpus_per_trial`` or ``gpus_per_trial`` that no node of the Ray cluster can give a
    single trial, before the sweep creates anything: Ray would wait for such a node forever, and
    say so only in a log the sweep hides. A trial runs on one node, so each alive node counts on
    its own, not the cluster's sum."""
    need = {"CPU": spec.cpus_per_trial, "GPU": spec.gpus_per_trial}
    nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
    if any(all(node.get(k, 0) >= v for k, v in need.items()) for node in nodes):
        return
    for kind, setting in (("CPU", "cpus_per_trial"), ("GPU", "gpus_per_trial")):
        largest = max((node.get(kind, 0) for node in nodes), default=0)
        shown = format_value(int(largest) if float(largest).is_integer() else largest)  # Ray counts in floats
        if largest < need[kind]:
            raise ConfigError(f"{setting} is {format_value(need[kind])} but the largest node of the Ray cluster has "
                              f"{shown} {kind}(s): no trial could be scheduled; set {setting} to at most {shown}")
    raise ConfigError(f"no node of the Ray cluster has both {format_value(need['CPU'])} CPU(s) and "
                      f"{format_value(need['GPU'])} GPU(s) for a trial (cpus_per_trial, gpus_per_trial): no trial "
                      f"could be scheduled; lower one of them")


def check_backend(backend: str, workers: int | None = None, address: str | None = None) -> None:
    """Refuse, in one line, settings of where trials run that the backend would ignore."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"workers must be an integer >= 1, got {workers!r}")
    if backend != "ray":
        if address:
            raise ConfigError("address needs the ray backend (serial runs in this process)")
        if workers is not None:
            raise ConfigError("workers needs the ray backend (serial runs one trial at a time)")


def _run_plan(plan: SweepPlan, ray, backend: str, workers: int | None, address: str | None, progress: Progress,
              build_html: bool, start: float) -> SweepSummary:
    from ..io import make_dirs

    spec, root, todo = plan.spec, plan.out, plan.to_run
    make_dirs(root / TRIALS)
    _drop_stale_summary(plan)  # before the new spec is written, so a kill never pairs it with old figures
    write_json(root / "config.json", spec)
    log = Run(root).log
    progress.add_sink(log)
    try:
        used = (workers or (None if address else default_workers(spec.cpus_per_trial))) if backend == "ray" else 1
        where = (f"Ray at {address}" if address else f"a local Ray with {used} worker(s)") if backend == "ray" \
            else "this process (serial)"
        skipped = len(plan.trials) - len(todo)
        progress.message(f"sweep {spec.name or ''}{' ' if spec.name else ''}({spec.job}): {len(plan.trials)} trials, "
                         f"{len(todo)} to run" + (f", {skipped} finished before" if skipped else "") +
                         (f"; on {where}" if todo else ""))
        outcomes: dict[str, TrialOutcome] = {}
        counts = {"finished": 0, "failed": 0}
        metrics_paths = summary_metrics(spec)
        with progress.task("trials", total=len(todo), unit="trials") as task:
            def on_done(outcome: TrialOutcome) -> None:
                outcomes[outcome.name] = outcome
                counts["failed" if outcome.status == "failed" else "finished"] += 1
                done = counts["finished"] + counts["failed"]
                if outcome.status == "failed":
                    line = f"[{done}/{len(todo)}] {outcome.name}: FAILED after {outcome.seconds:.1f} s: {outcome.error}"
                else:
                    figures = _trial_metrics(root / TRIALS / outcome.name, metrics_paths)
                    shown = ", ".join(f"{k} {format_value(round(v, 4) if isinstance(v, float) else v)}"
                                      for k, v in list(figures.items())[:4])
                    line = f"[{done}/{len(todo)}] {outcome.name}: {outcome.status} in {outcome.seconds:.1f} s" + \
                           (f" ({shown})" if shown else "")
                progress.message(line)
                if outcome.traceback:
                    log(outcome.traceback.rstrip())
                task.update(1, finished=counts["finished"], skipped=skipped, failed=counts["failed"])

            tasks = [_task(p, root, spec.job_kind.name) for p in todo]
            if ray is not None and tasks:
                _run_ray(ray, tasks, on_done, spec, workers)
            else:
                _run_serial(tasks, on_done)
        summary = _summarise(plan, outcomes, backend, used if todo else None, time.perf_counter() - start)
        for path in metrics_paths if summary.counts.get("failed", 0) < len(summary.rows) else []:
            if not any(c == path or c.startswith(path + ".") for c in summary.metrics):
                progress.message(f"warning: summary metric {path!r} gave no figure for any trial (a misspelt "
                                 f"path? it is read from each trial's metrics.json, or results/RESULT.json for "
                                 f"RESULT:path)")
        write_summary(root, summary)
        if build_html:
            from ..report import build_report

            build_report(root)
        c = summary.counts
        progress.message(f"sweep finished in {summary.time_s:.1f} s: " + ", ".join(f"{v} {k}" for k, v in c.items())
                         + f"; summary in {root / 'summary.csv'}")
        for row in summary.failed:
            progress.message(f"failed: {row.name}: {row.error}")
    finally:
        progress.remove_sink(log)
    return summary


#: what a sweep writes from its trials' figures at the end (the spec and the trials are not among them)
SUMMARY_FILES = ("summary.json", "summary.csv", "metrics.json", "report.html")


def _drop_stale_summary(plan: SweepPlan) -> None:
    """Remove the summary of an earlier call when this one replaces figures it shows (a trial
    rerun or replaced, a step result recomputed): a kill before the new summary is written would
    otherwise leave the old figures reading as this sweep's. It is rebuilt when the sweep ends,
    or by running the same command again."""
    if any(p.action == "replace" or p.overwrite or any(p.steps.values()) for p in plan.to_run):
        for name in SUMMARY_FILES:
            (plan.out / name).unlink(missing_ok=True)


def _row_metrics(planned: PlannedTrial, outcome: TrialOutcome | None, folder: Path,
                 paths: list[str]) -> dict[str, Any]:
    """A row's figures: none from a run or step result that is not this row's."""
    if outcome is None or outcome.status != "failed":
        return _trial_metrics(folder, paths)
    if planned.action != "skip":
        # the job failed, or finished and a step failed: the folder is this row's only if it holds a
        # run with the trial's settings, as the plan would judge it for skipping on the next call
        try:
            if not _finished(folder) or _settings_differences(planned.trial, folder / "config.json"):
                return {}
        except NeuroAIKitError:
            return {}
    # a step failed: a result it was to recompute is still the old one, computed with other settings
    run = Run(folder)
    stale = set()
    for name, config, _ in planned.trial.steps:
        kind = step_kind(name)
        if name not in planned.steps:
            continue
        try:
            stored = run.result(kind.result)
            if stored is not None and kind.changed_settings(config, stored, run):
                stale.add(kind.result)
        except NeuroAIKitError:
            stale.add(kind.result)
    return _trial_metrics(folder, paths, skip=stale)


def _trial_metrics(folder: Path, paths: list[str], skip: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    """The figures of ``paths`` in a finished trial folder; results named in ``skip`` count as missing."""
    if not _finished(folder):
        return {}
    run = Run(folder)
    metrics = run.metrics
    cache: dict[str, Any] = {}

    def results(name: str) -> Any:
        if name not in cache:
            cache[name] = None if name in skip else run.result(name)
        return cache[name]

    found: dict[str, Any] = {}
    for path in paths:
        found.update(resolve_metric(path, metrics, results))
    return found


def _summarise(plan: SweepPlan, outcomes: dict[str, TrialOutcome], backend: str, workers: int | None,
               seconds: float) -> SweepSummary:
    spec = plan.spec
    paths = summary_metrics(spec)
    rows = []
    for planned in plan.trials:
        trial = planned.trial
        outcome = outcomes.get(trial.name)
        status = outcome.status if outcome else "skipped"
        figures = _row_metrics(planned, outcome, plan.out / TRIALS / trial.name, paths)
        rows.append(TrialRow(name=trial.name, status=status, params=trial.params, tags=trial.tags, metrics=figures,
                             seconds=outcome.seconds if outcome else None, error=outcome.error if outcome else None,
                             error_kind=outcome.error_kind if outcome else None))
    columns = list(dict.fromkeys(k for r in rows for k in r.metrics))
    # the spec's order of metric paths, whatever order the trials produced them in
    order = {p: i for i, p in enumerate(paths)}
    columns.sort(key=lambda c: min((i for p, i in order.items() if c == p or c.startswith(p + ".")), default=len(paths)))
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    params, tags = varied_columns(spec, [p.trial for p in plan.trials])
    return SweepSummary(job=spec.job_kind.name, rows=rows, name=spec.name, steps=list(spec.steps), params=params, tags=tags,
                        metrics=columns, x=default_x(spec, [p.trial for p in plan.trials]), plot=spec.summary.plot,
                        counts=counts, backend=backend, workers=workers, time_s=seconds)


def write_summary(root: Path, summary: SweepSummary) -> None:
    """``summary.json``, ``summary.csv`` and ``metrics.json``, each written atomically."""
    import csv
    import io

    write_json(root / "summary.json", summary)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["trial", "status", *summary.params, *summary.tags, *summary.metrics, "seconds", "error"])
    for row in summary.rows:
        writer.writerow([row.name, row.status,
                         *(format_value(row.params[k]) if k in row.params else "" for k in summary.params),
                         *(format_value(row.tags[k]) if k in row.tags else "" for k in summary.tags),
                         *(row.metrics.get(k, "") for k in summary.metrics),
                         "" if row.seconds is None else f"{row.seconds:.2f}", row.error or ""])
    write_text(root / "summary.csv", buffer.getvalue())
    write_json(root / "metrics.json", {"sweep": {"job": summary.job, "trials": len(summary.rows),
                                                 "counts": summary.counts, "backend": summary.backend,
                                                 "workers": summary.workers, "time_s": summary.time_s}})
