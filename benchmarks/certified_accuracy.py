"""Certified accuracy against radius on MNIST and the CIFAR-10 subset: the certification guide's
runs, trained and certified in one command so that its tables come from a recorded page.

Each run is trained with ``neuroaikit.training.train`` into its own run folder under ``--out`` and
certified with ``neuroaikit.certify.certify_run`` (``neuroaikit train`` / ``neuroaikit certify``):

- ``mnist-smooth-0.25`` and ``mnist-smooth-0.5``: the toolkit's CNN (5x5 convs with 16 and 32
  channels, 256 hidden units) trained with Gaussian data augmentation at sigma 0.25 / 0.5, then
  randomized smoothing at the same sigma (Cohen et al. 2019), certified accuracy at Cohen et al.'s
  radii 0, 0.25 ... 1.5;
- ``mnist-hidden-conv1``, ``mnist-hidden-conv1-bound1``, ``mnist-hidden-conv1-0.5-bound1``: the
  same CNN with Gaussian noise after ``conv1`` (sigma 1.0, 1.0, 0.5; ramped in over the first
  epoch), the last two with the PixelDP norm bound 1 on the pre-noise layers, then the
  hidden-layer certificate (PixelDP, delta 0.05) on the radii the certifier chooses;
- ``cifar-smooth-0.25`` (``--datasets`` includes ``cifar10``): a pre-activation ResNet-18 at width 0.25
  trained on the subset with Gaussian augmentation and crop-flip, smoothing at sigma 0.25.

The figures go to ``--json`` after every training and every certificate, so a run stopped by a
time limit keeps what it measured. A run folder under ``--out`` that holds a finished run is
refused before anything trains, unless ``--overwrite`` is given.

    python benchmarks/certified_accuracy.py --data-dir ../shared/data
    python benchmarks/certified_accuracy.py --data-dir ../shared/data --datasets mnist --quick
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from neuroaikit.certify import CertificationConfig
from neuroaikit.certify.workflow import certify_run
from neuroaikit.cli.options import add_execution_arguments, execution_from_args, positive_int
from neuroaikit.execution import ExecutionConfig
from neuroaikit.progress import Progress
from neuroaikit.runs import check_replaceable
from neuroaikit.training import TrainConfig, train

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _cli beside this file, also when a test imports it by path
from _cli import (add_output_options, figures_saver, parse_and_run,  # noqa: E402
                  quick_defaults)

COHEN_RADII = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)  # Cohen et al. 2019's table columns
MNIST_RUNS = {  # name: (training settings beyond the common ones, certificate settings)
    "mnist-smooth-0.25": ({"objective": "gaussian_augmentation", "objective_params": {"sigma": 0.25}},
                          {"method": "smoothing", "sigma": 0.25, "radii": list(COHEN_RADII)}),
    "mnist-smooth-0.5": ({"objective": "gaussian_augmentation", "objective_params": {"sigma": 0.5}},
                         {"method": "smoothing", "sigma": 0.5, "radii": list(COHEN_RADII)}),
    "mnist-hidden-conv1": ({"noise": {"conv1": "gaussian:1.0"}, "noise_warmup": 1.0},
                           {"method": "hidden", "layer": "conv1"}),
    "mnist-hidden-conv1-bound1": ({"noise": {"conv1": "gaussian:1.0"}, "noise_warmup": 1.0, "norm_bound": 1.0},
                                  {"method": "hidden", "layer": "conv1"}),
    "mnist-hidden-conv1-0.5-bound1": ({"noise": {"conv1": "gaussian:0.5"}, "noise_warmup": 1.0, "norm_bound": 1.0},
                                      {"method": "hidden", "layer": "conv1"}),
}
CIFAR_RUN = "cifar-smooth-0.25"


def plans(args, execution: ExecutionConfig) -> dict[str, tuple[TrainConfig, CertificationConfig]]:
    """Every run's training and certificate configuration, validated before anything trains."""
    certify = dict(n0=args.n0, n=args.n, alpha=0.001, n_examples=args.n_certify, batch_size=args.cert_batch)
    mnist = dict(dataset="mnist", data_dir=args.data_dir, model="cnn", model_kwargs={"channels": [16, 32], "hidden": 256},
                 epochs=args.epochs, train_subset=args.train_subset, lr=2e-3, schedule="cosine", execution=execution)
    found = {}
    if "mnist" in args.datasets:
        found = {name: (TrainConfig(**mnist, **training), CertificationConfig(**certify, **cert))
                 for name, (training, cert) in MNIST_RUNS.items()}
    if "cifar10" in args.datasets:
        cifar = TrainConfig(dataset="cifar10", data_dir=args.data_dir, model="resnet18", model_kwargs={"width": 0.25},
                            epochs=args.cifar_epochs, train_subset=args.cifar_train_subset, lr=2e-3, schedule="cosine",
                            augment="crop-flip", objective="gaussian_augmentation", objective_params={"sigma": 0.25},
                            eval_draws=5, execution=execution)
        found[CIFAR_RUN] = (cifar, CertificationConfig(**{**certify, "n": args.cifar_n}, method="smoothing", sigma=0.25,
                                                       radii=list(COHEN_RADII)))
    return found


def certificate_figures(cert) -> dict:
    return {"method": cert.method, "site": cert.site, "sigma": cert.sigma, "sensitivity": cert.sensitivity,
            "n0": cert.n0, "n": cert.n, "alpha": cert.alpha, "n_examples": cert.n_examples,
            "max_radius": cert.max_radius, "abstain_fraction": cert.abstain_fraction,
            "smoothed_accuracy": cert.smoothed_accuracy,
            "curve": [{"radius": point.radius, "certified_accuracy": point.certified_accuracy} for point in cert.curve],
            "seconds": cert.seconds}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True,
                        help="folder with the dataset files, or the folder above mnist/ and cifar10-subset/")
    parser.add_argument("--datasets", nargs="+", choices=("mnist", "cifar10"), default=["mnist", "cifar10"],
                        help="which runs: the five MNIST runs, the CIFAR-10 ResNet, or both (default both)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 1 epoch on 2,000 images, 8 certified images, n 200 (n0 20)")
    parser.add_argument("--epochs", type=positive_int, default=None, help="MNIST epochs (default 2; quick 1)")
    parser.add_argument("--train-subset", type=positive_int, default=None,
                        help="MNIST training images (default 30,000; quick 2,000)")
    parser.add_argument("--cifar-epochs", type=positive_int, default=None, help="CIFAR-10 epochs (default 4; quick 1)")
    parser.add_argument("--cifar-train-subset", type=positive_int, default=None,
                        help="CIFAR-10 training images (default all in --data-dir; quick 256)")
    parser.add_argument("--n-certify", type=positive_int, default=None, help="certified test images (default 50; quick 8)")
    parser.add_argument("--n0", type=positive_int, default=None, help="selection draws (default 100; quick 20)")
    parser.add_argument("--n", type=positive_int, default=None, help="MNIST estimation draws (default 10,000; quick 200)")
    parser.add_argument("--cifar-n", type=positive_int, default=None,
                        help="CIFAR-10 estimation draws (default 1,000; quick 200)")
    parser.add_argument("--cert-batch", type=positive_int, default=10, help="images per certification batch (default 10)")
    add_execution_arguments(parser, threads=1)
    add_output_options(parser, "runs/bench/certified_accuracy", figures="after each measurement")
    return parse_and_run(parser, run, argv)


def run(args):
    pick = quick_defaults(args.quick)
    args.epochs = pick(args.epochs, 1, 2)
    args.train_subset = pick(args.train_subset, 2000, 30000)
    args.cifar_epochs = pick(args.cifar_epochs, 1, 4)
    args.cifar_train_subset = pick(args.cifar_train_subset, 256, None)
    args.n_certify = pick(args.n_certify, 8, 50)
    args.n0 = pick(args.n0, 20, 100)
    args.n = pick(args.n, 200, 10000)
    args.cifar_n = pick(args.cifar_n, 200, 1000)
    execution = execution_from_args(args)
    runs = plans(args, execution)
    out = Path(args.out)
    for name in runs:
        check_replaceable(out / name, args.overwrite)
    figures: dict = {"mnist_epochs": args.epochs, "mnist_train_images": args.train_subset,
                     "cifar_epochs": args.cifar_epochs if "cifar10" in args.datasets else None,
                     "threads": args.threads, "runs": []}
    save = figures_saver(args.json, figures)
    for name, (train_config, cert_config) in runs.items():
        row: dict = {"run": name, "complete": False}
        figures["runs"].append(row)
        started = time.time()
        trained = train(train_config, out / name, overwrite=args.overwrite, progress=Progress(interactive=False))
        row["train_s"] = time.time() - started
        # the whole test split: one draw, the deployed vote and, for a noisy model, noise off
        row["test_accuracy"] = trained.metrics.get("test_accuracy")
        save()
        cert = certify_run(trained.path, config=cert_config, execution=execution, overwrite=True,
                           progress=Progress(enabled=False))
        row["certificate"] = certificate_figures(cert)
        row["complete"] = True
        save()
        curve = " ".join(f"{point.certified_accuracy:.2f}@{point.radius:.3g}" for point in cert.curve)
        print(f"{name:<30} test {row['test_accuracy']}  sensitivity {cert.sensitivity:.3f}  cap {cert.max_radius:.3f}  "
              f"abstain {cert.abstain_fraction:.2f}  certified {curve}", flush=True)
    return figures


if __name__ == "__main__":
    main()
