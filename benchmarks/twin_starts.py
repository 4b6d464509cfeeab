"""Several starts vs one: does every seed of a twin fitted from scratch find the retinotopy?

A twin fitted on the realistic synthetic recording at Lurz size (``--neurons`` neurons, 4,500
train / 500 validation trials, 36x64; the simulator's retinotopy is known), for ``--epochs``
epochs with each of ``--seeds`` seeds, twice (the recording of ``benchmarks/twin_default.py``):

- ``starts 3`` (the default, ``TwinFitConfig(starts=3)``): the first epoch is trained from three
  initialisations, and the fit continues from the one with the best validation correlation;
- ``starts 1``: the seed's own initialisation only (the recipe before).

Per seed and recipe: the validation correlation after every epoch (for ``starts 3`` the first
value is the chosen start's; every start's is listed), and for the final model the correlation
between the readouts' positions and the true receptive-field centres (x and y) and the
readouts' mean sampling width (``sigma``, grid units). Stop 49 saw seed 2 of the default command
stall at validation r 0.30 where seeds 0 and 1 reached 0.44.

    python benchmarks/twin_starts.py                      # 3 seeds x 6 epochs, ~10 min on 2 cores
    python benchmarks/twin_starts.py --quick              # 300 neurons, 18x32, 2 seeds, 3 epochs

Prints every figure; ``--json FILE`` also writes them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from neuroaikit.io import write_json  # noqa: E402
from neuroaikit.neural import TwinFitConfig, fit_twin  # noqa: E402
from neuroaikit.neural.simulate import SyntheticDataConfig  # noqa: E402


def _true_grid(cortex, image_shape) -> np.ndarray:
    """The simulator's receptive-field centres (pixels) in the readout's grid units [-1, 1]."""
    h, w = image_shape
    x, y = cortex.rf_centers_[:, 0], cortex.rf_centers_[:, 1]
    return np.stack([2 * x / (w - 1) - 1, 2 * y / (h - 1) - 1], 1)


def fit_one(ds, truth: np.ndarray, config: TwinFitConfig) -> dict:
    curve: list[float] = []
    started = time.perf_counter()
    starts: list[dict] = []

    def record(row: dict) -> None:
        curve.append(row["validation_correlation"])
        starts.extend(row.get("starts", []))

    model, history = fit_twin(ds, config, callback=record)
    seconds = time.perf_counter() - started
    readout = model.readouts[model.sessions[0]]
    with torch.no_grad():
        grid = readout.grid_mean().cpu().numpy()
    return {"starts": starts, "validation_curve": curve, "best_validation_correlation": history[-1]["best_validation_correlation"],
            "position_correlation": [float(np.corrcoef(grid[:, a], truth[:, a])[0, 1]) for a in (0, 1)],
            "sigma": float(readout.sigma.detach().abs().mean()), "seconds": seconds}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--neurons", type=int, default=5300)
    p.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1 (default 3)")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--quick", action="store_true", help="300 neurons, 1,100 trials, 18x32, 2 seeds, 3 epochs")
    p.add_argument("--data-dir", help="unused (the data are simulated); accepted for a uniform interface")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    if args.quick:
        args.neurons, args.seeds, args.epochs = 300, 2, 3
        size = {"image_shape": [18, 32], "n_train": 1000, "n_validation": 100, "n_test_images": 10, "repeats": 2}
    else:
        # the recording of benchmarks/twin_default.py (page twin_default_lurz), whose seed 2 stalled
        size = {"image_shape": [36, 64], "n_train": 4500, "n_validation": 500, "n_test_images": 100, "repeats": 10}
    ds, cortex = SyntheticDataConfig.from_flat({"preset": "realistic", "n_neurons": args.neurons, **size}).make()
    truth = _true_grid(cortex, size["image_shape"])
    rows = []
    print(f"{'seed':>4} {'starts':>6} {'validation r by epoch':<48} {'position r (x, y)':>18} {'sigma':>6} {'s':>5}  "
          "starts' epoch-1 validation r")
    for seed in range(args.seeds):
        for starts in (3, 1):
            row = {"seed": seed, "n_starts": starts,
                   **fit_one(ds, truth, TwinFitConfig(seed=seed, max_epochs=args.epochs, starts=starts))}
            rows.append(row)
            curve = " ".join(f"{v:.3f}" for v in row["validation_curve"])
            px, py = row["position_correlation"]
            tried = " ".join(f"{s['validation_correlation']:.3f}" for s in row["starts"])
            print(f"{seed:>4} {starts:>6} {curve:<48} {px:>8.3f} {py:>8.3f} {row['sigma']:>6.3f} {row['seconds']:>5.0f}  "
                  f"{tried}", flush=True)
    for starts in (3, 1):
        best = [r["best_validation_correlation"] for r in rows if r["n_starts"] == starts]
        print(f"starts {starts}: best validation r over seeds min {min(best):.4f}, mean {np.mean(best):.4f}, "
              f"max {max(best):.4f}")
    if args.json:
        write_json(args.json, {"neurons": args.neurons, "epochs": args.epochs, "size": size, "runs": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
