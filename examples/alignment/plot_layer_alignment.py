"""
Which layer looks most like the data?
=====================================

Representational similarity analysis compares representational dissimilarity matrices (RDMs):
one pair of stimuli at a time, how differently does each system respond? Here a CNN trained on the
embedded digits is compared, layer by layer, with a "brain" made of the pixel responses of a
population of random Gaussian filters (random projections of the pixels: a stand-in for a
recorded population that needs no data files), by RSA and by linear CKA.
"""

import tempfile

import matplotlib.pyplot as plt
import torch

from neuroaikit import load_run
from neuroaikit.alignment import cka, compare_rdms, extract_features, rdm, squareform
from neuroaikit.data import load_dataset
from neuroaikit.progress import silent
from neuroaikit.training import TrainConfig, train

out = tempfile.mkdtemp()
train(TrainConfig(dataset="digits", model="cnn", epochs=2, batch_size=64, seed=0), f"{out}/cnn", progress=silent())
model = load_run(f"{out}/cnn")
images = load_dataset("digits", split="test").images[:60]

generator = torch.Generator().manual_seed(0)
filters = torch.randn(200, images[0].numel(), generator=generator)
brain = torch.relu(images.flatten(1) @ filters.T) + 0.1 * torch.randn(len(images), 200, generator=generator)
brain_rdm = rdm(brain, "correlation")

layers = ["relu1", "relu2", "relu3", "fc2"]
features = extract_features(model, images, layers=layers)
rsa = [float(compare_rdms(rdm(features[name], "correlation"), brain_rdm, "spearman")) for name in layers]
linear_cka = [float(cka(features[name], brain)) for name in layers]

# %%
# The brain's RDM and, per layer, its RSA and CKA scores.
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
image = left.imshow(squareform(brain_rdm), cmap="viridis")
left.set_title("'brain' RDM (1 - Pearson r)")
left.set_xlabel("stimulus")
left.set_ylabel("stimulus")
fig.colorbar(image, ax=left, label="dissimilarity")
right.plot(layers, rsa, "o-", label="RSA (Spearman)")
right.plot(layers, linear_cka, "s-", label="linear CKA")
right.set_ylabel("similarity to the 'brain'")
right.tick_params(axis="x", rotation=45)
right.legend()
fig.tight_layout()
