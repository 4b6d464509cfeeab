"""In-silico experiments on a fitted twin: tuning, receptive fields, most exciting inputs.

The model is any callable ``model(images) -> (B, n_neurons)`` (a :class:`CortexTwin`
in eval mode); images are (B, 1, H, W) in the units of the training stimuli, so
``mean`` and ``contrast`` below are in those units too (default: the twin's input
statistics).

- :func:`gratings` / :func:`tuning_curves`: static sine gratings over orientations,
  spatial frequencies and phases; responses are averaged over phase; preferred
  orientation and an orientation selectivity index (1 - circular variance) per neuron.
- :func:`gradient_maps`: d response / d pixel at the mean grey image (one backward pass
  per chunk of neurons).
- :func:`reverse_correlation`: spike-triggered average of white-noise images.
- :func:`rf_centers`: (x, y) centre of each map: peak of the Gaussian-smoothed map energy,
  refined by the centre of mass of the energy around it.
- :func:`most_exciting_inputs`: gradient ascent on each neuron's response with a fixed
  L2 norm of the contrast image and Gaussian smoothing of every step (smoothness prior).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def _stats(model, mean: float | None, contrast: float | None) -> tuple[float, float]:
    m = float(model.input_mean) if mean is None and hasattr(model, "input_mean") else (mean or 0.0)
    c = float(model.input_std) if contrast is None and hasattr(model, "input_std") else (contrast or 1.0)
    return m, c


def gratings(shape: tuple[int, int], orientations, spatial_frequencies, phases, mean: float = 0.0, contrast: float = 1.0) -> np.ndarray:
    """Sine gratings (n_ori, n_sf, n_phase, H, W): ``mean + contrast * sin(2 pi f u + phase)``,
    ``u`` the coordinate along orientation ``theta`` (radians), ``f`` in cycles / pixel."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.empty((len(orientations), len(spatial_frequencies), len(phases), h, w), np.float32)
    for i, th in enumerate(orientations):
        u = xx * np.cos(th) + yy * np.sin(th)
        for j, f in enumerate(spatial_frequencies):
            for k, ph in enumerate(phases):
                out[i, j, k] = mean + contrast * np.sin(2 * np.pi * f * u + ph)
    return out


def _device(model) -> torch.device:
    return next((p.device for p in getattr(model, "parameters", lambda: iter(()))()), torch.device("cpu"))


@torch.no_grad()
def _respond(model, images: np.ndarray, batch: int = 256) -> np.ndarray:
    x = torch.as_tensor(images, dtype=torch.float32)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    device = _device(model)
    return torch.cat([model(x[i : i + batch].to(device)).float().cpu() for i in range(0, len(x), batch)]).numpy()


def tuning_curves(
    model,
    shape: tuple[int, int],
    n_orientations: int = 12,
    spatial_frequencies=(0.02, 0.04, 0.08, 0.12, 0.16, 0.24),
    n_phases: int = 8,
    mean: float | None = None,
    contrast: float | None = None,
) -> dict:
    """Orientation x spatial-frequency tuning from gratings. Returns ``responses``
    (n_ori, n_sf, n_neurons, phase-averaged), ``orientations`` (rad), ``spatial_frequencies``,
    ``preferred_orientation`` and ``preferred_sf`` per neuron, ``osi`` (1 - circular variance
    at the preferred spatial frequency)."""
    m, c = _stats(model, mean, contrast)
    ori = np.arange(n_orientations) * np.pi / n_orientations
    phases = np.arange(n_phases) * 2 * np.pi / n_phases
    g = gratings(shape, ori, spatial_frequencies, phases, m, c)
    resp = _respond(model, g.reshape(-1, *shape)).reshape(len(ori), len(spatial_frequencies), n_phases, -1).mean(2)
    best_sf = resp.max(0).argmax(0)  # (n_neurons,)
    at_sf = resp[:, best_sf, np.arange(resp.shape[-1])]  # (n_ori, n_neurons)
    vec = (at_sf * np.exp(2j * ori)[:, None]).sum(0) / (at_sf.sum(0) + 1e-12)
    return {
        "orientations": ori,
        "spatial_frequencies": np.asarray(spatial_frequencies),
        "responses": resp,
        "preferred_orientation": (np.angle(vec) / 2) % np.pi,
        "preferred_sf": np.asarray(spatial_frequencies)[best_sf],
        "osi": np.abs(vec),
    }


def gradient_maps(model, shape: tuple[int, int], neurons=None, mean: float | None = None, chunk: int = 64) -> np.ndarray:
    """d response_n / d image at a uniform grey image, (n_selected, H, W)."""
    m, _ = _stats(model, mean, None)
    device = _device(model)
    with torch.no_grad():
        n_total = model(torch.full((1, 1, *shape), m, device=device)).shape[1]
    neurons = np.arange(n_total) if neurons is None else np.asarray(neurons)
    out = []
    for start in range(0, len(neurons), chunk):
        idx = torch.as_tensor(neurons[start : start + chunk], device=device)
        x = torch.full((len(idx), 1, *shape), m, requires_grad=True, device=device)
        y = model(x)
        (grad,) = torch.autograd.grad(y[torch.arange(len(idx), device=device), idx].sum(), x)
        out.append(grad[:, 0].cpu().numpy().copy())
    return np.concatenate(out)


def reverse_correlation(model, shape: tuple[int, int], n_images: int = 4000, neurons=None, seed: int = 0, mean=None, contrast=None, batch: int = 256) -> np.ndarray:
    """Spike-triggered average of Gaussian white noise: ``sum_t r_t x_t / sum_t r_t`` minus
    the noise mean, (n_selected, H, W)."""
    m, c = _stats(model, mean, contrast)
    rng = np.random.default_rng(seed)
    acc = None
    total = None
    for start in range(0, n_images, batch):
        k = min(batch, n_images - start)
        noise = rng.normal(0, 1, (k, 1, *shape)).astype(np.float32)
        r = _respond(model, m + c * noise)
        if neurons is not None:
            r = r[:, neurons]
        part = r.T @ noise.reshape(k, -1)
        acc = part if acc is None else acc + part
        total = r.sum(0) if total is None else total + r.sum(0)
    return (acc / (total[:, None] + 1e-12)).reshape(-1, *shape)


def _gauss_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def _smooth(x: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma <= 0:
        return x
    k = _gauss_kernel(sigma).to(x.device)
    pad = k.shape[-1] // 2
    return F.conv2d(F.pad(x, (pad, pad, pad, pad), mode="replicate"), k)


def rf_centers(maps: np.ndarray, smooth: float = 1.5, window: int = 3) -> np.ndarray:
    """(x, y) centre per map (n, H, W): argmax of the smoothed energy, refined by the centre of
    mass of the energy in a (2*window+1)^2 box around it."""
    energy = _smooth(torch.as_tensor(np.asarray(maps, np.float32) ** 2)[:, None], smooth)[:, 0].numpy()
    n, h, w = energy.shape
    out = np.empty((n, 2))
    for i in range(n):
        y0, x0 = np.unravel_index(energy[i].argmax(), (h, w))
        ys, xs = slice(max(0, y0 - window), min(h, y0 + window + 1)), slice(max(0, x0 - window), min(w, x0 + window + 1))
        e = energy[i, ys, xs]
        yy, xx = np.mgrid[ys, xs]
        tot = e.sum() + 1e-20
        out[i] = ((xx * e).sum() / tot, (yy * e).sum() / tot)
    return out


def most_exciting_inputs(
    model,
    shape: tuple[int, int],
    neurons,
    steps: int = 200,
    lr: float = 0.05,
    norm: float | None = None,
    smooth: float = 1.0,
    mean: float | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Most exciting input of each neuron by regularised gradient ascent.

    Each step smooths the gradient with a Gaussian (``smooth`` px; the smoothness prior),
    takes a normalised step, and projects the contrast image ``x - mean`` back onto the L2
    sphere of radius ``norm`` (default: that of a typical training image, ``input_std * sqrt(H W)``).
    Returns (MEIs (n, H, W), activations (n,)).
    """
    m, c = _stats(model, mean, None)
    norm = float(norm if norm is not None else c * math.sqrt(shape[0] * shape[1]))
    device = _device(model)
    neurons = torch.as_tensor(np.asarray(neurons), device=device)
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(len(neurons), 1, *shape, generator=gen) * 0.1).to(device)
    rows = torch.arange(len(neurons), device=device)

    def project(z):
        flat = z.reshape(len(z), -1)
        return (flat / (flat.norm(dim=1, keepdim=True) + 1e-12) * norm).reshape_as(z)

    x = project(x)
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        act = model(x + m)[rows, neurons]
        (grad,) = torch.autograd.grad(act.sum(), x)
        grad = _smooth(grad, smooth)
        grad = grad / (grad.reshape(len(x), -1).norm(dim=1).view(-1, 1, 1, 1) + 1e-12)
        x = project(x.detach() + lr * norm * grad)
    with torch.no_grad():
        act = model(x + m)[rows, neurons]
    return (x[:, 0] + m).cpu().numpy(), act.float().cpu().numpy()
