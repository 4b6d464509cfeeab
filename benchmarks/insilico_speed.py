"""In-silico physiology speed on CPU: batched units against a one-unit-at-a-time loop.

On the 1024-unit hidden layer (``relu3``) of the MNIST CNN (Madry shape, random weights):

1. gratings tuning of all units (orientation x spatial frequency x phase) in one pass;
2. gradient RF maps of every unit at the grey image: ours (units with a zero gradient found in one
   double-backward pass and skipped; one forward pass shared by the rest, their backward passes
   batched over one-hot cotangents) against captum's
   ``NeuronGradient``, one call per unit (how captum users map a layer), with a check that the maps
   agree; the speed-up is also given per unit with a non-zero map, which leaves out what the skip
   saves;
3. most exciting inputs of 32 units: all units in one batch against one unit per optimisation.

Figures are seconds per unit (gradient maps: the median of ``--repeats`` turns of each method); the
ratios are the loop's time over the batched time (goal >= 10x).

    python benchmarks/insilico_speed.py --quick
    python benchmarks/insilico_speed.py --json results/insilico_speed.json
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main(argv=None):
    from neuroaikit.cli.options import positive_int

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="256 units for the maps, 8 MEIs, fewer steps")
    parser.add_argument("--threads", type=positive_int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="gradient-map timings (median reported)")
    parser.add_argument("--json", help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from captum.attr import NeuronGradient

    from neuroaikit.insilico import LayerUnits, gradient_maps, most_exciting_inputs, tuning_curves
    from neuroaikit.io import write_json
    from neuroaikit.models import build_model

    torch.manual_seed(0)
    model = build_model("cnn", in_channels=1, image_size=28, n_classes=10).eval()
    units = LayerUnits(model, "relu3", (1, 28, 28))
    n_units = units.n_units
    shape = (28, 28)
    figures: dict = {"layer": "relu3", "n_units": n_units, "threads": args.threads, "quick": args.quick}

    start = time.perf_counter()
    tuning = tuning_curves(units, shape, n_orientations=12, spatial_frequencies=(0.04, 0.08, 0.12, 0.16, 0.24),
                           n_phases=8)
    seconds = time.perf_counter() - start
    figures["tuning_all_units_s"] = seconds
    figures["tuning_s_per_unit"] = seconds / n_units
    print(f"gratings tuning of {n_units} units ({12 * 5 * 8} gratings): {seconds:.2f} s, "
          f"{1e3 * seconds / n_units:.3f} ms/unit (mean 1-CV {np.nanmean(tuning['orientation_selectivity']):.3f})")

    n_maps = 256 if args.quick else n_units
    chosen = np.arange(n_maps)
    grey = torch.full((1, 1, *shape), 0.5)
    captum = NeuronGradient(model, model.relu3)
    # both methods once before timing: the first batched backward pass sets up vmap (~0.3 s, once
    # per process), the first captum call its hooks; the cold first call is reported too
    start = time.perf_counter()
    gradient_maps(units, shape, chosen[:8], mean=0.5)
    figures["gradient_ours_first_call_s"] = time.perf_counter() - start
    captum.attribute(grey, neuron_selector=0)
    n_loop = min(n_maps, 64 if args.quick else 256)  # the loop is timed on a subset and scaled per unit
    ours_times, captum_times = [], []
    for _ in range(args.repeats):  # in turns, so a burst of load on a shared machine hits both
        start = time.perf_counter()
        ours = gradient_maps(units, shape, chosen, mean=0.5)
        ours_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs = [captum.attribute(grey, neuron_selector=int(i))[0, 0].detach().numpy() for i in chosen[:n_loop]]
        captum_times.append((time.perf_counter() - start) / n_loop * n_maps)
    t_ours, t_captum = float(np.median(ours_times)), float(np.median(captum_times))
    figures["gradient_repeats"] = args.repeats
    err = float(np.abs(ours[:n_loop] - np.stack(theirs)).max())
    n_live = int((np.abs(ours).reshape(n_maps, -1).max(1) > 0).sum())
    live_speedup = (t_captum / n_maps) / (t_ours / max(n_live, 1))
    figures.update(gradient_maps_units=n_maps, gradient_ours_s_per_unit=t_ours / n_maps,
                   gradient_captum_s_per_unit=t_captum / n_maps, gradient_speedup=t_captum / t_ours,
                   gradient_nonzero_maps=n_live, gradient_speedup_per_nonzero_map=live_speedup,
                   gradient_max_abs_difference=err)
    print(f"gradient maps, first call of the process (8 units): {figures['gradient_ours_first_call_s']:.2f} s")
    print(f"gradient maps of {n_maps} units ({n_live} non-zero): ours {1e3 * t_ours / n_maps:.3f} ms/unit, captum "
          f"NeuronGradient loop {1e3 * t_captum / n_maps:.3f} ms/unit ({n_loop} timed): {t_captum / t_ours:.1f}x "
          f"({live_speedup:.1f}x per non-zero map); max |diff| {err:.2e}")

    n_mei = 8 if args.quick else 32
    steps = 20 if args.quick else 100
    start = time.perf_counter()
    _, act = most_exciting_inputs(units, shape, np.arange(n_mei), steps=steps, mean=0.5)
    t_batch = time.perf_counter() - start
    n_loop_mei = min(n_mei, 4 if args.quick else 8)
    start = time.perf_counter()
    looped = [most_exciting_inputs(units, shape, [i], steps=steps, mean=0.5)[1][0] for i in range(n_loop_mei)]
    t_loop = (time.perf_counter() - start) / n_loop_mei * n_mei
    figures.update(mei_units=n_mei, mei_steps=steps, mei_batched_s_per_unit=t_batch / n_mei,
                   mei_loop_s_per_unit=t_loop / n_mei, mei_speedup=t_loop / t_batch,
                   mei_activation_batched_vs_loop_max_abs_difference=float(np.abs(act[:n_loop_mei] - np.array(looped)).max()))
    print(f"MEIs of {n_mei} units ({steps} steps): batched {t_batch / n_mei:.3f} s/unit, one unit at a time "
          f"{t_loop / n_mei:.3f} s/unit ({n_loop_mei} timed): {t_loop / t_batch:.1f}x")
    if args.json:
        print(f"figures: {write_json(args.json, figures)}")
    return figures


if __name__ == "__main__":
    main()
