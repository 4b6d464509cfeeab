"""EEGNet's dropout across subjects: leave-one-subject-out accuracy on the SSVEP exoskeleton
subjects for each dropout rate and training seed, with the seeds paired.

Lawhern et al. (2018) trained EEGNet with dropout 0.5 within subjects and 0.25 across subjects;
``neuroaikit bmi`` defaults to 0.5. Under leave-one-subject-out nothing is split at random, so
two runs with the same seed see the same folds and the same weight initialisation, and differ
only in the dropout rate (and its masks): the benchmark prints each run, each rate's mean and
standard deviation over the seeds, and the paired difference per seed and per held-out subject.
Each run is ``neuroaikit bmi --scheme loso --decoders eegnet --deep-dropout RATE --seed SEED``
(the same :func:`neuroaikit.bmi.decode`), on one thread unless ``--threads`` says otherwise.

    python benchmarks/bmi_dropout.py --data-dir ../shared/data/eeg [--seeds 42 43 44] [--json PATH]
    python benchmarks/bmi_dropout.py --data-dir ../shared/data/eeg --quick   # 2 subjects, 2 epochs: a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _cli beside this file, also when a test imports it by path
from _cli import figures_saver, parse_and_run, quick_defaults  # noqa: E402

from neuroaikit.cli.options import positive_int  # noqa: E402
from neuroaikit.errors import ConfigError  # noqa: E402


def paired_summary(runs: list[dict], first: float, second: float) -> dict:
    """``first`` minus ``second`` dropout, seed by seed (runs sharing a seed) and held-out subject
    by subject (averaged over the seeds): accuracies as fractions."""
    by_key = {(r["dropout"], r["seed"]): r for r in runs}
    seeds = [s for (d, s) in by_key if d == first and (second, s) in by_key]
    per_seed = {s: by_key[first, s]["accuracy"] - by_key[second, s]["accuracy"] for s in seeds}
    subjects = sorted({k for s in seeds for k in by_key[first, s]["per_subject"]}, key=int)
    per_subject = {k: statistics.fmean(by_key[first, s]["per_subject"][k] - by_key[second, s]["per_subject"][k]
                                       for s in seeds) for k in subjects}
    diffs = list(per_seed.values())
    return {"first": first, "second": second, "seeds": seeds, "per_seed": {str(s): d for s, d in per_seed.items()},
            "mean": statistics.fmean(diffs) if diffs else None,
            "sd": statistics.stdev(diffs) if len(diffs) > 1 else None,
            "seeds_first_better": sum(d > 0 for d in diffs), "seeds_tied": sum(d == 0 for d in diffs),
            "per_subject_mean": per_subject}


def rate_summary(runs: list[dict], dropout: float) -> dict:
    accuracies = [r["accuracy"] for r in runs if r["dropout"] == dropout]
    return {"dropout": dropout, "n_seeds": len(accuracies), "mean": statistics.fmean(accuracies),
            "sd": statistics.stdev(accuracies) if len(accuracies) > 1 else None,
            "min": min(accuracies), "max": max(accuracies)}


def run(args: argparse.Namespace) -> dict:
    from neuroaikit.bmi import BMIConfig, decode
    from neuroaikit.bmi.datasets import ssvep_subjects
    from neuroaikit.bmi.workflow import validate
    from neuroaikit.execution import ExecutionConfig
    from neuroaikit.progress import silent

    pick = quick_defaults(args.quick)
    if len(set(args.dropouts)) != len(args.dropouts) or len(set(args.seeds)) != len(args.seeds):
        raise ConfigError("--dropouts and --seeds must not repeat a value")
    subjects = args.subjects or ssvep_subjects(args.data_dir)[: 2 if args.quick else None]
    if not subjects:
        raise ConfigError(f"--data-dir {args.data_dir}: no SSVEP exoskeleton subject folders (subjectNN) in it")
    configs = [BMIConfig(dataset="ssvep-exo", data_dir=args.data_dir, subjects=list(subjects), decoders=["eegnet"],
                         scheme="loso", deep_epochs=pick(args.deep_epochs, 2, 100), deep_dropout=dropout, seed=seed,
                         execution=ExecutionConfig(threads=args.threads))
               for seed in args.seeds for dropout in args.dropouts]
    validate(configs[0])  # every setting is checked (above) and the data found before anything trains
    figures: dict = {"dataset": "ssvep-exo", "scheme": "loso", "decoder": "eegnet", "subjects": list(subjects),
                     "deep_epochs": configs[0].deep_epochs, "dropouts": args.dropouts, "seeds": args.seeds,
                     "threads": args.threads, "quick": args.quick, "runs": []}
    save = figures_saver(args.json, figures)
    t_start = time.perf_counter()
    for config in configs:
        t0 = time.perf_counter()
        row = decode(config, silent()).decoders[0]
        figures["runs"].append({"dropout": config.deep_dropout, "seed": config.seed, "accuracy": row.accuracy,
                                "n_trials": row.n_trials, "per_subject": {str(k): v for k, v in row.per_subject.items()},
                                "time_s": time.perf_counter() - t0})
        print(f"dropout {config.deep_dropout:<5} seed {config.seed:<4} LOSO accuracy {row.accuracy:.3f}  per subject "
              + " ".join(f"{k}:{v:.2f}" for k, v in row.per_subject.items())
              + f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
        save()
    figures["by_dropout"] = [rate_summary(figures["runs"], d) for d in args.dropouts]
    for s in figures["by_dropout"]:
        sd = f" +- {s['sd']:.3f}" if s["sd"] is not None else ""
        print(f"dropout {s['dropout']}: mean {s['mean']:.3f}{sd} over {s['n_seeds']} seeds "
              f"(min {s['min']:.3f}, max {s['max']:.3f})")
    if len(args.dropouts) == 2:
        paired = figures["paired"] = paired_summary(figures["runs"], *args.dropouts)
        sd = f" +- {paired['sd']:.3f}" if paired["sd"] is not None else ""
        print(f"dropout {paired['first']} minus {paired['second']}, same seed: mean {paired['mean']:+.3f}{sd}; "
              f"{paired['first']} better on {paired['seeds_first_better']} of {len(paired['seeds'])} seeds; "
              "per held-out subject " + " ".join(f"{k}:{v:+.3f}" for k, v in paired["per_subject_mean"].items()))
    figures["time_s"] = time.perf_counter() - t_start
    save()
    print(f"total {figures['time_s']:.0f} s")
    return figures


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "eeg"))
    parser.add_argument("--quick", action="store_true", help="the first 2 subjects, 2 epochs (a smoke run, not a claim)")
    parser.add_argument("--subjects", type=positive_int, nargs="+", default=None,
                        help="SSVEP subjects (default every one in --data-dir)")
    parser.add_argument("--dropouts", type=float, nargs="+", default=[0.25, 0.5],
                        help="EEGNet dropout rates (default 0.25 0.5: the paired difference is the first minus the second)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44],
                        help="training seeds (default 42 43 44; 42 is neuroaikit bmi's default)")
    parser.add_argument("--deep-epochs", type=positive_int, default=None, help="default 100 (quick 2)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON (after every run)")
    return parse_and_run(parser, run, argv)


if __name__ == "__main__":
    main()
