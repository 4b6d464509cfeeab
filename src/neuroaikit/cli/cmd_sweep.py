"""``neuroaikit sweep SPEC --out DIR``: many runs over a grid of settings, on Ray or serially."""

from __future__ import annotations

import sys
from pathlib import Path

from .options import add_quiet_argument

NAME = "sweep"
HELP = ("run a grid of train / twin-fit / continual jobs (and follow-up steps) on Ray; skip finished trials; "
        "summary table + figure")
DESCRIPTION = """\
Run one job per trial over a grid of settings. The spec (YAML or JSON) names the job
(train | twin-fit | continual), its base settings (the job's config fields, as in --config of 'train'),
a grid of dotted settings whose lists are combined (cartesian product) and/or explicit
trials, follow-up steps on every trained model (evaluate: the robustness protocol;
eot-pgd: a quick EOT-PGD check; align: the alignment profile, with 'neural: FILE') and the
summary's metrics and x axis.

example spec (grid.yaml): noise kind x layer x sigma x seed, 24 trials
  job: train
  base:
    dataset: digits
    epochs: 10
    noise_warmup: 2.5
    eval_draws: 21
    noise: {"${layer}": {kind: "${kind}", sigma: "${sigma}"}}
  grid:                         # every combination is a trial
    layer: [input, relu1]       # not a train setting: fills ${layer} above
    kind: [gaussian, multiplicative]
    sigma: [0.1, 0.5, 1.0]
    seed: [0, 1]                # a train setting (dotted keys reach into mappings: fit.lr)
  steps:
    eot-pgd: {eps: 0.1}         # {} for the defaults
  summary:
    metrics: [test_accuracy, "eot_pgd:robust_accuracy"]   # RESULT:path reads results/RESULT.json
    x: sigma                    # one line per (layer, kind, seed)

Instead of (or combined with) a grid, 'trials' lists trials explicitly: each a mapping of
settings with an optional name and tags (labels for the summary), e.g.
  trials:
    - {name: deterministic, noise: {}, tags: {sigma: 0}}
    - {name: hidden-0.5, noise: {relu1: "gaussian:0.5,rectify"}, tags: {sigma: 0.5}}
Numbers in YAML need a dot for exponents (1.0e-3; YAML reads 1e-3 as a string).

Every trial is a normal run folder OUT/trials/NAME (NAME from the settings, e.g.
noise.relu1.sigma=0.5,seed=1). A rerun skips trials that finished with the same settings
(execution and data_dir aside) and runs the steps whose results are missing; an interrupted
trial (NAME.partial with a checkpoint) with the same settings is resumed. A finished trial
with other settings, an interrupted trial with other settings and a step result computed
with other step settings are errors unless --overwrite, which replaces the trial, discards
the interrupted job and starts afresh, or recomputes the step. --rerun runs every trial
afresh with its steps (an interrupted job is discarded, a finished trial replaced once its
new run is complete). Each trial computes with explicit threads (cpus_per_trial, default
1) and device (cpu unless gpus_per_trial > 0), so Ray and --backend serial give the same
bits. Before OUT is created (and with --dry-run) every trial to run is checked as its job
checks it, without reading the data (data files present, model and noise sites buildable,
objective or strategy settings known, a 16-mixed trial only where it can get a CUDA GPU;
steps evaluate, eot-pgd and align compute in float32 on the trial's device and threads): one
bad trial refuses the sweep. gpus_per_trial > 0 needs a CUDA GPU on this machine (serial, a
local Ray); cpus_per_trial and gpus_per_trial must fit on one node of the Ray cluster. On Ray,
a trial that needs CUDA (device cuda, precision 16-mixed) needs gpus_per_trial > 0 (Ray
reserves no GPU otherwise); --backend serial computes on this machine's GPU. A failed trial
shows no figures of a run or step result left in its folder with other settings; a summary
metric that gives no figure is a warning. A trial that fails
while it runs does not stop the others; it is listed at the end and the exit status is 2
(1 for an internal error). OUT gets summary.json, summary.csv, metrics.json, log.txt
and report.html (table and figure: each metric against x, one line per combination of the
other varied settings).

examples:
  neuroaikit sweep grid.yaml --out runs/grid --dry-run       # list trials: run, resume or skip
  neuroaikit sweep grid.yaml --out runs/grid --workers 4     # a local Ray, 4 trials at once
  neuroaikit sweep grid.yaml --out runs/grid --address auto  # an existing Ray cluster (shared file system)
  neuroaikit sweep grid.yaml --out runs/grid --backend serial
"""


def add_arguments(parser):
    parser.add_argument("spec", help="the sweep spec, a YAML or JSON file")
    parser.add_argument("--out", required=True, help="the sweep folder (created; an existing sweep continues)")
    parser.add_argument("--backend", choices=("ray", "serial"), default="ray",
                        help="ray (default: a local Ray, or --address) or serial (this process, one trial at a time)")
    parser.add_argument("--workers", type=int, help="trials at once (default: the CPUs available / cpus_per_trial; "
                                                    "with --address, no limit but the cluster's)")
    parser.add_argument("--address", help="an existing Ray cluster: 'auto' or HOST:PORT (OUT and the trials' "
                                          "data must be on a file system every node and this machine see: the "
                                          "checks before the sweep look for the data here)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace finished trials, discard interrupted ones and recompute step results whose "
                             "settings differ from the spec")
    parser.add_argument("--rerun", action="store_true",
                        help="run every trial again from scratch (an interrupted one is discarded; a finished one is "
                             "replaced once its new run is complete)")
    parser.add_argument("--dry-run", action="store_true", help="list the trials and what each would do; run nothing")
    add_quiet_argument(parser)


def run(args) -> int:
    from ..progress import default_progress
    from ..sweep import load_spec, plan_sweep, run_sweep
    from ..sweep.runner import check_backend, check_local_gpus, refuse_sweep_under_torchrun

    refuse_sweep_under_torchrun()
    check_backend(args.backend, args.workers, args.address)
    spec = load_spec(args.spec)
    if args.dry_run:
        plan = plan_sweep(spec, args.out, overwrite=args.overwrite, rerun=args.rerun)
        check_local_gpus(plan, args.backend, args.address)
        width = max(len(p.trial.name) for p in plan.trials)
        for planned in plan.trials:
            print(f"{planned.trial.name:<{width}}  {planned.describe()}")
        print(f"{len(plan.trials)} trials: {len(plan.to_run)} would run, "
              f"{len(plan.trials) - len(plan.to_run) - len(plan.conflicts)} finished before"
              + (f", {len(plan.conflicts)} in conflict" if plan.conflicts else ""))
        plan.raise_conflicts()
        return 0
    summary = run_sweep(spec, args.out, backend=args.backend, workers=args.workers, address=args.address,
                        overwrite=args.overwrite, rerun=args.rerun, progress=default_progress(quiet=args.quiet))
    if not args.quiet:
        print(f"report: {summary_path(args.out)}")
    failed = summary.failed
    if failed:  # the trials' own lines went to stdout with the progress; the outcome goes to stderr too
        reason = (failed[0].error or "").strip().splitlines()
        print(f"error: {len(failed)} of {len(summary.rows)} trials failed; {failed[0].name}: "
              f"{reason[0] if reason else 'no message'} (every trial's outcome: {Path(args.out) / 'summary.json'})",
              file=sys.stderr)
    return summary.exit_status()


def summary_path(out) -> str:
    from pathlib import Path

    return str(Path(out) / "report.html")
