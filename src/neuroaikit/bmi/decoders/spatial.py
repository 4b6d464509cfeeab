"""Spatial-filter and Riemannian decoders, built from MNE's CSP and pyriemann.

Every pipeline is a scikit-learn :class:`~sklearn.pipeline.Pipeline` of the peer libraries'
own estimators (so "our" CSP + LDA *is* MNE's CSP followed by scikit-learn's LDA); the one
step added here is :class:`FilterBankCSP` (Ang et al. 2008): CSP in several frequency bands,
log-variance features concatenated.
"""

from __future__ import annotations

from typing import ClassVar, Sequence

import numpy as np
import torch
from sklearn.base import TransformerMixin

from ...config import MAPPING, POSITIVE, POSITIVE_INT, Options
from ...errors import ConfigError
from .._deps import require
from .ssvep import BANDS, ValidatedEstimator, band_operator, check_fitted_shape, epochs_shape

FBCSP_BANDS = ((4, 8), (8, 12), (12, 16), (16, 20), (20, 24), (24, 28), (28, 32), (32, 36), (36, 40))


def csp_rank(X: np.ndarray, tol: float = 1e-7) -> str | None:
    """MNE's CSP ``rank`` for epochs ``X``: ``"full"`` when the channels are linearly
    independent, else ``None`` (MNE estimates the rank).

    With ``rank=None`` MNE estimates the rank on every fit from an SVD of all the data, ~90 %
    of a 64-channel CSP fit (3 s of 3.2 s on PhysioNet S001); on full-rank data the filters
    are the same either way (a test checks it). Average-referenced or ICA-cleaned data are
    rank-deficient and keep MNE's estimate. Band-pass filtering does not change the spatial rank.
    """
    X = np.asarray(X, dtype=np.float64)
    flat = X.transpose(1, 0, 2).reshape(X.shape[1], -1)
    flat = flat - flat.mean(1, keepdims=True)
    singular = np.linalg.svd(flat @ flat.T, compute_uv=False, hermitian=True)
    return "full" if singular[-1] > tol * singular[0] else None


class FilterBankCSP(TransformerMixin, ValidatedEstimator):
    """CSP per band (zero-phase 4th-order Butterworth, as a fixed linear operator on the
    epoch), log-variance features of every band side by side.

    Args:
        sfreq (float):
            Sampling rate of the epochs.
        bands (sequence of tuple):
            Frequency bands ``(low, high)`` in Hz (default: 4-40 Hz in 4-Hz steps, as Ang et al.). Bands that
            reach Nyquist (``sfreq / 2``) are left out (``bands_`` lists those used); ``fit``
            refuses a sampling rate that leaves none.
        n_components (int):
            CSP filters per band.
        rank (str, dict or None):
            MNE's CSP ``rank``: ``None``, ``"full"``, ``"info"`` or a dict (see :func:`csp_rank`).
    """

    _parameter_constraints: ClassVar[dict] = {"sfreq": [POSITIVE], "bands": [BANDS], "n_components": [POSITIVE_INT],
                                              "rank": [Options(("full", "info")), MAPPING, None]}

    def __init__(self, sfreq: float = 160.0, bands: Sequence[Sequence[float]] = FBCSP_BANDS, n_components: int = 4,
                 rank: str | None = None):
        self.sfreq = sfreq
        self.bands = bands
        self.n_components = n_components
        self.rank = rank

    def _validate_params(self) -> None:
        super()._validate_params()
        # bands reaching Nyquist are left out (a default bank serves any rate), but with none left there are no features
        if all(hi >= self.sfreq / 2 for _, hi in self.bands):
            raise ConfigError(f"FilterBankCSP: every band reaches Nyquist ({self.sfreq / 2:g} Hz at sfreq "
                              f"{self.sfreq:g} Hz); the lowest band ends at {min(hi for _, hi in self.bands):g} Hz")

    def fit(self, X, y):
        self._validate_params()
        mne = require("mne")
        X = np.asarray(X, dtype=np.float64)
        self.n_channels_, self.n_samples_ = epochs_shape(self, X)
        usable = [(lo, hi) for lo, hi in self.bands if hi < self.sfreq / 2]
        self.operators_ = [band_operator(lo, hi, self.sfreq, self.n_samples_) for lo, hi in usable]
        self.bands_ = usable
        self.csps_ = [mne.decoding.CSP(n_components=self.n_components, log=True, rank=self.rank).fit(X @ op, y)
                      for op in self.operators_]
        return self

    def transform(self, X):
        X = np.asarray(X, dtype=np.float64)
        check_fitted_shape(self, X)
        return np.concatenate([csp.transform(X @ op) for csp, op in zip(self.csps_, self.operators_)], axis=1)

    def torch_transform(self, x: torch.Tensor) -> torch.Tensor:
        """The same features, differentiable in ``x``."""
        check_fitted_shape(self, x)
        parts = []
        for csp, op in zip(self.csps_, self.operators_):
            w = torch.as_tensor(csp.filters_[: csp.n_components], dtype=x.dtype)
            sub = x @ torch.as_tensor(op, dtype=x.dtype)
            parts.append(torch.log(((w @ sub) ** 2).mean(-1)))
        return torch.cat(parts, 1)


def csp_lda(n_components: int = 6, rank: str | None = None):
    """MNE's CSP (log band power of ``n_components`` filters, ``rank`` as :func:`csp_rank`) + LDA."""
    mne = require("mne")
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.pipeline import make_pipeline

    return make_pipeline(mne.decoding.CSP(n_components=n_components, log=True, rank=rank),
                         LinearDiscriminantAnalysis())


def fbcsp_lda(sfreq: float, n_components: int = 4, bands: Sequence[Sequence[float]] = FBCSP_BANDS,
              rank: str | None = None):
    """:class:`FilterBankCSP` + shrinkage LDA (Ang et al. 2008)."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.pipeline import make_pipeline

    return make_pipeline(FilterBankCSP(sfreq=sfreq, bands=bands, n_components=n_components, rank=rank),
                         LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"))


def ts_lr(estimator: str = "oas", C: float = 1.0):
    """pyriemann covariances (``estimator``), tangent space at the Riemannian mean, logistic
    regression (MOABB's ``TS+LR``)."""
    require("pyriemann")
    from pyriemann.estimation import Covariances
    from pyriemann.tangentspace import TangentSpace
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(Covariances(estimator=estimator), TangentSpace(metric="riemann"),
                         LogisticRegression(C=C, max_iter=1000))


def mdm(estimator: str = "oas"):
    """pyriemann covariances + minimum distance to the Riemannian class means (MOABB's ``MDM``)."""
    require("pyriemann")
    from pyriemann.classification import MDM
    from pyriemann.estimation import Covariances
    from sklearn.pipeline import make_pipeline

    return make_pipeline(Covariances(estimator=estimator), MDM(metric="riemann"))


def xdawn_ts_lr(n_filters: int = 4):
    """xDAWN-filtered ERP covariances (pyriemann ``XdawnCovariances``) + tangent space + LR,
    the P300 pipeline MOABB calls ``XDAWNCov+TS``."""
    require("pyriemann")
    from pyriemann.estimation import XdawnCovariances
    from pyriemann.tangentspace import TangentSpace
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(XdawnCovariances(nfilter=n_filters, estimator="oas"), TangentSpace(metric="riemann"),
                         LogisticRegression(max_iter=1000))
