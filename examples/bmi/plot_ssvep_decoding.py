"""
SSVEP decoding with CCA on the exoskeleton data
===============================================

Within-session 5-fold accuracy of CCA on one subject, and its confusion matrix.
"""

import os

import matplotlib.pyplot as plt
import numpy as np

from neuroaikit.bmi import cross_validate, load_ssvep_exo, make_decoder

DATA = os.environ.get("NEUROAIKIT_DATA", "../shared/data")  # the folder holding eeg/
ds = load_ssvep_exo(os.path.join(DATA, "eeg"), 1)
pred = cross_validate(make_decoder("cca", ds), ds, "within-session", folds=5)
confusion = np.zeros((len(ds.classes),) * 2, dtype=int)
np.add.at(confusion, (pred.y_true, pred.y_pred), 1)
fig, ax = plt.subplots()
ax.imshow(confusion, cmap="Blues")
ax.set_xticks(range(len(ds.classes)), ds.classes)
ax.set_yticks(range(len(ds.classes)), ds.classes)
ax.set_title(f"CCA, subject 1: accuracy {pred.accuracy:.2f}")
ax.set_xlabel("predicted")
ax.set_ylabel("true")
