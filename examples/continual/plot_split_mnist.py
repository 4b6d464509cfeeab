"""
Forgetting on class-incremental Split MNIST
===========================================

Fine-tuning forgets every earlier pair of digits; experience replay keeps them. A short
protocol (100 iterations per task, 2 x 100 units, 10,000 training images) so it runs in
seconds on a CPU; ``neuroaikit continual`` runs the published one.
"""

import os

import matplotlib.pyplot as plt
import numpy as np

from neuroaikit.continual import ContinualConfig, learn

DATA = os.environ.get("NEUROAIKIT_DATA", "../shared/data")  # the folder holding mnist/
results = {}
for strategy in ("finetune", "replay"):
    config = ContinualConfig(benchmark="split-mnist", scenario="class", strategy=strategy, iters=100, hidden=100,
                             train_subset=10000, test_subset=2000, data_dir=DATA,
                             strategy_params={"per_class": 50} if strategy == "replay" else {})
    results[strategy] = learn(config)

fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
for ax, (strategy, result) in zip(axes, results.items()):
    matrix = np.asarray(result.accuracy_matrix)
    ax.imshow(np.where(np.tril(np.ones_like(matrix)) > 0, matrix, np.nan), vmin=0, vmax=1)
    ax.set_title(f"{strategy}: R[i, j]")
    ax.set_xlabel("tested on task")
    ax.set_ylabel("after task")
for strategy, result in results.items():
    axes[2].plot(range(1, 6), result.accuracy_curve, marker="o", label=strategy)
axes[2].set_ylim(0, 1)
axes[2].set_xlabel("tasks learned")
axes[2].set_ylabel("mean accuracy so far")
axes[2].legend()
fig.tight_layout()
plt.show()
