"""A lab's own two-photon recording: CaImAn output + stimulus log + frame times ->
:class:`~neuroaikit.neural.NeuralDataset`.

Inputs
------
- the HDF5 file CaImAn's ``CNMF.save`` (or ``OnACID.save``) writes (``.hdf5`` / ``.h5``), read
  with h5py (``pip install 'neuroaikit[caiman]'``): ``estimates/C`` (denoised traces, components x
  frames), ``estimates/S`` (deconvolved activity), ``estimates/F_dff`` (when
  ``estimates.detrend_df_f`` ran), ``estimates/idx_components`` (the components
  ``evaluate_components`` accepted), ``estimates/A`` (the spatial footprints: a sparse
  pixels x components matrix in CSC form, pixels in Fortran order over ``estimates/dims``) and
  ``params/data/fr`` (the frame rate). CaImAn writes a missing value as the string ``"NoneType"``.
  HDF5 holds no code, so nothing in the file can run.
- the stimulus log, the images and the frame times as for suite2p
  (:mod:`neuroaikit.neural.suite2p`): a CSV or NWB log beside the file (``stimulus_log.csv``),
  ``images.npy`` unless the NWB log carries them, and ``frame_times.npy`` (seconds per frame of
  ``C``; default ``i / fr``).

Per trial and component the response is the mean of the signal over the frames in
``[onset + window[0], onset + window[1])``; the signal is ``S`` (default, as suite2p's
``spks``), ``C`` or ``F_dff``. Only the accepted components are kept when CaImAn evaluated
them (``components="accepted"``, default); ``"all"`` keeps every one. Each component's position is
the centre of mass of its footprint (x, y in pixels, and the plane for a volume). Tiers as for
suite2p.

Example::

    from neuroaikit.neural.caiman import CaimanRecording
    ds = CaimanRecording(caiman="cnmf_results.hdf5", stimulus_log="log.csv", images="images.npy").load()
"""

from __future__ import annotations

import logging
from pathlib import Path
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..config import PATH, Config, Interval, Options, Satisfies
from ..errors import ConfigError, DataError
from .dataset import WINDOW_DESCRIPTION, NeuralDataset, check_nan_policy, is_response_window, response_window_frames, \
    window_means
from .load import CAIMAN_SUFFIXES
from .suite2p import DEFAULT_FRAME_TIMES, beside, read_frame_times, read_stimulus_log, trials_dataset

__all__ = ["CaimanRecording", "is_caiman_file"]

#: what CaImAn's ``save_dict_to_hdf5`` writes in place of ``None``
_NONE = "NoneType"

log = logging.getLogger(__name__)


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ConfigError("reading CaImAn's .hdf5 results needs h5py: pip install 'neuroaikit[caiman]'") from None
    return h5py


def is_caiman_file(path: str | Path) -> bool:
    """Is ``path`` an HDF5 file holding CaImAn's ``estimates`` group?"""
    path = Path(path)
    if not (path.is_file() and path.suffix.lower() in CAIMAN_SUFFIXES):
        return False
    try:
        with _h5py().File(path, "r") as fh:
            return "estimates" in fh
    except OSError:
        return False


@dataclass
class CaimanRecording(Config):
    """One CaImAn recording with its stimulus log (see the module docstring).

    Args:
        caiman: the ``.hdf5`` file CaImAn saved.
        stimulus_log: CSV or NWB (default ``stimulus_log.csv`` beside the file).
        images: ``.npy`` of the images by id (default ``images.npy`` beside; not needed when the
            NWB log carries stimulus templates).
        frame_times: ``.npy`` / ``.csv`` seconds per frame of ``C`` (default ``frame_times.npy``
            beside when present, else ``i / fr``).
        window: (start, stop) seconds after each onset averaged into the trial's response.
        signal: ``"S"`` (deconvolved), ``"C"`` (denoised) or ``"F_dff"``.
        components: ``"accepted"`` (the components CaImAn's evaluation kept, all when it did not
            run) or ``"all"``.
        test_repeats: without a ``tier`` column, images shown this often or more are the test tier.
    """

    caiman: str
    stimulus_log: str | None = None
    images: str | None = None
    frame_times: str | None = None
    window: tuple[float, float] = (0.0, 0.5)
    signal: str = "S"
    components: str = "accepted"
    test_repeats: int = 2

    _parameter_constraints: ClassVar[dict] = {
        "caiman": [PATH],
        "stimulus_log": [PATH, None],
        "images": [PATH, None],
        "frame_times": [PATH, None],
        "window": [Satisfies(is_response_window, WINDOW_DESCRIPTION)],
        "signal": [Options(("S", "C", "F_dff"))],
        "components": [Options(("accepted", "all"))],
        "test_repeats": [Interval(int, 2, None)],
    }

    #: fields holding paths, which a recording file gives relative to itself
    path_fields: ClassVar[tuple[str, ...]] = ("caiman", "stimulus_log", "images", "frame_times")

    def _check(self) -> None:
        self.window = (float(self.window[0]), float(self.window[1]))

    def load(self, nan_policy: str = "raise") -> NeuralDataset:
        """Read and check every file (one-line errors naming the file), then build the data set.
        Trials whose response window holds a NaN/inf frame: ``nan_policy``
        (``neuroaikit.neural.dataset.with_nan_policy``)."""
        check_nan_policy(nan_policy)
        path = Path(self.caiman)
        signal, positions, fr, components = self._read()
        log_path, shown = read_stimulus_log(path.parent, self.stimulus_log)
        times = self._frame_clock(path, signal.shape[1], fr)
        lo, hi, cut = response_window_frames(times, shown["onset"], self.window, str(log_path), nan_policy)
        responses = window_means(signal.T, lo, hi, cut).astype(np.float32)
        return trials_dataset(path, shown, responses, log_path, self.images, self.test_repeats, nan_policy,
                              signal=self.signal, positions=positions, name=path.stem, unit_ids=components)

    def _read(self) -> tuple[np.ndarray, np.ndarray | None, float | None, np.ndarray]:
        """(signal (components, frames), their positions or None, the frame rate or None, their
        indices in CaImAn's estimates: the unit ids, which a re-evaluation keeps) of the components kept."""
        path = Path(self.caiman)
        if not path.is_file():
            raise DataError(f"CaImAn results {path} do not exist")
        h5py = _h5py()
        try:
            fh = h5py.File(path, "r")
        except OSError as exc:
            raise DataError(f"{path}: not a readable HDF5 file ({exc})") from None
        with fh:
            estimates = fh.get("estimates")
            if not isinstance(estimates, h5py.Group):
                raise DataError(f"{path}: no 'estimates' group: not results saved by CaImAn (cnm.save)")
            c = _array(estimates, "C", path)
            if c is None or c.ndim != 2:
                raise DataError(f"{path}: estimates/C must be (components, frames), got "
                                f"{'nothing' if c is None else f'shape {c.shape}'}")
            signal = c if self.signal == "C" else _array(estimates, self.signal, path)
            if signal is None:
                how = " (run estimates.detrend_df_f before saving)" if self.signal == "F_dff" else ""
                raise DataError(f"{path}: estimates/{self.signal} is empty{how}")
            if signal.shape != c.shape:
                raise DataError(f"{path}: estimates/{self.signal} has shape {signal.shape}, estimates/C {c.shape}")
            keep = self._kept(estimates, path, len(c))
            positions = _centres(estimates, fh, path, len(c))
            fr = _number(fh, "params/data/fr")
        signal = signal[keep].astype(np.float64)
        if len(signal) == 0:
            raise DataError(f"{path}: estimates/idx_components accepts no component")
        if positions is not None:
            positions = positions[keep]
            if np.isnan(positions).any():
                log.info("%s: a kept component has an empty footprint: components have no positions", path)
                positions = None
        return signal, positions, fr, np.asarray(keep, dtype=np.int64)

    def _kept(self, estimates, path: Path, n: int) -> np.ndarray:
        accepted = _array(estimates, "idx_components", path) if self.components == "accepted" else None
        if accepted is None:
            if self.components == "accepted":
                log.info("%s: no estimates/idx_components (components not evaluated): every component kept", path)
            return np.arange(n)
        accepted = accepted.astype(np.int64).ravel()
        if len(accepted) and (accepted.min() < 0 or accepted.max() >= n):
            raise DataError(f"{path}: estimates/idx_components names component {int(accepted.max())}, "
                            f"estimates/C has {n}")
        return accepted

    def _frame_clock(self, path: Path, n_frames: int, fr: float | None) -> np.ndarray:
        times_path = beside(path.parent, self.frame_times, DEFAULT_FRAME_TIMES)
        if times_path is None:
            if fr is None or not fr > 0:
                raise DataError(f"{path}: no frame rate params/data/fr and no frame times given (frame_times)")
            return np.arange(n_frames) / fr
        times = read_frame_times(times_path, n_frames, "estimates/C")[:n_frames]
        if not (np.diff(times) > 0).all():
            raise DataError(f"{times_path}: frame times must increase")
        return times


def _array(group, name: str, path: Path) -> np.ndarray | None:
    """``group[name]`` as an array; None where it is absent or CaImAn wrote ``None``."""
    if name not in group:
        return None
    item = group[name]
    if not hasattr(item, "shape"):
        raise DataError(f"{path}: {item.name} is a group, expected an array")
    value = item[()]
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        if value == _NONE:
            return None
        raise DataError(f"{path}: {item.name} holds the text {value!r}, expected numbers")
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.number):
        raise DataError(f"{path}: {item.name} holds {array.dtype}, expected numbers")
    return array


def _number(fh, name: str) -> float | None:
    if name not in fh or not hasattr(fh[name], "shape"):
        return None
    value = np.asarray(fh[name][()])
    return float(value) if value.size == 1 and np.issubdtype(value.dtype, np.number) else None


def _centres(estimates, fh, path: Path, n: int) -> np.ndarray | None:
    """Each component's footprint centre of mass, (x, y, plane) in pixels, from ``estimates/A``
    (CSC, pixels in Fortran order over ``dims``); None when the file lacks them."""
    footprints = estimates.get("A")
    stored = _array(estimates, "dims", path) if "dims" in estimates else _array(fh, "dims", path) if "dims" in fh else None
    if footprints is None or stored is None or not all(k in footprints for k in ("data", "indices", "indptr")):
        log.info("%s: no footprints (estimates/A) or dims: components have no positions", path)
        return None
    dims = tuple(int(d) for d in stored.ravel())
    data, rows, starts = (np.asarray(footprints[k][()]) for k in ("data", "indices", "indptr"))
    if len(starts) != n + 1 or len(dims) not in (2, 3) or (len(rows) and rows.max() >= np.prod(dims)):
        raise DataError(f"{path}: estimates/A does not match {n} components of {'x'.join(map(str, dims))} pixels")
    coords = np.stack(np.unravel_index(rows.astype(np.int64), dims, order="F"), 1).astype(np.float64)
    weights = np.abs(data.astype(np.float64))
    centres = np.full((n, 3), np.nan)
    for k in range(n):
        part = slice(starts[k], starts[k + 1])
        total = weights[part].sum()
        if total > 0:
            mean = weights[part] @ coords[part] / total
            centres[k] = [mean[1], mean[0], mean[2] if len(dims) == 3 else 0.0]  # (row, col) -> (x, y)
    return centres.astype(np.float32)
