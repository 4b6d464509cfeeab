"""MNIST robustness at Linf eps 0.3 under the full protocol, for three CNNs:

1. an undefended CNN (expected: ~0% robust accuracy);
2. a noise-only CNN (Gaussian noise after relu1, trained with it, no adversarial training):
   whatever it really is under APGD with EOT, with the sanity checks;
3. an adversarially trained hidden-noise CNN (FGSM with random start, Wong et al. 2020; N-FGSM,
   de Jorge et al. 2022; or PGD-k, Madry et al. 2018; noise layers active during training), with the
   catastrophic-overfitting guard (PGD accuracy on 256 held-out images each epoch).
   Target (issue 3): >= 88% robust with >= 98% clean (Madry's CNN: 88.5% under AutoAttack).

Every model is trained with ``neuroaikit.training.train`` into a run folder under ``--out``
and evaluated with ``neuroaikit.attacks.evaluate_run`` (the same as ``neuroaikit evaluate``),
which writes ``results/robustness.json``, both on ``--device``/``--threads`` (default one thread);
the training time is printed beside the figures. A
model whose run folder holds a finished run from before is refused, before anything trains,
unless ``--overwrite`` is given.

    python benchmarks/adversarial_training.py --data-dir ../shared/data/mnist --quick
    python benchmarks/adversarial_training.py --data-dir ../shared/data/mnist --epochs 10 --n-examples 1000
    # the recipe that met the target (the robustness guide's PGD-trained hidden-noise CNN):
    python benchmarks/adversarial_training.py --data-dir ../shared/data/mnist --models adversarial --objective pgd \
        --train-steps 5 --train-alpha 0.15 --noise relu3=gaussian:0.5 --epochs 10 --n-examples 200 --sweep 0.2 0.3 0.4
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


from neuroaikit.attacks.evaluate import RobustnessConfig, evaluate_run
from neuroaikit.attacks.training import OverfitGuard
from neuroaikit.cli.options import add_execution_arguments, execution_from_args, positive_int
from neuroaikit.data import load_dataset
from neuroaikit.errors import ConfigError
from neuroaikit.io import write_text
from neuroaikit.progress import Progress
from neuroaikit.runs import check_replaceable
from neuroaikit.training import TrainConfig, train
from neuroaikit.training.loop import check_train_config

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _cli beside this file, also when a test imports it by path
from _cli import add_output_options, parse_and_run, quick_defaults  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--quick", action="store_true",
                        help="10,000 training images, 2 epochs, quick protocol on 64 images (a smoke run, not a claim)")
    parser.add_argument("--models", nargs="+", default=["standard", "noise", "adversarial"],
                        choices=["standard", "noise", "adversarial"])
    parser.add_argument("--objective", default="fgsm_rs", choices=["fgsm_rs", "n_fgsm", "pgd", "trades"])
    parser.add_argument("--train-steps", type=int, default=40, help="PGD / TRADES steps of the training attack (default 40)")
    parser.add_argument("--train-alpha", type=float, default=0.01, help="their step size (default 0.01)")
    parser.add_argument("--noise", default="relu1=gaussian:0.5", help="noise site=spec of the noisy models")
    parser.add_argument("--epochs", type=positive_int, default=None, help="default 10 (quick 2)")
    parser.add_argument("--train-subset", type=positive_int, default=None,
                        help="training images (default all 60,000; quick 10,000)")
    parser.add_argument("--n-examples", type=positive_int, default=None,
                        help="evaluated test images (default 500; quick and --quick-protocol 64)")
    parser.add_argument("--eps", type=float, default=0.3)
    parser.add_argument("--sweep", type=float, nargs="+", default=None,
                        help="evaluated eps values (default 0.05 0.1 0.2 0.3 0.4 0.5; quick 0.1 0.2 0.3 0.4)")
    add_execution_arguments(parser, threads=1)
    parser.add_argument("--quick-protocol", action="store_true",
                        help="full training, but the quick protocol (APGD 20 steps, EOT 5, Square 100 queries)")
    parser.add_argument("--noise-warmup", type=float, default=1.0,
                        help="epochs over which the noise ramps in (default 1; large noise stalls a fresh network)")
    add_output_options(parser, "runs/bench/adversarial_training", holds="the models' run folders, one per model")
    return parse_and_run(parser, run, argv)


def model_plan(kind: str, args, test, site: str, spec: str, epochs: int, subset: int | None, execution):
    """The ``TrainConfig`` and callbacks of one compared model."""
    common = dict(dataset="mnist", data_dir=args.data_dir, model="cnn", epochs=epochs, train_subset=subset,
                  test_subset=1000 if args.quick else None,
                  eval_rule="single", eval_draws=1, lr=1e-3, optimizer="adam", execution=execution)
    if kind == "standard":
        return TrainConfig(**common), []
    if kind == "noise":
        return TrainConfig(noise={site: spec}, noise_warmup=args.noise_warmup, **common), []
    single_step = args.objective in ("fgsm_rs", "n_fgsm")
    params = ({"eps": args.eps} if single_step else
              {"eps": args.eps, "alpha": args.train_alpha, "steps": args.train_steps})
    # held-out guard batch: the last 256 test images, never among the evaluated first N
    callbacks = [OverfitGuard(test.images[-256:], test.labels[-256:], eps=args.eps)]
    cfg = TrainConfig(noise={site: spec}, noise_warmup=args.noise_warmup, objective=args.objective,
                      objective_params=params,
                      schedule="onecycle", lr=5e-3, **{k: v for k, v in common.items() if k != "lr"})
    return cfg, callbacks


def _check_key(check) -> str:
    """A sanity check's key in the figures: its protocol page's name (``more-iterations``), which a
    guide can quote without spaces; its own name (spaces and all) where it has no page of its own,
    so two such checks cannot share the overview page's name."""
    page = Path(check.page).stem
    return check.name if page == "index" else page


def run(args) -> None:
    execution = execution_from_args(args)
    pick = quick_defaults(args.quick)
    epochs = pick(args.epochs, 2, 10)
    subset = pick(args.train_subset, 10000, None)
    site, sep, spec = args.noise.partition("=")
    if not sep or not site:
        raise ConfigError(f"--noise must look like SITE=SPEC (e.g. relu1=gaussian:0.5), got {args.noise!r}")
    eps_sweep = pick(args.sweep, [0.1, 0.2, 0.3, 0.4], [0.05, 0.1, 0.2, 0.3, 0.4, 0.5])
    quick_protocol = args.quick or args.quick_protocol
    n_examples = quick_defaults(quick_protocol)(args.n_examples, 64, 500)
    protocol = (RobustnessConfig.quick(n_examples=n_examples, eps=eps_sweep, reference_eps=args.eps) if quick_protocol
                else RobustnessConfig(n_examples=n_examples, eps=eps_sweep, reference_eps=args.eps))
    test = load_dataset("mnist", "test", data_dir=args.data_dir)
    out = Path(args.out)
    plans = {}
    for kind in args.models:  # every model's settings, checked before the first model trains
        check_replaceable(out / kind, args.overwrite)
        plans[kind] = model_plan(kind, args, test, site, spec, epochs, subset, execution)
        check_train_config(plans[kind][0])
    summary = []
    sweeps: dict[str, list] = {}
    clean_one_pass: dict[str, float] = {}
    test_accuracy: dict[str, dict] = {}
    checks: dict[str, dict] = {}
    histories: dict[str, list] = {}
    guards: dict[str, dict] = {}
    for kind, (cfg, callbacks) in plans.items():
        t0 = time.time()
        # epoch lines, no bars: the output is read as a log
        trained = train(cfg, out / kind, overwrite=args.overwrite, callbacks=callbacks,
                        progress=Progress(interactive=False))
        train_s = time.time() - t0
        t0 = time.time()
        result = evaluate_run(trained.path, data_dir=args.data_dir, config=protocol, execution=execution)
        eval_s = time.time() - t0
        warns = [check.name for check in result.warnings]
        summary.append((kind, result.clean_accuracy, result.robust_accuracy, train_s, eval_s, warns))
        # every eps and every attack, so a guide's per-eps table can quote the page
        sweeps[kind] = [{"eps": row.eps, "worst_case": row.worst_case, "attacks": row.attacks,
                         "black_box_only_successes": row.black_box_only_successes} for row in result.sweep]
        clean_one_pass[kind] = result.clean_accuracy_one_pass
        checks[kind] = {_check_key(check): {"check": check.name, "status": check.status, **check.numbers}
                        for check in result.checks}
        test_accuracy[kind] = trained.metrics["test_accuracy"]  # the whole test split, one draw
        # per epoch: loss, training accuracy, test accuracy and the guard's PGD accuracy (a collapse shows there)
        histories[kind] = trained.metrics.get("history", [])
        guard = next((c for c in callbacks if isinstance(c, OverfitGuard)), None)
        if guard is not None:  # which epoch's weights the run kept, and where the guard stopped it (None: it did not)
            guards[kind] = {"best_epoch": guard.best_epoch_, "stopped_at": guard.tripped_}
    print(f"\nMNIST, Linf eps {args.eps}, {protocol.n_examples} test images, APGD {protocol.steps} steps, "
          f"EOT {protocol.eot}, Square {protocol.square_queries} queries, majority of {protocol.checks}; "
          f"{epochs} epochs on {subset or 60000} images")
    print(f"{'model':<12} {'clean':>6} {'robust':>7} {'train s':>8} {'eval s':>7}  checks not passed")
    for kind, clean, robust, train_s, eval_s, warns in summary:
        print(f"{kind:<12} {clean:6.3f} {robust:7.3f} {train_s:8.0f} {eval_s:7.0f}  {', '.join(warns) or 'none'}")
    if args.json:
        figures = {"dataset": "mnist", "eps": args.eps, "n_examples": protocol.n_examples, "apgd_steps": protocol.steps,
                   "eot": protocol.eot, "square_queries": protocol.square_queries, "checks": protocol.checks,
                   "epochs": epochs, "train_images": subset or 60000, "threads": execution.threads, "device": execution.device,
                   "models": [{"model": kind, "clean_accuracy": clean, "clean_accuracy_one_pass": clean_one_pass[kind],
                               "test_accuracy": test_accuracy[kind], "robust_accuracy": robust, "train_s": train_s,
                               "eval_s": eval_s, "checks_not_passed": ", ".join(warns) or "none",
                               "sweep": sweeps[kind], "checks": checks[kind], "history": histories[kind],
                               "epochs_run": len(histories[kind]), **({"guard": guards[kind]} if kind in guards else {})}
                              for kind, clean, robust, train_s, eval_s, warns in summary]}
        write_text(args.json, json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
