"""Memory of a twin fit with the recording in memory against memory-mapped from disk.

For each neuron count, a synthetic recording (default Lurz size: 6,000 trials, 36x64 images;
5,300 neurons, then 4x as many) is written as a Sensorium FileTree folder. Each mode then
loads it and trains one epoch in a fresh process, which samples its own memory every 50 ms:

- ``in memory``: ``load_filetree(folder, memory_map=False)``, the whole recording in RAM;
- ``memory-mapped``: ``load_filetree(folder, memory_map=True)``, read from a flat copy made
  once (its time is printed), batches gathered from the mapping.

Printed per mode: the process's own memory at its peak (``RssAnon``: what the OS must find
room for), the recording's pages mapped in at the peak (``RssFile``: page cache the OS can
drop and read again), load and epoch times, and the recording's size. The claim to check:
memory-mapped, the process's own memory no longer holds the recording; what still grows with
the neuron count is the model's (readout weights, activations and their gradients).

    python benchmarks/twin_memory.py                    # Lurz size and 4x the neurons, ~15 min
    python benchmarks/twin_memory.py --quick            # 1,100 trials x 300 / 1,200 neurons, 18x32
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from neuroaikit.cli.options import positive_int  # noqa: E402
from neuroaikit.io import write_text  # noqa: E402

MODES = {"in memory": False, "memory-mapped": True}


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field} (this benchmark needs Linux)")


class MemorySampler(threading.Thread):
    """Samples this process's anonymous and file-backed resident memory; keeps the peak of the
    anonymous part and the file-backed part at that moment."""

    def __init__(self, interval: float = 0.05):
        super().__init__(daemon=True)
        self.interval, self.peak_anon_kb, self.file_at_peak_kb, self.peak_file_kb = interval, 0, 0, 0
        self.running = True

    def sample(self) -> None:
        anon, file = _status_kb("RssAnon"), _status_kb("RssFile")
        if anon > self.peak_anon_kb:
            self.peak_anon_kb, self.file_at_peak_kb = anon, file
        self.peak_file_kb = max(self.peak_file_kb, file)

    def run(self) -> None:
        while self.running:
            self.sample()
            time.sleep(self.interval)


def child(folder: str, memory_map: bool, cache: str, threads: int) -> dict:
    """Load and train one epoch in this process; its memory and times."""
    sampler = MemorySampler()
    sampler.start()
    from neuroaikit.execution import ExecutionConfig
    from neuroaikit.neural import TwinFitConfig, fit_twin, load_filetree

    baseline_anon_kb = _status_kb("RssAnon")  # python, torch and numpy loaded, no data yet
    t = time.perf_counter()
    ds = load_filetree(folder, memory_map=memory_map, cache=cache)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    cfg = TwinFitConfig(max_epochs=1, execution=ExecutionConfig(device="cpu", threads=threads))
    fit_twin(ds, cfg)
    fit_s = time.perf_counter() - t
    sampler.sample()
    sampler.running = False
    gb = 1024**2
    return {"load_s": load_s, "epoch_s": fit_s, "baseline_anon_gb": baseline_anon_kb / gb,
            "peak_anon_gb": sampler.peak_anon_kb / gb, "file_at_peak_gb": sampler.file_at_peak_kb / gb,
            "peak_file_gb": sampler.peak_file_kb / gb,
            "recording_gb": (ds.responses.nbytes + ds.stimuli.nbytes) / 1e9}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small recordings (a few minutes)")
    p.add_argument("--neurons", type=int, nargs="+", help="neuron counts (default 5300 21200; quick 300 1200)")
    p.add_argument("--threads", type=positive_int, default=2)
    p.add_argument("--workdir", help="where to write the recordings (default: a temporary folder, removed)")
    p.add_argument("--data-dir", help="unused (the data are simulated); accepted for a uniform interface")
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--child", nargs=3, metavar=("FOLDER", "MODE", "CACHE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        folder, mode, cache = args.child
        print(json.dumps(child(folder, MODES[mode], cache, args.threads)))
        return 0

    from neuroaikit.neural import SyntheticCortex, load_filetree

    if args.quick:
        size = dict(image_shape=(18, 32), n_train=800, n_validation=100, n_test_images=20, repeats=10)
        neurons = args.neurons or [300, 1200]
    else:
        size = dict(image_shape=(36, 64), n_train=4500, n_validation=500, n_test_images=100, repeats=10)
        neurons = args.neurons or [5300, 21200]
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="twin-memory-"))
    rows = []
    print(f"{'neurons':>7} {'mode':<14} {'recording GB':>12} {'own memory at peak GB':>21} "
          f"{'recording pages in RAM GB':>25} {'load s':>7} {'epoch s':>8}")
    try:
        for n_neurons in neurons:
            cortex = SyntheticCortex(n_neurons=n_neurons, image_shape=size["image_shape"], seed=0)
            ds = cortex.sample(size["n_train"], size["n_validation"], size["n_test_images"], size["repeats"])
            folder = cortex.write(ds, work / f"static-{n_neurons}")
            del ds
            cache = work / "cache"
            t = time.perf_counter()
            load_filetree(folder, memory_map=True, cache=cache)
            copy_s = time.perf_counter() - t
            for mode in MODES:
                out = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--child",
                                      str(folder), mode, str(cache)], capture_output=True, text=True, check=True)
                row = {"neurons": n_neurons, "mode": mode, **json.loads(out.stdout.strip().splitlines()[-1])}
                if MODES[mode]:
                    row["copy_s"] = copy_s
                rows.append(row)
                print(f"{n_neurons:>7} {mode:<14} {row['recording_gb']:>12.2f} {row['peak_anon_gb']:>21.2f} "
                      f"{row['file_at_peak_gb']:>25.2f} {row['load_s']:>7.1f} {row['epoch_s']:>8.1f}", flush=True)
            shutil.rmtree(folder, ignore_errors=True)
            shutil.rmtree(work / "cache", ignore_errors=True)
        for mode in MODES if len(neurons) > 1 else ():
            first, last = (next(r for r in rows if r["mode"] == mode and r["neurons"] == n)
                           for n in (neurons[0], neurons[-1]))
            growth = last["peak_anon_gb"] - first["peak_anon_gb"]
            print(f"{mode}: own memory grew {growth:+.2f} GB from {neurons[0]} to {neurons[-1]} neurons "
                  f"(the recording grew {last['recording_gb'] - first['recording_gb']:+.2f} GB)")
        copies = ", ".join(f"{r['neurons']} neurons {r['copy_s']:.0f} s" for r in rows if "copy_s" in r)
        print(f"one-off copy for memory mapping: {copies}")
        if args.json:
            write_text(args.json, json.dumps({"size": {k: list(v) if isinstance(v, tuple) else v
                                                       for k, v in size.items()},
                                              "threads": args.threads, "rows": rows}, indent=2))
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
