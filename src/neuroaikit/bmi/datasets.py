"""Readers for the two public EEG data sets the BMI tools are checked on.

- PhysioNet EEG Motor Movement/Imagery (Schalk et al. 2004; Goldberger et al. 2000): EDF+
  files ``SNNN/SNNNRkk.edf`` with annotations ``T0`` rest, ``T1``/``T2``; in runs 4, 8 and 12
  ``T1`` is imagined opening/closing of the left fist, ``T2`` of the right fist.
- SSVEP exoskeleton (Kalunga et al. 2016; MOABB's ``Kalunga2016``/``SSVEPExo``): per subject
  ``subjectNN/record-[date]_raw.fif`` with ``record-[date]-eve.fif``; event codes 1 rest,
  2 13 Hz, 3 21 Hz, 4 17 Hz (the original GDF codes 33024-33027 in the same order; a test
  checks it on subject 1's GDF).

Both return an :class:`~neuroaikit.bmi.EpochsDataset` in uV with subject, session and
run per trial. MOABB treats every recording of one SSVEP subject as runs of one session; so do we.

Units of the SSVEP files: their samples are millivolts labelled as volts (see
:data:`SSVEP_FILE_UNITS_TO_V`), so the reader multiplies them by 1e-3 before anything else.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ..errors import DataError
from ._deps import require
from .epochs import EpochsDataset, PreprocessConfig, concatenate, epoch, find_events, preprocess, read_raw

PHYSIONET_IMAGERY_HANDS = (4, 8, 12)
PHYSIONET_CLASSES = {"left_fist": "T1", "right_fist": "T2"}
SSVEP_EVENT_ID = {"13": 2, "17": 4, "21": 3, "rest": 1}
SSVEP_FREQUENCIES = {"13": 13.0, "17": 17.0, "21": 21.0, "rest": None}
#: The SSVEP FIF files hold millivolts labelled as volts. They were recorded with a g.MOBIlab+
#: (16-bit ADC, EEG input range +-500 uV: BCI2000 wiki, User_Reference:gMOBIlabPlusADC); in the
#: files the sample values are quantised in steps of 2**-16 (a full scale of 1.0) and never exceed
#: 0.498 in magnitude, which is that range in mV, not in V (as V they would be +-0.5 V, 1000 times
#: the amplifier's range). The original GDF (subject 1) labels the same numbers "uV" and so is a
#: further 1e6 too small. Read as mV, the 7-45 Hz band has 3-10 uV standard deviation per channel.
SSVEP_FILE_UNITS_TO_V = 1e-3

#: MOABB's recipes for these data sets (paradigm defaults and dataset intervals)
PHYSIONET_MI_RECIPE = PreprocessConfig(l_freq=8.0, h_freq=32.0, tmin=0.0, tmax=3.0)
#: filter-bank CSP splits 4-40 Hz into its own bands (Ang et al. 2008), so it reads that band
PHYSIONET_FBCSP_RECIPE = PHYSIONET_MI_RECIPE.replace(l_freq=4.0, h_freq=40.0)
SSVEP_RECIPE = PreprocessConfig(l_freq=7.0, h_freq=45.0, tmin=2.0, tmax=4.0)
SSVEP_FILTER_BANK_RECIPE = PreprocessConfig(filter_bank=[[12.5, 13.5], [16.5, 17.5], [20.5, 21.5]], tmin=2.0,
                                            tmax=4.0)


def _data_folder(data_dir: str | os.PathLike, *parts: str) -> Path:
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    for candidate in (root.joinpath(*parts), root.joinpath("eeg", *parts), root.joinpath(*parts[1:])):
        if candidate.is_dir():
            return candidate
    raise DataError(f"{root}: no {'/'.join(parts)} folder (expected {root.joinpath(*parts)})")


def first_recording_channels(data_dir: str | os.PathLike, dataset: str, subject: int) -> list[str]:
    """The EEG channel names of ``subject``'s first recording in ``dataset`` (``ssvep-exo`` or
    ``physionet-mi``), read from its header only: checks a channel pick before any run starts."""
    mne = require("mne")
    if dataset == "physionet-mi":
        folder = _data_folder(data_dir, "physionet-eegmmidb", f"S{subject:03d}")
        path = folder / f"S{subject:03d}R{PHYSIONET_IMAGERY_HANDS[0]:02d}.edf"
    else:
        found = sorted((_data_folder(data_dir, "ssvep-exoskeleton") / f"subject{subject:02d}").glob("*_raw.fif"))
        if not found:
            raise DataError(f"SSVEP subject {subject}: no *_raw.fif recordings")
        path = found[0]
    raw = read_raw(path, preload=False)
    if dataset == "physionet-mi":
        mne.datasets.eegbci.standardize(raw)
    return [raw.ch_names[i] for i in mne.pick_types(raw.info, eeg=True)]


def load_physionet_mi(data_dir: str | os.PathLike, subject: int = 1, runs: Sequence[int] = PHYSIONET_IMAGERY_HANDS,
                      config: PreprocessConfig | None = None) -> EpochsDataset:
    """Imagined left vs right fist of one PhysioNet subject (runs 4, 8, 12 by default)."""
    mne = require("mne")
    config = config or PHYSIONET_MI_RECIPE
    bad = [r for r in runs if r not in PHYSIONET_IMAGERY_HANDS]
    if bad:
        raise DataError(f"run {bad[0]} is not an imagined-fist run; those are {PHYSIONET_IMAGERY_HANDS}")
    folder = _data_folder(data_dir, "physionet-eegmmidb", f"S{subject:03d}")
    parts = []
    for r in runs:
        path = folder / f"S{subject:03d}R{r:02d}.edf"
        raw = read_raw(path)
        mne.datasets.eegbci.standardize(raw)  # "Fc5." -> "FC5": names a standard montage knows
        events, found = find_events(raw)
        event_id = {name: found[code] for name, code in PHYSIONET_CLASSES.items() if code in found}
        if len(event_id) < len(PHYSIONET_CLASSES):
            raise DataError(f"{path}: lacks the annotations {sorted(PHYSIONET_CLASSES.values())}")
        raws, events = preprocess(raw, config, events)
        parts.append(epoch(raws, events, event_id, config, subject=subject, session=1, run=r,
                           name=f"physionet-mi-S{subject:03d}", classes=list(PHYSIONET_CLASSES)))
    return concatenate(parts, name=f"physionet-mi-S{subject:03d}")


def ssvep_subjects(data_dir: str | os.PathLike) -> list[int]:
    folder = _data_folder(data_dir, "ssvep-exoskeleton")
    return sorted(int(p.name[7:]) for p in folder.glob("subject[0-9][0-9]") if p.is_dir())


def load_ssvep_exo(data_dir: str | os.PathLike, subjects: Sequence[int] | int = 1,
                   config: PreprocessConfig | None = None, classes: Sequence[str] = tuple(SSVEP_EVENT_ID)
                   ) -> EpochsDataset:
    """SSVEP exoskeleton epochs (classes ``13``, ``17``, ``21``, ``rest``) of ``subjects``;
    every file of a subject is a run of session 1 (as in MOABB)."""
    config = config or SSVEP_RECIPE
    unknown = [c for c in classes if c not in SSVEP_EVENT_ID]
    if unknown:
        raise DataError(f"unknown SSVEP class {unknown[0]!r}; classes: {', '.join(SSVEP_EVENT_ID)}")
    folder = _data_folder(data_dir, "ssvep-exoskeleton")
    subjects = [subjects] if isinstance(subjects, int) else list(subjects)
    event_id = {c: SSVEP_EVENT_ID[c] for c in classes}
    parts = []
    for s in subjects:
        sub = folder / f"subject{s:02d}"
        files = sorted(sub.glob("*_raw.fif"))
        if not files:
            raise DataError(f"{sub}: no *_raw.fif recordings (subjects here: {ssvep_subjects(data_dir)})")
        for r, path in enumerate(files, start=1):
            events_file = path.with_name(path.name.replace("_raw.fif", "-eve.fif"))
            if not events_file.is_file():
                raise DataError(f"{path}: no events file {events_file.name} beside it")
            raw = read_raw(path)
            raw.apply_function(lambda x: x * SSVEP_FILE_UNITS_TO_V, channel_wise=False)
            events, _ = find_events(raw, events_file, event_id)
            raws, events = preprocess(raw, config, events)
            parts.append(epoch(raws, events, event_id, config, subject=s, session=1, run=r, name="ssvep-exo",
                               classes=list(classes),
                               info={"frequencies": {c: SSVEP_FREQUENCIES[c] for c in classes}}))
    return concatenate(parts, name="ssvep-exo")
