"""SSVEP decoders: CCA, filter-bank CCA and (ensemble) TRCA, scikit-learn compatible.

Scores are computed in torch (float64) by one function used both by ``predict`` and by the
differentiable twin that white-box attacks run on, so the two cannot disagree. Filters
inside a decoder (FBCCA's sub-bands) are zero-phase Butterworth filters applied as the
linear operator ``sosfiltfilt`` is on an epoch of fixed length (a T x T matrix), which keeps
them exact and differentiable.

A class without a stimulation frequency (the exoskeleton data's ``rest``) has no reference
signal; when there is one, CCA and FBCCA learn a linear discriminant on the vector of
correlations (so rest is predicted when no frequency stands out).
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence, cast

import numpy as np
import torch
from scipy.signal import butter, sosfiltfilt
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.utils.validation import check_is_fitted

from ...config import (NON_NEGATIVE, POSITIVE, POSITIVE_INT, DeclaredParameters, Interval, Satisfies, is_finite_number)
from ...errors import ConfigError, DataError
from ..epochs import _bands


def _t(x) -> torch.Tensor:
    """Epochs as float64, the precision of the references, filters and operators (a tensor keeps
    its graph, so scores stay differentiable in a float32 input)."""
    return x.to(torch.float64) if torch.is_tensor(x) else torch.as_tensor(np.asarray(x), dtype=torch.float64)


def band_operator(low: float, high: float, sfreq: float, n_samples: int, order: int = 4) -> np.ndarray:
    """The ``(T, T)`` matrix ``F`` with ``x @ F == sosfiltfilt(butter(order, [low, high]), x)``."""
    if high >= sfreq / 2:
        raise DataError(f"sub-band {low:g}-{high:g} Hz reaches Nyquist ({sfreq / 2:g} Hz)")
    sos = butter(order, [low, high], btype="bandpass", fs=sfreq, output="sos")
    return np.ascontiguousarray(sosfiltfilt(sos, np.eye(n_samples), axis=-1))


def reference_signals(frequency: float, n_harmonics: int, sfreq: float, n_samples: int) -> np.ndarray:
    """Sines and cosines at ``frequency`` and its harmonics, ``(2 * n_harmonics, T)``."""
    t = np.arange(n_samples) / sfreq
    rows = []
    for h in range(1, n_harmonics + 1):
        rows += [np.sin(2 * np.pi * h * frequency * t), np.cos(2 * np.pi * h * frequency * t)]
    return np.array(rows)


def canonical_correlation(x: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Largest canonical correlation between each trial ``x`` (B, C, T) and the orthonormal
    basis ``basis`` (T, r) of a centred reference; differentiable in ``x``."""
    xc = x - x.mean(-1, keepdim=True)
    q, _ = torch.linalg.qr(xc.transpose(-1, -2))
    return torch.linalg.svdvals(q.transpose(-1, -2) @ basis)[..., 0]


def _orthonormal(reference: np.ndarray) -> torch.Tensor:
    centred = reference - reference.mean(-1, keepdims=True)
    q, _ = np.linalg.qr(centred.T)
    return torch.as_tensor(q, dtype=torch.float64)


def _correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation over the last axis."""
    a = a - a.mean(-1, keepdim=True)
    b = b - b.mean(-1, keepdim=True)
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-12)


def _stimulation_frequencies(value: Any) -> bool:
    return not isinstance(value, str) and len(value) > 0 and all(
        f is None or (is_finite_number(f) and f > 0) for f in value)


FREQUENCIES = Satisfies(_stimulation_frequencies,
                        "a non-empty sequence of frequencies > 0 (None for a class without one)")
BANDS = Satisfies(_bands, "a non-empty list of (low, high) bands in Hz with 0 < low < high")


class ValidatedEstimator(DeclaredParameters, BaseEstimator):
    """A scikit-learn estimator whose parameters are declared in ``_parameter_constraints`` and
    checked by ``fit`` before anything is computed (:class:`~neuroaikit.config.DeclaredParameters`)."""


def epochs_shape(decoder: BaseEstimator, x) -> tuple[int, int]:
    """``(channels, samples)`` of epochs ``x`` (array or tensor); a one-line DataError unless
    ``x`` is ``(trials, channels, samples)``."""
    if len(x.shape) != 3:
        raise DataError(f"{type(decoder).__name__} needs epochs (trials, channels, samples), got shape {tuple(x.shape)}")
    return int(x.shape[1]), int(x.shape[2])


def check_fitted_shape(decoder: Any, x) -> None:
    """NotFittedError before ``fit``; a one-line DataError unless epochs ``x`` have the channels
    and samples ``fit`` saw (``n_channels_``, ``n_samples_``): filters, references and networks
    are fixed-size operators on the epoch, which would fail deep inside on other shapes."""
    check_is_fitted(decoder)
    channels, samples = epochs_shape(decoder, x)
    if (channels, samples) != (decoder.n_channels_, decoder.n_samples_):
        raise DataError(f"{type(decoder).__name__} was fitted on epochs of {decoder.n_channels_} channels x "
                        f"{decoder.n_samples_} samples, got {channels} channels x {samples} samples")


class LogitsClassifier(ClassifierMixin):
    """``decision_function`` and ``predict`` of a decoder with differentiable ``logits`` (the
    scores attacks run on), in scikit-learn's shapes: with two classes ``decision_function`` is
    ``(n,)``, the second class's logit minus the first's (what ROC-AUC scorers read), else
    ``(n, n_classes)``; ``predict`` is the class of the largest logit."""

    def _logits_array(self, X) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def decision_function(self, X):
        scores = self._logits_array(X)
        return scores[:, 1] - scores[:, 0] if scores.shape[1] == 2 else scores

    def predict(self, X):
        best = self._logits_array(X).argmax(1)  # first: it raises NotFittedError on an unfitted decoder
        return self.classes_[best]


class _SSVEPBase(LogitsClassifier, ValidatedEstimator):
    """What CCA, FBCCA and TRCA share: the class frequencies, the score-to-class rule."""

    def _setup(self, X, y):
        self._validate_params()
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y)
        self.n_channels_, self.n_samples_ = epochs_shape(self, X)
        self.classes_ = np.unique(y)
        freqs = list(self.frequencies)
        if len(freqs) == len(self.classes_):
            self.frequencies_ = freqs
        elif (np.issubdtype(self.classes_.dtype, np.integer) and self.classes_.min() == 0
              and self.classes_.max() < len(freqs)):
            # a training set without some class (a run with no rest trials): labels 0, 1, ... (the data
            # sets' class indices) index the frequencies; labels without 0 could count from 1, so they
            # are refused below rather than guessed
            self.frequencies_ = [freqs[int(c)] for c in self.classes_]
        else:
            raise ConfigError(f"{type(self).__name__}: {len(freqs)} frequencies for {len(self.classes_)} classes "
                              f"{self.classes_.tolist()}; give one per class, or labels 0..{len(freqs) - 1} (with 0 "
                              f"among them) that index them")
        self.stimulated_ = [i for i, f in enumerate(self.frequencies_) if f is not None]
        if not self.stimulated_:
            raise ConfigError(f"{type(self).__name__}: no class has a stimulation frequency")
        return X, y

    def _fit_readout(self, X, y):
        """LDA on the score vectors when a class has no frequency (rest), else argmax."""
        if len(self.stimulated_) == len(self.classes_):
            self.readout_ = None
            return self
        scores = self.scores(X).numpy()
        self.readout_ = LinearDiscriminantAnalysis().fit(scores, y)
        return self

    def scores(self, X) -> torch.Tensor:
        """Per-class scores ``(B, n_stimulated)`` of epochs ``X`` (array or tensor); differentiable."""
        x = _t(X)
        check_fitted_shape(self, x)
        return self._scores(x)

    def _scores(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores ``(B, n_classes)`` whose argmax is the prediction; differentiable."""
        s = self.scores(x)
        if self.readout_ is None:
            return s
        coef = torch.as_tensor(self.readout_.coef_, dtype=s.dtype)
        intercept = torch.as_tensor(self.readout_.intercept_, dtype=s.dtype)
        d = s @ coef.T + intercept
        return torch.cat([-d / 2, d / 2], 1) if d.shape[1] == 1 else d

    def _logits_array(self, X) -> np.ndarray:
        with torch.no_grad():
            return self.logits(_t(X)).numpy()


class CCA(_SSVEPBase):
    """Canonical correlation analysis (Lin et al. 2006): the class whose sine/cosine reference
    (``n_harmonics`` harmonics) has the largest canonical correlation with the trial.
    Training-free, except for the readout of classes without frequency.

    Args:
        frequencies (sequence of float or None):
            Stimulation frequency of each class, in the order of the sorted labels (integer labels
            0, 1, ... index them, so a training set without some class fits on the others).
        sfreq (float):
            Sampling rate of the epochs.
        n_harmonics (int):
            Harmonics in the reference (MOABB uses 3).
    """

    _parameter_constraints: ClassVar[dict] = {"frequencies": [FREQUENCIES], "sfreq": [POSITIVE],
                                              "n_harmonics": [POSITIVE_INT]}

    def __init__(self, frequencies: Sequence[float | None] = (), sfreq: float = 256.0, n_harmonics: int = 3):
        self.frequencies = frequencies
        self.sfreq = sfreq
        self.n_harmonics = n_harmonics

    def fit(self, X, y):
        X, y = self._setup(X, y)
        self.bases_ = [_orthonormal(reference_signals(cast(float, self.frequencies_[i]), self.n_harmonics, self.sfreq,
                                                      self.n_samples_)) for i in self.stimulated_]
        return self._fit_readout(X, y)

    def _scores(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([canonical_correlation(x, b) for b in self.bases_], 1)


class FBCCA(CCA):
    """Filter-bank CCA (Chen et al. 2015): CCA in sub-bands ``[low_n, high]``, combined as
    ``sum_n w_n rho_n^2`` with ``w_n = n^-a + b`` (a = 1.25, b = 0.25 as published).

    Args:
        bands (sequence of tuple):
            Sub-bands ``(low, high)`` in Hz (default: lower edges 8, 12, 16, 20, 24 Hz up to 44 Hz, inside the
            7-45 Hz band the SSVEP recipe keeps).
        a (float):
            Decay of the sub-band weights ``w_n = n^-a + b`` (n = 1 for the first band).
        b (float):
            Offset of the sub-band weights, so the highest bands still count.

    ``frequencies``, ``sfreq`` and ``n_harmonics`` are those of :class:`CCA`.

    Memory: each sub-band is held as its exact ``(T, T)`` float64 filter matrix (module notes), so
    ``8 T^2`` bytes per band: 2 MB at 256 Hz with 2-s epochs, 512 MB at 2,048 Hz with 4-s epochs
    (2.6 GB for the five default bands). Resample such recordings first (``resample`` in the
    preprocessing recipe) to a rate above twice the highest band edge (above 88 Hz for the
    default bands; 256 Hz is usual).
    """

    _parameter_constraints: ClassVar[dict] = {**CCA._parameter_constraints, "bands": [BANDS],
                                              "a": [Interval(float, None, None)], "b": [NON_NEGATIVE]}

    def __init__(self, frequencies: Sequence[float | None] = (), sfreq: float = 256.0, n_harmonics: int = 3,
                 bands: Sequence[Sequence[float]] = ((8, 44), (12, 44), (16, 44), (20, 44), (24, 44)),
                 a: float = 1.25, b: float = 0.25):
        super().__init__(frequencies, sfreq, n_harmonics)
        self.bands = bands
        self.a = a
        self.b = b

    def _validate_params(self) -> None:
        super()._validate_params()
        reaching = [f"{lo:g}-{hi:g}" for lo, hi in self.bands if hi >= self.sfreq / 2]
        if reaching:
            raise ConfigError(f"FBCCA: band(s) {', '.join(reaching)} Hz reach Nyquist ({self.sfreq / 2:g} Hz at "
                              f"sfreq {self.sfreq:g} Hz)")

    def fit(self, X, y):
        X, y = self._setup(X, y)
        self.operators_ = [torch.as_tensor(band_operator(lo, hi, self.sfreq, self.n_samples_), dtype=torch.float64)
                           for lo, hi in self.bands]
        self.weights_ = torch.tensor([(n + 1) ** -self.a + self.b for n in range(len(self.bands))],
                                     dtype=torch.float64)
        return super().fit(X, y)

    def _scores(self, x: torch.Tensor) -> torch.Tensor:
        total = torch.zeros(x.shape[0], len(self.bases_), dtype=x.dtype)
        for w, op in zip(self.weights_, self.operators_):
            sub = x @ op
            total = total + w * torch.stack([canonical_correlation(sub, b) for b in self.bases_], 1) ** 2
        return total


class TRCA(_SSVEPBase):
    """Ensemble task-related component analysis (Nakanishi et al. 2018): per class the spatial
    filter that maximises the covariance between its trials; the ensemble of all classes'
    filters projects the trial and each class template; the class with the most correlated
    template wins. Every class, rest included, has a template.

    Args:
        frequencies (sequence of float or None):
            Stimulation frequency per class (only used to check the class count; TRCA learns
            templates, not references).
        sfreq (float):
            Sampling rate of the epochs.
    """

    _parameter_constraints: ClassVar[dict] = {"frequencies": [FREQUENCIES], "sfreq": [POSITIVE]}

    def __init__(self, frequencies: Sequence[float | None] = (), sfreq: float = 256.0):
        self.frequencies = frequencies
        self.sfreq = sfreq

    def fit(self, X, y):
        X, y = self._setup(X, y)
        filters, templates = [], []
        for c in self.classes_:
            trials = X[y == c]
            if len(trials) < 2:
                raise DataError(f"TRCA: class {c} has {len(trials)} trial(s); it needs at least 2")
            trials = trials - trials.mean(-1, keepdims=True)
            total = trials.sum(0)
            S = total @ total.T - np.einsum("nct,ndt->cd", trials, trials)
            concatenated = np.concatenate(list(trials), axis=1)
            Q = concatenated @ concatenated.T
            values, vectors = np.linalg.eig(np.linalg.solve(Q, S))
            filters.append(np.real(vectors[:, np.argmax(np.real(values))]))
            templates.append(trials.mean(0))
        self.filters_ = torch.as_tensor(np.array(filters).T, dtype=torch.float64)  # (C, K)
        self.templates_ = torch.as_tensor(np.array(templates), dtype=torch.float64)  # (K, C, T)
        self.readout_ = None
        return self

    def _scores(self, x: torch.Tensor) -> torch.Tensor:
        w = self.filters_
        projected = torch.einsum("ck,bct->bkt", w, x).flatten(1)  # (B, K*T)
        templates = torch.einsum("ck,jct->jkt", w, self.templates_).flatten(1)  # (classes, K*T)
        return _correlation(projected[:, None, :], templates[None])
