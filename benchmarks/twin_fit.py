"""Digital twin on a Sensorium-size synthetic recording: load time, fit time, peak memory, metrics.

Full size (default): 5,500 trials (4,000 train, 500 validation, 100 test images x 10 repeats)
x 5,000 neurons, 36x64 images, written as a Sensorium FileTree folder and zip and read back
(timed), then a twin fitted with the Sensorium recipe (``--time-limit`` caps training) and
scored on the test tier beside the pixel-ridge baseline and the simulator's own oracle.

    python benchmarks/twin_fit.py --quick                 # 1,100 trials x 300 neurons, 18x32, minutes
    python benchmarks/twin_fit.py --time-limit 2400       # full size, ~45 min on 2 CPU cores

Prints every figure; ``--json FILE`` also writes them.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from neuroaikit.cli.options import positive_int  # noqa: E402
from neuroaikit.execution import ExecutionConfig  # noqa: E402
from neuroaikit.neural import (PixelRidge, SyntheticCortex, TwinFitConfig, TwinModelConfig, fit_twin,  # noqa: E402
                               load_filetree, predict)
from neuroaikit.neural.metrics import evaluate_predictions  # noqa: E402
from neuroaikit.neural.twin import rf_recovery  # noqa: E402
from neuroaikit.io import write_text  # noqa: E402


def peak_memory_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small data set (minutes)")
    p.add_argument("--neurons", type=int, help="override the neuron count")
    p.add_argument("--time-limit", type=float, default=2400.0, help="training time cap in seconds")
    p.add_argument("--max-epochs", type=int, default=200)
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads (1 is fastest on a busy shared machine)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, ... (default cpu)")
    p.add_argument("--workdir", help="where to write the FileTree (default: a temporary folder, removed)")
    p.add_argument("--data-dir", help="unused (the data are simulated); accepted for a uniform interface")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)

    if args.quick:
        size = dict(n_neurons=300, image_shape=(18, 32), n_train=800, n_validation=100, n_test_images=20, repeats=10)
    else:
        size = dict(n_neurons=5000, image_shape=(36, 64), n_train=4000, n_validation=500, n_test_images=100, repeats=10)
    if args.neurons:
        size["n_neurons"] = args.neurons
    figures: dict = {"size": {k: list(v) if isinstance(v, tuple) else v for k, v in size.items()}}
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="twin-bench-"))
    try:
        t = time.time()
        cortex = SyntheticCortex(n_neurons=size["n_neurons"], image_shape=size["image_shape"], seed=0)
        ds = cortex.sample(size["n_train"], size["n_validation"], size["n_test_images"], size["repeats"])
        figures["simulate_s"] = time.time() - t
        t = time.time()
        folder = cortex.write(ds, work / "static-synthetic")
        zipped = cortex.write(ds, work / "static-synthetic.zip", as_zip=True)
        figures["write_s"] = time.time() - t
        t = time.time()
        loaded = load_filetree(folder)
        figures["load_folder_s"] = time.time() - t
        t = time.time()
        load_filetree(zipped)
        figures["load_zip_s"] = time.time() - t
        print(f"data: {loaded!r}")
        print(f"  simulate {figures['simulate_s']:.1f} s, write {figures['write_s']:.1f} s, "
              f"load folder {figures['load_folder_s']:.1f} s, load zip {figures['load_zip_s']:.1f} s")
        loaded.info["rates"] = ds.info["rates"]

        cfg = TwinFitConfig(model=TwinModelConfig(hidden_channels=args.channels, layers=args.layers),
                            time_limit=args.time_limit, max_epochs=args.max_epochs,
                            execution=ExecutionConfig(device=args.device, threads=args.threads))
        t = time.time()
        model, history = fit_twin(loaded, cfg, callback=lambda r: print(
            f"  epoch {r['epoch']}: validation r {r['validation_correlation']:.4f} ({r['seconds']:.0f} s)", flush=True))
        figures["fit_s"] = time.time() - t
        figures["epochs"] = len(history) - 1
        figures["best_validation_correlation"] = history[-1]["best_validation_correlation"]

        test = loaded.subset("test")
        std = loaded.response_std("train")
        torch.set_num_threads(args.threads)
        scores = {
            "twin": evaluate_predictions(test.responses, predict(model, loaded, "test"), test.image_ids, std),
            "pixel_ridge": evaluate_predictions(test.responses, PixelRidge().fit(loaded).predict_tier(loaded, "test"), test.image_ids, std),
            "simulator_oracle": evaluate_predictions(test.responses, cortex.oracle_predictions(test), test.image_ids, std),
        }
        keys = ("single_trial_correlation", "correlation_to_average", "oracle_correlation", "fraction_of_oracle", "single_trial_over_oracle", "feve")
        figures["metrics"] = {name: {k: s[k] for k in keys if k in s} for name, s in scores.items()}
        rf = rf_recovery(model, loaded, cortex.rf_centers_)
        figures["rf_within_2px_reliable"] = rf["rf_within_2px_reliable"]
        figures["rf_distance_px_median"] = rf["rf_distance_px_median"]
        figures["peak_memory_gb"] = peak_memory_gb()
        twin, ridge, sim = (figures["metrics"][k] for k in ("twin", "pixel_ridge", "simulator_oracle"))
        figures["twin_over_ridge_single_trial"] = twin["single_trial_correlation"] / ridge["single_trial_correlation"]
        figures["twin_over_simulator_correlation_to_average"] = twin["correlation_to_average"] / sim["correlation_to_average"]
        print(f"fit: {figures['epochs']} epochs in {figures['fit_s']:.0f} s; peak memory {figures['peak_memory_gb']:.2f} GB")
        for name, block in figures["metrics"].items():
            print(f"  {name:17s} " + ", ".join(f"{k} {v:.4f}" for k, v in block.items()))
        print(f"  twin / pixel ridge (single-trial r): {figures['twin_over_ridge_single_trial']:.2f}x")
        print(f"  twin / simulator oracle (correlation to average): {figures['twin_over_simulator_correlation_to_average']:.3f}")
        print(f"  RF centres within 2 px (most reliable half): {figures['rf_within_2px_reliable']:.2%}, median error {figures['rf_distance_px_median']:.2f} px")
        if args.json:
            write_text(args.json, json.dumps(figures, indent=2))
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
