"""Sensorium 2022 "FileTree" datasets: a folder, or the same folder inside a ``.zip``.

Published layout (file number ``i`` = trial ``i``; every ``meta/trials`` array is indexed
by file number)::

    config.json
    data/images/<i>.npy          float32 or uint8 (1, H, W)
    data/responses/<i>.npy       float64 (n_neurons,)
    data/behavior/<i>.npy        (3,)  pupil dilation, its derivative, running speed
    data/pupil_center/<i>.npy    (2,)  horizontal, vertical eye position
    meta/trials/tiers.npy        str   train / validation / test / final_test
    meta/trials/frame_image_id.npy  int or str  repeats share an id (or image_id.npy,
                                 colorframeprojector_image_id.npy)
    meta/trials/trial_idx.npy    int   presentation order
    meta/neurons/unit_ids.npy, cell_motor_coordinates.npy (n, 3), area.npy, layer.npy
    meta/statistics/<field>/{all,stimulus_frame}/{mean,std,min,max,median}.npy

A zip may hold this tree at its top or inside one folder (``static...-preproc0/``).
Members are read in place, one pass, straight into preallocated arrays; nothing from an
archive is ever written to disk, so a hostile member name (``../x``) cannot escape.
Each distinct image is read once (repeats share ``frame_image_id``).

Repairs (logged through :mod:`logging`, never silent): trials whose responses hold
NaN are dropped when ``nan_policy="drop"`` (default ``"raise"``); NaN behaviour or pupil
values are replaced by the column's mean over the train tier's trials.

Memory mapping (``memory_map=True``, or automatically for a recording larger than a quarter
of the memory available): responses and images are copied once, trial by trial, into flat
float32 files in a cache folder (default ``$NEUROAIKIT_CACHE_DIR/filetree``) and mapped from
there, so the recording is never held whole in memory; training reads each batch's trials.
The copy is keyed by the recording's path, size and modification times and is reused by
later loads; it is written under a temporary name and renamed when complete, and then the
copies of earlier versions of the same recording are deleted.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import posixpath
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, storage_error
from ..io import cache_dir, make_dirs
from .dataset import NeuralDataset, check_nan_policy, numeric_npy

log = logging.getLogger(__name__)

#: the trial field naming each trial's image, by the names recordings use, first found wins (the
#: Sensorium loaders accept the same three: ``colorframeprojector_`` in colour-screen recordings)
IMAGE_ID_FIELDS = ("frame_image_id", "image_id", "colorframeprojector_image_id")
TRIAL_FIELDS = {"images": "data/images", "responses": "data/responses", "behavior": "data/behavior", "pupil_center": "data/pupil_center"}


class _Tree:
    """Read-only view of a FileTree in a folder or a zip archive."""

    def __init__(self, path: Path):
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        self.root = ""
        if path.is_dir():
            self.names: set[str] = set()  # only a zip's members are listed: a folder is looked up on disk
        elif path.is_file() and zipfile.is_zipfile(path):
            try:
                self.zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise DataError(f"{path}: not a readable zip archive ({exc})") from None
            members = [n for n in self.zip.namelist() if _safe_member(n)]
            anchors = [n[: -len("meta/trials/tiers.npy")] for n in members if n.endswith("meta/trials/tiers.npy")]
            if not anchors:
                raise DataError(f"{path}: no meta/trials/tiers.npy inside the archive (not a Sensorium FileTree zip)")
            self.root = min(anchors, key=len)
            self.names = set(members)
        elif path.exists():
            raise DataError(f"{path}: neither a FileTree folder nor a .zip archive")
        else:
            raise DataError(f"{path} does not exist")

    def where(self, rel: str) -> str:
        return f"{self.path}:{self.root}{rel}" if self.zip else str(self.path / rel)

    def exists(self, rel: str) -> bool:
        if self.zip is None:
            return (self.path / rel).exists()
        rel = self.root + rel
        return rel in self.names or any(n.startswith(rel.rstrip("/") + "/") for n in self._dirs())

    def _dirs(self):
        if not hasattr(self, "_dir_cache"):
            self._dir_cache = sorted({posixpath.dirname(n) + "/" for n in self.names})
        return self._dir_cache

    def read_bytes(self, rel: str) -> bytes:
        try:
            if self.zip is None:
                return (self.path / rel).read_bytes()
            return self.zip.read(self.root + rel)
        except (KeyError, FileNotFoundError):
            raise DataError(f"{self.where(rel)} is missing") from None
        except (OSError, zipfile.BadZipFile) as exc:
            raise DataError(f"{self.where(rel)} cannot be read ({exc})") from None

    def load(self, rel: str) -> np.ndarray:
        if self.zip is None:
            file = self.path / rel
            if not file.is_file():
                raise DataError(f"{file} is missing")
            return numeric_npy(file)
        return numeric_npy(io.BytesIO(self.read_bytes(rel)), self.where(rel))

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def _safe_member(name: str) -> bool:
    """Member names we are willing to look at: relative, no ``..``; others are ignored."""
    return not (name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/") or ":" in name)


def _strings(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind == "S":
        return arr.astype(str)
    return np.asarray([s.decode() if isinstance(s, bytes) else str(s) for s in arr.reshape(-1)]) if arr.dtype.kind == "O" else arr.astype(str)


def load_filetree(path: str | os.PathLike, nan_policy: str = "raise", include_behavior: bool = True,
                  memory_map: bool | None = None, cache: str | os.PathLike | None = None) -> NeuralDataset:
    """Read a Sensorium FileTree folder or ``.zip`` into a :class:`NeuralDataset`.

    Arguments:
        path: the folder holding ``data/`` and ``meta/``, or a zip of it.
        nan_policy: ``"raise"`` (default) stops at the first trial with NaN responses, naming
            its file; ``"drop"`` drops such trials and logs how many.
        include_behavior: read ``data/behavior`` and ``data/pupil_center`` when present.
        memory_map: keep responses and images on disk, memory-mapped from a cached copy
            (module docstring); None (default): only when the recording would take more than
            a quarter of the memory available now (logged).
        cache: the folder of the memory-mapped copies (default ``$NEUROAIKIT_CACHE_DIR/filetree``).

    Example::

        ds = load_filetree("static20457-5-9-preproc0.zip")
        ds.repeats("test").shape   # (101, 10, 5335)
    """
    check_nan_policy(nan_policy)
    path = Path(path)
    tree = _Tree(path)
    try:
        return _load(tree, path, nan_policy, include_behavior, memory_map, cache)
    finally:
        tree.close()


def _load(tree: _Tree, path: Path, nan_policy: str, include_behavior: bool, memory_map: bool | None,
          cache: str | os.PathLike | None) -> NeuralDataset:
    tiers = _strings(tree.load("meta/trials/tiers.npy")).reshape(-1)
    n = len(tiers)
    if n == 0:
        raise DataError(f"{tree.where('meta/trials/tiers.npy')} is empty: no trials")
    ids_file = next((f"meta/trials/{name}.npy" for name in IMAGE_ID_FIELDS if tree.exists(f"meta/trials/{name}.npy")),
                    None)
    if ids_file is None:
        raise DataError(f"{tree.where('meta/trials')}: no image ids ({', '.join(f + '.npy' for f in IMAGE_ID_FIELDS)})")
    image_ids = tree.load(ids_file).reshape(-1)
    if len(image_ids) != n:
        raise DataError(f"{tree.where(ids_file)} has {len(image_ids)} entries, tiers.npy has {n}")
    trial_idx = tree.load("meta/trials/trial_idx.npy").reshape(-1) if tree.exists("meta/trials/trial_idx.npy") else np.arange(n)
    if len(trial_idx) != n:
        raise DataError(f"{tree.where('meta/trials/trial_idx.npy')} has {len(trial_idx)} entries, tiers.npy has {n}")
    config = {}
    if tree.exists("config.json"):
        try:
            config = json.loads(tree.read_bytes("config.json").decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise DataError(f"{tree.where('config.json')}: not valid JSON ({exc})") from None

    uniq, first = np.unique(image_ids, return_index=True)
    stimulus_index = np.searchsorted(uniq, image_ids)
    if memory_map is None:
        memory_map = _larger_than_memory(tree, path, n, len(first))
    if memory_map:
        responses, stimuli, keep = _mapped_arrays(tree, path, n, first, cache)
    else:
        responses = _stack(tree, "data/responses", range(n), dtype=np.float32, what="responses")
        stimuli = _stack(tree, "data/images", first, dtype=np.float32, what="images")
        keep = np.isfinite(responses).all(1)
    if stimuli.ndim == 2:
        raise DataError(f"{tree.where('data/images/0.npy')}: images must be (1, H, W) or (H, W), got a vector")

    behavior = pupil = None
    if include_behavior and tree.exists("data/behavior/0.npy"):
        behavior = _stack(tree, "data/behavior", range(n), dtype=np.float32, what="behavior").reshape(n, -1)
    if include_behavior and tree.exists("data/pupil_center/0.npy"):
        pupil = _stack(tree, "data/pupil_center", range(n), dtype=np.float32, what="pupil_center").reshape(n, -1)

    if not keep.all():
        bad = np.flatnonzero(~keep)
        if nan_policy == "raise":
            raise DataError(
                f"{tree.where(f'data/responses/{bad[0]}.npy')}: responses hold NaN/inf "
                f"({len(bad)} trial(s) affected; leave them out with --drop-nan-trials (twin fit, twin evaluate, align) or nan_policy='drop')"
            )
        log.warning("%s: dropped %d trial(s) whose responses hold NaN (first: file %d)", path, len(bad), bad[0])

    if not keep.all():
        if not memory_map:  # the memory-mapped copy holds the kept trials only
            responses = responses[keep]
        image_ids, tiers, stimulus_index, trial_idx = (a[keep] for a in (image_ids, tiers, stimulus_index, trial_idx))
        behavior = None if behavior is None else behavior[keep]
        pupil = None if pupil is None else pupil[keep]
    n_neurons = responses.shape[1]
    neuron_meta: dict[str, np.ndarray] = {}
    unit_ids = positions = None
    for name in ("unit_ids", "cell_motor_coordinates", "area", "layer"):
        rel = f"meta/neurons/{name}.npy"
        if not tree.exists(rel):
            continue
        arr = tree.load(rel)
        if arr.shape[0] != n_neurons:
            raise DataError(f"{tree.where(rel)} has {arr.shape[0]} rows, responses have {n_neurons} neurons")
        if name == "unit_ids":
            unit_ids = arr.reshape(-1)
        elif name == "cell_motor_coordinates":
            positions = arr.reshape(n_neurons, -1)
        else:
            neuron_meta[name] = _strings(arr)

    name = path.stem if path.suffix == ".zip" else path.name
    ds = NeuralDataset(
        stimuli=stimuli,
        responses=responses,
        image_ids=image_ids,
        tiers=tiers,
        stimulus_index=stimulus_index,
        behavior=behavior,
        pupil_center=pupil,
        unit_ids=unit_ids,
        cortical_positions=positions,
        trial_ids=trial_idx,
        name=name,
        response_kind="deconvolved",
        neuron_meta=neuron_meta,
        info={"source": str(path), "config": config, "statistics": _statistics(tree)},
    )
    return ds


def _trial_arrays(tree: _Tree, folder: str, indices, what: str):
    """``folder/<i>.npy`` for each i, in order, each checked against the first one's shape."""
    shape = None
    for i in indices:
        arr = tree.load(f"{folder}/{i}.npy")
        if shape is None:
            shape, first = arr.shape, i
        elif arr.shape != shape:
            raise DataError(f"{tree.where(f'{folder}/{i}.npy')}: {what} shape {arr.shape} differs from {shape} "
                            f"in file {first}.npy")
        yield arr


def _stack(tree: _Tree, folder: str, indices, dtype, what: str) -> np.ndarray:
    """Read ``folder/<i>.npy`` for each i into one preallocated array (one pass)."""
    indices = list(indices)
    arrays = _trial_arrays(tree, folder, indices, what)
    first = next(arrays)
    out = np.empty((len(indices),) + first.shape, dtype=dtype)
    out[0] = first
    for k, arr in enumerate(arrays, start=1):
        out[k] = arr
    return out


def _available_memory() -> int | None:
    """Bytes of memory available to new allocations now (Linux ``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _larger_than_memory(tree: _Tree, path: Path, n_trials: int, n_images: int) -> bool:
    """Would responses and images take more than a quarter of the memory available? (logged)"""
    available = _available_memory()
    if available is None:
        return False
    n_neurons = int(np.prod(tree.load("data/responses/0.npy").shape))
    pixels = int(np.prod(tree.load("data/images/0.npy").shape))
    needed = 4 * (n_trials * n_neurons + n_images * pixels)
    if needed <= available / 4:
        return False
    log.info("%s: %.1f GB of responses and images, %.1f GB of memory available: memory-mapping them",
             path, needed / 1e9, available / 1e9)
    return True


#: the layout version of the memory-mapped copies: a new layout never reads an old copy
MAPPED_LAYOUT = 1


def _fingerprint(tree: _Tree, path: Path) -> str:
    """A key that changes when the recording does: its path, and the size and modification
    time of the zip, or of every trial file of the folder."""
    path = path.resolve()
    parts = [str(MAPPED_LAYOUT), str(path)]
    if tree.zip is not None:
        stats = [("", path.stat())]
    else:
        stats = [(entry.path, entry.stat()) for rel in ("meta/trials", "data/responses", "data/images")
                 for entry in os.scandir(path / rel)]
    parts += sorted(f"{name}:{s.st_size}:{s.st_mtime_ns}" for name, s in stats)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _open_mapped(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    index = json.loads((folder / "index.json").read_text())
    # copy-on-write: the arrays are writable in memory (torch shares them without a copy),
    # and nothing written to them ever reaches the file
    responses = np.memmap(folder / "responses.f32", np.float32, "c", shape=tuple(index["responses"]))
    stimuli = np.memmap(folder / "stimuli.f32", np.float32, "c", shape=tuple(index["stimuli"]))
    keep = np.asarray(index["keep"], dtype=bool) if index["keep"] is not None else np.ones(index["trials"], bool)
    return responses, stimuli, keep


def _mapped_arrays(tree: _Tree, path: Path, n: int, first: np.ndarray, cache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Responses of the finite trials, the distinct images (memory-mapped) and which trials were kept."""
    root = Path(cache) if cache is not None else cache_dir() / "filetree"
    stem = re.sub(r"[^\w.-]", "_", path.stem if tree.zip is not None else path.name) or "recording"
    target = root / f"{stem}-{_fingerprint(tree, path)}"
    if (target / "index.json").is_file():
        try:
            arrays = _open_mapped(target)
            log.info("%s: memory-mapped from %s", path, target)
            return arrays
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("%s: the memory-mapped copy %s is unreadable (%s); writing it again", path, target, exc)
    make_dirs(root)
    try:
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
    except OSError as exc:
        raise storage_error(exc, "write", root) from None
    try:
        keep, response_shape = _write_rows(tree, "data/responses", range(n), work / "responses.f32", "responses",
                                           finite_only=True)
        if not keep.any():
            raise DataError(f"{tree.where('data/responses')}: the responses of every trial hold NaN/inf")
        _, image_shape = _write_rows(tree, "data/images", first, work / "stimuli.f32", "images")
        index: dict[str, Any] = {"layout": MAPPED_LAYOUT, "source": str(path.resolve()), "trials": n,
                 "responses": [int(keep.sum()), *response_shape], "stimuli": [len(first), *image_shape],
                 "keep": None if keep.all() else keep.tolist()}
        (work / "index.json").write_text(json.dumps(index))  # written last: its presence marks a complete copy
        try:
            os.rename(work, target)
        except OSError:  # another process finished the same copy first, or a broken one is in the way
            if not (target / "index.json").is_file():
                shutil.rmtree(target, ignore_errors=True)
                os.rename(work, target)
            else:
                shutil.rmtree(work, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise storage_error(exc, "write", target) from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log.info("%s: copied to %s for memory mapping", path, target)
    _evict_stale_copies(root, index["source"], keep=target)
    return _open_mapped(target)


def _evict_stale_copies(root: Path, source: str, keep: Path) -> None:
    """Delete the copies of earlier versions of the recording at ``source`` (its files changed
    since), so the cache holds one copy per recording. A process still reading an old copy keeps
    its mapping (POSIX); where the system refuses the deletion, the copy stays."""
    for folder in root.iterdir():
        if folder == keep or folder.name.startswith(".") or not folder.is_dir():
            continue
        try:
            index = json.loads((folder / "index.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(index, dict) and index.get("source") == source:
            shutil.rmtree(folder, ignore_errors=True)
            log.info("%s: removed the copy of an earlier version, %s", source, folder)


def _write_rows(tree: _Tree, folder: str, indices, file: Path, what: str, finite_only: bool = False):
    """Append ``folder/<i>.npy`` for each i to ``file`` as float32, one trial at a time; with
    ``finite_only``, skip trials holding NaN/inf. Returns (which trials were written, one trial's shape)."""
    indices = list(indices)
    keep = np.ones(len(indices), bool)
    shape: tuple = ()
    with open(file, "wb") as out:
        for k, arr in enumerate(_trial_arrays(tree, folder, indices, what)):
            arr = np.ascontiguousarray(arr, dtype=np.float32)
            shape = arr.shape
            if finite_only and not np.isfinite(arr).all():
                keep[k] = False
                continue
            out.write(arr.tobytes())
    return keep, list(shape)


def _statistics(tree: _Tree) -> dict:
    stats: dict = {}
    for field in ("images", "responses", "behavior", "pupil_center"):
        for kind in ("all", "stimulus_frame"):
            for stat in ("mean", "std"):
                rel = f"meta/statistics/{field}/{kind}/{stat}.npy"
                if tree.exists(rel):
                    stats.setdefault(field, {}).setdefault(kind, {})[stat] = tree.load(rel).tolist()
    return stats


def write_filetree(ds: NeuralDataset, path: str | os.PathLike, as_zip: bool = False, overwrite: bool = False) -> Path:
    """Write ``ds`` in the published FileTree layout (a folder, or a ``.zip`` of one).

    Images are written per trial as float32 (1, H, W) (or (C, H, W)), responses as float64.
    The folder (or zip) is written under a temporary name and renamed when complete; an
    existing one is replaced only with ``overwrite`` (never a folder that is not a FileTree).
    """
    import shutil

    from ..errors import ConfigError, storage_error
    from ..io import file_mode, make_dirs
    from ..runs import check_writable_parent, commit_folder, partial_dir

    path = Path(path)
    check_writable_parent(path)
    if as_zip:
        if path.exists() and (path.is_dir() or not overwrite):
            raise ConfigError(f"{path} exists; pass overwrite=True to replace it" if not path.is_dir()
                              else f"{path} is a folder; refusing to replace it with a zip")
        tmp = path.with_name(path.name + ".partial")
        try:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
                root = path.stem + "/"
                _write_entries(ds, lambda rel, data: zf.writestr(root + rel, data))
            os.chmod(tmp, file_mode())
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise storage_error(exc, "write", path) from None
        return path
    if path.exists() and any(path.iterdir()):
        if not (path / "meta" / "trials" / "tiers.npy").is_file():
            raise ConfigError(f"{path} exists and is not a FileTree folder; refusing to replace it")
        if not overwrite:
            raise ConfigError(f"{path} exists; pass overwrite=True to replace it")
    work = partial_dir(path)
    try:
        if work.exists():
            shutil.rmtree(work)
    except OSError as exc:
        raise storage_error(exc, "clear", work) from None

    def put(rel: str, data: bytes) -> None:
        file = work / rel
        make_dirs(file.parent)
        try:
            file.write_bytes(data)
        except OSError as exc:
            raise storage_error(exc, "write", file) from None

    try:
        _write_entries(ds, put)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return commit_folder(work, path, overwrite=True)


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _write_entries(ds: NeuralDataset, put) -> None:
    images = ds.trial_stimuli()  # (n, C, H, W)
    fields = {"images": images, "responses": ds.responses.astype(np.float64)}
    if ds.behavior is not None:
        fields["behavior"] = ds.behavior
    if ds.pupil_center is not None:
        fields["pupil_center"] = ds.pupil_center
    for field, arr in fields.items():
        for i in range(ds.n_trials):
            put(f"{TRIAL_FIELDS[field]}/{i}.npy", _npy(np.ascontiguousarray(arr[i])))
        for kind, rows in (("all", slice(None)), ("stimulus_frame", slice(None))):
            a = np.asarray(arr[rows], dtype=np.float64)
            axes = (0, 2, 3) if a.ndim == 4 else 0
            for stat, fn in (("mean", np.mean), ("std", np.std), ("min", np.min), ("max", np.max), ("median", np.median)):
                put(f"meta/statistics/{field}/{kind}/{stat}.npy", _npy(np.asarray(fn(a, axis=axes))))
    put("meta/trials/tiers.npy", _npy(ds.tiers.astype("<U10")))
    put("meta/trials/frame_image_id.npy", _npy(ds.image_ids.astype(np.int64)))
    trial_ids = np.asarray(ds.trial_ids)
    put("meta/trials/trial_idx.npy", _npy(trial_ids.astype(np.int64) if trial_ids.dtype.kind in "iuf" else trial_ids.astype(str)))
    put("meta/neurons/unit_ids.npy", _npy(np.asarray(ds.unit_ids, dtype=np.int64)))
    positions = ds.cortical_positions if ds.cortical_positions is not None else np.zeros((ds.n_neurons, 3))
    put("meta/neurons/cell_motor_coordinates.npy", _npy(np.asarray(positions, dtype=np.float64)))
    for key in ("area", "layer"):
        put(f"meta/neurons/{key}.npy", _npy(np.asarray(ds.neuron_meta.get(key, np.full(ds.n_neurons, "V1" if key == "area" else "L2/3"))).astype("<U8")))
    config = {"inputs": "images", "targets": "responses", "neuroaikit": {"name": ds.name, **_jsonable_info(ds.info)}}
    put("config.json", json.dumps(config, indent=2).encode())


#: ``info`` arrays with more elements than this stay out of ``config.json``, which every load
#: reads whole: a simulator's true rates (trials x neurons) made it gigabytes of JSON
MAX_INFO_ELEMENTS = 100_000


def _jsonable_info(info: dict) -> dict:
    """The entries of ``info`` that JSON can hold and that are small (large arrays are left out, logged)."""
    from ..io import to_jsonable

    kept = {}
    for key, value in info.items():
        if isinstance(value, np.ndarray) and value.size > MAX_INFO_ELEMENTS:
            log.info("info[%r] (%d values) is not written to config.json", key, value.size)
            continue
        try:
            kept[key] = to_jsonable(value)
            json.dumps(kept[key])
        except (TypeError, ValueError):
            kept.pop(key, None)
    return kept
