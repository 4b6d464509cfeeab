"""One entry point for every neural data format: :func:`load_neural`."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, DataError
from .dataset import NeuralDataset, check_nan_policy

if TYPE_CHECKING:
    from .caiman import CaimanRecording
    from .nwb import NwbRecording
    from .suite2p import Suite2pRecording


def load_neural(path: str | os.PathLike, region: int | None = None, nan_policy: str = "raise",
                memory_map: bool | None = None) -> NeuralDataset:
    """Load ``path`` by its format:

    - ``synthetic`` (the word): a small embedded synthetic cortex (200 neurons, 36x64);
    - a Sensorium FileTree folder (``meta/trials/tiers.npy`` inside) or its ``.zip``;
    - an ``.nwb`` file;
    - a suite2p output folder with ``stimulus_log.csv`` and ``images.npy`` beside it, or a
      recording file (``.json`` / ``.yaml``) naming the suite2p folder, stimulus log, images,
      frame times and extraction settings (:class:`~neuroaikit.neural.suite2p.Suite2pRecording`),
      the same for CaImAn's results (:class:`~neuroaikit.neural.caiman.CaimanRecording`),
      or an NWB file and its reading options such as the response window
      (``neuroaikit.neural.nwb.NwbRecording``): ``recording_from_file``;
    - CaImAn's saved results (``.hdf5`` / ``.h5``) with ``stimulus_log.csv`` and ``images.npy``
      beside them;
    - ``antolik2016_mouse_v1.npz`` (``region`` 1, 2 or 3; default 1) or
      ``allen_natural_scenes_v1.npz``, or the folder holding them with ``region`` set for Antolik.

    ``nan_policy``: trials whose responses hold NaN/inf (a dropped frame, a lost ROI) stop the
    load with a one-line error (``"raise"``, default) or are left out, logged (``"drop"``), in
    every format (``neuroaikit.neural.dataset.with_nan_policy``).

    ``memory_map`` (FileTree folders and zips only): True keeps responses and images on disk,
    memory-mapped; None (default) does so when they would not fit comfortably in memory
    (:func:`~neuroaikit.neural.load_filetree`).
    """
    check_nan_policy(nan_policy)
    if str(path) == "synthetic":
        from .simulate import SyntheticCortex

        return SyntheticCortex(n_neurons=200, image_shape=(36, 64), seed=0).sample(2000, 200, 50, 10)
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist")
    if region is not None and not (path.is_dir() and not is_filetree(path) or (
            path.suffix.lower() == ".npz" and "antolik" in path.name.lower())):
        raise ConfigError(f"region applies to the Antolik file only, not to {path.name}")
    if is_filetree(path):
        from .filetree import load_filetree

        return load_filetree(path, nan_policy=nan_policy, memory_map=memory_map)
    _held_in_memory(path, memory_map)
    if path.is_dir():
        if region is not None:
            from .npz import load_antolik

            return load_antolik(path, region, nan_policy)
        from .suite2p import Suite2pRecording, is_suite2p_folder

        if is_suite2p_folder(path):
            return Suite2pRecording(suite2p=str(path)).load(nan_policy)
        raise DataError(f"{path}: not a Sensorium FileTree folder (no meta/trials/tiers.npy) nor suite2p output (no F.npy)")
    suffix = path.suffix.lower()
    if suffix in RECORDING_FILE_SUFFIXES:
        return recording_from_file(path).load(nan_policy)
    if suffix in CAIMAN_SUFFIXES:
        from .caiman import CaimanRecording

        return CaimanRecording(caiman=str(path)).load(nan_policy)
    if suffix == ".nwb":
        from .nwb import load_nwb

        return load_nwb(path, nan_policy=nan_policy)
    if suffix == ".npz":
        from .npz import load_allen, load_antolik

        return (load_antolik(path, region or 1, nan_policy) if "antolik" in path.name.lower()
                else load_allen(path, nan_policy))
    raise DataError(f"{path}: unknown neural data format (expected a FileTree folder or .zip, suite2p output, "
                    f"CaImAn's .hdf5, .nwb, .npz, or a recording file .json / .yaml)")


def recording_from_file(path: str | os.PathLike) -> Suite2pRecording | NwbRecording | CaimanRecording:
    """A recording file (JSON / YAML): the fields of ``neuroaikit.neural.nwb.NwbRecording``
    when it names an ``nwb`` file, those of :class:`~neuroaikit.neural.caiman.CaimanRecording`
    when it names a ``caiman`` file, else those of
    :class:`~neuroaikit.neural.suite2p.Suite2pRecording`; relative paths are relative to the file."""
    from ..config import load_config_file
    from .caiman import CaimanRecording
    from .nwb import NwbRecording
    from .suite2p import Suite2pRecording

    path = Path(path)
    values = dict(load_config_file(path, what="recording file"))
    kind: type[Suite2pRecording] | type[NwbRecording] | type[CaimanRecording] = (
        NwbRecording if "nwb" in values else CaimanRecording if "caiman" in values else Suite2pRecording)
    for key in kind.path_fields:
        if isinstance(values.get(key), str) and not Path(values[key]).is_absolute():
            values[key] = str(path.parent / values[key])
    try:
        return kind.from_dict(values, where=str(path))
    except ConfigError as exc:
        if str(path) in str(exc):
            raise
        raise ConfigError(f"{path}: {exc}") from None


def check_recording_file(path: str | os.PathLike) -> None:
    """Refuse in one line a recording file (JSON / YAML) whose settings are bad or that names a
    file or folder that does not exist, without reading the recording itself."""
    recording = recording_from_file(path)
    for key in recording.path_fields:
        value = getattr(recording, key)
        if value is not None and not Path(value).exists():
            raise DataError(f"{path}: {key} {value}: not found")


#: the suffixes of recording files, which name the recording's own files
RECORDING_FILE_SUFFIXES = (".json", ".yaml", ".yml")

#: the suffixes of CaImAn's saved results
CAIMAN_SUFFIXES = (".hdf5", ".h5")

#: the suffixes of the formats that are not FileTree zips
OTHER_SUFFIXES = (".json", ".yaml", ".yml", ".nwb", ".npz", *CAIMAN_SUFFIXES)


def is_filetree(path: str | os.PathLike) -> bool:
    """Is ``path`` a Sensorium FileTree folder (``meta/trials/tiers.npy`` inside) or a zip (by
    suffix, or any file of another suffix than the other formats' that is a zip)? Only these can
    be memory-mapped."""
    path = Path(path)
    if path.is_dir():
        return (path / "meta" / "trials" / "tiers.npy").is_file()
    suffix = path.suffix.lower()
    return path.is_file() and (suffix == ".zip" or (suffix not in OTHER_SUFFIXES and zipfile.is_zipfile(path)))


def _held_in_memory(path: Path, memory_map: bool | None) -> None:
    if memory_map:
        raise DataError(f"{path}: memory mapping applies to Sensorium FileTree folders and zips; "
                        "this format is read into memory")
