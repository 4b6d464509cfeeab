"""``neuroaikit energy RUN_DIR [RUN_DIR ...]``."""

from __future__ import annotations

NAME = "energy"
HELP = "NeuroBench metrics and energy estimates of trained models (ANN or SNN) on the same task"
DESCRIPTION = """\
Run NeuroBench's metrics (Footprint, ConnectionSparsity, ActivationSparsity,
SynapticOperations: Effective_MACs / Effective_ACs / Dense, MembraneUpdates) on the first
--subset test images of the runs' dataset, estimate energy per sample from a per-operation
table (Horowitz 2014, 45 nm; --precision fp32|fp16|int8), and write results/energy.json into
every run folder; `neuroaikit report RUN_DIR` then shows accuracy against energy for all the
runs measured together. All runs must be on the same dataset. Energy figures are compute-only
(no memory access): the assumptions are printed with them.

example:
  neuroaikit energy runs/ann-mnist runs/snn-mnist-T4 --data-dir ../shared/data --subset 1000
"""


def add_arguments(parser):
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders (trained models, same dataset)")
    parser.add_argument("--data-dir", help="folder holding the dataset files (e.g. ../shared/data)")
    parser.add_argument("--subset", type=int, default=1000, help="number of test images to measure on (default 1000)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"],
                        help="energy-per-operation preset (default fp32)")
    parser.add_argument("--batch-size", type=int, default=100, help="images per forward pass (default 100)")


def run(args) -> int:
    from ..energy import energy_for_runs

    rows = energy_for_runs(args.run_dirs, args.data_dir, args.subset, args.precision, args.batch_size)
    print(f"\n{'run':30s} {'accuracy':>9s} {'eff. MACs':>11s} {'eff. ACs':>11s} {'dense':>11s} {'effective uJ':>13s} {'dense uJ':>10s}")
    for r in rows:
        print(f"{r['run'][:30]:30s} {r['accuracy']:9.4f} {r['Effective_MACs']:11.4g} {r['Effective_ACs']:11.4g} "
              f"{r['Dense']:11.4g} {r['effective_uJ']:13.4g} {r['dense_uJ']:10.4g}")
    print("results written to RUN_DIR/results/energy.json; `neuroaikit report RUN_DIR` shows them")
    return 0
