"""Run-folder workflows of the digital twin (what ``neuroaikit twin fit|evaluate|probe`` call).

- :func:`fit_run`: load data, fit the twin (resumable: a checkpoint after every epoch),
  evaluate it on the test tier beside the baselines, commit the run folder;
- :func:`evaluate_run`: Sensorium metrics of a fitted twin on a data set (default: the one it
  was fitted on), beside the pixel-ridge baseline, the repeat ceilings, and, for synthetic
  data, the simulator's own oracle and the receptive-field recovery;
- :func:`probe_run`: in-silico experiments (tuning, receptive fields, most exciting inputs).

Every input is validated before anything is written; the run lifecycle is
:class:`~neuroaikit.runs.RunWriter`'s. Results go to ``results/twin_fit.json``,
``results/twin_eval.json`` and ``results/twin_probe.json`` as the typed results of
``neuroaikit.neural.results``.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
import torch

from ..config import BOOL, PATH, POSITIVE, AppliesOnly, Config, InstanceOf, Options, Satisfies, UnusedSettingError
from ..errors import ConfigError, DataError
from ..execution import Execution, ExecutionConfig, refuse_torchrun, require_float32, unwrap
from ..io import read_json, write_json
from ..models import model_spec
from ..progress import Progress, default_progress
from ..runs import Run, RunWriter
from .baselines import PixelRidge
from .dataset import NAN_POLICIES, NeuralDataset, check_nan_policy, group_repeats, numeric_npy, rescale_points
from .fit import (TwinFitConfig, build_twin_for, fit_twin, freeze_core_from, predict, split_validation_of,
                  validation_correlation)
from .load import RECORDING_FILE_SUFFIXES, check_recording_file, is_filetree, load_neural
from .models import DEFAULT_SESSION, CortexTwin, SessionView, TwinEnsemble, twin_members
from .metrics import evaluate_predictions, explainable_variance, oracle_correlation, repeated_trials, standardize
from .results import RepeatCeiling, TierScores, TwinEvaluation, TwinFitResult, TwinProbe
from .simulate import SyntheticDataConfig

log = logging.getLogger(__name__)

SYNTHETIC = "synthetic"
#: an LN baseline with less time than this is skipped (with a note) rather than fitted badly
MIN_LN_SECONDS = 5.0


#: the most members ``members="auto"`` fits (Sensorium entries ensemble about this many)
AUTO_MEMBERS_MAX = 5
#: ``members="auto"`` starts another member only when the training time left is at least this
#: multiple of the longest member fit so far. At 1.25, 964 s of a 2,700-s budget went unused after
#: two twins (page twin_default_lurz_starts); a member cut short that would lower the ensemble's
#: validation r is left out, so the budget is worth spending (page twin_default_lurz_margin)
NEXT_MEMBER_MARGIN = 0.5
#: neurons whose gradient maps are timed to foresee the receptive-field recovery's time
RF_TIMING_NEURONS = 256


#: ``image_size="auto"`` brings images whose shorter side is longer than this down to it (aspect
#: kept): the resolution the default recipe was chosen at (Sensorium's 36x64; Sensorium 2022's
#: 144x256 files are scaled by 0.25 to it by their own loaders)
AUTO_IMAGE_SIDE = 36


def _members_value(value: Any) -> bool:
    return value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)


def _image_size_value(value: Any) -> bool:
    return value in ("auto", "native") or (
        isinstance(value, (list, tuple)) and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 8 for v in value))


def working_image_size(shape: tuple[int, int], image_size: str | Sequence[int]) -> tuple[int, int]:
    """The (H, W) the twin sees for images of ``shape`` (H, W): ``"native"`` keeps them,
    ``"auto"`` shrinks a shorter side longer than :data:`AUTO_IMAGE_SIDE` to it (aspect kept),
    ``[H, W]`` is that size."""
    h, w = (int(v) for v in shape)
    if image_size == "native":
        return h, w
    if image_size == "auto":
        short = min(h, w)
        if short <= AUTO_IMAGE_SIDE:
            return h, w
        return max(1, round(h * AUTO_IMAGE_SIDE / short)), max(1, round(w * AUTO_IMAGE_SIDE / short))
    return int(image_size[0]), int(image_size[1])


def at_image_size(ds: NeuralDataset, image_size: str | Sequence[int]) -> NeuralDataset:
    """``ds`` with its images resampled to :func:`working_image_size` (itself when unchanged)."""
    size = working_image_size(ds.image_shape[1:], image_size)
    if size == tuple(ds.image_shape[1:]):
        return ds
    return ds.resized(*size)


def _resampled_note(path: str, ds: NeuralDataset, image_size: str | Sequence[int]) -> str:
    def size(values) -> str:
        return values if isinstance(values, str) else "x".join(str(v) for v in values)
    return (f"{path}: images resampled from {size(ds.info['resized_from'])} to {size(ds.image_shape[1:])} "
            f"(--image-size {size(image_size)})")


def _data_paths(value: Any) -> bool:
    return (isinstance(value, (str, os.PathLike))
            or (isinstance(value, (list, tuple)) and len(value) > 0
                and all(isinstance(v, (str, os.PathLike)) for v in value)))


#: the :class:`~neuroaikit.neural.models.TwinModelConfig` fields that ``core_from`` takes from its run
CORE_ARCHITECTURE = ("core", "hidden_channels", "layers", "input_kern", "hidden_kern", "depth_separable", "gamma_input")


@dataclass
class TwinFitJob(Config):
    """A ``twin fit`` job: which data, how to fit, which baselines, how long in all.

    Args:
        data: a FileTree folder or ``.zip``, an ``.nwb`` or ``.npz`` file, a suite2p folder,
            ``"synthetic"``, or a list of them: several recordings (mice) share one core, each
            with its own readout (sessions named after the files).
        region: the Antolik imaging region (1, 2 or 3).
        synthetic: the simulator and trial counts when ``data`` is ``"synthetic"``.
        fit: the twin and its training (:class:`~neuroaikit.neural.fit.TwinFitConfig`).
        baselines: fit the pixel-ridge baseline for the test-tier comparison.
        ln_baseline: also fit the LN baseline (a second full fit; off by default so that the
            time limit goes to the twin).
        ln_time_limit: the LN baseline's own budget in seconds (default: a quarter of
            ``time_limit`` when that is set).
        time_limit: seconds for the whole command (loading, baselines, fit, scoring): the twin's
            training ends early enough to leave time for what follows it; where that leaves no
            time to train, the receptive-field recovery is skipped, and a limit too short even
            to score the twin is overrun, with a note saying by about how much beforehand
            (:func:`plan_time_limit`).
        core_from: a twin run whose core is copied and frozen; only readouts are trained
            (transfer to new mice).
        memory_map: keep FileTree recordings' responses and images on disk, memory-mapped from
            a cached copy, and gather each batch from there; None (default): only for a
            recording larger than a quarter of the memory available
            (:func:`~neuroaikit.neural.load_filetree`). With several recordings, True maps
            the FileTree ones and reads the others into memory.
        members: how many twins to fit, seeds ``fit.seed``, ``fit.seed + 1``, ...; the run's
            model is the ensemble of those kept (a :class:`~neuroaikit.neural.TwinEnsemble`,
            predicting the mean of theirs). Every member is early-stopped on the same validation
            images; after each, the ensemble is chosen among all fitted, best first, a member
            joining only if the ensemble's validation correlation does not drop
            (:func:`select_members`). ``"auto"`` (default): one twin without ``time_limit``;
            with it, another member starts while the training time left is at least
            :data:`NEXT_MEMBER_MARGIN` times the longest member fit so far, up to
            :data:`AUTO_MEMBERS_MAX`, and none after a member is left out. An integer: that
            many members, the training time shared equally.
        image_size: the size images are resampled to before anything is fitted, recorded in the
            run so that ``twin evaluate`` resamples new data the same way: ``"auto"`` (default)
            shrinks images whose shorter side is longer than :data:`AUTO_IMAGE_SIDE` pixels to
            it, aspect kept (Sensorium 2022's 144x256 -> 36x64, as its loaders' ``scale=0.25``;
            smaller images are kept); ``"native"`` keeps every image as recorded; ``[H, W]``
            resamples to that size (:meth:`~neuroaikit.neural.NeuralDataset.resized`).
        nan_policy: trials whose responses hold NaN/inf, in every format: ``"raise"`` (default)
            stops with a one-line error naming the first, ``"drop"`` leaves them out and logs how
            many (recordings shared with their test responses withheld, dropped imaging frames).
    """

    data: str | list[str] = SYNTHETIC
    region: int | None = None
    synthetic: SyntheticDataConfig = field(default_factory=SyntheticDataConfig)
    fit: TwinFitConfig = field(default_factory=TwinFitConfig)
    baselines: bool = True
    ln_baseline: bool = False
    ln_time_limit: float | None = None
    time_limit: float | None = None
    core_from: str | None = None
    memory_map: bool | None = None
    members: int | str = "auto"
    image_size: str | list[int] = "auto"
    nan_policy: str = "raise"

    _parameter_constraints: ClassVar[dict] = {
        "data": [Satisfies(_data_paths, "a path or a non-empty list of paths")],
        "region": [Options((1, 2, 3)), None],
        "synthetic": [InstanceOf(SyntheticDataConfig)],
        "fit": [InstanceOf(TwinFitConfig)],
        "baselines": [BOOL],
        "ln_baseline": [BOOL],
        "ln_time_limit": [POSITIVE, None],
        "time_limit": [POSITIVE, None],
        "core_from": [PATH, None],
        "memory_map": [BOOL, None],
        "members": [Satisfies(_members_value, "'auto' or an integer >= 1")],
        "image_size": [Satisfies(_image_size_value, "'auto', 'native' or [height, width], each >= 8")],
        "nan_policy": [Options(NAN_POLICIES)],
    }

    _refuse_unused_changes: ClassVar[bool] = True
    _applies_only: ClassVar[tuple[AppliesOnly, ...]] = (
        AppliesOnly(("region",), lambda c: SYNTHETIC not in c.paths,
                    "applies only to an Antolik recording (the synthetic cortex has no imaging regions)", ("data",)),
    )

    def _check(self) -> None:
        if isinstance(self.data, (list, tuple)):
            paths = [str(d) for d in self.data]
            twice = sorted({d for d in paths if paths.count(d) > 1})
            if twice:
                raise ConfigError(f"data lists {twice[0]} more than once")
            self.data = paths[0] if len(paths) == 1 else paths
        else:
            self.data = str(self.data)
        if isinstance(self.image_size, tuple):
            self.image_size = list(self.image_size)
        if self.memory_map and self.paths == [SYNTHETIC]:
            raise ConfigError("memory_map applies to FileTree recordings; the synthetic cortex is simulated in memory")
        if self.ln_time_limit is not None and not self.ln_baseline:
            raise ConfigError("ln_time_limit is the LN baseline's budget: set ln_baseline (--ln-baseline) too")
        if self.ln_baseline and not self.baselines:
            raise ConfigError("ln_baseline asks for a baseline that baselines=False (--no-baselines) skips")
        if self.core_from is not None:
            # the copied core's architecture replaces these: a changed one would be recorded, never built
            changed = self.fit.model.changed_fields()
            taken = [name for name in CORE_ARCHITECTURE if name in changed]
            if taken:
                raise UnusedSettingError(taken[0], "is taken from the core of {core_from} (copied and frozen)",
                                         ("core_from",), path=("fit", "model"))

    @property
    def paths(self) -> list[str]:
        return list(self.data) if isinstance(self.data, list) else [self.data]

    def ln_budget(self) -> float | None:
        """Seconds the LN baseline may train (None: no limit of its own)."""
        if not self.ln_baseline:
            return 0.0
        if self.ln_time_limit is not None:
            return self.ln_time_limit
        return None if self.time_limit is None else 0.25 * self.time_limit


def session_names(paths: list[str]) -> list[str]:
    """One session name per recording: the file or folder name without its extension, made
    a valid identifier, numbered when two recordings share a name."""
    names: list[str] = []
    for path in paths:
        stem = Path(str(path).rstrip("/\\")).name
        for suffix in (".zip", ".nwb", ".npz", ".hdf5", ".h5"):
            stem = stem[: -len(suffix)] if stem.lower().endswith(suffix) else stem
        base = re.sub(r"\W", "_", stem) or "session"
        name, k = base, 2
        while name in names:
            name, k = f"{base}_{k}", k + 1
        names.append(name)
    return names


def load_data(data: str, region: int | None, synthetic: SyntheticDataConfig | dict | None = None,
              memory_map: bool | None = None, nan_policy: str = "raise") -> tuple[NeuralDataset, object | None]:
    """The data set and, for the embedded synthetic cortex, the simulator (ground truth)."""
    if str(data) == SYNTHETIC:
        cfg = synthetic if isinstance(synthetic, SyntheticDataConfig) else SyntheticDataConfig.from_flat(synthetic)
        return cfg.make()
    return load_neural(data, region=region, memory_map=memory_map, nan_policy=nan_policy), None


def load_sessions(job: TwinFitJob) -> dict[str, tuple[str, NeuralDataset, object | None]]:
    """``{session: (path, data set, simulator or None)}`` for every recording of ``job``."""
    paths = job.paths
    names = session_names(paths) if len(paths) > 1 else [DEFAULT_SESSION]
    sessions = {}
    for name, path in zip(names, paths):
        ds, cortex = load_data(path, job.region, job.synthetic, _memory_map_for(path, job.memory_map, len(paths)),
                               job.nan_policy)
        sessions[name] = (path, at_image_size(ds, job.image_size), cortex)
    return sessions


def _memory_map_for(path: str, memory_map: bool | None, n_recordings: int) -> bool | None:
    """``memory_map`` for one of the job's recordings: with several, ``True`` maps the FileTree
    ones and reads the others into memory (:func:`fit_run` says so in the run log), so a mixed set
    of formats still fits; for a single recording of another format it stays an error."""
    if memory_map and n_recordings > 1 and (path == SYNTHETIC or not is_filetree(path)):
        return None
    return memory_map


def _truth_centers(ds: NeuralDataset, data: str, cortex) -> np.ndarray | None:
    """The true RF centres (x, y) in the pixels of ``ds``'s images, when known."""
    if "rf_centers" in ds.info:  # moved with the images when they were resampled
        return np.asarray(ds.info["rf_centers"])
    file = Path(str(data)) / "meta" / "neurons" / "rf_centers.npy"
    centres = cortex.rf_centers_ if cortex is not None else numeric_npy(file) if file.is_file() else None
    if centres is None or "resized_from" not in ds.info:
        return centres
    return rescale_points(centres, tuple(ds.info["resized_from"]), ds.image_shape[1:])


def open_twin_run(run_dir: str | os.PathLike, what: str | None = None) -> Run:
    """The run folder ``run_dir``, refused in one line unless it holds a twin (``what`` names the
    option that gave it)."""
    run = Run.open(run_dir)
    if run.model_spec.get("name") != "twin":
        raise ConfigError(f"{what + ': ' if what else ''}{run.path} holds a {run.model_spec.get('name')!r} model, not a twin "
                          "(fit one with 'neuroaikit twin fit')")
    return run


def check_fit_job(job: TwinFitJob) -> None:
    """Refuse ``job`` in one line if a recording, a file a recording file names, or its
    ``core_from`` run is missing, without reading the recordings (a sweep checks every trial this
    way before it creates its folder; :func:`fit_run` checks the data themselves before it writes
    anything)."""
    for path in job.paths:
        if str(path) == SYNTHETIC:
            continue
        if not Path(path).exists():
            raise DataError(f"{path}: recording not found")
        if Path(path).suffix.lower() in RECORDING_FILE_SUFFIXES:
            check_recording_file(path)
    if job.core_from is not None:
        open_twin_run(job.core_from, "core_from")


def _source_twin(job: TwinFitJob, device) -> tuple[TwinFitConfig, CortexTwin | None]:
    """The fit settings with the core architecture of ``job.core_from`` and that run's twin
    (None without transfer)."""
    if job.core_from is None:
        return job.fit, None
    source_run = open_twin_run(job.core_from, "core_from")
    # an ensemble lends its first member's core
    source = cast(CortexTwin, twin_members(source_run.load_model(map_location=device))[0])
    spec = source_run.model_spec.get("kwargs", {})
    core = {k: spec[k] for k in CORE_ARCHITECTURE if k in spec}
    return job.fit.replace(model=job.fit.model.replace(**core)), source


def fit_run(job: TwinFitJob, out: str | os.PathLike, *, overwrite: bool = False, resume: bool = False,
            progress: Progress | None = None, started: float | None = None) -> Run:
    """Fit a twin as ``job`` says and write the run folder ``out``; returns the committed :class:`Run`.

    The output folder, the data and the model are checked before ``out.partial`` is created;
    the fit saves a checkpoint after every epoch (``resume=True`` continues it); a data set
    without a test tier gets its model saved and the evaluation skipped, with a note.

    With ``job.time_limit`` the whole call (from ``started``, a :func:`time.monotonic` time,
    default now) ends within it: the pixel ridge is fitted first and timed, the LN baseline's
    budget (:meth:`TwinFitJob.ln_budget`) and the scoring are set aside, and the twin trains in
    what is left (cut at the deadline; see :func:`~neuroaikit.neural.fit.fit_twin`). Where that
    would leave no time for training, the receptive-field recovery is skipped, and a limit too
    short even for the scoring is overrun, by about what a note says first (:func:`plan_time_limit`). With
    ``job.members`` at ``"auto"`` (default) more twins follow while the time left lets another
    converge, and the run's model is the ensemble of those kept (see :class:`TwinFitJob`).
    """
    started = time.monotonic() if started is None else started
    deadline = None if job.time_limit is None else started + job.time_limit
    progress = default_progress(progress)
    with Execution(job.fit.execution) as ex:
        progress.for_rank(ex.rank)
        ex.require_shares(job.fit.batch_size, "batch_size")
        # the fit's execution settings (device, threads, precision, processes) say where it
        # computes, not what: a resumed fit may change them, as a sweep's plan assumes
        writer = RunWriter(out, job, overwrite=overwrite, resume=resume, is_main=ex.is_main, progress=progress,
                           execution=ex, resumable_changes=("fit.execution",))
        fit_cfg, source = _source_twin(job, ex.device)
        sessions = load_sessions(job)
        data = ({name: ds for name, (_, ds, _) in sessions.items()} if len(sessions) > 1
                else next(iter(sessions.values()))[1])
        model0, kwargs = build_twin_for(data, fit_cfg)  # the data's problems surface before anything is written
        if source is not None:
            freeze_core_from(model0, source)
        with writer:
            for name, (path, ds, _) in sessions.items():
                writer.say(f"twin fit: {ds!r}" + (f" as session {name}" if len(sessions) > 1 else ""))
                if "resized_from" in ds.info:
                    writer.say(_resampled_note(path, ds, job.image_size))
                if job.memory_map and _memory_map_for(path, job.memory_map, len(sessions)) is None:
                    writer.say(f"{path}: read into memory (memory mapping applies to FileTree folders and zips)")
            if fit_cfg.model.shifter and model0.shifters is None:  # once per command, not per ensemble member
                lacking = [str(path) for path, ds, _ in sessions.values() if ds.pupil_center is None]
                writer.say(f"note: no pupil centre in {', '.join(lacking)}: fitting without a shifter")
            scored = {name: ds for name, (_, ds, _) in sessions.items() if (ds.tiers == "test").any()}
            baselines: dict[str, dict] = {name: {} for name in scored}
            if job.baselines and ex.is_main:
                for name, ds in scored.items():
                    baselines[name].update(pixel_ridge_predictions(ds, "test", progress))
            pass_s = rf_s = 0.0
            if deadline is not None:
                model0.to(ex.device)  # timed where the fitted twins will be scored
                if ex.device.type != "cpu":
                    _prediction_seconds(model0, scored)  # the device's start-up costs, left out of the timing
                pass_s = _prediction_seconds(model0, scored)
                # rank 0 alone scores the twin, so its timing of the receptive-field maps counts
                rf_s = float(ex.broadcast(_rf_recovery_seconds(model0, sessions, scored) if ex.is_main else 0.0))
                model0.cpu()
            ln_budget = job.ln_budget() if scored else 0.0
            plan = None
            if job.time_limit is not None:
                # rank 0's plan for all: whether the maps are made changes every rank's training deadline
                plan = ex.broadcast(plan_time_limit(job.time_limit, time.monotonic() - started, pass_s, rf_s,
                                                    ln_budget or 0.0))
                rf_s = plan.rf_kept_seconds
                for line in plan.notes():
                    progress.message(line)

            def train_deadline(members: int) -> float | None:
                """When training must end for ``members`` twins to be scored in time."""
                if deadline is None:
                    return None
                return deadline - _scoring_reserve(pass_s, members, rf_s) - (ln_budget or 0.0)

            fit_start = time.time()
            model, history, members = _fit_members(job, data, fit_cfg, source, writer, ex, progress, train_deadline)
            if ex.is_main:
                if job.ln_baseline:
                    for name, ds in scored.items():
                        budget = ln_budget
                        if deadline is not None:
                            reserve = _scoring_reserve(pass_s, len(twin_members(model)), rf_s)
                            left = (deadline - reserve - time.monotonic()) / max(len(scored), 1)
                            budget = min(budget or left, left)
                            if budget < MIN_LN_SECONDS:
                                progress.message(f"{ds.name}: LN baseline skipped, {max(budget, 0):.0f} s left for it")
                                continue
                        baselines[name]["ln"] = ln_predictions(ds, fit_cfg, budget, "test", progress)
                metrics = _finish_fit(writer, job, sessions, model, history, kwargs, time.time() - fit_start, ex,
                                      progress, baselines, members,
                                      receptive_fields=plan is None or not plan.rf_skipped)
                took = time.monotonic() - started
                writer.run.save_metrics({**metrics, "command_seconds": took, "time_limit": job.time_limit})
                writer.say(f"twin fit: {took:.0f} s" + (f" of the {job.time_limit:.0f} s limit" if job.time_limit else ""))
            return writer.commit()


def _prediction_seconds(model, scored: dict[str, NeuralDataset]) -> float:
    """Seconds one twin takes to predict the test tiers."""
    t0 = time.perf_counter()
    for name, ds in scored.items():
        predict(model, ds.subset("test"), None, session=None if len(model.sessions) == 1 else name)
    return time.perf_counter() - t0


def _rf_recovery_seconds(model, sessions: dict, scored: dict[str, NeuralDataset]) -> float:
    """Seconds one twin's receptive-field recovery (:func:`rf_recovery`, run where the true
    centres are known: the synthetic cortex) takes on the scored recordings: the gradient maps
    of one chunk of neurons, timed and scaled to all the neurons."""
    from .insilico import achromatic, gradient_maps

    total = 0.0
    for name, ds in scored.items():
        path, _, cortex = sessions[name]
        if _truth_centers(ds, path, cortex) is None:
            continue
        view = model if len(model.sessions) == 1 else SessionView(model, name)
        n = min(ds.n_neurons, RF_TIMING_NEURONS)
        t0 = time.perf_counter()
        gradient_maps(achromatic(view, ds.image_shape[0]), ds.image_shape[1:], neurons=np.arange(n))
        total += (time.perf_counter() - t0) * ds.n_neurons / n
    return total


def _scoring_reserve(pass_s: float, members: int, rf_s: float = 0.0) -> float:
    """Time set aside after training ``members`` twins: a generous multiple of their prediction
    passes over the test tiers (twin, first member alone, LN and simulator scores, report) and
    of their receptive-field recovery (``rf_s`` per twin; an ensemble's maps cost one twin's per
    member), plus 10 s (saving, the run folder's commit)."""
    passes = members + (1 if members > 1 else 0)
    return 10.0 + 5 * pass_s * passes + 1.5 * rf_s * members


@dataclass(frozen=True)
class TimePlan:
    """How :func:`fit_run` splits ``time_limit`` (seconds), from :func:`plan_time_limit`.

    Attributes:
        limit: the whole command's time limit.
        training: what is left to train the first twin in (0 when nothing is).
        ln_baseline: set aside for the LN baseline.
        scoring: set aside to score one twin (:func:`_scoring_reserve`).
        rf_seconds: one twin's receptive-field recovery, as timed (0: no recording has known
            receptive fields).
        rf_skipped: the receptive-field recovery is skipped to leave time for training.
        over: how far past the limit the scoring is foreseen to run (0: within it); an
            estimate, from the generous time set aside.
    """

    limit: float
    training: float
    ln_baseline: float
    scoring: float
    rf_seconds: float
    rf_skipped: bool
    over: float

    @property
    def rf_kept_seconds(self) -> float:
        """The receptive-field recovery's seconds per twin still to be set aside."""
        return 0.0 if self.rf_skipped else self.rf_seconds

    def notes(self) -> list[str]:
        """The lines ``twin fit`` prints before training: the split, then what gave way."""
        lines = [f"twin: {self.limit:.0f} s in all, {self.training:.0f} s for training ({self.ln_baseline:.0f} s LN "
                 f"baseline, {self.scoring:.0f} s scoring set aside)"]
        if self.rf_skipped:
            lines.append(f"note: twin: receptive-field recovery skipped: its maps (about {self.rf_seconds:.0f} s) "
                         f"would leave no time for training within --time-limit {self.limit:g}")
        if self.training <= 0:
            over = (f", and scoring it will run past the limit by up to about {self.over:.0f} s (an estimate)"
                    if self.over > 0 else "")
            lines.append(f"note: twin: --time-limit {self.limit:g} leaves no time for training once the baselines "
                         f"and scoring are set aside: the twin will be barely trained{over}; give a longer limit")
        return lines


def plan_time_limit(limit: float, elapsed: float, pass_s: float, rf_s: float, ln_budget: float) -> TimePlan:
    """Split the ``limit`` s of ``twin fit`` once ``elapsed`` s are spent (loading, pixel ridge):
    the scoring of one twin (:func:`_scoring_reserve` of its test-tier prediction pass
    ``pass_s`` and receptive-field recovery ``rf_s``) and the LN baseline's ``ln_budget`` are
    set aside and the twin trains in what is left.

    The receptive-field recovery (a check against the synthetic cortex's known receptive
    fields) is the one step that gives way: it is skipped when with it no time would be left
    for training, since the maps of an untrained twin say nothing. Scoring the twin is not
    skipped, so a limit too short even for that is foreseen to be overrun (``over``); the LN
    baseline is then skipped after training for want of time."""
    left = max(limit - elapsed, 0.0)
    skipped = rf_s > 0 and _scoring_reserve(pass_s, 1, rf_s) + ln_budget >= left
    scoring = _scoring_reserve(pass_s, 1, 0.0 if skipped else rf_s)
    return TimePlan(limit=limit, training=max(left - scoring - ln_budget, 0.0), ln_baseline=ln_budget,
                    scoring=scoring, rf_seconds=rf_s, rf_skipped=skipped, over=max(scoring - left, 0.0))


def _validation_predictions(model, data) -> list[np.ndarray]:
    """``model``'s predictions of each session's validation tier."""
    if isinstance(data, NeuralDataset):
        return [predict(model, data, "validation")]
    return [predict(model, ds, "validation", session=name) for name, ds in data.items()]


def _validation_score(predictions: list[list[np.ndarray]], data) -> float:
    """``neuroaikit.neural.fit.validation_correlation`` of the mean of several twins'
    predictions (one list per twin, one array per session)."""
    datasets = [data] if isinstance(data, NeuralDataset) else list(data.values())
    return validation_correlation([np.mean([twin[i] for twin in predictions], axis=0) for i in range(len(datasets))],
                                  datasets)


def another_member(members: int | str, fitted: int, kept_last: bool, time_left: float | None,
                   longest_fit_s: float) -> bool:
    """Whether :func:`fit_run` fits one more twin after ``fitted`` (see ``TwinFitJob.members``)."""
    if members != "auto":
        return fitted < int(members)
    if fitted == 0:
        return True
    if time_left is None or not kept_last or fitted >= AUTO_MEMBERS_MAX:
        return False
    return time_left >= NEXT_MEMBER_MARGIN * longest_fit_s


def select_members(alone: Sequence[float], ensemble_score) -> tuple[list[int], dict[int, float]]:
    """Greedy ensemble selection: the members in order of their own validation correlation
    ``alone`` (best first, ties in fit order), each joining if ``ensemble_score(indices)`` (the
    validation correlation of those members' mean prediction) does not drop. Returns the chosen
    indices in fit order and the ensemble's score when each joined."""
    order = sorted(range(len(alone)), key=lambda i: -alone[i])
    chosen, joined = [order[0]], {order[0]: float(alone[order[0]])}
    for i in order[1:]:
        score = float(ensemble_score([*chosen, i]))
        if score >= joined[chosen[-1]]:
            chosen.append(i)
            joined[i] = score
    return sorted(chosen), joined


def _fit_members(job: TwinFitJob, data, fit_cfg: TwinFitConfig, source, writer: RunWriter, ex: Execution,
                 progress: Progress, train_deadline) -> tuple[Any, list[dict], list[dict]]:
    """Fit the twins ``job.members`` asks for: the run's model (one twin, or the ensemble of
    those kept), the first member's history and one summary per member fitted.

    Every member sees the same validation images (drawn with ``fit.seed``), so the ensemble's
    validation correlation is measured on images none of them trained on; after each member the
    ensemble is chosen afresh among all fitted (:func:`select_members`), so a first twin that
    trained badly is replaced rather than kept. The checkpoint holds the finished members and
    the current one's state, so ``--resume`` continues mid-member."""
    split = split_validation_of(data, fit_cfg)
    saved = writer.load_checkpoint()
    finished = list(saved.get("members_done", [])) if saved and "members_done" in saved else []
    current = (saved.get("member_state") if "members_done" in saved else saved) if saved else None
    twins, histories = [], []
    predictions: list[list[np.ndarray]] = []
    summaries: list[dict[str, Any]] = []
    chosen: list[int] = []

    def choose() -> list[int]:
        """Choose the ensemble among all members fitted (rank 0 decides) and mark the summaries."""
        picked, joined = None, None
        if ex.is_main:
            alone = [_validation_score([p], split) for p in predictions]
            picked, joined = select_members(alone, lambda idx: _validation_score([predictions[i] for i in idx], split))
        picked, joined = ex.broadcast((picked, joined))
        for i, summary in enumerate(summaries):
            summary["kept"] = i in picked
            summary["ensemble_validation_correlation"] = joined.get(i)
        return picked

    for entry in finished:
        twin, _ = build_twin_for(split, fit_cfg)
        twin.load_state_dict(entry["state"])
        twins.append(twin.to(ex.device).eval())
        predictions.append(_validation_predictions(twin, split) if ex.is_main else [])
        histories.append(entry["history"])
        summaries.append({k: v for k, v in entry.items() if k not in ("state", "history")})
    if summaries:
        chosen = choose()
    while ex.broadcast(another_member(
            job.members, len(summaries), bool(summaries) and summaries[-1]["kept"],
            None if train_deadline(len(chosen) + 1) is None else train_deadline(len(chosen) + 1) - time.monotonic(),
            max((s["fit_seconds"] for s in summaries), default=0.0))):
        k = len(summaries)
        member_cfg = fit_cfg.replace(seed=fit_cfg.seed + k)
        if job.members == "auto":
            deadline = train_deadline(len(chosen) + 1)
        else:  # N members: the scoring of all N set aside, the training time left shared by those to fit
            deadline = train_deadline(int(job.members))
            if deadline is not None:
                deadline = time.monotonic() + (deadline - time.monotonic()) / (int(job.members) - k)
        if k:
            progress.message(f"twin member {k + 1}: seed {member_cfg.seed}"
                             + (f", {max(deadline - time.monotonic(), 0):.0f} s left" if deadline is not None else ""))

        def save_state(state: dict, done: list = finished) -> None:
            writer.save_checkpoint({"members_done": done, "member_state": state})

        started = time.monotonic()
        twin, history = fit_twin(split, member_cfg, progress=progress, execution=ex, deadline=deadline,
                                 core_from=source, resume_state=current, save_state=save_state,
                                 name="twin" if k == 0 else f"twin member {k + 1}")
        current = None
        twin = cast(CortexTwin, unwrap(twin)).eval()
        twins.append(twin)
        predictions.append(_validation_predictions(twin, split) if ex.is_main else [])
        histories.append(history)
        summaries.append({"seed": member_cfg.seed, "epochs": len(history) - 1,
                          "fit_seconds": float(history[-2]["seconds"]) if len(history) > 1 else time.monotonic() - started,
                          "best_validation_correlation": history[-1]["best_validation_correlation"],
                          "stopped_by": history[-1]["stopped_by"],
                          "starts": history[0].get("starts", []) if len(history) > 1 else []})
        chosen = choose()
        if k:
            progress.message(f"twin member {k + 1}: validation r {summaries[-1]['best_validation_correlation']:.4f} "
                             f"alone; the ensemble: twins {', '.join(str(i + 1) for i in chosen)}, validation r "
                             f"{max(s['ensemble_validation_correlation'] or -1.0 for s in summaries):.4f}")
        finished = [*finished, {**summaries[-1], "state": twin.state_dict(), "history": history}]
        writer.save_checkpoint({"members_done": finished, "member_state": None})
    kept = [twins[i] for i in chosen]
    model = kept[0] if len(kept) == 1 else TwinEnsemble(kept)
    return model, histories[0], summaries


def pixel_ridge_predictions(ds: NeuralDataset, tier: str, progress: Progress) -> dict:
    """``{"pixel_ridge": predictions of tier}`` from a :class:`PixelRidge` fitted on the train tier."""
    if not (ds.tiers == "train").any():
        return {}
    progress.message(f"{ds.name}: pixel ridge baseline")
    ridge = PixelRidge().fit(ds)
    return {"pixel_ridge": ridge.predict_tier(ds, tier), "pixel_ridge_alpha": ridge.alpha_}


def ln_predictions(ds: NeuralDataset, config: TwinFitConfig, time_limit: float | None, tier: str,
                   progress: Progress) -> np.ndarray:
    """Predictions of ``tier`` by the LN baseline (the twin with a linear core) trained for at
    most ``time_limit`` seconds (rank 0's own work, even after a data-parallel fit)."""
    progress.message(f"{ds.name}: LN baseline (linear core)"
                     + (f", {time_limit:.0f} s budget" if time_limit is not None else ""))
    limit = time_limit if config.time_limit is None or time_limit is None else min(time_limit, config.time_limit)
    ln_cfg = config.replace(model=config.model.replace(core="linear"), time_limit=limit)
    with Execution(ln_cfg.execution, join_group=False) as own:
        ln_model, _ = fit_twin(ds, ln_cfg, progress=progress, execution=own, name="LN baseline")
        return predict(ln_model, ds, tier)


def _finish_fit(writer: RunWriter, job: TwinFitJob, sessions, model, history, kwargs, seconds, ex, progress,
                baselines: dict[str, dict], members: list[dict], receptive_fields: bool = True) -> dict:
    run = writer.run
    twins = twin_members(model)
    run.save_model(model, model_spec("twin", {**kwargs, "members": len(twins)} if len(twins) > 1 else kwargs))
    # the readouts' neuron order: evaluate aligns another file of the same neurons to it
    write_json(run.path / NEURONS_FILE, {name: None if ds.info.get("unit_ids_filled") else
                                         [u if isinstance(u, (int, float, str)) else str(u)
                                          for u in np.asarray(ds.unit_ids).tolist()]
                                         for name, (_, ds, _) in sessions.items()})
    fit_seconds = history[-2]["seconds"] if len(history) > 1 else seconds
    ensemble_r = max(m["ensemble_validation_correlation"] for m in members if m["kept"]) if len(twins) > 1 else None
    TwinFitResult(history=history[:-1], best=history[-1], seconds=fit_seconds, execution=ex.describe(),
                  members=members, ensemble_validation_correlation=ensemble_r).save(run)
    metrics = {"fit_seconds": fit_seconds, "epochs": len(history) - 1, **history[-1], "execution": ex.describe(),
               "members": len(twins), "members_fitted": len(members), "ensemble_validation_correlation": ensemble_r,
               "members_fit_seconds": sum(m["fit_seconds"] for m in members)}
    if len(twins) > 1:
        writer.say(f"twin: an ensemble of {len(twins)} of the {len(members)} twins fitted, validation r {ensemble_r:.4f} "
                   f"(the best twin alone: {max(m['best_validation_correlation'] for m in members):.4f})")
    also = {"first_member": twins[0]} if len(twins) > 1 else {}
    multi = len(sessions) > 1
    evaluations = {}
    for name, (path, ds, cortex) in sessions.items():
        if not (ds.tiers == "test").any():
            writer.say(f"{ds.name} has no test tier (tiers: {ds.tier_names}): the twin is saved, its test-tier "
                       f"evaluation is skipped; score it with 'neuroaikit twin evaluate RUN DATA'")
            continue
        evaluations[name] = evaluate_dataset(model, ds, path, cortex=cortex, baselines=baselines.get(name, {}),
                                             progress=progress, session=name if multi else None, also=also,
                                             receptive_fields=receptive_fields)
    if evaluations:
        evaluation = pool_evaluations(evaluations, job.data) if multi else evaluations[DEFAULT_SESSION]
        evaluation.save(run)
        metrics.update(_headline(evaluation))
        for name, block in (evaluation.sessions or {}).items():
            metrics.update({f"{name}/{k}": v for k, v in _headline(block).items()})
    return metrics


def _headline(evaluation: TwinEvaluation) -> dict:
    out = {}
    for name, block in evaluation.models.items():
        for key in ("single_trial_correlation", "correlation_to_average", "fraction_of_oracle", "feve"):
            value = getattr(block, key)
            if value is not None:
                out[f"{name}_{key}"] = value
    return out


def pool_evaluations(evaluations: dict[str, TwinEvaluation], data) -> TwinEvaluation:
    """Per-mouse evaluations -> one with pooled scores and the per-mouse ones under ``sessions``.

    Each pooled score of a model the mice share is what :func:`evaluate_predictions` gives over
    the neurons of all mice stacked (Sensorium's way): the means over neurons weighted by neuron
    counts, FEVE over the reliable neurons of all mice, fraction of oracle the slope over all
    neurons, single-trial over oracle the ratio of the pooled means. ``n_trials`` and
    ``n_images`` are sums over the mice (an image shown to two mice counts twice)."""
    first = next(iter(evaluations.values()))
    pooled = TwinEvaluation(data=str(data), dataset={name: e.dataset for name, e in evaluations.items()},
                            tier=first.tier, sessions=dict(evaluations))
    shared = set.intersection(*(set(e.models) for e in evaluations.values()))
    for model_name in sorted(shared, key=list(first.models).index):
        blocks = [e.models[model_name] for e in evaluations.values()]
        values: dict[str, Any] = {"n_trials": sum(b.n_trials for b in blocks),
                                  "n_neurons": sum(b.n_neurons for b in blocks),
                                  "n_images": sum(b.n_images for b in blocks)}
        n = [float(b.n_neurons) for b in blocks]
        for key in ("single_trial_correlation", "correlation_to_average", "oracle_correlation", "fev",
                    "fraction_fev_reliable"):
            values[key] = _pooled(blocks, key, n)
        # a mouse's FEVE is a mean over its reliable neurons, its single-trial over oracle a ratio of means
        # over its neurons and its fraction of oracle a slope weighted by its squared oracles: weighted so
        # the pooled value is the one over all mice's neurons stacked
        values["feve"] = _pooled(blocks, "feve", [k * (b.fraction_fev_reliable or 0.0) for k, b in zip(n, blocks)])
        values["single_trial_over_oracle"] = _pooled(
            blocks, "single_trial_over_oracle", [k * (b.oracle_correlation or 0.0) for k, b in zip(n, blocks)])
        squared = [_squared_oracles(e.per_neuron.get(model_name, {})) for e in evaluations.values()]
        known = all(q is not None for q, b in zip(squared, blocks) if b.fraction_of_oracle is not None)
        values["fraction_of_oracle"] = (_pooled(blocks, "fraction_of_oracle", [q or 0.0 for q in squared])
                                        if known else None)
        pooled.models[model_name] = TierScores.from_dict(values)
        pooled.per_neuron[model_name] = {k: sum((e.per_neuron[model_name].get(k, []) for e in evaluations.values()), [])
                                         for k in first.per_neuron.get(model_name, {})}
    return pooled


def _pooled(blocks: list[TierScores], key: str, weights: list[float]) -> float | None:
    """The ``weights``-weighted mean of ``key`` over the blocks that have it (None: none has it;
    NaN: none of those has weight, as FEVE when no mouse has a reliable neuron)."""
    got = [(getattr(b, key), w) for b, w in zip(blocks, weights) if getattr(b, key) is not None]
    if not got:
        return None
    got = [(v, w) for v, w in got if w != 0]  # a weightless block's value may be NaN (0 / 0)
    total = sum(w for _, w in got)
    return float(sum(v * w for v, w in got) / total) if total else float("nan")


def _squared_oracles(per_neuron: dict) -> float | None:
    """Sum of a mouse's squared per-neuron oracles, the weight of its fraction of oracle (None: not kept)."""
    oracle = per_neuron.get("oracle_correlation")
    if oracle is None:
        return None
    oracle = np.asarray(oracle, dtype=np.float64)
    oracle = oracle[np.isfinite(oracle)]
    return float(oracle @ oracle)


def evaluate_dataset(model, ds: NeuralDataset, data: str = "", cortex=None, baselines: bool | dict = True,
                     config: TwinFitConfig | None = None, tier: str | None = None,
                     progress: Progress | None = None, session: str | None = None,
                     ln_time_limit: float | None = None, members: Sequence = (),
                     also: Mapping[str, Any] | None = None, receptive_fields: bool = True) -> TwinEvaluation:
    """Sensorium metrics on the test tier (or ``tier``) for the twin (its readout ``session``)
    and the baselines: ``baselines`` is True (fit the pixel ridge here, and the LN model too
    when ``config`` is given, within ``ln_time_limit`` s), False, or the baselines' predictions
    already made (``{"pixel_ridge": ..., "pixel_ridge_alpha": ..., "ln": ...}``). With
    ``members`` (other twins of the same neurons), ``"ensemble"`` scores the mean of the twin's
    and their predictions, in response units (the Sensorium way of ensembling). ``also``: more
    models scored under their names (``twin fit`` scores an ensemble's first member alone as
    ``"first_member"``). ``receptive_fields=False`` skips the receptive-field recovery
    (:func:`rf_recovery`) made where the true centres are known."""
    progress = default_progress(progress)
    tier = tier or ("test" if (ds.tiers == "test").any() else None)
    if tier is None:
        raise DataError(f"{ds.name}: no test tier to evaluate on (tiers: {ds.tier_names})")
    if (ds.tiers == "train").any():
        train_std = ds.response_std("train")
    else:
        train_std = None
        log.info("%s: no train tier; metrics computed on unstandardised responses", ds.name)
    test = ds.subset(tier)
    result = TwinEvaluation(data=str(data), dataset=ds.summary(), tier=tier)
    progress.message(f"{ds.name}: scoring on the {tier} tier")
    scored = {"twin": predict(model, ds, tier, session=session)}
    for name, other in (also or {}).items():
        scored[name] = predict(other, ds, tier, session=session)
    if members:
        predictions = [scored["twin"]] + [predict(member, ds, tier, session=session) for member in members]
        scored["ensemble"] = np.mean(predictions, axis=0)
    if baselines is True:
        baselines = pixel_ridge_predictions(ds, tier, progress)
        if config is not None and config.model.core != "linear" and baselines:
            baselines["ln"] = ln_predictions(ds, config, ln_time_limit, tier, progress)
    if isinstance(baselines, dict):
        baselines = dict(baselines)
        result.pixel_ridge_alpha = baselines.pop("pixel_ridge_alpha", None)
        scored.update(baselines)
    if cortex is not None:
        # from the whole recording: its trials' rates are kept there, computed on the images as
        # simulated (before any resampling)
        scored["simulator_oracle"] = cortex.oracle_predictions(ds)[ds.tier_mask(tier)]
    for name, pred in scored.items():
        m = evaluate_predictions(test.responses, pred, test.image_ids, train_std)
        per = m.pop("per_neuron")
        result.models[name] = TierScores.from_dict(m)
        result.per_neuron[name] = {k: np.asarray(v).tolist() for k, v in per.items()}
        progress.message(f"  {name}: " + ", ".join(f"{k} {v:.4f}" for k, v in m.items() if isinstance(v, float)))
    rep = _repeated_responses(test, tier)
    if rep is not None and len(rep) >= 2:
        # on the responses the models are scored on, so each neuron gets one near-silent verdict
        fev = explainable_variance(rep if train_std is None else standardize(rep, train_std))
        result.ceiling = RepeatCeiling(oracle_correlation=float(oracle_correlation(rep).mean()), fev=float(fev.mean()),
                                       fraction_fev_reliable=float((fev >= 0.15).mean()))
    if cortex is not None:
        twin_avg = result.models["twin"].correlation_to_average
        sim_avg = result.models["simulator_oracle"].correlation_to_average
        result.synthetic = {"twin_over_simulator_correlation_to_average":
                            twin_avg / sim_avg if sim_avg and twin_avg is not None else None}
    truth = _truth_centers(ds, data, cortex) if receptive_fields else None
    if truth is not None:
        view = model if session is None else SessionView(cast(CortexTwin | TwinEnsemble, unwrap(model)), session)
        result.synthetic = {**(result.synthetic or {}), **rf_recovery(view, ds, truth, tier)}
        progress.message(f"  receptive-field recovery: {result.synthetic['rf_within_2px_reliable']:.2%} of reliable "
                         "neurons within 2 px")
    return result


def _repeated_responses(ds: NeuralDataset, tier: str) -> np.ndarray | None:
    """The responses of ``tier`` grouped by image (:func:`~neuroaikit.neural.group_repeats`),
    of the images shown at least twice only, as :func:`evaluate_predictions` scores the oracle and
    FEV; None when no image is."""
    rows = np.flatnonzero(ds.tier_mask(tier))
    rows = rows[repeated_trials(ds.image_ids[rows])]
    return group_repeats(ds.responses[rows], ds.image_ids[rows]) if rows.size else None


def rf_recovery(model, ds: NeuralDataset, truth: np.ndarray, tier: str = "test", top_fraction: float = 0.5) -> dict:
    """Distance between each neuron's gradient-map RF centre and the true centre (pixels), and the
    fraction within 2 px among the most reliable neurons (top ``top_fraction`` by oracle r).

    A neuron whose gradient map is zero everywhere has no centre (``nan`` in ``rf_centers``): it is
    left out of the median and the fractions, and counted in ``rf_no_centre_all`` /
    ``rf_no_centre_reliable``.
    """
    from .insilico import achromatic, gradient_maps, rf_centers

    shape = ds.image_shape[1:]
    centres = rf_centers(gradient_maps(achromatic(model, ds.image_shape[0]), shape))
    dist = np.linalg.norm(centres - np.asarray(truth)[:, :2], axis=1)
    rep = _repeated_responses(ds, tier)
    oracle = np.ones(ds.n_neurons) if rep is None else oracle_correlation(rep)
    reliable = np.argsort(-oracle)[: max(1, int(round(top_fraction * ds.n_neurons)))]
    has_centre = np.isfinite(dist)

    def within_2px(rows: np.ndarray) -> float:
        rows = rows[has_centre[rows]]
        return float((dist[rows] <= 2).mean()) if rows.size else float("nan")

    return {
        "rf_distance_px_median": float(np.median(dist[has_centre])) if has_centre.any() else float("nan"),
        "rf_within_2px_all": within_2px(np.arange(ds.n_neurons)),
        "rf_within_2px_reliable": within_2px(reliable),
        "rf_no_centre_all": int((~has_centre).sum()),
        "rf_no_centre_reliable": int((~has_centre[reliable]).sum()),
        "reliable_fraction_used": top_fraction,
        "rf_centers": centres.tolist(),
        "rf_truth": np.asarray(truth)[:, :2].tolist(),
    }


def _job_of(run: Run) -> TwinFitJob | None:
    values = copy.deepcopy(dict(run.config))
    while True:
        try:
            return TwinFitJob.from_dict(values, where=str(run.path / "config.json"))
        except UnusedSettingError as error:
            # a run saved before such settings were refused: evaluation reads the data settings
            # (the model comes from model.json), so a setting that shaped nothing is left out,
            # one refusal at a time
            holder: Any = values
            for name in error.path:
                holder = holder.get(name) if isinstance(holder, Mapping) else None
            if not isinstance(holder, dict) or error.field not in holder:
                return None
            del holder[error.field]
        except ConfigError:
            return None


def _inputs_missing(model, ds) -> list[str]:
    """The inputs beside the images that the twin (any member of an ensemble) predicts from and
    ``ds`` lacks: behaviour (its modulator, ``--behavior``), the pupil position (its shifter)."""
    twins = list(getattr(model, "members", [model]))
    missing = []
    if ds.behavior is None and any(twin.modulators is not None for twin in twins):
        missing.append("behaviour (--behavior)")
    if ds.pupil_center is None and any(twin.shifters is not None for twin in twins):
        missing.append("pupil position (--shifter)")
    return missing


#: the unit ids of each session's neurons in the order its readout was fitted on
NEURONS_FILE = "neurons.json"


def in_fitted_neuron_order(ds: NeuralDataset, fitted: list | None, path: str, run_path, session: str | None = None
                           ) -> NeuralDataset:
    """``ds`` with its neurons in the order the twin's readout was fitted on (``fitted``: the
    fit's unit ids, from ``neurons.json``; ``None`` for runs written before it and for a fit on a
    recording without ids, whose order is taken as it is). The same ids in another order are
    reordered (Sensorium's metrics align on neuron ids too); other ids are refused in one line,
    since each readout unit is one neuron. A recording without ids of its own is taken in its
    order."""
    if fitted is None or ds.info.get("unit_ids_filled"):
        return ds
    assert ds.unit_ids is not None  # NeuralDataset.__post_init__ fills it
    given = [str(u) for u in np.asarray(ds.unit_ids).tolist()]
    wanted = [str(u) for u in fitted]
    if given == wanted:
        return ds
    where = {u: i for i, u in enumerate(given)}
    if len(where) != len(given):  # one id for two neurons: no order can be read from them
        raise DataError(f"{path}: {len(given) - len(where)} unit id(s) repeat, so its neurons cannot be matched to "
                        f"those the twin in {run_path} was fitted on")
    if sorted(given) == sorted(wanted):
        return ds.select_neurons(np.array([where[u] for u in wanted]))
    common = len(set(given) & set(wanted))
    raise DataError(f"{path}: its neurons' unit ids are not those the twin in {run_path} was fitted on"
                    + (f" for session {session}" if session else "")
                    + f" ({common} of {len(wanted)} in common); score it on a recording of the same neurons")


def evaluate_run(run_dir: str | os.PathLike, data: str | list[str] | None = None, region: int | None = None,
                 baselines: bool = True, overwrite: bool = False, execution: ExecutionConfig | None = None,
                 progress: Progress | None = None, session: str | None = None,
                 ensemble_with: Sequence[str | os.PathLike] = (), nan_policy: str | None = None) -> TwinEvaluation:
    """Evaluate a fitted twin (default: on the data it was fitted on) and save ``results/twin_eval.json``
    (an existing one is replaced only with ``overwrite``).

    A twin of several mice is scored per mouse (and pooled): ``data`` is one recording per
    session in the fit's order (default: the fit's recordings), or one recording with
    ``session`` naming the readout to score it with.

    ``ensemble_with``: run folders of other twins of the same mice and neurons (fitted with
    other seeds or settings); ``models["ensemble"]`` then scores the mean of all their
    predictions and this run's, and ``ensemble`` lists the runs. Each is checked before
    anything is scored.

    ``nan_policy``: trials whose responses hold NaN (:class:`TwinFitJob`); default: the fit's.

    One process: refused under ``torchrun``, where every rank would score and write the same file.
    """
    require_float32(execution, "twin evaluation", "the scores are computed in float32")
    refuse_torchrun("twin evaluate", "its scoring is not shared between processes")
    progress = default_progress(progress)
    if nan_policy is not None:
        check_nan_policy(nan_policy)
    run = open_twin_run(run_dir)
    job = _job_of(run)
    nan_policy = nan_policy or (job.nan_policy if job else "raise")
    with Execution(execution) as ex:
        model: CortexTwin = run.load_model(map_location=ex.device)  # type: ignore[assignment]
        data = data or (job.data if job else None)
        if not data:
            raise ConfigError(f"{run.path}: no data recorded in config.json; pass DATA")
        paths = [str(d) for d in data] if isinstance(data, (list, tuple)) else [str(data)]
        if session is not None:
            if len(paths) != 1:
                raise ConfigError(f"session {session!r} scores one recording, got {len(paths)}")
            if session not in model.sessions:
                raise ConfigError(f"session {session!r} is not in the twin of {run.path}; it has {model.sessions}")
            pairs = {session: paths[0]}
        elif len(paths) == len(model.sessions):
            pairs = dict(zip(model.sessions, paths))
        else:
            raise ConfigError(f"the twin in {run.path} has {len(model.sessions)} session(s) {model.sessions}; got "
                              f"{len(paths)} recording(s): give one per session, or one with --session NAME")
        ensemble = [_ensemble_member(other, model, run.path, ex.device) for other in ensemble_with]
        repeated = sorted({path for path, _ in ensemble if [p for p, _ in ensemble].count(path) > 1})
        if repeated:
            raise ConfigError(f"ensemble_with: {', '.join(repeated)} given more than once; each run counts once")
        members = [member for _, member in ensemble]
        # an ensemble run scores its first twin alone too, as its fit did
        first_member = {"first_member": model.first} if isinstance(model, TwinEnsemble) else {}
        run.check_result_writable(TwinEvaluation.result_name, overwrite)
        previous = TwinEvaluation.load(run)
        multi = len(model.sessions) > 1
        region = region if region is not None else (job.region if job else None)
        fitted = fitted_neurons(run.path)
        results = {}
        for name, path in pairs.items():
            ds, cortex = load_data(path, region, job.synthetic if job else None, job.memory_map if job else None,
                                   nan_policy)
            # runs fitted before image_size existed saw their images as recorded
            image_size = job.image_size if job and "image_size" in run.config else "native"
            ds = at_image_size(ds, image_size)
            if "resized_from" in ds.info:
                progress.message(_resampled_note(path, ds, image_size))
            if tuple(ds.image_shape) != tuple(model.image_shape):
                raise DataError(f"{path}: images {'x'.join(map(str, ds.image_shape))} (channels x height x width), "
                                f"the twin in {run.path} takes {'x'.join(map(str, model.image_shape))}")
            n_model = model.response_std(name).numel()
            if ds.n_neurons != n_model:
                raise DataError(f"{path}: {ds.n_neurons} neurons, the twin in {run.path} predicts {n_model}"
                                + (f" for session {name}" if multi else ""))
            if fitted.get(name) is not None and ds.info.get("unit_ids_filled"):
                progress.message(f"{path} has no unit ids: its neurons are taken in the order the twin was fitted on")
            elif fitted.get(name) is not None:
                centres = _truth_centers(ds, path, cortex)  # read in the file's order, moved with its neurons
                if centres is not None:
                    ds = replace(ds, info={**ds.info, "rf_centers": np.asarray(centres)})
                ds = in_fitted_neuron_order(ds, fitted.get(name), path, run.path, name if multi else None)
            if multi and session is None and not (ds.tiers == "test").any():
                progress.message(f"{path} has no test tier (tiers: {ds.tier_names}): session {name} is not scored")
                continue
            missing = _inputs_missing(model, ds)
            missing += [m for member in members for m in _inputs_missing(member, ds) if m not in missing]
            if missing:  # without them the twin would drop its gain and shift and be scored as another model
                which = f"the twin in {run.path}" + (" or a twin ensembled with it" if members else "")
                raise DataError(f"{path}: no {' and no '.join(missing)}, which {which} was fitted with; score it on "
                                f"a recording that has them, or fit a twin without them")
            # the LN baseline is refitted only by ``fit``; evaluate scores the pixel ridge beside the twin
            result = evaluate_dataset(model, ds, path, cortex=cortex, baselines=baselines, progress=progress,
                                      session=name if multi else None, members=members, also=first_member)
            before = (previous.sessions or {}).get(name) if previous is not None and multi else previous
            if before is not None and str(before.data) == path and "ln" in before.models:
                result.models.setdefault("ln", before.models["ln"])
                # its per-neuron oracles weight its fraction of oracle when the mice are pooled
                if "ln" in before.per_neuron:
                    result.per_neuron.setdefault("ln", before.per_neuron["ln"])
            results[name] = result
        if not results:
            raise DataError(f"no recording given has a test tier to score the twin of {run.path} on")
        result = pool_evaluations(results, paths if len(paths) > 1 else paths[0]) if multi else results[model.sessions[0]]
        if members:
            result.ensemble = [str(Path(run.path).resolve())] + [path for path, _ in ensemble]
        result.save(run)
    return result


def _ensemble_member(run_dir: str | os.PathLike, model: CortexTwin, main: Path, device) -> tuple[str, CortexTwin]:
    """The run folder and twin of ``run_dir``, checked to predict what ``model`` (the twin of
    ``main``) does: the same mice (sessions), neurons and image shape."""
    other_run = open_twin_run(run_dir, "ensemble_with")
    if Path(other_run.path).resolve() == Path(main).resolve():
        raise ConfigError(f"ensemble_with: {other_run.path} is the run being evaluated; give other runs")
    other: CortexTwin = other_run.load_model(map_location=device)  # type: ignore[assignment]
    if list(other.sessions) != list(model.sessions):
        raise ConfigError(f"ensemble_with: the twin in {other_run.path} has sessions {other.sessions}, the twin in {main} "
                          f"{model.sessions}")
    for name in model.sessions:
        if other.response_std(name).numel() != model.response_std(name).numel():
            raise ConfigError(f"ensemble_with: the twin in {other_run.path} predicts {other.response_std(name).numel()} "
                              f"neurons for session {name}, the twin in {main} {model.response_std(name).numel()}")
    if tuple(other.image_shape) != tuple(model.image_shape):
        raise ConfigError(f"ensemble_with: the twin in {other_run.path} takes images {tuple(other.image_shape)}, the twin "
                          f"in {main} {tuple(model.image_shape)}")
    ours, theirs = fitted_neurons(main), fitted_neurons(other_run.path)
    for name in model.sessions:
        mine, other_ids = ours.get(name), theirs.get(name)  # None: fitted on a recording without ids
        if mine is not None and other_ids is not None and [str(u) for u in mine] != [str(u) for u in other_ids]:
            raise ConfigError(f"ensemble_with: the twin in {other_run.path} was fitted on other neurons, or in another "
                              f"order, than the twin in {main}" + (f" for session {name}" if len(model.sessions) > 1
                                                                   else ""))
    return str(Path(other_run.path).resolve()), other


def fitted_neurons(run_path) -> dict[str, list]:
    """``{session: unit ids}`` in the order the twin's readouts were fitted (``neurons.json``;
    empty for runs written before it)."""
    path = Path(run_path) / NEURONS_FILE
    return read_json(path) if path.is_file() else {}


def probe_run(run_dir: str | os.PathLike, n_neurons: int = 8, mei_steps: int = 100, noise_images: int = 2000,
              overwrite: bool = False, execution: ExecutionConfig | None = None,
              progress: Progress | None = None, session: str | None = None) -> TwinProbe:
    """Tuning curves, RF maps (gradient and reverse correlation) and MEIs of the most
    reliable neurons (by validation correlation if known, else the first ``n_neurons``), shown
    the same stimulus in every channel of a colour twin; for a colour twin also which channel
    drives each neuron (gratings in one channel at a time) and colour MEIs;
    saves ``results/twin_probe.json``. A twin of several mice probes the neurons of the mouse
    ``session`` names. One process: refused under ``torchrun``."""
    from ..insilico import channel_energy, channel_tuning, dominant_channel_counts
    from .insilico import (achromatic, gradient_maps, most_exciting_inputs, reverse_correlation, rf_centers,
                           tuning_curves)

    for name, value, low in (("neurons", n_neurons, 1), ("mei_steps", mei_steps, 1), ("noise_images", noise_images, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    require_float32(execution, "the twin probe", "tuning curves, receptive fields and MEIs are measured in float32")
    refuse_torchrun("twin probe", "its experiments are not shared between processes")
    progress = default_progress(progress)
    run = open_twin_run(run_dir)
    run.check_result_writable(TwinProbe.result_name, overwrite)
    with Execution(execution) as ex:
        whole = cast(CortexTwin | TwinEnsemble, run.load_model(map_location=ex.device))  # open_twin_run checked it
        if session is None and len(whole.sessions) > 1:
            raise ConfigError(f"the twin in {run.path} has sessions {list(whole.sessions)}: name the mouse to probe "
                              f"with --session")
        if session is not None and session not in whole.sessions:
            raise ConfigError(f"session {session!r} is not in the twin of {run.path}; it has {list(whole.sessions)}")
        twin = SessionView(whole, session) if session is not None else whole
        shape = (whole.image_shape[1], whole.image_shape[2])
        n_total = whole.response_std(session).numel()
        model = achromatic(twin)
        evaluation = TwinEvaluation.load(run)
        if evaluation is not None and session is not None and len(whole.sessions) > 1:
            evaluation = (evaluation.sessions or {}).get(session)
        per = evaluation.per_neuron.get("twin", {}).get("correlation_to_average") if evaluation else None
        chosen = np.argsort(-np.asarray(per))[:n_neurons] if per else np.arange(min(n_neurons, n_total))
        progress.message(f"twin probe: neurons {chosen.tolist()}")
        channels = int(whole.image_shape[0])
        colour = None
        torch.manual_seed(0)
        with progress.task("twin probe", total=4 if channels == 1 else 6, unit="experiments") as task:
            tuning = tuning_curves(model, shape)
            task.update()
            grad = gradient_maps(model, shape, chosen)
            task.update()
            sta = reverse_correlation(model, shape, noise_images, chosen)
            task.update()
            meis, act = most_exciting_inputs(model, shape, chosen, steps=mei_steps)
            task.update()
            if channels > 1:
                by_channel = channel_tuning(twin, shape, channels)
                task.update()
                colour_meis, colour_act = most_exciting_inputs(twin, shape, chosen, steps=mei_steps, channels=channels)
                task.update()
                index = by_channel["preference_index"]
                colour = {
                    "channels": channels,
                    "peak_over_grey": by_channel["peak_over_grey"][:, chosen].tolist(),
                    "dominant_channel_all": by_channel["dominant_channel"].tolist(),
                    "preference_index_all": None if index is None else index.tolist(),
                    "meis": colour_meis.tolist(),
                    "mei_activation": colour_act.tolist(),
                    "mei_channel_energy": channel_energy(colour_meis, float(twin.input_mean)).tolist(),
                }
    result = TwinProbe(
        session=session,
        neurons=chosen.tolist(),
        image_shape=list(shape),
        tuning={
            "orientations": tuning["orientations"].tolist(),
            "spatial_frequencies": tuning["spatial_frequencies"].tolist(),
            "responses": tuning["responses"][:, :, chosen].tolist(),
            "osi_all": tuning["osi"].tolist(),
            "orientation_selectivity_all": tuning["orientation_selectivity"].tolist(),
            "preferred_orientation_all": tuning["preferred_orientation"].tolist(),
            "preferred_sf_all": tuning["preferred_sf"].tolist(),
        },
        gradient_maps=grad.tolist(),
        gradient_centers=rf_centers(grad).tolist(),
        reverse_correlation_maps=sta.tolist(),
        reverse_correlation_centers=rf_centers(sta).tolist(),
        meis=meis.tolist(),
        mei_activation=act.tolist(),
        colour=colour,
    )
    result.save(run)
    progress.message(f"  mean OSI {float(np.nanmean(tuning['osi'])):.3f}, mean 1 - circular variance "
                     f"{float(np.nanmean(tuning['orientation_selectivity'])):.3f}; "
                     f"MEI activations {np.round(act, 3).tolist()}")
    if colour is not None:
        per_channel, by_none = dominant_channel_counts(colour["dominant_channel_all"], channels)
        progress.message("  driven most by channel " + ", ".join(f"{c}: {n}" for c, n in enumerate(per_channel))
                         + f" neurons ({by_none} by none above grey); colour MEI activations "
                         f"{np.round(colour['mei_activation'], 3).tolist()}")
    return result
