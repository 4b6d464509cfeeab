"""Spike inference by OASIS deconvolution.

OASIS (Friedrich, Zhou & Paninski 2017, PLoS Comput Biol 13:e1005423) models the calcium
trace as an autoregressive process driven by non-negative spikes,

    c_t = g c_{t-1} + s_t               (AR(1); AR(2) adds g2 c_{t-2} for the rise)
    y_t = b + c_t + noise,  noise ~ N(0, sn^2),

and solves min |s|_1 subject to |y - b - c|^2 <= sn^2 T, s >= 0 (``penalty="l1"``; "l0"
gives the non-convex version), with sn estimated from the high-frequency power of the
trace. The decay factor g comes from the indicator's decay time, g = exp(-1 / (tau x rate)),
or is estimated from the trace's autocovariance.

Backends: ``"oasis"`` is the ``oasis-deconv`` package (Cython, AR(1) and AR(2));
``"numpy"`` is this module's pure-NumPy OASIS AR(1) with the same noise constraint
(slower, used when the package is missing); ``"auto"`` picks the package when importable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator

from ...config import NON_NEGATIVE, POSITIVE, DeclaredParameters, Interval, Options
from ...errors import ConfigError, DataError
from .metrics import smooth_rate
from .recording import CalciumRecording

BACKENDS = ("auto", "oasis", "numpy")
#: How reports and results name the backend that actually ran.
BACKEND_LABELS = {
    "oasis": "OASIS (oasis-deconv package)",
    "numpy": "OASIS AR(1) (neuroaikit's pure-NumPy implementation)",
}


def backend_label(backend: str) -> str:
    """``"oasis"`` -> ``"OASIS (oasis-deconv package)"``; several names are joined."""
    names = [b for b in str(backend).split("+") if b]
    return " + ".join(BACKEND_LABELS.get(b, b) for b in names) or "OASIS"


@dataclass
class SpikeInference:
    """Result of deconvolving one trace.

    Attributes:
        spikes: (T,) inferred spike amplitude per frame (dF/F units, not spike counts).
        rate: (T,) ``spikes`` x frame rate smoothed with a Gaussian of ``smoothing_s``:
            an (unscaled) spike-rate estimate, the quantity correlated with the ground truth.
        denoised: (T,) the fitted calcium trace c (without baseline).
        baseline: fitted baseline b.
        g: AR coefficients used.
        noise_sd: noise standard deviation sn (dF/F units).
        tau_decay_s: decay time implied by g (s).
        frame_rate: Hz.
        backend: "oasis" or "numpy".
    """

    spikes: np.ndarray
    rate: np.ndarray
    denoised: np.ndarray
    baseline: float
    g: tuple[float, ...]
    noise_sd: float
    tau_decay_s: float
    frame_rate: float
    backend: str


def oasis_available() -> bool:
    """Whether the ``oasis-deconv`` package can be imported (else the NumPy backend runs)."""
    try:
        import oasis.functions  # noqa: F401
    except Exception:
        return False
    return True


def tau_from_g(g: tuple[float, ...], frame_rate: float) -> float:
    """Decay time (s) of an AR(1) / AR(2) kernel: the slower root of z^2 - g1 z - g2."""
    if len(g) == 1:
        root = g[0]
    else:
        roots = np.roots([1.0, -g[0], -g[1]])
        root = float(np.max(np.abs(roots)))
    if not 0 < root < 1:
        return float("nan")
    return float(-1.0 / (frame_rate * np.log(root)))


def estimate_noise_sd(y: np.ndarray) -> float:
    """sn from the mean power spectral density in the upper half of the band (0.25-0.5 of the
    sampling rate), where calcium transients carry little power (as OASIS's GetSn)."""
    from scipy.signal import welch

    freqs, psd = welch(y, fs=1.0, nperseg=min(256, y.size))
    band = psd[freqs > 0.25]
    return float(np.sqrt(np.mean(band) / 2.0)) if band.size else float(np.std(np.diff(y)) / np.sqrt(2))


def estimate_ar1(y: np.ndarray) -> float:
    """AR(1) coefficient from the autocovariance at lags 1 and 2 (lag 0 carries the noise)."""
    z = y - y.mean()
    a1 = float(np.dot(z[1:], z[:-1]))
    a2 = float(np.dot(z[2:], z[:-2]))
    if a1 <= 0:
        return 0.5
    return float(np.clip(a2 / a1, 0.05, 0.999))


def oasis_ar1_l1(y: np.ndarray, g: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact solution of min 1/2 |c - y|^2 + lam |s|_1, s_t = c_t - g c_{t-1} >= 0 (OASIS
    pool-adjacent-violators for AR(1)); ``y`` has its baseline removed. Returns (c, s)."""
    y = np.asarray(y, dtype=np.float64)
    n = y.size
    # The L1 penalty on s equals a constant shift of the data: sum_t s_t = (1-g) sum c_t + g c_T.
    shifted = y - lam * (1 - g)
    shifted[-1] = y[-1] - lam
    values: list[float] = []
    weights: list[float] = []
    starts: list[int] = []
    lengths: list[int] = []
    for t in range(n):
        values.append(shifted[t])
        weights.append(1.0)
        starts.append(t)
        lengths.append(1)
        while len(values) > 1 and values[-2] * g ** lengths[-2] > values[-1]:
            l1 = lengths[-2]
            gl = g**l1
            w = weights[-2] + weights[-1] * gl * gl
            v = (values[-2] * weights[-2] + values[-1] * weights[-1] * gl) / w
            values[-2], weights[-2], lengths[-2] = v, w, l1 + lengths[-1]
            del values[-1], weights[-1], starts[-1], lengths[-1]
    c = np.empty(n)
    for v, start, length in zip(values, starts, lengths):
        c[start : start + length] = max(v, 0.0) * g ** np.arange(length)
    s = np.empty(n)
    s[0] = c[0]
    s[1:] = c[1:] - g * c[:-1]
    return c, np.maximum(s, 0.0)


def _fit_with_baseline(
    y: np.ndarray, g: float, lam: float, b: float, tol: float, max_iter: int = 40
) -> tuple[np.ndarray, np.ndarray, float]:
    """c, s and baseline b >= 0 minimising 1/2 |y - b - c|^2 + lam |s|_1 for a fixed ``lam``,
    starting from ``b``; the optimum has b = max(mean(y - c), 0) (as OASIS with optimize_b and
    b_nonneg). Returns (c, s, b)."""
    prev: tuple[float, float] | None = None
    c, s = oasis_ar1_l1(y - b, g, lam)
    for _ in range(max_iter):
        h = float(np.mean(y - c)) - b
        if abs(h) <= tol or (b == 0.0 and h < 0):
            break
        step = h
        if prev is not None and h != prev[1]:
            secant = -h * (b - prev[0]) / (h - prev[1])
            # h(b) falls with slope in [-1, 0] (minus the fraction of frames without calcium),
            # so the root lies at least |h| away in the direction of h: never step less.
            if secant * h > 0:
                step = float(np.sign(h) * np.clip(abs(secant), abs(h), 50.0 * abs(h)))
        prev = (b, h)
        b = max(b + step, 0.0)
        c, s = oasis_ar1_l1(y - b, g, lam)
    return c, s, b


def _numpy_deconvolve(y: np.ndarray, g: float | None, iterations: int = 18):
    """Noise-constrained OASIS AR(1): bisection on lam until |y - b - c|^2 ~= sn^2 T, with the
    baseline b >= 0 optimised jointly at every lam (:func:`_fit_with_baseline`), as the package
    does with ``optimize_b``."""
    sn = estimate_noise_sd(y)
    if g is None:
        g = estimate_ar1(y)
    # Only a starting point (the package's): held fixed, a low percentile sits below the noise
    # floor and the offset above it gets fitted as many small spikes.
    b = max(float(np.percentile(y, 15)), 0.0)
    tol = 1e-4 * sn + 1e-12
    target = sn * sn * y.size
    lo, hi = 0.0, float(np.max(np.abs(y - b))) * 10 + 1e-12
    c, s, b = _fit_with_baseline(y, g, 0.0, b, tol)
    if np.sum((y - b - c) ** 2) < target:
        b_lo = b
        for _ in range(iterations):
            lam = 0.5 * (lo + hi)
            c_try, s_try, b_try = _fit_with_baseline(y, g, lam, b_lo, tol)
            if np.sum((y - b_try - c_try) ** 2) > target:
                hi = lam
            else:
                lo, c, s, b = lam, c_try, s_try, b_try
                b_lo = b
    return c, s, b, (g,), sn


#: the deconvolution settings, declared once for the estimator and the ``calcium infer`` config
DECONVOLUTION_CONSTRAINTS: dict = {
    "tau_decay_s": [POSITIVE, None],
    "tau_rise_s": [NON_NEGATIVE],
    "ar_order": [Interval(int, 1, 2)],
    "penalty": [Options(("l1", "l0"))],
    "backend": [Options(BACKENDS)],
}


class OasisDeconvolver(DeclaredParameters, BaseEstimator):
    """OASIS spike inference with noise estimation (AR(1) or AR(2)).

    Paper: Friedrich, Zhou & Paninski (2017), "Fast online deconvolution of calcium imaging
    data", PLoS Comput Biol 13(3): e1005423.

    Model: dF/F = baseline + calcium + Gaussian noise; calcium decays by g per frame and
    jumps by the (non-negative, sparse) spike amplitude.

    Arguments:
        tau_decay_s (float | None): indicator decay time in seconds; ``None`` estimates the
            AR coefficients from each trace. Default None.
        tau_rise_s (float): rise time in seconds; 0 gives AR(1), > 0 gives AR(2) (needs
            ``tau_decay_s``). Default 0.
        ar_order (int): 1 or 2, the AR order estimated when ``tau_decay_s`` is None. Default 1.
        penalty (str): "l1" (convex) or "l0". Default "l1".
        smoothing_s (float): Gaussian sigma (s) applied to the inferred spikes to form
            ``rate``. Default 0.2.
        backend (str): "auto", "oasis" (oasis-deconv package) or "numpy" (AR(1) only).

    A scikit-learn estimator (``get_params``, ``set_params``, ``clone``): the constructor only
    stores the parameters; ``infer`` and ``resolve_backend`` check them, and a bad one is a
    one-line :class:`~neuroaikit.errors.ConfigError` naming it.

    Shapes: ``infer`` takes one trace (T,) and returns :class:`SpikeInference` of (T,) arrays.

    Example::

        from neuroaikit.neural.calcium import OasisDeconvolver, load_cascade_mat
        rec = load_cascade_mat("DS09-GCaMP6f-m-V1/CAttached_Chen2013_GC6f_cell1_mini.mat")[0]
        result = OasisDeconvolver(tau_decay_s=0.7).infer(rec)
        result.rate.shape == rec.dff.shape
    """

    _parameter_constraints: ClassVar[dict] = {**DECONVOLUTION_CONSTRAINTS, "smoothing_s": [NON_NEGATIVE]}

    def __init__(
        self,
        tau_decay_s: float | None = None,
        tau_rise_s: float = 0.0,
        ar_order: int = 1,
        penalty: str = "l1",
        smoothing_s: float = 0.2,
        backend: str = "auto",
    ):
        self.tau_decay_s = tau_decay_s
        self.tau_rise_s = tau_rise_s
        self.ar_order = ar_order
        self.penalty = penalty
        self.smoothing_s = smoothing_s
        self.backend = backend

    def resolve_backend(self) -> str:
        """Check the parameters and return the backend ``infer`` will use ("oasis" or "numpy");
        a bad parameter, or a backend that cannot run them, is a one-line ConfigError."""
        return self._check()

    def _check(self) -> str:
        self._validate_params()
        if self.tau_rise_s > 0 and self.tau_decay_s is None:
            raise ConfigError("tau_rise_s > 0 (AR(2)) needs tau_decay_s")
        if self.tau_decay_s is not None and self.tau_rise_s >= self.tau_decay_s:
            raise ConfigError(f"rise time {self.tau_rise_s} s must be shorter than decay time {self.tau_decay_s} s")
        backend = self.backend
        if backend == "auto":
            backend = "oasis" if oasis_available() else "numpy"
        if backend == "oasis" and not oasis_available():
            raise ConfigError("backend 'oasis' needs the oasis-deconv package (pip install oasis-deconv)")
        if backend == "numpy" and (self.tau_rise_s > 0 or (self.tau_decay_s is None and self.ar_order == 2) or self.penalty == "l0"):
            raise ConfigError("the numpy backend implements OASIS AR(1) with the l1 penalty only")
        return backend

    def infer(self, trace: CalciumRecording | np.ndarray, frame_rate: float | None = None) -> SpikeInference:
        """Deconvolve one trace (a :class:`CalciumRecording`, or a dF/F array plus ``frame_rate``)."""
        backend = self._check()
        if isinstance(trace, CalciumRecording):
            y, rate, name = trace.filled_dff(), trace.frame_rate, trace.name
        else:
            if frame_rate is None:
                raise ConfigError("infer(array) needs frame_rate")
            rec = CalciumRecording.from_trace(trace, frame_rate)
            y, rate, name = rec.filled_dff(), rec.frame_rate, rec.name
        if np.ptp(y) == 0:
            raise DataError(f"{name}: the dF/F trace is constant, nothing to deconvolve")
        if backend == "oasis":
            c, s, b, g, sn = self._oasis(y, rate, name)
        else:
            g0 = None if self.tau_decay_s is None else float(np.exp(-1.0 / (self.tau_decay_s * rate)))
            c, s, b, g, sn = _numpy_deconvolve(y, g0)
        s = np.maximum(np.asarray(s, dtype=np.float64), 0.0)
        return SpikeInference(
            spikes=s,
            rate=smooth_rate(s, rate, self.smoothing_s),
            denoised=np.asarray(c, dtype=np.float64),
            baseline=float(b),
            g=tuple(float(v) for v in g),
            noise_sd=float(sn),
            tau_decay_s=tau_from_g(tuple(g), rate),
            frame_rate=float(rate),
            backend=backend,
        )

    def _oasis(self, y: np.ndarray, rate: float, name: str):
        from oasis.functions import GetSn, deconvolve

        penalty = 1 if self.penalty == "l1" else 0
        kwargs: dict[str, float | None]
        if self.tau_decay_s is None:
            kwargs = {"tau_r": None} if self.ar_order == 2 else {}
        else:
            kwargs = {"tau_d": float(self.tau_decay_s), "tau_r": float(self.tau_rise_s), "framerate": float(rate)}
        try:
            c, s, b, g, _lam = deconvolve(y, penalty=penalty, **kwargs)
        except Exception as exc:  # the Cython code raises bare errors on degenerate traces
            raise DataError(f"{name}: OASIS deconvolution failed: {exc}") from None
        return c, s, b, tuple(np.atleast_1d(g)), float(GetSn(y))


def infer_spikes(trace, frame_rate: float | None = None, **params) -> SpikeInference:
    """Functional shortcut: ``OasisDeconvolver(**params).infer(trace, frame_rate)``."""
    return OasisDeconvolver(**params).infer(trace, frame_rate)
