"""What LwF's loss lets a network learn when each task brings new inputs (Permuted MNIST, domain-IL).

LwF mixes the current task's cross-entropy (weight ``w = 1/t``) with distillation against the
network as it was after the previous task (weight ``1 - w``, temperature ``T``, scaled by T^2).
In domain-IL one output layer answers every task, and on a new permutation the old network's
answers are unrelated to the labels. Before each task this script takes the network as LwF left
it (the "old network" of that task) and solves the loss exactly for each of the new task's test
images: the logits ``z`` minimising ``w CE(z, y) + (1 - w) T^2 KL(softmax(z_old / T) || softmax(z / T))``.
A network of unlimited capacity trained to convergence answers with ``argmax z``, so the fraction
of images where that is the label bounds what this loss lets any implementation reach on the new
task. The bound is printed for the old network as trained and with its logits scaled down (a less
confident old network), beside the accuracy LwF then reaches on the task right after training it.

    python benchmarks/lwf_objective.py --data-dir ../shared/data                # 10 tasks, the protocol
    python benchmarks/lwf_objective.py --data-dir ../shared/data --tasks 3 --iters 500
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from neuroaikit.continual import ContinualConfig, make_learner, scenario_from  # noqa: E402
from neuroaikit.io import write_text  # noqa: E402


def image_losses(z: torch.Tensor, old_logits: torch.Tensor, labels: torch.Tensor, weight: float,
                 temperature: float) -> torch.Tensor:
    """LwF's loss for each image separately: ``w CE(z, y) + (1 - w) T^2 KL(softmax(old/T) || softmax(z/T))``."""
    target = F.softmax(old_logits / temperature, dim=1)
    current = F.cross_entropy(z, labels, reduction="none")
    distilled = (torch.special.xlogy(target, target) - target * F.log_softmax(z / temperature, dim=1)).sum(1)
    return weight * current + (1 - weight) * temperature ** 2 * distilled


def optimal_logits(old_logits: torch.Tensor, labels: torch.Tensor, weight: float, temperature: float,
                   steps: int = 100) -> torch.Tensor:
    """Per image, the logits minimising LwF's loss (convex in the logits), by damped Newton steps in
    float64 from the old network's logits, each step backtracked until the image's loss falls."""
    old = old_logits.double()
    z = old.clone()
    n_classes = z.shape[1]
    onehot = F.one_hot(labels, n_classes).double()
    target = F.softmax(old / temperature, dim=1)
    # the loss does not change when every logit moves together; adding 11^T/n fixes that direction
    gauge = torch.full((n_classes, n_classes), 1.0 / n_classes, dtype=torch.float64)
    for _ in range(steps):
        p, p_t = F.softmax(z, dim=1), F.softmax(z / temperature, dim=1)
        gradient = weight * (p - onehot) + (1 - weight) * temperature * (p_t - target)
        hessian = (weight * (torch.diag_embed(p) - p[:, :, None] * p[:, None, :])
                   + (1 - weight) * (torch.diag_embed(p_t) - p_t[:, :, None] * p_t[:, None, :]))
        if gradient.abs().max() < 1e-9:
            break
        step = torch.linalg.solve(hessian + gauge, gradient.unsqueeze(-1)).squeeze(-1)
        loss = image_losses(z, old, labels, weight, temperature)
        slope = (gradient * step).sum(1)
        moving = slope > 1e-12  # images already at their optimum (to rounding) take the full step
        size = torch.ones(len(z), dtype=torch.float64)
        for _ in range(30):
            shorter = moving & (image_losses(z - size[:, None] * step, old, labels, weight, temperature)
                                > loss - 1e-4 * size * slope)
            if not shorter.any():
                break
            size = torch.where(shorter, size / 2, size)
        z = z - size[:, None] * step
    return z.to(old_logits.dtype)


def confidence(logits: torch.Tensor, temperature: float = 1.0) -> float:
    return float(F.softmax(logits / temperature, dim=1).max(dim=1).values.mean())


def cell(row: dict, key: str, width: int) -> str:
    return f"{row[key]:>{width}.3f}" if key in row else f"{'-':>{width}}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--iters", type=int, default=None, help="iterations per task (default: the protocol's)")
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--pad", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="write the figures here (after every task)")
    args = parser.parse_args(argv)
    if args.tasks < 2:
        parser.error("--tasks must be at least 2 (the first task has nothing to distil)")
    torch.set_num_threads(args.threads)

    config = ContinualConfig(benchmark="permuted-mnist", scenario="domain", strategy="lwf", n_tasks=args.tasks,
                             data_dir=args.data_dir, seed=args.seed, pad=args.pad, iters=args.iters,
                             strategy_params={"temperature": args.temperature})
    scenario = scenario_from(config)
    learner, _ = make_learner(config, scenario)
    scales = (1.0, 0.5, 0.25)
    print(f"permuted-mnist domain-IL LwF, seed {args.seed}, {learner.iters} iterations per task, "
          f"T={args.temperature:g}, images padded by {args.pad}")
    print("old network: its answers to the task's test images before training on it (agreement with the label, "
          "mean top probability at T=1)\nbound: fraction of those images whose loss-optimal answer is the label, "
          "old logits as trained / x0.5 / x0.25\nreached: the task's test accuracy right after training on it")
    print(f"{'task':>4} {'w=1/t':>6} {'old agrees':>10} {'old top p':>9} "
          + " ".join(f"{'bound x' + format(s, 'g'):>10}" for s in scales) + f" {'reached':>8} {'train s':>7}")
    figures = {"settings": {"benchmark": "permuted-mnist", "scenario": "domain", "seed": args.seed,
                            "iters": learner.iters, "temperature": args.temperature, "pad": args.pad,
                            "threads": args.threads}, "tasks": []}
    start_all = time.perf_counter()
    for t in range(args.tasks):
        task = scenario.tasks[t]
        row = {"task": t + 1, "w": 1.0 / (t + 1)}
        if t > 0:
            images = task.view(task.test_x)
            with torch.no_grad():
                old_logits = learner.forward(images, learner.contexts_for(t, len(images)))
            labels = task.test_y
            row["old_agrees"] = float((old_logits.argmax(1) == labels).float().mean())
            row["old_top_p"] = confidence(old_logits)
            for scale in scales:
                z = optimal_logits(old_logits * scale, labels, row["w"], args.temperature)
                row[f"bound_x{scale:g}"] = float((z.argmax(1) == labels).float().mean())
        start = time.perf_counter()
        learner.train_task(t)
        row["train_s"] = time.perf_counter() - start
        row["reached"] = learner.evaluate(t)[t]
        figures["tasks"].append(row)
        figures["total_time_s"] = time.perf_counter() - start_all
        print(f"{row['task']:>4} {row['w']:>6.3f} {cell(row, 'old_agrees', 10)} {cell(row, 'old_top_p', 9)} "
              + " ".join(cell(row, f"bound_x{scale:g}", 10) for scale in scales)
              + f" {row['reached']:>8.3f} {row['train_s']:>7.0f}", flush=True)
        if args.json:
            write_text(args.json, json.dumps(figures, indent=2) + "\n")
    print(f"total {figures['total_time_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
