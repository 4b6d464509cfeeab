"""What keeping freed CPU memory for reuse (``neuroaikit.cpu_allocator``) changes: each workload
timed in fresh processes with ``NEUROAIKIT_CPU_ALLOCATOR=system`` (glibc's ``malloc`` as it is)
and ``=reuse`` (what ``Execution`` does on a CPU by default), the settings interleaved, the
fastest of ``--repeats`` kept, with the minor page faults (pages the kernel mapped in afresh)
per unit of work.

Workloads (each inside ``Execution``, as the toolkit's jobs run):

- ``certify_reference``: Cohen et al.'s per-image certification loop (``benchmarks/certify.py``'s
  ``reference_loop``: one image at a time, its draws in passes of 1,000 rows), 1 thread;
- ``certify_batched``: ``GaussianSmoothing.certify`` as ``neuroaikit certify`` runs it, 1 thread;
- ``twin_step``: training steps of the default digital twin on a Lurz-size synthetic recording
  (``benchmarks/twin_speed.py``'s recipe ``new``), 2 threads;
- ``mlp_step``: training steps of the Split MNIST network (784-400-400-10, batch 128), 1 thread.

Certification uses ``benchmarks/certify.py``'s model (trained once, the run folder reused),
sigma 0.25, n0 100, n 2000, alpha 0.001.

    python benchmarks/cpu_allocator.py --data-dir ../shared/data
    python benchmarks/cpu_allocator.py --data-dir ../shared/data --quick --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from neuroaikit import cpu_allocator, cpu_linear
from neuroaikit.errors import NeuroAIKitError
from neuroaikit.io import write_text

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SETTINGS = ("system", "reuse")
WORKLOADS = ("certify_reference", "certify_batched", "twin_step", "mlp_step")
SIGMA, N0, N, ALPHA = 0.25, 100, 2000, 0.001


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _certify(workload: str, data_dir: str, images: int):
    import certify as certify_bench

    from neuroaikit.certify import GaussianSmoothing
    from neuroaikit.data import load_dataset

    run = certify_bench.trained_model(str(Path(data_dir) / "mnist"), SIGMA, torch.device("cpu"))
    x = load_dataset("mnist", split="test", data_dir=str(Path(data_dir) / "mnist")).images[:images]
    model = run.load_model(map_location="cpu").eval()
    if workload == "certify_reference":
        return lambda: certify_bench.reference_loop(model, x, SIGMA, N0, N, ALPHA, 1000), images
    smoothed = GaussianSmoothing(model, sigma=SIGMA)
    return lambda: smoothed.certify(x, n0=N0, n=N, alpha=ALPHA, batch_size=images), images


def _mlp_steps(ex, steps: int):
    from torch import nn

    model = nn.Sequential(nn.Linear(784, 400), nn.ReLU(), nn.Linear(400, 400), nn.ReLU(), nn.Linear(400, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    x, y = torch.rand(128, 784), torch.randint(0, 10, (128,))

    def run_steps():
        for _ in range(steps):
            with ex.autocast():
                loss = nn.functional.cross_entropy(model(x), y)
            ex.optimizer_step(loss, optimizer)
    return run_steps, steps


def child(workload: str, data_dir: str, images: int, samples: int) -> dict:
    """One workload in this process, under the setting its environment names."""
    from neuroaikit.execution import Execution, ExecutionConfig

    if workload == "twin_step":
        import twin_speed

        from neuroaikit.neural import SyntheticCortex

        cortex = SyntheticCortex.realistic(n_neurons=5300, image_shape=(36, 64), seed=0)
        ds = cortex.sample(4500, 500, 100, 10)
        timed = twin_speed.time_steps(ds, "new", 2, "cpu", samples)
        with Execution(ExecutionConfig(device="cpu")) as ex:
            chosen = ex.describe()["cpu_allocator"]
        return {"seconds_per_unit": 1 / timed["samples_per_s"], "unit": "sample", "allocator": chosen,
                "faults_per_unit": timed["minor_faults"] / timed["timed_samples"]}
    with Execution(ExecutionConfig(device="cpu", threads=1)) as ex:
        if workload == "mlp_step":
            work, units = _mlp_steps(ex, max(1, samples // 128) * 5)
            unit = "step"
        else:
            work, units = _certify(workload, data_dir, images)
            unit = "image"
        work()  # warm: the first pass maps its pages in under either setting
        before, started = _faults(), time.perf_counter()
        work()
        seconds = time.perf_counter() - started
        return {"seconds_per_unit": seconds / units, "unit": unit, "allocator": ex.describe()["cpu_allocator"],
                "faults_per_unit": (_faults() - before) / units}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="folder holding mnist/ (the shared data)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help=f"comma-separated, from {', '.join(WORKLOADS)}")
    parser.add_argument("--images", type=int, default=16, help="images certified per timing (default 16)")
    parser.add_argument("--samples", type=int, default=640, help="twin training samples per timing (default 640)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per setting, interleaved, fastest kept (default 3)")
    parser.add_argument("--quick", action="store_true", help="4 images, 320 samples, 2 repeats")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    parser.add_argument("--child", nargs=2, metavar=("WORKLOAD", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.images, args.samples, args.repeats = 4, 320, 2
    if args.child:
        with open(args.child[1], "w") as fh:
            json.dump(child(args.child[0], args.data_dir, args.images, args.samples), fh)
        return
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    if unknown := sorted(set(workloads) - set(WORKLOADS)):
        parser.error(f"unknown workload(s) {unknown}; choose from {list(WORKLOADS)}")
    if args.repeats < 1 or args.images < 1 or args.samples < 1:
        parser.error(f"--repeats, --images and --samples must be >= 1, got {args.repeats}, {args.images}, {args.samples}")
    if not (Path(args.data_dir) / "mnist").is_dir():
        parser.error(f"no mnist folder in --data-dir {args.data_dir}")
    try:
        cpu_linear.setting()  # the children inherit it; the allocator setting is the benchmark's to vary
    except NeuroAIKitError as error:
        parser.error(str(error))
    if any(w.startswith("certify") for w in workloads):  # the model is trained once, before any timing
        import certify as certify_bench

        try:
            certify_bench.trained_model(str(Path(args.data_dir) / "mnist"), SIGMA, torch.device("cpu"))
        except NeuroAIKitError as error:  # e.g. a cached model trained with other settings
            parser.error(str(error))

    results: dict = {w: {s: [] for s in SETTINGS} for w in workloads}
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "child.json"
        for _ in range(args.repeats):  # interleaved, so a slow spell of a shared machine falls on both settings
            for workload in workloads:
                for setting in SETTINGS:
                    command = [sys.executable, __file__, "--data-dir", args.data_dir, "--images", str(args.images),
                               "--samples", str(args.samples), "--child", workload, str(out)]
                    subprocess.run(command, check=True, env={**os.environ, cpu_allocator.ENV: setting})
                    results[workload][setting].append(json.loads(out.read_text()))

    figures: dict = {"repeats": args.repeats, "images": args.images, "samples": args.samples,
                     "c_library": " ".join(platform.libc_ver()), "torch": torch.__version__}
    for workload, by_setting in results.items():
        row = {}
        for setting, runs in by_setting.items():
            fastest = min(runs, key=lambda r: r["seconds_per_unit"])
            row[setting] = {"per_s": round(1 / fastest["seconds_per_unit"], 3), "unit": fastest["unit"],
                            "faults_per_unit": round(fastest["faults_per_unit"], 1), "recorded": fastest["allocator"]}
        row["speedup"] = round(row["reuse"]["per_s"] / row["system"]["per_s"], 2)
        figures[workload] = row
        unit = row["system"]["unit"]
        print(f"{workload:>17}: system {row['system']['per_s']:9.2f} {unit}s/s ({row['system']['faults_per_unit']:9.1f} "
              f"page faults per {unit}), reuse {row['reuse']['per_s']:9.2f} ({row['reuse']['faults_per_unit']:9.1f}): "
              f"{row['speedup']:.2f}x", flush=True)
    if {"certify_reference", "certify_batched"} <= set(figures):
        for setting in SETTINGS:
            ratio = figures["certify_batched"][setting]["per_s"] / figures["certify_reference"][setting]["per_s"]
            figures[f"certify_batched_vs_reference_{setting}"] = round(ratio, 2)
        print("batched certification against the per-image loop under the same allocator: "
              f"system {figures['certify_batched_vs_reference_system']}x, reuse {figures['certify_batched_vs_reference_reuse']}x")
    if args.json:
        write_text(args.json, json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
