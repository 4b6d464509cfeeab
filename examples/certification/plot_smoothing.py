"""
Certified radii for input noise and hidden-layer noise
======================================================

Train two small CNNs on the embedded 8x8 digits, one with Gaussian noise on its input (the
base classifier of randomized smoothing) and one with Gaussian noise after ``conv1`` (PixelDP),
certify 40 test images each and draw certified accuracy against L2 radius.
"""

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from neuroaikit.certify import CertificationConfig, certify
from neuroaikit.data import load_dataset
from neuroaikit.models import build_model
from neuroaikit.noise import inject_noise

torch.manual_seed(0)
train, test = load_dataset("digits", "train"), load_dataset("digits", "test")


def trained(noise):
    model = inject_noise(build_model("cnn", in_channels=1, image_size=8, n_classes=10, channels=(8, 16), hidden=64),
                         noise, copy=False)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(5):
        for start in range(0, len(train.images), 64):
            loss = F.cross_entropy(model(train.images[start : start + 64]), train.labels[start : start + 64])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return model.eval()


settings = dict(n0=50, n=500, n_examples=40)
smoothing = certify(trained({"input": "gaussian:0.25"}), test.images, test.labels, CertificationConfig(**settings))
hidden = certify(trained({"conv1": "gaussian:1.0"}), test.images, test.labels,
                 CertificationConfig(method="hidden", **settings))

fig, ax = plt.subplots(figsize=(6, 3.5))
for cert in (smoothing, hidden):
    ax.plot([p.radius for p in cert.curve], [p.certified_accuracy for p in cert.curve], lw=2, label=cert.label())
ax.set_xlabel("L2 radius")
ax.set_ylabel("certified accuracy")
ax.set_title(f"digits, n = {settings['n']}, alpha = {smoothing.alpha:g}; PixelDP sensitivity {hidden.sensitivity:.3g}")
ax.legend()
plt.show()
