"""Certification speed: images certified per second with batched Monte-Carlo draws (the draws of
many images go through the model together) against the reference implementation's per-image loop
(Cohen et al.'s ``core.py`` draws for one image at a time), same model, same n0 / n / alpha.

The model is a small CNN trained here for one epoch on MNIST with Gaussian augmentation at the
certified sigma. Both ways give the same statistics (the radii agree up to Monte-Carlo noise; the
benchmark prints the mean absolute difference).

    python benchmarks/certify.py --data-dir ../shared/data/mnist                 # 64 images, n = 2000
    python benchmarks/certify.py --data-dir ../shared/data/mnist --quick         # 16 images, n = 500
    python benchmarks/certify.py --data-dir ../shared/data/mnist --json out.json --device cuda
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from neuroaikit.certify import GaussianSmoothing
from neuroaikit.data import load_dataset
from neuroaikit.execution import resolve_device
from neuroaikit.progress import silent
from neuroaikit.training import TrainConfig, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="folder with the MNIST files")
    parser.add_argument("--quick", action="store_true", help="16 images, n = 500")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    n_images, n = (16, 500) if args.quick else (64, 2000)
    n0, alpha, sigma = 100 if not args.quick else 50, 0.001, 0.25

    run = train(TrainConfig(dataset="mnist", data_dir=args.data_dir, model="cnn",
                            model_kwargs={"channels": [16, 32], "hidden": 256}, epochs=1, train_subset=10000,
                            test_subset=500, objective="gaussian_augmentation", objective_params={"sigma": sigma}),
                "runs/bench/certify/mnist-smooth", overwrite=True, progress=silent())
    device = resolve_device(args.device)
    model = run.load_model(map_location=device)
    test = load_dataset("mnist", split="test", data_dir=args.data_dir)
    x = test.images[:n_images].to(device)
    smoothed = GaussianSmoothing(model, sigma=sigma, max_rows=4096)

    figures = {"device": str(device), "images": n_images, "n0": n0, "n": n, "alpha": alpha, "sigma": sigma,
               "threads": args.threads}
    radii = {}
    for name, per_image in (("per_image_loop", True), ("batched", False)):
        torch.manual_seed(0)
        started = time.perf_counter()
        _, radii[name], _ = smoothed.certify(x, n0=n0, n=n, alpha=alpha, batch_size=n_images, per_image=per_image)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        figures[f"{name}_images_per_s"] = round(n_images / seconds, 3)
        print(f"{name:>15}: {n_images / seconds:8.2f} images/s ({seconds:.1f} s for {n_images} images)")
    figures["speedup"] = round(figures["batched_images_per_s"] / figures["per_image_loop_images_per_s"], 2)
    figures["mean_abs_radius_difference"] = round(float((radii["batched"] - radii["per_image_loop"]).abs().mean()), 4)
    print(f"speed-up of batched draws: {figures['speedup']}x; mean |radius difference| "
          f"{figures['mean_abs_radius_difference']} (Monte-Carlo noise)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=2)


if __name__ == "__main__":
    main()
