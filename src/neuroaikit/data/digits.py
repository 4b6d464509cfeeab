"""scikit-learn's bundled digits (UCI optical recognition of handwritten digits):
1,797 images of 8x8 pixels with values 0..16, shipped inside scikit-learn, so it needs
no files and no network.

Train/test split (deterministic, stratified): for each class in turn (0..9), the
indices of that class are permuted with ``numpy.random.RandomState(0)`` (one generator
shared by all classes, legacy stream frozen by numpy), and the first
``round(0.2 * count)`` go to the test split. Both splits keep the original order.
Result: 1,438 training and 359 test images.
"""

from __future__ import annotations

import numpy as np

TEST_FRACTION = 0.2
SPLIT_SEED = 0


def digits_test_mask(labels: np.ndarray) -> np.ndarray:
    """Boolean mask of the test images for the documented split."""
    rng = np.random.RandomState(SPLIT_SEED)
    mask = np.zeros(len(labels), dtype=bool)
    for c in range(int(labels.max()) + 1):
        members = rng.permutation(np.flatnonzero(labels == c))
        mask[members[: int(round(TEST_FRACTION * len(members)))]] = True
    return mask


def read_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 1, 8, 8) float32 in [0, 1] (value / 16) and labels (N,) int64."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    labels = bunch.target.astype(np.int64)
    mask = digits_test_mask(labels)
    keep = mask if split == "test" else ~mask
    images = (bunch.images[keep] / 16.0).astype(np.float32)[:, None]
    return images, labels[keep]
