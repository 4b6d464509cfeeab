"""The seed-scale comparison on CIFAR-10: hidden-layer noise against input noise against
adversarial training, each under the full attack protocol and certified.

A pre-activation ResNet-18 (``--width`` times the usual 64 ... 512 channels) is trained four ways
on the CIFAR-10 images of ``--data-dir`` (the shared subset: 4,000 training and 1,000 test
images), each into its own run folder under ``--out``, through the execution layer
(``--device cuda`` on a GPU):

- ``standard``: cross-entropy, no noise (the reference);
- ``input``: Gaussian noise of s.d. ``--input-sigma`` on the pixels, on in training and at test
  time (the smoothing base classifier of Cohen et al. 2019);
- ``hidden``: Gaussian noise of s.d. ``--hidden-sigma`` after ``--hidden-layer`` (default
  ``conv1``), on in training (ramped in over the first epoch) and at test time: the seeds' brain
  noise in a deeper layer;
- ``adversarial``: FGSM with a random start at Linf ``8/255`` (Wong et al. 2020), no noise.

Every model then goes through the same three measurements, each the toolkit's own workflow:

1. ``evaluate_run`` (``neuroaikit evaluate``): the attack protocol in Linf at ``--eps`` (APGD-CE,
   APGD-DLR, Square, transfer and random noise, EOT for the noisy models, the deployed rule
   checked by a majority of fresh draws, the sanity checks), headline at 8/255;
2. the same protocol in L2 at ``--l2-eps`` (APGD only), to set beside the L2 certificates;
3. ``certify_run`` (``neuroaikit certify``): randomized smoothing at ``--input-sigma`` for every
   model (the input model is the one trained for it), and PixelDP at the hidden noise site for
   the hidden model (its pre-noise chain, ``conv1``, bounded by its operator norm).

A model whose run folder under ``--out`` holds a finished run from before is refused, before
anything trains, unless ``--overwrite`` is given.

The figures are written to ``--json`` after every measurement (training, each protocol, each
certificate), so a run stopped by a time limit keeps what it measured; a model's row says
``"complete": false`` until all of its measurements are in.

    python benchmarks/cifar_noise_defenses.py --data-dir ../shared/data/cifar10-subset --quick
    python benchmarks/cifar_noise_defenses.py --data-dir ../shared/data/cifar10-subset --device cuda --json out.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from neuroaikit.attacks.evaluate import RobustnessConfig, evaluate_run
from neuroaikit.certify import CertificationConfig
from neuroaikit.certify.sensitivity import pre_noise_chain
from neuroaikit.certify.workflow import certify_run
from neuroaikit.cli.options import add_execution_arguments, execution_from_args
from neuroaikit.execution import ExecutionConfig
from neuroaikit.models import build_model
from neuroaikit.progress import Progress
from neuroaikit.runs import check_replaceable
from neuroaikit.training import TrainConfig, train

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _cli beside this file, also when a test imports it by path
from _cli import (add_output_options, figures_saver, parse_and_run,  # noqa: E402
                  quick_defaults)

MODELS = ("standard", "input", "hidden", "adversarial")
CERTIFIED_RADII = (0.0, 0.25, 0.5, 0.75, 1.0)  # Cohen et al.'s CIFAR-10 table


def train_config(kind: str, args, execution: ExecutionConfig) -> TrainConfig:
    common = dict(dataset="cifar10", data_dir=args.data_dir, model="resnet18", model_kwargs={"width": args.width},
                  epochs=args.epochs, batch_size=args.batch_size, optimizer="sgd", lr=args.lr, momentum=0.9,
                  weight_decay=5e-4, schedule="onecycle", augment="crop-flip", train_subset=args.train_subset,
                  eval_rule="vote", eval_draws=args.draws, execution=execution)
    if kind == "standard":
        return TrainConfig(**common)
    if kind == "input":
        return TrainConfig(noise={"input": f"gaussian:{args.input_sigma}"}, **common)
    if kind == "hidden":
        return TrainConfig(noise={args.hidden_layer: f"gaussian:{args.hidden_sigma}"}, noise_warmup=1.0, **common)
    return TrainConfig(objective="fgsm_rs", objective_params={"eps": 8 / 255, "alpha": 10 / 255}, **common)


def certification_configs(kind: str, args) -> list[CertificationConfig]:
    configs = [CertificationConfig(method="smoothing", sigma=args.input_sigma, n0=args.n0, n=args.n,
                                   n_examples=args.n_certify, radii=list(CERTIFIED_RADII))]
    if kind == "hidden":
        configs.append(CertificationConfig(method="hidden", layer=args.hidden_layer, n0=args.n0, n=args.n,
                                           n_examples=args.n_certify))
    return configs


def certificate_row(config: CertificationConfig, run_path: Path, execution: ExecutionConfig) -> dict:
    cert = certify_run(run_path, config=config, execution=execution, overwrite=True, progress=Progress(enabled=False))
    return {"method": cert.method, "site": cert.site, "sigma": cert.sigma, "sensitivity": cert.sensitivity,
            "max_radius": cert.max_radius, "abstain_fraction": cert.abstain_fraction,
            "certified_accuracy": {f"{r:g}": cert.certified_accuracy(r) for r in CERTIFIED_RADII},
            "seconds": cert.seconds, "images_per_second": cert.images_per_second}


def protocol_row(result) -> dict:
    return {"clean_accuracy": result.clean_accuracy, "reference_eps": result.reference_eps,
            "robust_accuracy": result.robust_accuracy, "stochastic": result.stochastic,
            "sweep": {f"{row.eps:.5g}": row.worst_case for row in result.sweep},
            "per_attack": result.robust_accuracy_per_attack,
            "checks_not_passed": [check.name for check in result.warnings], "seconds": result.seconds}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="folder with the CIFAR-10 files (the shared subset)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: width 0.125, 1 epoch on 512 images, a tiny protocol and certification")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    add_execution_arguments(parser)
    parser.add_argument("--width", type=float, default=None, help="ResNet-18 width multiplier (default 1; quick 0.125)")
    parser.add_argument("--epochs", type=int, default=None, help="default 30 (quick 1)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1, help="peak SGD learning rate of the one-cycle schedule")
    parser.add_argument("--train-subset", type=int, default=None, help="training images (default all; quick 512)")
    parser.add_argument("--input-sigma", type=float, default=0.25, help="input noise s.d. = smoothing sigma")
    parser.add_argument("--hidden-layer", default="conv1")
    parser.add_argument("--hidden-sigma", type=float, default=0.25, help="hidden noise s.d. (activation units)")
    parser.add_argument("--draws", type=int, default=20, help="votes of the deployed rule of the noisy models")
    parser.add_argument("--n-examples", type=int, default=None, help="attacked test images (default 200; quick 8)")
    parser.add_argument("--eps", type=float, nargs="+", default=None,
                        help="Linf sweep in units of 1/255 (default 2 4 8; quick 8); the headline is read at 8")
    parser.add_argument("--l2-eps", type=float, nargs="+", default=None, help="L2 sweep (default 0.25 0.5)")
    parser.add_argument("--steps", type=int, default=None, help="APGD steps (default 100; quick 5)")
    parser.add_argument("--eot", type=int, default=None, help="EOT draws (default 20; quick 2)")
    parser.add_argument("--square-queries", type=int, default=None, help="default 1000 (quick 20)")
    parser.add_argument("--max-extensions", type=int, default=None,
                        help="how often each sweep may be extended towards chance (default 3; quick 0)")
    parser.add_argument("--checks", type=int, default=None, help="fresh votes of the final check (default 10; quick 3)")
    parser.add_argument("--n-certify", type=int, default=None, help="certified test images (default 500; quick 4)")
    parser.add_argument("--n0", type=int, default=None, help="selection draws (default 100; quick 10)")
    parser.add_argument("--n", type=int, default=None, help="estimation draws (default 10,000; quick 100)")
    add_output_options(parser, "runs/bench/cifar_noise_defenses", holds="the models' run folders, one per model",
                       figures="after each measurement")
    return parse_and_run(parser, run, argv)


def run(args):
    pick = quick_defaults(args.quick)  # an option given (0 included) is used as given, and validated below
    args.width = pick(args.width, 0.125, 1.0)
    args.epochs = pick(args.epochs, 1, 30)
    args.train_subset = pick(args.train_subset, 512, None)
    args.n_certify = pick(args.n_certify, 4, 500)
    args.n0 = pick(args.n0, 10, 100)
    args.n = pick(args.n, 100, 10000)
    protocol = dict(n_examples=pick(args.n_examples, 8, 200), steps=pick(args.steps, 5, 100),
                    eot=pick(args.eot, 2, 20), square_queries=pick(args.square_queries, 20, 1000),
                    random_trials=pick(None, 10, 100), checks=pick(args.checks, 3, 10),
                    max_extensions=pick(args.max_extensions, 0, 3))
    linf = RobustnessConfig(eps=[e / 255 for e in pick(args.eps, [8], [2, 4, 8])], reference_eps=8 / 255, **protocol)
    l2 = RobustnessConfig(norm="L2", eps=pick(args.l2_eps, [0.5], [0.25, 0.5]), reference_eps=0.5, **protocol)
    execution = execution_from_args(args)
    # every setting validated before the first model trains
    plans = {kind: (train_config(kind, args, execution), certification_configs(kind, args)) for kind in args.models}
    if "hidden" in plans:  # the PixelDP chain up to the noise site must be boundable
        pre_noise_chain(build_model("resnet18", in_channels=3, image_size=32, n_classes=10, width=args.width),
                        args.hidden_layer)
    out = Path(args.out)
    for kind in plans:
        check_replaceable(out / kind, args.overwrite)
    figures = {"dataset": "cifar10", "data_dir": str(args.data_dir), "model": "resnet18", "width": args.width,
               "epochs": args.epochs, "train_images": args.train_subset or "all", "input_sigma": args.input_sigma,
               "hidden_layer": args.hidden_layer, "hidden_sigma": args.hidden_sigma, "draws": args.draws,
               "linf_protocol": linf.to_dict(), "l2_protocol": l2.to_dict(),
               "certification": {"n0": args.n0, "n": args.n, "alpha": 0.001, "n_examples": args.n_certify},
               "models": []}
    save = figures_saver(args.json, figures)
    for kind, (config, cert_configs) in plans.items():
        row: dict = {"model": kind, "complete": False}
        figures["models"].append(row)
        t0 = time.time()
        trained = train(config, out / kind, overwrite=args.overwrite, progress=Progress(interactive=False))
        row["train_s"] = time.time() - t0
        row["device"] = trained.metrics.get("execution", {}).get("device")
        row["test_accuracy"] = trained.metrics.get("test_accuracy")
        save()
        # overwrite=True in the measurements only touches the run trained just above: the L2
        # protocol's result replaces the Linf one in it (the figures keep both)
        for norm, protocol_config in (("linf", linf), ("l2", l2)):
            row[norm] = protocol_row(evaluate_run(trained.path, config=protocol_config, execution=execution,
                                                  overwrite=True, progress=Progress(enabled=False)))
            save()
        row["certificates"] = []
        for cert_config in cert_configs:
            row["certificates"].append(certificate_row(cert_config, trained.path, execution))
            save()
        row["total_s"] = time.time() - t0
        row["complete"] = True
        save()
        print(summary_line(row), flush=True)
    print(f"\nCIFAR-10, ResNet-18 x{args.width:g}, {args.epochs} epochs on {args.train_subset or 'all'} training images; "
          f"Linf protocol on {linf.n_examples} test images (APGD {linf.steps} steps, EOT {linf.eot} for noisy models, "
          f"Square {linf.square_queries} queries); certification on {args.n_certify} images, n0 {args.n0}, n {args.n}")
    return figures


def summary_line(row: dict) -> str:
    certified = "; ".join(f"{c['method']}@{c['site']}: " + " ".join(f"{v:.2f}" for v in c["certified_accuracy"].values())
                          for c in row["certificates"])
    return (f"{row['model']:<12} clean {row['linf']['clean_accuracy']:.3f}  Linf 8/255 {row['linf']['robust_accuracy']:.3f}"
            f"  L2 0.5 {row['l2']['robust_accuracy']:.3f}  certified at r={'/'.join(f'{r:g}' for r in CERTIFIED_RADII)}: "
            f"{certified}  ({row['train_s']:.0f} s training, {row['total_s']:.0f} s in all)")


if __name__ == "__main__":
    main()
