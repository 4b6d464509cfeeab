"""Certify a model, or the model of a run folder (``neuroaikit certify RUN``).

:func:`certify` returns a :class:`~neuroaikit.certify.Certificate` for images and labels;
:func:`certify_run` loads a run's model and test split through the execution layer (any
device), certifies it and adds the certificate to ``results/certification.json``.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..execution import Execution, ExecutionConfig, refuse_torchrun
from ..progress import Progress, default_progress, silent
from .bounds import clopper_pearson_lower
from .certifier import ABSTAIN, Certifier
from .config import CertificationConfig
from .hidden import HiddenNoiseCertifier
from .results import Certificate, CertificationResult, CurvePoint
from .smoothing import GaussianSmoothing

#: radii of the tables of Cohen et al. (2019), where the curve is always read when reached
PAPER_RADII = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0)


def build_certifier(model: nn.Module, config: CertificationConfig, input_shape: tuple[int, ...]) -> Certifier:
    """The certifier ``config`` asks for; every one-line error about the model comes from here."""
    if config.method == "smoothing":
        return GaussianSmoothing(model, config.sigma, max_rows=config.max_rows, precision=config.precision,
                                 compile=config.compile)
    certifier = HiddenNoiseCertifier(model, input_shape, site=config.layer, delta=config.delta,
                                     max_rows=config.max_rows)
    if config.sigma is not None and abs(config.sigma - certifier.sigma) > 1e-9:
        raise ConfigError(f"sigma {config.sigma:g} differs from the noise at {certifier.site!r} "
                          f"(sigma {certifier.sigma:g}); the hidden method certifies the noise the model has")
    return certifier


def curve_radii(radii: list[float]) -> list[float]:
    """0 to the largest radius certified in 20 equal steps, plus :data:`PAPER_RADII` up to it."""
    top = max(max(radii, default=0.0), 0.0)
    steps = np.round(np.linspace(0.0, top, 21), 4)
    if steps[-1] > top:  # rounded up past the largest radius, where certified accuracy is 0: round down
        steps[-1] = np.floor(top * 1e4) / 1e4
    grid = set(steps.tolist()) if top > 0 else {0.0}
    return sorted(grid | {r for r in PAPER_RADII if r <= top})


def certify(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, config: CertificationConfig | None = None,
            progress: Progress | None = None) -> Certificate:
    """Certify the first ``config.n_examples`` images (``(N, C, H, W)``, labels ``(N,)``).

    Returns a :class:`Certificate`: per-image predictions (``-1`` = abstain) and certified L2
    radii, the certified-accuracy curve, the abstention rate and timing.
    """
    config = config or CertificationConfig()
    progress = progress or silent()
    if images.dim() != 4 or labels.dim() != 1 or images.shape[0] != labels.shape[0]:
        raise ConfigError(f"need images (N, C, H, W) and one label each; got {tuple(images.shape)} and "
                          f"{tuple(labels.shape)}")
    if images.shape[0] == 0:
        raise ConfigError("no images to certify (the image set is empty)")
    certifier = build_certifier(model, config, tuple(images.shape[1:]))
    progress.note_if_fewer(config.n_examples, images.shape[0], "images to certify")
    n = min(config.n_examples, images.shape[0])
    x, y = images[:n].float(), labels[:n].long()
    warned = []
    for level, line in certifier.check_randomness(x[:16]):  # said once, before the draws, as evaluate says it
        progress.message(("warning: " if level >= logging.WARNING else "") + line)
        if level >= logging.WARNING:
            warned.append(line)
    torch.manual_seed(config.seed)
    started = time.time()
    predictions, radii = [], []
    with progress.task(f"certify ({certifier.name}, n={config.n})", total=n, unit="images") as task:
        for start in range(0, n, config.batch_size):
            xb = x[start : start + config.batch_size]
            pred, rad, _ = certifier.certify(xb, config.n0, config.n, config.alpha, batch_size=xb.shape[0])
            predictions += pred.tolist()
            radii += rad.tolist()
            task.update(xb.shape[0])
    seconds = time.time() - started
    labels_list = y.tolist()
    max_radius = certifier.radius(clopper_pearson_lower(config.n, config.n, config.alpha))
    certificate = Certificate(
        method=certifier.name, site=getattr(certifier, "site", "input"), sigma=certifier.sigma, norm="L2",
        n0=config.n0, n=config.n, alpha=config.alpha, n_examples=n, curve=[], max_radius=max_radius,
        abstain_fraction=sum(p == ABSTAIN for p in predictions) / n, smoothed_accuracy=0.0,
        delta=config.delta if config.method == "hidden" else None,
        sensitivity=getattr(certifier, "sensitivity", 1.0), layer_bounds=list(getattr(certifier, "bounds", [])),
        seconds=round(seconds, 2), images_per_second=round(n / max(seconds, 1e-9), 3), precision=config.precision,
        compiled=config.compile, labels=labels_list, predictions=predictions, radii=radii, warnings=warned,
    )
    grid = config.radii if config.radii is not None else curve_radii(radii)
    certificate.curve = [CurvePoint(r, certificate.certified_accuracy(r)) for r in grid]
    certificate.smoothed_accuracy = certificate.certified_accuracy(0.0)
    return certificate


def certify_run(run_dir, data_dir=None, config: CertificationConfig | None = None, split: str = "test",
                overwrite: bool = False, execution: ExecutionConfig | None = None,
                progress: Progress | None = None) -> Certificate:
    """Certify the model of a run folder on its dataset's ``split`` and add the certificate to
    ``results/certification.json`` (one per method, site and sigma; an existing one is replaced
    only with ``overwrite``). Everything is validated before the first draw."""
    from ..data import load_dataset
    from ..runs import Run

    progress = default_progress(progress)
    config = config or CertificationConfig()
    run = Run.open(run_dir)
    dataset = run.model_dataset()
    stored = CertificationResult.load(run) or CertificationResult()
    run.check_result_writable(CertificationResult.result_name, overwrite=True)
    data = load_dataset(dataset, split=split, data_dir=data_dir or run.config.get("data_dir"))
    refuse_torchrun("certify", "its Monte-Carlo draws are batched on one device: use --device cuda for a GPU")
    with Execution(execution) as ex:
        model = run.load_model(map_location=ex.device)
        probe = build_certifier(model, config, tuple(data.images.shape[1:]))
        key = (probe.name, getattr(probe, "site", "input"), round(probe.sigma, 10))
        if stored.find(key) is not None and not overwrite:
            raise ConfigError(f"{run.path / 'results' / 'certification.json'} already holds {key[0]} at {key[1]}, "
                              f"sigma {probe.sigma:g}; pass --overwrite to replace it")
        certificate = certify(model, data.images, data.labels, config, progress=progress)
        certificate.execution = ex.describe()
    certificate.dataset, certificate.split = dataset, split
    with run.results_lock():  # certify jobs of other sigmas may have added theirs meanwhile: merge with the file as it is now
        latest = CertificationResult.load(run) or CertificationResult()
        if latest.find(key) is not None and stored.find(key) is None and not overwrite:
            merged = CertificationResult(certificates=[certificate])
            raise run.keep_aside(CertificationResult.result_name, merged.to_dict(),
                                 f"gained {key[0]} at {key[1]}, sigma {probe.sigma:g} from another job while this one ran")
        latest.put(certificate)
        latest.save(run)
    run.log(f"certify: {certificate.label()}: certified accuracy {certificate.smoothed_accuracy:.4f} at radius 0, "
            + ", ".join(f"{p.certified_accuracy:.3f} at {p.radius:g}" for p in certificate.curve
                        if p.radius in PAPER_RADII[:4]))
    return certificate
