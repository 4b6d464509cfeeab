"""RDMs, every comparison method, noise ceilings and the stimulus bootstrap agree with
rsatoolbox to 1e-6 on the Antolik data."""

from __future__ import annotations

import numpy as np
import pytest

rsatoolbox = pytest.importorskip("rsatoolbox")
from rsatoolbox.data import Dataset  # noqa: E402
from rsatoolbox.inference import boot_noise_ceiling  # noqa: E402
from rsatoolbox.rdm import RDMs, calc_rdm, compare  # noqa: E402

from neuroaikit.alignment import (bootstrap_rdm_comparison, compare_rdms, crossnobis_rdm, rdm,  # noqa: E402
                                  repeat_rdms, resample_indices, rsa_noise_ceiling)

TOL = 1e-6
OUR_TO_RSATOOLBOX = {"pearson": "corr", "spearman": "spearman", "kendall_tau_a": "tau-a", "cosine": "cosine",
                     "whitened_cosine": "cosine_cov", "whitened_pearson": "corr_cov"}


@pytest.fixture(scope="module")
def averages(antolik_repeats):
    return antolik_repeats.mean(1)


@pytest.mark.parametrize("ours, theirs", [("sqeuclidean", "euclidean"), ("correlation", "correlation")])
def test_rdm_matches_rsatoolbox(averages, ours, theirs):
    expected = calc_rdm(Dataset(averages), method=theirs).get_vectors()[0]
    np.testing.assert_allclose(rdm(averages, ours).numpy(), expected, atol=TOL, rtol=0)


def test_euclidean_and_cosine_match_scipy(averages):
    from scipy.spatial.distance import pdist

    np.testing.assert_allclose(rdm(averages, "euclidean").numpy(), pdist(averages, "euclidean"), atol=TOL)
    np.testing.assert_allclose(rdm(averages, "cosine").numpy(), pdist(averages, "cosine"), atol=TOL)


def test_crossnobis_matches_rsatoolbox(antolik_repeats):
    n_img, n_rep, p = antolik_repeats.shape
    trials = antolik_repeats.reshape(-1, p)
    ds = Dataset(trials, obs_descriptors={"stim": np.repeat(np.arange(n_img), n_rep),
                                          "run": np.tile(np.arange(n_rep), n_img)})
    expected = calc_rdm(ds, method="crossnobis", descriptor="stim", cv_descriptor="run").get_vectors()[0]
    np.testing.assert_allclose(crossnobis_rdm(antolik_repeats).numpy(), expected, atol=TOL, rtol=0)


@pytest.mark.parametrize("method", list(OUR_TO_RSATOOLBOX))
def test_every_comparison_matches_rsatoolbox(antolik_repeats, method):
    neural = rdm(antolik_repeats.mean(1), "correlation").numpy()
    other = rdm(antolik_repeats[:, :5].mean(1), "sqeuclidean").numpy()
    expected = compare(RDMs(neural[None]), RDMs(other[None]), method=OUR_TO_RSATOOLBOX[method])[0, 0]
    ours = float(compare_rdms(neural, other, method))
    assert abs(ours - expected) < TOL


@pytest.mark.parametrize("method", ["pearson", "spearman", "cosine", "kendall_tau_a"])
def test_noise_ceiling_matches_rsatoolbox(antolik_repeats, method):
    per_repeat = repeat_rdms(antolik_repeats, "correlation").numpy()
    lower, upper = boot_noise_ceiling(RDMs(per_repeat), method=OUR_TO_RSATOOLBOX[method])
    ours = rsa_noise_ceiling(per_repeat, method)
    assert abs(ours.lower - lower) < TOL and abs(ours.upper - upper) < TOL
    assert ours.lower <= ours.upper


@pytest.mark.parametrize("method", ["spearman", "pearson", "cosine", "kendall_tau_a"])
def test_bootstrap_matches_rsatoolbox_subsampling(antolik_repeats, method):
    """Same resampled stimuli -> same per-resample scores (duplicates' self-pairs dropped)."""
    a = rdm(antolik_repeats.mean(1), "correlation").numpy()
    b = rdm(antolik_repeats[:, :4].mean(1), "correlation").numpy()
    idx = resample_indices(50, 15 if method == "kendall_tau_a" else 40, seed=3)
    ours = bootstrap_rdm_comparison(a, b, method, indices=idx).samples.numpy()
    rdm_a, rdm_b = RDMs(a[None]), RDMs(b[None])
    theirs = [compare(rdm_a.subsample_pattern("index", i.numpy()), rdm_b.subsample_pattern("index", i.numpy()),
                      OUR_TO_RSATOOLBOX[method])[0, 0] for i in idx]
    np.testing.assert_allclose(ours, theirs, atol=TOL, rtol=0)


def test_whitened_noise_ceiling_matches_rsatoolbox_recipe(antolik_repeats):
    """rsatoolbox pools whitened RDMs with an iterative (conjugate-gradient) solve, which
    stops ~3e-5 short; its recipe with an exact solve of the same RDM covariance V matches
    ours to 1e-6, and its own function to 1e-4."""
    from rsatoolbox.rdm.compare import _get_v

    per_repeat = repeat_rdms(antolik_repeats, "correlation").numpy()
    ours = rsa_noise_ceiling(per_repeat, "whitened_cosine")
    from scipy.linalg import solve

    v = _get_v(antolik_repeats.shape[0], None).toarray()
    v_inv_x = solve(v, per_repeat.T, assume_a="pos").T  # V is positive definite here (Cholesky)
    normalised = per_repeat / np.sqrt(np.einsum("ij,ij->i", per_repeat, v_inv_x))[:, None]

    def cos_cov(a, b):
        return compare(RDMs(a[None]), RDMs(b[None]), "cosine_cov")[0, 0]

    upper = np.mean([cos_cov(normalised.mean(0), r) for r in per_repeat])
    lower = np.mean([cos_cov(np.delete(normalised, k, 0).mean(0), r) for k, r in enumerate(per_repeat)])
    assert abs(ours.upper - upper) < TOL and abs(ours.lower - lower) < TOL
    lower_cg, upper_cg = boot_noise_ceiling(RDMs(per_repeat), method="cosine_cov")
    assert abs(ours.upper - upper_cg) < 1e-4 and abs(ours.lower - lower_cg) < 1e-4


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_bootstrap_with_tied_model_rdm_matches_rsatoolbox(antolik_repeats, method):
    """A categorical model RDM (entries 0 / 1, many ties) takes the general tie-aware path."""
    a = rdm(antolik_repeats.mean(1), "correlation").numpy()
    category = np.arange(50) % 5
    model = (category[:, None] != category[None, :]).astype(float)[np.triu_indices(50, 1)]
    idx = resample_indices(50, 30, seed=4)
    ours = bootstrap_rdm_comparison(model, a, method, indices=idx).samples.numpy()
    rdm_model, rdm_a = RDMs(model[None]), RDMs(a[None])
    theirs = [compare(rdm_model.subsample_pattern("index", i.numpy()), rdm_a.subsample_pattern("index", i.numpy()),
                      OUR_TO_RSATOOLBOX[method])[0, 0] for i in idx]
    np.testing.assert_allclose(ours, theirs, atol=TOL, rtol=0)
