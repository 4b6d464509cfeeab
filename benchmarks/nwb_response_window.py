"""Which response window to read from an NWB recording of back-to-back flashes.

The Allen Brain Observatory shows its natural scenes for 0.25 s each with no gap, and a calcium
indicator's response to a flash rises after the flash's spikes and decays over most of a second.
``load_nwb`` averages by default the frames inside each presentation's own ``[start_time,
stop_time)``; ``window=(a, b)`` averages ``[start_time + a, start_time + b)`` instead.

This benchmark simulates such a session and writes it as NWB: the synthetic cortex's noise-free
rates to ``--images`` scenes shown ``--repeats`` times each in random order, ``--flash`` s each
and back to back; Poisson spikes in 2 ms bins from ``--latency`` s after each onset for one flash
length (plus a baseline rate); calcium as those spikes convolved with a double exponential
(rise ``--rise`` s, decay each of ``--decays`` s); dF/F sampled at ``--rate`` Hz with Gaussian
noise. For each window it loads the file with :func:`neuroaikit.neural.load_nwb` and prints, as
the median over neurons:

- ``r(shown)``: the correlation of each trial's loaded response with the true rate to the image
  that trial showed (the signal the window captures);
- ``r(previous)``: the same with the rate to the image shown just before (what the window
  takes from the preceding flash; the images are in random order, so it is 0 for a clean window).

    python benchmarks/nwb_response_window.py            # 3 seeds, decays 0.4 and 1.0 s
    python benchmarks/nwb_response_window.py --quick    # one seed, fewer repeats

A simulation, not a recording: which window is best depends on the indicator, the frame rate and
the flash length, and these figures show how much, not a recommendation for every rig.
Prints every figure; ``--json FILE`` also writes them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from neuroaikit.io import write_text  # noqa: E402
from neuroaikit.neural import SyntheticCortex, load_nwb  # noqa: E402

BIN = 0.002  # s, the spike grid
WINDOWS: list[tuple[float, float] | None] = [None, (0.05, 0.3), (0.1, 0.35), (0.1, 0.5), (0.0, 0.5), (0.2, 0.7),
                                             (0.0, 1.0)]


def simulate(args, decay: float, seed: int) -> dict:
    """Image sequence, true rates per trial and the sampled dF/F of one session."""
    rng = np.random.default_rng(seed)
    cortex = SyntheticCortex(n_neurons=args.neurons, image_shape=(18, 32), seed=seed)
    images = cortex.images(args.images, rng)
    rates = cortex.rates(images)  # (images, neurons), noise-free
    rates = rates / rates.mean() * args.mean_rate  # spikes per second
    shown = np.concatenate([rng.permutation(args.images) for _ in range(args.repeats)])
    onsets = 1.0 + np.arange(len(shown)) * args.flash
    end = onsets[-1] + args.flash + 2.0
    n_bins = int(np.ceil(end / BIN))
    drive = np.full((n_bins, args.neurons), args.baseline_rate, np.float32)
    for onset, image in zip(onsets, shown):
        first = int(round((onset + args.latency) / BIN))
        drive[first:first + int(round(args.flash / BIN))] += rates[image]
    spikes = rng.poisson(drive * BIN).astype(np.float32)
    t = np.arange(int(round(4 * decay / BIN) + 1)) * BIN
    kernel = (np.exp(-t / decay) - np.exp(-t / args.rise)).astype(np.float32)
    kernel /= kernel.max()
    n_fft = 1 << int(np.ceil(np.log2(n_bins + len(kernel))))
    calcium = np.fft.irfft(np.fft.rfft(spikes, n_fft, axis=0) * np.fft.rfft(kernel, n_fft)[:, None], n_fft, axis=0)
    stamps = np.arange(0.0, end, 1.0 / args.rate) + rng.uniform(0, 1.0 / args.rate)
    dff = calcium[(stamps / BIN).astype(int)] * args.amplitude
    dff = (dff + rng.normal(0, args.noise, dff.shape)).astype(np.float32)
    return {"images": images, "rates": rates, "shown": shown, "onsets": onsets, "stamps": stamps, "dff": dff}


def write_session(path: Path, session: dict, flash: float) -> None:
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.image import ImageSeries
    from pynwb.ophys import DfOverF, ImageSegmentation, OpticalChannel, RoiResponseSeries

    nwb = NWBFile(session_description="simulated flashes", identifier=path.stem,
                  session_start_time=datetime(2026, 1, 1, tzinfo=timezone.utc))
    nwb.add_stimulus_template(ImageSeries(name="natural_scenes", data=session["images"], unit="a.u.", rate=1.0,
                                          format="raw"))
    nwb.add_trial_column("frame", "image index")
    for onset, image in zip(session["onsets"], session["shown"]):
        nwb.add_trial(start_time=float(onset), stop_time=float(onset + flash), frame=int(image))
    device = nwb.create_device(name="scope")
    channel = OpticalChannel(name="green", description="GCaMP", emission_lambda=510.0)
    plane = nwb.create_imaging_plane(name="plane", optical_channel=channel, description="simulated", device=device,
                                     excitation_lambda=920.0, indicator="GCaMP6", location="VISp", imaging_rate=30.0)
    segmentation = ImageSegmentation()
    rois = segmentation.create_plane_segmentation(name="rois", description="simulated", imaging_plane=plane)
    for i in range(session["dff"].shape[1]):
        rois.add_roi(pixel_mask=[(i % 32, i // 32, 1.0)])
    ophys = nwb.create_processing_module("ophys", "simulated")
    ophys.add(segmentation)
    region = rois.create_roi_table_region(region=list(range(session["dff"].shape[1])), description="all")
    ophys.add(DfOverF(roi_response_series=RoiResponseSeries(name="DfOverF", data=session["dff"], rois=region,
                                                            unit="1", timestamps=session["stamps"])))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)


def median_correlation(responses: np.ndarray, truth: np.ndarray) -> float:
    a = responses - responses.mean(0)
    b = truth - truth.mean(0)
    r = (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))
    return float(np.median(r))


def label(window: tuple[float, float] | None) -> str:
    return "presentation" if window is None else f"{window[0]:g}-{window[1]:g} s"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--neurons", type=int, default=100)
    p.add_argument("--images", type=int, default=118, help="scenes (default 118, as the Brain Observatory)")
    p.add_argument("--repeats", type=int, default=10, help="showings of each scene (default 10)")
    p.add_argument("--flash", type=float, default=0.25, help="seconds per flash, back to back (default 0.25)")
    p.add_argument("--latency", type=float, default=0.05, help="spikes start this long after onset (default 0.05 s)")
    p.add_argument("--rise", type=float, default=0.05, help="calcium rise time constant (default 0.05 s)")
    p.add_argument("--decays", type=float, nargs="+", default=[0.4, 1.0], help="decay time constants (default 0.4 1.0 s)")
    p.add_argument("--rate", type=float, default=30.0, help="imaging frame rate (default 30 Hz)")
    p.add_argument("--mean-rate", type=float, default=5.0, help="mean evoked rate, spikes/s (default 5)")
    p.add_argument("--baseline-rate", type=float, default=1.0, help="spontaneous rate, spikes/s (default 1)")
    p.add_argument("--amplitude", type=float, default=0.1, help="peak dF/F of one spike (default 0.1)")
    p.add_argument("--noise", type=float, default=0.05, help="dF/F noise s.d. per frame (default 0.05)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--quick", action="store_true", help="one seed, 3 repeats")
    p.add_argument("--data-dir", help="unused (the data are simulated); accepted for a uniform interface")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.repeats = args.seeds[:1], min(args.repeats, 3)
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for decay in args.decays:
            for seed in args.seeds:
                session = simulate(args, decay, seed)
                path = Path(scratch) / f"session_decay{decay:g}_seed{seed}.nwb"
                write_session(path, session, args.flash)
                shown_rates = session["rates"][session["shown"]]
                previous_rates = np.roll(shown_rates, 1, axis=0)
                for window in WINDOWS:
                    ds = load_nwb(path, window=window)
                    responses = ds.responses[1:]  # the first trial has no previous flash
                    rows.append({"decay": decay, "seed": seed, "window": label(window),
                                 "r_shown": median_correlation(responses, shown_rates[1:]),
                                 "r_previous": median_correlation(responses, previous_rates[1:])})
    summary = []
    print(f"{args.images} scenes x {args.repeats} repeats, {args.flash} s flashes back to back, "
          f"{args.neurons} neurons, {args.rate:g} Hz, rise {args.rise} s, latency {args.latency} s, seeds {args.seeds}")
    print(f"\n{'decay s':>7} {'window':>13} {'r(shown)':>9} {'s.d.':>6} {'r(previous)':>11} {'s.d.':>6}")
    for decay in args.decays:
        for window in WINDOWS:
            mine = [r for r in rows if r["decay"] == decay and r["window"] == label(window)]
            shown = np.array([r["r_shown"] for r in mine])
            previous = np.array([r["r_previous"] for r in mine])
            summary.append({"decay": decay, "window": label(window), "r_shown": float(shown.mean()),
                            "r_shown_sd": float(shown.std(ddof=1)) if len(shown) > 1 else None,
                            "r_previous": float(previous.mean()),
                            "r_previous_sd": float(previous.std(ddof=1)) if len(previous) > 1 else None})
            s = summary[-1]
            sd = f"{s['r_shown_sd']:.3f}" if s["r_shown_sd"] is not None else "-"
            psd = f"{s['r_previous_sd']:.3f}" if s["r_previous_sd"] is not None else "-"
            print(f"{decay:>7g} {label(window):>13} {s['r_shown']:>9.3f} {sd:>6} {s['r_previous']:>11.3f} {psd:>6}")
    elapsed = time.perf_counter() - started
    print(f"\n{elapsed:.0f} s")
    if args.json:
        figures = {"settings": {k: v for k, v in vars(args).items() if k not in ("json", "data_dir")},
                   "runs": rows, "summary": summary, "seconds": elapsed}
        write_text(args.json, json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
