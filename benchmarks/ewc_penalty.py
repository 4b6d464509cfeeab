"""EWC's penalty after k tasks: the per-task sum against the one combined quadratic, per training step.

EWC (Kirkpatrick et al. 2017) adds ``sum_k F_k (theta - theta_k)^2`` over the earlier tasks; written
as a loop over tasks (as van de Ven et al.'s code and most libraries do) a step costs ``k`` penalty
passes over the weights. ``neuroaikit`` keeps the sum as the one quadratic it equals
(``CombinedPenalty``). This script times one Adam-free training step (forward, cross-entropy plus
penalty, backward) of Permuted MNIST's MLP (784-1000-1000-10, batch 128) with no penalty, with the
per-task loop and with the combined form, after each number of tasks, and checks that the two
penalties and their gradients agree.

    python benchmarks/ewc_penalty.py                 # 1, 3, 5, 9 tasks
    python benchmarks/ewc_penalty.py --quick --json out.json
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial

import torch
from torch import nn

from neuroaikit.cli.options import positive_int
from neuroaikit.continual.strategies.ewc import CombinedPenalty
from neuroaikit.continual.strategies.regularise import quadratic_penalty
from neuroaikit.io import write_text


def per_task_penalty(model: nn.Module, tasks: list) -> torch.Tensor:
    """``sum_k sum_i F_k,i (theta_i - theta_k,i)^2`` as a loop over the tasks."""
    return sum(quadratic_penalty(model, anchor, fisher) for fisher, anchor in tasks)


def milliseconds_per_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, penalty, repeats: int) -> float:
    def step():
        loss = nn.functional.cross_entropy(model(x), y) + penalty()
        model.zero_grad()
        loss.backward()

    for _ in range(3):  # warm-up
        step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats * 1000


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, nargs="+", default=[1, 3, 5, 9], help="earlier tasks in the penalty")
    parser.add_argument("--repeats", type=int, default=30, help="timed steps per row")
    parser.add_argument("--threads", type=positive_int, default=1)
    parser.add_argument("--quick", action="store_true", help="5 timed steps per row")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    if any(k < 1 for k in args.tasks) or args.repeats < 1 or args.threads < 1:
        parser.error("--tasks, --repeats and --threads must be integers >= 1")
    repeats = 5 if args.quick else args.repeats
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 1000), nn.ReLU(), nn.Linear(1000, 1000), nn.ReLU(), nn.Linear(1000, 10))
    params = dict(model.named_parameters())
    x, y = torch.rand(128, 784), torch.randint(0, 10, (128,))
    plain = milliseconds_per_step(model, x, y, lambda: 0.0, repeats)
    print(f"Permuted MNIST MLP, batch 128, {args.threads} thread(s), {repeats} steps per row; no penalty: {plain:.1f} ms")
    print(f"{'tasks':>5} {'per-task ms':>12} {'combined ms':>12} {'speed-up':>9} {'max rel. diff (value, grad)':>28}")
    rows = []
    for k in args.tasks:
        tasks = [({n: torch.rand_like(p) for n, p in params.items()},
                  {n: p.detach() + 0.01 * torch.randn_like(p) for n, p in params.items()}) for _ in range(k)]
        combined = CombinedPenalty()
        for fisher, anchor in tasks:
            combined.add(fisher, anchor)

        per_task = partial(per_task_penalty, model, tasks)
        ours, theirs = combined.value(model), per_task()
        value_diff = abs(float(ours.detach() - theirs.detach())) / abs(float(theirs.detach()))
        grads = [torch.autograd.grad(v, list(params.values())) for v in (ours, theirs)]
        grad_diff = max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(*grads))
        loop = milliseconds_per_step(model, x, y, per_task, repeats)
        fast = milliseconds_per_step(model, x, y, partial(combined.value, model), repeats)
        rows.append({"tasks": k, "per_task_ms": loop, "combined_ms": fast, "speedup": loop / fast,
                     "value_rel_diff": value_diff, "grad_rel_diff": grad_diff})
        print(f"{k:>5} {loop:>12.1f} {fast:>12.1f} {loop / fast:>8.2f}x {value_diff:>13.1e}, {grad_diff:.1e}")
    if args.json:
        write_text(args.json, json.dumps({"threads": args.threads, "repeats": repeats, "no_penalty_ms": plain,
                                          "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
