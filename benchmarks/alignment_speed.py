"""Speed of RSA with bootstrap: neuroaikit vs rsatoolbox in one run, same numbers.

Task (issue 5): correlation RDMs of two representations (1,000 stimuli x 5,000 units),
their Spearman comparison, and 1,000 bootstrap resamples over stimuli. rsatoolbox does the
bootstrap as its ``eval_bootstrap_pattern`` does: ``RDMs.subsample_pattern`` (which marks
a stimulus paired with its own copy NaN) and ``compare(..., 'spearman')`` per resample. Both
get the SAME resampled indices, so every bootstrap value can be compared.

    python benchmarks/alignment_speed.py            # full task (rsatoolbox part takes minutes)
    python benchmarks/alignment_speed.py --quick    # 300 stimuli x 1,000 units, 200 resamples

``--rsatoolbox-resamples K`` times rsatoolbox on the first K resamples only and extrapolates
its time linearly to all of them (printed as such).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from neuroaikit.cli.options import positive_int
from neuroaikit.io import write_text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stimuli", type=int, default=1000)
    p.add_argument("--units", type=int, default=5000)
    p.add_argument("--resamples", type=int, default=1000)
    p.add_argument("--rsatoolbox-resamples", type=int, help="time rsatoolbox on this many resamples (default all)")
    p.add_argument("--quick", action="store_true", help="300 stimuli x 1,000 units, 200 resamples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=positive_int, default=1,
                   help="torch intra-op threads for neuroaikit (default 1: on a shared 2-core machine a thread "
                        "pool slows small operations; compare with --threads 2)")
    p.add_argument("--data-dir", help="unused (synthetic data); accepted for a uniform benchmark interface")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = p.parse_args(argv)
    if args.quick:
        args.stimuli, args.units, args.resamples = 300, 1000, 200
    k_rsa = min(args.rsatoolbox_resamples or args.resamples, args.resamples)

    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import calc_rdm, compare

    from neuroaikit.alignment import bootstrap_rdm_comparison, compare_rdms, rdm, resample_indices

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    latent = rng.normal(size=(args.stimuli, 50))
    x = latent @ rng.normal(size=(50, args.units)) + 3 * rng.normal(size=(args.stimuli, args.units))
    y = np.tanh(latent @ rng.normal(size=(50, args.units)) * 0.3) + rng.normal(size=(args.stimuli, args.units))
    idx = resample_indices(args.stimuli, args.resamples, args.seed)
    print(f"task: correlation RDMs of {args.stimuli} stimuli x {args.units} units, Spearman, "
          f"{args.resamples} bootstrap resamples over stimuli; torch threads {torch.get_num_threads()}")

    t0 = time.perf_counter()
    rdm_x, rdm_y = rdm(x, "correlation"), rdm(y, "correlation")
    ours_estimate = float(compare_rdms(rdm_x, rdm_y, "spearman"))
    boot = bootstrap_rdm_comparison(rdm_x, rdm_y, "spearman", indices=idx)
    ours_time = time.perf_counter() - t0

    t0 = time.perf_counter()
    stim = {"index": np.arange(args.stimuli)}
    rdms_x = calc_rdm(Dataset(x, obs_descriptors=stim), method="correlation")
    rdms_y = calc_rdm(Dataset(y, obs_descriptors=stim), method="correlation")
    theirs_estimate = float(compare(rdms_x, rdms_y, method="spearman")[0, 0])
    theirs = []
    for row in idx[:k_rsa].numpy():
        theirs.append(compare(rdms_x.subsample_pattern("index", row), rdms_y.subsample_pattern("index", row),
                              method="spearman")[0, 0])
    theirs_time = time.perf_counter() - t0
    extrapolated = k_rsa < args.resamples
    if extrapolated:
        per = theirs_time / max(1, k_rsa)
        theirs_time = theirs_time + per * (args.resamples - k_rsa)

    theirs = np.array(theirs)
    diff_rdm = float(np.abs(rdm_x.numpy() - rdms_x.get_vectors()[0]).max())
    diff_boot = float(np.abs(boot.samples.numpy()[:k_rsa] - theirs).max())
    low, high = np.quantile(theirs, [0.025, 0.975])
    print(f"neuroaikit: {ours_time:8.2f} s   spearman {ours_estimate:.6f}   95% CI [{float(boot.low):.6f}, {float(boot.high):.6f}]")
    print(f"rsatoolbox: {theirs_time:8.2f} s{' (extrapolated from %d resamples)' % k_rsa if extrapolated else ''}"
          f"   spearman {theirs_estimate:.6f}   95% CI [{low:.6f}, {high:.6f}]"
          f"{' (over its %d resamples)' % k_rsa if extrapolated else ''}")
    print(f"speed-up: {theirs_time / ours_time:.1f}x (goal >= 10x)")
    print(f"max |difference|: RDM {diff_rdm:.2e}, estimate {abs(ours_estimate - theirs_estimate):.2e}, "
          f"bootstrap values {diff_boot:.2e} over {k_rsa} resamples")
    same = diff_rdm < 1e-6 and abs(ours_estimate - theirs_estimate) < 1e-6 and diff_boot < 1e-6
    print("same numbers: " + ("yes (all within 1e-6)" if same else "NO"))
    if args.json:
        figures = {"stimuli": args.stimuli, "units": args.units, "resamples": args.resamples,
                   "rsatoolbox_resamples_timed": k_rsa, "rsatoolbox_time_extrapolated": extrapolated,
                   "threads": torch.get_num_threads(),
                   "seconds": {"neuroaikit": ours_time, "rsatoolbox": theirs_time},
                   "speedup": theirs_time / ours_time, "speedup_goal": 10.0,
                   "spearman": {"neuroaikit": ours_estimate, "rsatoolbox": theirs_estimate},
                   "ci95_neuroaikit": [float(boot.low), float(boot.high)], "ci95_rsatoolbox": [float(low), float(high)],
                   "max_abs_difference": {"rdm": diff_rdm, "estimate": abs(ours_estimate - theirs_estimate),
                                          "bootstrap_values": diff_boot},
                   "same_numbers": same}
        write_text(args.json, json.dumps(figures, indent=2))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
