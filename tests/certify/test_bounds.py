"""The statistics of certification against direct scipy computations."""

from __future__ import annotations

import math

import pytest
from scipy import optimize, stats

from neuroaikit.certify import (clopper_pearson_lower, clopper_pearson_upper, gaussian_mechanism_epsilon,
                                pixeldp_margin, pixeldp_radius, smoothing_radius)
from neuroaikit.errors import ConfigError

CASES = [(990, 1000, 0.001), (100, 100, 0.001), (5100, 10000, 0.01), (1, 7, 0.05), (99995, 100000, 0.001)]


@pytest.mark.parametrize("k,n,alpha", CASES)
def test_clopper_pearson_equals_scipy_exact_interval(k, n, alpha):
    lower = clopper_pearson_lower(k, n, alpha)
    # the two-sided exact interval at level 1 - 2 alpha has the one-sided bound as its lower end
    direct = stats.binomtest(k, n).proportion_ci(confidence_level=1 - 2 * alpha, method="exact").low
    assert lower == pytest.approx(direct, rel=1e-9, abs=1e-12)
    # and it is the p at which k or more successes have probability alpha
    assert stats.binom.sf(k - 1, n, lower) == pytest.approx(alpha, rel=1e-6)
    upper = clopper_pearson_upper(k, n, alpha)
    direct_upper = stats.binomtest(k, n).proportion_ci(confidence_level=1 - 2 * alpha, method="exact").high
    assert upper == pytest.approx(direct_upper, rel=1e-9, abs=1e-12)


def test_edges_of_the_bounds():
    assert clopper_pearson_lower(0, 10, 0.01) == 0.0 and clopper_pearson_upper(10, 10, 0.01) == 1.0
    assert clopper_pearson_lower(10, 10, 0.01) == pytest.approx(0.01 ** (1 / 10))  # closed form at k = n


@pytest.mark.parametrize("p,sigma", [(0.99, 0.25), (0.7, 0.5), (0.999, 1.0), (0.5, 0.25), (0.3, 0.5)])
def test_smoothing_radius_is_cohen_theorem_1(p, sigma):
    # Theorem 1: sigma / 2 * (Phi^-1(p_A) - Phi^-1(p_B)) with p_B = 1 - p_A
    direct = sigma / 2 * (stats.norm.ppf(p) - stats.norm.ppf(1 - p))
    assert smoothing_radius(p, sigma) == pytest.approx(max(direct, 0.0), abs=1e-12)


@pytest.mark.parametrize("p,sigma,sens,delta", [(0.95, 1.0, 2.0, 0.05), (0.8, 0.5, 1.0, 0.01), (0.999, 2.0, 3.0, 1e-3)])
def test_pixeldp_radius_solves_the_robustness_condition(p, sigma, sens, delta):
    radius = pixeldp_radius(p, sigma, sens, delta)
    eps = gaussian_mechanism_epsilon(radius, sigma, sens, delta)
    if eps < 1 - 1e-9:  # the condition is met with equality at the largest certified radius
        root = optimize.brentq(lambda e: pixeldp_margin(p, 1 - p, e, delta), 0, 1)
        assert eps == pytest.approx(root, rel=1e-7)
        expected = root * sigma / (sens * math.sqrt(2 * math.log(1.25 / delta)))
        assert radius == pytest.approx(expected, rel=1e-7)
    assert pixeldp_margin(p, 1 - p, eps, delta) >= -1e-9
    assert pixeldp_radius(0.5, sigma, sens, delta) == 0.0


@pytest.mark.parametrize("p,delta", [(0.8, 0.05), (0.95, 0.05), (0.7, 0.01), (0.6, 0.05), (0.999, 0.001),
                                     (0.56, 0.05), (0.52, 0.05)])
@pytest.mark.parametrize("sigma,sens", [(1.0, 1.0), (0.5, 3.0)])
def test_pixeldp_radius_equals_the_closed_form_of_proposition_1(p, delta, sigma, sens):
    """Independent of :func:`pixeldp_margin`: with ``p_B = 1 - p`` and ``u = e^eps``, Proposition 1's
    ``p - u^2 (1 - p) - (1 + u) delta = 0`` is ``(1 - p) u^2 + delta u + (delta - p) = 0``; its positive
    root gives the largest eps (capped at 1, the Gaussian mechanism's range), and no root above 1 means
    no eps > 0 (radius 0)."""
    u = (-delta + math.sqrt(delta * delta - 4 * (1 - p) * (delta - p))) / (2 * (1 - p))
    eps = min(math.log(u), 1.0) if u > 1 else 0.0
    expected = eps * sigma / (sens * math.sqrt(2 * math.log(1.25 / delta)))
    assert pixeldp_radius(p, sigma, sens, delta) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_bad_alpha():
    for alpha in (0, 1, -0.1, 1.5):
        with pytest.raises(ConfigError, match="alpha must lie in"):
            clopper_pearson_lower(5, 10, alpha)
