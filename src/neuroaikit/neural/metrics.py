"""Sensorium / neuralpredictors metrics, one function per metric.

All functions work per neuron and return an array of shape (n_neurons,) unless said
otherwise; average over neurons yourself (``np.mean``) or use :func:`evaluate_predictions`,
which reports every metric the way the Sensorium benchmark does.

Conventions (sinzlab/sensorium, sinzlab/neuralpredictors):

- responses (and predictions) are divided by each neuron's std over the train tier
  before scoring (:func:`standardize`); correlations and FEV do not change under this
  scaling, FEVE does not change when both are scaled;
- Pearson r (:func:`~neuroaikit.stats.pearson`) and the jackknife oracle
  (:func:`~neuroaikit.stats.oracle_correlation`) are
  :mod:`neuroaikit.stats`'s: exact, and 0 for a neuron that is constant in responses or
  predictions (neuralpredictors gets that 0 from an ``eps = 1e-8`` added to the std);
- one addition: a near-silent neuron (variance over the repeated trials at most 1e-6 of the
  median neuron's, or 0) has FEV 0 and no FEVE, so it is never reliable
  (:func:`explainable_variance`); every other neuron scores as in Sensorium;
- repeated trials are given either as a list of (repeats_i, n_neurons) arrays, one per
  image, or as a NaN-padded (n_images, max_repeats, n_neurons) array
  (:meth:`~neuroaikit.neural.NeuralDataset.repeats`).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..stats import oracle_correlation, pearson
from .dataset import group_repeats

__all__ = [
    "single_trial_correlation", "correlation_to_average", "explainable_variance", "fraction_explained_variance",
    "feve_reliable", "conservative_oracle", "fraction_of_oracle", "evaluate_predictions", "standardize",
    "repeated_trials", "FEV_THRESHOLD", "NEGLIGIBLE_VARIANCE",
]

FEV_THRESHOLD = 0.15
#: a neuron whose variance over the repeated trials is at most this fraction of the median
#: neuron's (or exactly 0) is near-silent: it has no FEV and no FEVE (see :func:`explainable_variance`)
NEGLIGIBLE_VARIANCE = 1e-6

RepeatedTrials = Sequence[np.ndarray] | np.ndarray


def _as_groups(repeated: RepeatedTrials) -> list[np.ndarray]:
    """List of (repeats_i, n_neurons) float64 arrays with NaN padding rows removed."""
    if isinstance(repeated, np.ndarray) and repeated.ndim == 3:
        groups = []
        for block in repeated:
            keep = ~np.isnan(block).all(axis=1)
            groups.append(block[keep].astype(np.float64))
        return groups
    return [np.asarray(g, dtype=np.float64) for g in repeated]


def standardize(responses: np.ndarray, train_std: np.ndarray) -> np.ndarray:
    """Divide each neuron's responses by its std over the train tier (Sensorium's scaling);
    a zero std is left unscaled."""
    std = np.asarray(train_std, dtype=np.float64)
    return np.asarray(responses) / np.where(std > 0, std, 1.0)


def single_trial_correlation(responses: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """Single-trial correlation: Pearson r between prediction and response over all trials
    (trials, n_neurons), per neuron."""
    return pearson(responses, predictions, axis=0)


def correlation_to_average(responses: np.ndarray, predictions: np.ndarray, image_ids: np.ndarray) -> np.ndarray:
    """Correlation to average: group trials by image id, average responses and predictions
    over the repeats of each image, then Pearson r across images, per neuron."""
    mean_resp = np.nanmean(group_repeats(responses, image_ids), axis=1)
    mean_pred = np.nanmean(group_repeats(predictions, image_ids), axis=1)
    return pearson(mean_resp, mean_pred, axis=0)


def _variances(groups: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """V_tot and V_noise per neuron (see :func:`explainable_variance`), and which neurons are
    near-silent (V_tot at most ``NEGLIGIBLE_VARIANCE`` times the median neuron's, or 0)."""
    total_var = np.var(np.vstack(groups), axis=0, ddof=1)
    noise_var = np.mean(np.vstack([np.var(g, axis=0, ddof=1) for g in groups]), axis=0)
    typical = float(np.median(total_var)) if total_var.size else 0.0
    return total_var, noise_var, (total_var <= NEGLIGIBLE_VARIANCE * typical) | (total_var == 0)


def explainable_variance(repeated: RepeatedTrials) -> np.ndarray:
    """Fraction of explainable variance (FEV): ``(V_tot - V_noise) / (V_tot + 1e-9)`` where
    V_tot is the variance over all repeated trials (ddof 1) and V_noise the mean over images
    of the across-repeat variance (ddof 1).

    A near-silent neuron, whose V_tot is at most ``NEGLIGIBLE_VARIANCE`` (1e-6) times the median
    neuron's V_tot (or exactly 0), has FEV 0, so it never counts as reliable: Sensorium's
    ``+ 1e-9`` guard assumes responses of about unit variance, and gave such a neuron (V_tot
    2e-9, V_noise 4e-10) FEV 0.56 and a FEVE of -6e6 that swamped the mean over neurons."""
    total_var, noise_var, negligible = _variances(_as_groups(repeated))
    return np.where(negligible, 0.0, (total_var - noise_var) / (total_var + 1e-9))


def fraction_explained_variance(repeated: RepeatedTrials, predictions: RepeatedTrials) -> np.ndarray:
    """FEVE per neuron: ``1 - (MSE - V_noise) / (V_tot - V_noise)`` with MSE the mean squared
    error over all repeated trials and V_tot, V_noise as in :func:`explainable_variance`.
    Sensorium averages it over neurons with FEV >= 0.15 only (:func:`feve_reliable`). A neuron
    with no explainable variance (V_tot <= V_noise), or a near-silent one (as in
    :func:`explainable_variance`), has no FEVE: NaN."""
    groups = _as_groups(repeated)
    preds = _as_groups(predictions)
    if len(preds) != len(groups) or any(p.shape != g.shape for p, g in zip(preds, groups)):
        raise ValueError("predictions must have the same repeat structure as responses (a trial that is NaN in "
                         "every neuron counts as padding there: pad the predictions at the same trials)")
    mse = np.mean(np.vstack([(g - p) ** 2 for g, p in zip(groups, preds)]), axis=0)
    total_var, noise_var, negligible = _variances(groups)
    explainable = total_var - noise_var
    feve = np.full(explainable.shape, np.nan)
    ok = (explainable > 0) & ~negligible
    feve[ok] = 1 - (mse[ok] - noise_var[ok]) / explainable[ok]
    return feve


def feve_reliable(repeated: RepeatedTrials, predictions: RepeatedTrials, threshold: float = FEV_THRESHOLD) -> float:
    """Sensorium's FEVE score: mean FEVE over the neurons whose FEV >= ``threshold`` (0.15);
    near-silent neurons have FEV 0 (:func:`explainable_variance`) and never count."""
    fev = explainable_variance(repeated)
    feve = fraction_explained_variance(repeated, predictions)
    keep = (fev >= threshold) & np.isfinite(feve)  # a threshold <= 0 must not admit neurons without FEVE
    return float(np.mean(feve[keep])) if keep.any() else float("nan")


def conservative_oracle(repeated: RepeatedTrials) -> np.ndarray:
    """Conservative oracle ``sqrt(V_mean / (V_mean + V_noise))``: V_mean the variance of the
    repeat means across images, V_noise the mean within-image variance (both ddof 0).
    Overestimates the ceiling."""
    groups = _as_groups(repeated)
    means = np.vstack([g.mean(0) for g in groups])
    v_mean = means.var(axis=0)
    v_noise = np.vstack([g.var(axis=0) for g in groups]).mean(0)
    return np.sqrt(v_mean / (v_mean + v_noise + 1e-12))


def fraction_of_oracle(correlations: np.ndarray, oracles: np.ndarray) -> float:
    """Fraction of oracle (Lurz et al. 2021): least-squares slope through the origin of the
    per-neuron test correlations against the per-neuron jackknife oracles."""
    o = np.asarray(oracles, dtype=np.float64)
    c = np.asarray(correlations, dtype=np.float64)
    ok = np.isfinite(o) & np.isfinite(c)
    return float((o[ok] @ c[ok]) / (o[ok] @ o[ok]))


def repeated_trials(image_ids: np.ndarray) -> np.ndarray:
    """Boolean mask of the trials whose image is shown at least twice: the oracle, FEV and FEVE
    are computed on these only (an image shown once has no across-repeat variance)."""
    _, inverse, counts = np.unique(np.asarray(image_ids), return_inverse=True, return_counts=True)
    return counts[inverse.reshape(-1)] >= 2


def evaluate_predictions(
    responses: np.ndarray,
    predictions: np.ndarray,
    image_ids: np.ndarray,
    train_std: np.ndarray | None = None,
) -> dict:
    """Every Sensorium metric for one tier: mean single-trial correlation, correlation to
    average, FEVE over reliable neurons, oracle, fraction of oracle, per-neuron arrays.

    ``responses`` and ``predictions`` are (trials, n_neurons) in trial order with their
    ``image_ids``; with ``train_std`` both are divided by it first (Sensorium).
    """
    responses = np.asarray(responses, dtype=np.float64)
    predictions = np.asarray(predictions, dtype=np.float64)
    if train_std is not None:
        responses, predictions = standardize(responses, train_std), standardize(predictions, train_std)
    single = single_trial_correlation(responses, predictions)
    out: dict[str, Any] = {
        "single_trial_correlation": float(single.mean()),
        "per_neuron": {"single_trial_correlation": single},
        "n_trials": int(responses.shape[0]),
        "n_neurons": int(responses.shape[1]),
    }
    ids, counts = np.unique(image_ids, return_counts=True)
    out["n_images"] = int(len(ids))
    if len(ids) > 2:
        avg = correlation_to_average(responses, predictions, image_ids)
        out["correlation_to_average"] = float(avg.mean())
        out["per_neuron"]["correlation_to_average"] = avg
    repeated = counts >= 2
    if repeated.sum() >= 2:
        keep = repeated_trials(image_ids)
        rep = group_repeats(responses[keep], image_ids[keep])
        pred = group_repeats(predictions[keep], image_ids[keep])
        fev = explainable_variance(rep)
        oracle = oracle_correlation(rep)
        single_rep = single_trial_correlation(responses[keep], predictions[keep])
        out.update(
            {
                "oracle_correlation": float(oracle.mean()),
                "fev": float(fev.mean()),
                "fraction_fev_reliable": float((fev >= FEV_THRESHOLD).mean()),
                "feve": feve_reliable(rep, pred),
                "fraction_of_oracle": fraction_of_oracle(single_rep, oracle),
                "single_trial_over_oracle": float(single_rep.mean() / oracle.mean()),
            }
        )
        out["per_neuron"].update({"oracle_correlation": oracle, "fev": fev})
    return out
