"""``neuroaikit twin fit|evaluate|probe``: digital twin of mouse visual cortex."""

from __future__ import annotations

NAME = "twin"
HELP = "fit, evaluate and probe a digital twin (core + readout) of mouse visual cortex"
DESCRIPTION = """\
A digital twin predicts each neuron's response to any image. It is a convolutional core
shared by all neurons plus a Gaussian readout (each neuron reads the core at its learned
receptive-field position), fitted with the Sensorium recipe (Poisson loss, Adam, early
stopping on validation correlation, learning-rate decay).

  fit DATA           fit a twin, evaluate it on the test tier beside the baselines (pixel
                     ridge, LN model) and write a run folder with report.html.
  evaluate RUN_DIR [DATA]
                     Sensorium metrics (single-trial correlation, correlation to average,
                     FEVE, oracle, fraction of oracle) on DATA (default: the fit's data).
  probe RUN_DIR      in-silico experiments: orientation / spatial-frequency tuning from
                     gratings, receptive fields (gradients, reverse correlation), most
                     exciting inputs; figures in report.html.

DATA is a Sensorium FileTree folder or .zip, an .nwb file, antolik2016_mouse_v1.npz
(--region 1|2|3), allen_natural_scenes_v1.npz, or the word 'synthetic' (simulated V1
with known receptive fields; --synthetic KEY=VALUE sets n_neurons, image_shape,
n_train, repeats, seed ...).

examples:
  neuroaikit twin fit synthetic --synthetic n_neurons=100 --out runs/twin-synthetic
  neuroaikit twin fit ../shared/data/neural/allen_natural_scenes_v1.npz --out runs/twin-allen
  neuroaikit twin fit static20457-5-9-preproc0.zip --time-limit 2400 --out runs/twin-sensorium
  neuroaikit twin evaluate runs/twin-sensorium
  neuroaikit twin probe runs/twin-synthetic
"""


def add_arguments(parser):
    import argparse

    sub = parser.add_subparsers(dest="twin_command", metavar="ACTION")
    fit = sub.add_parser(
        "fit", help="fit a twin to DATA and write a run folder",
        description="Fit a core + readout twin to DATA (train tier; validation tier for early stopping, "
        "10%% of train images when absent), evaluate on the test tier and write a run folder "
        "(model.json, weights, metrics.json, results/twin_fit.json, results/twin_eval.json, report.html).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    fit.add_argument("data", help="FileTree folder/.zip, .nwb, .npz, or 'synthetic'")
    fit.add_argument("--out", required=True, help="run folder to write")
    fit.add_argument("--region", type=int, help="Antolik region 1, 2 or 3")
    fit.add_argument("--core", choices=("cnn", "linear"), default="cnn", help="'linear' fits the LN model")
    fit.add_argument("--readout", choices=("gaussian", "factorized"), default="gaussian")
    fit.add_argument("--channels", type=int, default=32, help="core channels")
    fit.add_argument("--layers", type=int, default=3, help="core layers")
    fit.add_argument("--no-depth-separable", action="store_true", help="full convolutions in hidden layers")
    fit.add_argument("--no-cortex-grid", action="store_true", help="learn each RF position freely instead of from cortical coordinates")
    fit.add_argument("--behavior", action="store_true", help="behaviour modulator (and --shifter) inputs")
    fit.add_argument("--shifter", action="store_true", help="shift readout positions by pupil centre")
    fit.add_argument("--batch-size", type=int, default=64)
    fit.add_argument("--lr", type=float, default=0.009)
    fit.add_argument("--max-epochs", type=int, default=200)
    fit.add_argument("--patience", type=int, default=5)
    fit.add_argument("--time-limit", type=float, help="stop training after this many seconds")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--threads", type=int, help="torch CPU threads (on a shared, busy machine 1 is often fastest)")
    fit.add_argument("--no-baselines", action="store_true", help="skip pixel ridge and LN baselines")
    fit.add_argument("--synthetic", action="append", metavar="KEY=VALUE", help="simulator options for DATA=synthetic")
    fit.add_argument("--no-report", action="store_true", help="do not write report.html")

    ev = sub.add_parser("evaluate", help="Sensorium metrics of a fitted twin", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                        description="Score RUN_DIR's twin on DATA (default: the data it was fitted on) and save results/twin_eval.json.")
    ev.add_argument("run_dir")
    ev.add_argument("data", nargs="?", help="data set (default: the fit's)")
    ev.add_argument("--region", type=int, help="Antolik region 1, 2 or 3")
    ev.add_argument("--no-baselines", action="store_true")
    ev.add_argument("--no-report", action="store_true")

    pr = sub.add_parser("probe", help="in-silico experiments on a fitted twin", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                        description="Gratings tuning, RF maps and most exciting inputs of RUN_DIR's twin; results/twin_probe.json and report.html.")
    pr.add_argument("run_dir")
    pr.add_argument("--neurons", type=int, default=8, help="how many (most predictable) neurons to map")
    pr.add_argument("--mei-steps", type=int, default=100)
    pr.add_argument("--noise-images", type=int, default=2000, help="white-noise images for reverse correlation")
    pr.add_argument("--no-report", action="store_true")


def _synthetic_options(items) -> dict:
    from .options import parse_assignments

    opts = parse_assignments(items, "--synthetic")
    if "image_shape" in opts:
        opts["image_shape"] = tuple(opts["image_shape"])
    return opts


def run(args) -> int:
    from ..errors import ConfigError
    from ..neural.fit import TwinFitConfig
    from ..neural.twin import evaluate_run, fit_run, probe_run
    from ..report import build_report

    if args.twin_command == "fit":
        cfg = TwinFitConfig(
            core=args.core, readout=args.readout, hidden_channels=args.channels, layers=args.layers,
            depth_separable=not args.no_depth_separable, cortex_grid=not args.no_cortex_grid,
            use_behavior=args.behavior, shifter=args.shifter, batch_size=args.batch_size, lr=args.lr,
            max_epochs=args.max_epochs, patience=args.patience, time_limit=args.time_limit, seed=args.seed, threads=args.threads,
        )
        run_ = fit_run(args.data, args.out, cfg, region=args.region, synthetic=_synthetic_options(args.synthetic), baselines=not args.no_baselines)
        path = run_.path
    elif args.twin_command == "evaluate":
        evaluate_run(args.run_dir, args.data, args.region, baselines=not args.no_baselines)
        path = args.run_dir
    elif args.twin_command == "probe":
        probe_run(args.run_dir, args.neurons, args.mei_steps, args.noise_images)
        path = args.run_dir
    else:
        raise ConfigError("choose an action: neuroaikit twin fit|evaluate|probe (see --help)")
    if not args.no_report:
        print(f"report: {build_report(path)}")
    print(f"run: {path}")
    return 0
