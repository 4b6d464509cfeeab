"""``neuroaikit calcium infer|evaluate``: calcium imaging -> spikes."""

from __future__ import annotations

import dataclasses

from .options import add_execution_arguments, add_output_arguments, add_quiet_argument

NAME = "calcium"
HELP = "infer spikes from calcium traces (OASIS) and score it on ground-truth recordings"
DESCRIPTION = """\
Spike inference from two-photon calcium imaging with OASIS (AR(1)/AR(2) deconvolution with
noise estimation), and its Cascade-style evaluation on simultaneous imaging + electrophysiology
ground truth (correlation between inferred and true spike rate, true rate smoothed by a
Gaussian of 0.2 s by default). The computation runs on the CPU (NumPy / OASIS); --threads
limits its thread pools; --device is checked (one that is not there is refused) and recorded, not used.

  infer     TRACE_FILE: a Cascade .mat file (CAttached struct), or .npy/.npz/.csv/.txt with
            shape (frames,) or (neurons, frames) plus --rate HZ. --raw computes dF/F from raw
            fluorescence first (running percentile baseline). With a .mat file, --rate
            resamples its recordings to HZ (as 'evaluate --rate').
  evaluate  tune on half of the files of each dataset, score the other half.

examples:
  neuroaikit calcium evaluate --data-dir ../shared/data/calcium --out runs/calcium-eval
  neuroaikit calcium evaluate --data-dir ../shared/data --dataset DS14 --grid quick --out runs/calcium-ds14
  neuroaikit calcium evaluate --data-dir ../shared/data --dataset DS09 --dataset DS14 --rate 7.5 --noise-level 2 --out runs/calcium-7.5hz
  neuroaikit calcium infer my_dff.npy --rate 30 --params-from runs/calcium-eval --params-indicator GCaMP6f --out runs/my-spikes
  neuroaikit calcium infer raw_F.csv --rate 30 --raw --baseline-window 60 --tau 1.2 --out runs/my-spikes
"""

# option attribute -> config field
_INFER_OPTIONS = {
    "trace_file": "trace_file", "rate": "frame_rate", "key": "key", "raw": "raw",
    "baseline_window": "baseline_window_s", "baseline_percentile": "baseline_percentile", "tau": "tau_decay_s",
    "tau_rise": "tau_rise_s", "ar_order": "ar_order", "penalty": "penalty", "smoothing": "smoothing_s",
    "backend": "backend", "params_from": "params_from", "params_dataset": "params_dataset",
    "params_indicator": "params_indicator",
}
_EVALUATE_OPTIONS = {
    "data_dir": "data_dir", "dataset": "datasets", "smoothing": "smoothing_s", "rate": "rate_hz",
    "noise_level": "noise_level", "grid": "grid", "backend": "backend", "seed": "seed",
    "max_recordings": "max_recordings",
}

#: config field -> the option that sets it, for one-line errors (see cli/option_names.py)
FLAGS = {field: "--" + attr.replace("_", "-") for options in (_INFER_OPTIONS, _EVALUATE_OPTIONS)
         for attr, field in options.items() if attr != "trace_file"}


def _default(cls, name: str):
    """The dataclass default of ``cls.name`` (help texts show it; the CLI never sets it)."""
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is dataclasses.MISSING:
        raise TypeError(f"{cls.__name__}.{name} has no default")
    return f.default_factory()


def add_arguments(parser):
    import argparse

    from ..neural.calcium import EvaluationConfig, InferConfig
    from ..neural.calcium.evaluate import GRIDS

    def d(name):
        return _default(InferConfig, name)

    sub = parser.add_subparsers(dest="calcium_command", metavar="ACTION")
    inf = sub.add_parser(
        "infer",
        help="deconvolve a trace file into spikes (run folder with spikes.npz)",
        description="Deconvolve every trace of TRACE_FILE with OASIS and write a run folder: spikes.npz "
        "(time_i, dff_i, spikes_i, rate_i, denoised_i for the trace of index i in the file), "
        "results/calcium_inference.json, report.html. With a Cascade .mat file the correlation with its "
        "ground-truth spikes is reported too. Unusable traces (all NaN, constant) are skipped with a note.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inf.add_argument("trace_file", help=".mat (Cascade CAttached), .npy, .npz, .csv or .txt")
    add_output_arguments(inf)
    inf.add_argument("--rate", type=float, help="frame rate in Hz of an array file (required for them); for a .mat "
                                                "file (which has frame times) the recordings are resampled down to it")
    inf.add_argument("--key", help="array name inside a .npz file")
    inf.add_argument("--raw", action="store_true", default=None,
                     help="the traces are raw fluorescence: compute dF/F first (array files only)")
    inf.add_argument("--baseline-window", type=float,
                     help=f"dF/F baseline window in seconds (--raw) (default {d('baseline_window_s')})")
    inf.add_argument("--baseline-percentile", type=float,
                     help=f"dF/F baseline percentile, 0-100 (--raw) (default {d('baseline_percentile')})")
    inf.add_argument("--tau", type=float, help="indicator decay time in s (default: estimated from each trace)")
    inf.add_argument("--tau-rise", type=float, help=f"rise time in s; > 0 uses AR(2) (default {d('tau_rise_s')})")
    inf.add_argument("--ar-order", type=int, help=f"1 or 2: AR order estimated when --tau is not given "
                                                  f"(default {d('ar_order')})")
    inf.add_argument("--penalty", help=f"sparsity penalty, l1 or l0 (default {d('penalty')})")
    inf.add_argument("--smoothing", type=float, help=f"Gaussian sigma (s, > 0) turning spikes into a rate, also of "
                                                     f"the ground-truth rate (default {d('smoothing_s')})")
    inf.add_argument("--backend", help=f"auto, oasis (oasis-deconv package) or numpy (pure NumPy AR(1)) "
                                       f"(default {d('backend')})")
    inf.add_argument("--params-from", metavar="RUN_DIR",
                     help="use the parameters a 'calcium evaluate' run tuned (replace --tau, --tau-rise, --penalty, "
                          "--smoothing)")
    inf.add_argument("--params-dataset", help="which tuned dataset to take from --params-from (e.g. DS09)")
    inf.add_argument("--params-indicator", help="or which indicator (e.g. GCaMP6s)")
    add_execution_arguments(inf)
    inf.add_argument("--no-report", action="store_true", help="do not write report.html")
    add_quiet_argument(inf)

    def e(name):
        return _default(EvaluationConfig, name)

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
    add_output_arguments(ev)
    ev.add_argument("--smoothing", type=float,
                    help=f"Gaussian sigma (s, > 0) of the ground-truth rate (default {e('smoothing_s')})")
    ev.add_argument("--rate", type=float, help="resample every recording to this frame rate first (Cascade: 7.5); "
                                                "above a recording's own rate only with --noise-level")
    ev.add_argument("--noise-level", type=float, help="add noise up to this standardised noise level (Cascade: 2)")
    ev.add_argument("--backend", help=f"auto, oasis or numpy (default {e('backend')})")
    default_grid = next((name for name, grid in GRIDS.items() if grid == e("grid")), "custom")
    ev.add_argument(
        "--grid",
        help="tuning grid: quick (4 decay times x 3 smoothings), default (9 x 6, AR(1)), full (adds AR(2) rise "
             f"50 ms) (default {default_grid})",
    )
    ev.add_argument("--seed", type=int, help=f"seed of the added noise (default {e('seed')})")
    ev.add_argument("--max-recordings", type=int,
                    help="use at most N recordings per split and dataset (a quick look; default all)")
    add_execution_arguments(ev)
    ev.add_argument("--no-report", action="store_true", help="do not write report.html")
    add_quiet_argument(ev)


def _config(cls, args, mapping: dict[str, str]):
    from .options import config_from_args

    return config_from_args(cls, args, mapping)


def run(args) -> int:
    from ..errors import ConfigError
    from ..neural.calcium import (
        CalciumEvaluation,
        CalciumInference,
        EvaluationConfig,
        InferConfig,
        run_evaluation,
        run_inference,
    )
    from ..progress import default_progress
    from ..results import format_figure

    if args.calcium_command is None:
        raise ConfigError("calcium needs an action: infer or evaluate (see 'neuroaikit calcium --help')")
    progress = default_progress(quiet=args.quiet)
    if args.calcium_command == "infer":
        cfg = _config(InferConfig, args, _INFER_OPTIONS)
        run_ = run_inference(cfg, args.out, overwrite=args.overwrite, progress=progress, report=not args.no_report)
        inference = CalciumInference.load(run_)
        assert inference is not None  # run_inference saved it
        line = f"{len(inference.traces)} trace(s) deconvolved with {inference.method}"
        if inference.skipped:
            line += f"; {len(inference.skipped)} skipped (see {run_.path / 'log.txt'})"
        print(line)
        if inference.mean_r_ground_truth is not None:
            print(f"mean r with the ground-truth rate: {inference.mean_r_ground_truth:.3f}")
        print(f"spikes: {run_.path / inference.arrays}")
    else:
        cfg = _config(EvaluationConfig, args, _EVALUATE_OPTIONS)
        run_ = run_evaluation(cfg, args.out, overwrite=args.overwrite, progress=progress, report=not args.no_report)
        evaluation = CalciumEvaluation.load(run_)
        assert evaluation is not None  # run_evaluation saved it
        print(f"method: {evaluation.protocol.method}")
        print(f"{'dataset':<22}{'indicator':<10}{'held-out r':>11}{'untuned':>9}{'chance':>8}  tuned parameters")
        for s in evaluation.datasets:
            print(f"{s.dataset:<22}{s.indicator:<10}{format_figure(s.test_mean_r, '.3f'):>11}"
                  f"{format_figure(s.test_mean_r_untuned, '.3f'):>9}"
                  f"{format_figure(s.test_mean_r_chance, '.3f'):>8}  {s.tuned_params.describe()}")
    if (run_.path / "report.html").is_file() and not args.no_report:
        print(f"report: {run_.path / 'report.html'}")
    print(f"run: {run_.path}")
    return 0

