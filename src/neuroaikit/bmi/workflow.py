"""``neuroaikit bmi``: decode intent from EEG into a run folder.

Settings in a :class:`BMIConfig`; the result a :class:`~neuroaikit.bmi.BMIResult` in
``results/bmi.json``, figures in ``report.html``. Everything is validated (the data folder,
subjects, decoders, folds) before the run folder is created.

Recipes follow MOABB's for the same data: SSVEP epochs 2-4 s after the cue, 7-45 Hz IIR
band-pass for CCA/FBCCA/TRCA/deep decoders, and for the Riemannian decoders a filter bank of
1-Hz bands around 13, 17 and 21 Hz stacked as channels; motor imagery 0-3 s, 8-32 Hz, and
4-40 Hz for filter-bank CSP (its bank spans 4-40 Hz, as Ang et al.'s). Pseudo-online windows
are cut from the same recipe filtered causally (:attr:`PreprocessConfig.causal`).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import numpy as np

from ..config import (POSITIVE_INT, AppliesOnly, Config, InstanceOf, Interval, Options, Satisfies, UnusedSettingError,
                      is_finite_number)
from ..data.paths import default_data_root
from ..errors import ConfigError
from ..execution import ExecutionConfig
from ..progress import Progress, default_progress
from ..runs import RunWriter
from ._deps import check_installed
from .decoders import DECODERS, DEEP, SSVEP_ONLY, make_decoder
from .epochs import EpochsDataset, PreprocessConfig, channel_names, concatenate, matching_channels
from .evaluation import (SCHEMES, binomial_interval, check_trials_per_class, cross_validate, itr_bits_per_min,
                         n_splits, permutation_test, pseudo_online)
from .results import BMIResult, DecoderResult

DATASETS = ("ssvep-exo", "physionet-mi")
#: MOABB benchmark, docs/source/paper_results.rst of NeuroTechX/moabb ("Benchmark" page of the
#: MOABB documentation; Chevallier et al. 2024, arXiv:2404.15319): mean score (%) over all
#: subjects of the data set, within-session 5-fold. ``metric`` says which score: MOABB scores a
#: multi-class paradigm (SSVEP) by accuracy and a two-class one (left vs right hand imagery,
#: ``LeftRightImagery.scoring``) by ROC-AUC, so ours is compared with the same measure.
PUBLISHED = {
    "ssvep-exo": {"source": "MOABB benchmark (Chevallier et al. 2024), SSVEP all classes, Kalunga2016, 12 subjects",
                  "metric": "accuracy", "cca": 25.40, "trca": 24.84, "ts_lr": 70.86, "mdm": 70.89},
    "physionet-mi": {"source": "MOABB benchmark (Chevallier et al. 2024), motor imagery left vs right hand, "
                               "PhysionetMI, all 109 subjects (not S001 alone), ROC-AUC",
                     "metric": "roc_auc", "csp_lda": 65.75, "ts_lr": 67.28, "mdm": 54.76, "eegnet": 59.55,
                     "shallow": 65.19},
}
NOISE_MODELS = ("sensor", "input")
RIEMANN = ("ts_lr", "mdm")


def _str_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(isinstance(v, str) for v in value)


def _numbers(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(is_finite_number(v) for v in value)


@dataclass
class BMIConfig(Config):
    """Settings of one ``neuroaikit bmi`` run (see ``neuroaikit bmi --help``)."""

    dataset: str = "ssvep-exo"
    # where the image data sets are looked for too ($NEUROAIKIT_DATA, else ~/.neuroaikit/data), in eeg/
    data_dir: str = field(default_factory=lambda: str(default_data_root() / "eeg"))
    subjects: list = field(default_factory=lambda: [1])
    channels: list | None = None
    decoders: list = field(default_factory=lambda: ["cca", "trca", "ts_lr"])
    scheme: str = "within-session"
    folds: int = 5
    permutations: int = 0
    robustness: bool = False
    snrs_db: list = field(default_factory=lambda: [10.0, 0.0, -10.0])
    channels_lost: list = field(default_factory=lambda: [1, 2, 3, 4])
    eps_uv: list = field(default_factory=lambda: [0.5, 1.0, 2.0])
    attack_steps: int = 50
    eot: int = 10
    windows_s: list = field(default_factory=list)
    deep_epochs: int = 100
    deep_dropout: float = 0.5
    deep_noise: float | None = None
    noise_model: str = "sensor"
    selection_s: float | None = None
    seed: int = 42
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)

    _parameter_constraints: ClassVar[dict] = {
        "dataset": [Options(DATASETS)],
        "data_dir": [InstanceOf(str, os.PathLike, description="a path")],
        "subjects": [Satisfies(lambda v: isinstance(v, list) and len(v) > 0 and len(set(v)) == len(v) and all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in v), "a list of distinct subject numbers >= 1")],
        "channels": [Satisfies(channel_names, "a non-empty list of distinct channel names"), None],
        "decoders": [Satisfies(lambda v: _str_list(v) and all(d in DECODERS for d in v),
                               f"a list of decoders from {', '.join(DECODERS)}")],
        "scheme": [Options(SCHEMES)],
        "folds": [Interval(int, 2, None)],
        "permutations": [Interval(int, 0, None)],
        "robustness": [InstanceOf(bool)],
        "snrs_db": [Satisfies(_numbers, "a list of numbers (dB)")],
        "channels_lost": [Satisfies(lambda v: _numbers(v) and all(isinstance(k, int) and k >= 1 for k in v),
                                    "a list of integers >= 1")],
        "eps_uv": [Satisfies(lambda v: _numbers(v) and all(e >= 0 for e in v), "a list of budgets >= 0 (uV)")],
        "attack_steps": [POSITIVE_INT],
        "eot": [POSITIVE_INT],
        "windows_s": [Satisfies(lambda v: _numbers(v) and all(w > 0 for w in v), "a list of window lengths > 0 (s)")],
        "deep_epochs": [POSITIVE_INT],
        "deep_dropout": [Interval(float, 0, 1, closed="left")],
        "deep_noise": [Interval(float, 0, None, closed="neither"), None],
        "noise_model": [Options(NOISE_MODELS)],
        "selection_s": [Interval(float, 0, None, closed="neither"), None],
        "seed": [Interval(int, 0, None)],
    }

    _refuse_unused_changes: ClassVar[bool] = True
    _applies_only: ClassVar[tuple[AppliesOnly, ...]] = (
        AppliesOnly(("snrs_db", "channels_lost", "eps_uv", "attack_steps", "eot", "noise_model"),
                    lambda c: c.robustness, "applies only with {robustness}", ("robustness",)),
        # a 0 budget is scored unattacked
        AppliesOnly(("attack_steps", "eot"), lambda c: any(eps > 0 for eps in c.eps_uv),
                    "applies only to the attack, and {eps_uv} holds no budget above 0", ("eps_uv",)),
        AppliesOnly(("deep_epochs", "deep_dropout", "deep_noise"), lambda c: any(d in DEEP for d in c.decoders),
                    f"applies only to the deep decoders ({', '.join(DEEP)})", ("decoders",)),
        AppliesOnly(("eot",), lambda c: bool(c.deep_noise) and any(d in DEEP for d in c.decoders),
                    "applies only to a stochastic decoder: a deep decoder with {deep_noise}", ("decoders", "deep_noise")),
        AppliesOnly(("folds",), lambda c: c.scheme == "within-session" or bool(c.windows_s),
                    lambda c: f"applies only to {{scheme}} within-session or {{windows_s}} ({{scheme}} {c.scheme} "
                              "holds out whole groups)", ("scheme", "windows_s")),
    )

    def _check(self) -> None:
        if self.dataset == "physionet-mi":
            bad = [d for d in self.decoders if d in SSVEP_ONLY]
            if bad:
                raise ConfigError(f"{bad[0]} decodes SSVEP, not the motor-imagery data set")
        if self.dataset != "physionet-mi" and "fbcsp_lda" in self.decoders:
            raise ConfigError("fbcsp_lda decodes motor imagery (band power), not SSVEP")
        if "xdawn_ts_lr" in self.decoders:
            raise ConfigError("xdawn_ts_lr decodes P300 ERPs; neither shared data set is a P300 one")
        precision = self.execution.precision
        if precision != "32" and not any(d in DEEP for d in self.decoders):
            # only the deep decoders train through the execution layer: the precision would be
            # recorded as used and never applied
            raise ConfigError(f"--precision {precision} applies to the deep decoders ({', '.join(DEEP)}) only "
                              f"(execution.precision); add one to --decoders or leave precision at 32")


def find_unused_setting(config: BMIConfig, given: set[str]) -> UnusedSettingError | None:
    """The first setting in ``given`` (field names) this run would not use, as the error that says
    so, or ``None``: ``config.unused_setting(given)``, under the rules of
    ``BMIConfig._applies_only``.

    A setting that is silently ignored reads, in the saved config, as if it had shaped the results:
    :class:`BMIConfig` refuses any such field changed from its default (so a ``config.json`` of an
    older run that holds one is refused too), and the CLI any such option typed at all (``--eot 10``
    without a stochastic decoder).
    """
    return config.unused_setting(given)


def recipe_for(config: BMIConfig, decoder: str | None = None, causal: bool = False) -> PreprocessConfig:
    """The preprocessing ``decoder`` reads on ``config``'s data set (``None``: the data set's own
    recipe, in whose band noise SNRs are stated), causal for pseudo-online windows."""
    from . import datasets as d

    if config.dataset == "ssvep-exo":
        recipe = d.SSVEP_FILTER_BANK_RECIPE if decoder in RIEMANN else d.SSVEP_RECIPE
    else:
        recipe = d.PHYSIONET_FBCSP_RECIPE if decoder == "fbcsp_lda" else d.PHYSIONET_MI_RECIPE
    return recipe.replace(channels=config.channels, causal=causal)


def load_dataset(config: BMIConfig, recipe: PreprocessConfig | None = None) -> EpochsDataset:
    """``config``'s subjects read with ``recipe`` (default: the data set's own)."""
    from . import datasets as d

    recipe = recipe or recipe_for(config)
    if config.dataset == "ssvep-exo":
        return d.load_ssvep_exo(config.data_dir, config.subjects, config=recipe)
    subjects = [d.load_physionet_mi(config.data_dir, s, config=recipe) for s in config.subjects]
    return subjects[0] if len(subjects) == 1 else concatenate(subjects, name="physionet-mi")


class _Datasets:
    """Each recipe's epochs, read once per run."""

    def __init__(self, config: BMIConfig):
        self.config = config
        self._read: dict[str, EpochsDataset] = {}

    def __call__(self, recipe: PreprocessConfig) -> EpochsDataset:
        key = repr(recipe)
        if key not in self._read:
            self._read[key] = load_dataset(self.config, recipe)
        return self._read[key]


def _decoder_for(name: str, ds: EpochsDataset, config: BMIConfig, ex_config: ExecutionConfig):
    if name in DEEP:
        noise = {"input": {"kind": "gaussian", "sigma": config.deep_noise}} if config.deep_noise else None
        return make_decoder(name, ds, epochs=config.deep_epochs, dropout=config.deep_dropout, noise=noise,
                            seed=config.seed, execution=ex_config)
    return make_decoder(name, ds)


def _confusion(y_true, y_pred, k: int) -> list[list[int]]:
    m = np.zeros((k, k), dtype=int)
    np.add.at(m, (y_true, y_pred), 1)
    return m.tolist()


def _positions(ds: EpochsDataset) -> tuple[np.ndarray | None, list[list[int]] | None]:
    """Electrode positions (standard 10-05) and, for filter-bank data, each electrode's channels."""
    from ._deps import require

    mne = require("mne")
    base = ds.info.get("base_channels", ds.ch_names)
    groups = None
    if "base_channels" in ds.info:
        groups = [[b * len(base) + i for b in range(len(ds.info["bands"]))] for i in range(len(base))]
    montage = mne.channels.make_standard_montage("standard_1005")
    pos = {k.lower(): v for k, v in montage.get_positions()["ch_pos"].items()}
    if all(c.lower() in pos for c in base):
        return np.array([pos[c.lower()] for c in base]), groups
    return None, groups


def _robustness_splits(ds: EpochsDataset, scheme: str, seed: int):
    """(subject, train indices, test indices) per subject. Within a subject (every scheme but
    ``loso``): a stratified 75 % to fit, the other 25 % to perturb. ``loso``: fit on the other
    subjects, perturb every trial of the held-out one, as the scheme's accuracy is measured."""
    from sklearn.model_selection import train_test_split

    from ..errors import DataError

    for s in sorted(set(ds.subject)):
        own = np.flatnonzero(ds.subject == s)
        if scheme == "loso":
            yield s, np.flatnonzero(ds.subject != s), own
            continue
        # a quarter of the trials, and at least one of each class (few trials: more than a quarter)
        labels, counts = np.unique(ds.y[own], return_counts=True)
        if counts.min() < 2:
            raise DataError(f"subject {s}: class {ds.classes[int(labels[counts.argmin()])]!r} has 1 trial; the robustness table needs 2 of each class "
                            f"(one to learn from, one to perturb)")
        n_test = max(math.ceil(0.25 * len(own)), len(labels))
        train, test = train_test_split(own, test_size=n_test, stratify=ds.y[own], random_state=seed)
        yield s, train, test


def _sensor_noise(ds: EpochsDataset, recipe: PreprocessConfig, reference: EpochsDataset,
                  reference_recipe: PreprocessConfig, test: np.ndarray):
    """Noise before preprocessing for the test trials of ``ds`` (read with ``recipe``), its SNR
    stated in ``reference_recipe``'s band on ``reference``, the same trials read that way."""
    from ..errors import DataError
    from .robustness import SensorNoise

    if len(reference) != len(ds) or not (np.array_equal(reference.y, ds.y)
                                         and np.array_equal(reference.subject, ds.subject)):
        raise DataError(f"{ds.name}: the trials read with the decoder's recipe differ from the data set's own "
                        "(rejection?); noise SNRs cannot be stated in one band")
    bands = recipe.filter_bank or [[recipe.l_freq, recipe.h_freq]]
    return SensorNoise(sfreq=ds.sfreq, bands=bands, reference_band=[reference_recipe.l_freq, reference_recipe.h_freq],
                       reference_power=(reference.X[test] ** 2).mean(axis=(1, 2)),
                       filter_method=recipe.filter_method)


def loso_fold_models(ds: EpochsDataset, pred) -> dict:
    """The decoder of each leave-one-subject-out fold, keyed by the subject it held out (the
    folds run over the subjects in sorted order; the check guards that order)."""
    subjects = sorted(set(ds.subject))
    if pred.models is None or len(pred.models) != len(subjects):
        raise AssertionError("loso cross-validation kept one decoder per subject")
    held_out = [set(pred.subject[pred.fold == k]) for k in range(len(subjects))]
    if held_out != [{s} for s in subjects]:
        raise AssertionError("loso folds do not hold out the subjects in sorted order")
    return dict(zip(subjects, pred.models))


def _robustness(decoder, ds: EpochsDataset, config: BMIConfig, stochastic: bool, recipe: PreprocessConfig | None = None,
                datasets=None, on_subject: Callable[[], None] | None = None, fitted: dict | None = None) -> dict:
    """Per subject, fit and perturb on the splits of :func:`_robustness_splits`; mean over subjects.
    With ``config.noise_model == "sensor"``, ``recipe`` (how ``ds`` was read) and ``datasets``
    (a reader of each recipe's epochs) give the noise its filters and its reference band;
    ``on_subject`` is called after each subject's table (progress). ``fitted`` maps a subject to a
    decoder already fitted on that subject's training trials (under ``loso``, the cross-validation
    fold that held the subject out), which is used instead of fitting a clone again."""
    from sklearn.base import clone

    from .robustness import robustness_table

    positions, groups = _positions(ds)
    tables = []
    for subject, train, test in _robustness_splits(ds, config.scheme, config.seed):
        model = fitted[subject] if fitted and subject in fitted else clone(decoder).fit(ds.X[train], ds.y[train])
        noise = None
        if config.noise_model == "sensor" and recipe is not None and datasets is not None:
            noise = _sensor_noise(ds, recipe, datasets(recipe_for(config)), recipe_for(config), test)
        tables.append(robustness_table(
            model, ds.X[test], ds.y[test], snrs_db=config.snrs_db, channels_lost=config.channels_lost,
            eps_uv=config.eps_uv, attack_steps=config.attack_steps, eot=config.eot if stochastic else 1,
            positions=positions, groups=groups, seed=config.seed, sensor_noise=noise))
        if on_subject is not None:
            on_subject()
    mean: dict = {"clean": float(np.mean([t["clean"] for t in tables])), "eot": tables[0]["eot"],
                  "noise_model": tables[0]["noise_model"],
                  "electrode_shift": float(np.mean([t["electrode_shift"] for t in tables]))}
    for key in ("noise", "channels_lost", "apgd"):
        mean[key] = {k: float(np.mean([t[key][k] for t in tables])) for k in tables[0][key]}
    return mean


def csp_patterns(ds: EpochsDataset, n_components: int = 4) -> dict:
    """The CSP patterns (Haufe et al.: columns of the inverse filters) of a CSP fitted on all
    trials, with the channel names, for topographic maps."""
    from .decoders import csp_lda, csp_rank

    pipe = csp_lda(n_components=n_components, rank=csp_rank(ds.X)).fit(ds.X, ds.y)
    csp = pipe.steps[0][1]
    return {"ch_names": list(ds.ch_names), "patterns": csp.patterns_[:n_components].tolist()}


def class_spectra(ds: EpochsDataset) -> dict:
    """Mean power spectrum (Welch, over channels and trials) per class."""
    from scipy.signal import welch

    freqs, psd = welch(ds.X, fs=ds.sfreq, nperseg=min(ds.n_samples, int(ds.sfreq)), axis=-1)
    keep = freqs <= 45
    return {"freqs": freqs[keep].tolist(),
            "psd": {c: psd[ds.y == i].mean((0, 1))[keep].tolist() for i, c in enumerate(ds.classes)
                    if (ds.y == i).any()}}


def decode(config: BMIConfig, progress: Progress | None = None) -> BMIResult:
    """Evaluate every decoder of ``config`` (see the module docstring)."""
    from ..execution import Execution

    check_installed()
    progress = default_progress(progress)
    t_start = time.perf_counter()
    datasets = _Datasets(config)
    plain = datasets(recipe_for(config))
    # only within-session folds are stratified k-fold; the other schemes hold out whole groups
    check_trials_per_class(plain, config.folds if config.scheme == "within-session" else None)
    with Execution(config.execution, join_group=False) as ex:
        execution = ex.describe()
    rows = []
    selection_s = selection_time(config)
    with progress.task("decoders", total=len(config.decoders), unit="decoders") as task:
        for name in config.decoders:
            recipe = recipe_for(config, name)
            ds = datasets(recipe)
            decoder = _decoder_for(name, ds, config, config.execution)
            # a deep decoder under loso with robustness runs for most of an hour: say where it is
            with progress.task(f"{name}: {config.scheme} folds", total=n_splits(ds, config.scheme, config.folds,
                                                                                 config.seed), unit="folds") as step:
                # under loso the robustness splits are the folds: their decoders are reused, not refitted
                reuse = config.robustness and config.scheme == "loso"
                pred = cross_validate(decoder, ds, config.scheme, config.folds, config.seed, on_fold=step.update,
                                      keep_models=reuse)
            correct = int((pred.y_true == pred.y_pred).sum())
            row = DecoderResult(
                name=name, scheme=config.scheme, accuracy=pred.accuracy,
                interval=list(binomial_interval(correct, len(pred.y_true))), n_trials=len(pred.y_true),
                per_subject=pred.accuracy_by(pred.subject), confusion=_confusion(pred.y_true, pred.y_pred,
                                                                                 len(ds.classes)),
                fit_time_s=pred.fit_time_s, predict_time_s_per_trial=pred.predict_time_s,
                itr_bits_per_min=itr_bits_per_min(pred.accuracy, len(ds.classes), selection_s),
                itr_selection_s=selection_s, roc_auc=pred.roc_auc)
            if config.permutations:
                with progress.task(f"{name}: permutations", total=config.permutations,
                                   unit="permutations") as step:
                    p, scores = permutation_test(decoder, ds, pred.accuracy, config.scheme, config.folds,
                                                 config.permutations, config.seed, on_permutation=step.update)
                row.permutation_p, row.permuted_mean, row.n_permutations = p, float(np.mean(scores)), len(scores)
            if config.robustness:
                with progress.task(f"{name}: robustness", total=len(set(ds.subject)), unit="subjects") as step:
                    row.robustness = _robustness(decoder, ds, config,
                                                 stochastic=bool(name in DEEP and config.deep_noise),
                                                 recipe=recipe, datasets=datasets, on_subject=step.update,
                                                 fitted=loso_fold_models(ds, pred) if reuse else None)
            if config.windows_s:
                causal = datasets(recipe_for(config, name, causal=True))
                row.pseudo_online = pseudo_online(decoder, causal, list(config.windows_s), config.folds, config.seed)
            rows.append(row)
            task.update(decoder=name, accuracy=round(pred.accuracy, 3))
    return BMIResult(
        dataset=plain.summary(), decoders=rows, chance=1.0 / len(plain.classes),
        published=PUBLISHED.get(config.dataset, {}),
        csp_patterns=csp_patterns(plain) if config.dataset == "physionet-mi" else None,
        spectra=class_spectra(plain) if config.dataset == "ssvep-exo" else None,
        execution=execution, time_s=time.perf_counter() - t_start)


def selection_time(config: BMIConfig) -> float:
    """Wolpaw's time per selection for the ITR: ``config.selection_s``, or else the time from the
    cue to the end of the epoch (the recipe's ``tmax``), with no pause between selections."""
    if config.selection_s is not None:
        return float(config.selection_s)
    tmax = float(recipe_for(config).tmax)
    if tmax <= 0:
        raise ConfigError("the epochs end before the cue: give selection_s, the time per selection for the ITR")
    return tmax


def validate(config: BMIConfig) -> None:
    """Everything that can be checked before a run folder is created."""
    from .datasets import _data_folder, first_recording_channels, ssvep_subjects

    check_installed()
    if config.dataset == "ssvep-exo":
        have = ssvep_subjects(config.data_dir)
        missing = [s for s in config.subjects if s not in have]
        if missing:
            raise ConfigError(f"--subjects: no SSVEP subject {missing[0]} in {config.data_dir} (have {have})")
    else:
        for subject in config.subjects:
            _data_folder(config.data_dir, "physionet-eegmmidb", f"S{subject:03d}")
    if config.scheme == "loso" and len(config.subjects) < 2:
        raise ConfigError("--scheme loso needs at least 2 --subjects")
    if config.channels:
        matching_channels(first_recording_channels(config.data_dir, config.dataset, config.subjects[0]), config.channels)
    if config.robustness:
        n_channels = len(config.channels or first_recording_channels(config.data_dir, config.dataset, config.subjects[0]))
        too_many = [k for k in config.channels_lost if k >= n_channels]
        if too_many:
            # with every electrode zeroed nothing is left to decode (covariance decoders fail on it)
            raise ConfigError(f"channels_lost: cannot lose {too_many[0]} of the {n_channels} electrodes "
                              f"(at most {n_channels - 1})")


def bmi_run(config: BMIConfig, out: str | os.PathLike, *, overwrite: bool = False,
            progress: Progress | None = None, report: bool = True):
    """:func:`decode` into a new run folder ``out`` (config.json, results/bmi.json, metrics.json,
    log.txt, report.html). One process: under torchrun every rank would run the whole job into
    the same folder, so more than one process is refused."""
    from ..execution import refuse_torchrun

    refuse_torchrun("bmi", "its decoders are fitted one after another")
    progress = default_progress(progress)
    validate(config)
    writer = RunWriter(out, config, overwrite=overwrite, progress=progress)
    with writer:
        result = decode(config, progress)
        result.save(writer.run)
        writer.run.save_metrics({f"{r.name}_accuracy": r.accuracy for r in result.decoders}
                                | {"execution": result.execution})
        run = writer.commit()
    if report:
        from ..report import build_report

        build_report(run.path)
    return run, result
