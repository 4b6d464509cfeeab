"""Synthetic cortex: V1-like neurons with known receptive fields, for ground-truth tests.

Each neuron has a receptive field at a known pixel position ``rf_centers_[i]`` (x, y):
a simple-cell Gabor, a complex cell (energy of a Gabor quadrature pair) or a
centre-surround difference of Gaussians. Its mean rate is a rectified, expanded drive
``gain * relu(drive - threshold) ** exponent``, optionally scaled by running speed and
pupil size (behaviour), and divided by ``1 + s * E`` where ``E`` is the contrast energy in an
annulus around the receptive field (surround suppression; ``s`` uniform in
``[0, surround_suppression]`` per neuron). Single trials are Gamma-distributed with variance
``fano * mean`` (variance grows with the mean); ``gain_noise`` multiplies every trial's rates by a
log-normal gain shared by the population (mean 1, log-sd ``gain_noise``), which over-disperses
the variability as in real recordings (Goris et al. 2014). :meth:`SyntheticCortex.realistic`
combines all of these at strengths whose jackknife oracle is close to real Sensorium recordings'.

Behaviour comes in the units a rig records (Sensorium's layout): ``behavior`` columns are pupil
dilation (eye-camera pixels, ~20 +- 4), its derivative (pixels per trial) and treadmill speed
(cm/s, 0 while sitting, ~10-30 while running); ``pupil_center`` is the eye position in
eye-camera pixels (about (755, 471) with a spread of a few pixels, as in real recordings). A
slow arousal state drives running and pupil size; ``behavior_modulation`` scales each
neuron's multiplicative gain by that state, and ``eye_shift`` moves the image on the retina
by that many pixels per standard deviation of the eye position (what a shifter must undo).
With ``calcium=True`` trials are read out from a
simulated calcium trace instead: spikes (Poisson on the rate) -> exponential indicator
kernel (``tau`` s, so responses carry over into the next trial) -> additive noise.

Cortical positions follow a retinotopic map (cortex position = linear map of the RF
centre + scatter), so a grid predictor from cortical coordinates has signal to use.

Stimuli are 1/f ("pink") noise images, 0..255 like Sensorium's grayscale images. With
``image_channels=C > 1`` they are colour images (n, C, H, W) (for C = 2, a mouse's green and UV), each
channel pink noise correlated with the others by ``channel_correlation``, and each neuron weighs
the channels by its own non-negative unit vector ``channel_weights_`` (its filter seen through
each channel, scaled): the ground truth of a colour-preference measurement.

Example::

    from neuroaikit.neural import SyntheticCortex
    cortex = SyntheticCortex(n_neurons=200, image_shape=(36, 64), seed=0)
    ds = cortex.sample(n_train=2000, n_validation=200, n_test_images=50, repeats=10)
    cortex.write(ds, "synthetic_filetree")     # Sensorium FileTree folder
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

import numpy as np

from ..config import (BOOL, NON_NEGATIVE, POSITIVE, POSITIVE_INT, AppliesOnly, Config, InstanceOf, Interval, Satisfies,
                      is_finite_number)
from ..errors import ConfigError, DataError
from .dataset import NeuralDataset


def _image_shape(value: Any) -> bool:
    return (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 4 for v in value))


def _fractions(value: Any) -> bool:
    return (isinstance(value, (tuple, list)) and len(value) == 3
            and all(is_finite_number(v) and v >= 0 for v in value)
            and sum(value) > 0)


@dataclass
class SyntheticCortex(Config):
    """Ground-truth V1 population (see module docstring); constructor stores parameters only
    (validated: a bad value is a one-line error naming it, and so is a calcium setting, ``tau``,
    ``trial_duration`` or ``calcium_noise``, changed without ``calcium``, or ``channel_correlation``
    changed with one image channel)."""

    n_neurons: int = 100
    image_shape: tuple[int, int] = (36, 64)
    seed: int = 0
    kinds: tuple[float, float, float] = (0.5, 0.3, 0.2)  # fractions simple / complex / centre-surround
    fano: float = 2.0
    exponent: float = 1.5
    mean_rate: float = 0.5
    behavior_modulation: float = 0.0
    eye_shift: float = 0.0
    calcium: bool = False
    tau: float = 0.6
    trial_duration: float = 0.5
    calcium_noise: float = 0.2
    margin: float = 6.0
    surround_suppression: float = 0.0
    gain_noise: float = 0.0
    image_channels: int = 1
    channel_correlation: float = 0.5

    _parameter_constraints: ClassVar[dict] = {
        "n_neurons": [POSITIVE_INT],
        "image_shape": [Satisfies(_image_shape, "two integers >= 4 (height, width)")],
        "seed": [Interval(int, 0, None)],
        "kinds": [Satisfies(_fractions, "three fractions >= 0 (simple, complex, centre-surround), not all 0")],
        "fano": [POSITIVE],
        "exponent": [POSITIVE],
        "mean_rate": [POSITIVE],
        "behavior_modulation": [NON_NEGATIVE],
        "eye_shift": [NON_NEGATIVE],
        "calcium": [BOOL],
        "tau": [POSITIVE],
        "trial_duration": [POSITIVE],
        "calcium_noise": [NON_NEGATIVE],
        "margin": [NON_NEGATIVE],
        "surround_suppression": [NON_NEGATIVE],
        "gain_noise": [NON_NEGATIVE],
        "image_channels": [POSITIVE_INT],
        "channel_correlation": [Interval(float, 0, 1)],
    }

    # the calcium readout's settings mean nothing for spike counts, the channel mixing nothing
    # for one channel: a changed one is refused rather than recorded as if it had shaped the data
    _applies_only: ClassVar[tuple[AppliesOnly, ...]] = (
        AppliesOnly(("tau", "trial_duration", "calcium_noise"), lambda c: c.calcium,
                    "applies only with {calcium}=true", ("calcium",)),
        AppliesOnly(("channel_correlation",), lambda c: c.image_channels > 1,
                    "applies only with {image_channels} > 1", ("image_channels",)),
    )
    _refuse_unused_changes: ClassVar[bool] = True

    #: the settings of :meth:`realistic`
    REALISTIC: ClassVar[dict] = dict(calcium=True, mean_rate=0.22, gain_noise=0.3, surround_suppression=2.0,
                                     behavior_modulation=0.5, eye_shift=1.0)

    @classmethod
    def realistic(cls, **overrides: Any) -> "SyntheticCortex":
        """A cortex as hard to predict as a real recording: calcium readout, low spike counts,
        shared gain fluctuations, surround suppression, behavioural gain and eye movements
        (:attr:`REALISTIC`). Its jackknife oracle on 10 repeats is about 0.37 (real Sensorium
        mice: about 0.38), where the plain default's is about 0.62; ``overrides`` change any
        setting (``n_neurons``, ``image_shape``, ``seed`` ...)."""
        return cls(**{**cls.REALISTIC, **overrides})

    def _check(self) -> None:
        self.image_shape = tuple(int(v) for v in self.image_shape)  # type: ignore[assignment]
        self.kinds = tuple(float(v) for v in self.kinds)  # type: ignore[assignment]

    # -- ground truth ----------------------------------------------------------
    def build(self) -> "SyntheticCortex":
        """Draw the receptive fields (called by :meth:`sample` when needed)."""
        rng = np.random.default_rng(self.seed)
        h, w = self.image_shape
        n = self.n_neurons
        margin = min(self.margin, h / 4, w / 4)
        cx = rng.uniform(margin, w - 1 - margin, n)
        cy = rng.uniform(margin, h - 1 - margin, n)
        self.rf_centers_ = np.stack([cx, cy], 1)
        self.kind_ = rng.choice(3, size=n, p=np.asarray(self.kinds) / np.sum(self.kinds))
        self.orientation_ = rng.uniform(0, np.pi, n)
        scale = min(h, w) / 36.0
        self.sigma_ = rng.uniform(1.6, 3.0, n) * scale
        self.spatial_freq_ = rng.uniform(0.08, 0.16, n) / scale  # cycles / pixel
        self.phase_ = rng.uniform(0, 2 * np.pi, n)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
        filters = np.zeros((2, n, h, w))
        for i in range(n):
            dx, dy = xx - cx[i], yy - cy[i]
            if self.kind_[i] == 2:
                s = self.sigma_[i] * 0.7
                dog = np.exp(-(dx**2 + dy**2) / (2 * s**2)) - 0.5 * np.exp(-(dx**2 + dy**2) / (2 * (2 * s) ** 2))
                filters[0, i] = dog * rng.choice([-1.0, 1.0])
            else:
                th = self.orientation_[i]
                u = dx * np.cos(th) + dy * np.sin(th)
                env = np.exp(-(dx**2 + dy**2) / (2 * self.sigma_[i] ** 2))
                arg = 2 * np.pi * self.spatial_freq_[i] * u + self.phase_[i]
                filters[0, i] = env * np.cos(arg)
                filters[1, i] = env * np.sin(arg)
        norms = np.sqrt((filters[0] ** 2).sum((1, 2)))[:, None, None]
        self.filters_ = (filters / norms).astype(np.float32)
        # its own stream: the other draws (and every data set made without a surround) are unchanged
        self.suppression_ = np.random.default_rng([self.seed, 1]).uniform(0, self.surround_suppression, n)
        self.surround_ = None
        if self.surround_suppression:
            # an annulus (1.5 to 3 RF sigmas) weighing the squared contrast around the RF
            r2 = (xx[None] - cx[:, None, None]) ** 2 + (yy[None] - cy[:, None, None]) ** 2
            s2 = self.sigma_[:, None, None] ** 2
            annulus = np.clip(np.exp(-r2 / (2 * 9 * s2)) - np.exp(-r2 / (2 * 2.25 * s2)), 0, None)
            self.surround_ = (annulus / annulus.sum((1, 2), keepdims=True)).astype(np.float32)
        # retinotopy: azimuth -> cortical x, elevation -> cortical y (µm), depth random
        self.cortical_positions_ = np.stack(
            [cx * 20 + rng.normal(0, 15, n), cy * 20 + rng.normal(0, 15, n), rng.uniform(200, 300, n)], 1
        ).astype(np.float32)
        self.behavior_gain_ = rng.normal(0, 1, n) * self.behavior_modulation
        # its own stream, as the surround's: a one-channel cortex is drawn as before
        weights = np.abs(np.random.default_rng([self.seed, 2]).normal(size=(n, self.image_channels))) + 1e-3
        self.channel_weights_ = (weights / np.linalg.norm(weights, axis=1, keepdims=True)).astype(np.float32)
        self._calibrate(rng)
        return self

    def _ensure_built(self) -> None:
        if not hasattr(self, "filters_"):
            self.build()

    def _contrast(self, images: np.ndarray) -> np.ndarray:
        """Images as contrast (n, channels, H W)."""
        return (np.asarray(images, dtype=np.float32).reshape(len(images), self.image_channels, -1) - 127.5) / 64.0

    def _drive(self, images: np.ndarray) -> np.ndarray:
        x = self._contrast(images)
        f = self.filters_.reshape(2, self.n_neurons, -1)
        w = self.channel_weights_
        lin0 = sum(w[:, c] * (x[:, c] @ f[0].T) for c in range(self.image_channels))
        lin1 = sum(w[:, c] * (x[:, c] @ f[1].T) for c in range(self.image_channels))
        complex_ = np.sqrt(lin0**2 + lin1**2)
        return np.where(self.kind_ == 1, complex_ - self._complex_offset, lin0)

    def _surround_energy(self, images: np.ndarray) -> np.ndarray:
        x = self._contrast(images)
        assert self.surround_ is not None, "only a cortex with surround suppression has a surround"
        return (x**2).mean(1) @ self.surround_.reshape(self.n_neurons, -1).T

    def _activation(self, images: np.ndarray) -> np.ndarray:
        """Rectified, expanded drive, divided by the surround's contrast energy (before gain)."""
        act = np.maximum(self._drive(images) - self.threshold_, 0) ** self.exponent
        if self.surround_suppression:
            act = act / (1 + self.suppression_ * self._surround_energy(images) / self._surround_scale)
        return act

    def _calibrate(self, rng) -> None:
        probe = self.images(512, np.random.default_rng(rng.integers(1 << 31)))
        self._complex_offset = 0.0
        lin = self._drive(probe)
        self._complex_offset = np.median(lin[:, self.kind_ == 1]) if (self.kind_ == 1).any() else 0.0
        drive = self._drive(probe)
        self.threshold_ = np.quantile(drive, 0.5, axis=0)
        self._surround_scale = np.median(self._surround_energy(probe), axis=0) + 1e-6 if self.surround_suppression else 1.0
        self.gain_ = self.mean_rate / (self._activation(probe).mean(0) + 1e-6)

    def images(self, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """``n`` pink-noise images (n, H, W), float32 in 0..255; (n, C, H, W) for ``image_channels``
        C > 1, each channel ``sqrt(rho)`` shared + ``sqrt(1 - rho)`` own pink noise
        (``rho = channel_correlation``), standardised as a one-channel image."""
        rng = rng or np.random.default_rng(self.seed + 1)
        if self.image_channels == 1:
            return self._pink(n, rng)
        rho = self.channel_correlation
        shared = (self._pink(n, rng) - 127.5) / 50
        mixed = [np.sqrt(rho) * shared + np.sqrt(1 - rho) * (self._pink(n, rng) - 127.5) / 50 for _ in range(self.image_channels)]
        out = np.stack(mixed, 1)
        out = out / (out.std((2, 3), keepdims=True) + 1e-9)
        return np.clip(127.5 + 50 * out, 0, 255).astype(np.float32)

    def _pink(self, n: int, rng: np.random.Generator) -> np.ndarray:
        h, w = self.image_shape
        fy = np.fft.fftfreq(h)[:, None]
        fx = np.fft.fftfreq(w)[None, :]
        amp = 1.0 / np.maximum(np.sqrt(fx**2 + fy**2), 1.0 / max(h, w))
        out = np.empty((n, h, w), dtype=np.float32)
        for start in range(0, n, 512):
            k = min(512, n - start)
            noise = rng.normal(size=(k, h, w)) + 1j * rng.normal(size=(k, h, w))
            img = np.real(np.fft.ifft2(noise * amp))
            img = (img - img.mean((1, 2), keepdims=True)) / (img.std((1, 2), keepdims=True) + 1e-9)
            out[start : start + k] = np.clip(127.5 + 50 * img, 0, 255)
        return out

    def rates(self, images: np.ndarray, behavior: np.ndarray | None = None,
              pupil_center: np.ndarray | None = None) -> np.ndarray:
        """Noise-free mean responses (n_images, n_neurons) to (n, H, W) images, seen with the
        eye at ``pupil_center`` (eye-camera pixels; shifts the image by ``eye_shift``) in the
        behavioural state ``behavior`` (rig units; gain by ``behavior_modulation``)."""
        self._ensure_built()
        images = np.asarray(images, dtype=np.float32)
        if pupil_center is not None and self.eye_shift:
            offset = (np.asarray(pupil_center, np.float64) - EYE_CENTER_PX) / EYE_SPREAD_PX * self.eye_shift
            images = shift_images(images, offset)
        rate = self.gain_ * self._activation(images)
        if behavior is not None and self.behavior_modulation:
            rate = rate * np.exp(np.outer(arousal_of(behavior), self.behavior_gain_) * 0.5)
        return rate.astype(np.float32)

    # -- data set --------------------------------------------------------------
    def sample(
        self,
        n_train: int = 2000,
        n_validation: int = 200,
        n_test_images: int = 50,
        repeats: int = 10,
        n_final_test_images: int = 0,
    ) -> NeuralDataset:
        """A data set with tiers train / validation / test (+ final_test) and repeats on the
        test tiers; trial order is shuffled like a real session. The noise-free rates of
        every trial are kept in ``info["rates"]``."""
        SyntheticSample(n_train, n_validation, n_test_images, repeats, n_final_test_images)  # validates
        self._ensure_built()
        rng = np.random.default_rng(self.seed + 2)
        n_test_total = n_test_images + n_final_test_images
        n_images = n_train + n_validation + n_test_total
        stimuli = self.images(n_images, rng)
        stim = np.concatenate(
            [np.arange(n_train + n_validation), np.repeat(np.arange(n_train + n_validation, n_images), repeats)]
        )
        tiers = np.array(
            ["train"] * n_train
            + ["validation"] * n_validation
            + ["test"] * (n_test_images * repeats)
            + ["final_test"] * (n_final_test_images * repeats)
        )
        order = rng.permutation(len(stim))
        stim, tiers = stim[order], tiers[order]
        n_trials = len(stim)
        behavior, pupil_center = rig_behavior(n_trials, rng)
        rates = np.empty((n_trials, self.n_neurons), dtype=np.float32)
        for start in range(0, n_trials, 1024):
            sl = slice(start, start + 1024)
            rates[sl] = self.rates(stimuli[stim[sl]], behavior[sl], pupil_center[sl])
        trial_gain: float | np.ndarray = 1.0
        if self.gain_noise:  # shared across the population, unknown to any model: over-dispersion
            trial_gain = np.exp(rng.normal(-self.gain_noise**2 / 2, self.gain_noise, (n_trials, 1))).astype(np.float32)
        responses = self._observe(rates * trial_gain, rng)
        return NeuralDataset(
            stimuli=stimuli,
            responses=responses,
            image_ids=stim,
            tiers=tiers,
            stimulus_index=stim,
            behavior=behavior,
            pupil_center=pupil_center,
            cortical_positions=self.cortical_positions_,
            trial_ids=np.arange(n_trials),
            name=f"synthetic-cortex-{self.n_neurons}n-seed{self.seed}",
            response_kind="dff" if self.calcium else "deconvolved",
            info={"rates": rates, "rf_centers": self.rf_centers_, "simulator": "SyntheticCortex"},
        )

    def _observe(self, rates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if not self.calcium:
            shape = np.maximum(rates, 1e-6) / self.fano
            out = rng.gamma(shape, self.fano).astype(np.float32)
            return np.where(rates > 1e-6, out, 0.0).astype(np.float32)
        # spikes -> calcium: one exponential kernel step per trial, read out as the
        # mean dF/F over the trial (the previous trial's calcium decays into this one)
        decay = np.exp(-self.trial_duration / self.tau)
        spikes = rng.poisson(rates).astype(np.float32)
        out = np.empty_like(rates)
        ca = np.zeros(rates.shape[1], dtype=np.float32)
        for t in range(len(rates)):
            ca = ca * decay + spikes[t]
            out[t] = ca
        return (out + rng.normal(0, self.calcium_noise, out.shape)).astype(np.float32)

    def oracle_predictions(self, ds: NeuralDataset) -> np.ndarray:
        """The simulator's own noise-free prediction of every trial of ``ds`` (the best any
        model of the stimulus can do), for ceiling comparisons."""
        rates = ds.info.get("rates")
        if rates is not None and len(rates) == ds.n_trials:
            return np.asarray(rates)
        if "resized_from" in ds.info:
            raise DataError(f"{ds.name}: its images were resampled, so the simulator cannot predict them; "
                            "pass the recording as simulated (its rates are kept in info['rates'])")
        return self.rates(ds.stimuli[ds.stimulus_index], ds.behavior, ds.pupil_center)

    def write(self, ds: NeuralDataset, path: str | os.PathLike, as_zip: bool = False):
        """Write ``ds`` as a Sensorium FileTree folder (or zip); ground-truth RF centres go to
        ``meta/neurons/rf_centers.npy`` in the folder form."""
        from .filetree import write_filetree

        out = write_filetree(ds, path, as_zip=as_zip)
        if not as_zip:
            np.save(out / "meta" / "neurons" / "rf_centers.npy", self.rf_centers_)
        return out


#: eye position of a head-fixed mouse in eye-camera pixels (centre, spread), as real rigs record it
EYE_CENTER_PX = np.array([755.0, 471.0])
EYE_SPREAD_PX = np.array([6.0, 4.0])
#: pupil dilation (pixels) and running speed (cm/s) of the simulated rig
PUPIL_DILATION_PX = (20.0, 4.0)
RUNNING_SPEED_CM_S = 20.0


def rig_behavior(n_trials: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Behaviour (n_trials, 3: pupil dilation px, its derivative, running speed cm/s) and pupil
    centre (n_trials, 2, eye-camera px) in presentation order, driven by a slow arousal state."""
    def slow(k: int) -> np.ndarray:  # an AR(1) process with unit variance, ~20-trial memory
        a = 0.95
        x = np.empty((n_trials, k))
        x[0] = rng.normal(size=k)
        noise = rng.normal(size=(n_trials, k)) * np.sqrt(1 - a**2)
        for t in range(1, n_trials):
            x[t] = a * x[t - 1] + noise[t]
        return x

    arousal = slow(1)[:, 0]
    dilation = PUPIL_DILATION_PX[0] + PUPIL_DILATION_PX[1] * (0.8 * arousal + 0.6 * rng.normal(size=n_trials))
    running = np.where(arousal + 0.5 * rng.normal(size=n_trials) > 0.3,
                       RUNNING_SPEED_CM_S * (0.5 + np.abs(arousal)), np.abs(rng.normal(0, 0.3, n_trials)))
    behavior = np.stack([dilation, np.gradient(dilation), running], 1).astype(np.float32)
    eye = 0.5 * slow(2) + np.sqrt(0.75) * rng.normal(size=(n_trials, 2))
    pupil_center = (EYE_CENTER_PX + EYE_SPREAD_PX * eye).astype(np.float32)
    return behavior, pupil_center


def arousal_of(behavior: np.ndarray) -> np.ndarray:
    """The simulator's arousal estimate from rig-unit behaviour: standardised pupil dilation
    plus standardised log running speed, divided by 2 (about unit variance)."""
    behavior = np.asarray(behavior, dtype=np.float64)
    dilation = (behavior[:, 0] - PUPIL_DILATION_PX[0]) / PUPIL_DILATION_PX[1]
    running = (np.log1p(behavior[:, 2]) - np.log1p(RUNNING_SPEED_CM_S) / 2) / (np.log1p(RUNNING_SPEED_CM_S) / 2)
    return (dilation + running) / 2


def shift_images(images: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Translate each image (n, H, W) by ``offset`` (n, 2: x, y pixels), sub-pixel, by a Fourier
    phase ramp (the image wraps around its border, fine for pink noise); colour images
    (n, C, H, W) move every channel alike."""
    n, h, w = images.shape[0], images.shape[-2], images.shape[-1]
    fy = np.fft.fftfreq(h)[None, :, None]
    fx = np.fft.fftfreq(w)[None, None, :]
    ramp = np.exp(-2j * np.pi * (fx * offset[:, 0, None, None] + fy * offset[:, 1, None, None]))
    ramp = ramp.reshape(n, *([1] * (images.ndim - 3)), h, w)
    return np.real(np.fft.ifft2(np.fft.fft2(images) * ramp)).astype(np.float32)


@dataclass
class SyntheticSample(Config):
    """How many trials :meth:`SyntheticCortex.sample` draws."""

    n_train: int = 2000
    n_validation: int = 200
    n_test_images: int = 50
    repeats: int = 10
    n_final_test_images: int = 0

    _parameter_constraints: ClassVar[dict] = {
        "n_train": [Interval(int, 2, None)],
        "n_validation": [Interval(int, 0, None)],
        "n_test_images": [Interval(int, 0, None)],
        "repeats": [POSITIVE_INT],
        "n_final_test_images": [Interval(int, 0, None)],
    }


#: ``--synthetic preset=NAME``: the simulator settings a preset starts from
PRESETS: dict[str, dict] = {"plain": {}, "realistic": SyntheticCortex.REALISTIC}


@dataclass
class SyntheticDataConfig(Config):
    """The embedded synthetic recording (``twin fit synthetic --synthetic KEY=VALUE``): the
    simulator's parameters and how many trials to draw from it."""

    cortex: SyntheticCortex = field(default_factory=SyntheticCortex)
    sample: SyntheticSample = field(default_factory=SyntheticSample)

    _parameter_constraints: ClassVar[dict] = {
        "cortex": [InstanceOf(SyntheticCortex)],
        "sample": [InstanceOf(SyntheticSample)],
    }

    @classmethod
    def from_flat(cls, values: Mapping[str, Any] | None) -> "SyntheticDataConfig":
        """From one flat mapping of simulator and sample keys (``n_neurons=100 n_train=500``;
        ``preset=realistic`` starts from :meth:`SyntheticCortex.realistic`'s settings, which the
        other keys override); an unknown key is a one-line error listing the known ones."""
        values = dict(values or {})
        preset = values.pop("preset", "plain")
        if not isinstance(preset, str) or preset not in PRESETS:
            raise ConfigError(f"synthetic preset must be one of {', '.join(PRESETS)}, got {preset!r}")
        cortex_keys, sample_keys = SyntheticCortex.field_names(), SyntheticSample.field_names()
        unknown = sorted(set(values) - set(cortex_keys) - set(sample_keys))
        if unknown:
            raise ConfigError(f"unknown synthetic option(s) {', '.join(unknown)}; known: preset, "
                              f"{', '.join(cortex_keys + sample_keys)}")
        cortex_values = {**PRESETS[preset], **{k: v for k, v in values.items() if k in cortex_keys}}
        return cls(SyntheticCortex.from_dict(cortex_values, where="synthetic"),
                   SyntheticSample.from_dict({k: v for k, v in values.items() if k in sample_keys}, where="synthetic"))

    def flat(self) -> dict:
        return {**self.cortex.to_dict(), **self.sample.to_dict()}

    def make(self) -> tuple[NeuralDataset, SyntheticCortex]:
        """The data set, and the simulator that made it (the ground truth)."""
        cortex = SyntheticCortex.from_dict(self.cortex.to_dict())
        return cortex.sample(**self.sample.to_dict()), cortex
