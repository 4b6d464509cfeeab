"""``neuroaikit continual``: learn a sequence of tasks with a continual-learning strategy into a run folder."""

from __future__ import annotations

from .options import add_execution_arguments, add_output_arguments, add_quiet_argument, whole_number_or

NAME = "continual"
HELP = "learn tasks one after another (Split / Permuted MNIST ...) with a strategy against forgetting"
DESCRIPTION = """\
Train a network on a sequence of tasks and measure what it forgets: the task-by-task accuracy
matrix, average accuracy, backward and forward transfer, forgetting, and the strategy's compute
and memory cost. Writes a run folder (config.json, model.json, weights.safetensors,
metrics.json, log.txt, report.html with the accuracy-matrix heat map and the
accuracy-after-each-task curve). A checkpoint is written after every task: --resume continues.

Scenarios (van de Ven et al. 2022): task (task identity given), domain (not given, same
outputs), class (not given, choose among all classes so far); --task-free hides the boundaries
too. Defaults follow the published protocol: Split MNIST 2 x 400 units, 2,000 iterations per
task, Adam lr 1e-3, batch 128; Permuted MNIST 2 x 1,000 units, 5,000 iterations, lr 1e-4.

strategies: finetune, joint, ewc, online-ewc, si, lwf, replay, generative-replay,
brain-inspired-replay, xdg, metaplasticity, hidden-noise; their settings with --set KEY=VALUE
(e.g. --set lambda=1e9, --set per_class=50, --set base=si for xdg).

examples:
  neuroaikit continual --benchmark split-mnist --scenario class --strategy replay --data-dir ../shared/data --out runs/er
  neuroaikit continual --benchmark split-mnist --scenario task --strategy ewc --set lambda=1e5 --out runs/ewc
  neuroaikit continual --benchmark permuted-mnist --scenario task --strategy xdg --set base=si --tasks 100 --out runs/xdg
  # Masse et al. 2018's network: 2 x 2,000 units, dropout 0.5, one shared output layer, Adam reset per task
  neuroaikit continual --benchmark permuted-mnist --scenario task --strategy xdg --set base=si --tasks 100 \
      --hidden 2000 --dropout 0.5 --shared-head --reset-optimizer --batch-size 256 --iters 3906 --lr 1e-3 --out runs/xdg100
  # the digits paired at random (drawn from the seed), as van de Ven & Tolias 2019 averaged over
  neuroaikit continual --scenario domain --strategy si --class-order random --seed 3 --out runs/si-3
  # a quick look: 200 iterations per task
  neuroaikit continual --strategy si --scenario domain --iters 200 --out runs/si-quick
  # a stream without task labels or boundaries
  neuroaikit continual --strategy replay --set buffer=reservoir --task-free --out runs/free

A finished run is never replaced unless you pass --overwrite.
"""

_OPTIONS = ["benchmark", "scenario", "strategy", "iters", "hidden", "layers", "dropout", "shared_head",
            "reset_optimizer", "lr", "batch_size", "seed", "train_subset", "test_subset", "data_dir", "transition", "pad"]
FLAGS = {"n_tasks": "--tasks", "task_free": "--task-free", "strategy_params": "--set", "class_order": "--class-order"}


def add_arguments(parser):
    from ..continual import BENCHMARKS, SCENARIOS, ContinualConfig

    d = ContinualConfig()
    parser.add_argument("--config", help="JSON (or YAML) file with ContinualConfig fields; options override it")
    parser.add_argument("--benchmark", choices=tuple(BENCHMARKS), help=f"the task sequence (default {d.benchmark})")
    parser.add_argument("--scenario", choices=SCENARIOS, help=f"task | domain | class incremental (default {d.scenario})")
    parser.add_argument("--strategy", help=f"the continual-learning strategy (default {d.strategy})")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="a setting of the strategy (repeatable)")
    parser.add_argument("--tasks", type=int, help="number of tasks (default: 5, permuted MNIST 10)")
    parser.add_argument("--task-free", action="store_const", const=True, default=None,
                        help="hide task labels and boundaries: tasks fade into each other")
    parser.add_argument("--transition", type=int, help="task-free: iterations of each fade (default: half a task)")
    parser.add_argument("--class-order", type=whole_number_or("random", "a class index"), nargs="+", metavar="CLASS",
                        help="split benchmarks: class order cut into tasks, or 'random' (drawn from --seed)")
    parser.add_argument("--iters", type=int, help="iterations per task (default: the protocol's)")
    parser.add_argument("--hidden", type=int, help="units per hidden layer (default: the protocol's)")
    parser.add_argument("--layers", type=int, help=f"hidden layers (default {d.layers})")
    parser.add_argument("--dropout", type=float, help=f"dropout on the hidden units while training (default {d.dropout})")
    parser.add_argument("--shared-head", action="store_const", const=True, default=None,
                        help="task-IL: one output layer for every task (Masse et al. 2018), not a head per task")
    parser.add_argument("--reset-optimizer", action="store_const", const=True, default=None,
                        help="a fresh Adam at the start of every task (Masse et al. 2018)")
    parser.add_argument("--lr", type=float, help="Adam learning rate (default: the protocol's)")
    parser.add_argument("--batch-size", type=int, help="batch size (default: the protocol's)")
    parser.add_argument("--seed", type=int, help=f"weights, batches, buffers, permutations (default {d.seed})")
    parser.add_argument("--train-subset", type=int, help="use only the first N training images")
    parser.add_argument("--test-subset", type=int, help="use only the first N test images")
    parser.add_argument("--pad", type=int, help="zero pixels around each image, added before permuting "
                        "(2: van de Ven et al.'s 32 x 32 MNIST; default 0)")
    parser.add_argument("--data-dir", help="folder holding the dataset files")
    add_output_arguments(parser, resumable=True, resume_may_change="device, threads and precision")
    add_execution_arguments(parser, trains=True)
    parser.add_argument("--no-report", action="store_true", help="do not write report.html")
    add_quiet_argument(parser)


def config_from_args(args):
    from ..config import load_config_file
    from ..continual import ContinualConfig
    from ..errors import ConfigError
    from .options import config_from_args as build
    from .options import parse_assignments

    values = load_config_file(args.config) if args.config else {}
    if args.set:
        in_file = values.get("strategy_params") or {}
        if not isinstance(in_file, dict):
            raise ConfigError(f"--config {args.config}: the strategy's settings must be a mapping of names to "
                              f"values, got {type(in_file).__name__} {in_file!r}")
        params = dict(in_file)
        params.update(parse_assignments(args.set, "--set"))
        values["strategy_params"] = params
    if args.class_order is not None and "random" in args.class_order:
        if args.class_order != ["random"]:
            raise ConfigError("--class-order takes class indices or the one word 'random', not both")
        args.class_order = "random"
    names = {n: n for n in _OPTIONS} | {"tasks": "n_tasks", "task_free": "task_free", "class_order": "class_order"}
    return build(ContinualConfig, args, names, base=values)


def run(args) -> int:
    from ..continual import ContinualResult, run_continual
    from ..progress import default_progress

    config = config_from_args(args)
    run_ = run_continual(config, args.out, resume=args.resume, overwrite=args.overwrite,
                         progress=default_progress(quiet=args.quiet))
    result = ContinualResult.load(run_)
    if result is not None and args.quiet:  # without --quiet the job's own last message was this line
        print(result.summary())
    if not args.no_report:
        from ..report import build_report

        print(f"report: {build_report(run_.path)}")
    print(f"run folder: {run_.path}")
    return 0
