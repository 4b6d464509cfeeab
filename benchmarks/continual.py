"""Every continual-learning strategy on Split MNIST (task-, domain- and class-incremental) and
Permuted MNIST, with the published protocol, beside van de Ven et al.'s published averages.

Prints, per benchmark, scenario and strategy: average accuracy (mean and s.d. over seeds),
forgetting, backward transfer, extra forward passes, stored floats and wall time; ``--json``
writes the figures (after every run, so a long job that is stopped keeps what it measured).

    python benchmarks/continual.py --data-dir ../shared/data                  # Split MNIST, 3 seeds
    python benchmarks/continual.py --quick                                    # 200 iterations/task, 1 seed
    python benchmarks/continual.py --benchmark permuted-mnist --seeds 0 --strategies finetune ewc si
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from neuroaikit.continual import ContinualConfig, available_strategies, learn, scenario_from  # noqa: E402
from neuroaikit.data import load_dataset  # noqa: E402

#: published average accuracies (%), van de Ven & Tolias 2019, "Three scenarios for continual
#: learning", arXiv:1904.07734, Table 4 (Split MNIST) and Table 5 (Permuted MNIST), means over
#: 20 repetitions; strategy -> (task-IL, domain-IL, class-IL); None: not reported.
#: NOTE: transcribed from memory of the paper, not checked against its text in this
#: environment (no copy was reachable); verify before citing.
PUBLISHED = {
    "split-mnist": {
        "finetune": (87.19, 59.21, 19.90), "joint": (99.66, 98.42, 97.94), "ewc": (98.64, 63.95, 20.01),
        "online-ewc": (99.12, 64.32, 19.96), "si": (99.09, 65.36, 19.99), "xdg": (99.10, None, None),
        "lwf": (99.57, 71.50, 23.85), "generative-replay": (99.50, 95.72, 90.79),
    },
    "permuted-mnist": {
        "finetune": (81.79, 78.51, 17.26), "joint": (97.68, 97.59, 97.59), "ewc": (95.96, 94.42, 33.88),
        "online-ewc": (96.66, 95.08, 30.73), "si": (94.75, 95.33, 29.31), "xdg": (97.18, None, None),
        "lwf": (69.84, 72.64, 22.64), "generative-replay": (92.52, 95.09, 92.19),
    },
}
SCENARIO_COLUMN = {"task": 0, "domain": 1, "class": 2}


def published(benchmark: str, strategy: str, scenario: str):
    row = PUBLISHED.get(benchmark, {}).get(strategy)
    return None if row is None else row[SCENARIO_COLUMN[scenario]]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--benchmark", default="split-mnist", choices=("split-mnist", "permuted-mnist"))
    parser.add_argument("--scenarios", nargs="+", default=["task", "domain", "class"])
    parser.add_argument("--strategies", nargs="+", default=None, help="default: every registered strategy")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--iters", type=int, default=None, help="iterations per task (default: the protocol's)")
    parser.add_argument("--tasks", type=int, default=None, help="number of tasks (default: the benchmark's)")
    parser.add_argument("--quick", action="store_true", help="200 iterations per task, one seed")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="write the figures here (rewritten after every run)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        args.iters, args.seeds = args.iters or 200, args.seeds[:1]
    strategies = args.strategies or available_strategies()
    train = load_dataset("mnist", "train", data_dir=args.data_dir)
    test = load_dataset("mnist", "test", data_dir=args.data_dir)
    rows, started = [], time.perf_counter()
    print(f"{args.benchmark}: {', '.join(args.scenarios)}-incremental; seeds {args.seeds}; "
          f"{args.iters or 'protocol'} iterations per task; {torch.get_num_threads()} thread(s)")
    print(f"{'scenario':<8} {'strategy':<22} {'accuracy %':>14} {'published':>9} {'diff':>6} {'forget':>7} "
          f"{'BWT':>7} {'extra fwd':>9} {'stored floats':>13} {'time s':>7}")
    for scenario in args.scenarios:
        for strategy in strategies:
            if strategy == "xdg" and scenario != "task":
                continue
            runs = []
            for seed in args.seeds:
                config = ContinualConfig(benchmark=args.benchmark, scenario=scenario, strategy=strategy, seed=seed,
                                         iters=args.iters, n_tasks=args.tasks, data_dir=args.data_dir,
                                         execution={"device": "cpu"})
                t0 = time.perf_counter()
                result = learn(config, scenario_from(config, datasets=(train, test)))
                runs.append((result, time.perf_counter() - t0))
            accs = [100 * r.average_accuracy for r, _ in runs]
            mean = statistics.fmean(accs)
            sd = statistics.stdev(accs) if len(accs) > 1 else float("nan")
            paper = published(args.benchmark, strategy, scenario) if not args.quick and args.iters is None else None
            row = {"benchmark": args.benchmark, "scenario": scenario, "strategy": strategy, "seeds": args.seeds,
                   "iters": runs[0][0].iters, "n_tasks": runs[0][0].n_tasks,
                   "average_accuracy_pct": accs, "mean_pct": mean, "sd_pct": sd, "published_pct": paper,
                   "difference_pp": None if paper is None else mean - paper,
                   "forgetting": statistics.fmean(r.forgetting for r, _ in runs),
                   "backward_transfer": statistics.fmean(r.backward_transfer for r, _ in runs),
                   "forward_transfer": statistics.fmean(r.forward_transfer for r, _ in runs),
                   "extra_forward_ratio": runs[0][0].costs["extra_forward_ratio"],
                   "stored_floats": runs[0][0].costs["stored_floats"],
                   "buffer_examples": runs[0][0].costs["buffer_examples"],
                   "wall_time_s": statistics.fmean(t for _, t in runs),
                   "accuracy_matrices": [r.accuracy_matrix for r, _ in runs],
                   "strategy_params": runs[0][0].strategy_params}
            rows.append(row)
            shown = f"{mean:6.2f} ± {sd:4.2f}" if not math.isnan(sd) else f"{mean:6.2f}       "
            print(f"{scenario:<8} {strategy:<22} {shown:>14} {('-' if paper is None else f'{paper:.2f}'):>9} "
                  f"{('-' if paper is None else f'{mean - paper:+.1f}'):>6} {row['forgetting']:7.3f} "
                  f"{row['backward_transfer']:+7.3f} {row['extra_forward_ratio']:9.2f} {row['stored_floats']:13d} "
                  f"{row['wall_time_s']:7.1f}", flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps({"rows": rows, "threads": torch.get_num_threads(),
                                                       "total_time_s": time.perf_counter() - started}, indent=1))
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
