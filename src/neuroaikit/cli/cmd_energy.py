"""``neuroaikit energy RUN_DIR [RUN_DIR ...]``."""

from __future__ import annotations

from .options import add_execution_arguments, add_quiet_argument

NAME = "energy"
HELP = "NeuroBench metrics and energy estimates of trained models (ANN or SNN) on the same task"
DESCRIPTION = """\
Run NeuroBench's metrics (Footprint, ConnectionSparsity, ActivationSparsity,
SynapticOperations: Effective_MACs / Effective_ACs / Dense, MembraneUpdates) on the first
--subset test images of the runs' dataset, estimate energy per sample from a per-operation
table (Horowitz 2014, 45 nm; --energy-precision fp32|fp16|int8, also spelled --precision), and
write results/energy.json into every run folder, whose report.html is rebuilt (not with
--no-report) to show accuracy against energy for all the runs measured together. All runs must be on the same
dataset. Energy figures are compute-only (no memory access): the assumptions are printed with
them. The models run on --device (float32); an existing results/energy.json is replaced only
with --overwrite, and every run is checked before any is measured.

example:
  neuroaikit energy runs/ann-mnist runs/snn-mnist-T4 --data-dir ../shared/data --subset 1000
"""

# option attribute -> (EnergyConfig field, the option as typed)
_OPTIONS = {
    "data_dir": ("data_dir", "--data-dir"), "subset": ("subset", "--subset"),
    "energy_precision": ("energy_precision", "--energy-precision"), "batch_size": ("batch_size", "--batch-size"),
    "seed": ("seed", "--seed"),
}
FLAGS = {field: flag for field, flag in _OPTIONS.values()}


def add_arguments(parser):
    from ..energy.config import EnergyConfig
    from ..energy.table import PRESETS

    d = EnergyConfig()
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders (trained models, same dataset)")
    parser.add_argument("--data-dir", help="folder holding the dataset files (default: the one the runs were "
                                           "trained with, else the default data folder)")
    parser.add_argument("--subset", type=int, help=f"number of test images to measure on (default {d.subset})")
    # not the execution precision: the table the energy estimate assumes (the measurement runs in float32)
    parser.add_argument("--energy-precision", "--precision", dest="energy_precision", metavar="PRESET",
                        help=f"energy-per-operation preset: {', '.join(PRESETS)} (default {d.energy_precision})")
    parser.add_argument("--batch-size", type=int, help=f"images per forward pass (default {d.batch_size})")
    parser.add_argument("--seed", type=int, help=f"seeds a noisy model's draws (default {d.seed})")
    parser.add_argument("--overwrite", action="store_true", help="replace existing results/energy.json files")
    parser.add_argument("--no-report", action="store_true", help="do not rebuild the runs' report.html")
    add_execution_arguments(parser)
    add_quiet_argument(parser)


def config_from(args):
    """The :class:`EnergyConfig` of the options given (defaults from the dataclass)."""
    from ..energy.config import EnergyConfig
    from .options import config_from_args

    return config_from_args(EnergyConfig, args, {attr: field for attr, (field, _) in _OPTIONS.items()})


def print_results(results, with_assumptions: bool = False) -> None:
    """The comparison table of the runs measured together (and the energy estimate's
    assumptions, when the per-run lines that carry them were not shown)."""
    rows = results[0].comparison if results else []
    print(f"\n{'run':30s} {'accuracy':>9s} {'eff. MACs':>11s} {'eff. ACs':>11s} {'dense':>11s} "
          f"{'effective uJ':>13s} {'dense uJ':>10s}")
    for r in rows:
        accuracy = "-" if r.accuracy is None else f"{r.accuracy:.4f}"
        effective = "-" if r.effective_uJ is None else f"{r.effective_uJ:.4g}"
        dense = "-" if r.dense_uJ is None else f"{r.dense_uJ:.4g}"
        print(f"{r.run[:30]:30s} {accuracy:>9s} {r.Effective_MACs:11.4g} {r.Effective_ACs:11.4g} "
              f"{r.Dense:11.4g} {effective:>13s} {dense:>10s}")
    if results:
        print(f"energy table {results[0].precision}; measured on {results[0].execution.get('device')}")
        if with_assumptions:
            print("assumptions:\n" + "\n".join(f"  - {a}" for a in results[0].assumptions))


def run(args) -> int:
    from ..energy import energy_for_runs
    from ..progress import default_progress

    config = config_from(args)
    results = energy_for_runs(args.run_dirs, config, overwrite=args.overwrite,
                              progress=default_progress(quiet=args.quiet))
    print_results(results, with_assumptions=args.quiet)
    print("results written to RUN_DIR/results/energy.json of every run")
    if not args.no_report:
        from ..report import build_report

        for run_dir in args.run_dirs:
            print(f"report: {build_report(run_dir)}")
    return 0
