"""CKA against closed-form formulas, and its invariances."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroaikit.alignment import cka


def _centre(x):
    return x - x.mean(0)


def _hsic_closed_form(k, l):
    n = len(k)
    h = np.eye(n) - np.ones((n, n)) / n
    return np.trace(k @ h @ l @ h) / (n - 1) ** 2


def _unbiased_hsic_loops(k, l):
    """Song et al. (2012) eq. 5 written term by term."""
    n = len(k)
    kt, lt = k.copy(), l.copy()
    np.fill_diagonal(kt, 0)
    np.fill_diagonal(lt, 0)
    one = np.ones(n)
    term = np.trace(kt @ lt) + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2)) - 2 / (n - 2) * one @ kt @ lt @ one
    return term / (n * (n - 3))


@pytest.fixture
def xy(rng):
    x = rng.normal(size=(40, 30))
    y = x @ rng.normal(size=(30, 20)) + rng.normal(size=(40, 20))
    return x, y


def test_linear_cka_closed_form(xy):
    x, y = map(_centre, xy)
    expected = np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))
    assert abs(float(cka(*xy)) - expected) < 1e-10
    wide = np.hstack([xy[0]] * 3)  # more units than stimuli: the Gram-matrix path
    xw = _centre(wide)
    expected_w = np.linalg.norm(y.T @ xw) ** 2 / (np.linalg.norm(xw.T @ xw) * np.linalg.norm(y.T @ y))
    assert abs(float(cka(wide, xy[1])) - expected_w) < 1e-10


def test_rbf_cka_closed_form(xy):
    x, y = xy

    def gram(a, frac=0.5):
        d2 = ((a[:, None] - a[None]) ** 2).sum(-1)
        sigma = frac * np.sqrt(np.median(d2[~np.eye(len(a), dtype=bool)]))
        return np.exp(-d2 / (2 * sigma**2))

    k, l = gram(x), gram(y)
    expected = _hsic_closed_form(k, l) / np.sqrt(_hsic_closed_form(k, k) * _hsic_closed_form(l, l))
    assert abs(float(cka(x, y, kernel="rbf")) - expected) < 1e-10


def test_debiased_cka_closed_form(xy):
    x, y = xy
    k, l = x @ x.T, y @ y.T
    expected = _unbiased_hsic_loops(k, l) / np.sqrt(_unbiased_hsic_loops(k, k) * _unbiased_hsic_loops(l, l))
    assert abs(float(cka(x, y, debiased=True)) - expected) < 1e-10


def test_debiased_cka_removes_small_sample_inflation(rng):
    """Independent random representations with many units: biased CKA is large, debiased ~0."""
    x, y = rng.normal(size=(30, 2000)), rng.normal(size=(30, 2000))
    assert float(cka(x, y)) > 0.5
    assert abs(float(cka(x, y, debiased=True))) < 0.1


@pytest.mark.parametrize("kernel, debiased", [("linear", False), ("linear", True), ("rbf", False), ("rbf", True)])
def test_invariant_to_orthogonal_transform_and_isotropic_scaling(xy, kernel, debiased):
    x, y = xy
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(30, 30)))
    base = float(cka(x, y, kernel=kernel, debiased=debiased))
    assert abs(float(cka(x @ q, y, kernel=kernel, debiased=debiased)) - base) < 1e-10
    assert abs(float(cka(3.7 * x, 0.2 * y, kernel=kernel, debiased=debiased)) - base) < 1e-10


def test_not_invariant_to_arbitrary_linear_maps(xy):
    x, y = xy
    stretch = np.diag(np.linspace(0.1, 10, 30))
    assert abs(float(cka(x @ stretch, y)) - float(cka(x, y))) > 1e-3


def test_self_similarity_is_one(xy):
    for kernel in ("linear", "rbf"):
        for debiased in (False, True):
            assert abs(float(cka(xy[0], xy[0], kernel=kernel, debiased=debiased)) - 1) < 1e-12


def test_batched_and_differentiable(xy):
    x = torch.tensor(np.stack([xy[0], 2 * xy[0]]), requires_grad=True)
    y = torch.tensor(np.stack([xy[1], xy[1]]))
    out = cka(x, y)
    assert out.shape == (2,) and abs(float(out[0] - out[1])) < 1e-12
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
