"""In-silico experiments on any response function: tuning, receptive fields, most exciting inputs.

A response function is any callable ``units(images (B, 1, H, W)) -> (B, n_units)``: a
:class:`~neuroaikit.insilico.LayerUnits` (a layer of a network) or a fitted digital twin.
Its ``input_mean`` / ``input_std`` attributes, when present, give the grey level and contrast
amplitude stimuli are built around (override with ``mean`` / ``contrast``).

- :func:`tuning_curves`: static gratings over orientation, spatial frequency and phase;
  phase-averaged responses, preferred orientation, OSI and 1 - circular variance, each of the
  last three after subtracting the response to the blank grey image.
- :func:`gradient_maps`: d response / d pixel at the grey image, one forward pass for all units.
- :func:`reverse_correlation`: spike-triggered average of white noise, the mean response removed.
- :func:`sparse_noise_map`: response-weighted average of sparse-noise squares (ON minus OFF).
- :func:`rf_centers`: the centre of each map.
- :func:`most_exciting_inputs` / :func:`most_inhibiting_inputs`: regularised gradient ascent
  (descent) on each unit's response at a fixed contrast energy (at most that energy within a
  pixel range, ``bounds``), several seeds per unit with a
  diversity term, all units and seeds in one batch; in every colour channel with ``channels=C``.
- :func:`channel_tuning`: which input channel drives each unit (gratings in one channel at a time).
- :func:`channel_energy`: the share of an image's contrast energy in each channel.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..execution import model_device
from .channels import InChannel
from .measures import driven, orientation_selectivity, osi, preferred_angle
from .recording import respond
from .stimuli import grating_grid, sparse_noise, white_noise


def input_stats(units: Any, mean: float | None = None, contrast: float | None = None) -> tuple[float, float]:
    """Grey level and contrast amplitude: the arguments, else the function's ``input_mean`` /
    ``input_std``, else 0 and 1."""
    m = float(units.input_mean) if mean is None and hasattr(units, "input_mean") else (0.0 if mean is None else mean)
    c = float(units.input_std) if contrast is None and hasattr(units, "input_std") else (1.0 if contrast is None
                                                                                           else contrast)
    return m, c


def _device(units: Any) -> torch.device:
    return model_device(units) if isinstance(units, torch.nn.Module) else torch.device("cpu")


def gratings(shape: tuple[int, int], orientations, spatial_frequencies, phases, mean: float = 0.0,
             contrast: float = 1.0) -> np.ndarray:
    """Sine gratings ``(n_ori, n_sf, n_phase, H, W)``: ``mean + contrast * sin(2 pi f u - phase)``,
    ``u`` the coordinate along orientation ``theta`` (radians) from the image centre, ``f`` in
    cycles / pixel (see :mod:`neuroaikit.insilico.stimuli`)."""
    return grating_grid(shape, orientations, spatial_frequencies, phases, contrast, mean).numpy()


#: spatial frequencies (cycles / pixel) of the grating experiments
SPATIAL_FREQUENCIES = (0.02, 0.04, 0.08, 0.12, 0.16, 0.24)


def tuning_curves(units, shape: tuple[int, int], n_orientations: int = 12,
                  spatial_frequencies=SPATIAL_FREQUENCIES, n_phases: int = 8,
                  mean: float | None = None, contrast: float | None = None) -> dict:
    """Orientation x spatial-frequency tuning from gratings. Returns ``responses``
    (n_ori, n_sf, n_units, phase-averaged), ``blank`` (n_units: the response to the uniform grey
    image), ``orientations`` (rad), ``spatial_frequencies``, and per unit ``preferred_orientation``,
    ``preferred_sf``, ``osi`` (``(R_pref - R_orth) / (R_pref + R_orth)``, :func:`~.measures.osi`) and
    ``orientation_selectivity`` (1 - circular variance), the orientation measures at the preferred
    spatial frequency. Every measure subtracts ``blank`` (as :func:`~neuroaikit.insilico.characterize`
    does), so a constant offset of a unit's output changes none of them; all are ``nan`` for a
    unit no grating drives above ``blank``."""
    m, c = input_stats(units, mean, contrast)
    ori = np.arange(n_orientations) * np.pi / n_orientations
    phases = np.arange(n_phases) * 2 * np.pi / n_phases
    g = gratings(shape, ori, spatial_frequencies, phases, m, c)
    blank = respond(units, np.full((1, *shape), m, np.float32))[0].astype(np.float64)
    # float64 before the phase mean: a unit that ignores the gratings then equals its blank response exactly
    resp = respond(units, g.reshape(-1, *shape)).astype(np.float64)
    resp = resp.reshape(len(ori), len(spatial_frequencies), n_phases, -1).mean(2)
    best_sf = resp.max(0).argmax(0)
    at_sf = resp[:, best_sf, np.arange(resp.shape[-1])]
    responsive = driven(resp.max((0, 1)), blank)
    return {
        "orientations": ori,
        "spatial_frequencies": np.asarray(spatial_frequencies),
        "responses": resp,
        "blank": blank,
        "responsive": responsive,
        "preferred_orientation": np.where(responsive, preferred_angle(at_sf, ori, blank), np.nan),
        "preferred_sf": np.where(responsive, np.asarray(spatial_frequencies, dtype=np.float64)[best_sf], np.nan),
        "osi": np.where(responsive, osi(at_sf, ori, blank), np.nan),
        "orientation_selectivity": np.where(responsive, orientation_selectivity(at_sf, ori, blank), np.nan),
    }


def _n_units(units, shape, m: float, device) -> int:
    with torch.no_grad():
        return int(units(torch.full((1, 1, *shape), m, device=device)).shape[1])


def gradient_maps(units, shape: tuple[int, int], neurons=None, mean: float | None = None,
                  chunk: int = 256) -> np.ndarray:
    """d response_n / d image at a uniform grey image, ``(n_selected, H, W)``.

    One forward pass of one grey image is shared by all units; the backward pass is batched over
    ``chunk`` units at a time (one one-hot cotangent per unit, ``is_grads_batched``). Units whose
    gradient is zero are found first, for all units at once, from two directional derivatives
    ``<grad, u>`` along random images ``u`` (almost surely non-zero unless the gradient is zero);
    their maps are zeros without a backward pass of their own. At a grey image many rectified
    units sit below threshold, so this often halves the work.

    A response function whose noise is redrawn on every pass (``noise="on"``) gets one forward
    pass per unit instead (a batch of ``chunk`` grey images, image ``k`` differentiated for unit
    ``k``): each unit's map then differentiates its own draw, as a one-unit-at-a-time loop would.
    The same per-copy path serves a function whose backward pass cannot be batched.
    """
    m, _ = input_stats(units, mean, None)
    device = _device(units)
    neurons = np.arange(_n_units(units, shape, m, device)) if neurons is None else np.asarray(neurons)
    out = np.zeros((len(neurons), *shape), np.float32)
    redrawn = getattr(units, "noise", "off") == "on"
    live = np.arange(len(neurons)) if redrawn else np.flatnonzero(_may_have_gradient(units, shape, m, device)[neurons])
    if len(live) and not redrawn:
        try:
            _shared_forward_maps(units, shape, m, device, neurons, live, chunk, out)
            return out
        except torch.OutOfMemoryError:
            raise  # the per-copy path needs more memory, not less: lower ``chunk`` instead
        except RuntimeError:  # an operation without a batching rule: fall back to one copy per unit
            pass
    for start in range(0, len(live), chunk):
        rows = live[start:start + chunk]
        idx = torch.as_tensor(neurons[rows], device=device)
        x = torch.full((len(idx), 1, *shape), m, requires_grad=True, device=device)
        y = units(x)
        (grad,) = torch.autograd.grad(y[torch.arange(len(idx), device=device), idx].sum(), x)
        out[rows] = grad[:, 0].detach().cpu().numpy()
    return out


def _shared_forward_maps(units, shape, m: float, device, neurons: np.ndarray, live: np.ndarray, chunk: int,
                         out: np.ndarray) -> None:
    """Fill ``out[live]`` from one forward pass and backward passes batched over one-hot cotangents
    (the work of a unit is one backward pass, not a forward and a backward)."""
    x = torch.full((1, 1, *shape), m, requires_grad=True, device=device)
    y = units(x)
    for start in range(0, len(live), chunk):
        rows = live[start:start + chunk]
        idx = torch.as_tensor(neurons[rows], device=device)
        cotangents = torch.zeros(len(rows), *y.shape, device=device, dtype=y.dtype)
        cotangents[torch.arange(len(rows), device=device), 0, idx] = 1
        (grad,) = torch.autograd.grad(y, x, cotangents, retain_graph=True, is_grads_batched=True)
        out[rows] = grad[:, 0, 0].detach().cpu().numpy()


def _may_have_gradient(units, shape: tuple[int, int], m: float, device) -> np.ndarray:
    """``(n_units,)`` bool: False where the gradient at the grey image is zero.

    ``<grad_n, u>`` for two random images ``u`` is computed for every unit ``n`` in one pass by
    the double-backward identity ``d/dv <d(v.y)/dx, u> = J u``. A response function that cannot be
    differentiated twice keeps every unit.
    """
    x = torch.full((2, 1, *shape), m, requires_grad=True, device=device)
    y = units(x)
    v = torch.zeros_like(y, requires_grad=True)
    generator = torch.Generator(device="cpu").manual_seed(0)
    u = torch.randn(x.shape, generator=generator).to(device)
    try:
        (vjp,) = torch.autograd.grad(y, x, v, create_graph=True)
        (directional,) = torch.autograd.grad(vjp, v, u, allow_unused=True)
    except RuntimeError:
        return np.ones(y.shape[1], bool)
    if directional is None:  # no path from the image to the units
        return np.zeros(y.shape[1], bool)
    return (directional != 0).any(0).detach().cpu().numpy()


def reverse_correlation(units, shape: tuple[int, int], n_images: int = 4000, neurons=None, seed: int = 0,
                        mean=None, contrast=None, batch: int = 256) -> np.ndarray:
    """Spike-triggered average of Gaussian white noise with the mean response removed, the
    response-noise covariance ``sum_t (r_t - mean r) (x_t - mean x) / n`` (``x`` the noise in units of
    the contrast), ``(n_selected, H, W)``. For a linear unit ``r = <w, x> + b`` it estimates ``w``
    whatever the offset ``b``: responses may be negative (pre-activations, logits)."""
    m, c = input_stats(units, mean, contrast)
    noise = white_noise(shape, n_images, 0.0, 1.0, seed).numpy()
    # the noise centred on its own sample mean: then sum r (x - mean x) = sum (r - mean r)(x - mean x),
    # and a large mean response cannot swamp the covariance
    noise_mean = noise.mean(0, dtype=np.float64).reshape(-1)
    acc = None
    for start in range(0, n_images, batch):
        part = noise[start:start + batch]
        r = respond(units, m + c * part).astype(np.float64)
        if neurons is not None:
            r = r[:, neurons]
        a = r.T @ (part.reshape(len(part), -1) - noise_mean)
        acc = a if acc is None else acc + a
    assert acc is not None
    return (acc / n_images).reshape(-1, *shape)


def sparse_noise_map(units, shape: tuple[int, int], n_images: int = 4000, square: int = 1, neurons=None,
                     seed: int = 0, mean=None, contrast=None) -> np.ndarray:
    """ON-minus-OFF receptive-field map from sparse noise: the average of the signed stimulus
    (+1 bright, -1 dark square) weighted by the response minus its mean, ``(n_selected, H, W)``."""
    m, c = input_stats(units, mean, contrast)
    images, pattern = sparse_noise(shape, n_images, square, m, c, seed)
    r = respond(units, images)
    if neurons is not None:
        r = r[:, neurons]
    r = r - r.mean(0)
    return (r.T @ pattern.reshape(n_images, -1) / n_images).reshape(-1, *shape)


def _gauss_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def smooth(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur (s.d. ``sigma`` px, replicate padding) of ``(B, C, H, W)`` images, each
    channel on its own."""
    if sigma <= 0:
        return x
    k = _gauss_kernel(sigma).to(x.device)
    pad = k.shape[-1] // 2
    flat = x.reshape(-1, 1, *x.shape[-2:])
    return F.conv2d(F.pad(flat, (pad, pad, pad, pad), mode="replicate"), k).reshape(x.shape)


def rf_centers(maps: np.ndarray, smooth_px: float = 1.5, window: int = 3) -> np.ndarray:
    """(x, y) centre per map ``(n, H, W)``: argmax of the smoothed energy, refined by the centre of
    mass of the energy in a ``(2 window + 1)^2`` box around it; ``nan`` for a map without energy
    (all zero: a unit with no gradient or no response has no centre)."""
    energy = smooth(torch.as_tensor(np.asarray(maps, np.float32) ** 2)[:, None], smooth_px)[:, 0].numpy()
    n, h, w = energy.shape
    out = np.full((n, 2), np.nan)
    for i in range(n):
        if not energy[i].max() > 0:  # argmax of a flat map would name the corner pixel
            continue
        y0, x0 = np.unravel_index(energy[i].argmax(), (h, w))
        ys = slice(max(0, y0 - window), min(h, y0 + window + 1))
        xs = slice(max(0, x0 - window), min(w, x0 + window + 1))
        e = energy[i, ys, xs]
        yy, xx = np.mgrid[ys, xs]
        tot = e.sum()
        out[i] = ((xx * e).sum() / tot, (yy * e).sum() / tot)
    return out


def most_exciting_inputs(units, shape: tuple[int, int], neurons, steps: int = 200, lr: float = 0.05,
                         norm: float | None = None, smooth_px: float = 1.0, mean: float | None = None,
                         seed: int = 0, n_seeds: int = 1, diversity: float = 0.0,
                         sign: float = 1.0, channels: int = 1,
                         bounds: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Most exciting input of each unit by regularised gradient ascent (Walker et al. 2019).

    Every step smooths the gradient with a Gaussian (``smooth_px``; the smoothness prior), takes a
    normalised step, and projects the contrast image ``x - mean`` back onto the L2 sphere (with
    ``bounds``: the ball, see below) of
    radius ``norm`` (default: that of a full-contrast training image, ``input_std * sqrt(C H W)``).
    With ``n_seeds > 1`` each unit gets that many starts, optimised together; ``diversity > 0`` adds
    the gradient of ``-diversity x`` the mean cosine similarity between a unit's images (so the
    seeds spread over different optima, Cadena et al. 2018). ``sign=-1`` minimises the response
    (most inhibiting inputs). All units and seeds run as one batch.

    ``channels > 1`` optimises an image in each of that many input channels (a colour MEI, the
    energy shared between channels as the unit prefers: :func:`channel_energy`); each channel is
    smoothed on its own.

    Returns images ``(n, H, W)`` and activations ``(n,)`` for one seed, ``(n, n_seeds, H, W)`` and
    ``(n, n_seeds)`` for several; with ``channels > 1`` the images have a channel axis before
    ``H, W``.

    ``bounds=(low, high)`` keeps the images ones the model can be shown (a spiking network's
    Poisson or latency encoder refuses values outside [0, 1]): each step projects the contrast
    onto the L2 *ball* of radius ``norm`` and then clips every pixel to the range (as
    neuralpredictors' ``ClipRange``), so the contrast is at most ``norm``.
    """
    if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
        raise ValueError(f"channels must be an integer >= 1, got {channels!r}")
    m, c = input_stats(units, mean, None)
    norm = float(norm if norm is not None else c * math.sqrt(channels * shape[0] * shape[1]))
    if bounds is not None and not bounds[0] <= m <= bounds[1]:
        raise ValueError(f"the grey level {m:.4g} lies outside bounds {tuple(bounds)}")
    device = _device(units)
    chosen = np.asarray(neurons).reshape(-1)
    n_units = len(chosen)
    index = torch.as_tensor(np.repeat(chosen, n_seeds), device=device)
    gen = torch.Generator().manual_seed(int(seed))
    x = (torch.randn(len(index), channels, *shape, generator=gen) * 0.1).to(device)
    rows = torch.arange(len(index), device=device)

    def project(z):
        flat = z.reshape(len(z), -1)
        length = flat.norm(dim=1, keepdim=True) + 1e-12
        if bounds is None:  # the sphere: every image has the contrast energy of a training image
            return (flat / length * norm).reshape_as(z)
        # the ball, then the pixel range: scaling up to the sphere after a clip would inflate what the
        # unit ignores (in a colour MEI, the channels it does not read)
        z = (flat * torch.clamp(norm / length, max=1.0)).reshape_as(z)
        return (z + m).clamp(*bounds) - m

    def unit_normalised(g):
        return g / (g.reshape(len(g), -1).norm(dim=1).view(-1, 1, 1, 1) + 1e-12)

    x = project(x)
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        act = units(x + m)[rows, index]
        (grad,) = torch.autograd.grad(sign * act.sum(), x)
        grad = unit_normalised(smooth(grad, smooth_px))
        if diversity > 0 and n_seeds > 1:
            z = x.reshape(n_units, n_seeds, -1)
            zn = z / (z.norm(dim=2, keepdim=True) + 1e-12)
            sim = zn @ zn.transpose(1, 2)
            off = sim.sum((1, 2)) - sim.diagonal(dim1=1, dim2=2).sum(1)
            (dgrad,) = torch.autograd.grad(-(off / (n_seeds * (n_seeds - 1))).sum(), x)
            grad = unit_normalised(grad + diversity * unit_normalised(smooth(dgrad, smooth_px)))
        x = project(x.detach() + lr * norm * grad)
    with torch.no_grad():
        act = units(x + m)[rows, index]
    images = ((x[:, 0] if channels == 1 else x) + m).detach().cpu().numpy()
    act_np = act.float().cpu().numpy()
    if n_seeds == 1:
        return images, act_np
    return images.reshape(n_units, n_seeds, *images.shape[1:]), act_np.reshape(n_units, n_seeds)


def most_inhibiting_inputs(units, shape: tuple[int, int], neurons, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """:func:`most_exciting_inputs` with ``sign=-1``: the inputs of fixed contrast energy (at most
    that energy with ``bounds``) that
    drive each unit lowest."""
    return most_exciting_inputs(units, shape, neurons, sign=-1.0, **kwargs)


def channel_tuning(units, shape: tuple[int, int], channels: int, mean: float | None = None,
                   contrast: float | None = None, n_orientations: int = 12,
                   spatial_frequencies=SPATIAL_FREQUENCIES, n_phases: int = 8) -> dict:
    """Which input channel drives each unit: the gratings of :func:`tuning_curves` (every
    orientation, spatial frequency and phase) shown in one channel at a time, the other channels
    held at the grey level (for a mouse's green and UV channels, its colour preference).

    Returns ``grey`` (n_units,): the response to the uniform grey image; ``peak_over_grey``
    (channels, n_units): in each channel, the largest response to any grating minus ``grey``;
    ``dominant_channel`` (n_units,): its argmax, -1 for a unit no channel drives above grey;
    ``preference_index`` (n_units,) for two channels: ``(p1 - p0) / (p0 + p1)`` with
    ``p = max(peak_over_grey, 0)``, from -1 (channel 0 alone) to 1 (channel 1 alone), NaN where
    neither drives it (None for other channel counts).
    """
    if not isinstance(channels, int) or isinstance(channels, bool) or channels < 2:
        raise ValueError(f"channel tuning needs an integer number of channels >= 2, got {channels!r}")
    m, c = input_stats(units, mean, contrast)
    ori = np.arange(n_orientations) * np.pi / n_orientations
    phases = np.arange(n_phases) * 2 * np.pi / n_phases
    stimuli = gratings(shape, ori, spatial_frequencies, phases, m, c).reshape(-1, *shape)
    grey = respond(units, torch.full((1, channels, *shape), m))[0].astype(np.float64)
    peaks = np.stack([respond(InChannel(units, ch, channels, m), stimuli).max(0) - grey for ch in range(channels)])
    driven = np.clip(peaks, 0, None)
    index = None
    if channels == 2:
        total = driven.sum(0)
        index = np.full(total.shape, np.nan)
        np.divide(driven[1] - driven[0], total, out=index, where=total > 0)
    return {"grey": grey, "peak_over_grey": peaks,
            "dominant_channel": np.where(driven.max(0) > 0, peaks.argmax(0), -1),
            "preference_index": index}


def channel_energy(images: np.ndarray, mean: float = 0.0) -> np.ndarray:
    """Share of each image's contrast energy ``sum (x - mean)^2`` in each channel: images
    ``(n, C, H, W)`` -> ``(n, C)``, rows summing to 1 (0 for an image with no contrast)."""
    energy = ((np.asarray(images, dtype=np.float64) - mean) ** 2).sum((-2, -1))
    total = energy.sum(-1, keepdims=True)
    return np.divide(energy, total, out=np.zeros_like(energy), where=total > 0)


__all__ = [
    "gratings", "tuning_curves", "gradient_maps", "reverse_correlation", "sparse_noise_map", "rf_centers",
    "most_exciting_inputs", "most_inhibiting_inputs", "channel_tuning", "channel_energy"
]
