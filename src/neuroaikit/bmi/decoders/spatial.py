"""Spatial-filter and Riemannian decoders, built from MNE's CSP and pyriemann.

Every pipeline is a scikit-learn :class:`~sklearn.pipeline.Pipeline` of the peer libraries'
own estimators (so "our" CSP + LDA *is* MNE's CSP followed by scikit-learn's LDA); the one
step added here is :class:`FilterBankCSP` (Ang et al. 2008): CSP in several frequency bands,
log-variance features concatenated.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin

from .._deps import require
from .ssvep import band_operator

FBCSP_BANDS = ((4, 8), (8, 12), (12, 16), (16, 20), (20, 24), (24, 28), (28, 32), (32, 36), (36, 40))


class FilterBankCSP(TransformerMixin, BaseEstimator):
    """CSP per band (zero-phase 4th-order Butterworth, as a fixed linear operator on the
    epoch), log-variance features of every band side by side.

    Parameters
    ----------
    sfreq : float
        Sampling rate of the epochs.
    bands : sequence of (low, high)
        Frequency bands in Hz (default: 4-40 Hz in 4-Hz steps, as Ang et al.).
    n_components : int
        CSP filters per band.
    """

    def __init__(self, sfreq: float = 160.0, bands: Sequence[Sequence[float]] = FBCSP_BANDS, n_components: int = 4):
        self.sfreq = sfreq
        self.bands = bands
        self.n_components = n_components

    def fit(self, X, y):
        mne = require("mne")
        X = np.asarray(X, dtype=np.float64)
        usable = [(lo, hi) for lo, hi in self.bands if hi < self.sfreq / 2]
        self.operators_ = [band_operator(lo, hi, self.sfreq, X.shape[-1]) for lo, hi in usable]
        self.bands_ = usable
        self.csps_ = [mne.decoding.CSP(n_components=self.n_components, log=True).fit(X @ op, y)
                      for op in self.operators_]
        return self

    def transform(self, X):
        X = np.asarray(X, dtype=np.float64)
        return np.concatenate([csp.transform(X @ op) for csp, op in zip(self.csps_, self.operators_)], axis=1)

    def torch_transform(self, x: torch.Tensor) -> torch.Tensor:
        """The same features, differentiable in ``x``."""
        parts = []
        for csp, op in zip(self.csps_, self.operators_):
            w = torch.as_tensor(csp.filters_[: csp.n_components], dtype=x.dtype)
            sub = x @ torch.as_tensor(op, dtype=x.dtype)
            parts.append(torch.log(((w @ sub) ** 2).mean(-1)))
        return torch.cat(parts, 1)


def csp_lda(n_components: int = 6):
    """MNE's CSP (log band power of ``n_components`` filters) + LDA."""
    mne = require("mne")
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.pipeline import make_pipeline

    return make_pipeline(mne.decoding.CSP(n_components=n_components, log=True), LinearDiscriminantAnalysis())


def fbcsp_lda(sfreq: float, n_components: int = 4):
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.pipeline import make_pipeline

    return make_pipeline(FilterBankCSP(sfreq=sfreq, n_components=n_components),
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
