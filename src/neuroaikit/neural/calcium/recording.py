"""Calcium recordings with (optional) ground-truth spikes, and their loaders.

The Cascade ground-truth database (Rupprecht et al. 2021, Nat Neurosci 24:1324) stores one
neuron per ``.mat`` file: a struct array ``CAttached`` with one element per uninterrupted
recording, holding ``fluo_time`` (frame times, s), ``fluo_mean`` (dF/F) and ``events_AP``
(spike times in units of 1e-4 s, on the clock of ``fluo_time`` x 1e4).

NaN handling (documented, logged in ``CalciumRecording.notes``):

- frames whose *time* is NaN are dropped (as Cascade does);
- NaN spike times are dropped (Theis et al. files pad ``events_AP`` with NaN);
- NaN dF/F samples are kept in ``dff`` and flagged in ``valid``; inference fills them by
  linear interpolation (constant at the ends) and evaluation leaves them out of every
  correlation;
- a trace with no finite dF/F sample at all is a :class:`~neuroaikit.errors.DataError`
  (``on_bad="skip"``: left out, with a line in the caller's ``skipped`` list);
- spikes outside the imaged time (before the first frame's bin or after the last one's) are
  kept in ``spike_times`` but neither binned into the ground-truth rate nor counted in
  ``n_spikes``; the loader notes how many there were.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import ConfigError, DataError
from .metrics import bin_spikes

#: Units of ``events_AP`` in the Cascade files: 1e-4 s.
CASCADE_SPIKE_TIME_UNIT_S = 1e-4


@dataclass
class CalciumRecording:
    """One uninterrupted calcium trace of one neuron, with ground-truth spikes if known.

    Attributes:
        time: (T,) frame times in seconds, increasing.
        dff: (T,) dF/F trace (NaN where the file had no value; see ``valid``).
        spike_times: (n,) ground-truth spike times in seconds on the clock of ``time``, or
            ``None`` when there is no ground truth (spikes outside the imaged time included).
        frame_rate: frames per second (1 / median frame interval).
        indicator: calcium indicator name (``GCaMP6f``, ``GCaMP6s``, ``OGB-1`` ...) or "".
        dataset: dataset name (``DS09-GCaMP6f-m-V1``) or "".
        name: identifier, ``<file stem>#<index>`` for Cascade files.
        source: path of the file it came from.
        notes: repairs applied while loading (dropped frames, NaN samples ...).
        index: position of the trace in its file (CAttached element, row of an array).
    """

    time: np.ndarray
    dff: np.ndarray
    spike_times: np.ndarray | None
    frame_rate: float
    indicator: str = ""
    dataset: str = ""
    name: str = "trace"
    source: str = ""
    notes: list[str] = field(default_factory=list)
    index: int = 0

    def __post_init__(self) -> None:
        self.time = np.asarray(self.time, dtype=np.float64).ravel()
        self.dff = np.asarray(self.dff, dtype=np.float64).ravel()
        if self.time.shape != self.dff.shape:
            raise DataError(f"{self.name}: {self.time.size} frame times for {self.dff.size} dF/F samples")
        if self.dff.size < 2:
            raise DataError(f"{self.name}: a trace needs at least 2 frames, got {self.dff.size}")
        if not np.isfinite(self.frame_rate) or self.frame_rate <= 0:
            raise ConfigError(f"{self.name}: frame rate must be > 0 Hz, got {self.frame_rate}")
        if not np.isfinite(self.dff).any():
            raise DataError(f"{self.name}: the dF/F trace is all NaN")
        if self.spike_times is not None:
            self.spike_times = np.sort(np.asarray(self.spike_times, dtype=np.float64).ravel())

    @property
    def valid(self) -> np.ndarray:
        """bool: the frames with a finite dF/F value, shape ``(T,)``."""
        return np.isfinite(self.dff)

    @property
    def duration_s(self) -> float:
        return float(self.time[-1] - self.time[0] + 1.0 / self.frame_rate)

    @property
    def n_spikes(self) -> int:
        """Ground-truth spikes within the imaged time, those the ground-truth rate counts
        (bins centred on the frame times, half a frame either side)."""
        if self.spike_times is None or self.spike_times.size == 0:
            return 0
        return int(bin_spikes(self.spike_times, self.time).sum())

    @property
    def n_spikes_outside(self) -> int:
        """Ground-truth spikes before or after the imaged time (not scored)."""
        return 0 if self.spike_times is None else int(self.spike_times.size) - self.n_spikes

    def filled_dff(self) -> np.ndarray:
        """dF/F with NaN samples linearly interpolated (held constant before the first and
        after the last finite sample), ready for a deconvolution that cannot take NaN."""
        ok = self.valid
        if ok.all():
            return self.dff.copy()
        idx = np.arange(self.dff.size)
        return np.interp(idx, idx[ok], self.dff[ok])

    @classmethod
    def from_trace(
        cls, dff, frame_rate: float, name: str = "trace", spike_times=None, indicator: str = "", start_s: float = 0.0,
        index: int = 0,
    ) -> "CalciumRecording":
        """A recording from a bare trace sampled at ``frame_rate`` Hz (frame i at start_s + i / rate)."""
        try:
            frame_rate = float(frame_rate)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: frame rate must be a number, got {frame_rate!r}") from None
        if not np.isfinite(frame_rate) or frame_rate <= 0:
            raise ConfigError(f"{name}: frame rate must be > 0 Hz, got {frame_rate}")
        dff = np.asarray(dff, dtype=np.float64).ravel()
        time = start_s + np.arange(dff.size) / frame_rate
        return cls(time, dff, spike_times, frame_rate, indicator=indicator, name=name, index=index)


def indicator_from_name(name: str) -> str:
    """``DS09-GCaMP6f-m-V1`` -> ``GCaMP6f``; ``DS01-OGB1-m-V1`` -> ``OGB-1``; unknown -> ""."""
    for part in re.split(r"[-_/ ]", name):
        if re.fullmatch(r"GCaMP\w+|jRGECO\w*|jRCaMP\w*|XCaMP\w*|Cal520", part, re.I):
            return part
        if re.fullmatch(r"OGB-?1", part, re.I):
            return "OGB-1"
    return ""


def _field(rec, name: str, path: Path, index: int):
    if not hasattr(rec, name):
        fields = getattr(rec, "_fieldnames", [])
        raise DataError(f"{path}: recording {index} of CAttached has no field '{name}' (fields: {fields})")
    return getattr(rec, name)


def _frame_rate(time: np.ndarray, where: str) -> float:
    steps = np.diff(time)
    steps = steps[np.isfinite(steps)]
    if steps.size == 0:
        raise DataError(f"{where}: fewer than 2 frame times, cannot tell the frame rate")
    step = float(np.median(steps))
    if not step > 0:
        raise DataError(f"{where}: frame times are not increasing (median step {step} s), frame rate <= 0")
    return 1.0 / step


def load_cascade_mat(
    path: str | os.PathLike,
    dataset: str | None = None,
    indicator: str | None = None,
    on_bad: str = "raise",
    skipped: list[str] | None = None,
) -> list[CalciumRecording]:
    """Read every recording of one Cascade ground-truth ``.mat`` file.

    Args:
        path: the ``.mat`` file (struct array ``CAttached`` with ``fluo_time``, ``fluo_mean``,
            ``events_AP``).
        dataset: dataset name; default the name of the folder holding the file.
        indicator: indicator name; default parsed from ``dataset`` (``DS14-GCaMP6s-m-V1``).
        on_bad: ``"raise"`` (default) raises :class:`~neuroaikit.errors.DataError` for an unusable recording
            (all-NaN trace, fewer than 2 frames); ``"skip"`` leaves it out and returns the rest.
        skipped: with ``on_bad="skip"``, a list that receives one line per recording left out
            (``"<name>: <reason>"``).

    Returns:
        list of :class:`CalciumRecording`, named ``<file stem>#<index>``.
    """
    import scipy.io as sio

    if on_bad not in ("raise", "skip"):
        raise ConfigError(f"on_bad must be 'raise' or 'skip', got {on_bad!r}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"calcium file {path} does not exist")
    try:
        content = sio.loadmat(str(path), squeeze_me=True, struct_as_record=False)
    except Exception as exc:  # scipy raises several types for non-MAT input
        raise DataError(f"{path} is not a readable MATLAB .mat file: {exc}") from None
    if "CAttached" not in content:
        keys = [k for k in content if not k.startswith("__")]
        raise DataError(f"{path}: no struct 'CAttached' (Cascade ground-truth format expected), found {keys}")
    records = np.atleast_1d(content["CAttached"])
    dataset = path.parent.name if dataset is None else dataset
    indicator = indicator_from_name(dataset) if indicator is None else indicator
    out: list[CalciumRecording] = []
    for index, rec in enumerate(records):
        name = f"{path.stem}#{index}"
        try:
            time = np.asarray(_field(rec, "fluo_time", path, index), dtype=np.float64).ravel()
            dff = np.asarray(_field(rec, "fluo_mean", path, index), dtype=np.float64).ravel()
            spikes = np.atleast_1d(np.asarray(_field(rec, "events_AP", path, index), dtype=np.float64)).ravel()
        except (TypeError, ValueError) as exc:
            raise DataError(f"{path}: recording {index} has non-numeric fields: {exc}") from None
        notes: list[str] = []
        n = min(time.size, dff.size)
        if time.size != dff.size:
            notes.append(f"{time.size} frame times for {dff.size} samples: truncated to {n}")
            time, dff = time[:n], dff[:n]
        finite_time = np.isfinite(time)
        if not finite_time.all():
            notes.append(f"dropped {int((~finite_time).sum())} frames with NaN time")
            time, dff = time[finite_time], dff[finite_time]
        n_nan = int((~np.isfinite(dff)).sum())
        if n_nan:
            notes.append(f"{n_nan} NaN dF/F samples interpolated for inference and excluded from evaluation")
        bad_spikes = ~np.isfinite(spikes)
        if bad_spikes.any():
            notes.append(f"dropped {int(bad_spikes.sum())} NaN spike times")
        spikes = spikes[~bad_spikes] * CASCADE_SPIKE_TIME_UNIT_S
        try:
            rate = _frame_rate(time, f"{path} recording {index}")
            recording = CalciumRecording(
                time, dff, spikes, rate, indicator=indicator, dataset=dataset, name=name, source=str(path), notes=notes,
                index=index,
            )
        except DataError as exc:
            if on_bad == "skip":
                if skipped is not None:
                    skipped.append(f"{name}: skipped ({_reason(exc, name)})")
                continue
            raise DataError(f"{path}: {exc}") from None
        outside = recording.n_spikes_outside
        if outside:
            recording.notes.append(
                f"{outside} of {spikes.size} ground-truth spikes lie outside the imaged time: not scored or counted"
            )
        out.append(recording)
    return out


def _reason(exc: Exception, name: str) -> str:
    """The message of ``exc`` without a leading ``"<name>: "``."""
    text = str(exc)
    return text[len(name) + 2 :] if text.startswith(f"{name}: ") else text


def dataset_folders(data_dir: str | os.PathLike, datasets: list[str] | None = None) -> list[Path]:
    """The dataset folders (``DS..``) under ``data_dir`` that hold ``.mat`` files.

    ``data_dir`` may be the ``calcium`` folder, its parent, or one dataset folder.
    ``datasets`` selects by prefix (``DS09``) or full name; unknown names raise ConfigError.
    """
    root = Path(data_dir)
    if root.is_file():
        raise DataError(f"{root} is a file; give the calcium data folder (or one data set's folder) that holds it")
    if not root.is_dir():
        raise DataError(f"calcium data folder {root} does not exist")
    if (root / "calcium").is_dir():
        root = root / "calcium"
    if any(root.glob("*.mat")):
        folders = [root]
    else:
        folders = sorted(p for p in root.iterdir() if p.is_dir() and any(p.glob("*.mat")))
    if not folders:
        raise DataError(f"{root}: no dataset folders with .mat files (Cascade ground-truth layout expected)")
    if datasets:
        chosen: list[Path] = []
        for want in datasets:
            hits = [f for f in folders if f.name == want or f.name.split("-")[0] == want]
            if not hits:
                raise ConfigError(f"dataset {want!r} not found in {root}; available: {[f.name for f in folders]}")
            chosen.extend(h for h in hits if h not in chosen)
        folders = chosen
    return folders


def load_cascade_dataset(
    folder: str | os.PathLike, on_bad: str = "skip", skipped: list[str] | None = None
) -> dict[str, list[CalciumRecording]]:
    """All recordings of one dataset folder, keyed by file stem (files sorted by name);
    ``skipped`` receives a line per recording left out (see :func:`load_cascade_mat`)."""
    folder = Path(folder)
    files = sorted(folder.glob("*.mat"))
    if not files:
        raise DataError(f"{folder}: no .mat files")
    return {f.stem: load_cascade_mat(f, on_bad=on_bad, skipped=skipped) for f in files}


#: an array with fewer columns (frames) than this and more rows is taken for a (frames, neurons) array
MIN_FRAMES_PER_ROW = 100


def load_traces(
    path: str | os.PathLike,
    frame_rate: float | None = None,
    key: str | None = None,
    on_bad: str = "raise",
    skipped: list[str] | None = None,
) -> list[CalciumRecording]:
    """Traces to run inference on: a Cascade ``.mat`` file, or a ``.npy`` / ``.npz`` /
    ``.csv`` / ``.txt`` array of shape (frames,) or (neurons, frames) sampled at ``frame_rate``.

    For ``.npz`` the array is ``key`` (default: the only array, or ``dff`` / ``traces``).
    A ``.mat`` file carries its own frame times: ``frame_rate`` is not used here (``calcium
    infer --rate`` resamples such recordings afterwards). ``on_bad="skip"`` leaves unusable
    traces (all NaN) out, with a line in ``skipped``; a file with no usable trace at all is
    always a :class:`~neuroaikit.errors.DataError`.
    """
    if on_bad not in ("raise", "skip"):
        raise ConfigError(f"on_bad must be 'raise' or 'skip', got {on_bad!r}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"trace file {path} does not exist")
    suffix = path.suffix.lower()
    if key is not None and suffix != ".npz":
        raise ConfigError(f"{path}: key {key!r} names an array inside a .npz file; a {suffix or 'suffix-less'} "
                          f"file holds no named arrays (leave the key out)")
    if suffix == ".mat":
        recordings = load_cascade_mat(path, dataset=path.parent.name, on_bad=on_bad, skipped=skipped)
        if not recordings:
            raise DataError(f"{path}: no usable recording (every trace is all NaN or shorter than 2 frames)")
        return recordings
    if frame_rate is None:
        raise ConfigError(f"{path}: a {suffix} trace file carries no frame times; give the frame rate (--rate HZ)")
    try:
        if suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                names = list(archive.files)
                if key is None:
                    key = names[0] if len(names) == 1 else next((k for k in ("dff", "traces", "F") if k in names), None)
                if key is None:
                    raise DataError(f"{path}: cannot tell which array holds the traces; arrays {names} (use --key)")
                if key not in names:
                    raise DataError(f"{path}: no array {key!r}; arrays {names}")
                array = archive[key]
        elif suffix in (".csv", ".txt", ".tsv"):
            delimiter = "," if suffix == ".csv" else None
            array = np.loadtxt(path, delimiter=delimiter, ndmin=1)
        else:
            raise DataError(f"{path}: unknown trace format {suffix!r}; expected .mat, .npy, .npz, .csv or .txt")
    except DataError:
        raise
    except Exception as exc:
        reason = ("it holds Python objects or is not a NumPy array file, and pickles are not loaded"
                  if "pickle" in str(exc) else str(exc))
        raise DataError(f"{path} cannot be read as a numeric array: {reason}") from None
    array = np.asarray(array)
    if array.dtype.kind not in "fiu":
        raise DataError(f"{path}: expected a numeric array, got dtype {array.dtype}")
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise DataError(f"{path}: expected shape (frames,) or (neurons, frames), got {array.shape}")
    if array.shape[0] > array.shape[1] and array.shape[1] < MIN_FRAMES_PER_ROW:
        raise DataError(f"{path}: {array.shape[0]} traces of {array.shape[1]} frames each; traces are the rows, "
                        f"(neurons, frames): if the array is (frames, neurons), transpose it")
    recordings = []
    for i, row in enumerate(array):
        name = f"{path.stem}#{i}"
        try:
            recordings.append(CalciumRecording.from_trace(row, frame_rate, name=name, index=i))
        except DataError as exc:
            if on_bad == "raise":
                raise DataError(f"{path}: {exc}") from None
            if skipped is not None:
                skipped.append(f"{name}: skipped ({_reason(exc, name)})")
    if not recordings:
        raise DataError(f"{path}: no usable trace (every trace is all NaN or shorter than 2 frames)")
    return recordings
