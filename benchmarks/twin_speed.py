"""Digital twin training speed on a Lurz-size recording: each speed lever measured alone and together.

A synthetic recording the size of a Sensorium / Lurz et al. 2021 mouse (6,000 trials: 4,500 train,
500 validation, 100 test images x 10 repeats; 5,300 neurons; 36x64 images), drawn from
``SyntheticCortex.realistic`` (jackknife oracle near a real recording's), and the default twin
(32 channels x 3 layers, Gaussian readout). Training steps of each recipe are timed through the
fitting code itself (``fit_twin``'s trainer: loss, backward, Adam step) after warm-up steps, at 1
and 2 torch threads; the per-epoch time is the train tier's trials over the measured samples/s.

Recipes (``--recipes``):

- ``old``: the recipe before this benchmark existed: readout contracted with ``einsum``, NCHW
  layout, batch 64 (re-created here by patching the readout's forward);
- ``readout``: the readout contracted elementwise (the current code), NCHW, batch 64;
- ``channels-last``: ``einsum`` readout, channels-last core, batch 64;
- ``new``: both (the current default on CPUs), batch 64;
- ``new-b32``: both, batch 32 (more steps per epoch; only its speed is measured here);
- ``readout-b32``: elementwise readout, NCHW, batch 32: the default on a GPU, where the
  channels-last layout is off (``TwinFitConfig.channels_last`` is on for CPUs only).

The timed samples may span several epochs (each a fresh shuffle of the train tier); the rate is
the samples actually run over their time.

``--curve SECONDS`` then fits each recipe of ``--curve-recipes`` (default ``old,new-b32``) for that
long (with the most threads of ``--threads``) and records the validation correlation against wall time and epochs, to show
whether a faster recipe costs accuracy.

    python benchmarks/twin_speed.py                          # speed table, about 3 min on 2 cores
    python benchmarks/twin_speed.py --curve 600 --json F     # + two 10-minute fits

Prints every figure; ``--json FILE`` also writes them.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from neuroaikit.execution import Execution, ExecutionConfig  # noqa: E402
from neuroaikit.io import write_json  # noqa: E402
from neuroaikit.neural import SyntheticCortex, TwinFitConfig, fit_twin, predict  # noqa: E402
from neuroaikit.neural.metrics import evaluate_predictions  # noqa: E402
from neuroaikit.neural import models as twin_models  # noqa: E402
from neuroaikit.neural.fit import _batches, _Trainer  # noqa: E402
from neuroaikit.progress import silent  # noqa: E402

RECIPES = {  # name: (elementwise readout, channels_last, batch size)
    "old": (False, False, 64),
    "readout": (True, False, 64),
    "channels-last": (False, True, 64),
    "new": (True, True, 64),
    "new-b32": (True, True, 32),
    "readout-b32": (True, False, 32),
}


def _einsum_readout(self, features, shift=None):
    """The readout's forward as it was: the channel contraction by einsum (N batched matmuls)."""
    return torch.einsum("bcn,cn->bn", self.sample_features(features, shift), self.weight) + self.bias


@contextlib.contextmanager
def readout_contraction(elementwise: bool):
    original = twin_models.GaussianReadout.forward
    if not elementwise:
        twin_models.GaussianReadout.forward = _einsum_readout
    try:
        yield
    finally:
        twin_models.GaussianReadout.forward = original


def config_for(recipe: str, threads: int, device: str, **fit) -> TwinFitConfig:
    _, channels_last, batch = RECIPES[recipe]
    return TwinFitConfig(batch_size=batch, channels_last=channels_last,
                         execution=ExecutionConfig(device=device, threads=threads), **fit)


def time_steps(ds, recipe: str, threads: int, device: str, samples: int, warmup: int = 3) -> dict:
    """Samples per second of training steps (loss, backward, optimizer step) of ``recipe``, and
    the minor page faults the timed steps took."""
    elementwise, _, batch = RECIPES[recipe]
    cfg = config_for(recipe, threads, device)
    with readout_contraction(elementwise), Execution(cfg.execution) as ex:
        trainer = _Trainer(ds, cfg, ex, silent())
        session = next(iter(trainer.prepared))
        n_train = len(trainer.prepared[session].train)
        n_timed = max(1, samples // batch)
        rng, batches = np.random.default_rng(0), []
        if n_train == 0:
            raise SystemExit("twin_speed: the recording has no training trials")
        while len(batches) < warmup + n_timed:  # as many epochs as the timed samples take
            batches.extend(_batches(n_train, batch, rng))
        batches = batches[: warmup + n_timed]
        timed = sum(len(idx) for idx in batches[warmup:])
        trainer.wrapped.train()
        for k, idx in enumerate(batches):
            if k == warmup:
                if ex.device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            loss, _ = trainer.global_batch_loss(session, idx)
            ex.optimizer_step(loss, trainer.opt)
        if ex.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before
    per_s = timed / seconds
    # minor page faults: pages the kernel mapped in afresh during the timed steps
    return {"samples_per_s": per_s, "epoch_s": n_train / per_s, "timed_samples": timed,
            "minor_faults": faults}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a small recording (600 neurons, 18x32): a minute")
    p.add_argument("--recipes", default=",".join(RECIPES), help=f"comma-separated, from {', '.join(RECIPES)}")
    p.add_argument("--threads", default="1,2", help="comma-separated torch thread counts (default 1,2)")
    p.add_argument("--samples", type=int, default=1280, help="timed training samples per recipe (after warm-up)")
    p.add_argument("--curve", type=float, default=0.0, help="also fit each recipe for this many seconds")
    p.add_argument("--curve-recipes", default="old,new-b32", help="the recipes --curve fits (comma-separated)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, ... (default cpu)")
    p.add_argument("--data-dir", help="unused (the data are simulated); accepted for a uniform interface")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    curve_recipes = [r.strip() for r in args.curve_recipes.split(",") if r.strip()]
    unknown = sorted((set(recipes) | set(curve_recipes)) - set(RECIPES))
    if unknown:
        p.error(f"unknown recipe(s) {unknown}; choose from {sorted(RECIPES)}")
    try:
        threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        p.error(f"--threads must be comma-separated integers, got {args.threads!r}")
    if any(t < 1 for t in threads) or args.samples < 1 or args.curve < 0:
        p.error("--threads and --samples must be positive, --curve >= 0")

    if args.quick:
        size = dict(n_neurons=600, image_shape=(18, 32), n_train=900, n_validation=100, n_test_images=20, repeats=10)
    else:
        size = dict(n_neurons=5300, image_shape=(36, 64), n_train=4500, n_validation=500, n_test_images=100, repeats=10)
    figures: dict = {"size": {k: list(v) if isinstance(v, tuple) else v for k, v in size.items()},
                     "device": args.device, "timed_samples": args.samples, "speed": {}}
    t = time.time()
    cortex = SyntheticCortex.realistic(n_neurons=size["n_neurons"], image_shape=size["image_shape"], seed=0)
    ds = cortex.sample(size["n_train"], size["n_validation"], size["n_test_images"], size["repeats"])
    print(f"data: {ds!r} (simulated in {time.time() - t:.0f} s)")
    for n_threads in threads:
        rows = {}
        for recipe in recipes:
            rows[recipe] = time_steps(ds, recipe, n_threads, args.device, args.samples)
        base = rows.get("old")
        for recipe, row in rows.items():
            if base:
                row["speedup_vs_old"] = row["samples_per_s"] / base["samples_per_s"]
            print(f"  {n_threads} thread(s) {recipe:14s} {row['samples_per_s']:7.1f} samples/s, "
                  f"{row['epoch_s']:6.1f} s per epoch" + (f", {row['speedup_vs_old']:.2f}x old" if base else ""), flush=True)
        figures["speed"][str(n_threads)] = rows

    if args.curve:
        figures["curve"] = {}
        for recipe in curve_recipes:
            elementwise = RECIPES[recipe][0]
            cfg = config_for(recipe, max(threads), args.device, time_limit=args.curve)
            with readout_contraction(elementwise):
                model, history = fit_twin(ds, cfg, callback=lambda r, name=recipe: print(
                    f"  {name}: epoch {r['epoch']} validation r {r['validation_correlation']:.4f} at {r['seconds']:.0f} s",
                    flush=True))
            epochs = [r for r in history if "epoch" in r]
            test = ds.subset("test")
            with readout_contraction(elementwise):
                scores = evaluate_predictions(test.responses, predict(model, ds, "test"), test.image_ids,
                                              ds.response_std("train"))
            figures["curve"][recipe] = {
                "test_single_trial_correlation": float(scores["single_trial_correlation"]),
                "test_oracle_correlation": float(scores["oracle_correlation"]),
                "seconds": [r["seconds"] for r in epochs],
                "validation_correlation": [r["validation_correlation"] for r in epochs],
                "best_validation_correlation": history[-1]["best_validation_correlation"],
                "epochs": len(epochs),
            }
            print(f"  {recipe}: {len(epochs)} epochs in {args.curve:.0f} s, best validation r "
                  f"{history[-1]['best_validation_correlation']:.4f}, test single-trial r "
                  f"{scores['single_trial_correlation']:.4f} (jackknife oracle {scores['oracle_correlation']:.4f})")
    figures["peak_memory_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"peak memory {figures['peak_memory_gb']:.2f} GB")
    if args.json:
        print(f"figures: {write_json(args.json, figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
