"""NWB (Neurodata Without Borders) read / write through ``pynwb``.

Reading (:func:`load_nwb`) looks for:

- ROI responses: a ``RoiResponseSeries`` in ``processing["ophys"]`` (inside ``DfOverF``,
  ``Fluorescence`` or any container; ``series=`` picks one by name when there are several),
  either one row per trial or a frame-rate trace;
- the trials: the ``trials`` table (or an ``intervals`` table named by ``trials_table=``; without
  a usable trials table, the first ``*presentations`` intervals table with an image column, as
  the Allen Brain Observatory writes them, e.g. ``natural_scenes_presentations``) with
  ``start_time`` / ``stop_time`` and an image column (``image_id``, ``frame``, ``image_index``
  or ``stimulus_index``), optional ``tier`` and behaviour columns;
- behaviour, when the table has no behaviour columns: the time series the file records, in
  the Sensorium order (:func:`behavior_per_trial`): pupil size and its time derivative (a
  series in a ``PupilTracking`` container, or named ``pupil_area``, ``pupil_size``,
  ``pupil_diameter`` or ``pupil_radius``, else the ``area`` of Allen's pupil ``EllipseSeries``)
  and running speed (a ``TimeSeries`` named ``running_speed``, or ``speed`` in a ``running``
  processing module or container, the Allen Brain Observatory's names);
- the pupil centre, when the table has no ``pupil_x`` / ``pupil_y`` columns: a two-column
  series named ``pupil_tracking`` (Allen's ``EllipseEyeTracking``), ``pupil_center``,
  ``pupil_position`` or ``pupil_location``, else the series of an ``EyeTracking`` container
  (one two-column series, or two whose names end in x and y);
- each series is averaged over each trial's ``[start_time, stop_time)`` (NaN samples such as
  blinks left out; interpolated at its middle for a trial with no valid sample);
- the images: an ``ImageSeries`` in ``stimulus_template`` or ``stimulus`` (or an ``Images``
  container of ``GrayscaleImage``s or ``RGBImage``s), indexed by the image column; colour
  stored channels-last is moved channels-first (by :class:`NeuralDataset`).

A frame-rate trace is turned into one response per trial by averaging the frames whose
timestamps fall in ``[start_time, stop_time)`` (trials with no frame raise
:class:`DataError`). Trials without a ``tier`` column are all ``train`` except images shown
more than once, which become ``test`` (logged).

Writing (:func:`write_nwb`) stores a :class:`NeuralDataset` in that layout, one response
row per trial, so ``load_nwb(write_nwb(ds, path))`` gives ``ds`` back.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError
from .dataset import NeuralDataset, check_nan_policy, window_means, with_nan_policy

log = logging.getLogger(__name__)


def _require_pynwb() -> None:
    """NWB support is an optional dependency: say how to get it, in one line."""
    try:
        import pynwb  # noqa: F401
    except ImportError:
        raise ConfigError("reading or writing .nwb files needs pynwb: pip install 'neuroaikit[nwb]'") from None

IMAGE_COLUMNS = ("image_id", "frame_image_id", "frame", "image_index", "stimulus_index")
BEHAVIOR_COLUMNS = ("pupil_dilation", "pupil_dilation_derivative", "running_speed")
PUPIL_COLUMNS = ("pupil_x", "pupil_y")
#: names of a two-column pupil-centre series (Allen's ``EllipseSeries`` is ``pupil_tracking``)
PUPIL_CENTRE_SERIES = ("pupil_tracking", "pupil_center", "pupil_centre", "pupil_position", "pupil_location")
#: names of a pupil-size series outside a ``PupilTracking`` container
PUPIL_SIZE_SERIES = ("pupil_area", "pupil_size", "pupil_diameter", "pupil_radius")


def write_nwb(ds: NeuralDataset, path: str | os.PathLike, session_description: str = "neuroaikit NeuralDataset") -> Path:
    """Write ``ds`` to an NWB file (atomically); returns the path."""
    _require_pynwb()
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.image import ImageSeries
    from pynwb.ophys import OpticalChannel, RoiResponseSeries, DfOverF

    nwb = NWBFile(
        session_description=session_description,
        identifier=ds.name,
        session_start_time=datetime(2000, 1, 1, tzinfo=timezone.utc),
    )
    stimuli = ds.stimuli if ds.stimuli.ndim == 3 else ds.stimuli[:, 0]
    nwb.add_stimulus_template(ImageSeries(name="images", data=stimuli, unit="intensity", rate=1.0, format="raw"))
    n = ds.n_trials
    starts = np.arange(n, dtype=np.float64) * 0.5
    nwb.add_trial_column("image_id", "image id of the trial (repeats share an id)")
    nwb.add_trial_column("stimulus_index", "row of stimulus_template/images shown")
    nwb.add_trial_column("tier", "train / validation / test / final_test")
    extra = []
    if ds.behavior is not None and ds.behavior.shape[1] == 3:
        extra += [(c, ds.behavior[:, i]) for i, c in enumerate(BEHAVIOR_COLUMNS)]
    if ds.pupil_center is not None and ds.pupil_center.shape[1] == 2:
        extra += [(c, ds.pupil_center[:, i]) for i, c in enumerate(PUPIL_COLUMNS)]
    for name, _ in extra:
        nwb.add_trial_column(name, name.replace("_", " "))
    for t in range(n):
        row = {c: float(v[t]) for c, v in extra}
        nwb.add_trial(
            start_time=starts[t], stop_time=starts[t] + 0.5, image_id=int(ds.image_ids[t]),
            stimulus_index=int(ds.stimulus_index[t]), tier=str(ds.tiers[t]), **row,
        )
    device = nwb.create_device(name="microscope")
    channel = OpticalChannel(name="green", description="calcium indicator", emission_lambda=510.0)
    plane = nwb.create_imaging_plane(
        name="plane", optical_channel=channel, description="imaging plane", device=device,
        excitation_lambda=920.0, indicator="GCaMP6", location="V1", imaging_rate=2.0,
    )
    ophys = nwb.create_processing_module("ophys", "responses per trial")
    from pynwb.ophys import ImageSegmentation

    seg = ImageSegmentation()
    ps = seg.create_plane_segmentation(name="rois", description="neurons", imaging_plane=plane)
    ps.add_column("unit_id", "unit id")
    if ds.cortical_positions is not None:
        ps.add_column("cortical_position", "x, y, z (µm)")
    for i in range(ds.n_neurons):
        kw = {"cortical_position": ds.cortical_positions[i].tolist()} if ds.cortical_positions is not None else {}
        ps.add_roi(pixel_mask=[(0, 0, 1.0)], unit_id=int(ds.unit_ids[i]), **kw)
    ophys.add(seg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        region = ps.create_roi_table_region(region=list(range(ds.n_neurons)), description="all neurons")
    series = RoiResponseSeries(name="responses", data=ds.responses, rois=region, unit="a.u.", timestamps=starts + 0.25)
    ophys.add(DfOverF(roi_response_series=series))

    path = Path(path)
    tmp = path.with_name(f".{path.stem}.partial.nwb")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            with NWBHDF5IO(str(tmp), "w") as io:
                io.write(nwb)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


@contextmanager
def open_nwb(path: str | os.PathLike) -> Iterator[Any]:
    """The NWB file at ``path``, open for reading (one-line :class:`DataError` when it is not one)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    _require_pynwb()
    from pynwb import NWBHDF5IO

    try:
        io = NWBHDF5IO(str(path), "r")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            nwb = io.read()
    except Exception as exc:  # h5py / hdmf raise many types for a non-NWB file
        raise DataError(f"{path}: not a readable NWB file ({type(exc).__name__}: {exc})") from None
    try:
        yield nwb
    finally:
        io.close()


def load_nwb(path: str | os.PathLike, series: str | None = None, trials_table: str | None = None,
             nan_policy: str = "raise") -> NeuralDataset:
    """Read ROI responses, trials and stimulus images from an NWB file (see module docstring).
    Trials whose responses hold NaN/inf: ``nan_policy`` (:func:`~neuroaikit.neural.dataset.with_nan_policy`)."""
    check_nan_policy(nan_policy)
    with open_nwb(path) as nwb:
        return _read(nwb, Path(path), series, trials_table, nan_policy)


def presentation_table(nwb, path: Path, name: str | None = None):
    """The table of stimulus presentations: ``name`` (an intervals table, or ``"trials"``), else
    the trials table when it has an image column, else the first ``*presentations`` intervals
    table that has one (Allen Brain Observatory layout)."""
    intervals = dict(nwb.intervals or {})
    if name is not None:
        table = nwb.trials if name == "trials" else intervals.get(name)
        if table is None:
            raise DataError(f"{path}: no {name!r} table; intervals tables: {sorted(intervals)}")
        return table
    candidates = ([nwb.trials] if nwb.trials is not None else []) + [
        t for n, t in sorted(intervals.items()) if n.endswith("presentations") and n != "trials"]
    for table in candidates:
        if any(c in table.colnames for c in IMAGE_COLUMNS):
            return table
    if candidates:
        return candidates[0]
    raise DataError(f"{path}: no trials table and no *presentations intervals table")


def stimulus_images(nwb, path: Path) -> np.ndarray:
    """The stimulus images (n, H, W) or (n, C, H, W) of an NWB file (``ImageSeries`` or ``Images`` in the stimulus
    templates or the stimulus group)."""
    return _find_images(nwb, path)


def _timestamps(series, n: int) -> np.ndarray:
    """Seconds of each of the ``n`` samples of a ``TimeSeries`` (timestamps, or start and rate)."""
    if series.timestamps is not None:
        return np.asarray(series.timestamps[:], dtype=np.float64)
    return series.starting_time + np.arange(n) / series.rate


def _all_series(nwb) -> Iterator[tuple[Any, tuple[Any, ...]]]:
    """Every ``TimeSeries`` in the acquisition group and the processing modules, each with the
    containers above it (module first), however deeply a behaviour container nests them."""
    from pynwb import TimeSeries

    def visit(obj, parents):
        if isinstance(obj, TimeSeries):
            yield obj, parents
        else:
            for child in getattr(obj, "children", ()):
                yield from visit(child, (*parents, obj))

    for obj in nwb.acquisition.values():
        yield from visit(obj, ())
    for module in nwb.processing.values():
        for obj in module.data_interfaces.values():
            yield from visit(obj, (module,))


def _columns(series) -> int:
    shape = getattr(series.data, "shape", None) or np.shape(series.data)
    return 1 if len(shape) < 2 else int(shape[1])


def _trial_means(values: np.ndarray, stamps: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Mean of the samples ``values`` (1-D, at ``stamps``) within each ``[start, stop)``. NaN
    samples (blinks, dropped frames) are left out; a window with no valid sample takes the
    series interpolated at its middle."""
    lo, hi = np.searchsorted(stamps, start, "left"), np.searchsorted(stamps, stop, "left")
    finite = np.isfinite(values)
    sums = np.concatenate([[0.0], np.cumsum(np.where(finite, values, 0.0))])
    counts = np.concatenate([[0], np.cumsum(finite)])
    n = counts[hi] - counts[lo]
    means = np.full(len(start), np.nan)
    means[n > 0] = (sums[hi] - sums[lo])[n > 0] / n[n > 0]
    if (n == 0).any() and finite.any():
        means[n == 0] = np.interp((start[n == 0] + stop[n == 0]) / 2, stamps[finite], values[finite])
    return means


def _series_trial_means(series, values, table) -> np.ndarray:
    """:func:`_trial_means` of ``values`` (samples of ``series``, 1-D) over the presentations of ``table``."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    start, stop = np.asarray(table["start_time"].data[:]), np.asarray(table["stop_time"].data[:])
    return _trial_means(values, _timestamps(series, len(values)), start, stop)


def _running_series(found):
    """The running-speed ``TimeSeries`` among ``found`` (see the module docstring), or None."""
    return next((s for s, parents in found if s.name == "running_speed"
                 or (s.name == "speed" and any(p.name == "running" for p in parents))), None)


def _pupil_centre_series(found) -> list[tuple[Any, int]]:
    """(series, column) of the pupil centre's x and y: a two-column series named as in
    ``PUPIL_CENTRE_SERIES`` (Allen's ``EllipseSeries``), else one in an ``EyeTracking``
    container, else two one-column series there whose names end in x and y; [] when none."""
    from pynwb.behavior import EyeTracking

    named = [s for s, _ in found if s.name.lower() in PUPIL_CENTRE_SERIES and _columns(s) >= 2]
    in_eye = [s for s, parents in found if any(isinstance(p, EyeTracking) for p in parents)]
    pairs = [s for s in in_eye if _columns(s) >= 2]
    if named or pairs:
        series = (named or pairs)[0]
        return [(series, 0), (series, 1)]
    xs = [s for s in in_eye if s.name.lower().endswith("x")]
    ys = [s for s in in_eye if s.name.lower().endswith("y")]
    return [(xs[0], 0), (ys[0], 0)] if xs and ys else []


def _pupil_size(found, centre) -> tuple[Any, np.ndarray, str] | None:
    """(series, samples, description) of the pupil size: a series in a ``PupilTracking``
    container or named as in ``PUPIL_SIZE_SERIES`` (a processed one before one whose name
    says ``raw``), else the ``area`` of the pupil-centre ellipse (Allen); None when none."""
    from pynwb.behavior import PupilTracking

    candidates = [s for s, parents in found
                  if s.name.lower() in PUPIL_SIZE_SERIES or any(isinstance(p, PupilTracking) for p in parents)]
    candidates.sort(key=lambda s: "raw" in s.name.lower())
    if candidates:
        series = candidates[0]
        return series, _samples(series)[:, 0], repr(series.name)
    area = getattr(centre, "area", None) if centre is not None else None
    if area is not None:
        return centre, np.asarray(area[:], dtype=np.float64), f"{centre.name!r}.area"
    return None


def behavior_per_trial(nwb, path: Path, table, behavior: bool = True,
                       pupil: bool = True) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Behaviour and pupil centre per presentation of ``table`` from the file's time series,
    each averaged within the presentation (NaN samples left out; a presentation with no valid
    sample takes the series interpolated at its middle); ``behavior`` / ``pupil`` False: that
    one is not read and comes back None.

    Behaviour: the Sensorium columns the file records, in their order: pupil size and its
    time derivative (:func:`_pupil_size`), running speed (:func:`_running_series`); None when
    it records none. Pupil centre (trials, 2): :func:`_pupil_centre_series`, in the file's units
    (eye-camera pixels on most rigs; the shifter standardises it), or None."""
    found = list(_all_series(nwb)) if behavior or pupil else []
    centre = _pupil_centre_series(found) if found else []
    centre_means = None
    if pupil and centre:
        centre_means = np.stack([_series_trial_means(s, _samples(s)[:, c], table) for s, c in centre], 1).astype(np.float32)
        log.info("%s: pupil centre from %s, averaged within each trial", path, " and ".join(sorted({repr(s.name) for s, _ in centre})))
    if not behavior:
        return None, centre_means
    columns, names = [], []
    size = _pupil_size(found, centre[0][0] if centre else None)
    if size is not None:
        series, values, described = size
        columns += [_series_trial_means(series, values, table),
                    _series_trial_means(series, _nan_gradient(values, _timestamps(series, len(values))), table)]
        names += [f"pupil size ({described})", "its time derivative"]
    running = _running_series(found)
    if running is not None:
        columns.append(_series_trial_means(running, _samples(running)[:, 0], table))
        names.append(f"running speed ({running.name!r})")
    if not columns:
        return None, centre_means
    log.info("%s: behaviour = %s, averaged within each trial", path, ", ".join(names))
    return np.stack(columns, 1).astype(np.float32), centre_means


def _samples(series) -> np.ndarray:
    """The samples of ``series`` as (samples, columns) floats."""
    return np.asarray(series.data[:], dtype=np.float64).reshape(len(series.data), -1)


def _nan_gradient(values: np.ndarray, stamps: np.ndarray) -> np.ndarray:
    """d values / d t at each sample (central differences); NaN where a neighbour is NaN."""
    if len(values) < 2:
        return np.full(len(values), np.nan)
    return np.gradient(values, stamps)


def _find_series(nwb, path: Path, name: str | None):
    from pynwb.ophys import RoiResponseSeries

    found = []
    for module in nwb.processing.values():
        for obj in module.data_interfaces.values():
            items = obj.roi_response_series.values() if hasattr(obj, "roi_response_series") else [obj]
            found += [s for s in items if isinstance(s, RoiResponseSeries)]
    if not found:
        raise DataError(f"{path}: no RoiResponseSeries in any processing module")
    if name is not None:
        match = [s for s in found if s.name == name]
        if not match:
            raise DataError(f"{path}: no RoiResponseSeries named {name!r}; found {[s.name for s in found]}")
        return match[0]
    if len(found) > 1:
        log.info("%s: %d RoiResponseSeries, using %r (pass series= to pick)", path, len(found), found[0].name)
    return found[0]


def _find_images(nwb, path: Path) -> np.ndarray:
    from pynwb.image import ImageSeries, Images

    for group in (nwb.stimulus_template, nwb.stimulus):
        for obj in group.values():
            if isinstance(obj, ImageSeries) and obj.data is not None and np.ndim(obj.data) >= 3:
                return np.asarray(obj.data[:], dtype=np.float32)
            if isinstance(obj, Images):
                # RGBImage is (H, W, 3): NeuralDataset moves the stack channels-first
                return np.stack([np.asarray(img.data[:], dtype=np.float32) for img in obj.images.values()])
    raise DataError(f"{path}: no stimulus images (ImageSeries or Images in stimulus_template / stimulus)")


def _read(nwb, path: Path, series_name: str | None, table_name: str | None, nan_policy: str) -> NeuralDataset:
    table = presentation_table(nwb, path, table_name)
    columns = set(table.colnames)
    image_col = next((c for c in IMAGE_COLUMNS if c in columns), None)
    if image_col is None:
        raise DataError(f"{path}: trials table has none of the image columns {list(IMAGE_COLUMNS)}")
    image_ids = np.asarray(table[image_col].data[:]).astype(np.int64)
    stim_index = np.asarray(table["stimulus_index"].data[:]).astype(np.int64) if "stimulus_index" in columns else image_ids
    n_trials = len(image_ids)
    if n_trials == 0:
        raise DataError(f"{path}: the trials table is empty")
    series = _find_series(nwb, path, series_name)
    data = np.asarray(series.data[:], dtype=np.float32)
    if data.ndim == 1:
        data = data[:, None]
    if data.shape[0] == n_trials:
        responses = data
    else:
        stamps = _timestamps(series, len(data))
        start, stop = np.asarray(table["start_time"].data[:]), np.asarray(table["stop_time"].data[:])
        lo, hi = np.searchsorted(stamps, start, "left"), np.searchsorted(stamps, stop, "left")
        if (hi <= lo).any():
            raise DataError(f"{path}: {int((hi <= lo).sum())} trial(s) contain no frame of {series.name!r}")
        responses = window_means(data, lo, hi)
        log.info("%s: averaged %s frames within each of %d trials", path, series.name, n_trials)
    if "tier" in columns:
        tiers = np.asarray(table["tier"].data[:]).astype(str)
    else:
        ids, counts = np.unique(image_ids, return_counts=True)
        tiers = np.where(np.isin(image_ids, ids[counts > 1]), "test", "train")
        log.info("%s: no tier column; %d trials of repeated images -> test, the rest train", path, int((tiers == "test").sum()))
    stimuli = _find_images(nwb, path)
    if stim_index.max() >= len(stimuli) or stim_index.min() < 0:
        raise DataError(f"{path}: trial image index {int(stim_index.max())} outside the {len(stimuli)} stimulus images")
    series_behavior, series_pupil = behavior_per_trial(nwb, path, table, behavior=not set(BEHAVIOR_COLUMNS) <= columns,
                                                       pupil=not set(PUPIL_COLUMNS) <= columns)
    behavior = (np.stack([np.asarray(table[c].data[:]) for c in BEHAVIOR_COLUMNS], 1) if set(BEHAVIOR_COLUMNS) <= columns
                else series_behavior)
    pupil = (np.stack([np.asarray(table[c].data[:]) for c in PUPIL_COLUMNS], 1) if set(PUPIL_COLUMNS) <= columns
             else series_pupil)
    unit_ids = positions = None
    try:
        rois = series.rois.table
        if "unit_id" in rois.colnames:
            unit_ids = np.asarray(rois["unit_id"].data[:])[series.rois.data[:]]
        if "cortical_position" in rois.colnames:
            positions = np.asarray(rois["cortical_position"].data[:])[series.rois.data[:]]
    except AttributeError:
        pass
    return with_nan_policy(
        nan_policy, f"{path}: {series.name!r}",
        stimuli=stimuli, responses=responses, image_ids=image_ids, tiers=tiers, stimulus_index=stim_index,
        behavior=behavior, pupil_center=pupil, unit_ids=unit_ids, cortical_positions=positions,
        name=path.stem, response_kind=series.name, info={"source": str(path)},
    )
