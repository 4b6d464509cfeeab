"""CCA on the SSVEP exoskeleton data with two decision rules: MOABB's argmax and ours.

MOABB's ``SSVEP_CCA`` predicts the stimulation frequency whose reference signals correlate best
with the trial (argmax over 13/17/21 Hz), so it never answers "rest", the fourth of the four
balanced classes: at most 75 % of the trials can be right. ``neuroaikit``'s ``cca`` decoder reads
the same canonical correlations with an LDA trained on the training folds, so it can answer
"rest" when no frequency stands out. This benchmark computes, per subject, on the same epochs
(``load_ssvep_exo`` defaults, the ``bmi_full`` page's CCA recipe):

- ``argmax``: MOABB's rule on every trial (no training; the correlations of the whole subject),
  its accuracy on the stimulated trials alone, and the ceiling it can reach (the share of
  stimulated trials);
- ``lda``: our decoder, within-session 5-fold cross-validation, seed 42 (as ``bmi_full``).

    python benchmarks/bmi_cca_rule.py --data-dir ../shared/data/eeg [--subjects 1 2] [--json PATH]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _cli beside this file, also when a test imports it by path
from _cli import figures_saver, parse_and_run  # noqa: E402

from neuroaikit.cli.options import positive_int  # noqa: E402


def stimulated_classes(decoder) -> np.ndarray:
    """The labels of the classes with a stimulation frequency (``stimulated_`` holds their positions)."""
    return np.asarray(decoder.classes_)[decoder.stimulated_]


def argmax_rule(decoder, ds) -> np.ndarray:
    """MOABB's decision: the stimulated class whose correlation is largest (never "rest")."""
    return stimulated_classes(decoder)[decoder.scores(ds.X).argmax(1).numpy()]


def run(args: argparse.Namespace) -> dict:
    from neuroaikit.bmi import load_ssvep_exo, make_decoder
    from neuroaikit.bmi.datasets import ssvep_subjects
    from neuroaikit.bmi.evaluation import cross_validate

    subjects = args.subjects or ssvep_subjects(args.data_dir)
    figures: dict = {"subjects": subjects, "folds": 5, "seed": 42, "per_subject": {}}
    save = figures_saver(args.json, figures)
    print(f"{'subject':>7} {'argmax, all':>11} {'argmax, stimulated':>18} {'argmax ceiling':>14} {'lda (5-fold)':>12}")
    for subject in subjects:
        ds = load_ssvep_exo(args.data_dir, [subject])
        decoder = make_decoder("cca", ds).fit(ds.X, ds.y)  # the correlations need no training
        predicted = argmax_rule(decoder, ds)
        stimulated = np.isin(ds.y, stimulated_classes(decoder))
        folds = cross_validate(make_decoder("cca", ds), ds, "within-session", 5, seed=42)
        row = {"trials": int(len(ds.y)),
               "argmax_accuracy": float((predicted == ds.y).mean()),
               "argmax_accuracy_stimulated": float((predicted == ds.y)[stimulated].mean()),
               "argmax_ceiling": float(stimulated.mean()),
               "lda_accuracy": float(folds.accuracy)}
        figures["per_subject"][str(subject)] = row
        print(f"{subject:>7} {row['argmax_accuracy']:>11.1%} {row['argmax_accuracy_stimulated']:>18.1%} "
              f"{row['argmax_ceiling']:>14.1%} {row['lda_accuracy']:>12.1%}", flush=True)
        save()
    rows = list(figures["per_subject"].values())
    figures["mean"] = {key: statistics.fmean(r[key] for r in rows)
                       for key in ("argmax_accuracy", "argmax_accuracy_stimulated", "argmax_ceiling", "lda_accuracy")}
    m = figures["mean"]
    print(f"{'mean':>7} {m['argmax_accuracy']:>11.1%} {m['argmax_accuracy_stimulated']:>18.1%} "
          f"{m['argmax_ceiling']:>14.1%} {m['lda_accuracy']:>12.1%}")
    save()
    return figures


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "eeg"))
    parser.add_argument("--subjects", type=positive_int, nargs="+", default=None,
                        help="SSVEP subjects (default: every one in --data-dir)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON (after every subject)")
    return parse_and_run(parser, run, argv)


if __name__ == "__main__":
    main()
