"""
From a calcium trace to a spike rate
====================================

A synthetic recording: Poisson spikes, each a jump of the indicator that decays with 0.7 s, seen
through noise at 30 Hz. The OASIS deconvolver infers the spike rate; scored against the true rate
(the spikes smoothed with a 0.2 s Gaussian) with Pearson r, as Cascade scores it. The result names
the backend that ran (the ``oasis-deconv`` package, or its algorithm in NumPy).
"""

import matplotlib.pyplot as plt
import numpy as np

from neuroaikit.neural.calcium import OasisDeconvolver, ground_truth_rate
from neuroaikit.stats import pearson

rate_hz, frame_rate, seconds, tau = 0.8, 30.0, 120.0, 0.7
rng = np.random.default_rng(0)
spike_times = np.sort(rng.uniform(0, seconds, rng.poisson(rate_hz * seconds)))
frames = np.arange(0, seconds, 1 / frame_rate)
counts = np.histogram(spike_times, bins=np.append(frames, seconds))[0]
calcium = np.zeros_like(frames)
decay = np.exp(-1 / (tau * frame_rate))
for i in range(len(frames)):
    calcium[i] = (calcium[i - 1] * decay if i else 0.0) + counts[i]
dff = calcium + 0.15 * rng.standard_normal(len(frames))

deconvolver = OasisDeconvolver(tau_decay_s=tau, smoothing_s=0.2)
result = deconvolver.infer(dff, frame_rate)
inferred, backend = result.rate, result.backend
truth = ground_truth_rate(spike_times, frames, smoothing_s=0.2)
r = float(pearson(inferred, truth))

# %%
# The trace, the inferred rate and the true rate over the first 30 seconds.
shown = frames < 30
fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 4), sharex=True)
top.plot(frames[shown], dff[shown], lw=0.7, color="tab:green")
top.vlines(spike_times[spike_times < 30], -0.6, -0.3, color="black", lw=0.8)
top.set_ylabel("dF/F (spikes below)")
bottom.plot(frames[shown], truth[shown] / truth.max(), label="true rate (0.2 s Gaussian)")
bottom.plot(frames[shown], inferred[shown] / inferred.max(), label=f"inferred ({backend} backend), r = {r:.2f}")
bottom.set_xlabel("time (s)")
bottom.set_ylabel("rate (scaled to peak 1)")
bottom.legend(fontsize=8)
fig.tight_layout()
