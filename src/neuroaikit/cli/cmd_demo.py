"""``neuroaikit demo``: the main job on embedded data, run as a sweep."""

from __future__ import annotations

from .options import add_quiet_argument

NAME = "demo"
HELP = "train deterministic, input-noise and hidden-noise CNNs on embedded digits; clean and EOT-attacked accuracy; report"
DESCRIPTION = """\
No files needed: uses scikit-learn's bundled 8x8 digits. Trains a deterministic CNN and
CNNs with Gaussian noise on the input or after the first hidden ReLU (rectified) at several
noise levels (the noise ramps up over the first quarter of training), prints clean test
accuracy (one noise draw and a vote of 21 draws) and robust accuracy under an EOT-PGD attack
adapted to the noise (eps 0.1, 100 test digits) against the noise level, and writes
OUT/report.html with the robust- and clean-accuracy-vs-sigma figure.

The models are the trials of a sweep (see 'neuroaikit sweep --help'): on a local Ray when Ray
is installed (pip install 'neuroaikit[ray]'), else one after the other in this process. Each
model is a run folder OUT/trials/NAME; an interrupted demo continues where it stopped when
rerun with the same --out; a finished one is replaced only with --overwrite.

example:
  neuroaikit demo --out demo-output
"""


def add_arguments(parser):
    parser.add_argument("--out", default="demo-output", help="output folder (default demo-output)")
    parser.add_argument("--overwrite", action="store_true", help="replace a finished demo at --out (retrains every model)")
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.1, 0.25, 0.5, 1.0, 2.0],
                        help="noise levels (default 0.1 0.25 0.5 1.0 2.0)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs per model (default 20)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of every model's training and of the EOT-PGD check (default 0)")
    parser.add_argument("--backend", choices=("ray", "serial"),
                        help="where the models train (default: ray when installed, else serial)")
    parser.add_argument("--workers", type=int, help="models trained at once on Ray (default: the CPUs available)")
    add_quiet_argument(parser)


def run(args) -> int:
    import time

    from ..demo import NoiseDemoResult, default_backend, format_sweep_table, run_demo
    from ..errors import ConfigError, DataError
    from ..progress import default_progress
    from ..sweep.runner import check_backend

    if args.epochs < 1:
        raise ConfigError(f"--epochs must be >= 1, got {args.epochs}")
    if any(s < 0 for s in args.sigmas):
        raise ConfigError("--sigmas must be >= 0")
    t0 = time.perf_counter()
    backend = args.backend or default_backend()
    if args.backend is None and backend != "ray" and args.workers is not None:
        raise ConfigError("--workers runs the demo on Ray, which is not installed (pip install 'neuroaikit[ray]')")
    check_backend(backend, args.workers)  # before the demo's folder exists
    progress = default_progress(quiet=args.quiet)
    run_ = run_demo(args.out, args.sigmas, args.epochs, args.seed, backend=backend, workers=args.workers,
                    overwrite=args.overwrite, progress=progress)
    result = NoiseDemoResult.load(run_)
    if result is None:  # pragma: no cover - run_demo writes it before returning
        raise DataError(f"{run_.path} holds no results/noise_demo.json")
    if result.workers is None:
        how = "every model had been trained before"
    elif result.backend == "ray":
        how = f"models trained on a local Ray, {result.workers} at once"
    else:
        how = "models trained one after the other in this process"
    print()
    print(format_sweep_table(result.rows))
    print(f"\nreport: {run_.path / 'report.html'}")
    print(f"demo finished in {time.perf_counter() - t0:.0f} s (measured wall time; {how})")
    return 0
