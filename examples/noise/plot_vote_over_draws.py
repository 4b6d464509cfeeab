"""
One noise draw or a vote over many
==================================

A CNN trained with Gaussian noise after its first hidden ReLU answers the same image differently
on every pass, like a population of neurons. Deployed with one draw it pays for the noise; a vote
over several draws recovers most of the accuracy. Trained for three epochs on scikit-learn's
embedded 8x8 digits (no files needed).
"""

import tempfile

import matplotlib.pyplot as plt

from neuroaikit import load_run, noise_mode
from neuroaikit.data import load_dataset
from neuroaikit.noise import accuracy
from neuroaikit.progress import silent
from neuroaikit.training import TrainConfig, train

out = tempfile.mkdtemp()
config = TrainConfig(dataset="digits", model="cnn", epochs=3, batch_size=64, noise={"relu1": "gaussian:1.0,rectify"},
                     noise_warmup=1, seed=0)
train(config, f"{out}/hidden-noise", progress=silent())
model = load_run(f"{out}/hidden-noise")
test = load_dataset("digits", split="test")

draws = [1, 3, 9, 21]
vote = [accuracy(model, test.images, test.labels, rule="vote", n_draws=n) for n in draws]
mean = [accuracy(model, test.images, test.labels, rule="mean", n_draws=n) for n in draws]
with noise_mode(model, "off"):
    noise_off = accuracy(model, test.images, test.labels)

# %%
# Accuracy against the number of draws, for the two rules that pool draws.
fig, ax = plt.subplots(figsize=(5.5, 3.5))
ax.plot(draws, vote, "o-", label="majority vote")
ax.plot(draws, mean, "s--", label="mean of softmaxes")
ax.axhline(noise_off, color="grey", ls=":", label="noise switched off")
ax.set_xlabel("noise draws per image")
ax.set_ylabel("test accuracy (digits)")
ax.set_title("hidden noise sigma 1.0 after relu1")
ax.legend()
fig.tight_layout()
