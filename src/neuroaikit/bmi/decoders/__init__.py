"""Decoders: scikit-learn compatible pipelines by name, and their differentiable twins.

``make_decoder(name, dataset)`` builds an unfitted pipeline for an
:class:`~neuroaikit.bmi.EpochsDataset` (it reads the sampling rate and, for SSVEP, the
class frequencies from it). Names:

======================  ==========================================================
``csp_lda``             MNE CSP (6 filters, log power) + LDA
``fbcsp_lda``           filter-bank CSP (9 bands 4-40 Hz, 4 filters each) + shrinkage LDA
``ts_lr``               OAS covariances + tangent space + logistic regression (pyriemann)
``mdm``                 OAS covariances + minimum distance to mean (pyriemann)
``xdawn_ts_lr``         xDAWN covariances + tangent space + LR (P300)
``cca``                 CCA against sine/cosine references (3 harmonics)
``fbcca``               filter-bank CCA (Chen et al. 2015)
``trca``                ensemble TRCA (Nakanishi et al. 2018)
``eegnet``              EEGNet-8,2 (Lawhern et al. 2018), trained through the execution layer
``shallow``             ShallowConvNet (Schirrmeister et al. 2017)
======================  ==========================================================
"""

from __future__ import annotations

from typing import Any, Callable

from ...errors import ConfigError
from .deep import ARCHITECTURES, DeepDecoder, EEGNet, ShallowConvNet
from .differentiable import DecoderTwin, as_torch, covariance
from .spatial import FilterBankCSP, csp_lda, csp_rank, fbcsp_lda, mdm, ts_lr, xdawn_ts_lr
from .ssvep import CCA, FBCCA, TRCA, band_operator, canonical_correlation, reference_signals

SSVEP_ONLY = ("cca", "fbcca", "trca")
DEEP = ("eegnet", "shallow")
DECODERS = ("csp_lda", "fbcsp_lda", "ts_lr", "mdm", "xdawn_ts_lr", *SSVEP_ONLY, *DEEP)
#: decoders whose predictions are random (noise layers): attacked with EOT
STOCHASTIC_WHEN_NOISY = DEEP

__all__ = [
    "DECODERS", "SSVEP_ONLY", "DEEP", "make_decoder", "as_torch", "DecoderTwin", "covariance",
    "CCA", "FBCCA", "TRCA", "FilterBankCSP", "DeepDecoder", "EEGNet", "ShallowConvNet", "ARCHITECTURES",
    "csp_lda", "csp_rank", "fbcsp_lda", "ts_lr", "mdm", "xdawn_ts_lr", "band_operator", "canonical_correlation",
    "reference_signals",
]


def make_decoder(name: str, dataset, **options: Any):
    """An unfitted decoder called ``name`` for ``dataset``; ``options`` go to its builder
    (e.g. ``epochs=50`` or ``noise={...}`` for the deep ones, ``execution`` for their device)."""
    if name not in DECODERS:
        raise ConfigError(f"unknown decoder {name!r}; choose from {', '.join(DECODERS)}")
    sfreq = float(dataset.sfreq)
    if name in SSVEP_ONLY:
        frequencies = dataset.info.get("frequencies")
        if not frequencies:
            raise ConfigError(f"{name} decodes SSVEP: the data set must give each class a stimulation frequency")
        freqs = [frequencies.get(c) for c in dataset.classes]
        cls = {"cca": CCA, "fbcca": FBCCA, "trca": TRCA}[name]
        return cls(frequencies=freqs, sfreq=sfreq, **options)
    if name in DEEP:
        return DeepDecoder(architecture=name, sfreq=sfreq, **options)
    if name in ("csp_lda", "fbcsp_lda"):
        options.setdefault("rank", csp_rank(dataset.X))
    builders: dict[str, Callable[..., Any]] = {"csp_lda": csp_lda, "fbcsp_lda": lambda **o: fbcsp_lda(sfreq, **o), "ts_lr": ts_lr, "mdm": mdm,
                "xdawn_ts_lr": xdawn_ts_lr}
    return builders[name](**options)
