"""
In-silico physiology of units with known answers
================================================

Simple cells (rectified Gabors) and complex cells (quadrature energy) with known orientation
and spatial frequency go through the standard grating protocol of :mod:`neuroaikit.insilico`;
the polar plots show their orientation tuning and their titles the recovered preferences and
F1/F0 (above 1 for simple cells, near 0 for complex cells).
"""

import matplotlib.pyplot as plt
import numpy as np

from neuroaikit.insilico import Geometry, GratingProtocol, characterize
from neuroaikit.insilico.groundtruth import EnergyUnits, GaborUnits

shape = (48, 48)
orientations = np.radians([0, 30, 60, 120])
sfs = np.array([0.08, 0.1, 0.12, 0.15])
protocol = GratingProtocol(n_directions=24, spatial_frequencies=np.geomspace(0.04, 0.32, 16).tolist(),
                           sizes=[4, 8, 16, 32, 67])

fig, axes = plt.subplots(2, 4, subplot_kw={"projection": "polar"}, figsize=(10, 5))
for row, (name, cells) in enumerate((("simple", GaborUnits(shape, orientations, sfs)),
                                     ("complex", EnergyUnits(shape, orientations, sfs)))):
    measured = characterize(cells, Geometry(shape), protocol)
    curves = measured.curves
    theta = np.radians(curves["directions_deg"] + curves["directions_deg"][:1])
    for j, ax in enumerate(axes[row]):
        r = np.asarray(curves["direction"][j])
        ax.plot(theta, np.concatenate([r, r[:1]]))
        ax.set_yticklabels([])
        ax.set_title(f"{name}: true {np.degrees(orientations[j]):.0f} deg, found "
                     f"{measured.preferred_orientation[j] % 180:.1f}\nSF {sfs[j]:.3f} -> {measured.preferred_sf[j]:.3f} c/px, "
                     f"F1/F0 {measured.modulation_ratio[j]:.2f}", fontsize=7)
fig.tight_layout()
plt.show()
