"""``neuroaikit calcium infer|evaluate``: calcium imaging -> spikes."""

from __future__ import annotations

NAME = "calcium"
HELP = "infer spikes from calcium traces (OASIS) and score it on ground-truth recordings"
DESCRIPTION = """\
Spike inference from two-photon calcium imaging with OASIS (AR(1)/AR(2) deconvolution with
noise estimation), and its Cascade-style evaluation on simultaneous imaging + electrophysiology
ground truth (correlation between inferred and true spike rate, true rate smoothed by a
Gaussian of 0.2 s by default).

  infer     TRACE_FILE: a Cascade .mat file (CAttached struct), or .npy/.npz/.csv/.txt with
            shape (frames,) or (neurons, frames) plus --rate HZ. --raw computes dF/F from raw
            fluorescence first (running percentile baseline).
  evaluate  tune on half of the files of each dataset, score the other half.

examples:
  neuroaikit calcium evaluate --data-dir ../shared/data/calcium --out runs/calcium-eval
  neuroaikit calcium evaluate --data-dir ../shared/data --dataset DS14 --grid quick --out runs/calcium-ds14
  neuroaikit calcium evaluate --data-dir ../shared/data --dataset DS09 --dataset DS14 --rate 7.5 --noise-level 2 --out runs/calcium-7.5hz
  neuroaikit calcium infer my_dff.npy --rate 30 --params-from runs/calcium-eval --params-indicator GCaMP6f --out runs/my-spikes
  neuroaikit calcium infer raw_F.csv --rate 30 --raw --baseline-window 60 --tau 1.2 --out runs/my-spikes
"""


def add_arguments(parser):
    import argparse

    sub = parser.add_subparsers(dest="calcium_command", metavar="ACTION")
    inf = sub.add_parser(
        "infer",
        help="deconvolve a trace file into spikes (run folder with spikes.npz)",
        description="Deconvolve every trace of TRACE_FILE with OASIS and write a run folder: spikes.npz "
        "(time_i, dff_i, spikes_i, rate_i, denoised_i per trace i), results/calcium_inference.json, report.html. "
        "With a Cascade .mat file the correlation with its ground-truth spikes is reported too.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inf.add_argument("trace_file", help=".mat (Cascade CAttached), .npy, .npz, .csv or .txt")
    inf.add_argument("--out", required=True, help="run folder to write")
    inf.add_argument("--rate", type=float, help="frame rate in Hz (required unless the file holds frame times)")
    inf.add_argument("--key", help="array name inside a .npz file")
    inf.add_argument("--raw", action="store_true", help="the traces are raw fluorescence: compute dF/F first")
    inf.add_argument("--baseline-window", type=float, default=60.0, help="dF/F baseline window in seconds (--raw) (default 60.0)")
    inf.add_argument("--baseline-percentile", type=float, default=8.0, help="dF/F baseline percentile (--raw) (default 8.0)")
    inf.add_argument("--tau", type=float, help="indicator decay time in s (default: estimated from each trace)")
    inf.add_argument("--tau-rise", type=float, default=0.0, help="rise time in s; > 0 uses AR(2) (default 0.0)")
    inf.add_argument("--ar-order", type=int, choices=(1, 2), default=1, help="AR order estimated when --tau is not given (default 1)")
    inf.add_argument("--penalty", choices=("l1", "l0"), default="l1", help="sparsity penalty (default l1)")
    inf.add_argument("--smoothing", type=float, default=0.2, help="Gaussian sigma (s) turning spikes into a rate (default 0.2)")
    inf.add_argument("--backend", choices=("auto", "oasis", "numpy"), default="auto", help="oasis-deconv package or pure NumPy AR(1) (default auto)")
    inf.add_argument("--params-from", metavar="RUN_DIR", help="use the parameters a 'calcium evaluate' run tuned (overrides --tau etc.)")
    inf.add_argument("--params-dataset", help="which tuned dataset to take from --params-from (e.g. DS09)")
    inf.add_argument("--params-indicator", help="or which indicator (e.g. GCaMP6s)")

    ev = sub.add_parser(
        "evaluate",
        help="tune on half the ground-truth files, score the other half",
        description="Cascade-style evaluation on ground-truth recordings: per dataset, OASIS parameters are tuned "
        "on the files at even positions (name order) and scored on the files at odd positions. Writes a run "
        "folder with results/calcium_evaluation.json and report.html.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ev.add_argument("--data-dir", required=True, help="the calcium folder (or its parent, or one DS.. folder)")
    ev.add_argument("--dataset", action="append", help="dataset name or prefix, e.g. DS09 (repeatable; default all)")
    ev.add_argument("--out", required=True, help="run folder to write")
    ev.add_argument("--smoothing", type=float, default=0.2, help="Gaussian sigma (s) of the ground-truth rate (default 0.2)")
    ev.add_argument("--rate", type=float, help="resample every recording to this frame rate first (Cascade: 7.5)")
    ev.add_argument("--noise-level", type=float, help="add noise up to this standardised noise level (Cascade: 2)")
    ev.add_argument("--backend", choices=("auto", "oasis", "numpy"), default="auto")
    ev.add_argument(
        "--grid",
        choices=("quick", "default", "full"),
        default="default",
        help="tuning grid: quick (4 decay times x 3 smoothings), default (9 x 6, AR(1)), full (adds AR(2) rise 50 ms)",
    )
    ev.add_argument("--seed", type=int, default=0, help="seed of the added noise (default 0)")


def run(args) -> int:
    from ..errors import ConfigError
    from ..neural.calcium import EvaluationConfig, InferConfig, run_evaluation, run_inference
    from ..neural.calcium.evaluate import GRIDS

    if args.calcium_command == "infer":
        cfg = InferConfig(
            trace_file=args.trace_file,
            frame_rate=args.rate,
            key=args.key,
            raw=args.raw,
            baseline_window_s=args.baseline_window,
            baseline_percentile=args.baseline_percentile,
            tau_decay_s=args.tau,
            tau_rise_s=args.tau_rise,
            ar_order=args.ar_order,
            penalty=args.penalty,
            smoothing_s=args.smoothing,
            backend=args.backend,
            params_from=args.params_from,
            params_dataset=args.params_dataset,
            params_indicator=args.params_indicator,
        )
        path = run_inference(cfg, args.out)
        print(f"spikes: {path / 'spikes.npz'}\nreport: {path / 'report.html'}")
        return 0
    if args.calcium_command == "evaluate":
        grid = GRIDS[args.grid]
        cfg = EvaluationConfig(
            data_dir=args.data_dir,
            datasets=args.dataset,
            smoothing_s=args.smoothing,
            rate_hz=args.rate,
            noise_level=args.noise_level,
            grid={k: list(v) for k, v in grid.items()},
            backend=args.backend,
            seed=args.seed,
        )
        path = run_evaluation(cfg, args.out)
        from ..runs import Run

        result = Run(path).result("calcium_evaluation")
        print(f"{'dataset':<22}{'indicator':<10}{'held-out r':>11}{'untuned':>9}{'chance':>8}  tuned parameters")
        for s in result["datasets"]:
            print(
                f"{s['dataset']:<22}{s['indicator']:<10}{s['test_mean_r']:>11.3f}{s['test_mean_r_untuned']:>9.3f}"
                f"{s['test_mean_r_chance']:>8.3f}  {s['tuned_params']}"
            )
        print(f"report: {path / 'report.html'}")
        return 0
    raise ConfigError("calcium needs an action: infer or evaluate (see 'neuroaikit calcium --help')")
