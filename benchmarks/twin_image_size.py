"""What ``twin fit --image-size auto`` (the default) buys on a recording with large images.

Sensorium 2022's files hold 144x256 images, which its own loaders scale by 0.25 to 36x64 before
training; Allen Brain Observatory scenes are 918x1174, and a lab's stimulus log points at images
as shown on its screen. This benchmark simulates such a recording (the realistic synthetic
cortex at ``--image-shape``, default 144x256, with receptive fields as large in the visual field
as at 36x64) and runs the same ``neuroaikit twin fit`` command with ``--time-limit`` once per
``--image-size`` value (default: ``auto``, resampled to 36x64, and ``native``), one twin each
(``--members 1``), everything else at its default. For each it prints the whole command's time,
the epochs trained, the seconds per epoch, how the fit stopped, the best validation r, and the
test-tier scores of the twin and of the pixel ridge.

    python benchmarks/twin_image_size.py                          # 1,000 neurons, 900 s each
    python benchmarks/twin_image_size.py --quick                  # minutes
    python benchmarks/twin_image_size.py --sizes auto 72x128 native

Prints every figure; ``--json FILE`` also writes them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from neuroaikit.io import write_text  # noqa: E402
from twin_default import run_twin_fit  # noqa: E402

SCORES = ("single_trial_correlation", "correlation_to_average")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--neurons", type=int, default=1000)
    p.add_argument("--image-shape", default="144x256", help="the simulated images' HxW (default 144x256)")
    p.add_argument("--sizes", nargs="+", default=["auto", "native"], help="--image-size values to compare")
    p.add_argument("--time-limit", type=float, default=900.0, help="each command's --time-limit (default 900)")
    p.add_argument("--quick", action="store_true", help="at most 200 neurons, 1,100 trials, 20 test images, "
                                                          "at most 120 s each")
    p.add_argument("--workdir", help="where the run folders go (default: a temporary folder, removed)")
    p.add_argument("--data-dir", help="unused (the data are simulated); accepted for a uniform interface")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    height, width = (int(v) for v in args.image_shape.lower().split("x"))
    if args.quick:
        neurons, time_limit = min(args.neurons, 200), min(args.time_limit, 120.0)
        trials = {"n_train": 800, "n_validation": 100, "n_test_images": 20, "repeats": 10}
    else:
        neurons, time_limit = args.neurons, args.time_limit
        trials = {"n_train": 4500, "n_validation": 500, "n_test_images": 100, "repeats": 10}
    synthetic = {"preset": "realistic", "n_neurons": neurons, "image_shape": f"[{height},{width}]", **trials}
    figures: dict = {"synthetic": synthetic, "time_limit": time_limit, "runs": []}
    with tempfile.TemporaryDirectory() as scratch:
        for size in args.sizes:
            out = Path(args.workdir or scratch) / f"twin-{size}"
            options = ["--image-size", size, "--members", "1", "--time-limit", f"{time_limit:g}", "--no-report"]
            shown, wall, run = run_twin_fit(synthetic, options, out)
            if isinstance(run, int):
                return run
            fit, evaluation = run.result("twin_fit"), run.result("twin_eval")
            member = fit["members"][0]
            figures["runs"].append({
                "image_size": size, "command": shown, "command_seconds": wall,
                "twin_image_shape": evaluation["dataset"]["image_shape"],
                "epochs": member["epochs"], "fit_seconds": member["fit_seconds"],
                "seconds_per_epoch": member["fit_seconds"] / max(member["epochs"], 1),
                "stopped_by": member["stopped_by"],
                "best_validation_correlation": member["best_validation_correlation"],
                "models": {name: {k: evaluation["models"][name].get(k) for k in SCORES}
                           for name in ("twin", "pixel_ridge", "simulator_oracle") if name in evaluation["models"]},
            })
    print(f"\n{'--image-size':>12} {'twin sees':>10} {'command s':>9} {'epochs':>6} {'s/epoch':>7} {'stopped by':>15} "
          f"{'validation r':>12} {'test r twin':>11} {'ridge':>6}")
    for r in figures["runs"]:
        shape = "x".join(str(v) for v in r["twin_image_shape"][1:])
        print(f"{r['image_size']:>12} {shape:>10} {r['command_seconds']:>9.0f} {r['epochs']:>6} "
              f"{r['seconds_per_epoch']:>7.1f} {r['stopped_by'] or '-':>15} {r['best_validation_correlation']:>12.4f} "
              f"{r['models']['twin']['single_trial_correlation']:>11.4f} "
              f"{r['models']['pixel_ridge']['single_trial_correlation']:>6.4f}")
    if args.json:
        write_text(args.json, json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
