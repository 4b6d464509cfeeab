"""Time per training step of each continual-learning strategy, and what the CPU charges for the
elementwise operations behind the differences.

A strategy's step is the network's forward and backward pass (fine-tuning's step, the lower
bound) plus the strategy's own work: a penalty over the weights, a second batch, a generator.
Beyond the matrix products, that work is passes over weight-sized tensors, and on a CPU their
cost depends on the operation: a comparison or ``torch.where`` goes through boolean tensors and
``tanh`` through a long polynomial. This script times

1. those operations on a tensor the size of the protocol MLP's 400 x 784 weight, each as a multiple of one
   multiply;
2. each strategy's milliseconds per step while it learns task 3 of Split MNIST, as a multiple of
   fine-tuning's, with the published protocol's network and batch, through the execution layer
   (its thread count and CPU allocator); the work at the task's end (EWC's Fisher) apart, in
   seconds. Each strategy is timed in ``--rounds`` rounds, fine-tuning again in each, and the
   medians are reported (ratios within a round).

    python benchmarks/continual_step.py --data-dir ../shared/data
    python benchmarks/continual_step.py --scenario class --strategies finetune si metaplasticity --iters 50
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _cli  # noqa: E402

from neuroaikit.cli.options import positive_int  # noqa: E402
from neuroaikit.continual import ContinualConfig, available_strategies, make_learner, scenario_from  # noqa: E402
from neuroaikit.continual.learner import check_continual_config  # noqa: E402
from neuroaikit.data import load_dataset  # noqa: E402
from neuroaikit.errors import ConfigError  # noqa: E402
from neuroaikit.execution import Execution, ExecutionConfig  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def elementwise_costs(repeats: int) -> dict[str, float]:
    """Microseconds per call of each operation on a 400 x 784 float32 tensor (median of
    ``repeats`` blocks of 20 calls)."""
    g = torch.Generator().manual_seed(0)
    w, v = torch.randn(400, 784, generator=g), torch.randn(400, 784, generator=g)
    mask = w >= 0
    operations = {
        "multiply": lambda: w * v,
        "subtract": lambda: w - v,
        "sign": lambda: torch.sign(w),
        "copysign": lambda: torch.copysign(v, w),
        "exp": lambda: torch.exp(w),
        "compare (>=)": lambda: w >= 0,
        "where": lambda: torch.where(mask, w, v),
        "tanh": lambda: torch.tanh(w),
    }
    costs = {}
    for name, operation in operations.items():
        for _ in range(5):
            operation()
        blocks = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(20):
                operation()
            blocks.append((time.perf_counter() - start) / 20 * 1e6)
        costs[name] = statistics.median(blocks)
    return costs


def step_config(strategy: str, args) -> ContinualConfig:
    return ContinualConfig(benchmark="split-mnist", scenario=args.scenario, strategy=strategy, iters=args.iters,
                           data_dir=args.data_dir, execution={"device": "cpu", "threads": args.threads})


def step_times(config: ContinualConfig, datasets) -> tuple[float, float]:
    """Milliseconds per step of task 3 (tasks 1-2 learnt first), and seconds of the strategy's
    work at the task's end (EWC's Fisher, copies of the network), timed apart: over a task of
    ``iters`` steps that work would weigh 10 times as much as over the protocol's 2,000."""
    iters = config.resolved("iters")
    with Execution(config.execution) as ex:
        learner, _ = make_learner(config, scenario_from(config, datasets), ex.device, execution=ex)
        learner.train_task(0)
        learner.train_task(1)
        after_task, ended = learner.strategy.after_task, []

        def timed_after_task(t: int) -> None:
            start = time.perf_counter()
            after_task(t)
            ended.append(time.perf_counter() - start)

        learner.strategy.after_task = timed_after_task  # type: ignore[method-assign]
        start = time.perf_counter()
        learner.train_task(2)
        total = time.perf_counter() - start
        return (total - ended[0]) / iters * 1000, ended[0]


def run(args) -> dict:
    configs, not_applicable = {}, {}
    for strategy in ["finetune"] + [s for s in (args.strategies or available_strategies()) if s != "finetune"]:
        config = step_config(strategy, args)
        try:  # every setting checked before anything is timed
            check_continual_config(config)
        except ConfigError as error:
            if args.strategies:  # asked for by name: a usage error
                raise
            not_applicable[strategy] = str(error)  # e.g. XdG without task labels
            continue
        configs[strategy] = config
    figures: dict = {"threads": args.threads, "scenario": args.scenario, "iters": args.iters, "rounds": args.rounds,
                     "machine_cpu_capability": torch.backends.cpu.get_cpu_capability(),
                     "not_applicable": not_applicable}
    save = _cli.figures_saver(args.json, figures)
    with Execution(ExecutionConfig(device="cpu", threads=args.threads)):
        costs = elementwise_costs(args.repeats)
    figures["elementwise_us"] = costs
    figures["elementwise_vs_multiply"] = {name: cost / costs["multiply"] for name, cost in costs.items()}
    print(f"elementwise operations on a 400 x 784 float32 tensor, {args.threads} thread(s), "
          f"CPU capability {figures['machine_cpu_capability']}:")
    for name, cost in costs.items():
        print(f"  {name:14s} {cost:8.1f} us  {cost / costs['multiply']:6.1f}x a multiply")
    for strategy, error in not_applicable.items():
        print(f"not timed: {strategy}: {error}")
    save()

    datasets = (load_dataset("mnist", "train", data_dir=args.data_dir),
                load_dataset("mnist", "test", data_dir=args.data_dir))
    timings: dict[str, list[tuple[float, float]]] = {strategy: [] for strategy in configs}
    for round_ in range(args.rounds):  # each round times fine-tuning again: its ratios share the round's load
        for strategy, config in configs.items():
            timings[strategy].append(step_times(config, datasets))
        print(f"round {round_ + 1}/{args.rounds} timed", flush=True)
    figures["steps"] = []
    print(f"\nSplit MNIST {args.scenario}-IL, per step of task 3 ({args.iters} iterations per task), "
          f"medians of {args.rounds} round(s):")
    for strategy, rounds in timings.items():
        ratios = [ms / base_ms for (ms, _), (base_ms, _) in zip(rounds, timings["finetune"])]
        row = {"strategy": strategy, "ms_per_step": statistics.median(ms for ms, _ in rounds),
               "vs_finetune": statistics.median(ratios), "end_of_task_s": statistics.median(end for _, end in rounds),
               "rounds_ms_per_step": [ms for ms, _ in rounds]}
        figures["steps"].append(row)
        print(f"  {strategy:24s} {row['ms_per_step']:7.2f} ms  {row['vs_finetune']:5.2f}x fine-tuning  "
              f"end of task {row['end_of_task_s']:6.2f} s")
    save()
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--scenario", choices=("task", "domain", "class"), default="task")
    parser.add_argument("--strategies", nargs="+", choices=available_strategies(), default=None,
                        help="default: every registered strategy (fine-tuning is always timed, first)")
    parser.add_argument("--iters", type=positive_int, default=200, help="iterations per task (default 200)")
    parser.add_argument("--repeats", type=positive_int, default=30, help="timed blocks per operation (default 30)")
    parser.add_argument("--rounds", type=positive_int, default=3,
                        help="times each strategy (fine-tuning included) is timed; medians are reported (default 3)")
    parser.add_argument("--threads", type=positive_int, default=1)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON (after every row)")
    _cli.parse_and_run(parser, run, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
