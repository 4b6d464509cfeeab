"""Several mice and transfer (Lurz et al. 2021): does a core fitted on other mice serve a new one?

Synthetic mice of one simulated cortex (``SyntheticCortex``: the same kinds of simple, complex
and centre-surround cells, each mouse its own neurons). On the new mouse's test tier,
single-trial correlation of:

- ``full``: a twin of its own, fitted on all of its training trials;
- ``own_small``: a twin of its own, fitted on a fraction (default 20 %) of them;
- ``transfer_small``: the core fitted on the source mice, frozen, and a readout trained on the
  same fraction (``twin fit NEW --core-from RUN``);
- ``transfer_full``: the frozen core with a readout trained on all of them;
- ``transfer_small_unplaced``: as ``transfer_small``, with readouts starting at random positions
  (``place_readouts=False``) instead of where the core's features predict each neuron.

Every fit stops early on its validation tier (the default ``max_epochs`` 200, patience 5): a
readout trained on few trials needs many epochs, and a fixed epoch count would starve it. The
issue's target: ``transfer_small`` within 0.02 of ``full``. Also printed: the source mice's
own test correlation and the simulator's oracle for the new mouse.

    python benchmarks/twin_transfer.py --quick
    python benchmarks/twin_transfer.py --json results/twin_transfer.json
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from neuroaikit.cli.options import positive_int  # noqa: E402
from neuroaikit.neural import SyntheticCortex, TwinFitConfig, TwinModelConfig, fit_twin, predict  # noqa: E402
from neuroaikit.io import write_json  # noqa: E402
from neuroaikit.neural.metrics import single_trial_correlation  # noqa: E402


def _test_r(model, ds, session=None) -> float:
    pred = predict(model, ds, "test", session=session)
    return float(np.nanmean(single_trial_correlation(ds.responses[ds.tier_mask("test")], pred)))


def _oracle_r(ds) -> float:
    """Correlation of the noise-free rates with the single trials: the ceiling of any model."""
    rates = ds.info["rates"][ds.tier_mask("test")]
    return float(np.nanmean(single_trial_correlation(ds.responses[ds.tier_mask("test")], rates)))


def _first_trials(ds, n: int):
    """The first ``n`` training trials, every validation and test trial."""
    train = np.flatnonzero(ds.tier_mask("train"))
    keep = np.ones(ds.n_trials, bool)
    keep[train[n:]] = False
    return ds.subset(keep)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer neurons and trials, smaller images")
    parser.add_argument("--source-mice", type=int, default=3)
    parser.add_argument("--fraction", type=float, default=0.2, help="share of the new mouse's training trials")
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    if not 0 < args.fraction <= 1:
        parser.error(f"--fraction must be in (0, 1], got {args.fraction}")
    if args.source_mice < 1:
        parser.error(f"--source-mice must be at least 1, got {args.source_mice}")
    torch.set_num_threads(args.threads)

    shape = (12, 16) if args.quick else (18, 32)
    n_neurons = 40 if args.quick else 100
    n_train = 600 if args.quick else 2000
    config = TwinFitConfig(model=TwinModelConfig(hidden_channels=8 if args.quick else 16,
                                                 layers=2 if args.quick else 3),
                           batch_size=32, seed=args.seed)

    def mouse(seed: int):
        cortex = SyntheticCortex(n_neurons=n_neurons, image_shape=shape, seed=seed, mean_rate=1.0)
        return cortex.sample(n_train=n_train, n_validation=n_train // 10, n_test_images=40, repeats=5)

    base = 100 * (args.seed + 1)
    sources = {f"mouse{k + 1}": mouse(base + k + 1) for k in range(args.source_mice)}
    new = mouse(base + 99)
    n_small = max(int(round(args.fraction * int(new.tier_mask("train").sum()))), 2)
    small = _first_trials(new, n_small)
    figures: dict = {"quick": args.quick, "image_shape": list(shape), "neurons_per_mouse": n_neurons,
                     "train_trials_per_mouse": n_train, "source_mice": args.source_mice, "fraction": args.fraction,
                     "small_train_trials": n_small, "max_epochs": config.max_epochs, "threads": args.threads,
                     "oracle_r": _oracle_r(new)}

    def timed(label, *fit_args, **fit_kwargs):
        start = time.perf_counter()
        model, history = fit_twin(*fit_args, **fit_kwargs)
        figures[f"{label}_fit_s"] = time.perf_counter() - start
        figures[f"{label}_epochs"] = len(history)
        return model

    shared = timed("source", sources, config)
    figures["source_test_r"] = float(np.mean([_test_r(shared, ds, name) for name, ds in sources.items()]))
    figures["full_r"] = _test_r(timed("full", new, config), new)
    figures["own_small_r"] = _test_r(timed("own_small", small, config), small)
    figures["transfer_small_r"] = _test_r(timed("transfer_small", small, config, core_from=shared), small)
    figures["transfer_full_r"] = _test_r(timed("transfer_full", new, config, core_from=shared), new)
    unplaced = replace(config, place_readouts=False)
    figures["transfer_small_unplaced_r"] = _test_r(timed("transfer_small_unplaced", small, unplaced,
                                                         core_from=shared), small)
    figures["transfer_small_minus_full"] = figures["transfer_small_r"] - figures["full_r"]

    print(f"{args.source_mice} source mice x {n_neurons} neurons x {n_train} train trials, {shape[0]}x{shape[1]} "
          f"images; new mouse: {n_small} of {n_train} train trials ({args.fraction:.0%})")
    print(f"source mice, shared core: test r {figures['source_test_r']:.3f}; new mouse oracle {figures['oracle_r']:.3f}")
    for key, label in (("full", "own core, all trials"), ("own_small", f"own core, {n_small} trials"),
                       ("transfer_small", f"frozen source core, {n_small} trials"),
                       ("transfer_full", "frozen source core, all trials"),
                       ("transfer_small_unplaced", f"frozen core, {n_small} trials, unplaced")):
        print(f"  {label:<34} test r {figures[key + '_r']:.3f}  ({figures[key + '_fit_s']:.0f} s, "
              f"{figures[key + '_epochs']} epochs)")
    print(f"transfer with {args.fraction:.0%} of the trials minus full fit: {figures['transfer_small_minus_full']:+.3f} "
          f"(target: within 0.02)")
    if args.json:
        print(f"figures: {write_json(args.json, figures)}")
    return figures


if __name__ == "__main__":
    main()
