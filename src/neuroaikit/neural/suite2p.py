"""A lab's own two-photon recording: suite2p output + stimulus log + frame times ->
:class:`~neuroaikit.neural.NeuralDataset`.

Inputs
------
- the suite2p folder (``.../suite2p/plane0`` or a folder holding ``plane0``, ``plane1``, ...
  folders, whose ROIs are concatenated in plane order; suite2p's ``combined`` folder beside
  them is not read): ``F.npy``, ``Fneu.npy``, ``spks.npy`` (ROIs x frames), ``iscell.npy``
  (ROIs x 2: label, probability), ``stat.npy`` and ``ops.npy`` (suite2p 1.x: ``settings.npy``
  and ``db.npy`` when it saved no ``ops.npy``). These are pickles: they are read through the
  restricted unpickler of ``neuroaikit.data.cifar`` (arrays, dicts, lists, strings,
  numbers, dates, paths as strings); a file holding anything else is refused before
  anything runs.
- the stimulus log: a CSV (one row per presentation: onset time in seconds, image id, and
  optionally ``tier`` and behaviour columns ``pupil_dilation``, ``pupil_dilation_derivative``,
  ``running_speed``, ``pupil_x``, ``pupil_y``) or an NWB file whose trials table (or a
  ``*presentations`` intervals table) holds the same, with the images in its stimulus templates
  (without behaviour or pupil columns, its eye-tracking and running-speed series are read as
  :func:`~neuroaikit.neural.load_nwb` does: ``neuroaikit.neural.nwb.behavior_per_trial``);
- the images (``.npy`` (n_images, H, W), or with colour channels first or last; row = image id)
  unless the NWB log carries them;
- the frame times (``.npy`` / ``.csv``, seconds, one per frame of ``F``); default
  ``i / ops["fs"]``. Planes are imaged one after another, so in a multi-plane recording
  (``ops["nplanes"]``) frame times with one entry per imaging frame (``nplanes`` times as many,
  the scope's frame clock) give plane k every ``nplanes``-th from the k-th; without frame times
  plane k's frames are offset by ``k / nplanes`` of a frame; one time per volume is shared by
  the planes. Flyback planes (``ops["ignore_flyback"]``, whose folders suite2p leaves without
  ``F.npy``) keep their place in the cycle (suite2p 1.x's ``combined`` folder numbers its ROIs
  among the folders it combined, so without them); a mesoscope's strips of one plane (``ops["nrois"]``,
  folders numbered plane x ``nrois`` + strip) share that plane's clock, and each strip's ROI
  positions are shifted by its ``ops["dx"]``, ``ops["dy"]``.

Per trial and ROI the response is the mean of the signal over the frames in
``[onset + window[0], onset + window[1])``; the signal is ``spks`` (deconvolved, default),
``f`` (``F - neuropil * Fneu``) or ``dff`` (that over its 8th percentile, minus 1). ROIs that
``iscell.npy`` does not label as cells are left out (or, with ``iscell_threshold``, those whose
classifier probability is below it). Tiers: the log's ``tier``
column when present, else images shown at least ``test_repeats`` times form the test tier and
the rest train; where every image is shown that often, a fifth of the images are held out as test
with all their repeats (``neuroaikit.neural.dataset.tiers_from_repeats``). The fit carves
its validation tier from train.

Example::

    from neuroaikit.neural.suite2p import Suite2pRecording
    ds = Suite2pRecording(suite2p="suite2p/plane0", stimulus_log="log.csv", images="images.npy").load()
"""

from __future__ import annotations

import csv
import logging
import math
import numbers
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..config import PATH, Config, Interval, Options, Satisfies
from ..errors import DataError
from .dataset import (TIERS, WINDOW_DESCRIPTION, NeuralDataset, check_nan_policy, is_response_window, numeric_npy,
                      response_window_frames, tiers_from_repeats, window_means, with_nan_policy)
from .nwb import IMAGE_COLUMNS  # the log's image columns are the NWB tables' (nwb imports pynwb only when used)

__all__ = ["Suite2pRecording", "read_pickled_npy", "find_planes", "is_suite2p_folder"]

ONSET_COLUMNS = ("onset", "onset_time", "start_time", "time", "t")
BEHAVIOR_COLUMNS = ("pupil_dilation", "pupil_dilation_derivative", "running_speed")
PUPIL_COLUMNS = ("pupil_x", "pupil_y")
#: unit ids of the ROIs of the k-th plane folder read start at k times this (integers, as the
#: FileTree and NWB writers store them)
ROI_ID_STRIDE = 1_000_000
SUITE2P_FILES = ("F.npy", "Fneu.npy", "spks.npy", "iscell.npy", "stat.npy", "ops.npy")
#: suite2p 1.x keeps the settings of ``ops.npy`` in these (``ops.npy`` unless ``save_ops_orig`` is off)
SETTINGS_FILES = ("db.npy", "settings.npy")
_PLANE_FOLDER = re.compile(r"plane(\d+)")
#: files :class:`Suite2pRecording` looks for beside the suite2p output when not named
DEFAULT_LOG, DEFAULT_IMAGES, DEFAULT_FRAME_TIMES = "stimulus_log.csv", "images.npy", "frame_times.npy"

log = logging.getLogger(__name__)


def read_pickled_npy(path: str | os.PathLike) -> Any:
    """Read an ``.npy`` file that may hold a pickled object array (suite2p's ``stat.npy`` and
    ``ops.npy``) without running code: the header is read by numpy, the pickle by the restricted
    unpickler; ``ops.npy``'s 0-d array comes back as its dict."""
    from ..data.cifar import restricted_load

    path = Path(path)
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            _, _, dtype = read_header(fh)
            if not dtype.hasobject:
                fh.seek(0)
                return np.load(fh, allow_pickle=False)
            raw = fh.read()
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({exc})") from None
    value = restricted_load(path, raw, allow_object_arrays=True, expected="suite2p output")
    if isinstance(value, np.ndarray) and value.shape == () and value.dtype.hasobject:
        return value.item()
    return value


def is_suite2p_folder(path: str | os.PathLike) -> bool:
    """True for a folder holding ``F.npy`` or ``plane*/F.npy`` (directly or under ``suite2p/``)."""
    try:
        find_planes(path)
        return True
    except DataError:
        return False


def find_planes(path: str | os.PathLike) -> list[Path]:
    """The plane folders (holding ``F.npy``) of a suite2p output folder, by plane number
    (``plane2`` before ``plane10``); suite2p's ``combined`` folder, which repeats their ROIs,
    and other folders are left out."""
    root = Path(path)
    for base in (root, root / "suite2p"):
        if (base / "F.npy").is_file():
            return [base]
        planes = [p for p in base.glob("plane*") if _PLANE_FOLDER.fullmatch(p.name) and (p / "F.npy").is_file()]
        if planes:
            return sorted(planes, key=lambda p: int(p.name[5:]))
    if any((root / name).is_file() for name in ("ops.npy", *SETTINGS_FILES)):
        raise DataError(f"{root}: suite2p extracted no traces here (no F.npy): a flyback plane "
                        f"(ignore_flyback), or processing that did not finish")
    raise DataError(f"{root}: no suite2p output (F.npy, or plane*/F.npy) found")


@dataclass
class Suite2pRecording(Config):
    """One suite2p recording with its stimulus log (see the module docstring).

    Args:
        suite2p: the suite2p output folder.
        stimulus_log: CSV or NWB (default ``stimulus_log.csv`` beside ``suite2p``).
        images: ``.npy`` of the images by id (default ``images.npy`` beside; not needed when the
            NWB log carries stimulus templates).
        frame_times: ``.npy`` / ``.csv`` seconds per frame (default ``frame_times.npy`` beside
            when present, else ``i / ops["fs"]``); per imaging frame of every plane for a
            multi-plane recording (see above).
        window: (start, stop) seconds after each onset averaged into the trial's response.
        neuropil: factor of ``Fneu`` subtracted from ``F`` (signals ``f`` and ``dff``).
        iscell_threshold: ``None`` (default): keep the ROIs ``iscell.npy`` labels as cells (its
            first column: suite2p's classifier at its own threshold, then any curation in the
            suite2p GUI); a number: keep those whose classifier probability (second column) is
            at least this, ignoring the labels and so any curation.
        signal: ``"spks"``, ``"f"`` or ``"dff"``.
        test_repeats: without a ``tier`` column, images shown this often or more are the test tier
            (where every image is, a fifth of them: see above).
    """

    suite2p: str
    stimulus_log: str | None = None
    images: str | None = None
    frame_times: str | None = None
    window: tuple[float, float] = (0.0, 0.5)
    neuropil: float = 0.7
    iscell_threshold: float | None = None
    signal: str = "spks"
    test_repeats: int = 2

    _parameter_constraints: ClassVar[dict] = {
        "suite2p": [PATH],
        "stimulus_log": [PATH, None],
        "images": [PATH, None],
        "frame_times": [PATH, None],
        "window": [Satisfies(is_response_window, WINDOW_DESCRIPTION)],
        "neuropil": [Interval(float, 0, 2)],
        "iscell_threshold": [Interval(float, 0, 1), None],
        "signal": [Options(("spks", "f", "dff"))],
        "test_repeats": [Interval(int, 2, None)],
    }

    def _check(self) -> None:
        self.window = (float(self.window[0]), float(self.window[1]))

    #: fields holding paths, which a recording file gives relative to itself
    path_fields: ClassVar[tuple[str, ...]] = ("suite2p", "stimulus_log", "images", "frame_times")

    def _beside(self, given: str | None, default: str) -> Path | None:
        return beside(Path(self.suite2p), given, default)

    # -- loading ---------------------------------------------------------------
    def load(self, nan_policy: str = "raise") -> NeuralDataset:
        """Read and check every file (one-line errors naming the file), then build the data set.
        Trials whose response window holds a NaN/inf frame of some ROI: ``nan_policy``
        (``neuroaikit.neural.dataset.with_nan_policy``)."""
        check_nan_policy(nan_policy)
        planes = find_planes(self.suite2p)
        signal, roi_planes, positions, fs, n_planes, roi_ids = self._read_planes(planes)
        n_frames = signal.shape[1]
        log_path, shown = read_stimulus_log(Path(self.suite2p), self.stimulus_log)
        clocks = self._frame_clocks(n_frames, fs, n_planes, sorted(set(roi_planes.tolist())), planes[0])
        onsets = shown["onset"]
        responses = np.empty((len(onsets), len(signal)), np.float32)
        for number, times in clocks.items():
            lo, hi, cut = response_window_frames(times, onsets, self.window, str(log_path), nan_policy)
            responses[:, roi_planes == number] = window_means(signal[roi_planes == number].T, lo, hi, cut)
        folder = Path(self.suite2p)
        name = folder.resolve().name if folder.name not in ("plane0", "suite2p") else folder.resolve().parent.name
        return trials_dataset(folder, shown, responses, log_path, self.images, self.test_repeats, nan_policy,
                              signal=self.signal, positions=positions, name=name, unit_ids=roi_ids)

    def _read_planes(self, planes: list[Path]
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float | None, int, np.ndarray]:
        """(signal (ROIs, frames), each ROI's plane number in the acquisition's plane cycle, ROI
        positions, frame rate per plane or None, planes in the cycle, ROI ids) of the kept ROIs.
        An ROI's id is its index in its folder's ``stat.npy``, plus ``ROI_ID_STRIDE`` times the
        folder's position among the planes read (ROI 7 of the second folder: 1,000,007), so a
        curation that keeps other ROIs does not put one ROI's scores on another."""
        signals, roi_planes, positions, rates, cycle, strips, ids = [], [], [], [], [], [], []
        for index, plane in enumerate(planes):
            missing = [f for f in SUITE2P_FILES if not (plane / f).is_file()]
            if missing == ["ops.npy"] and all((plane / f).is_file() for f in SETTINGS_FILES):
                missing = []
            if missing:
                if missing == ["ops.npy"]:
                    missing = ["ops.npy (or suite2p 1.x's db.npy and settings.npy)"]
                raise DataError(f"{plane}: suite2p output lacks {', '.join(missing)}")
            # the pickles first: a refused file stops everything before any array is used
            stat = read_pickled_npy(plane / "stat.npy")
            ops = _read_ops(plane)
            arrays = {name: numeric_npy(plane / f"{name}.npy") for name in ("F", "Fneu", "spks", "iscell")}
            f = arrays["F"]
            if f.ndim != 2:
                raise DataError(f"{plane / 'F.npy'}: expected (ROIs, frames), got shape {f.shape}")
            for name in ("Fneu", "spks"):
                if arrays[name].shape != f.shape:
                    raise DataError(f"{plane / (name + '.npy')}: shape {arrays[name].shape}, F.npy has {f.shape}")
            iscell = arrays["iscell"].reshape(len(arrays["iscell"]), -1)
            if len(iscell) != len(f):
                raise DataError(f"{plane / 'iscell.npy'}: {len(iscell)} ROIs, F.npy has {len(f)}")
            if len(stat) != len(f):
                raise DataError(f"{plane / 'stat.npy'}: {len(stat)} ROIs, F.npy has {len(f)}")
            # column 0 is suite2p's verdict, which its GUI edits when a user curates the ROIs;
            # the last column is the classifier's probability, which curation leaves alone
            keep = iscell[:, 0] > 0.5 if self.iscell_threshold is None else iscell[:, -1] >= self.iscell_threshold
            if self.signal == "spks":
                sig = arrays["spks"]
            else:
                sig = f - self.neuropil * arrays["Fneu"]
                if self.signal == "dff":
                    f0 = np.nanpercentile(sig, 8, axis=1, keepdims=True)  # NaN frames: see load
                    sig = sig / np.where(np.abs(f0) > 1e-6, f0, 1.0) - 1.0
            signals.append(sig[keep].astype(np.float64))
            ids.append(np.flatnonzero(keep) + index * ROI_ID_STRIDE)
            rois = np.asarray(stat, dtype=object)[keep]
            med = np.array([_roi_centre(s, plane) for s in rois]).reshape(-1, 2)
            nrois, per_volume = _mesoscope_strips(ops)
            strips.append(nrois)
            if per_volume is not None:
                cycle.append(per_volume)
            # suite2p records no depth: the plane number. Folders are numbered plane-major
            # (plane * nrois + strip, flyback planes keeping their numbers); 1.x's db and a
            # mesoscope's ops name the plane (iplane); the ROIs of the ``combined`` folder
            # each carry their folder's number
            match = _PLANE_FOLDER.fullmatch(plane.name)
            iplane = _number(ops.get("iplane"))
            number = int(match.group(1)) // nrois if match else int(iplane) if iplane is not None else index
            depth = next((d for d in map(_number, (ops.get("plane_depth"), ops.get("iplane"))) if d is not None),
                         float(number))
            folders = [_number(s.get("iplane")) if isinstance(s, dict) else None for s in rois]
            if match is None:  # the combined folder: its ROIs' iplane as the suite2p that wrote it counts
                folders = _combined_folder_numbers(folders, ops)
            depths = [depth if f is None else float(int(f) // nrois) for f in folders]
            # a mesoscope strip's pixels are its own; dx, dy place it in its plane's field
            offset = [0.0 if nrois == 1 or match is None else _number(ops.get(k)) or 0.0 for k in ("dx", "dy")]
            if nrois > 1 and match is not None and None in (_number(ops.get("dx")), _number(ops.get("dy"))):
                log.warning("%s: a mesoscope strip (nrois %d) without dx, dy: its ROI positions are its own pixels",
                            plane, nrois)
            positions.append(np.column_stack([med[:, 1] + offset[0], med[:, 0] + offset[1], depths]))
            roi_planes.append(np.array([number if f is None else int(f) // nrois for f in folders], dtype=np.int64))
            rates.append(ops.get("fs"))
        lengths = {s.shape[1] for s in signals}
        if len(lengths) > 1:
            raise DataError(f"{self.suite2p}: planes have different frame counts {sorted(lengths)}")
        signal = np.concatenate(signals)
        if signal.shape[0] == 0:
            rule = ("is labelled a cell in iscell.npy" if self.iscell_threshold is None
                    else f"has iscell probability >= {self.iscell_threshold}")
            raise DataError(f"{self.suite2p}: no ROI {rule}")
        fs = next((r for r in map(_number, rates) if r is not None and r > 0), None)
        numbers = np.concatenate(roi_planes)
        if not cycle and (len(planes) > max(strips) or numbers.max() > 0):
            raise DataError(f"{planes[0]}: no 'nplanes' in suite2p's settings, so the planes' share of the frame "
                            f"clock is unknown")
        per_volume = max(cycle) if cycle else 1
        return (signal, numbers, np.concatenate(positions).astype(np.float32), fs,
                max(per_volume, int(numbers.max()) + 1), np.concatenate(ids))

    def _frame_clocks(self, n_frames: int, fs: float | None, n_planes: int, numbers: list[int],
                      plane: Path) -> dict[int, np.ndarray]:
        """The time of each frame of each plane in ``numbers``. A multi-plane recording images its
        planes one after another, so their frames are offset: frame times with one entry per
        imaging frame of every plane (``n_planes`` x frames or more) give plane k every
        ``n_planes``-th time from the k-th; fewer, one per volume, are every plane's clock; with
        none, plane k's frame i is at ``(i + k / n_planes) / fs`` (suite2p's ``fs`` is per plane)."""
        path = self._beside(self.frame_times, DEFAULT_FRAME_TIMES)
        if path is None:
            if fs is None:
                settings = "ops.npy" if (plane / "ops.npy").is_file() else "settings.npy"
                raise DataError(f"{plane / settings}: no frame rate 'fs' above 0 and no frame times given (frame_times)")
            return {k: (np.arange(n_frames) + k / n_planes) / fs for k in numbers}
        times = read_frame_times(path, n_frames, "F.npy")
        given = len(times)
        interleaved = n_planes > 1 and given >= n_planes * n_frames
        if n_planes > 1 and not interleaved and given >= n_frames * (1 + (n_planes - 1) / 2):
            raise DataError(f"{path}: {given} frame times for {n_frames} frames of each of {n_planes} planes: neither "
                            f"one per volume ({n_frames}) nor one per imaging frame ({n_planes * n_frames})")
        times = times[: n_planes * n_frames if interleaved else n_frames]
        if not (np.diff(times) > 0).all():
            raise DataError(f"{path}: frame times must increase")
        if n_planes > 1:
            log.info("%s: %d frame times for %d frames of each of %d planes: %s", path, given, n_frames, n_planes,
                     "one per imaging frame, each plane taking its own" if interleaved else "one per volume, shared by the planes")
        return {k: times[k::n_planes] if interleaved else times for k in numbers}


# -- what every source of traces shares: the stimulus log, the images, the trials ---------------
def beside(source: Path, given: str | None, default: str) -> Path | None:
    """``given``, else ``default`` in the folder of ``source`` or the folder above it, else None."""
    if given is not None:
        return Path(given)
    for folder in (source, source.parent):
        if (folder / default).is_file():
            return folder / default
    return None


def read_stimulus_log(source: Path, given: str | None) -> tuple[Path, dict[str, Any]]:
    """The stimulus log of the recording at ``source`` (``given``, else ``stimulus_log.csv``
    beside it) and its presentations: onsets, image ids, and tiers, behaviour, pupil centre and
    images where it holds them."""
    log_path = beside(source, given, DEFAULT_LOG)
    if log_path is None:
        raise DataError(f"{source}: no stimulus log given and no {DEFAULT_LOG} beside it")
    if not log_path.is_file():
        raise DataError(f"stimulus log {log_path} does not exist")
    return log_path, _read_nwb_log(log_path) if log_path.suffix.lower() == ".nwb" else _read_csv_log(log_path)


def trials_dataset(source: Path, shown: dict[str, Any], responses: np.ndarray, log_path: Path, images: str | None,
                   test_repeats: int, nan_policy: str, *, signal: str, positions: np.ndarray | None,
                   name: str, unit_ids: np.ndarray | None = None) -> NeuralDataset:
    """The :class:`NeuralDataset` of trial ``responses`` (presentations x ROIs) to the
    presentations ``shown`` of the log at ``log_path``, with the images the log carries or those
    of ``images`` (default ``images.npy`` beside ``source``), tiers from the log or the repeats."""
    stimuli = shown.get("images")
    if stimuli is None:
        stimuli = _images(source, images, log_path)
    ids = shown["image_id"]
    rows = shown.get("stimulus_index", ids)
    if rows.min() < 0 or rows.max() >= len(stimuli):
        raise DataError(f"{log_path}: image id {int(rows.max() if rows.max() >= len(stimuli) else rows.min())} is "
                        f"outside the {len(stimuli)} images")
    tiers = shown.get("tier")
    if tiers is None:
        tiers = tiers_from_repeats(ids, test_repeats, str(log_path))
    return with_nan_policy(
        nan_policy, f"{source}: the {signal} signal",
        stimuli=stimuli, responses=responses, image_ids=ids, tiers=tiers, stimulus_index=rows,
        behavior=shown.get("behavior"), pupil_center=shown.get("pupil_center"), cortical_positions=positions,
        unit_ids=unit_ids, name=name, response_kind=signal, info={"source": str(source), "stimulus_log": str(log_path)},
    )


def _images(source: Path, given: str | None, log_path: Path) -> np.ndarray:
    path = beside(source, given, DEFAULT_IMAGES)
    if path is None:
        raise DataError(f"{log_path}: no images given (images) and no {DEFAULT_IMAGES} beside {source}")
    if not path.is_file():
        raise DataError(f"images {path} do not exist")
    images = numeric_npy(path)
    if images.ndim not in (3, 4):
        raise DataError(f"{path}: expected images (n, H, W), (n, C, H, W) or (n, H, W, C), got shape {images.shape}")
    return images.astype(np.float32)  # channels-last colour: moved by NeuralDataset


def read_frame_times(path: Path, n_frames: int, what: str) -> np.ndarray:
    """Seconds per frame from ``.npy`` / ``.csv`` / ``.txt`` (numbers only), at least ``n_frames``
    of them (``what`` names the frames in errors), all of them returned."""
    if not path.is_file():
        raise DataError(f"frame times {path} do not exist")
    try:
        times = (np.loadtxt(path, delimiter=",", ndmin=1) if path.suffix.lower() in (".csv", ".txt")
                 else numeric_npy(path)).astype(np.float64).ravel()
    except ValueError as exc:
        raise DataError(f"{path}: frame times must be numbers only, one per frame, no header ({exc})") from None
    if len(times) < n_frames:
        raise DataError(f"{path}: {len(times)} frame times for {n_frames} frames of {what}")
    return times


def _read_ops(plane: Path) -> dict:
    """``ops.npy``, else (suite2p 1.x without it) ``db.npy`` updated with ``settings.npy``."""
    names = ("ops.npy",) if (plane / "ops.npy").is_file() else SETTINGS_FILES
    ops: dict = {}
    for name in names:
        value = read_pickled_npy(plane / name)
        if not isinstance(value, dict):
            raise DataError(f"{plane / name}: expected a dict of settings, got {type(value).__name__}")
        ops.update(value)
    return ops


def _mesoscope_strips(ops: dict) -> tuple[int, int | None]:
    """(strips per plane, planes per volume or None) from a folder's settings. A mesoscope
    images ``nrois`` strips of each plane in one scanner frame, so they share its time. The
    ``nplanes`` suite2p saves counts planes, not planes x strips (0.14's conversion multiplies
    it, but ``run_s2p`` writes the caller's back into every folder, as 0.14.6 and 1.1.0 were
    seen to do on the ``suite2p_roundtrip_mesoscope`` pages); flyback planes count in it."""
    nrois = _number(ops.get("nrois"))
    strips = int(nrois) if nrois is not None and nrois >= 1 else 1
    nplanes = _number(ops.get("nplanes"))
    return strips, int(nplanes) if nplanes is not None and nplanes >= 1 else None


def _combined_folder_numbers(numbers: list[float | None], ops: dict) -> list[float | None]:
    """The plane folder of each ROI of suite2p's ``combined`` folder. Its ``stat`` ``iplane`` is
    the folder number in suite2p < 1.0, but 1.x counts only the folders it combined, which leave
    out the flyback planes (``ignore_flyback``; seen on page ``suite2p_roundtrip_flyback``)."""
    flyback = ops.get("ignore_flyback")
    version = str(ops.get("suite2p_version") or ops.get("version") or "0").split(".")[0]
    if not isinstance(flyback, (list, tuple, np.ndarray)) or len(flyback) == 0 or not version.isdigit() \
            or int(version) < 1:
        return numbers
    skipped = {int(f) for f in flyback if _number(f) is not None}
    # each combined number k is the k-th folder that is not a flyback plane
    top = max((int(n) for n in numbers if n is not None), default=-1)
    combined = [folder for folder in range(top + len(skipped) + 1) if folder not in skipped]
    return [None if n is None else float(combined[int(n)]) for n in numbers]


def _number(value: Any) -> float | None:
    """A finite real number (Python or numpy, not a bool) as float, else None."""
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _roi_centre(stat: Any, plane: Path) -> tuple[float, float]:
    if isinstance(stat, dict) and "med" in stat:
        return float(stat["med"][0]), float(stat["med"][1])
    if isinstance(stat, dict) and "ypix" in stat and "xpix" in stat:
        return float(np.median(stat["ypix"])), float(np.median(stat["xpix"]))
    raise DataError(f"{plane / 'stat.npy'}: an ROI without 'med' or 'ypix'/'xpix'")


def _column(names: list[str], choices: tuple[str, ...]) -> str | None:
    lower = {n.lower(): n for n in names}
    return next((lower[c] for c in choices if c in lower), None)


def _log_arrays(path: Path, columns: dict[str, np.ndarray]) -> dict[str, Any]:
    names = list(columns)
    onset, image = _column(names, ONSET_COLUMNS), _column(names, IMAGE_COLUMNS)
    if onset is None or image is None:
        raise DataError(f"{path}: the stimulus log needs an onset column (one of {list(ONSET_COLUMNS)}) and an image "
                        f"column (one of {list(IMAGE_COLUMNS)}); it has {names}")
    try:
        out: dict[str, Any] = {"onset": np.asarray(columns[onset], dtype=np.float64),
                               "image_id": np.asarray(columns[image], dtype=np.float64)}
    except ValueError as exc:
        raise DataError(f"{path}: non-numeric onset or image id ({exc})") from None
    if len(out["onset"]) == 0:
        raise DataError(f"{path}: the stimulus log has no rows")
    if not np.isfinite(out["onset"]).all() or not np.isfinite(out["image_id"]).all():
        raise DataError(f"{path}: onset or image id holds empty / NaN entries")
    fractional = out["image_id"] != np.round(out["image_id"])
    if fractional.any():
        row = int(np.flatnonzero(fractional)[0])
        raise DataError(f"{path}: {int(fractional.sum())} image id(s) are not whole numbers (first: row {row}, "
                        f"{out['image_id'][row]:g}); an image id is the index of a stimulus image")
    out["image_id"] = out["image_id"].astype(np.int64)
    tier = _column(names, ("tier",))
    if tier is not None:
        tiers = np.asarray(columns[tier]).astype(str)
        unknown = sorted(set(tiers) - set(TIERS))
        if unknown:
            raise DataError(f"{path}: unknown tier(s) {unknown}; expected {list(TIERS)}")
        out["tier"] = tiers
    for key, group in (("behavior", BEHAVIOR_COLUMNS), ("pupil_center", PUPIL_COLUMNS)):
        found = [_column(names, (c,)) for c in group]
        if key == "pupil_center" and any(found) and not all(found):  # one coordinate is no position
            raise DataError(f"{path}: a pupil centre needs both columns {' and '.join(group)}; only "
                            f"{next(c for c in found if c)} is there")
        if any(found):  # as from NWB: the behaviour columns present (running speed alone gives one)
            try:
                out[key] = np.stack([np.asarray(columns[c], dtype=np.float32) for c in found if c], 1)
            except ValueError as exc:
                raise DataError(f"{path}: non-numeric {key} column ({exc})") from None
    return out


def _read_csv_log(path: Path) -> dict[str, Any]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:  # Excel's "CSV UTF-8" starts with a BOM
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable CSV stimulus log ({exc})") from None
    if not rows:
        raise DataError(f"{path}: the stimulus log has no rows")
    columns = {name: np.array([r.get(name) or "nan" for r in rows]) for name in rows[0] if name}
    return _log_arrays(path, columns)


def _read_nwb_log(path: Path) -> dict[str, Any]:
    """The presentations of an NWB stimulus log that showed an image (omitted flashes left out),
    their images matched by name or index as :func:`~neuroaikit.neural.load_nwb` does."""
    from .nwb import behavior_per_trial, open_nwb, presentation_table, shown_presentations

    with open_nwb(path) as nwb:
        table = presentation_table(nwb, path)
        # a log without stimulus templates takes its images from images.npy
        _, trials, images, image_ids, rows, _ = shown_presentations(nwb, path, table, require_images=False)
        columns = {c: np.asarray(trials[c].data[:]) for c in trials.colnames}
        columns["image_id"] = image_ids
        out = _log_arrays(path, columns)
        out["stimulus_index"] = rows
        if images is not None:
            out["images"] = images
        behavior, pupil = behavior_per_trial(nwb, path, trials, behavior="behavior" not in out,
                                             pupil="pupil_center" not in out)
        for key, value in (("behavior", behavior), ("pupil_center", pupil)):
            if value is not None:
                out[key] = value
    return out
