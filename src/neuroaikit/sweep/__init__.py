"""Sweeps: many runs of one workflow over a grid of settings, on Ray or in this process.

``neuroaikit sweep SPEC --out DIR`` (see ``neuroaikit.cli.cmd_sweep``)::

    from neuroaikit.sweep import load_spec, run_sweep
    summary = run_sweep(load_spec("grid.yaml"), "runs/grid", backend="ray", workers=2)
    summary.rows[0].metrics, summary.exit_status()

The spec (:class:`SweepSpec`, ``neuroaikit.sweep.spec``): a job per trial (``train``,
``twin-fit``, ``continual``), its ``base`` settings, a ``grid`` of dotted settings and/or explicit
``trials``, follow-up ``steps`` (``evaluate``, ``eot-pgd``, ``align``) and a ``summary``.
Every trial is a normal run folder ``OUT/trials/<name>``; finished trials are skipped on
rerun (``neuroaikit.sweep.runner``).
"""

from .runner import (BACKENDS, PlannedTrial, SweepPlan, SweepSummary, TrialRow, check_sweep_folder, execute_trial,
                     is_sweep_folder, plan_sweep, run_sweep, write_summary)
from .spec import (JOBS, STEPS, JobKind, StepKind, SummaryConfig, SweepSpec, Trial, expand_trials, load_spec,
                   trial_name)
from .steps import EotPgdConfig, EotPgdResult, eot_pgd

__all__ = [
                     "BACKENDS",
                     "JOBS",
                     "STEPS",
                     "EotPgdConfig",
                     "EotPgdResult",
                     "JobKind",
                     "PlannedTrial",
                     "StepKind",
                     "SummaryConfig",
                     "SweepPlan",
                     "SweepSpec",
                     "SweepSummary",
                     "Trial",
                     "TrialRow",
                     "check_sweep_folder",
                     "eot_pgd",
                     "execute_trial",
                     "expand_trials",
                     "is_sweep_folder",
                     "load_spec",
                     "plan_sweep",
                     "run_sweep",
                     "trial_name",
                     "write_summary",
]
