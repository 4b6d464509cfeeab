"""What an ensemble of twins gains over one twin, and what it costs.

Fits ``--members`` default twins that differ only in their seed (weights, batch order, readout
sampling) on one realistic synthetic recording (``SyntheticCortex.realistic``: 6,000 trials, 36x64
images; ``--neurons`` neurons), each with early stopping and at most ``--member-time-limit``
seconds, then scores on the test tier each member alone and the average of the first k members'
predictions (k = 2 .. members), the Sensorium way of ensembling. The time an ensemble costs is
the sum of its members' fits.

    python benchmarks/twin_ensemble.py                            # 1,000 neurons, 3 members, ~30 min at 1 thread
    python benchmarks/twin_ensemble.py --neurons 300 --quick      # 1,100 trials, minutes
    python benchmarks/twin_ensemble.py --members 1 --member-time-limit 1440   # one twin, twice the time

Prints every figure; ``--json FILE`` also writes them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from neuroaikit.cli.options import positive_int  # noqa: E402
from neuroaikit.execution import ExecutionConfig  # noqa: E402
from neuroaikit.neural import SyntheticCortex, TwinFitConfig, fit_twin, predict  # noqa: E402
from neuroaikit.neural.metrics import evaluate_predictions  # noqa: E402
from neuroaikit.io import write_text  # noqa: E402

KEYS = ("single_trial_correlation", "correlation_to_average", "feve")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1,100 trials, 18x32 images")
    p.add_argument("--neurons", type=int, default=1000)
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--member-time-limit", type=float, default=900.0, help="seconds per member's fit")
    p.add_argument("--threads", type=positive_int, default=1)
    p.add_argument("--data-dir", help="unused (the data are simulated); accepted for a uniform interface")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    if args.members < 1:
        p.error("--members must be at least 1")
    if args.quick:
        size = dict(image_shape=(18, 32), n_train=800, n_validation=100, n_test_images=20, repeats=10)
    else:
        size = dict(image_shape=(36, 64), n_train=4500, n_validation=500, n_test_images=100, repeats=10)
    cortex = SyntheticCortex.realistic(n_neurons=args.neurons, image_shape=size["image_shape"], seed=0)
    ds = cortex.sample(size["n_train"], size["n_validation"], size["n_test_images"], size["repeats"])
    test = ds.subset("test")
    std = ds.response_std("train")

    def score(prediction: np.ndarray) -> dict:
        scores = evaluate_predictions(test.responses, prediction, test.image_ids, std)
        return {k: float(scores[k]) for k in KEYS}

    oracle = evaluate_predictions(test.responses, cortex.oracle_predictions(test), test.image_ids, std)
    print(f"{ds!r}; jackknife oracle {oracle['oracle_correlation']:.3f}; {args.threads} thread(s)")
    members, predictions = [], []
    for seed in range(args.members):
        cfg = TwinFitConfig(seed=seed, time_limit=args.member_time_limit,
                            execution=ExecutionConfig(device="cpu", threads=args.threads))
        t = time.perf_counter()
        model, history = fit_twin(ds, cfg)
        seconds = time.perf_counter() - t
        predictions.append(predict(model, ds, "test"))
        members.append({"seed": seed, "fit_s": seconds, "epochs": len(history) - 1,
                        "best_validation_correlation": history[-1]["best_validation_correlation"],
                        "stopped_by": history[-1]["stopped_by"],
                        **score(predictions[-1])})
        m = members[-1]
        print(f"member {seed}: {m['epochs']} epochs, {seconds:.0f} s (stopped by {m['stopped_by']}), best validation r "
              f"{m['best_validation_correlation']:.4f}, test single-trial r {m['single_trial_correlation']:.4f}",
              flush=True)
    single = {k: float(np.mean([m[k] for m in members])) for k in KEYS}
    ensembles = []
    for k in range(2, args.members + 1):
        row = {"members": k, "fit_s": sum(m["fit_s"] for m in members[:k]), **score(np.mean(predictions[:k], 0))}
        row["gain_single_trial"] = row["single_trial_correlation"] - single["single_trial_correlation"]
        ensembles.append(row)
    print(f"\n{'model':<22} {'single-trial r':>14} {'r to average':>12} {'FEVE':>6} {'fit s':>7}")
    print(f"{'one twin (mean of ' + str(args.members) + ')':<22} {single['single_trial_correlation']:>14.4f} "
          f"{single['correlation_to_average']:>12.4f} {single['feve']:>6.3f} "
          f"{np.mean([m['fit_s'] for m in members]):>7.0f}")
    for row in ensembles:
        print(f"{'ensemble of ' + str(row['members']):<22} {row['single_trial_correlation']:>14.4f} "
              f"{row['correlation_to_average']:>12.4f} {row['feve']:>6.3f} {row['fit_s']:>7.0f}"
              f"   ({row['gain_single_trial']:+.4f} single-trial r)")
    if args.json:
        write_text(args.json, json.dumps({"size": {**{k: list(v) if isinstance(v, tuple) else v
                                                       for k, v in size.items()}, "n_neurons": args.neurons},
                                          "threads": args.threads, "member_time_limit": args.member_time_limit,
                                          "oracle_correlation": float(oracle["oracle_correlation"]),
                                          "members": members, "single": single, "ensembles": ensembles},
                                         indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
