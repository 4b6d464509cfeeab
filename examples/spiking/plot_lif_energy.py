"""
Spikes and the energy they cost
===============================

A layer of leaky integrate-and-fire neurons driven by Poisson spike trains, and NeuroBench's
synaptic-operation counts for a small Poisson-coded spiking MLP against the same network as a plain
ANN. Where a spike arrives the SNN adds a weight (an accumulate, AC); the ANN multiplies and adds
(a MAC) for every non-zero input; the SNN's linear readout of mean spike rates is counted as MACs
too. With direct (analog) coding the SNN's first layer would see pixels, not spikes, and count MACs.
The energy figures are compute-only estimates from the Horowitz 2014 table (45 nm), not a chip
measurement.
"""

import matplotlib.pyplot as plt
import torch
from torch import nn

from neuroaikit.energy import measure
from neuroaikit.spiking import LIF, LIFParameters, SpikingMLP, poisson_encode

torch.manual_seed(0)
steps, inputs = 100, 50
drive = poisson_encode(torch.rand(1, inputs) * 0.3, steps)  # (T, 1, inputs) spikes
weights = torch.rand(inputs, 20) * 0.1
lif = LIF(LIFParameters())
spikes, _ = lif(drive @ weights)  # (T, 1, 20)

images = torch.rand(64, 1, 8, 8)
snn = SpikingMLP(in_channels=1, image_size=8, hidden=(128,), n_classes=10, T=8, encoder="poisson")
ann = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
figures = {name: measure(model, images) for name, model in (("ANN", ann), ("SNN, T = 8", snn))}

# %%
# Left: a raster of the LIF layer. Right: estimated energy per image, with the operations counted.
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
t, _, neuron = spikes.nonzero(as_tuple=True)
left.scatter(t, neuron, s=4, color="black")
left.set_xlabel("time step")
left.set_ylabel("LIF neuron")
left.set_title(f"{int(spikes.sum())} spikes from {int(drive.sum())} input spikes")
names = list(figures)
operations = [f"{n}\n{figures[n]['SynapticOperations']['Effective_MACs']:.0f} MACs, "
              f"{figures[n]['SynapticOperations']['Effective_ACs']:.0f} ACs" for n in names]
right.bar(operations, [figures[n]["energy"]["effective_joules_per_sample"] * 1e6 for n in names])
right.set_ylabel("energy per image (uJ, compute only)")
fig.tight_layout()
