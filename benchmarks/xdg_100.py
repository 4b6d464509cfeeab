"""Context-dependent gating on 100 Permuted MNIST tasks at Masse et al. 2018's protocol, beside
their figure.

Masse, Grant & Freedman 2018 (PNAS 115:E10467) and the defaults of their code
(``nmasse/Context-Dependent-Gating``, ``parameters.py`` and ``model.py``): 28 x 28 MNIST, 100
permutations, a 784-2000-2000-10 ReLU network with one output layer shared by every task,
dropout 0.5 on the hidden units, 80 % of each hidden layer's units gated off per task (each unit
independently), Adam lr 1e-3 reset at every task, batch 256, 3,906 batches per task (20 epochs
of 50,000 images), and synaptic intelligence as they run it (c 0.05, xi 0.001, the task loss's
gradient alone, a negative path integral clipped at 0). The figure is the mean test accuracy
over all 100 tasks after the last one.

Each task trains and is tested on the units its gates leave on alone (XdG's ``subnetwork``: a
tenth of the whole network's multiply-adds at 80 % gating, with the same updates, since a gated
unit gets no gradient and Adam starts afresh at every task); the recorded run of the 100 tasks
took 1.5 hours on two CPU threads (``docs/results/data/continual_xdg100_masse.json``).
``--whole-network`` runs the gated whole network instead, to compare.

    python benchmarks/xdg_100.py --out runs/xdg100 --threads 2        # hours on a CPU; rerun resumes
    python benchmarks/xdg_100.py --out runs/xdg100 --device cuda
    python benchmarks/xdg_100.py --tasks 3 --iters 50 --train-subset 2000 --out /tmp/xdg   # a look
    python benchmarks/xdg_100.py --base finetune --out runs/xdg100-alone   # XdG without SI

The run goes into ``--out`` with a checkpoint after every task, so a stopped run rerun with the
same command continues from its last finished task (a finished one is reported, not rerun;
``--overwrite`` starts afresh).
Prints the mean accuracy over the tasks trained so far after every tenth task, then the final
figure beside the published one; ``--json`` writes them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from neuroaikit.cli.options import positive_int  # noqa: E402
from neuroaikit.continual import ContinualConfig, ContinualResult, run_continual  # noqa: E402
from neuroaikit.errors import NeuroAIKitError  # noqa: E402
from neuroaikit.io import write_text  # noqa: E402
from neuroaikit.progress import default_progress  # noqa: E402
from neuroaikit.runs import Run, is_run_folder  # noqa: E402

#: mean accuracy (%) over the 100 tasks after the last one, by the strategy XdG gates.
#: NOTE: transcribed from memory of Masse et al.'s Fig. 2 and its text, not checked against the
#: paper in this environment (no copy was reachable); verify before citing.
PUBLISHED = {"si": 95.4}
PUBLISHED_SOURCE = ("published*: Masse et al. 2018 (PNAS), Fig. 2, XdG + SI on 100 permuted MNIST tasks, "
                    "transcribed from memory of the paper and not verified against it; check before citing")
#: Masse et al.'s synaptic intelligence (``omega_c``, ``omega_xi`` and their path integral)
MASSE_SI = {"c": 0.05, "xi": 0.001, "task_gradient": True, "nonnegative": True}


def config_of(args) -> ContinualConfig:
    base_params = MASSE_SI if args.base == "si" else {}
    return ContinualConfig.from_dict({
        "benchmark": "permuted-mnist", "scenario": "task", "strategy": "xdg",
        "strategy_params": {"gating_prop": 0.8, "base": args.base, "base_params": base_params,
                            **({"subnetwork": False} if args.whole_network else {})},
        "n_tasks": args.tasks, "hidden": 2000, "layers": 2, "dropout": 0.5, "shared_head": True,
        "reset_optimizer": True, "lr": 1e-3, "batch_size": 256, "iters": args.iters, "seed": args.seed,
        "train_subset": args.train_subset, "test_subset": args.test_subset, "data_dir": args.data_dir,
        "execution": {"device": args.device, "threads": args.threads, "precision": args.precision}})


def figures(args, result: ContinualResult, wall_time_s: float | None) -> dict:
    protocol = args.tasks == 100 and args.iters == 3906 and args.train_subset is None and args.test_subset is None
    paper = PUBLISHED.get(args.base) if protocol else None
    mean = 100 * result.average_accuracy
    return {"strategy": f"xdg+{args.base}", "seed": args.seed, "n_tasks": result.n_tasks, "iters": result.iters,
            "average_accuracy_pct": mean, "published_pct": paper,
            "difference_pp": None if paper is None else mean - paper,
            "curve_pct": [100 * a for a in result.accuracy_curve],
            "final_accuracies_pct": [100 * a for a in result.accuracy_matrix[-1]],
            "forgetting": result.forgetting, "backward_transfer": result.backward_transfer,
            "train_time_s": result.train_time_s, "wall_time_s": wall_time_s,
            "strategy_params": result.strategy_params, "device": args.device, "threads": args.threads,
            "precision": args.precision}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--out", required=True, help="the run folder (kept: rerunning resumes or reports it)")
    parser.add_argument("--base", choices=("si", "finetune"), default="si",
                        help="what XdG gates: Masse et al.'s synaptic intelligence, or nothing (default si)")
    parser.add_argument("--whole-network", action="store_true",
                        help="train the whole network with its gates, not each task's kept units alone (same "
                             "updates, about ten times the arithmetic)")
    parser.add_argument("--tasks", type=int, default=100, help="permutations (default 100, the protocol)")
    parser.add_argument("--iters", type=int, default=3906, help="batches per task (default 3,906, the protocol)")
    parser.add_argument("--train-subset", type=int, help="only the first N training images (a quick look)")
    parser.add_argument("--test-subset", type=int, help="only the first N test images (a quick look)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--precision", choices=("32", "bf16-mixed"), default="32")
    parser.add_argument("--overwrite", action="store_true",
                        help="start afresh, replacing the run (finished or interrupted) in --out")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    try:
        config = config_of(args)
        out = Path(args.out)
        started, wall = time.perf_counter(), None
        if args.overwrite or not is_run_folder(out):
            run_continual(config, out, resume=not args.overwrite, overwrite=args.overwrite,
                          progress=default_progress(quiet=args.quiet))
            # a run resumed from an earlier call's checkpoint: this call's time covers only its last part
            resumed = any("resumed after task" in line for line in (out / "log.txt").read_text().splitlines())
            wall = None if resumed else time.perf_counter() - started
        run = Run.open(out)
        differs = sorted(key for key, value in config.to_dict().items()
                         if key not in ("execution", "data_dir") and run.config.get(key) != value)
        if differs:
            raise NeuroAIKitError(f"{out} is a finished run of other settings ({', '.join(differs)}); "
                                  "give another --out, or --overwrite to replace it")
        result = ContinualResult.load(run)
        if result is None:
            raise NeuroAIKitError(f"{out} holds no continual-learning result")
    except NeuroAIKitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    row = figures(args, result, wall)
    print(f"XdG + {args.base} on {result.n_tasks} permuted MNIST tasks, {result.iters} batches of 256 each, "
          f"seed {args.seed}, {args.device}")
    print("after task  mean accuracy over the tasks so far %")
    for t, value in enumerate(row["curve_pct"], 1):
        if t % 10 == 0 or t == len(row["curve_pct"]):
            print(f"{t:10d}  {value:6.2f}")
    paper = row["published_pct"]
    print(f"mean accuracy over all {result.n_tasks} tasks: {row['average_accuracy_pct']:.2f} %"
          + ("" if paper is None else f"; published* {paper:.1f} ({row['difference_pp']:+.1f})")
          + f"; forgetting {row['forgetting']:.3f}; training {row['train_time_s']:.0f} s")
    if paper is not None:
        print(PUBLISHED_SOURCE)
    if args.json:
        source = {} if paper is None else {"published_source": PUBLISHED_SOURCE}
        write_text(args.json, json.dumps({"rows": [row], **source}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
