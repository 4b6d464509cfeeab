"""BMI decoders: accuracy, training and inference time per trial, real-time feasibility.

Every pipeline runs within-session 5-fold on the shared SSVEP exoskeleton subjects (MOABB's
protocol) and, for the motor-imagery decoders, on PhysioNet S001 (imagined left vs right
fist; filter-bank CSP on 4-40 Hz epochs, the others on 8-32 Hz); inference time is also
measured on one 1-s window on one CPU thread (real time needs it well under 1 s), with every
decoder refitted on the first second of each trial for it. Each row puts MOABB's figure
beside ours in MOABB's measure: accuracy for SSVEP, ROC-AUC for the two-class motor imagery.

    python benchmarks/bmi.py [--quick] [--json PATH] [--data-dir ../shared/data/eeg]
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from neuroaikit.io import write_text

REPO = Path(__file__).resolve().parents[1]


def window_inference_s(make, ds, repeats: int = 20) -> float:
    """Seconds per ``predict`` on one 1-s window (a trial's first second) of the decoder built by
    ``make()``, fitted on the first second of every trial: a decoder fitted on whole epochs is
    timed on whole epochs, which overstates the time per window."""
    n = int(ds.sfreq)
    fitted = make().fit(ds.X[..., :n], ds.y)
    window = ds.X[:1, :, :n]
    t0 = time.perf_counter()
    for _ in range(repeats):
        fitted.predict(window)
    return (time.perf_counter() - t0) / repeats


def main() -> None:
    from neuroaikit.bmi.datasets import (PHYSIONET_FBCSP_RECIPE, SSVEP_FILTER_BANK_RECIPE, load_physionet_mi,
                                         load_ssvep_exo, ssvep_subjects)
    from neuroaikit.bmi.decoders import make_decoder
    from neuroaikit.bmi.evaluation import cross_validate
    from neuroaikit.bmi.workflow import PUBLISHED

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="SSVEP subjects 1-2, deep decoders 3 epochs (their times only: undertrained accuracy)")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "eeg"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    subjects = ssvep_subjects(args.data_dir)[: 2 if args.quick else None]
    deep_epochs = 3 if args.quick else 100
    plain = load_ssvep_exo(args.data_dir, subjects)
    banked = load_ssvep_exo(args.data_dir, subjects, config=SSVEP_FILTER_BANK_RECIPE)
    motor = load_physionet_mi(args.data_dir, 1)
    motor_broad = load_physionet_mi(args.data_dir, 1, config=PHYSIONET_FBCSP_RECIPE)
    runs = [("ssvep-exo", n, banked if n in ("ts_lr", "mdm") else plain)
            for n in ("cca", "fbcca", "trca", "ts_lr", "mdm", "eegnet")]
    runs += [("physionet-mi", n, motor_broad if n == "fbcsp_lda" else motor)
             for n in ("csp_lda", "fbcsp_lda", "ts_lr", "mdm", "eegnet", "shallow")]
    rows = []
    for dataset, name, ds in runs:
        options = {"epochs": deep_epochs} if name in ("eegnet", "shallow") else {}
        decoder = make_decoder(name, ds, **options)
        pred = cross_validate(decoder, ds, "within-session", 5, seed=42)
        per_subject = pred.accuracy_by(pred.subject)
        window_s = window_inference_s(partial(make_decoder, name, ds, **options), ds)
        ref = PUBLISHED[dataset].get(name)
        metric = PUBLISHED[dataset]["metric"]
        ours = pred.roc_auc if metric == "roc_auc" else pred.accuracy
        rows.append({"dataset": dataset, "decoder": name, "accuracy": pred.accuracy, "roc_auc": pred.roc_auc,
                     "mean_over_subjects": float(np.mean(list(per_subject.values()))), "per_subject": per_subject,
                     "fit_s_per_trial": pred.fit_time_s / len(pred.y_true),
                     "predict_s_per_trial": pred.predict_time_s, "inference_s_per_1s_window": window_s,
                     "moabb_metric": metric, "moabb_percent": ref})
        print(f"{dataset:<13} {name:<9} acc {pred.accuracy:.3f}  {metric} {ours:.3f} "
              f"(MOABB {ref if ref is not None else '-'})  "
              f"fit {pred.fit_time_s / len(pred.y_true) * 1e3:7.1f} ms/trial  predict {pred.predict_time_s * 1e3:6.2f} "
              f"ms/trial  1-s window {window_s * 1e3:6.2f} ms  real-time: {'yes' if window_s < 0.1 else 'NO'}",
              flush=True)
    if args.json:
        write_text(args.json, json.dumps({"quick": args.quick, "subjects": subjects, "deep_epochs": deep_epochs,
                                          "torch_threads": 1, "time_s": time.perf_counter() - t_start,
                                          "rows": rows}, indent=2))
    print(f"total {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
