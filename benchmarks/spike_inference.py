"""Spike inference on the Cascade ground truth: held-out correlation per dataset.

Protocol (neuroaikit.neural.calcium.evaluate): per dataset, files sorted by name, even
positions tune the OASIS parameters (decay / rise time, penalty, output smoothing), odd
positions are held out and scored. Score: Pearson r between the inferred rate and the
ground-truth spike rate (spikes binned at the frames, Gaussian sigma 0.2 s), mean over
held-out recordings. Two conditions:

  native   each recording at its own frame rate and noise;
  cascade  resampled to 7.5 Hz and noise raised to Cascade's standardised level 2
           (the conditions of the Cascade paper's benchmark figures).

Beside each score: plain OASIS with its defaults (decay estimated per trace, output smoothed
0.2 s) on the same held-out recordings, the ratio tuned / default, and the chance level
(ground truth circularly shifted by half the recording).

usage: python benchmarks/spike_inference.py [--data-dir ../shared/data] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from neuroaikit.neural.calcium import EvaluationConfig, evaluate_calcium  # noqa: E402
from neuroaikit.progress import silent  # noqa: E402
from neuroaikit.neural.calcium.evaluate import GRIDS  # noqa: E402
from neuroaikit.io import write_text  # noqa: E402


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def describe_threads(execution: dict) -> str:
    """The thread pools an evaluation ran with (its ``execution`` record), e.g. "openblas 2, torch 2"."""
    pools = {**execution.get("thread_pools", {}), "torch": execution.get("torch_threads")}
    return ", ".join(f"{name} {n}" for name, n in pools.items() if n is not None) or "unknown"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"), help="folder holding calcium/")
    parser.add_argument("--dataset", action="append", help="dataset prefix, e.g. DS09 (default: all)")
    parser.add_argument("--quick", action="store_true", help="small grid, native condition only")
    parser.add_argument("--smoothing", type=float, default=0.2)
    parser.add_argument("--grid", choices=tuple(GRIDS), help="tuning grid (default: 'default', or 'quick' with --quick)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)

    grid = GRIDS[args.grid or ("quick" if args.quick else "default")]
    conditions = [("native", None, None)] if args.quick else [("native", None, None), ("cascade", 7.5, 2.0)]
    header = (
        f"{'condition':<9} {'dataset':<20} {'indicator':<8} {'Hz':>6} {'nu':>5} {'n tune/test':>11} "
        f"{'held-out r':>10} {'median':>7} {'default':>8} {'ratio':>6} {'chance':>7}  tuned"
    )
    lines = []
    rows, seconds_per_condition, threads = [], {}, {}
    cores = cpu_cores()
    for label, rate, noise in conditions:
        cfg = EvaluationConfig(
            args.data_dir, datasets=args.dataset, smoothing_s=args.smoothing, rate_hz=rate, noise_level=noise,
            grid={k: list(v) for k, v in grid.items()},
        )
        t0 = time.perf_counter()
        result = evaluate_calcium(cfg, progress=silent())
        seconds = time.perf_counter() - t0
        for s in result.datasets:
            p = s.tuned_params
            tau = "est" if p.tau_decay_s is None else f"{p.tau_decay_s}s"
            lines.append(
                f"{label:<9} {s.dataset:<20} {s.indicator:<8} {s.frame_rate_hz:>6.2f} "
                f"{s.test_mean_noise_level:>5.2f} {s.n_tune_recordings:>5}/{s.n_test_recordings:<5} "
                f"{s.test_mean_r:>10.3f} {s.test_median_r:>7.3f} {s.test_mean_r_untuned:>8.3f} "
                f"{s.test_mean_r / s.test_mean_r_untuned:>6.2f} {s.test_mean_r_chance:>7.3f}  "
                f"tau {tau} rise {p.tau_rise_s}s {p.penalty} out-sigma {p.smoothing_s}s"
            )
            rows.append({"condition": label, "dataset": s.dataset, "indicator": s.indicator,
                         "frame_rate_hz": s.frame_rate_hz, "noise_level": s.test_mean_noise_level,
                         "tune_recordings": s.n_tune_recordings, "test_recordings": s.n_test_recordings,
                         "held_out_r": s.test_mean_r, "held_out_median_r": s.test_median_r,
                         "default_oasis_r": s.test_mean_r_untuned, "ratio": s.test_mean_r / s.test_mean_r_untuned,
                         "chance_r": s.test_mean_r_chance, "tuned": f"tau {tau} rise {p.tau_rise_s}s {p.penalty} "
                         f"out-sigma {p.smoothing_s}s"})
        seconds_per_condition[label] = seconds
        threads[label] = describe_threads(result.execution)
        lines.append(f"{label:<9} ({seconds:.1f} s for tuning + evaluation on {cores} CPU core(s); "
                     f"threads: {threads[label]})")
    print(
        f"smoothing of the ground truth: Gaussian sigma {args.smoothing} s; split by file (even tune, odd held out); "
        f"grid {args.grid or ('quick' if args.quick else 'default')}"
    )
    print(header)
    print("\n".join(lines))
    if args.json:
        write_text(args.json, json.dumps({"smoothing_s": args.smoothing, "grid": args.grid or (
            "quick" if args.quick else "default"), "seconds": seconds_per_condition, "cpu_cores": cores,
            "threads": threads, "datasets": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
