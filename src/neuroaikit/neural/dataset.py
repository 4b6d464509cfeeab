"""One type for static-image neural recordings: :class:`NeuralDataset`.

Every loader (Sensorium FileTree folder or zip, NWB, the Antolik and Allen ``.npz``
files, the synthetic cortex) returns this type, and every model, metric and in-silico
experiment reads it.

Layout
------
- ``stimuli`` (n_stimuli, H, W) or (n_stimuli, C, H, W) float32: each distinct image once
  (colour given channels-last, (n, H, W, C) with 1-4 channels, is moved channels-first);
- ``stimulus_index`` (n_trials,) int: row of ``stimuli`` shown on each trial;
- ``image_ids`` (n_trials,) int: the image id of each trial, repeats share an id
  (Sensorium ``frame_image_id``);
- ``responses`` (n_trials, n_neurons) float32;
- ``tiers`` (n_trials,) str: ``train`` / ``validation`` / ``test`` / ``final_test``;
- ``behavior`` (n_trials, 3) and ``pupil_center`` (n_trials, 2), optional;
- ``unit_ids`` (n_neurons,) and ``cortical_positions`` (n_neurons, 3), optional positions.

``stimuli`` and ``responses`` are arrays in memory or memory-mapped from disk
(``load_filetree(..., memory_map=True)``); the data set's own statistics read them in blocks.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import DataError

TIERS = ("train", "validation", "test", "final_test")
#: what a loader does with trials whose responses hold NaN/inf (see :func:`with_nan_policy`)
NAN_POLICIES = ("raise", "drop")
#: the :class:`NeuralDataset` fields with one entry per trial
TRIAL_FIELDS = ("responses", "image_ids", "tiers", "stimulus_index", "behavior", "pupil_center", "trial_ids")

log = logging.getLogger(__name__)


@dataclass
class NeuralDataset:
    """Responses of a neuron population to static images, trial by trial.

    Example::

        from neuroaikit.neural import load_antolik
        ds = load_antolik("/work/shared/data/neural/antolik2016_mouse_v1.npz", region=1)
        ds.repeats("test").shape        # (50 images, 10 repeats, 103 neurons)
        ds.trial_average("test").shape  # (50, 103)
    """

    stimuli: np.ndarray
    responses: np.ndarray
    image_ids: np.ndarray
    tiers: np.ndarray
    stimulus_index: np.ndarray | None = None
    behavior: np.ndarray | None = None
    pupil_center: np.ndarray | None = None
    unit_ids: np.ndarray | None = None
    cortical_positions: np.ndarray | None = None
    trial_ids: np.ndarray | None = None
    name: str = "dataset"
    response_kind: str = "responses"
    neuron_meta: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = self.name
        self.stimuli = channels_first(np.asarray(self.stimuli, dtype=np.float32), where)
        self.responses = np.asarray(self.responses, dtype=np.float32)
        if self.stimuli.ndim not in (3, 4):
            raise DataError(f"{where}: stimuli must be (n, H, W) or (n, C, H, W), got shape {self.stimuli.shape}")
        if self.responses.ndim != 2:
            raise DataError(f"{where}: responses must be (trials, neurons), got shape {self.responses.shape}")
        n_trials, n_neurons = self.responses.shape
        if n_trials == 0 or n_neurons == 0:
            raise DataError(f"{where}: no trials or no neurons (responses shape {self.responses.shape})")
        self.image_ids = _image_id_codes(_vector(self.image_ids, n_trials, "image_ids", where), where)
        self.tiers = _vector(self.tiers, n_trials, "tiers", where).astype(str).astype("<U16")
        unknown = sorted(set(np.unique(self.tiers)) - set(TIERS))
        if unknown:
            raise DataError(f"{where}: unknown tier(s) {unknown}; expected {list(TIERS)}")
        if self.stimulus_index is None:
            if len(self.stimuli) != n_trials:
                raise DataError(
                    f"{where}: {len(self.stimuli)} stimuli for {n_trials} trials and no stimulus_index"
                )
            self.stimulus_index = np.arange(n_trials)
        index = _vector(self.stimulus_index, n_trials, "stimulus_index", where)
        if index.dtype.kind == "f" and not bool(np.all(np.isfinite(index) & (index == np.round(index)))):
            raise DataError(f"{where}: stimulus_index holds values that are not whole numbers "
                            f"(e.g. {float(index[~(np.isfinite(index) & (index == np.round(index)))][0]):g})")
        self.stimulus_index = index.astype(np.int64)
        if self.stimulus_index.min() < 0 or self.stimulus_index.max() >= len(self.stimuli):
            raise DataError(f"{where}: stimulus_index points outside the {len(self.stimuli)} stimuli")
        for attr in ("behavior", "pupil_center"):
            value = getattr(self, attr)
            if value is not None:
                setattr(self, attr, _impute_columns(np.asarray(value, dtype=np.float32).reshape(n_trials, -1),
                                                    f"{where}: {attr}", self.tiers == "train"))
        if self.unit_ids is None:  # positions stand in: info says so, so that they are not matched as ids
            self.info = {**self.info, "unit_ids_filled": True}
        self.unit_ids = (
            np.arange(n_neurons) if self.unit_ids is None else _vector(self.unit_ids, n_neurons, "unit_ids", where)
        )
        if self.cortical_positions is not None:
            pos = np.asarray(self.cortical_positions, dtype=np.float32)
            if pos.shape[0] != n_neurons or pos.ndim != 2:
                raise DataError(f"{where}: cortical_positions must be ({n_neurons}, 3), got {pos.shape}")
            self.cortical_positions = pos
        self.trial_ids = np.arange(n_trials) if self.trial_ids is None else _vector(self.trial_ids, n_trials, "trial_ids", where)
        bad = sum(int((~np.isfinite(self.responses[rows])).any(1).sum()) for rows in row_blocks(self.responses))
        if bad:
            raise DataError(f"{where}: responses hold NaN/inf in {bad} trial(s)")
        flat = self.stimuli.reshape(len(self.stimuli), -1)
        bad = sum(int((~np.isfinite(flat[rows])).any(1).sum()) for rows in row_blocks(flat))
        if bad:  # a twin trained on them learns NaN and scores nothing
            raise DataError(f"{where}: stimuli hold NaN/inf pixels in {bad} image(s)")

    # -- shapes ---------------------------------------------------------------
    @property
    def n_trials(self) -> int:
        return self.responses.shape[0]

    @property
    def n_neurons(self) -> int:
        return self.responses.shape[1]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one stimulus."""
        s = self.stimuli.shape
        return (1, s[1], s[2]) if self.stimuli.ndim == 3 else (s[1], s[2], s[3])

    @property
    def tier_names(self) -> list[str]:
        present = set(np.unique(self.tiers))
        return [t for t in TIERS if t in present]

    def tier_mask(self, tier: str) -> np.ndarray:
        if tier not in TIERS:
            raise DataError(f"unknown tier {tier!r}; expected one of {list(TIERS)}")
        return self.tiers == tier

    def trial_stimuli(self, tier: str | None = None) -> np.ndarray:
        """Stimulus of every trial (of ``tier``), (trials, C, H, W) float32."""
        assert self.stimulus_index is not None  # __post_init__ fills it
        idx = self.stimulus_index if tier is None else self.stimulus_index[self.tier_mask(tier)]
        images = self.stimuli[idx]
        return images[:, None] if images.ndim == 3 else images

    def subset(self, tier: str | np.ndarray) -> "NeuralDataset":
        """The trials of one tier (or of a boolean / index mask), same neurons."""
        mask = self.tier_mask(tier) if isinstance(tier, str) else np.asarray(tier)
        if mask.dtype == bool and not mask.any() or mask.size == 0:
            raise DataError(f"{self.name}: tier {tier if isinstance(tier, str) else 'selection'} is empty")
        pick = lambda a: None if a is None else a[mask]  # noqa: E731
        assert self.stimulus_index is not None and self.trial_ids is not None  # __post_init__ fills them
        return replace(
            self,
            responses=self.responses[mask],
            image_ids=self.image_ids[mask],
            tiers=self.tiers[mask],
            stimulus_index=self.stimulus_index[mask],
            behavior=pick(self.behavior),
            pupil_center=pick(self.pupil_center),
            trial_ids=self.trial_ids[mask],
        )

    def resized(self, height: int, width: int) -> "NeuralDataset":
        """The same recording with every stimulus resampled to ``height`` x ``width`` pixels.

        A shrink averages the source pixels each output pixel covers (area averaging: exact
        4 x 4 binning for Sensorium 2022's 144x256 files -> 36x64, the 0.25 scale its own loaders
        apply); otherwise the images are interpolated bilinearly, antialiased along a side that
        shrinks. Pixel positions in ``info["rf_centers"]``
        (x, y) move with the images, and ``info["resized_from"]`` records the original (H, W).
        The stimuli are resampled in blocks, so memory-mapped images are never read whole.
        """
        import torch
        import torch.nn.functional as F

        if int(height) < 1 or int(width) < 1:
            raise DataError(f"{self.name}: cannot resize images to {height}x{width}")
        size = (int(height), int(width))
        _, h0, w0 = self.image_shape
        if size == (h0, w0):
            return self
        mode = "area" if size[0] <= h0 and size[1] <= w0 else "bilinear"
        kwargs = {} if mode == "area" else {"align_corners": False, "antialias": True}
        out = np.empty((len(self.stimuli),) + self.stimuli.shape[1:-2] + size, dtype=np.float32)
        for rows in row_blocks(self.stimuli):
            block = torch.from_numpy(np.ascontiguousarray(self.stimuli[rows], dtype=np.float32))
            flat = block.reshape(-1, 1, h0, w0)
            out[rows] = F.interpolate(flat, size=size, mode=mode, **kwargs).reshape(block.shape[:-2] + size).numpy()
        info = dict(self.info)
        info["resized_from"] = list(self.info.get("resized_from", (h0, w0)))
        if "rf_centers" in info:
            info["rf_centers"] = rescale_points(np.asarray(info["rf_centers"]), (h0, w0), size)
        return replace(self, stimuli=out, info=info)

    def select_neurons(self, index: np.ndarray) -> "NeuralDataset":
        """The neurons ``index`` (a subset, or all of them in another order), with everything
        kept per neuron: ids, positions, ``neuron_meta`` and the simulator's true ``rf_centers``
        (neurons, 2) and ``rates`` (trials, neurons) in ``info``."""
        index = np.asarray(index)
        assert self.unit_ids is not None  # __post_init__ fills it
        info = dict(self.info)
        if "rf_centers" in info:
            info["rf_centers"] = np.asarray(info["rf_centers"])[index]
        if "rates" in info:
            info["rates"] = np.asarray(info["rates"])[:, index]
        return replace(
            self,
            responses=self.responses[:, index],
            unit_ids=self.unit_ids[index],
            cortical_positions=None if self.cortical_positions is None else self.cortical_positions[index],
            neuron_meta={k: np.asarray(v)[index] for k, v in self.neuron_meta.items()},
            info=info,
        )

    # -- repeats --------------------------------------------------------------
    def repeat_image_ids(self, tier: str = "test") -> np.ndarray:
        """Sorted distinct image ids of ``tier``: the row order of :meth:`repeats`."""
        ids = self.image_ids[self.tier_mask(tier)]
        if ids.size == 0:
            raise DataError(f"{self.name}: tier {tier!r} is empty")
        return np.unique(ids)

    def repeats(self, tier: str = "test") -> np.ndarray:
        """Responses grouped by image: (n_images, max_repeats, n_neurons), NaN-padded
        where images have fewer repeats; rows follow :meth:`repeat_image_ids`."""
        mask = self.tier_mask(tier)
        if not mask.any():
            raise DataError(f"{self.name}: tier {tier!r} is empty")
        return group_repeats(self.responses[mask], self.image_ids[mask])

    def trial_average(self, tier: str = "test") -> np.ndarray:
        """Mean response over the repeats of each image, (n_images, n_neurons)."""
        rep = self.repeats(tier)
        with np.errstate(invalid="ignore"):
            return np.nanmean(rep, axis=1).astype(np.float32)

    def average_stimuli(self, tier: str = "test") -> np.ndarray:
        """The stimulus of each row of :meth:`trial_average`, (n_images, C, H, W)."""
        mask = self.tier_mask(tier)
        ids, first = np.unique(self.image_ids[mask], return_index=True)
        assert self.stimulus_index is not None  # __post_init__ fills it
        images = self.stimuli[self.stimulus_index[mask][first]]
        return images[:, None] if images.ndim == 3 else images

    def response_std(self, tier: str = "train") -> np.ndarray:
        """Per-neuron std over ``tier`` (population std, ddof 0): Sensorium divides responses by
        the train-tier std. Falls back to all trials when the tier is absent; zeros become 1."""
        std = self.response_moments(tier)[1]
        return np.where(std > 0, std, 1.0).astype(np.float32)

    def response_moments(self, tier: str = "train") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-neuron mean, std (ddof 0) and minimum over ``tier`` (all trials when the tier is
        absent), float64. Read in blocks of trials: a memory-mapped recording is never copied whole."""
        mask = self.tier_mask(tier)
        rows = np.flatnonzero(mask) if mask.any() else np.arange(self.n_trials)
        total = np.zeros(self.n_neurons)
        lowest = np.full(self.n_neurons, np.inf)
        for block in row_blocks(self.responses, rows):
            values = self.responses[block].astype(np.float64)
            total += values.sum(0)
            lowest = np.minimum(lowest, values.min(0))
        mean = total / len(rows)
        squares = np.zeros(self.n_neurons)
        for block in row_blocks(self.responses, rows):  # a second pass: no cancellation in E[x^2] - E[x]^2
            squares += ((self.responses[block] - mean) ** 2).sum(0)
        std = np.sqrt(squares / len(rows))
        return mean, std, lowest

    def summary(self) -> dict:
        counts = {t: int((self.tiers == t).sum()) for t in self.tier_names}
        return {
            "name": self.name,
            "trials": self.n_trials,
            "neurons": self.n_neurons,
            "stimuli": len(self.stimuli),
            "image_shape": list(self.image_shape),
            "tiers": counts,
            "behavior": self.behavior is not None,
            "pupil_center": self.pupil_center is not None,
            "cortical_positions": self.cortical_positions is not None,
            "response_kind": self.response_kind,
        }

    def __repr__(self) -> str:
        s = self.summary()
        return f"NeuralDataset({s['name']!r}, trials={s['trials']}, neurons={s['neurons']}, image={s['image_shape']}, tiers={s['tiers']})"


#: bytes of an array read at once by the block-wise statistics and checks
BLOCK_BYTES = 64 * 2**20


def row_blocks(array: np.ndarray, rows: np.ndarray | None = None):
    """Index blocks of ``array``'s rows (all of them, or ``rows``) of about :data:`BLOCK_BYTES`
    each: slices for all rows, index arrays for ``rows``. Statistics over a recording memory-mapped
    from disk read it block by block instead of copying it."""
    row_bytes = max(1, int(np.prod(array.shape[1:])) * array.itemsize)
    step = max(1, BLOCK_BYTES // row_bytes)
    n = len(array) if rows is None else len(rows)
    for start in range(0, n, step):
        yield slice(start, min(start + step, n)) if rows is None else rows[start : start + step]


#: what a response window must be (the loaders' ``window`` settings)
WINDOW_DESCRIPTION = "two numbers (start, stop) seconds after onset, stop > start"


def is_response_window(window) -> bool:
    """Whether ``window`` is two finite numbers (start, stop) with stop > start."""
    return (isinstance(window, (list, tuple)) and len(window) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in window)
            and window[1] > window[0])


def response_window_frames(times: np.ndarray, onsets: np.ndarray, window: tuple[float, float],
                           where: str, nan_policy: str = "raise") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The frames ``[lo, hi)`` of ``times`` (seconds, ascending) inside ``[onset + window[0],
    onset + window[1])`` for each onset, for :func:`window_means`, and which windows the
    recording cuts: they begin before its first frame or end past its last frame's end.

    A cut window (a stimulus shown as the imaging began or stopped) is a one-line error naming
    ``where`` unless ``nan_policy`` is ``"drop"``: then its frames are those the recording has, and
    the caller leaves the trial out as it leaves out one with a dropped frame. A window wholly
    outside the recording (a log of another session, another clock) or holding no frame is an
    error either way."""
    begin, end = onsets + window[0], onsets + window[1]
    step = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    last = times[-1] + step
    cut = (begin < times[0]) | (end > last)
    beyond = (end <= times[0]) | (begin >= last)
    if beyond.any() or (cut.any() and nan_policy != "drop"):
        wrong = beyond if beyond.any() else cut
        first = int(np.flatnonzero(wrong)[0])
        remedy = "" if beyond.any() else \
            "; leave those trials out with --drop-nan-trials (twin fit, twin evaluate, align) or nan_policy='drop'"
        raise DataError(f"{where}: {int(wrong.sum())} stimulus onset(s) (first at {onsets[first]:.3f} s) put the "
                        f"response window {list(window)} s {'outside' if beyond.any() else 'partly outside'} the "
                        f"recording ({times[0]:.3f}-{times[-1]:.3f} s){remedy}")
    lo, hi = np.searchsorted(times, begin), np.searchsorted(times, end)
    empty = (hi <= lo) & ~cut  # a cut window may hold no frame at all: its trial is left out anyway
    if empty.any():
        raise DataError(f"{where}: {int(empty.sum())} trial(s) have no frame in their response window "
                        f"{list(window)} s")
    # an empty cut window gets the last frame to average, a mean window_means then sets to NaN
    hollow = cut & (hi <= lo)
    lo[hollow] = np.minimum(lo[hollow], len(times) - 1)
    hi[hollow] = lo[hollow] + 1
    return lo, hi, cut


def window_means(frames: np.ndarray, start: np.ndarray, stop: np.ndarray, cut: np.ndarray | None = None) -> np.ndarray:
    """Mean of ``frames`` (n_frames, units) over the frames ``[start, stop)`` of each window,
    (windows, units) float32. A unit's NaN/inf frame makes that unit's mean NaN in the windows
    holding that frame only, and a window the recording ``cut`` (:func:`response_window_frames`)
    is NaN, so :func:`with_nan_policy` can leave out just those trials."""
    frames = np.asarray(frames)
    bad = ~np.isfinite(frames)
    any_bad = bool(bad.any())
    clean = np.where(bad, 0.0, frames) if any_bad else frames
    csum = np.concatenate([np.zeros((1, frames.shape[1])), np.cumsum(clean, 0, dtype=np.float64)])
    means = (csum[stop] - csum[start]) / (stop - start)[:, None]
    if any_bad:
        counts = np.concatenate([np.zeros((1, frames.shape[1]), np.int32), np.cumsum(bad, 0, dtype=np.int32)])
        means[counts[stop] - counts[start] > 0] = np.nan
    if cut is not None:
        means[cut] = np.nan
    return means.astype(np.float32)


#: the share of the images held out as the test tier when every image of a recording repeats
HELD_OUT_IMAGE_FRACTION = 0.2


def tiers_from_repeats(image_ids: np.ndarray, min_repeats: int, where: str) -> np.ndarray:
    """Tiers for trials that come without them: the images shown at least ``min_repeats`` times
    are the test tier (the repeats the oracle and FEV need), the rest train. When that would leave
    less than :data:`HELD_OUT_IMAGE_FRACTION` of the trials to train on (every image repeats, as
    in the Allen Brain Observatory's natural scenes, 50 repeats each, or Visual Behavior's 8
    images, or all but a few), that fraction of the
    images are held out as test with all their repeats and the others train, so the test images
    stay unseen in training; which ones depends on each image id alone (a fixed random key per
    id, the smallest keys held out), so sessions sharing images mostly agree. Fewer than 4
    images cannot be split (warned)."""
    image_ids = np.asarray(image_ids)
    ids, counts = np.unique(image_ids, return_counts=True)
    repeated = ids[counts >= min_repeats]
    in_repeated = np.isin(image_ids, repeated)
    if len(repeated) < len(ids) and in_repeated.mean() <= 1 - HELD_OUT_IMAGE_FRACTION:
        log.debug("%s: no tier column; %d trials of images shown %d+ times -> test, the rest train",
                 where, int(in_repeated.sum()), min_repeats)
        return np.where(in_repeated, "test", "train")
    if len(ids) < 4:
        log.warning("%s: every image is shown %d+ times and there are only %d distinct images, too few to hold "
                    "some out: every trial is test; give the trials a tier column to train", where, min_repeats, len(ids))
        return np.full(len(image_ids), "test")
    n_test = min(max(1, int(round(len(ids) * HELD_OUT_IMAGE_FRACTION))), len(ids) - 3)
    # a key per id that no other id's presence changes (crc32, not hash(): str hashes vary per process)
    keys = [np.random.default_rng([0, zlib.crc32(str(i).encode())]).random() for i in ids]
    test_ids = ids[np.argsort(keys, kind="stable")[:n_test]]
    log.info("%s: no tier column and (nearly) every image repeats; %d of %d images (all their trials) held out as "
             "test, the rest train", where, n_test, len(ids))
    return np.where(np.isin(image_ids, test_ids), "test", "train")


def rescale_points(points: np.ndarray, shape: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """Pixel positions (x, y, ...) on an image of ``shape`` (H, W) moved to the same places on the
    image resampled to ``size``: pixel centres at integers, edges at -0.5 and W - 0.5."""
    points = np.array(points, dtype=np.float64)
    points[:, 0] = (points[:, 0] + 0.5) * size[1] / shape[1] - 0.5
    points[:, 1] = (points[:, 1] + 0.5) * size[0] / shape[0] - 0.5
    return points


def group_repeats(responses: np.ndarray, image_ids: np.ndarray) -> np.ndarray:
    """(trials, neurons) + image id per trial -> (n_images, max_repeats, neurons), NaN-padded,
    images in sorted id order, repeats in trial order."""
    responses = np.asarray(responses, dtype=np.float64)
    ids, inverse, counts = np.unique(image_ids, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    slot = np.empty(len(inverse), dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot[order] = np.arange(len(inverse)) - np.repeat(starts, counts)
    out = np.full((len(ids), counts.max(), responses.shape[1]), np.nan)
    out[inverse, slot] = responses
    return out


#: channel counts a stimulus may have (grey, UV + green as mice see, RGB, RGBA)
CHANNEL_COUNTS = (1, 2, 3, 4)


def channels_first(images: np.ndarray, where: str) -> np.ndarray:
    """``images`` as (n, H, W) or (n, C, H, W): a stack saved channels-last (n, H, W, C) with C
    in :data:`CHANNEL_COUNTS`, as image libraries and NWB's ``RGBImage`` store colour, is moved to
    channels-first (logged); a stack that could be either, (n, C, H, C'), is kept as given."""
    if images.ndim == 4 and images.shape[-1] in CHANNEL_COUNTS and images.shape[1] not in CHANNEL_COUNTS:
        log.info("%s: images %s read as channels-last (n, H, W, C)", where, "x".join(map(str, images.shape)))
        return np.ascontiguousarray(np.moveaxis(images, -1, 1))
    return images


def numeric_npy(source: Any, where: Any = None) -> np.ndarray:
    """The plain numeric array of a ``.npy`` file (``source``: a path or an open binary file;
    ``where`` names it in errors, default ``source``), read without pickle.

    A file numpy cannot read that way is a one-line :class:`~neuroaikit.errors.DataError` naming it. numpy's own
    message for a file that is no ``.npy`` at all advises loading it with ``allow_pickle=``:
    wrong (the file is no pickle either) and against the rule that recordings never run code."""
    where = source if where is None else where
    try:
        array = np.load(source, allow_pickle=False)
    except (ValueError, EOFError):
        raise DataError(f"{where}: not a numeric .npy array (unreadable, or holds Python objects)") from None
    except OSError as exc:
        raise DataError(f"{where}: cannot be read ({exc})") from None
    if not isinstance(array, np.ndarray):  # numpy reads a zip as .npz whatever its name
        array.close()
        raise DataError(f"{where}: not a numeric .npy array (an .npz archive)")
    return array


def check_nan_policy(nan_policy: str) -> None:
    if nan_policy not in NAN_POLICIES:
        raise DataError(f"nan_policy must be 'raise' or 'drop', got {nan_policy!r}")


def with_nan_policy(nan_policy: str, where: str, **fields: Any) -> NeuralDataset:
    """A :class:`NeuralDataset` of ``fields`` (its keyword arguments) after the trials whose
    responses hold NaN/inf (a dropped frame, a lost ROI) are dealt with as ``nan_policy`` says:
    ``"raise"`` stops with a one-line error naming ``where`` and how to leave them out;
    ``"drop"`` leaves them out with a logged warning (``trial_ids`` keep the trials' original
    numbers, ``info["dropped_nan_trials"]`` counts them)."""
    check_nan_policy(nan_policy)
    responses = np.asarray(fields["responses"], dtype=np.float32)
    keep = np.isfinite(responses).all(1) if responses.ndim == 2 else np.ones(len(responses), bool)
    if keep.all():
        return NeuralDataset(**fields)
    bad = np.flatnonzero(~keep)
    if nan_policy == "raise":
        raise DataError(f"{where}: responses hold NaN/inf in {len(bad)} trial(s) (first: trial {bad[0]}); leave them "
                        "out with --drop-nan-trials (twin fit, twin evaluate, align) or nan_policy='drop'")
    if not keep.any():
        raise DataError(f"{where}: the responses of every trial hold NaN/inf")
    log.warning("%s: dropped %d trial(s) whose responses hold NaN/inf (first: trial %d)", where, len(bad), bad[0])
    if fields.get("trial_ids") is None:
        fields["trial_ids"] = np.arange(len(responses))
    for name in TRIAL_FIELDS:
        if fields.get(name) is not None:
            fields[name] = np.asarray(fields[name])[keep]
    fields["info"] = {**fields.get("info", {}), "dropped_nan_trials": int(len(bad))}
    return NeuralDataset(**fields)


def _impute_columns(values: np.ndarray, what: str, train: np.ndarray) -> np.ndarray:
    """``values`` (trials, columns) with NaN/inf entries (blinks, dropped eye-camera or wheel
    samples) replaced by their column's mean over the ``train`` trials (over all trials for a
    column with no finite train entry, 0 for one with no finite entry), logged."""
    bad = ~np.isfinite(values)
    if not bad.any():
        return values
    finite = np.where(bad, 0.0, values).astype(np.float64)
    # the held-out tiers' values must not leak into the train trials (nor the statistics taken from them)
    seen = ~bad & np.asarray(train, dtype=bool)[:, None]
    means = np.where(seen.any(0), (finite * seen).sum(0) / np.maximum(seen.sum(0), 1),
                     finite.sum(0) / np.maximum((~bad).sum(0), 1))
    log.warning("%s: replaced NaN/inf in %d trial(s) by the column's train-tier mean", what, int(bad.any(1).sum()))
    return np.where(bad, means[None, :], values).astype(np.float32)


def _image_id_codes(ids: np.ndarray, where: str) -> np.ndarray:
    """Image ids as integers: whole numbers as they are; labels (strings such as ``"im0119"``, which
    only say which trials repeat an image) as their rank among the distinct labels."""
    if ids.dtype.kind in "iub":
        return ids.astype(np.int64)
    if ids.dtype.kind == "f":
        whole = np.isfinite(ids) & (ids == np.round(ids))
        if not whole.all():
            first = int(np.flatnonzero(~whole)[0])
            raise DataError(f"{where}: image_ids must be whole numbers or labels; entry {first} is {ids[first]!r}")
        return ids.astype(np.int64)
    try:
        labels = ids.astype(str)
    except (TypeError, ValueError):
        raise DataError(f"{where}: image_ids must be whole numbers or labels, got dtype {ids.dtype}") from None
    return np.unique(labels, return_inverse=True)[1].reshape(-1).astype(np.int64)


def _vector(value, n: int, what: str, where: str) -> np.ndarray:
    arr = np.asarray(value).reshape(-1) if np.ndim(value) else np.asarray([value])
    if arr.shape[0] != n:
        raise DataError(f"{where}: {what} has {arr.shape[0]} entries, expected {n}")
    return arr
