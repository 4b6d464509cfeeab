"""Baselines every twin must beat.

- :class:`PixelRidge`: ridge regression from down-sampled pixels (Sensorium's floor:
  18x32 pixels, lambda 1e4 on 36x64 data); ``alpha=None`` picks lambda by
  leave-one-image-out cross-validation on the train tier among ``alphas``.
- The LN model is the twin with a linear core: ``fit_twin(ds, TwinFitConfig(core="linear"))``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ..config import POSITIVE, DeclaredParameters, Satisfies, is_finite_number
from ..errors import DataError
from .dataset import BLOCK_BYTES, NeuralDataset, row_blocks


def downsample(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(n, C, H, W) or (n, H, W) -> (n, C*h*w) by area averaging to ``size`` = (h, w)."""
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if x.dim() == 3:
        x = x.unsqueeze(1)
    return F.adaptive_avg_pool2d(x, size).reshape(len(x), -1).numpy()


def _size(value: Any) -> bool:
    return len(value) == 2 and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1
                                   for v in value)


def _penalties(value: Any) -> bool:
    return len(value) > 0 and not isinstance(value, str) and all(is_finite_number(a) and a > 0 for a in value)


class PixelRidge(DeclaredParameters, BaseEstimator):
    """Ridge regression on down-sampled pixels, one output per neuron.

    Arguments: size (None: half the image size, i.e. 18x32 for Sensorium 36x64; larger than the image: the
    image size), alpha (> 0; None: chosen by efficient leave-one-image-out CV over ``alphas``: all repeats of an
    image left out together, leave-one-out when every image is shown once), alphas (penalties > 0; 10^0 .. 10^6).
    Fitted: ``size_``, ``alpha_``, ``coef_`` (n_pixels, n_neurons), ``intercept_``, ``pixel_mean_``, ``pixel_std_``.

    A scikit-learn estimator (``get_params``, ``set_params``, ``clone``): the constructor only stores the
    arguments, ``fit`` checks them (a bad one is a one-line :class:`~neuroaikit.errors.ConfigError` naming it),
    and ``predict`` before ``fit`` raises scikit-learn's ``NotFittedError``.

    Example::

        ridge = PixelRidge().fit(ds)          # train tier
        pred = ridge.predict_tier(ds, "test")
    """

    _parameter_constraints: ClassVar[dict] = {
        "size": [Satisfies(_size, "a pair of integers >= 1 (height, width)"), None],
        "alpha": [POSITIVE, None],
        "alphas": [Satisfies(_penalties, "a non-empty sequence of penalties > 0")],
    }

    def __init__(self, size: tuple[int, int] | None = None, alpha: float | None = None, alphas=tuple(10.0 ** np.arange(0, 7))):
        self.size = size
        self.alpha = alpha
        self.alphas = alphas

    def _features(self, images: np.ndarray) -> np.ndarray:
        size = self.size_
        x = downsample(images, size)
        return (x - self.pixel_mean_) / self.pixel_std_

    def fit(self, ds: NeuralDataset, tier: str = "train") -> "PixelRidge":
        self._validate_params()
        h, w = ds.image_shape[1:]
        size = self.size or (max(1, h // 2), max(1, w // 2))
        self.size_ = (min(size[0], h), min(size[1], w))
        rows = np.flatnonzero(ds.tier_mask(tier))
        assert ds.stimulus_index is not None  # NeuralDataset.__post_init__ fills it
        # images and responses are read in blocks of trials: a memory-mapped recording is never copied whole
        raw = np.concatenate([downsample(ds.stimuli[ds.stimulus_index[block]], self.size_)
                              for block in row_blocks(ds.stimuli, rows)])
        self.pixel_mean_ = raw.mean(0)
        self.pixel_std_ = raw.std() + 1e-8
        x = (raw - self.pixel_mean_) / self.pixel_std_
        self.intercept_ = ds.response_moments(tier)[0]

        def centred(block: np.ndarray) -> np.ndarray:
            return ds.responses[rows[block]].astype(np.float64) - self.intercept_

        u, s, vt = np.linalg.svd(x.astype(np.float64), full_matrices=False)
        uty = sum(u[block].T @ centred(block) for block in row_blocks(ds.responses, np.arange(len(rows))))
        if self.alpha is None:
            # a left-out trial whose image stays in the fit through its other repeats would favour too
            # small a penalty: the repeats of an image are left out together. The fit without them has its
            # own intercept and pixel means (1 / n in the hat matrix): with the means of all trials the
            # left-out image is a combination of the others, and a barely penalised fit predicts it
            groups = _image_groups(ds.image_ids[rows], ds.responses)
            best = None
            for a in self.alphas:
                d = s**2 / (s**2 + a)
                coef = d[:, None] * uty
                squares = 0.0
                for group in groups:  # (images, repeats) trial positions, every image shown as often
                    flat = group.reshape(-1)
                    resid = (centred(flat) - u[flat] @ coef).reshape(*group.shape, -1)
                    ug = u[group]
                    hat = (ug * d) @ ug.transpose(0, 2, 1) + 1 / len(rows)
                    # the residuals of a fit without the group (closed form: (I - H_gg)^-1 r_g)
                    left_out = (resid / (1 - hat) if group.shape[1] == 1
                                else np.linalg.solve(np.eye(group.shape[1]) - hat, resid))
                    squares += float((left_out**2).sum())
                cv = squares / (len(rows) * ds.n_neurons)
                if best is None or cv < best[0]:
                    best = (cv, a)
            assert best is not None  # _validate_params refuses an empty alphas
            self.alpha_ = float(best[1])
        else:
            self.alpha_ = float(self.alpha)
        self.coef_ = (vt.T * (s / (s**2 + self.alpha_))) @ uty
        return self

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Responses ``(n, neurons)`` to images ``(n, C, H, W)`` or ``(n, H, W)``, area-averaged to
        the fitted ``size_`` whatever their height and width; the channels must be those fitted."""
        check_is_fitted(self)
        shape = np.shape(images)
        channels = shape[1] if len(shape) == 4 else 1 if len(shape) == 3 else None
        fitted = self.pixel_mean_.size // (self.size_[0] * self.size_[1])
        if channels != fitted:
            raise DataError(f"PixelRidge was fitted on images of {fitted} channel(s), as (n, C, H, W) or (n, H, W); "
                            f"got shape {shape}")
        return (self._features(images) @ self.coef_ + self.intercept_).astype(np.float32)

    def predict_tier(self, ds: NeuralDataset, tier: str | None = None) -> np.ndarray:
        return self.predict(ds.trial_stimuli(tier))


def _image_groups(image_ids: np.ndarray, responses: np.ndarray) -> list[np.ndarray]:
    """The positions of the trials in ``image_ids`` as (images, repeats) arrays, one per repeat
    count, split so that each reads about :data:`BLOCK_BYTES` of ``responses``."""
    _, inverse, counts = np.unique(image_ids, return_inverse=True, return_counts=True)
    order = np.argsort(inverse.reshape(-1), kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    row_bytes = max(1, int(np.prod(responses.shape[1:])) * np.dtype(np.float64).itemsize)
    out = []
    for k in np.unique(counts):
        positions = order[starts[counts == k][:, None] + np.arange(k)]
        positions = positions[np.argsort(positions[:, 0], kind="stable")]  # read in trial order
        step = max(1, BLOCK_BYTES // (row_bytes * int(k)))
        out += [positions[i : i + step] for i in range(0, len(positions), step)]
    return out
