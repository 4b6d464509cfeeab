"""Float32 linear layers on a CPU: PyTorch's BLAS kernel (MKL) against oneDNN's, as
``neuroaikit.cpu_linear`` chooses between them.

Prints, at ``--threads`` threads:

- the rule's choice on this machine (``neuroaikit.cpu_linear.chosen_kernel``: oneDNN on AMD
  x86 CPUs with AVX-512 and MKL) and a 256 x 1024 -> 512 layer's training step both ways;
- one training step (forward and backward) of each layer shape of the toolkit's small
  networks (the continual-learning MLP and its generative replay VAE, batch 128) and of shapes
  around ``MIN_FEATURES`` (below it, layers stay with PyTorch's kernel), both ways, each the
  fastest of ``--repeats`` interleaved timings;
- a whole run: Split MNIST class-incremental fine-tuning and generative replay at
  ``--iters`` iterations per task (``NEUROAIKIT_CPU_LINEAR=blas`` against ``=onednn``), timed
  the same way, with the average accuracy each reaches (the same up to rounding: training
  amplifies the last-bit differences between the kernels, as between two machines).

    python benchmarks/cpu_linear.py --data-dir ../shared/data
    python benchmarks/cpu_linear.py --data-dir ../shared/data --quick --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
import torch.nn.functional as F

from neuroaikit.cli.options import positive_int
from neuroaikit import cpu_linear
from neuroaikit.continual.config import ContinualConfig
from neuroaikit.continual.learner import learn, scenario_from
from neuroaikit.errors import NeuroAIKitError

#: (batch, in, out) of the protocol's MLP (784-400-400-10) and its replay VAE (400 units, 100 latents)
SHAPES = [(128, 784, 400), (128, 400, 400), (128, 400, 10), (128, 400, 200), (128, 100, 400), (128, 400, 784),
          # around the size below which the toolkit keeps PyTorch's kernel (cpu_linear.MIN_FEATURES)
          (128, 400, 32), (128, 400, 64), (128, 32, 400), (128, 64, 400)]


def step_seconds(linear, batch: int, n_in: int, n_out: int, steps: int = 20) -> float:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, n_in, generator=generator, requires_grad=True)
    weight = torch.randn(n_out, n_in, generator=generator, requires_grad=True)
    bias = torch.randn(n_out, generator=generator, requires_grad=True)
    grad = torch.randn(batch, n_out, generator=generator)
    linear(x, weight, bias).backward(grad)
    started = time.perf_counter()
    for _ in range(steps):
        linear(x, weight, bias).backward(grad)
    return (time.perf_counter() - started) / steps


def run_seconds(strategy: str, kernel: str, iters: int, data_dir: str, threads: int) -> tuple[float, float]:
    os.environ[cpu_linear.ENV] = kernel
    config = ContinualConfig.from_dict({"benchmark": "split-mnist", "data_dir": data_dir, "scenario": "class",
                                        "strategy": strategy, "seed": 0, "iters": iters,
                                        "execution": {"device": "cpu", "threads": threads}})
    scenario = scenario_from(config)
    started = time.perf_counter()
    result = learn(config, scenario)
    assert result.execution["cpu_linear"] == kernel
    return time.perf_counter() - started, result.average_accuracy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="folder holding mnist/ (the shared data)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--iters", type=int, default=300, help="iterations per task of the whole runs (default 300)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timings, fastest kept (default 3)")
    parser.add_argument("--quick", action="store_true", help="100 iterations per task, 2 repeats")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    args = parser.parse_args()
    if args.quick:
        args.iters, args.repeats = 100, 2
    for name in ("threads", "iters", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if not cpu_linear.onednn_available():
        parser.error("this PyTorch build has no oneDNN linear kernel: nothing to compare")
    try:
        scenario_from(ContinualConfig.from_dict({"benchmark": "split-mnist", "data_dir": args.data_dir,
                                                 "scenario": "class", "strategy": "finetune"}))
    except NeuroAIKitError as error:
        parser.error(str(error))
    torch.set_num_threads(args.threads)
    blas_s, onednn_s = (min(step_seconds(linear, 256, 1024, 512) for _ in range(args.repeats))
                        for linear in (F.linear, cpu_linear.OneDNNLinear.apply))
    figures: dict = {"threads": args.threads, "iters": args.iters, "repeats": args.repeats,
                     "choice_measurement": {"blas_s": blas_s, "onednn_s": onednn_s}}
    os.environ[cpu_linear.ENV] = "auto"
    figures["auto_choice"] = cpu_linear.chosen_kernel()
    m = figures["choice_measurement"]
    figures["cpu_vendor"] = cpu_linear.cpu_vendor()
    figures["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    print(f"{figures['cpu_vendor'] or 'unknown vendor'}, {figures['cpu_capability']}: auto chooses "
          f"{figures['auto_choice']}; a 256 x 1024 -> 512 layer's training step: BLAS {m['blas_s'] * 1e3:.2f} ms, "
          f"oneDNN {m['onednn_s'] * 1e3:.2f} ms ({m['blas_s'] / m['onednn_s']:.2f}x)")

    figures["layers"] = []
    for batch, n_in, n_out in SHAPES:
        times: dict = {"blas": [], "onednn": []}
        for _ in range(args.repeats):
            times["blas"].append(step_seconds(F.linear, batch, n_in, n_out))
            times["onednn"].append(step_seconds(cpu_linear.OneDNNLinear.apply, batch, n_in, n_out))
        blas, onednn = min(times["blas"]), min(times["onednn"])
        routed = min(n_in, n_out) >= cpu_linear.MIN_FEATURES
        figures["layers"].append({"batch": batch, "in": n_in, "out": n_out, "blas_ms": round(blas * 1e3, 4),
                                  "onednn_ms": round(onednn * 1e3, 4), "speedup": round(blas / onednn, 2),
                                  "routed_to_onednn": routed})
        print(f"layer {batch} x {n_in} -> {n_out}: BLAS {blas * 1e3:.3f} ms, oneDNN {onednn * 1e3:.3f} ms per "
              f"training step ({blas / onednn:.2f}x); {'routed to oneDNN' if routed else 'left to PyTorch'} "
              f"where the rule applies", flush=True)

    figures["runs"] = []
    for strategy in ("finetune", "generative-replay"):
        times, accuracy = {"blas": [], "onednn": []}, {}
        for _ in range(args.repeats):
            for kernel in ("blas", "onednn"):
                seconds, accuracy[kernel] = run_seconds(strategy, kernel, args.iters, args.data_dir, args.threads)
                times[kernel].append(seconds)
        blas, onednn = min(times["blas"]), min(times["onednn"])
        figures["runs"].append({"strategy": strategy, "scenario": "class", "blas_s": round(blas, 2),
                                "onednn_s": round(onednn, 2), "speedup": round(blas / onednn, 2),
                                "accuracy_blas": round(accuracy["blas"], 4),
                                "accuracy_onednn": round(accuracy["onednn"], 4)})
        print(f"Split MNIST class-IL {strategy}, {args.iters} iterations per task: BLAS {blas:.1f} s, oneDNN "
              f"{onednn:.1f} s ({blas / onednn:.2f}x); average accuracy {accuracy['blas']:.4f} / "
              f"{accuracy['onednn']:.4f}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
