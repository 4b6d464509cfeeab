"""EOT-PGD speed and strength: neuroaikit's vectorised EOT against torchattacks' EOTPGD.

Both attack the same hidden-noise CNN (trained here on MNIST for a short while), with the
same eps, step, number of steps and EOT 20, in one run. torchattacks loops over the EOT
draws (one forward/backward per draw); neuroaikit replicates the batch once inside the
model at the first noise layer, so the noise-free layers before it run once per step and
the draws share one forward/backward (the gradients are the same expectation).

Success is judged the same way for both: the adversarial image counts as robust only if
the model (one draw per prediction) is right in a majority of 10 fresh draws.

    python benchmarks/attack_speed.py --data-dir ../shared/data/mnist            # 100 images, 20 steps
    python benchmarks/attack_speed.py --data-dir ../shared/data/mnist --quick    # 50 images, 10 steps

The models are trained into run folders under ``--out`` (default ``runs/bench/attack_speed``);
a folder holding a finished run from before is refused unless ``--overwrite`` is given.

``--crosscheck N`` also compares, on a deterministic CNN and the first N test images, our PGD
with torchattacks' PGD (no random start, last iterate: the same algorithm) and our APGD-CE
with the official AutoAttack APGD-CE (package ``pyautoattack``), 100 iterations.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from neuroaikit.cli.options import positive_int
from neuroaikit.attacks import PGD
from neuroaikit.attacks.evaluate import majority_correct
from neuroaikit.data import load_dataset
from neuroaikit.errors import NeuroAIKitError
from neuroaikit.noise import InferenceRule
from neuroaikit.progress import silent
from neuroaikit.runs import check_replaceable
from neuroaikit.training import TrainConfig, train
from neuroaikit.io import write_text

DETERMINISTIC = "deterministic"  # the run folder of the --crosscheck model


def run_name(site: str) -> str:
    return f"noise-{site}"


def trained_cnn(data_dir, n_train: int, noise: dict, out: Path, overwrite: bool):
    # the noise ramps in over the epoch: sigma 0.5 from the first batch stalls a fresh network at chance
    run = train(TrainConfig(dataset="mnist", data_dir=data_dir, model="cnn", noise=noise, noise_warmup=1.0 if noise else 0.0,
                            epochs=1, train_subset=n_train, test_subset=1000, eval_rule="single", eval_draws=1),
                out, overwrite=overwrite, progress=silent())
    return run.load_model()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="MNIST folder (default: the package's search path)")
    parser.add_argument("--quick", action="store_true", help="50 images, 10 steps, 3,000 training images")
    parser.add_argument("--n-examples", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--eps", type=float, default=0.3)
    parser.add_argument("--eot", type=int, default=20)
    parser.add_argument("--sites", nargs="+", default=["relu1", "relu2", "relu3"],
                        help="noise placements to time (default: after relu1, early, relu2 and relu3, late)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1: a shared machine)")
    parser.add_argument("--out", default="runs/bench/attack_speed",
                        help="folder for the models' run folders (default runs/bench/attack_speed)")
    parser.add_argument("--overwrite", action="store_true", help="replace finished run folders in --out")
    parser.add_argument("--crosscheck", type=int, default=0, metavar="N",
                        help="also compare PGD / APGD-CE with torchattacks / AutoAttack on N test images")
    parser.add_argument("--crosscheck-eps", type=float, default=0.1)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    out = Path(args.out)
    names = [run_name(site) for site in args.sites] + ([DETERMINISTIC] if args.crosscheck else [])
    try:  # the data and every run folder checked before the first model trains
        test_set = load_dataset("mnist", "test", data_dir=args.data_dir)
        for name in names:
            check_replaceable(out / name, args.overwrite)
        return measure(args, test_set, out)
    except NeuroAIKitError as error:
        parser.error(str(error))


def measure(args, test_set, out: Path) -> None:
    """Train the models, time both attacks on each and print (and write) the figures."""
    import torchattacks

    torch.set_num_threads(args.threads)
    n = args.n_examples or (50 if args.quick else 100)
    steps = args.steps or (10 if args.quick else 20)
    alpha = 2.5 * args.eps / steps
    n_train = 3000 if args.quick else 20000
    x, y = test_set.images[:n], test_set.labels[:n]
    figures = {"train_images": n_train, "n_examples": n, "eps": args.eps, "steps": steps, "alpha": alpha, "eot": args.eot,
               "threads": args.threads, "noise": "gaussian:0.5", "sites": []}
    if args.crosscheck:
        figures["crosscheck"] = crosscheck(args.data_dir, test_set, args.crosscheck, args.crosscheck_eps, n_train,
                                           out / DETERMINISTIC, args.overwrite)
    print(f"MNIST SmallCNN (32-64-1024), Gaussian noise sigma 0.5, trained on {n_train} images; "
          f"{n} test images, Linf eps {args.eps}, {steps} steps, alpha {alpha:.4f}, EOT {args.eot}, {args.threads} thread(s)")
    print(f"{'noise after':<12} {'ours s':>8} {'torchattacks s':>15} {'speed-up':>9} {'ours acc':>9} {'theirs acc':>11}")
    for site in args.sites:
        model = trained_cnn(args.data_dir, n_train, {site: "gaussian:0.5"}, out / run_name(site), args.overwrite)
        rule = InferenceRule("single")
        clean = majority_correct(model, x, y, rule, 10)

        t0 = time.perf_counter()
        ours = PGD(model, eps=args.eps, alpha=alpha, steps=steps, eot=args.eot, keep_best=False)(x, y)
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        theirs = torchattacks.EOTPGD(model, eps=args.eps, alpha=alpha, steps=steps, eot_iter=args.eot)(x, y)
        t_theirs = time.perf_counter() - t0
        acc_ours = (clean & majority_correct(model, ours, y, rule, 10)).float().mean().item()
        acc_theirs = (clean & majority_correct(model, theirs, y, rule, 10)).float().mean().item()
        print(f"{site:<12} {t_ours:8.2f} {t_theirs:15.2f} {t_theirs / t_ours:8.2f}x {acc_ours:9.3f} {acc_theirs:11.3f}"
              f"   (clean {clean.float().mean().item():.3f})")
        figures["sites"].append({"noise_after": site, "ours_s": t_ours, "torchattacks_s": t_theirs,
                                 "speedup": t_theirs / t_ours, "ours_robust_accuracy": acc_ours,
                                 "torchattacks_robust_accuracy": acc_theirs, "clean_accuracy": clean.float().mean().item()})
    if args.json:
        write_text(args.json, json.dumps(figures, indent=2))


def crosscheck(data_dir, test_set, n, eps, n_train, out: Path, overwrite: bool):
    import torchattacks
    from pyautoattack.autopgd_base import APGDAttack

    from neuroaikit.attacks import APGD

    model = trained_cnn(data_dir, n_train, {}, out, overwrite)
    x, y = test_set.images[:n], test_set.labels[:n]
    acc = lambda images: (model(images).argmax(1) == y).float().mean().item()
    rows = []
    with torch.no_grad():
        rows.append(("clean", acc(x), acc(x), 0.0, 0.0))
    settings = dict(eps=eps, alpha=0.01, steps=40)
    t0 = time.perf_counter()
    ours = PGD(model, random_start=False, keep_best=False, **settings)(x, y)
    t1 = time.perf_counter()
    theirs = torchattacks.PGD(model, random_start=False, **settings)(x, y)
    t2 = time.perf_counter()
    with torch.no_grad():
        rows.append(("PGD-40 vs torchattacks.PGD", acc(ours), acc(theirs), t1 - t0, t2 - t1))
    t0 = time.perf_counter()
    ours = APGD(model, eps=eps, steps=100)(x, y)
    t1 = time.perf_counter()
    theirs = APGDAttack(model, n_iter=100, norm="Linf", eps=eps, loss="ce", seed=0, device="cpu").perturb(x, y)
    t2 = time.perf_counter()
    with torch.no_grad():
        rows.append(("APGD-CE-100 vs AutoAttack APGD-CE", acc(ours), acc(theirs), t1 - t0, t2 - t1))
    print(flush=True)
    print(f"cross-check: deterministic SmallCNN, first {n} MNIST test images, Linf eps {eps}")
    print(f"{'':<36} {'ours':>7} {'reference':>10} {'diff (pp)':>10} {'ours s':>7} {'ref s':>7}")
    for name, a, b, ta, tb in rows:
        print(f"{name:<36} {a:7.3f} {b:10.3f} {100 * (a - b):10.1f} {ta:7.1f} {tb:7.1f}")
    return [{"attack": name, "eps": eps, "n_examples": n, "ours_accuracy": a, "reference_accuracy": b,
             "ours_s": ta, "reference_s": tb} for name, a, b, ta, tb in rows]


if __name__ == "__main__":
    main()
