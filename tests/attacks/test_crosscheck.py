"""Our PGD and APGD-CE against the reference implementations (torchattacks' PGD, the official
AutoAttack APGD-CE from the ``pyautoattack`` package) on a CNN trained on real MNIST images.

torchattacks 3.5.1 imports cleanly without torchvision (its wrappers import torchvision
lazily), so it is used as installed (--no-deps). The official AutoAttack is packaged as
``pyautoattack``; only ``pyautoattack.autopgd_base`` is imported.
"""

from __future__ import annotations

import pytest
import torch

from neuroaikit.attacks import APGD, PGD

N_TEST = 200
EPS = 0.1  # small enough that robust accuracy is far from 0 and the comparison means something


@pytest.fixture(scope="module")
def mnist_cnn(shared_data, kit):
    from neuroaikit.data import load_dataset

    train = load_dataset("mnist", split="train", data_dir=shared_data)
    test = load_dataset("mnist", split="test", data_dir=shared_data)
    model = kit.small_cnn(28)
    kit.train_quick(model, train.images[:4000], train.labels[:4000], epochs=2, lr=2e-3, batch=100)
    x, y = test.images[:N_TEST], test.labels[:N_TEST]
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() > 0.9
    return model, x, y


def robust_count(model, x_adv, y) -> int:
    """Images still classified correctly. Tolerances are whole images: a fraction difference of
    "1 point" (2 images of 200) can come out as 0.010000000000000009 and fail ``<= 0.01``."""
    with torch.no_grad():
        return int((model(x_adv).argmax(1) == y).sum())


def points(n_images: int, percent: float) -> int:
    """``percent`` points of ``n_images``, in whole images."""
    return round(n_images * percent / 100)


def test_pgd_matches_torchattacks(mnist_cnn):
    torchattacks = pytest.importorskip("torchattacks")
    model, x, y = mnist_cnn
    settings = dict(eps=EPS, alpha=0.01, steps=20)
    theirs = torchattacks.PGD(model, random_start=False, **settings)(x, y)
    ours_last = PGD(model, random_start=False, keep_best=False, **settings)(x, y)
    ours = PGD(model, **settings)(x, y)  # default: random start, best iterate
    n_theirs, n_last, n_ours = (robust_count(model, a, y) for a in (theirs, ours_last, ours))
    assert n_theirs < 0.9 * len(y)  # the attack does something at this eps
    assert abs(n_last - n_theirs) <= points(len(y), 1), (n_last, n_theirs)
    assert n_ours <= n_theirs + points(len(y), 1), (n_ours, n_theirs)


def test_apgd_ce_matches_official_autoattack(mnist_cnn):
    autopgd = pytest.importorskip("pyautoattack.autopgd_base")
    model, x, y = mnist_cnn
    official = autopgd.APGDAttack(model, n_iter=100, norm="Linf", eps=EPS, loss="ce", n_restarts=1, seed=0, device="cpu")
    theirs = official.perturb(x, y)
    ours = APGD(model, eps=EPS, steps=100, loss="ce")(x, y)
    n_theirs, n_ours = robust_count(model, theirs, y), robust_count(model, ours, y)
    assert n_theirs < 0.9 * len(y)
    assert abs(n_ours - n_theirs) <= points(len(y), 1), (n_ours, n_theirs)
    # DLR too, same settings, on half the images to keep the test short
    x, y = x[:100], y[:100]
    theirs_dlr = autopgd.APGDAttack(model, n_iter=100, norm="Linf", eps=EPS, loss="dlr", seed=0, device="cpu").perturb(x, y)
    ours_dlr = APGD(model, eps=EPS, steps=100, loss="dlr")(x, y)
    n_theirs, n_ours = robust_count(model, theirs_dlr, y), robust_count(model, ours_dlr, y)
    assert abs(n_ours - n_theirs) <= points(len(y), 2), (n_ours, n_theirs)
