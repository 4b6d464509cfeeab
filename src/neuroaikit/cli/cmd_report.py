"""``neuroaikit report RUN_DIR``."""

from __future__ import annotations

NAME = "report"
HELP = "write the self-contained HTML report of a run folder"
DESCRIPTION = """\
Build report.html from everything a run folder holds (training curves, noise sweeps,
robustness evaluations, alignment profiles ...). The page embeds its figures and opens
offline in any browser.

example:
  neuroaikit report runs/mnist-hidden-noise
"""


def add_arguments(parser):
    parser.add_argument("run_dir", help="a run folder written by train, demo, evaluate ...")
    parser.add_argument("--out", help="where to write the page (default RUN_DIR/report.html); an existing file "
                                      "is replaced only if it is a report page")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file of any kind")


def run(args) -> int:
    from ..report import build_report

    path = build_report(args.run_dir, args.out, overwrite=args.overwrite)
    print(f"report: {path}")
    return 0
