"""EEG files to labelled epochs: reading (through MNE), events, preprocessing, epoching.

The pipeline is ``read_raw`` -> ``find_events`` -> ``preprocess`` -> ``epoch``; each step
checks its input and fails in one line naming the problem (a file with no events, a sampling
rate too low for the filter, channels a montage does not know, epochs of unequal length).

Epochs are cut here from the continuous array (sample ``event + round(tmin * sfreq)`` to
``event + round(tmax * sfreq)``, both ends included, as :class:`mne.Epochs` does; a test checks
the two agree to 1e-6 uV) and returned as an :class:`EpochsDataset` in microvolts: trials x
channels x samples with a label and the subject, session and run of every trial.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from ..config import POSITIVE, Config, InstanceOf, Interval, Options, Satisfies, is_finite_number
from ..errors import ConfigError, DataError
from ._deps import require

#: file suffixes MNE reads, and the reader it uses
READERS = {".edf": "read_raw_edf", ".bdf": "read_raw_bdf", ".gdf": "read_raw_gdf", ".fif": "read_raw_fif",
           ".vhdr": "read_raw_brainvision", ".set": "read_raw_eeglab"}
VOLTS_TO_UV = 1e6


def _bands(value: Any) -> bool:
    """A non-empty sequence of (low, high) pairs in Hz with 0 < low < high (an (n, 2) array too)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(
        isinstance(b, (list, tuple, np.ndarray)) and len(b) == 2 and all(is_finite_number(f) for f in b)
        and 0 < b[0] < b[1] for b in value)


def _frequencies(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(is_finite_number(f) and f > 0 for f in value)


def channel_names(value: Any) -> bool:
    """A non-empty list of distinct channel names (case-insensitive)."""
    return (isinstance(value, (list, tuple)) and len(value) > 0
            and all(isinstance(c, str) and c.strip() for c in value)
            and len({c.strip().lower() for c in value}) == len(value))


@dataclass
class PreprocessConfig(Config):
    """How raw EEG becomes epochs.

    ``l_freq``/``h_freq``: band-pass edges in Hz (``None``: no high-/low-pass); ``filter_bank``:
    instead of one band, a list of ``[low, high]`` bands whose filtered copies are stacked as
    channels (MOABB's ``FilterBankSSVEP`` + ``ExtendedSSVEPSignal``); ``filter_method``: MNE's
    ``iir`` (4th-order Butterworth, applied forward and backward) or ``fir``; ``notch``: line
    frequencies to remove; ``reference``: ``"none"``, ``"average"`` or a channel name;
    ``resample``: new sampling rate; ``tmin``/``tmax``: the epoch in s relative to the event;
    ``reject_uv``: drop epochs whose peak-to-peak amplitude on any channel exceeds this (uV);
    ``montage``: a standard montage name whose positions every channel must have (``None``: skip);
    ``channels``: the EEG channels to keep (names, case-insensitive; ``None``: all), picked after
    re-referencing, so an average reference is still the average of every EEG channel;
    ``causal``: filter forward only (IIR: one pass; FIR: minimum phase; the notch likewise), so a
    sample depends on none after it, as a filter running online would (the default, zero phase
    over the whole recording, lets each sample see up to a filter's length of the future).
    """

    l_freq: float | None = None
    h_freq: float | None = None
    filter_bank: list | None = None
    filter_method: str = "iir"
    notch: list | None = None
    reference: str = "none"
    resample: float | None = None
    tmin: float = 0.0
    tmax: float = 2.0
    reject_uv: float | None = None
    montage: str | None = None
    channels: list | None = None
    causal: bool = False

    _parameter_constraints: ClassVar[dict] = {
        "l_freq": [Interval(float, 0, None, closed="neither"), None],
        "h_freq": [Interval(float, 0, None, closed="neither"), None],
        "filter_bank": [Satisfies(_bands, "a list of [low, high] bands with 0 < low < high"), None],
        "filter_method": [Options(("iir", "fir"))],
        "notch": [Satisfies(_frequencies, "a list of frequencies > 0"), None],
        "reference": [InstanceOf(str)],
        "resample": [POSITIVE, None],
        "tmin": [Interval(float, None, None)],
        "tmax": [Interval(float, None, None)],
        "reject_uv": [POSITIVE, None],
        "montage": [InstanceOf(str), None],
        "channels": [Satisfies(channel_names, "a non-empty list of distinct channel names"), None],
        "causal": [InstanceOf(bool)],
    }

    def _check(self) -> None:
        if self.tmax <= self.tmin:
            raise ConfigError(f"tmax ({self.tmax}) must be after tmin ({self.tmin})")
        if self.l_freq is not None and self.h_freq is not None and self.l_freq >= self.h_freq:
            raise ConfigError(f"l_freq ({self.l_freq}) must be below h_freq ({self.h_freq})")
        if self.filter_bank is not None and (self.l_freq is not None or self.h_freq is not None):
            raise ConfigError("give either a band (l_freq/h_freq) or a filter_bank, not both")
        if self.causal and self.resample is not None:
            raise ConfigError("a causal recipe cannot resample: MNE's resampling looks ahead (zero phase)")

    @property
    def upper_edge(self) -> float | None:
        """The highest frequency a filter must pass (the sampling rate must exceed twice it)."""
        if self.filter_bank:
            return max(float(b[1]) for b in self.filter_bank)
        return self.h_freq




@dataclass
class EpochsDataset:
    """Labelled epochs: ``X`` (trials, channels, samples) in uV, ``y`` class indices into
    ``classes``, and per trial its ``subject``, ``session`` and ``run``.

    ``info`` holds what decoders may need: ``frequencies`` (class -> stimulation frequency in Hz,
    ``None`` for a rest class) for SSVEP, ``bands`` when channels are filter-bank copies.
    """

    X: np.ndarray
    y: np.ndarray
    classes: list[str]
    sfreq: float
    ch_names: list[str]
    tmin: float = 0.0
    subject: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    session: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    run: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    name: str = "eeg"
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.X, (list, tuple)):
            lengths = sorted({np.shape(x)[-1] for x in self.X})
            if len(lengths) > 1:
                raise DataError(f"{self.name}: epochs of unequal length ({', '.join(map(str, lengths))} samples); "
                                f"cut every epoch with the same tmin/tmax and sampling rate")
            self.X = np.stack(self.X) if len(self.X) else np.zeros((0, len(self.ch_names), 0))
        self.X = np.asarray(self.X, dtype=np.float64)
        self.y = np.asarray(self.y, dtype=np.int64)
        if self.X.ndim != 3:
            raise DataError(f"{self.name}: epochs must be (trials, channels, samples), got shape {self.X.shape}")
        n = len(self.X)
        if len(self.y) != n:
            raise DataError(f"{self.name}: {n} epochs but {len(self.y)} labels")
        if self.X.shape[1] != len(self.ch_names):
            raise DataError(f"{self.name}: {self.X.shape[1]} channels in the data but {len(self.ch_names)} names")
        if n and (self.y.min() < 0 or self.y.max() >= len(self.classes)):
            raise DataError(f"{self.name}: labels must index the {len(self.classes)} classes")
        for key in ("subject", "session", "run"):
            values = np.asarray(getattr(self, key), dtype=object)
            if values.size == 0:
                values = np.full(n, "1" if key != "subject" else "1", dtype=object)
            if len(values) != n:
                raise DataError(f"{self.name}: {len(values)} {key} entries for {n} epochs")
            setattr(self, key, values.astype(str).astype(object))

    def __len__(self) -> int:
        return len(self.X)

    @property
    def n_samples(self) -> int:
        return self.X.shape[-1]

    @property
    def times(self) -> np.ndarray:
        return self.tmin + np.arange(self.n_samples) / self.sfreq

    def subset(self, mask: np.ndarray) -> "EpochsDataset":
        """The trials where ``mask`` (boolean or indices) selects."""
        idx = np.arange(len(self))[mask]
        return EpochsDataset(self.X[idx], self.y[idx], list(self.classes), self.sfreq, list(self.ch_names), self.tmin,
                             self.subject[idx], self.session[idx], self.run[idx], self.name, dict(self.info))

    def class_counts(self) -> dict[str, int]:
        return {c: int((self.y == i).sum()) for i, c in enumerate(self.classes)}

    def summary(self) -> dict:
        return {"name": self.name, "n_trials": len(self), "n_channels": self.X.shape[1], "n_samples": self.n_samples,
                "sfreq": self.sfreq, "tmin": self.tmin, "classes": list(self.classes),
                "class_counts": self.class_counts(), "subjects": sorted(set(self.subject)),
                "sessions": sorted(set(self.session)), "runs": sorted(set(self.run)),
                "channel_sd_uv": self.channel_sd_range()}

    def channel_sd_range(self) -> list[float]:
        """The smallest and largest channel standard deviation (uV, over trials and samples) among
        the subjects: ``[min, max]`` over subjects and channels."""
        if len(self) == 0:
            return []
        sds = [self.X[self.subject == s].std(axis=(0, 2)) for s in sorted(set(self.subject))]
        return [float(min(sd.min() for sd in sds)), float(max(sd.max() for sd in sds))]


def concatenate(parts: Sequence[EpochsDataset], name: str | None = None) -> EpochsDataset:
    """One data set from several (runs, sessions, subjects) with the same classes, channels,
    sampling rate and epoch length."""
    if not parts:
        raise DataError("no epochs to concatenate")
    first = parts[0]
    for p in parts[1:]:
        if p.classes != first.classes:
            raise DataError(f"{p.name}: classes {p.classes} differ from {first.classes}")
        if p.ch_names != first.ch_names:
            raise DataError(f"{p.name}: channels differ from those of {first.name} (channels marked bad in a "
                            "recording are left out: give --channels the ones every recording has)")
        if p.sfreq != first.sfreq:
            raise DataError(f"{p.name}: sampling rate {p.sfreq} Hz differs from {first.sfreq} Hz")
        if p.n_samples != first.n_samples:
            raise DataError(f"{p.name}: epochs of unequal length ({p.n_samples} and {first.n_samples} samples)")
    return EpochsDataset(np.concatenate([p.X for p in parts]), np.concatenate([p.y for p in parts]), list(first.classes),
                         first.sfreq, list(first.ch_names), first.tmin,
                         np.concatenate([p.subject for p in parts]), np.concatenate([p.session for p in parts]),
                         np.concatenate([p.run for p in parts]), name or first.name, dict(first.info))


# -- reading -------------------------------------------------------------------
def read_raw(path: str | os.PathLike, preload: bool = True):
    """An MNE Raw from an EDF/BDF/GDF, FIF, BrainVision (.vhdr) or EEGLAB (.set) file."""
    mne = require("mne")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"EEG file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise DataError(f"{path}: unknown EEG format {suffix!r}; readable: {', '.join(READERS)}")
    reader = getattr(mne.io, READERS[suffix])
    try:
        return reader(path, preload=preload, verbose="error")
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a data problem
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: not a readable {suffix} file ({first})") from None


def find_events(raw, events_file: str | os.PathLike | None = None, event_id: Mapping[str, int] | None = None,
                stim_channel: str | None = None) -> tuple[np.ndarray, dict[str, int]]:
    """``(events, event_id)``: from an MNE events file, else the annotations, else a stim
    channel. ``event_id`` (name -> code) keeps only those events; a file without any is an error.
    With annotations, its names are their descriptions and the events get its codes."""
    mne = require("mne")
    source = Path(raw.filenames[0]).name if getattr(raw, "filenames", None) and raw.filenames[0] else "the recording"
    if events_file is not None:
        try:
            events = mne.read_events(events_file, verbose="error")
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"{events_file}: not a readable events file ({str(exc).splitlines()[0]})") from None
        found = {str(c): int(c) for c in np.unique(events[:, 2])} if len(events) else {}
    elif len(raw.annotations) and event_id is not None:
        # the names are annotation descriptions: MNE gives each the caller's code (else it numbers the
        # descriptions alphabetically, and codes 1, 2 would name whichever descriptions sort first)
        descriptions = sorted({str(d) for d in raw.annotations.description})
        named = {name: int(code) for name, code in event_id.items() if name in descriptions}
        if not named:
            raise DataError(f"{source}: none of the events {sorted(event_id)} occur; its annotations are "
                            f"{descriptions}")
        events, found = mne.events_from_annotations(raw, event_id=named, verbose="error")
    elif len(raw.annotations):
        events, found = mne.events_from_annotations(raw, verbose="error")
    else:
        stims = [stim_channel] if stim_channel else [raw.ch_names[i] for i in mne.pick_types(raw.info, stim=True)]
        if stims and stims[0] not in raw.ch_names:
            raise DataError(f"{source}: no stim channel {stims[0]!r}")
        events = mne.find_events(raw, stim_channel=stims, verbose="error") if stims else np.zeros((0, 3), int)
        found = {str(c): int(c) for c in np.unique(events[:, 2])} if len(events) else {}
    if len(events) == 0:
        raise DataError(f"{source}: no events (no annotations, no stim channel and no events file)")
    if event_id is not None:
        wanted = dict(event_id)
        missing = [k for k, v in wanted.items() if v not in events[:, 2]]
        if len(missing) == len(wanted):
            raise DataError(f"{source}: none of the events {sorted(wanted)} occur (found codes {sorted(found)})")
        events = events[np.isin(events[:, 2], list(wanted.values()))]
        found = wanted
    return events, found


def matching_channels(available: Sequence[str], wanted: Sequence[str]) -> list[str]:
    """The recording's names of the ``wanted`` channels (matched case-insensitively), in the
    order asked; a channel the recording lacks is a one-line error listing what it has."""
    by_lower = {name.lower(): name for name in available}
    missing = [c for c in wanted if c.strip().lower() not in by_lower]
    if missing:
        shown = ", ".join(list(available)[:8]) + (f" ... ({len(available)} in all)" if len(available) > 8 else "")
        raise DataError(f"channel(s) {', '.join(missing)} not in the recording; its EEG channels: {shown}")
    return [by_lower[c.strip().lower()] for c in wanted]


def check_montage(raw, montage: str) -> None:
    """Set the standard ``montage``; every EEG channel must be on it."""
    mne = require("mne")
    try:
        positions = mne.channels.make_standard_montage(montage)
    except ValueError:
        raise ConfigError(f"unknown montage {montage!r}; see mne.channels.get_builtin_montages()") from None
    known = {n.lower() for n in positions.ch_names}
    eeg = [raw.ch_names[i] for i in mne.pick_types(raw.info, eeg=True)]
    missing = [c for c in eeg if c.lower() not in known]
    if missing:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        raise DataError(f"channels missing from montage {montage}: {shown}")
    raw.set_montage(positions, match_case=False, verbose="error")


def _phase(config: PreprocessConfig) -> str:
    """MNE's name for the recipe's filter phase (its causal one differs between IIR and FIR)."""
    if not config.causal:
        return "zero"
    return "forward" if config.filter_method == "iir" else "minimum"


def preprocess(raw, config: PreprocessConfig, events: np.ndarray | None = None):
    """Reference, notch, band-pass (or filter bank) and resample ``raw`` (in place copies).

    Returns ``(raws, events)``: one Raw per band (one for a single band) and the events at the
    new sampling rate."""
    require("mne")
    sfreq = float(raw.info["sfreq"])
    upper = config.upper_edge
    if upper is not None and sfreq <= 2 * upper:
        raise DataError(f"sampling rate {sfreq:g} Hz is not above twice the filter's upper edge ({upper:g} Hz)")
    if config.resample is not None and upper is not None and config.resample <= 2 * upper:
        raise DataError(f"resampling to {config.resample:g} Hz would not keep the filter's upper edge "
                        f"({upper:g} Hz) below Nyquist")
    # channels marked bad in the recording are left out, as MNE's picks, the montage check and the
    # channel list of the command's validation leave them out
    named_bad = [c for c in [*(config.channels or []), *([config.reference] if config.reference not in ("none", "average")
                                                  else [])] if c.strip().lower() in {b.lower() for b in raw.info["bads"]}]
    if named_bad:
        raise DataError(f"channel(s) {', '.join(named_bad)} are marked bad in the recording (info['bads']), and "
                        "bad channels are left out; choose others")
    raw = raw.copy().pick("eeg", exclude="bads")
    if config.channels:
        kept = matching_channels(raw.ch_names, config.channels)  # checked before any filtering
    if config.reference == "average":
        raw.set_eeg_reference("average", projection=False, verbose="error")
    elif config.reference != "none":
        named = [c for c in raw.ch_names if c.lower() == config.reference.strip().lower()]
        if not named:
            raise DataError(f"reference channel {config.reference!r} is not in the recording")
        raw.set_eeg_reference(named[:1], verbose="error")
    if config.channels:
        raw.pick(kept)
    if config.montage:
        check_montage(raw, config.montage)
    if config.notch:
        too_high = [f for f in config.notch if f >= sfreq / 2]
        if too_high:
            raise DataError(f"notch frequency {too_high[0]:g} Hz is above Nyquist ({sfreq / 2:g} Hz)")
        raw.notch_filter(config.notch, phase="minimum" if config.causal else "zero", verbose="error")
    bands = config.filter_bank or [[config.l_freq, config.h_freq]]
    raws = []
    for low, high in bands:
        band = raw.copy()
        if low is not None or high is not None:
            band.filter(low, high, method=config.filter_method, phase=_phase(config), verbose="error")
        raws.append(band)
    if config.resample is not None:
        new_events = events
        for i, band in enumerate(raws):
            if events is not None:
                band, new_events = band.resample(config.resample, events=events, verbose="error")
            else:
                band = band.resample(config.resample, verbose="error")
            raws[i] = band
        events = new_events
    return raws, events


def epoch_array(data: np.ndarray, sfreq: float, events: np.ndarray, tmin: float, tmax: float,
                first_samp: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``data`` (channels, samples) around ``events``; returns ``(epochs, kept)`` where
    ``kept`` indexes the events whose epoch lies inside the recording."""
    start_offset = int(np.round(tmin * sfreq))
    n = int(np.round(tmax * sfreq)) - start_offset + 1
    starts = events[:, 0] - first_samp + start_offset
    kept = np.flatnonzero((starts >= 0) & (starts + n <= data.shape[1]))
    epochs = np.stack([data[:, s:s + n] for s in starts[kept]]) if len(kept) else np.zeros((0, data.shape[0], n))
    return epochs, kept


def epoch(raws, events: np.ndarray, event_id: Mapping[str, int], config: PreprocessConfig, *, subject: Any = 1,
          session: Any = 1, run: Any = 1, name: str = "eeg", info: dict | None = None,
          classes: Sequence[str] | None = None) -> EpochsDataset:
    """Labelled epochs (uV) of the events named in ``event_id`` (class name -> code).

    With several ``raws`` (a filter bank) the bands are stacked as channels ``name@low-high``."""
    if not isinstance(raws, (list, tuple)):
        raws = [raws]
    classes = list(classes) if classes is not None else list(event_id)
    code_to_class = {int(event_id[c]): i for i, c in enumerate(classes) if c in event_id}
    events = events[np.isin(events[:, 2], list(code_to_class))]
    if len(events) == 0:
        raise DataError(f"{name}: no events of the classes {classes}")
    sfreq = float(raws[0].info["sfreq"])
    blocks, kept = [], None
    for band in raws:
        data = band.get_data() * VOLTS_TO_UV
        x, kept = epoch_array(data, sfreq, events, config.tmin, config.tmax, band.first_samp)
        blocks.append(x)
    if kept is None or len(kept) == 0:
        raise DataError(f"{name}: every epoch [{config.tmin}, {config.tmax}] s reaches outside the recording")
    X = np.concatenate(blocks, axis=1)
    y = np.array([code_to_class[int(c)] for c in events[kept, 2]])
    if config.reject_uv is not None:
        ptp = X.max(-1) - X.min(-1)
        good = (ptp <= config.reject_uv).all(1)
        if not good.any():
            raise DataError(f"{name}: every epoch exceeds the rejection threshold of {config.reject_uv:g} uV "
                            f"peak-to-peak (largest {ptp.max():.0f} uV)")
        X, y = X[good], y[good]
    ch = list(raws[0].ch_names)
    ch_names = ch if len(raws) == 1 else [f"{c}@{lo:g}-{hi:g}" for lo, hi in config.filter_bank or [] for c in ch]
    meta = dict(info or {})
    if len(raws) > 1:
        meta["bands"] = [list(map(float, b)) for b in config.filter_bank or []]
        meta["base_channels"] = ch
    n = len(X)
    return EpochsDataset(X, y, classes, sfreq, ch_names, config.tmin, np.full(n, subject, dtype=object),
                         np.full(n, session, dtype=object), np.full(n, run, dtype=object), name, meta)


def load_epochs(path: str | os.PathLike, event_id: Mapping[str, int] | None, config: PreprocessConfig, *,
                events_file: str | os.PathLike | None = None, stim_channel: str | None = None, subject: Any = 1,
                session: Any = 1, run: Any = 1, info: dict | None = None) -> EpochsDataset:
    """Read ``path``, find its events, preprocess and epoch it in one call."""
    raw = read_raw(path)
    events, found = find_events(raw, events_file, event_id, stim_channel)
    raws, events = preprocess(raw, config, events)
    return epoch(raws, events, found, config, subject=subject, session=session, run=run,
                 name=Path(path).stem, info=info)
