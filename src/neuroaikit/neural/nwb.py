"""NWB (Neurodata Without Borders) read / write through ``pynwb``.

Reading (:func:`load_nwb`) looks for:

- ROI responses: a ``RoiResponseSeries`` in a processing module (inside ``DfOverF``,
  ``Fluorescence`` or directly in the module), either one row per trial or a frame-rate trace.
  With several, one inside a ``DfOverF`` container is taken (Allen's Visual Behavior files hold
  ``dff/traces``, ``corrected_fluorescence/traces``, ``neuropil_trace/traces`` and
  ``event_detection``: the same series name in several containers); ``series=`` picks one by its
  name, its container's name or ``"container/series"``;
- the ROIs of that series' ``PlaneSegmentation``: ids from a ``unit_id`` column, else the table's
  own ids (Allen: ``cell_roi_id``); an Allen ``valid_roi`` column leaves out the ROIs it marks
  False (logged), as AllenSDK does by default; Allen's ``cell_specimen_id`` goes to
  ``neuron_meta``;
- the trials: the ``trials`` table (or the ``intervals`` table or stimulus ``IndexSeries`` named
  by ``trials_table=``) when
  it has an image column; else every ``*presentations`` intervals table with an ``image_name``
  column, read as one table in time order (Allen Visual Behavior writes one per stimulus, older
  AllenSDK versions one per image name); else the first ``*presentations`` table with an image
  column (e.g. ``natural_scenes_presentations``); else an ``IndexSeries`` in the stimulus group
  that indexes an image stack (onsets only: each presentation lasts until the next onset, or
  one median interval where the next comes later than 1.5 of them; with several, the one whose onsets lie furthest apart, stills
  rather than a movie's frames). A table needs ``start_time`` / ``stop_time`` and an
  image column: ``image_name`` (matched to the names of the stimulus images, below), else
  ``image_id``, ``frame``, ``image_index`` or ``stimulus_index``; optional ``tier`` and behaviour
  columns. Presentations that showed no image (an ``omitted`` column true, or the image name
  ``"omitted"``: Allen's omitted flashes, a gray screen; without image names, a negative image
  index: the Brain Observatory's blank sweeps, ``frame`` -1) are left out (logged); the trials keep
  their row numbers in the table as ``trial_ids``. In an Allen ``*_presentations`` table
  ``stimulus_index`` numbers the stimulus *type* (AllenSDK's column description), so it is not
  taken as the row of the image there;
- behaviour, when the table has no behaviour columns: the time series the file records, in
  the Sensorium order (:func:`behavior_per_trial`): pupil size and its time derivative (a
  series in a ``PupilTracking`` container, or named ``pupil_area``, ``pupil_size``,
  ``pupil_diameter`` or ``pupil_radius``, else the ``area`` of Allen's pupil ``EllipseSeries``)
  and running speed (a ``TimeSeries`` named ``running_speed``, or ``speed`` in a ``running``
  processing module or container, Allen's names; its ``speed_unfiltered`` and ``dx`` are not read);
- the pupil centre, when the table has no ``pupil_x`` / ``pupil_y`` columns: a two-column
  series named ``pupil_tracking`` (Allen's ``EllipseEyeTracking``), ``pupil_center``,
  ``pupil_position`` or ``pupil_location``, else the series of an ``EyeTracking`` container
  (one two-column series, or two whose names end in x and y);
- each series is averaged over each trial's ``[start_time, stop_time)`` (NaN samples such as
  blinks left out, and the samples a ``likely_blink`` series beside it flags, as Allen's
  ``EllipseEyeTracking`` does: its ``area`` is NaN at blinks but its centre is not;
  interpolated at its middle for a trial with no valid sample);
- the images: an ``ImageSeries`` in ``stimulus_template`` or ``stimulus`` (or an ``Images``
  container of ``GrayscaleImage``s or ``RGBImage``s, in its ``order_of_images``, else by name
  with numbers compared as numbers, ``scene2`` before ``scene10``; an ``IndexSeries``' own
  stack), indexed by the image column; with an
  ``image_name`` column, the first such stack whose names hold every name shown (an
  ``ImageSeries``' ``control_description``, as Allen's ``StimulusTemplate`` names its images,
  or the image names of an ``Images`` container); colour stored channels-last is moved
  channels-first (by :class:`NeuralDataset`). Allen's ``StimulusTemplate`` data are the *warped*
  images, as the monitor showed them; its ``unwarped`` images (NaN outside the seen part) are
  not read.

A frame-rate trace is turned into one response per trial by averaging the frames whose
timestamps fall in ``[start_time, stop_time)`` (trials with no frame raise
:class:`~neuroaikit.errors.DataError`), or, with ``window=(a, b)``, in ``[start_time + a, start_time + b)``: the
calcium response to a flash peaks after it ends (GCaMP6 rises over about 0.1-0.2 s), so for
back-to-back flashes such as the Brain Observatory's 0.25 s natural scenes the presentation's own
interval holds little of it and a window such as ``(0.1, 0.5)`` more (it then overlaps the next
flash's interval; the next flash's response arrives later). Behaviour and pupil are always averaged
within the presentation's own interval. A recording file (``.json`` / ``.yaml``, key ``nwb``:
:class:`NwbRecording`) gives these options to :func:`~neuroaikit.neural.load_neural` and the CLI. Trials without a ``tier`` column are all ``train`` except images shown
more than once, which become ``test``; where every image repeats (Allen's natural scenes and
Visual Behavior sessions), a fifth of the images are held out as ``test`` with all their repeats
and the rest are ``train`` (``neuroaikit.neural.dataset.tiers_from_repeats``, logged).

The Allen Visual Behavior ophys layout above (module, container, table and column names,
dtypes, the extensions' specs) was checked against the AllenSDK source that writes and reads it,
and the Brain Observatory Visual Coding layout as NWB 2 (DANDI 000728: ``DfOverF/DfOverF``, the
``natural_scenes_stimulus`` IndexSeries over ``NaturalScene0``...``NaturalScene117``) against the
converter's source, not against real files. That converter cast the image index to unsigned
through HDF5, which clips a blank sweep (``frame`` -1 in the original files) to image 0; where
image 0 is shown at least 1.5 times as often as the median image, its presentations are left out
with a warning, since the blanks among them cannot be told apart. The original Visual Coding
files are NWB 1, which ``pynwb`` does not read.

Writing (:func:`write_nwb`) stores a :class:`NeuralDataset` in that layout, one response
row per trial, so ``load_nwb(write_nwb(ds, path))`` gives ``ds`` back.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np

from ..config import PATH, STRING, Config, Satisfies
from ..errors import ConfigError, DataError
from .dataset import (WINDOW_DESCRIPTION, NeuralDataset, check_nan_policy, is_response_window, response_window_frames,
                      tiers_from_repeats, window_means, with_nan_policy)

log = logging.getLogger(__name__)


def _require_pynwb() -> None:
    """NWB support is an optional dependency: say how to get it, in one line."""
    try:
        import pynwb  # noqa: F401
    except ImportError:
        raise ConfigError("reading or writing .nwb files needs pynwb: pip install 'neuroaikit[nwb]'") from None

IMAGE_COLUMNS = ("image_id", "frame_image_id", "frame", "image_index", "stimulus_index", "image")
#: the column naming each presentation's image (Allen Visual Behavior: a key of its stimulus template)
IMAGE_NAME_COLUMN = "image_name"
#: the image name of a presentation that showed no image (Allen: a gray screen in place of a flash)
OMITTED_IMAGE = "omitted"
#: the series Allen's ``EllipseEyeTracking`` flags blink frames with, beside its ellipses
BLINK_SERIES = "likely_blink"
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
    stim_rows, unit_ids = np.asarray(ds.stimulus_index), np.asarray(ds.unit_ids)  # both set by NeuralDataset
    for t in range(n):
        row = {c: float(v[t]) for c, v in extra}
        nwb.add_trial(
            start_time=starts[t], stop_time=starts[t] + 0.5, image_id=int(ds.image_ids[t]),
            stimulus_index=int(stim_rows[t]), tier=str(ds.tiers[t]), **row,
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
        ps.add_roi(pixel_mask=[(0, 0, 1.0)], unit_id=int(unit_ids[i]), **kw)
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
    """The NWB file at ``path``, open for reading (one-line :class:`~neuroaikit.errors.DataError`
    when it is not one)."""
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
             nan_policy: str = "raise", window: tuple[float, float] | None = None) -> NeuralDataset:
    """Read ROI responses, trials and stimulus images from an NWB file (see module docstring).
    Trials whose responses hold NaN/inf: ``nan_policy`` (``neuroaikit.neural.dataset.with_nan_policy``).
    ``window``: (start, stop) seconds after each presentation's start averaged into its response;
    None (default): the presentation's own ``[start_time, stop_time)``."""
    check_nan_policy(nan_policy)
    window = _checked_window(window)
    with open_nwb(path) as nwb:
        return _read(nwb, Path(path), series, trials_table, nan_policy, window)


def _checked_window(window: Any) -> tuple[float, float] | None:
    if window is None:
        return None
    if not is_response_window(window):
        raise ConfigError(f"window must be {WINDOW_DESCRIPTION}, got {window!r}")
    return float(window[0]), float(window[1])


@dataclass
class NwbRecording(Config):
    """An NWB recording with its reading options, as a recording file (``.json`` / ``.yaml``)
    names them for :func:`~neuroaikit.neural.load_neural` and the CLI, e.g.::

        nwb: session.nwb
        window: [0.1, 0.5]

    Args:
        nwb: the NWB file (relative to the recording file).
        series: the response series (:func:`load_nwb`'s ``series``).
        trials_table: the presentations (:func:`load_nwb`'s ``trials_table``).
        window: (start, stop) seconds after each presentation's start; None: its own interval.
    """

    nwb: str
    series: str | None = None
    trials_table: str | None = None
    window: tuple[float, float] | None = None

    path_fields: ClassVar[tuple[str, ...]] = ("nwb",)
    _parameter_constraints: ClassVar[dict] = {
        "nwb": [PATH], "series": [STRING, None], "trials_table": [STRING, None],
        "window": [Satisfies(is_response_window, WINDOW_DESCRIPTION), None],
    }

    def _check(self) -> None:
        self.window = _checked_window(self.window)

    def load(self, nan_policy: str = "raise") -> NeuralDataset:
        return load_nwb(self.nwb, self.series, self.trials_table, nan_policy, self.window)


class _Column(NamedTuple):
    data: np.ndarray


class PresentationTable:
    """Stimulus presentations read into memory, offering what callers use of a pynwb table
    (``name``, ``colnames``, ``table[column].data``), so that several intervals tables can be
    read as one: Allen's Visual Behavior files hold one ``*_presentations`` table per stimulus
    (older ones, one per image name) that only together give the session's presentations.
    ``images``: the image stack the presentations index, when they name it (an ``IndexSeries``'
    ``indexed_images``); None: the file's first stack."""

    def __init__(self, name: str, columns: dict[str, np.ndarray], images: Any = None) -> None:
        self.name = name
        self._columns = columns
        self.colnames = tuple(columns)
        self.images = images

    def __getitem__(self, column: str) -> _Column:
        return _Column(self._columns[column])

    def __len__(self) -> int:
        return len(self._columns["start_time"]) if "start_time" in self._columns else 0

    def rows(self, keep: np.ndarray) -> PresentationTable:
        """The presentations where ``keep`` (a mask or row numbers) says, same columns."""
        return PresentationTable(self.name, {c: v[keep] for c, v in self._columns.items()}, self.images)


def _read_table(table) -> dict[str, np.ndarray]:
    """The one-value-per-row columns of an NWB table, text as ``str``. Ragged columns (Allen's
    ``tags`` and ``timeseries``, lick times) and compound ones are left out: no trial needs them."""
    from hdmf.common import VectorIndex

    n = len(table)
    out = {}
    for name in table.colnames:
        column = table[name]
        if isinstance(column, VectorIndex):
            continue
        values = np.asarray(column.data[:])
        if values.ndim != 1 or len(values) != n or values.dtype.kind == "V":
            continue
        if values.dtype.kind in "SO":
            values = np.array([_text(v) for v in values], dtype=str)
        out[name] = values
    return out


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _merged(path: Path, tables: list[tuple[str, Any]]) -> PresentationTable:
    """Intervals tables read as one, rows in ``start_time`` order, on the columns they share (as
    AllenSDK reads its ``*_presentations`` tables); a column whose types cannot be joined (text in
    one table, numbers in another) is left out."""
    read = [(name, _read_table(table)) for name, table in tables]
    if len(read) == 1:
        return PresentationTable(*read[0])
    columns = {}
    for column in read[0][1]:
        if all(column in cols for _, cols in read[1:]):
            parts = [cols[column] for _, cols in read]
            if len({_value_kind(part) for part in parts}) > 1:  # numpy would turn the numbers into text
                log.info("%s: column %r differs in type between the presentation tables, left out", path, column)
                continue
            try:
                columns[column] = np.concatenate(parts)
            except (TypeError, ValueError):  # shapes that do not stack
                log.info("%s: column %r differs in shape between the presentation tables, left out", path, column)
    if "start_time" not in columns:
        raise DataError(f"{path}: the presentation tables {[n for n, _ in read]} lack a shared start_time column")
    order = np.argsort(columns["start_time"], kind="stable")
    log.info("%s: read the presentation tables %s as one, in time order", path, ", ".join(n for n, _ in read))
    return PresentationTable(" + ".join(n for n, _ in read), {c: v[order] for c, v in columns.items()})


def _value_kind(values: np.ndarray) -> str:
    """``"number"`` (booleans included), ``"text"`` or ``"other"``: what a column holds."""
    if values.dtype.kind in "biuf":
        return "number"
    if values.dtype.kind in "US":  # _read_table turns stored text into str
        return "text"
    return "other"


#: seconds: a stimulus index series whose images change faster than this is a movie, not trials
MIN_STILL_INTERVAL = 0.1


def _has_image_column(colnames) -> bool:
    return any(c in colnames for c in (*IMAGE_COLUMNS, IMAGE_NAME_COLUMN))


def presentation_table(nwb, path: Path, name: str | None = None) -> PresentationTable:
    """The table of stimulus presentations, in memory: ``name`` (an intervals table, or
    ``"trials"``), else the trials table when it has an image column, else every
    ``*presentations`` intervals table with an ``image_name`` column, as one table in time order
    (Allen Visual Behavior), else the first ``*presentations`` intervals table with an image
    column (Allen Brain Observatory layout), else an ``IndexSeries`` of the stimulus group that
    indexes an image stack (the Brain Observatory's Visual Coding files as NWB 2, DANDI 000728:
    ``natural_scenes_stimulus``; :func:`index_series_presentations`). ``name`` may also name such
    an ``IndexSeries``."""
    intervals = dict(nwb.intervals or {})
    index_series = _index_series(nwb)
    if name is not None:
        if name in index_series:
            return index_series_presentations(path, index_series[name])
        table = nwb.trials if name == "trials" else intervals.get(name)
        if table is None:
            raise DataError(f"{path}: no {name!r} table; intervals tables: {sorted(intervals)}, "
                            f"stimulus index series: {sorted(index_series)}")
        return PresentationTable(name, _read_table(table))
    presentations = [(n, t) for n, t in sorted(intervals.items()) if n.endswith("presentations") and n != "trials"]
    if nwb.trials is not None and _has_image_column(nwb.trials.colnames):
        return PresentationTable("trials", _read_table(nwb.trials))
    named = [(n, t) for n, t in presentations if IMAGE_NAME_COLUMN in t.colnames]
    if named:
        return _merged(path, named)
    for n, t in presentations:
        if _has_image_column(t.colnames):
            return PresentationTable(n, _read_table(t))
    if index_series:
        chosen = next(iter(index_series))
        onsets = _timestamps(index_series[chosen], len(index_series[chosen].data))
        if len(onsets) > 1 and np.median(np.diff(onsets)) < MIN_STILL_INTERVAL:
            raise DataError(f"{path}: the stimulus index series {chosen!r} changes image every "
                            f"{np.median(np.diff(onsets)):.3f} s, a movie's frames rather than still images; "
                            f"trials_table={chosen!r} reads it as trials anyway")
        if len(index_series) > 1:
            log.info("%s: presentations from the stimulus index series %r (others: %s; trials_table= picks one)",
                     path, chosen, ", ".join(n for n in index_series if n != chosen))
        return index_series_presentations(path, index_series[chosen])
    if nwb.trials is not None:
        return PresentationTable("trials", _read_table(nwb.trials))
    if presentations:
        return PresentationTable(presentations[0][0], _read_table(presentations[0][1]))
    raise DataError(f"{path}: no trials table and no *presentations intervals table")


def _index_series(nwb) -> dict[str, Any]:
    """The ``IndexSeries`` of the stimulus group that index a stack of images (an ``Images``
    container, or an ``ImageSeries`` of 3+ dimensions), by name, the one whose onsets lie furthest
    apart first: a still image is shown for a quarter of a second or more, a movie's frame for a
    thirtieth (the Brain Observatory's natural movies)."""
    from pynwb.image import ImageSeries, Images, IndexSeries

    found = {n: obj for n, obj in sorted(nwb.stimulus.items())
             if isinstance(obj, IndexSeries) and (isinstance(_indexed(obj), Images) or (
                 isinstance(_indexed(obj), ImageSeries) and np.ndim(_indexed(obj).data) >= 3))}

    def interval(series) -> float:
        onsets = _timestamps(series, len(series.data))
        return float(np.median(np.diff(onsets))) if len(onsets) > 1 else 0.0

    return dict(sorted(found.items(), key=lambda item: -interval(item[1])))


def _indexed(series) -> Any:
    return series.indexed_images if getattr(series, "indexed_images", None) is not None else series.indexed_timeseries


def index_series_presentations(path: Path, series) -> PresentationTable:
    """An ``IndexSeries`` as presentations: ``start_time`` its timestamps, ``image_index`` its
    data, the images it indexes. It records onsets only, so each presentation lasts until the
    next onset, or, where the next comes later than 1.5 median intervals (the end of a block),
    one median interval. An unsigned index at its type's maximum is -1 stored unsigned (a blank
    sweep), so left out. The Visual Coding converter (DANDI 000728) cast the Brain Observatory's
    blank sweeps (``frame`` -1) to unsigned 0 through HDF5, which clips, so there they cannot be
    told from image 0: where its ``natural_scenes`` series shows image 0 at least 1.5 times as
    often as the median image, every presentation of image 0 is left out, with a warning (other
    series, where image 0 may be shown more often by design, are left alone)."""
    data = np.asarray(series.data[:])
    if data.ndim != 1 or data.dtype.kind not in "iu":
        raise DataError(f"{path}: stimulus index series {series.name!r} holds {data.dtype} data of shape "
                        f"{data.shape}, not one image index per presentation")
    if len(data) == 0:
        raise DataError(f"{path}: stimulus index series {series.name!r} is empty")
    start = _timestamps(series, len(data))
    if not (np.diff(start) > 0).all():
        raise DataError(f"{path}: the timestamps of stimulus index series {series.name!r} must increase")
    index = data.astype(np.int64)
    if data.dtype.kind == "u":
        index[data == np.iinfo(data.dtype).max] = -1
        if "natural_scenes" in series.name:  # only the Visual Coding conversion clipped its blanks
            _leave_out_clipped_blanks(path, series.name, index)
    gaps = np.diff(start)
    step = float(np.median(gaps)) if len(gaps) else 1.0
    following = np.append(gaps, np.inf)
    stop = start + np.where(following <= 1.5 * step, following, step)
    log.info("%s: presentations from the stimulus index series %r (%d onsets; each lasts until the next, "
             "at most %.3f s)", path, series.name, len(data), 1.5 * step)
    return PresentationTable(series.name, {"start_time": start, "stop_time": stop, "image_index": index},
                             images=_indexed(series))


def _leave_out_clipped_blanks(path: Path, name: str, index: np.ndarray) -> None:
    """Set image 0's presentations to -1 (blank) where it is shown at least 1.5 times as often as
    the median of at least three other images: blank sweeps clipped to 0 (see
    :func:`index_series_presentations`)."""
    counts = np.bincount(index[index >= 0])
    others = counts[1:][counts[1:] > 0]
    if len(counts) == 0 or len(others) < 3 or counts[0] < 1.5 * np.median(others):
        return
    log.warning("%s: stimulus index series %r shows image 0 %d times, the median image %g times: blank sweeps "
                "stored as unsigned 0 (as the Visual Coding NWB 2 conversion did) cannot be told from image 0, "
                "so its presentations are left out", path, name, int(counts[0]), float(np.median(others)))
    index[index == 0] = -1


def stimulus_images(nwb, path: Path) -> np.ndarray:
    """The stimulus images (n, H, W) or (n, C, H, W) of an NWB file: the first ``ImageSeries`` or
    ``Images`` in the stimulus templates or the stimulus group."""
    return _image_stack(_image_sets(nwb, path)[0])


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
    container or named as in ``PUPIL_SIZE_SERIES`` (a processed one before one whose name, or
    whose container's, says ``raw``), else the ``area`` of the pupil-centre ellipse (Allen: NaN
    at likely blinks; its ``area_raw`` is not read); None when none."""
    from pynwb.behavior import PupilTracking

    candidates = [(s, parents) for s, parents in found
                  if s.name.lower() in PUPIL_SIZE_SERIES or any(isinstance(p, PupilTracking) for p in parents)]
    candidates.sort(key=lambda c: "raw" in " ".join([c[0].name, *(getattr(p, "name", "") for p in c[1])]).lower())
    if candidates:
        series = candidates[0][0]
        return series, _samples(series)[:, 0], repr(series.name)
    area = getattr(centre, "area", None) if centre is not None else None
    if area is not None:
        return centre, np.asarray(area[:], dtype=np.float64), f"{centre.name!r}.area"
    return None


def _blink_flags(series, found, n: int) -> np.ndarray | None:
    """True at the ``n`` samples of ``series`` that a ``likely_blink`` series in the same
    container flags, as Allen's ``EllipseEyeTracking`` does (its ellipses' ``area`` is NaN at
    those frames, their centre is not); None when there is no such series of ``n`` samples."""
    parents = next((p for s, p in found if s is series), ())
    if not parents:
        return None
    for other, other_parents in found:
        if other.name == BLINK_SERIES and other_parents and other_parents[-1] is parents[-1]:
            flags = np.asarray(other.data[:]).reshape(-1)
            if len(flags) == n:
                return np.nan_to_num(flags.astype(np.float64), nan=1.0) != 0  # a NaN flag: not known open
    return None


def _without_blinks(series, values: np.ndarray, found) -> np.ndarray:
    """``values`` (samples of ``series``) with the samples flagged as blinks set to NaN."""
    flags = _blink_flags(series, found, len(values))
    if flags is None or not flags.any():
        return values
    return np.where(flags, np.nan, values)


def behavior_per_trial(nwb, path: Path, table, behavior: bool = True,
                       pupil: bool = True) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Behaviour and pupil centre per presentation of ``table`` from the file's time series,
    each averaged within the presentation (NaN samples left out; a presentation with no valid
    sample takes the series interpolated at its middle); ``behavior`` / ``pupil`` False: that
    one is not read and comes back None.

    Behaviour: the Sensorium columns the file records, in their order: pupil size and its
    time derivative (:func:`_pupil_size`), running speed (:func:`_running_series`); None when
    it records none. Pupil centre (trials, 2): :func:`_pupil_centre_series`, in the file's units
    (eye-camera pixels on most rigs; the shifter standardises it), or None. Samples a
    ``likely_blink`` series flags (:func:`_blink_flags`) are left out of both."""
    found = list(_all_series(nwb)) if behavior or pupil else []
    centre = _pupil_centre_series(found) if found else []
    centre_means = None
    if pupil and centre:
        centre_means = np.stack([_series_trial_means(s, _without_blinks(s, _samples(s)[:, c], found), table)
                                 for s, c in centre], 1).astype(np.float32)
        log.info("%s: pupil centre from %s, averaged within each trial", path, " and ".join(sorted({repr(s.name) for s, _ in centre})))
    if not behavior:
        return None, centre_means
    columns, names = [], []
    size = _pupil_size(found, centre[0][0] if centre else None)
    if size is not None:
        series, values, described = size
        values = _without_blinks(series, values, found)
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


def _find_series(nwb, path: Path, name: str | None) -> tuple[Any, str]:
    """(series, label) of the ROI responses: see the module docstring. The label is the series'
    name, or ``"container/series"`` when other containers hold a series of that name too."""
    from pynwb.ophys import DfOverF, RoiResponseSeries

    found: list[tuple[str, Any, Any]] = []  # (container/series, series, container or None)
    for module in nwb.processing.values():
        for obj in module.data_interfaces.values():
            if hasattr(obj, "roi_response_series"):
                found += [(f"{obj.name}/{s.name}", s, obj) for s in obj.roi_response_series.values()
                          if isinstance(s, RoiResponseSeries)]
            elif isinstance(obj, RoiResponseSeries):
                found.append((obj.name, obj, None))
    if not found:
        raise DataError(f"{path}: no RoiResponseSeries in any processing module")
    paths = [p for p, _, _ in found]
    if name is not None:
        match = [f for f in found if name in (f[0], f[1].name) or (f[2] is not None and f[2].name == name)]
        if not match:
            raise DataError(f"{path}: no RoiResponseSeries named {name!r}; found {paths}")
        if len(match) > 1:
            raise DataError(f"{path}: {len(match)} RoiResponseSeries match {name!r} ({[m[0] for m in match]}); "
                            "name one as container/series")
        chosen = match[0]
    else:
        # Allen's files hold dF/F beside corrected fluorescence, neuropil and events, all named "traces"
        chosen = next((f for f in found if isinstance(f[2], DfOverF)), found[0])
        if len(found) > 1:
            log.info("%s: %d RoiResponseSeries (%s), using %r (pass series= to pick)", path, len(found),
                     ", ".join(paths), chosen[0])
    label = chosen[1].name if sum(f[1].name == chosen[1].name for f in found) == 1 else chosen[0]
    return chosen[1], label


def _image_sets(nwb, path: Path, required: bool = True) -> list[Any]:
    """The image stacks of a file, in the order they are looked at: each ``ImageSeries`` of 3 or
    more dimensions (Allen's ``StimulusTemplate`` is one) and each ``Images`` container in the
    stimulus templates, then in the stimulus group (none: an error if ``required``)."""
    from pynwb.image import ImageSeries, Images

    sets = [obj for group in (nwb.stimulus_template, nwb.stimulus) for obj in group.values()
            if isinstance(obj, Images) or (isinstance(obj, ImageSeries) and obj.data is not None and np.ndim(obj.data) >= 3)]
    if not sets and required:
        raise DataError(f"{path}: no stimulus images (ImageSeries or Images in stimulus_template / stimulus)")
    return sets


def _image_stack(obj) -> np.ndarray:
    from pynwb.image import Images

    if isinstance(obj, Images):
        # RGBImage is (H, W, 3): NeuralDataset moves the stack channels-first
        return np.stack([np.asarray(img.data[:], dtype=np.float32) for img in _ordered_images(obj)])
    return np.asarray(obj.data[:], dtype=np.float32)


def _ordered_images(images) -> list[Any]:
    """The images of an ``Images`` container in their order: its ``order_of_images`` when it has
    one, else by name with the numbers in names compared as numbers (a file lists a group's
    members alphabetically, ``scene10`` before ``scene2``)."""
    order = getattr(images, "order_of_images", None)
    if order is not None:
        return list(order.data[:])
    return [images.images[n] for n in sorted(images.images, key=_natural_key)]


def _natural_key(name: str) -> tuple:
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name))


def _image_names(obj) -> list[str] | None:
    """The name of each image of a stack, or None when it names them not: an ``Images``
    container's image names; an ``ImageSeries``' ``control_description`` picked by its
    ``control`` (Allen's ``StimulusTemplate``: control 0..n-1, one description per image)."""
    from pynwb.image import Images

    if isinstance(obj, Images):
        return [_text(img.name) for img in _ordered_images(obj)]
    described = getattr(obj, "control_description", None)
    if described is None:
        return None
    names = [_text(n) for n in described[:]]
    control = getattr(obj, "control", None)
    if control is not None:
        picks = np.asarray(control[:], dtype=np.int64)
        if len(picks) and (picks.min() < 0 or picks.max() >= len(names)):
            return None
        names = [names[i] for i in picks]
    return names if len(names) == len(obj.data) else None


def _no_image(table: PresentationTable, labels: np.ndarray | None) -> np.ndarray:
    """True for the presentations that showed no image: an ``omitted`` column true (Allen writes
    it as bool, or as 0/1 floats with NaN when some rows lack it), the image name ``"omitted"``,
    or, without image names, a negative image index (the Brain Observatory's natural scenes
    mark their blank sweeps with ``frame`` -1)."""
    blank = np.zeros(len(table), bool)
    image_col = next((c for c in IMAGE_COLUMNS if c in table.colnames), None)
    # a negative index without a stimulus_index beside it (which would be the image's row)
    if labels is None and image_col is not None and "stimulus_index" not in table.colnames \
            and table[image_col].data.dtype.kind in "iuf":
        blank |= np.nan_to_num(table[image_col].data[:].astype(np.float64), nan=0.0) < 0
    if "omitted" in table.colnames:
        flags = table["omitted"].data[:]
        if flags.dtype.kind in "biuf":
            blank |= np.nan_to_num(flags.astype(np.float64), nan=0.0) != 0
        else:
            blank |= np.char.lower(flags.astype(str)) == "true"
    if labels is not None:
        blank |= labels == OMITTED_IMAGE
    return blank


def _presented_images(nwb, path: Path, table: PresentationTable, blank: np.ndarray,
                      require_images: bool = True) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, list[str] | None]:
    """(stimuli, image id, row of ``stimuli``, image names or None) per presentation; id and row
    are -1 where ``blank``. An ``image_name`` column is matched to the names of the first image
    stack that has every name shown; without one (or with no named stack) the image column gives
    the id and, outside Allen's ``*_presentations`` tables, a ``stimulus_index`` column the row."""
    columns = set(table.colnames)
    labels = table[IMAGE_NAME_COLUMN].data[:].astype(str) if IMAGE_NAME_COLUMN in columns else None
    image_col = next((c for c in IMAGE_COLUMNS if c in columns), None)
    if labels is None and image_col is None:
        raise DataError(f"{path}: table {table.name!r} has none of the image columns "
                        f"{[*IMAGE_COLUMNS, IMAGE_NAME_COLUMN]}")
    sets = [table.images] if table.images is not None else _image_sets(nwb, path, required=require_images)
    if labels is not None:
        shown = set(labels[~blank].tolist())
        named = [(obj, names) for obj in sets if (names := _image_names(obj)) is not None]
        for obj, names in named:
            if shown <= set(names):
                lookup = {n: i for i, n in enumerate(names)}
                rows = np.array([-1 if b else lookup[n] for n, b in zip(labels, blank)], dtype=np.int64)
                log.info("%s: images matched by name to %r (%d images)", path, obj.name, len(names))
                return _image_stack(obj), rows, rows, names
        if named:
            obj, names = named[0]
            unknown = sorted(shown - set(names))
            raise DataError(f"{path}: {len(unknown)} image name(s) of the presentations (first: {unknown[:3]}) are not "
                            f"among the {len(names)} names of the stimulus images {obj.name!r}")
        if image_col is None:
            raise DataError(f"{path}: the presentations name their images ({IMAGE_NAME_COLUMN!r}) but no stimulus image "
                            f"stack names its images (control_description) and there is no image index column")
    assert image_col is not None
    stimuli = _image_stack(sets[0]) if sets else None
    ids = _index_column(path, table, image_col, blank)
    allen = table.name.endswith("_presentations")  # there stimulus_index numbers the stimulus type
    rows = (_index_column(path, table, "stimulus_index", blank)
            if "stimulus_index" in columns and not allen else ids)
    return stimuli, ids, rows, None


def _index_column(path: Path, table: PresentationTable, column: str, blank: np.ndarray) -> np.ndarray:
    """Integer ``column`` of the presentations, -1 where ``blank`` (Allen fills those with NaN or an
    index past the images); a missing or non-integer entry elsewhere is an error."""
    try:
        values = table[column].data[:].astype(np.float64)
    except ValueError:
        raise DataError(f"{path}: the image column {column!r} of {table.name!r} is not numeric") from None
    bad = ~blank & ((~np.isfinite(values)) | (values != np.round(values)))
    if bad.any():
        raise DataError(f"{path}: {int(bad.sum())} presentation(s) of {table.name!r} have no whole-number "
                        f"{column!r} (first: row {int(np.flatnonzero(bad)[0])})")
    return np.where(blank, -1, np.nan_to_num(values, nan=-1.0)).astype(np.int64)


def _rois(series, path: Path) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None, dict[str, np.ndarray]]:
    """(valid mask or None, unit ids, cortical positions, neuron_meta) of the ROIs of ``series``,
    in its column order: ids from ``unit_id``, else the ROI table's ids (Allen: ``cell_roi_id``);
    Allen's ``valid_roi`` gives the mask and its ``cell_specimen_id`` (-1: unmatched) the meta."""
    try:
        rois = series.rois.table
        index = np.asarray(series.rois.data[:], dtype=np.int64)
    except AttributeError:
        return None, None, None, {}
    names = set(rois.colnames)
    unit_ids = np.asarray(rois["unit_id"].data[:] if "unit_id" in names else rois.id[:])[index]
    positions = np.asarray(rois["cortical_position"].data[:])[index] if "cortical_position" in names else None
    meta = {"cell_specimen_id": np.asarray(rois["cell_specimen_id"].data[:])[index]} if "cell_specimen_id" in names else {}
    valid = None
    if "valid_roi" in names:
        flags = np.asarray(rois["valid_roi"].data[:])[index]
        valid = (np.char.lower(flags.astype(str)) == "true") if flags.dtype.kind in "SUO" else flags.astype(bool)
    return valid, unit_ids, positions, meta


def shown_presentations(nwb, path: Path, table: PresentationTable, require_images: bool = True) -> tuple[
        np.ndarray, PresentationTable, np.ndarray | None, np.ndarray, np.ndarray, list[str] | None]:
    """The presentations of ``table`` that showed an image (omitted flashes left out):
    (mask over ``table``'s rows, those rows, the stimulus images (None when the file has none
    and ``require_images`` is off), image id and row of the images per kept presentation, image
    names or None)."""
    labels = table[IMAGE_NAME_COLUMN].data[:].astype(str) if IMAGE_NAME_COLUMN in table.colnames else None
    blank = _no_image(table, labels)
    stimuli, all_ids, all_rows, image_names = _presented_images(nwb, path, table, blank, require_images)
    keep = ~blank
    if not keep.any():
        raise DataError(f"{path}: no presentation of {table.name!r} shows an image (all omitted)")
    if blank.any():
        log.info("%s: %d presentation(s) without an image (omitted) left out", path, int(blank.sum()))
    return keep, table.rows(keep), stimuli, all_ids[keep], all_rows[keep], image_names


def _read(nwb, path: Path, series_name: str | None, table_name: str | None, nan_policy: str,
          window: tuple[float, float] | None = None) -> NeuralDataset:
    table = presentation_table(nwb, path, table_name)
    columns = set(table.colnames)
    missing = [c for c in ("start_time", "stop_time") if c not in columns]
    if missing:
        raise DataError(f"{path}: table {table.name!r} lacks {', '.join(missing)}")
    if len(table) == 0:
        raise DataError(f"{path}: the trials table is empty")
    keep, trials, stimuli, image_ids, stim_index, image_names = shown_presentations(nwb, path, table)
    assert stimuli is not None  # required: an NWB recording carries its images
    n_trials = len(image_ids)
    start, stop = trials["start_time"].data[:].astype(np.float64), trials["stop_time"].data[:].astype(np.float64)
    untimed = ~(np.isfinite(start) & np.isfinite(stop))
    if untimed.any():
        raise DataError(f"{path}: {int(untimed.sum())} presentation(s) of {table.name!r} lack a start_time or stop_time "
                        f"(first: row {int(np.flatnonzero(keep)[np.flatnonzero(untimed)[0]])})")
    if stim_index.max() >= len(stimuli) or stim_index.min() < 0:
        raise DataError(f"{path}: trial image index {int(stim_index.max() if stim_index.max() >= len(stimuli) else stim_index.min())} "
                        f"outside the {len(stimuli)} stimulus images")
    series, label = _find_series(nwb, path, series_name)
    data = np.asarray(series.data[:], dtype=np.float32)
    if data.ndim == 1:
        data = data[:, None]
    if data.shape[0] == len(table):  # one row per presentation
        if window is not None:
            raise ConfigError(f"{path}: {label!r} holds one response per presentation, so a response window "
                              f"does not apply")
        responses = data[keep]
    else:
        stamps = _timestamps(series, len(data))
        cut = None
        if window is None:
            lo, hi = np.searchsorted(stamps, start, "left"), np.searchsorted(stamps, stop, "left")
            if (hi <= lo).any():
                raise DataError(f"{path}: {int((hi <= lo).sum())} trial(s) contain no frame of {label!r}")
        else:
            lo, hi, cut = response_window_frames(stamps, start, window, f"{path}: {label!r}", nan_policy)
        responses = window_means(data, lo, hi, cut)
        log.info("%s: averaged %s frames within each of %d trials", path, label, n_trials)
    valid, unit_ids, positions, neuron_meta = _rois(series, path)
    if valid is not None and not valid.all():
        if not valid.any():
            raise DataError(f"{path}: every ROI of {label!r} has valid_roi False")
        log.info("%s: %d of %d ROI(s) with valid_roi False left out", path, int((~valid).sum()), len(valid))
        responses = responses[:, valid]
        unit_ids = unit_ids[valid] if unit_ids is not None else None
        positions = positions[valid] if positions is not None else None
        neuron_meta = {k: v[valid] for k, v in neuron_meta.items()}
    tiers = (trials["tier"].data[:].astype(str) if "tier" in columns
             else tiers_from_repeats(image_ids, 2, str(path)))
    series_behavior, series_pupil = behavior_per_trial(nwb, path, trials, behavior=not set(BEHAVIOR_COLUMNS) <= columns,
                                                       pupil=not set(PUPIL_COLUMNS) <= columns)
    behavior = (np.stack([trials[c].data[:] for c in BEHAVIOR_COLUMNS], 1) if set(BEHAVIOR_COLUMNS) <= columns
                else series_behavior)
    pupil = (np.stack([trials[c].data[:] for c in PUPIL_COLUMNS], 1) if set(PUPIL_COLUMNS) <= columns
             else series_pupil)
    info: dict[str, Any] = {"source": str(path), "presentations": table.name}
    if window is not None:
        info["window"] = list(window)
    if image_names is not None:
        info["image_names"] = list(image_names)
    return with_nan_policy(
        nan_policy, f"{path}: {label!r}",
        stimuli=stimuli, responses=responses, image_ids=image_ids, tiers=tiers, stimulus_index=stim_index,
        behavior=behavior, pupil_center=pupil, unit_ids=unit_ids, cortical_positions=positions,
        trial_ids=np.flatnonzero(keep), neuron_meta=neuron_meta,
        name=path.stem, response_kind=label, info=info,
    )
