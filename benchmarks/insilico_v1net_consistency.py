"""Consistency check: the V1Net's first layer (its fixed Gabor bank) measured with the grating
protocol of ``neuroaikit.insilico`` lands on the parameters it was built from.

Per unit: the error of the recovered orientation and the ratio of the recovered to the built
spatial frequency (the bank clips carriers to [1/kernel, 0.25] c/px and stores the clipped, built
value as ``params["sf_cpd"]``); F1/F0 of simple (rectified) and complex (energy) cells. Per
population: the KS distance of the recovered SFs to the bank's sampling distribution and to the
published one.

    python benchmarks/insilico_v1net_consistency.py --json v1net_consistency.json
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from neuroaikit.io import write_text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="12 directions instead of 24")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from neuroaikit.insilico import GratingProtocol, LayerUnits, characterize
    from neuroaikit.insilico.reference import ks_distance, published
    from neuroaikit.models import build_model

    out = {}
    for species in ("macaque", "mouse"):
        model = build_model("v1net", in_channels=1, image_size=28, n_classes=10, species=species)
        units = LayerUnits(model, "v1", (1, 28, 28), position="centre")
        measured = characterize(units, protocol=GratingProtocol(n_directions=12 if args.quick else 24))
        bank = model.v1
        built_sf = np.array(bank.params["sf_cpd"])
        theta = np.array(bank.params["theta"])
        err = np.degrees(np.abs(np.angle(np.exp(2j * (np.radians(measured.array("preferred_orientation")) - theta))))) / 2
        ratio = measured.array("preferred_sf") / built_sf
        f1f0 = measured.array("modulation_ratio")
        n_simple = bank.n_simple
        row = {
            "units": units.n_units, "visual_degrees": bank.visual_degrees,
            "orientation_error_deg_median": float(np.median(err)), "orientation_error_deg_p90": float(np.percentile(err, 90)),
            "sf_ratio_median": float(np.median(ratio)), "sf_within_10_percent": float(np.mean(np.abs(ratio - 1) < 0.1)),
            "f1f0_simple_median": float(np.nanmedian(f1f0[:n_simple])),
            "f1f0_complex_median": float(np.nanmedian(f1f0[n_simple:])),
            "ks_measured_vs_sampling": ks_distance(measured.array("preferred_sf"), published(f"v1net-{species}", "preferred_sf")),
            "ks_built_vs_sampling": ks_distance(built_sf, published(f"v1net-{species}", "preferred_sf")),
            "ks_measured_vs_published": ks_distance(measured.array("preferred_sf"), published(species, "preferred_sf")),
        }
        out[species] = row
        print(species, json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}))
    if args.json:
        write_text(args.json, json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
