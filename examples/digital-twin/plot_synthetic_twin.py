"""
A digital twin of a synthetic cortex
====================================

:class:`~neuroaikit.neural.SyntheticCortex` simulates a population of V1-like neurons (simple
and complex cells with known receptive fields, Poisson-like trial-to-trial variability), so a
fitted twin can be checked against the truth. A small twin (convolutional core + Gaussian readout)
is fitted for a few epochs; each neuron's single-trial correlation is shown against its jackknife
oracle, the correlation an ideal model that knows the repeat average would reach. Five epochs
on 400 trials is far from a converged fit (some neurons are still predicted with a negative r):
the figure shows how the metrics are read, not what a full fit reaches; the digital-twin guide
has the figures of full fits.
"""

import matplotlib.pyplot as plt

from neuroaikit.neural import SyntheticCortex, TwinFitConfig, TwinModelConfig, fit_twin, predict
from neuroaikit.neural.metrics import evaluate_predictions

ds = SyntheticCortex(n_neurons=40, image_shape=(18, 32), seed=0).sample(
    n_train=400, n_validation=80, n_test_images=20, repeats=6)
config = TwinFitConfig(model=TwinModelConfig(hidden_channels=8, layers=2, input_kern=7, hidden_kern=5),
                       max_epochs=5, batch_size=32, seed=0)
twin, history = fit_twin(ds, config)
epochs = [h for h in history if "epoch" in h]  # the last entry summarises the best epoch

test = ds.subset("test")
scores = evaluate_predictions(test.responses, predict(twin, ds, "test"), test.image_ids, ds.response_std("train"))

# %%
# Left: validation correlation per epoch. Right: each neuron's test correlation against its oracle.
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
left.plot([h["epoch"] for h in epochs], [h["validation_correlation"] for h in epochs], "o-")
left.set_xlabel("epoch")
left.set_ylabel("validation single-trial r")
per = scores["per_neuron"]
right.scatter(per["oracle_correlation"], per["single_trial_correlation"], s=10)
top = max(per["oracle_correlation"].max(), 0.1)
right.plot([0, top], [0, top], "k--", lw=0.8, label="twin r = oracle r")
right.set_xlabel("jackknife oracle r")
right.set_ylabel("twin single-trial r (test)")
right.legend()
fig.tight_layout()
