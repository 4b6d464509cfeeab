"""The statistics of certification: Clopper-Pearson bounds, the randomized-smoothing radius and
the PixelDP robustness condition. Pure functions of counts and numbers (no torch)."""

from __future__ import annotations

import math

from scipy import stats

from ..config import is_real_number
from ..errors import ConfigError


def check_alpha(alpha: float) -> float:
    if not (is_real_number(alpha) and 0 < alpha < 1):
        raise ConfigError(f"alpha must lie in (0, 1), got {alpha!r}")
    return float(alpha)


def clopper_pearson_lower(successes: int, trials: int, alpha: float) -> float:
    """One-sided ``1 - alpha`` lower confidence bound on a binomial proportion (Clopper & Pearson
    1934): the ``alpha`` quantile of Beta(k, n - k + 1); 0 when ``k = 0``. Cohen et al. (2019)
    compute it as ``proportion_confint(k, n, alpha=2 * alpha, method="beta")[0]``."""
    alpha = check_alpha(alpha)
    if trials < 1 or not 0 <= successes <= trials:
        raise ConfigError(f"need 0 <= successes <= trials and trials >= 1, got {successes} of {trials}")
    if successes == 0:
        return 0.0
    return float(stats.beta.ppf(alpha, successes, trials - successes + 1))


def clopper_pearson_upper(successes: int, trials: int, alpha: float) -> float:
    """One-sided ``1 - alpha`` upper bound: the ``1 - alpha`` quantile of Beta(k + 1, n - k); 1 when ``k = n``."""
    alpha = check_alpha(alpha)
    if trials < 1 or not 0 <= successes <= trials:
        raise ConfigError(f"need 0 <= successes <= trials and trials >= 1, got {successes} of {trials}")
    if successes == trials:
        return 1.0
    return float(stats.beta.ppf(1 - alpha, successes + 1, trials - successes))


def smoothing_radius(p_lower: float, sigma: float) -> float:
    """Certified L2 radius of Gaussian randomized smoothing (Cohen et al. 2019, Theorem 1 with
    ``p_B = 1 - p_A``): ``sigma * Phi^-1(p_lower)``; 0 when ``p_lower <= 1/2`` (abstain)."""
    if p_lower <= 0.5:
        return 0.0
    return float(sigma * stats.norm.ppf(p_lower))


def gaussian_mechanism_epsilon(radius: float, sigma: float, sensitivity: float, delta: float) -> float:
    """The epsilon of the Gaussian mechanism (Dwork & Roth 2014, Theorem A.1) for noise of s.d.
    ``sigma`` on a function whose L2 sensitivity to an input change of size ``radius`` is
    ``sensitivity * radius``: ``eps = sensitivity * radius * sqrt(2 ln(1.25 / delta)) / sigma``
    (valid for ``eps <= 1``)."""
    return sensitivity * radius * math.sqrt(2 * math.log(1.25 / delta)) / sigma


def pixeldp_margin(p_lower: float, p_other_upper: float, epsilon: float, delta: float) -> float:
    """PixelDP's robustness condition (Lecuyer et al. 2019, Proposition 1) as a margin: robust
    when ``p_lower - exp(2 eps) * p_other_upper - (1 + exp(eps)) * delta > 0``."""
    return p_lower - math.exp(2 * epsilon) * p_other_upper - (1 + math.exp(epsilon)) * delta


def pixeldp_radius(p_lower: float, sigma: float, sensitivity: float, delta: float,
                   p_other_upper: float | None = None) -> float:
    """Largest L2 radius PixelDP certifies: the largest ``eps <= 1`` meeting
    :func:`pixeldp_margin` (by bisection; the margin falls as ``eps`` grows), turned into a radius
    by inverting :func:`gaussian_mechanism_epsilon`. 0 when no ``eps > 0`` meets it.

    ``p_other_upper`` defaults to ``1 - p_lower`` (the other classes share what is left)."""
    other = 1.0 - p_lower if p_other_upper is None else p_other_upper
    if pixeldp_margin(p_lower, other, 0.0, delta) <= 0:
        return 0.0
    if pixeldp_margin(p_lower, other, 1.0, delta) > 0:
        epsilon = 1.0  # the Gaussian mechanism's analysis holds up to eps = 1
    else:
        lo, hi = 0.0, 1.0
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if pixeldp_margin(p_lower, other, mid, delta) > 0 else (lo, mid)
        epsilon = lo
    return epsilon * sigma / (sensitivity * math.sqrt(2 * math.log(1.25 / delta)))
