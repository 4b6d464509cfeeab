from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits

from neuroaikit.data import dataset_info, load_dataset


def test_digits_split_is_deterministic_disjoint_and_stratified():
    train = load_dataset("digits", "train")
    test = load_dataset("digits", "test")
    info = dataset_info("digits")
    assert (len(train), len(test)) == (info.train_size, info.test_size) == (1438, 359)
    assert train.shape == (1, 8, 8) and train.images.dtype == torch.float32 and train.labels.dtype == torch.int64
    assert float(train.images.min()) == 0.0 and float(train.images.max()) == 1.0
    # Every original image is in exactly one split: compare multisets of (pixels, label) rows.
    bunch = load_digits()
    original = np.concatenate([bunch.images.reshape(-1, 64) / 16.0, bunch.target[:, None]], axis=1)
    ours = np.concatenate([
        np.concatenate([ds.images.reshape(-1, 64).double().numpy(), ds.labels[:, None].numpy()], axis=1)
        for ds in (train, test)
    ])
    assert np.allclose(np.sort(original.view([("", float)] * 65), axis=0).view(float).reshape(-1, 65),
                       np.sort(ours.view([("", float)] * 65), axis=0).view(float).reshape(-1, 65), atol=1e-6)
    counts = np.bincount(bunch.target)
    assert test.class_counts() == [int(round(0.2 * c)) for c in counts]
    again = load_dataset("digits", "test", data_dir="/ignored")
    assert torch.equal(again.images, test.images) and torch.equal(again.labels, test.labels)
