"""Certification speed: images certified per second by ``GaussianSmoothing.certify`` (draws of
many images batched together), against two per-image loops, same model, same n0 / n / alpha.

- ``reference_loop``: the loop of Cohen et al.'s reference code (``core.py``, ``Smooth.certify``):
  one image at a time, its draws in passes of ``--reference-batch`` rows (their ``--batch``,
  default 1000 in ``certify.py``), the model as given (NCHW weights) under ``torch.no_grad``.
  This is the per-image loop a user would otherwise run: the comparison the issue's goal names.
- ``our_per_image``: our certifier with ``per_image=True`` (the same code as ``batched``, one
  image per call): isolates what batching draws *across images* gives, apart from the layout
  and pass-size choices below.
- ``batched``: our certifier as ``neuroaikit certify`` runs it (``batch_size`` images per call,
  passes of at most ``max_rows`` rows (256 on a CPU), channels-last weights, ``torch.inference_mode``,
  and on a CPU 2x2 max poolings as two pairwise maxima, :mod:`neuroaikit.cpu_pooling`; the
  reference loop runs PyTorch's pooling kernel, as Cohen et al.'s code would).
- ``batched_nchw_4096``: the same with the previous defaults (NCHW weights, 4096-row passes), to
  show where the gain over the reference comes from.
- ``batched_unfused``: ``batched`` with each convolution and its ReLU as two calls, as before
  :mod:`neuroaikit.cpu_fusion` (on a GPU the two ways run the same code).
- ``batched_bf16``: ``batched`` with ``precision="bf16-mixed"`` (``neuroaikit certify --precision
  bf16-mixed``): the forward passes under bfloat16 autocast, so the network certified is the
  rounded one; ``reference_loop_bf16`` is the reference loop under the same autocast, for the
  like-for-like ratio; ``batched_bf16_unfused`` is it without the fused convolution + ReLU.

The model is a small CNN trained here for one epoch on 10,000 MNIST images with Gaussian
augmentation at the certified sigma, once: it is kept in ``runs/bench/certify/mnist-smooth`` and
reused by later runs. A model there trained with other settings is replaced only with
``--overwrite`` (without it the benchmark stops before it starts). All ways give the same statistics
(the radii agree up to Monte-Carlo noise; the benchmark prints the mean absolute difference).

    python benchmarks/certify.py --data-dir ../shared/data/mnist                 # 64 images, n = 2000
    python benchmarks/certify.py --data-dir ../shared/data/mnist --quick         # 16 images, n = 500
    python benchmarks/certify.py --data-dir ../shared/data/mnist --json out.json --device cuda
    python benchmarks/certify.py --data-dir ../shared/data/mnist --device cuda --images 500 --n 10000  # Cohen's n

To show how far each way is from what the hardware allows, the benchmark counts the model's
floating-point operations per draw (``torch.utils.flop_counter``), prints each way's achieved
GFLOP/s, and measures two float32 ceilings on the same device and thread count: a large matrix
product and a large channels-last convolution (``device_gflops``). It also times the model's own
weight layers alone, in float32 and in bfloat16 (``weight_layers_bound``): the rate no way through
these kernels in that precision can pass. 5x the reference loop's rate is what the goal asks; the
ceilings say whether the device allows it.

Every way is timed ``--repeats`` times (default 3), the repeats interleaved, and its fastest is
kept: on a shared machine other work only ever slows a run down, and a single timing of the
reference loop varied by a third between runs on the 2-core machine.

Everything runs inside ``Execution`` on the chosen device, as a ``neuroaikit certify`` job does: on a
CPU its freed memory is kept for reuse (``neuroaikit.cpu_allocator``), for the reference loop too,
so both are measured under the same allocator; ``NEUROAIKIT_CPU_ALLOCATOR=system`` measures them
under glibc's defaults instead (the page records which: ``cpu_allocator``).
``benchmarks/cpu_allocator.py`` compares the two.

On a GPU every way runs once untimed first, so kernel selection is not charged to the first.

``--compile`` adds ``batched_compiled``: ``batched`` with ``compile=True`` (``neuroaikit certify
--compile``: the model through ``torch.compile``, compiled in the untimed first run; on a CPU it
needs a C++ compiler), and ``batched_bf16_compiled``, the same under ``--precision bf16-mixed``
(compiled separately: autocast changes the graph). ``--profile`` runs
``batched`` once more under ``torch.profiler`` and records where its time goes: the operators
with the most device time (GPU) or CPU time, and the device's busy time as a share of the
unprofiled ``batched`` wall time (near 1: the GPU's kernels are the limit; well below 1: the host
is).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from neuroaikit.cli.options import positive_int
from neuroaikit.certify import GaussianSmoothing, smoothing_radius
from neuroaikit.certify.bounds import clopper_pearson_lower
from neuroaikit.certify.certifier import check_sample_sizes
from neuroaikit.data import load_dataset
from neuroaikit.errors import NeuroAIKitError
from neuroaikit.execution import Execution, ExecutionConfig, check_environment, resolve_device
from neuroaikit.progress import silent
from neuroaikit.runs import Run, check_replaceable
from neuroaikit.training import TrainConfig, train

RUN = "runs/bench/certify/mnist-smooth"
#: profiler entries that are not operators (CUPTI's, on a GPU)
PROFILER_MARKERS = ("Command Buffer Full",)


def reference_loop(model, x, sigma: float, n0: int, n: int, alpha: float, batch: int) -> torch.Tensor:
    """Radii from the per-image loop of Cohen et al.'s ``Smooth.certify`` (abstain: radius 0)."""

    def sample_counts(image, num):
        counts = torch.zeros(10, dtype=torch.long)
        with torch.no_grad():
            remaining = num
            while remaining > 0:
                this_batch = min(batch, remaining)
                remaining -= this_batch
                rows = image.repeat((this_batch, 1, 1, 1))
                predictions = model(rows + torch.randn_like(rows) * sigma).argmax(1)
                counts += torch.bincount(predictions.cpu(), minlength=10)
        return counts

    radii = []
    for image in x:
        top = int(sample_counts(image, n0).argmax())
        p_lower = clopper_pearson_lower(int(sample_counts(image, n)[top]), n, alpha)
        radii.append(smoothing_radius(p_lower, sigma) if p_lower > 0.5 else 0.0)
    return torch.tensor(radii, dtype=torch.float64)


def reusable_run(sigma: float) -> Run | None:
    """The model trained at ``RUN`` by an earlier run with these settings, or None."""
    try:
        run = Run.open(RUN)
        same = run.config.get("objective_params") == {"sigma": sigma} and run.config.get("train_subset") == 10000
    except NeuroAIKitError:  # no run there, or one that cannot be read
        return None
    return run if same else None


def trained_model(data_dir: str, sigma: float, device, overwrite: bool = False):
    """The model at ``RUN``, trained first if no earlier run left one with these settings; a
    finished run there with other settings is replaced only with ``overwrite``."""
    run = reusable_run(sigma)
    if run is not None:
        return run
    config = TrainConfig(dataset="mnist", data_dir=data_dir, model="cnn", model_kwargs={"channels": [16, 32], "hidden": 256},
                         epochs=1, train_subset=10000, test_subset=500, objective="gaussian_augmentation",
                         objective_params={"sigma": sigma})
    return train(config, RUN, overwrite=overwrite, progress=silent())


def flop_per_draw(model, image: torch.Tensor) -> int:
    """Floating-point operations (a multiply-add counts 2) of one forward pass of one image."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(image[None])
    return int(counter.get_total_flops())


def device_gflops(device, repeats: int = 10) -> dict:
    """The device's measured float32 rates (GFLOP/s) at the current thread count, as practical
    ceilings for a network whose work is convolutions and linear layers: a 1024 x 1024 matrix
    product and a large channels-last convolution (64 images, 128 -> 128 channels, 3 x 3, 16 x 16),
    each in PyTorch's default settings (on a GPU, TF32 off for products and on for convolutions)."""

    def rate(step, flop: int) -> float:
        with torch.inference_mode():
            step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
            for _ in range(repeats):
                step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            return flop * repeats / (time.perf_counter() - started) / 1e9

    a, b = torch.rand(1024, 1024, device=device), torch.rand(1024, 1024, device=device)
    conv = torch.nn.Conv2d(128, 128, 3, padding=1).to(device, memory_format=torch.channels_last)
    images = torch.rand(64, 128, 16, 16, device=device).contiguous(memory_format=torch.channels_last)
    return {"matmul_gflops": round(rate(lambda: a @ b, 2 * 1024**3), 1),
            "conv_gflops": round(rate(lambda: conv(images), 2 * 64 * 128 * 16 * 16 * 128 * 9), 1)}


def weight_layers_bound(model, image: torch.Tensor, device, pass_rows=(64, 256, 1024), repeats: int = 10,
                        dtype: torch.dtype = torch.float32) -> float:
    """Seconds per draw that the model's weight layers (convolutions, linear layers) take on
    their own in ``dtype``: each layer timed alone on the input it gets in a pass of noisy draws,
    with the certifier's channels-last weights, at its fastest of ``pass_rows`` rows per pass.
    That is the time a draw would take if everything else (bias and activation passes, pooling,
    noise, counting) were free, so no way of running these layers in ``dtype`` through PyTorch's
    kernels certifies faster than ``1 / (bound * draws per image)`` images/s. In bfloat16 the
    layers and their inputs are cast outright, which is cheaper than autocast's per-call casts,
    so the bound holds for ``bf16-mixed`` too."""
    model = model.to(memory_format=torch.channels_last)
    inputs: dict = {}
    layers = [m for m in model.modules() if not list(m.children()) and getattr(m, "weight", None) is not None
              and m.weight.dim() >= 2]

    def capture(layer, args) -> None:  # returns None: a pre-hook's return value would replace the input
        inputs.setdefault(layer, args[0].to(dtype, copy=True))

    hooks = [m.register_forward_pre_hook(capture) for m in layers]
    most = max(pass_rows)
    with torch.inference_mode():
        model(image[None].repeat(most, 1, 1, 1) + 0.25 * torch.randn(most, *image.shape, device=device))
    for hook in hooks:
        hook.remove()
    for layer in layers:
        layer.to(dtype)
    with torch.inference_mode():
        total = 0.0
        for layer, rows_in in inputs.items():
            per_row = []
            for rows in pass_rows:
                part = rows_in[:rows]
                layer(part)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                started = time.perf_counter()
                for _ in range(repeats):
                    layer(part)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                per_row.append((time.perf_counter() - started) / repeats / rows)
            total += min(per_row)
    return total


def profile(way, device, wall_s: float, top: int = 10) -> dict:
    """Where one run of ``way`` spends its time: operators by self device time on a GPU (the
    kernels each launched), by self CPU time on a CPU; ``busy_fraction`` is the total over the
    unprofiled wall time ``wall_s`` of the same work."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    on_gpu = device.type == "cuda"
    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if on_gpu else [])]
    with torch_profile(activities=activities) as prof:
        way()
        if on_gpu:
            torch.cuda.synchronize()
    # host-side operator entries only: their self device time is the kernels they launched, so
    # the sum counts every kernel once; CUPTI's "Command Buffer Full" entry is not a kernel but
    # the host blocked on a full launch queue (the GPU behind), so it is reported apart
    entries = [e for e in prof.key_averages() if e.device_type == torch.autograd.DeviceType.CPU]
    attr = "self_device_time_total" if on_gpu else "self_cpu_time_total"
    ops = [e for e in entries if e.key not in PROFILER_MARKERS]
    waits_us = sum(getattr(e, attr) for e in entries if e.key in PROFILER_MARKERS)
    total_us = sum(getattr(e, attr) for e in ops) or 1.0
    ranked = sorted(ops, key=lambda e: getattr(e, attr), reverse=True)[:top]
    return {"measure": "self device time" if on_gpu else "self CPU time", "busy_s": round(total_us / 1e6, 3),
            "unprofiled_wall_s": round(wall_s, 3), "busy_fraction": round(total_us / 1e6 / wall_s, 3),
            "launch_queue_full_s": round(waits_us / 1e6, 3),
            "top_ops": [{"op": e.key, "calls": e.count, "self_s": round(getattr(e, attr) / 1e6, 4),
                         "share": round(getattr(e, attr) / total_us, 3)} for e in ranked]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="folder with the MNIST files")
    parser.add_argument("--quick", action="store_true", help="16 images, n = 500")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--images", type=int, help="test images certified (default 64; quick 16)")
    parser.add_argument("--n", type=int, help="estimation draws per image (default 2000; quick 500)")
    parser.add_argument("--reference-batch", type=int, default=1000, help="rows per pass of the reference loop (default 1000)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="time every way this many times, interleaved, and keep its fastest (default 3)")
    parser.add_argument("--compile", action="store_true", help="also time batched draws through torch.compile")
    parser.add_argument("--profile", action="store_true", help="record where the batched draws' time goes")
    parser.add_argument("--overwrite", action="store_true",
                        help=f"retrain the model at {RUN} when it was trained with other settings (one trained "
                             "with these settings is always reused)")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    args = parser.parse_args(argv)
    n_images, n = (16, 500) if args.quick else (64, 2000)
    # an option given (0 included) is used as given and validated, before anything is trained
    n_images = args.images if args.images is not None else n_images
    n = args.n if args.n is not None else n
    n0, alpha, sigma = 100 if not args.quick else 50, 0.001, 0.25
    try:
        check_sample_sizes(n0, n)
        device = resolve_device(args.device)
        check_environment()
        execution_config = ExecutionConfig(device=args.device, threads=args.threads)
        test = load_dataset("mnist", split="test", data_dir=args.data_dir)
        if reusable_run(sigma) is None:  # the model will be trained: RUN must be free to take it
            check_replaceable(RUN, args.overwrite)
    except NeuroAIKitError as error:
        parser.error(str(error))
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    if not 1 <= n_images <= len(test):
        parser.error(f"--images must be between 1 and the {len(test)} test images, got {n_images}")
    with Execution(execution_config) as execution:
        measure(args, execution, device, test, n_images, n0, n, alpha, sigma)


def measure(args, execution, device, test, n_images: int, n0: int, n: int, alpha: float, sigma: float) -> None:
    """Time every way and print (and write) the figures."""
    run = trained_model(args.data_dir, sigma, device, args.overwrite)
    x = test.images[:n_images].to(device)

    def ours(per_image: bool, channels_last: bool = True, max_rows: int | None = None, precision: str = "32",
             compiled: bool = False, fused: bool = True):
        # the compiled way certifies one loaded model each time, so torch.compile's cache (keyed on
        # the module) compiles it once, in the untimed first run, as a `certify --compile` job does
        model = compiled_models.setdefault(precision, run.load_model(map_location=device).eval()) if compiled \
            else run.load_model(map_location=device).eval()
        smoothed = GaussianSmoothing(model, sigma=sigma, max_rows=max_rows, channels_last=channels_last,
                                     precision=precision, compile=compiled)
        if not fused:
            smoothed.forward_model = model
        return smoothed.certify(x, n0=n0, n=n, alpha=alpha, batch_size=n_images, per_image=per_image)[1]

    ways = {
        "reference_loop": lambda: reference_loop(run.load_model(map_location=device).eval(), x, sigma, n0, n, alpha,
                                                 args.reference_batch),
        "our_per_image": lambda: ours(per_image=True),
        "batched": lambda: ours(per_image=False),
        "batched_nchw_4096": lambda: ours(per_image=False, channels_last=False, max_rows=4096),
        "batched_unfused": lambda: ours(per_image=False, fused=False),
        "reference_loop_bf16": lambda: reference_bf16(),
        "batched_bf16": lambda: ours(per_image=False, precision="bf16-mixed"),
        "batched_bf16_unfused": lambda: ours(per_image=False, precision="bf16-mixed", fused=False),
    }
    compiled_models: dict = {}
    if args.compile:
        ways["batched_compiled"] = lambda: ours(per_image=False, compiled=True)
        ways["batched_bf16_compiled"] = lambda: ours(per_image=False, precision="bf16-mixed", compiled=True)

    def reference_bf16():
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return ways["reference_loop"]()

    figures = {"device": str(device), "images": n_images, "n0": n0, "n": n, "alpha": alpha, "sigma": sigma,
               "threads": args.threads, "reference_batch": args.reference_batch,
               "cpu_allocator": execution.describe().get("cpu_allocator", "system")}
    radii = {}
    if device.type == "cuda":  # kernels are chosen and compiled on first use: keep that out of the first way's time
        for way in ways.values():
            way()
        torch.cuda.synchronize()
    elif args.compile:  # torch.compile compiles on first use on any device
        ways["batched_compiled"]()
        ways["batched_bf16_compiled"]()
    times: dict = {name: [] for name in ways}
    for _ in range(args.repeats):  # interleaved, so a slow spell of a shared machine falls on every way
        for name, way in ways.items():
            torch.manual_seed(0)
            started = time.perf_counter()
            radii[name] = way()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - started)
    figures["repeats"] = args.repeats
    for name, seconds_each in times.items():
        seconds = min(seconds_each)
        figures[f"{name}_images_per_s"] = round(n_images / seconds, 3)
        print(f"{name:>18}: {n_images / seconds:8.2f} images/s ({seconds:.1f} s for {n_images} images; "
              f"slowest of {args.repeats} {max(seconds_each):.1f} s)", flush=True)

    draw_flop = flop_per_draw(run.load_model(map_location=device).eval(), x[0])
    figures["model_mflop_per_draw"] = round(draw_flop / 1e6, 3)
    figures.update(device_gflops(device))
    bound_s = weight_layers_bound(run.load_model(map_location=device).eval(), x[0], device)
    figures["weight_layers_bound_images_per_s"] = round(1 / (bound_s * (n0 + n)), 3)
    figures["weight_layers_bound_vs_reference_loop"] = round(
        figures["weight_layers_bound_images_per_s"] / figures["reference_loop_images_per_s"], 2)
    bound_bf16_s = weight_layers_bound(run.load_model(map_location=device).eval(), x[0], device, dtype=torch.bfloat16)
    figures["weight_layers_bound_bf16_images_per_s"] = round(1 / (bound_bf16_s * (n0 + n)), 3)
    figures["weight_layers_bound_bf16_vs_reference_loop"] = round(
        figures["weight_layers_bound_bf16_images_per_s"] / figures["reference_loop_images_per_s"], 2)
    for name in ways:
        figures[f"{name}_gflops"] = round(figures[f"{name}_images_per_s"] * (n0 + n) * draw_flop / 1e9, 1)
    print(f"{draw_flop / 1e6:.2f} MFLOP per draw; achieved GFLOP/s: " + ", ".join(
        f"{name} {figures[f'{name}_gflops']}" for name in ways) + f"; this device reaches {figures['matmul_gflops']} "
        f"in a 1024 x 1024 matrix product and {figures['conv_gflops']} in a large convolution (float32)")
    print(f"the weight layers alone (float32, each at its best pass size): "
          f"{figures['weight_layers_bound_images_per_s']} images/s, {figures['weight_layers_bound_vs_reference_loop']}x "
          "the reference loop: no float32 way through these kernels certifies faster")
    print(f"the weight layers alone in bfloat16: {figures['weight_layers_bound_bf16_images_per_s']} images/s, "
          f"{figures['weight_layers_bound_bf16_vs_reference_loop']}x the float32 reference loop: no bf16 way "
          "through these kernels certifies faster")

    def speedup(way: str, against: str) -> float:
        return round(figures[f"{way}_images_per_s"] / figures[f"{against}_images_per_s"], 2)

    def radius_difference(way: str, against: str) -> float:
        return round(float((radii[way] - radii[against]).abs().mean()), 4)

    figures["speedup_vs_reference_loop"] = speedup("batched", "reference_loop")
    figures["speedup_vs_our_per_image"] = speedup("batched", "our_per_image")
    figures["mean_abs_radius_difference_vs_reference"] = radius_difference("batched", "reference_loop")
    print(f"batched draws: {figures['speedup_vs_reference_loop']}x the reference per-image loop, "
          f"{figures['speedup_vs_our_per_image']}x our own per-image path (goal: 5x); mean |radius difference| "
          f"vs the reference {figures['mean_abs_radius_difference_vs_reference']} (Monte-Carlo noise)")
    figures["speedup_bf16_vs_reference_loop"] = speedup("batched_bf16", "reference_loop")
    figures["speedup_bf16_vs_reference_loop_bf16"] = speedup("batched_bf16", "reference_loop_bf16")
    figures["mean_abs_radius_difference_bf16_vs_batched"] = radius_difference("batched_bf16", "batched")
    print(f"bf16 batched draws: {figures['speedup_bf16_vs_reference_loop']}x the float32 reference loop, "
          f"{figures['speedup_bf16_vs_reference_loop_bf16']}x the reference loop under the same autocast; "
          f"mean |radius difference| vs float32 batched {figures['mean_abs_radius_difference_bf16_vs_batched']}")
    figures["speedup_fused_vs_unfused"] = speedup("batched", "batched_unfused")
    figures["speedup_bf16_fused_vs_unfused"] = speedup("batched_bf16", "batched_bf16_unfused")
    figures["mean_abs_radius_difference_fused_vs_unfused"] = radius_difference("batched", "batched_unfused")
    print(f"convolution + ReLU in one call: {figures['speedup_fused_vs_unfused']}x float32, "
          f"{figures['speedup_bf16_fused_vs_unfused']}x bf16, against the two calls; mean |radius difference| "
          f"{figures['mean_abs_radius_difference_fused_vs_unfused']} (float32, same draws)")
    if args.compile:
        figures["speedup_compiled_vs_reference_loop"] = speedup("batched_compiled", "reference_loop")
        figures["mean_abs_radius_difference_compiled_vs_batched"] = radius_difference("batched_compiled", "batched")
        print(f"compiled batched draws: {figures['speedup_compiled_vs_reference_loop']}x the reference loop")
        figures["speedup_bf16_compiled_vs_reference_loop"] = speedup("batched_bf16_compiled", "reference_loop")
        figures["mean_abs_radius_difference_bf16_compiled_vs_batched"] = radius_difference("batched_bf16_compiled",
                                                                                           "batched")
        print(f"compiled bf16 batched draws: {figures['speedup_bf16_compiled_vs_reference_loop']}x the float32 "
              "reference loop")
    if args.profile:
        figures["profile_batched"] = profile(ways["batched"], device, n_images / figures["batched_images_per_s"])
        print(f"batched draws profiled: the device busy {figures['profile_batched']['busy_fraction']:.0%} of the "
              f"unprofiled wall time; top operators: " + ", ".join(
                  f"{row['op']} {row['share']:.0%}" for row in figures["profile_batched"]["top_ops"][:5]))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=2)


if __name__ == "__main__":
    main()
