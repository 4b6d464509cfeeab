"""
Attacking a noisy network: why EOT matters
==========================================

A network with noise in its hidden layer looks more robust to a plain PGD attack, whose single
noisy gradient points partly in a random direction. Averaging the gradient over noise draws (Expectation over
Transformation, ``eot``) and attacking the deployed vote reveals how robust it really is. This is
why ``neuroaikit evaluate`` always attacks with EOT and checks that doubling it changes nothing.
"""

import tempfile

import matplotlib.pyplot as plt

from neuroaikit import load_run
from neuroaikit.attacks import PGD
from neuroaikit.data import load_dataset
from neuroaikit.noise import accuracy
from neuroaikit.progress import silent
from neuroaikit.training import TrainConfig, train

out = tempfile.mkdtemp()
train(TrainConfig(dataset="digits", model="cnn", epochs=3, batch_size=64, noise={"relu1": "gaussian:1.0,rectify"},
                  noise_warmup=1, seed=0), f"{out}/noisy", progress=silent())
model = load_run(f"{out}/noisy")
test = load_dataset("digits", split="test")
x, y = test.images[:100], test.labels[:100]

eps_values = [0.0, 0.15, 0.3]
curves = {"PGD, one draw per gradient": dict(eot=1, rule="single"),
          "EOT-PGD, 8 draws, vote loss": dict(eot=8, rule="vote")}
clean = accuracy(model, x, y, rule="vote", n_draws=9)  # one clean figure: both curves start from it
results = {}
for label, options in curves.items():
    acc = [clean]
    for eps in eps_values[1:]:
        x_adv = PGD(model, eps=eps, alpha=eps / 8, steps=10, **options)(x, y)
        acc.append(accuracy(model, x_adv, y, rule="vote", n_draws=9))
    results[label] = acc

# %%
# Robust accuracy of the deployed rule (a vote over 9 draws) against the attack budget.
fig, ax = plt.subplots(figsize=(5.5, 3.5))
for (label, acc), marker in zip(results.items(), "os"):
    ax.plot(eps_values, acc, marker=marker, label=label)
ax.axhline(0.1, color="grey", ls=":", label="chance")
ax.set_xlabel("eps (Linf)")
ax.set_ylabel("accuracy of the vote")
ax.set_ylim(-0.02, 1.02)
ax.legend(fontsize=8)
fig.tight_layout()
