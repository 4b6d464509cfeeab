"""A fitted decoder as a differentiable torch module (its "twin") for white-box attacks.

The twin computes the same class scores as the fitted pipeline, from epochs in uV
``(B, channels, samples)``: CSP filters and log band power, LDA and logistic-regression
readouts, OAS/SCM covariances, the tangent-space map at the pipeline's reference point and
MDM's Riemannian distances (``-d^2`` as logits). A test checks, per decoder, that the twin's
argmax equals ``pipeline.predict`` on real epochs. Binary readouts give logits ``[-d/2, d/2]``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...errors import ConfigError


def _f64(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=torch.float64)


def covariance(x: torch.Tensor, estimator: str) -> torch.Tensor:
    """``scm`` (1/T, centred, as pyriemann) or ``oas`` (scikit-learn's OAS formula) per trial."""
    xc = x - x.mean(-1, keepdim=True)
    n, p = x.shape[-1], x.shape[-2]
    emp = xc @ xc.transpose(-1, -2) / n
    if estimator == "scm":
        return emp
    if estimator != "oas":
        raise ConfigError(f"no differentiable {estimator!r} covariance; use oas or scm")
    mu = torch.diagonal(emp, dim1=-2, dim2=-1).sum(-1) / p
    alpha = (emp ** 2).mean((-2, -1))
    num = alpha + mu ** 2
    den = (n + 1) * (alpha - mu ** 2 / p)
    shrinkage = torch.where(den == 0, torch.ones_like(den), torch.clamp(num / den, max=1.0))
    eye = torch.eye(p, dtype=x.dtype, device=x.device)
    return (1 - shrinkage)[..., None, None] * emp + (shrinkage * mu)[..., None, None] * eye


def _sym_fn(c: torch.Tensor, fn) -> torch.Tensor:
    w, v = torch.linalg.eigh(c)
    return v @ torch.diag_embed(fn(w)) @ v.transpose(-1, -2)


def _inv_sqrt(c: np.ndarray) -> torch.Tensor:
    w, v = np.linalg.eigh(c)
    return _f64(v @ np.diag(w ** -0.5) @ v.T)


class _Linear(nn.Module):
    def __init__(self, coef, intercept):
        super().__init__()
        self.register_buffer("coef", _f64(np.atleast_2d(coef)))
        self.register_buffer("intercept", _f64(np.atleast_1d(intercept)))

    def forward(self, f):
        d = f @ self.coef.T + self.intercept
        return torch.cat([-d / 2, d / 2], 1) if d.shape[1] == 1 else d


class _CSP(nn.Module):
    def __init__(self, csp):
        super().__init__()
        if getattr(csp, "transform_into", "average_power") != "average_power" or csp.log is False:
            raise ConfigError("the CSP twin needs transform_into='average_power' with log features")
        self.register_buffer("filters", _f64(csp.filters_[: csp.n_components]))

    def forward(self, x):
        return torch.log(((self.filters @ x) ** 2).mean(-1))


class _FilterBankCSP(nn.Module):
    def __init__(self, step):
        super().__init__()
        self.step = step

    def forward(self, x):
        return self.step.torch_transform(x)


class _Covariances(nn.Module):
    def __init__(self, step):
        super().__init__()
        self.estimator = step.estimator

    def forward(self, x):
        return covariance(x, self.estimator)


class _TangentSpace(nn.Module):
    def __init__(self, step):
        super().__init__()
        if step.metric not in ("riemann", None) and getattr(step, "metric_mean", "riemann") != "riemann":
            raise ConfigError("the tangent-space twin supports the Riemannian metric only")
        self.register_buffer("whiten", _inv_sqrt(step.reference_))

    def forward(self, c):
        s = self.whiten @ c @ self.whiten
        log = _sym_fn(s, torch.log)
        n = log.shape[-1]
        iu = torch.triu_indices(n, n)
        weight = torch.where(iu[0] == iu[1], 1.0, 2 ** 0.5).to(log.dtype)
        return log[..., iu[0], iu[1]] * weight


class _MDM(nn.Module):
    whitens: torch.Tensor

    def __init__(self, step):
        super().__init__()
        self.register_buffer("whitens", torch.stack([_inv_sqrt(m) for m in step.covmeans_]))

    def forward(self, c):
        s = self.whitens[None] @ c[:, None] @ self.whitens[None]
        eig = torch.linalg.eigvalsh(s)
        return -(torch.log(eig) ** 2).sum(-1)


class _Scores(nn.Module):
    """Decoders that compute their own differentiable logits (SSVEP, deep)."""

    def __init__(self, decoder):
        super().__init__()
        self.decoder = decoder
        if isinstance(getattr(decoder, "module_", None), nn.Module):
            self.net = decoder.module_  # registered, so noise layers are found by the attacks

    def forward(self, x):
        return self.decoder.logits(x)


def _step_twin(step) -> nn.Module:
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.linear_model import LogisticRegression

    name = type(step).__name__
    if hasattr(step, "logits"):
        return _Scores(step)
    if name == "CSP":
        return _CSP(step)
    if name == "FilterBankCSP":
        return _FilterBankCSP(step)
    if name == "Covariances":
        return _Covariances(step)
    if name == "TangentSpace":
        return _TangentSpace(step)
    if name == "MDM":
        return _MDM(step)
    if isinstance(step, (LinearDiscriminantAnalysis, LogisticRegression)):
        return _Linear(step.coef_, step.intercept_)
    raise ConfigError(f"no differentiable twin for the pipeline step {name}")


class DecoderTwin(nn.Module):
    """A fitted pipeline's steps as one module; float64 inside, logits ``(B, K)`` out, float32
    (float64 for a float64 input, so ``torch.autograd.gradcheck`` can run on it)."""

    def __init__(self, pipeline):
        super().__init__()
        steps = [s for _, s in pipeline.steps] if hasattr(pipeline, "steps") else [pipeline]
        self.steps = nn.ModuleList(_step_twin(s) for s in steps)

    def forward(self, x):
        out = x.to(torch.float64)
        for step in self.steps:
            out = step(out)
        return out if x.dtype == torch.float64 else out.to(torch.float32)


def as_torch(pipeline) -> DecoderTwin:
    """The differentiable twin of a fitted decoder (see the module docstring)."""
    return DecoderTwin(pipeline).eval()
