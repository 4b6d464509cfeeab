"""Baselines every twin must beat.

- :class:`PixelRidge`: ridge regression from down-sampled pixels (Sensorium's floor:
  18x32 pixels, lambda 1e4 on 36x64 data); ``alpha=None`` picks lambda by
  leave-one-out cross-validation on the train tier among ``alphas``.
- The LN model is the twin with a linear core: ``fit_twin(ds, TwinFitConfig(core="linear"))``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .dataset import NeuralDataset, row_blocks


def downsample(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(n, C, H, W) or (n, H, W) -> (n, C*h*w) by area averaging to ``size`` = (h, w)."""
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if x.dim() == 3:
        x = x.unsqueeze(1)
    return F.adaptive_avg_pool2d(x, size).reshape(len(x), -1).numpy()


class PixelRidge:
    """Ridge regression on down-sampled pixels, one output per neuron.

    Arguments: size (None: half the image size, i.e. 18x32 for Sensorium 36x64), alpha (None: chosen by efficient
    leave-one-out CV over ``alphas``), alphas (10^0 .. 10^6).
    Fitted: ``alpha_``, ``coef_`` (n_pixels, n_neurons), ``intercept_``, ``pixel_mean_``, ``pixel_std_``.

    Example::

        ridge = PixelRidge().fit(ds)          # train tier
        pred = ridge.predict_tier(ds, "test")
    """

    def __init__(self, size: tuple[int, int] | None = None, alpha: float | None = None, alphas=tuple(10.0 ** np.arange(0, 7))):
        self.size = size
        self.alpha = alpha
        self.alphas = alphas

    def _features(self, images: np.ndarray) -> np.ndarray:
        size = self.size_
        x = downsample(images, size)
        return (x - self.pixel_mean_) / self.pixel_std_

    def fit(self, ds: NeuralDataset, tier: str = "train") -> "PixelRidge":
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

        def centred_blocks():
            for block in row_blocks(ds.responses, np.arange(len(rows))):
                yield block, ds.responses[rows[block]].astype(np.float64) - self.intercept_

        u, s, vt = np.linalg.svd(x.astype(np.float64), full_matrices=False)
        uty = sum(u[block].T @ yc for block, yc in centred_blocks())
        if self.alpha is None:
            best = None
            for a in self.alphas:
                d = s**2 / (s**2 + a)
                hat_diag = (u**2 * d).sum(1)
                squares = sum((((yc - u[block] @ (d[:, None] * uty)) / (1 - hat_diag[block])[:, None]) ** 2).sum()
                              for block, yc in centred_blocks())
                loo = squares / (len(rows) * ds.n_neurons)
                if best is None or loo < best[0]:
                    best = (loo, a)
            if best is None:
                raise ValueError("alphas is empty: there is no ridge penalty to choose")
            self.alpha_ = float(best[1])
        else:
            self.alpha_ = float(self.alpha)
        self.coef_ = (vt.T * (s / (s**2 + self.alpha_))) @ uty
        return self

    def predict(self, images: np.ndarray) -> np.ndarray:
        return (self._features(images) @ self.coef_ + self.intercept_).astype(np.float32)

    def predict_tier(self, ds: NeuralDataset, tier: str | None = None) -> np.ndarray:
        return self.predict(ds.trial_stimuli(tier))
