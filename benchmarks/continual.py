"""Every continual-learning strategy on Split MNIST (task-, domain- and class-incremental) and
Permuted MNIST, with the published protocol, beside van de Ven et al.'s published averages.

Prints, per benchmark, scenario and strategy: average accuracy (mean, s.d., standard error and
range over seeds), forgetting, backward transfer, extra forward passes, stored floats, wall and
training time; ``--json`` writes the figures (after every run, so a long job that is stopped keeps
what it measured).

    python benchmarks/continual.py --data-dir ../shared/data                  # Split MNIST, 3 seeds
    python benchmarks/continual.py --quick                                    # 200 iterations/task, 1 seed
    python benchmarks/continual.py --benchmark permuted-mnist --seeds 0 --strategies finetune ewc si
    python benchmarks/continual.py --seeds 0 --workers 2 --out runs/suite   # 2 Ray workers, resumable
    python benchmarks/continual.py --seeds 0 --workers 2 --precision bf16-mixed   # bfloat16 autocast
    # as van de Ven & Tolias's 2019 runs: their strengths, 32 x 32 permuted images, random digit pairs
    python benchmarks/continual.py --benchmark permuted-mnist --strengths 2019 --pad 2 --seeds 0
    python benchmarks/continual.py --scenarios domain --strengths 2019 --random-classes
    # XdG gated as in their code: exactly 55% of the units, before the bias
    python benchmarks/continual.py --benchmark permuted-mnist --scenarios task --strategies xdg --strengths 2019 --pad 2 --seeds 0 --set exact_count=true --set before_bias=true
    # the table of figures written before (--json, or a results page's data), without running anything
    python benchmarks/continual.py --table docs/results/data/continual_split_random_domain_si_20.json
    # seeds run by separate commands at one protocol, pooled row by row into one table
    python benchmarks/continual.py --table docs/results/data/continual_permuted_32_task_si.json docs/results/data/continual_permuted_32_task_seeds12.json

With ``--workers N`` the runs go through ``neuroaikit.sweep`` on a local Ray (N processes of
``--threads`` threads each, the longest strategies first); ``--out`` keeps their run folders, so a
stopped suite rerun with the same ``--out`` skips what finished.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from neuroaikit.cli.options import positive_int  # noqa: E402
from neuroaikit.continual import (ContinualConfig, ContinualResult, available_strategies, learn,  # noqa: E402
                                  scenario_from)
from neuroaikit.cli.options import parse_assignments  # noqa: E402
from neuroaikit.continual.strategies import (build_strategy, canonical_settings, make_strategy,  # noqa: E402
                                             strategy_settings)
from neuroaikit.data import load_dataset  # noqa: E402
from neuroaikit.data.paths import find_dataset_folder  # noqa: E402
from neuroaikit.errors import ConfigError, NeuroAIKitError  # noqa: E402
from neuroaikit.runs import Run  # noqa: E402
from neuroaikit.sweep import SweepSpec, run_sweep  # noqa: E402
from neuroaikit.io import write_text  # noqa: E402

#: published average accuracies (%), van de Ven & Tolias 2019, "Three scenarios for continual
#: learning", arXiv:1904.07734, Table 4 (Split MNIST) and Table 5 (Permuted MNIST), means over
#: 20 repetitions; strategy -> (task-IL, domain-IL, class-IL); None: not reported.
#: NOTE: transcribed from memory of the paper, not checked against its text in this
#: environment (no copy was reachable); verify before citing. Two third-party notes agree with
#: the Split MNIST fine-tuning, EWC and SI rows and its class-IL online EWC, LwF and generative replay
#: figures (docs/guide/continual.md says which).
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
#: printed under every table and stored with the figures, so no page shows the column as checked
PUBLISHED_SOURCE = ("published*: van de Ven & Tolias 2019 (arXiv:1904.07734) Tables 4-5, means of 20 runs, "
                    "transcribed from memory of the paper and not verified against it; check before citing")
#: the strengths behind the published figures: van de Ven & Tolias 2019's code (the
#: param_values.py of GMvandeVen/continual-learning at that paper, which this version of the
#: table quotes), with its Fisher from each example's most probable label. Their online EWC
#: penalises gamma * F, so lambda_ here is their lambda times gamma. ``--strengths 2019`` uses
#: them; by default every strategy takes the toolkit's defaults (van de Ven et al. 2022's values).
STRENGTHS_2019 = {
    "split-mnist": {
        "task": {"ewc": {"lambda_": 1e7}, "online-ewc": {"lambda_": 1e8 * 0.8, "gamma": 0.8}, "si": {"c": 50.0},
                 "xdg": {"gating_prop": 0.95}},
        "domain": {"ewc": {"lambda_": 1e6}, "online-ewc": {"lambda_": 1e8 * 0.7, "gamma": 0.7}, "si": {"c": 500.0}},
        "class": {"ewc": {"lambda_": 1e8}, "online-ewc": {"lambda_": 1e9 * 0.8, "gamma": 0.8}, "si": {"c": 0.5}},
    },
    "permuted-mnist": {
        "task": {"ewc": {"lambda_": 500.0}, "online-ewc": {"lambda_": 500.0 * 0.8, "gamma": 0.8}, "si": {"c": 5.0},
                 "xdg": {"gating_prop": 0.55}},
        "domain": {"ewc": {"lambda_": 500.0}, "online-ewc": {"lambda_": 1000.0 * 0.9, "gamma": 0.9}, "si": {"c": 5.0}},
        "class": {"ewc": {"lambda_": 1.0}, "online-ewc": {"lambda_": 5.0, "gamma": 1.0}, "si": {"c": 0.1}},
    },
}


def strategy_params(args, scenario: str, strategy: str) -> dict:
    """The --strengths values for this run, then the --set ones."""
    params = {}
    if args.strengths == "2019":
        params = dict(STRENGTHS_2019[args.benchmark][scenario].get(strategy, {}))
        if strategy in ("ewc", "online-ewc"):
            params["fisher_labels"] = "predicted"
    return {**params, **canonical_settings({key: value for key, value in args.settings.items()
                                            if key in settings_of(strategy)})}


def settings_of(strategy: str) -> set[str]:
    """The strategy's settings, ``lambda`` included for ``lambda_`` (as on the command line)."""
    names = set(strategy_settings(strategy))
    return names | {name.rstrip("_") for name in names}


def check_settings(settings: dict, strategies: list[str]) -> None:
    """Every --set key is a setting of at least one strategy in the run."""
    for key in settings:
        if not any(key in settings_of(strategy) for strategy in strategies):
            raise ConfigError(f"--set {key}: none of the strategies run ({', '.join(strategies)}) has that setting")


#: the strategies that train a generator beside the classifier (about 5x a plain run): started
#: first when runs go in parallel, so no worker is left with one of them at the end
LONGEST_FIRST = ("brain-inspired-replay", "generative-replay")


def published(benchmark: str, strategy: str, scenario: str):
    row = PUBLISHED.get(benchmark, {}).get(strategy)
    return None if row is None else row[SCENARIO_COLUMN[scenario]]


def job_settings(args) -> dict:
    """The settings every run shares (the protocol's, unless --iters / --tasks say otherwise)."""
    settings = {"benchmark": args.benchmark, "data_dir": args.data_dir,
                "execution": {"device": args.device, "threads": args.threads, "precision": args.precision}}
    if args.iters is not None:
        settings["iters"] = args.iters
    if args.tasks is not None:
        settings["n_tasks"] = args.tasks
    if args.pad:
        settings["pad"] = args.pad
    if args.random_classes:
        settings["class_order"] = "random"
    return settings


def run_in_process(jobs, args):
    """Yield ``(job, result, seconds)`` for each ``(scenario, strategy, seed)``, one after another."""
    train = load_dataset("mnist", "train", data_dir=args.data_dir)
    test = load_dataset("mnist", "test", data_dir=args.data_dir)
    for scenario, strategy, seed in jobs:
        config = config_of(args, scenario, strategy, seed)
        t0 = time.perf_counter()
        result = learn(config, scenario_from(config, datasets=(train, test)))
        yield (scenario, strategy, seed), result, time.perf_counter() - t0


def run_on_ray(jobs, args, out: Path):
    """The same runs as a ``neuroaikit.sweep`` on a local Ray with ``args.workers`` processes;
    yields them in ``jobs`` order once all have finished (``seconds`` is ``None`` for a run that
    an earlier call with the same ``out`` finished or started: this call's wall time would cover
    only part of it; the run's own ``train_time_s`` covers all of it)."""
    suffix = (("-2019" if args.strengths == "2019" else "") + ("-bf16" if args.precision != "32" else "")
              + (f"-pad{args.pad}" if args.pad else "") + ("-random" if args.random_classes else ""))

    def settings_suffix(strategy: str) -> str:
        return "".join(f"-{key}={value}" for key, value in args.set_text.items() if key in settings_of(strategy))

    names = {job: "{}-{}-seed{}{}".format(*job, suffix) + settings_suffix(job[1]) for job in jobs}
    ordered = sorted(jobs, key=lambda job: job[1] not in LONGEST_FIRST)
    trials = [{"name": names[job], "scenario": job[0], "strategy": job[1], "seed": job[2],
               "strategy_params": strategy_params(args, job[0], job[1])} for job in ordered]
    spec = SweepSpec.from_dict({"job": "continual", "base": job_settings(args), "trials": trials,
                                "cpus_per_trial": args.threads, "name": "continual benchmark",
                                # the workers share one GPU (Ray makes each trial's visible)
                                "gpus_per_trial": 1 / args.workers if args.device.startswith("cuda") else 0})
    summary = run_sweep(spec, out, backend="ray", workers=args.workers)
    if summary.failed:
        raise SystemExit(f"{len(summary.failed)} run(s) failed: {summary.failed[0].name}: {summary.failed[0].error}")
    seconds = {row.name: row.seconds if row.status in ("ran", "replaced") else None for row in summary.rows}
    for job in jobs:
        result = ContinualResult.load(Run.open(out / "trials" / names[job]))
        yield job, result, seconds[names[job]]


def spread(accs: list[float]) -> dict:
    """Mean, standard deviation, standard error of the mean and range of the seeds' accuracies."""
    sd = statistics.stdev(accs) if len(accs) > 1 else float("nan")
    return {"mean_pct": statistics.fmean(accs), "sd_pct": sd, "se_pct": sd / math.sqrt(len(accs)),
            "min_pct": min(accs), "max_pct": max(accs)}


def summarise(args, scenario: str, strategy: str, runs) -> dict:
    """One row of the table: a strategy's seeds on one scenario, beside the published figure."""
    accs = [100 * r.average_accuracy for r, _ in runs]
    stats = spread(accs)
    paper = published(args.benchmark, strategy, scenario) if not args.quick and args.iters is None else None
    seconds = [t for _, t in runs]
    first = runs[0][0]
    return {"benchmark": args.benchmark, "scenario": scenario, "strategy": strategy, "seeds": args.seeds,
            "iters": first.iters, "n_tasks": first.n_tasks,
            "average_accuracy_pct": accs, **stats, "published_pct": paper,
            "difference_pp": None if paper is None else stats["mean_pct"] - paper,
            "forgetting": statistics.fmean(r.forgetting for r, _ in runs),
            "backward_transfer": statistics.fmean(r.backward_transfer for r, _ in runs),
            "forward_transfer": statistics.fmean(r.forward_transfer for r, _ in runs),
            "extra_forward_ratio": first.costs["extra_forward_ratio"],
            "stored_floats": first.costs["stored_floats"],
            "buffer_examples": first.costs["buffer_examples"],
            "wall_time_s": None if None in seconds else statistics.fmean(seconds),
            # kept by each run itself, so a suite resumed from --out still has it for every row
            "train_time_s": statistics.fmean(r.train_time_s for r, _ in runs),
            "accuracy_matrices": [r.accuracy_matrix for r, _ in runs],
            "strategy_params": first.strategy_params}


HEADER = (f"{'scenario':<8} {'strategy':<22} {'accuracy %':>14} {'s.e.':>5} {'seeds range':>13} {'published*':>10} "
          f"{'diff':>6} {'forget':>7} {'BWT':>7} {'extra fwd':>9} {'stored floats':>13} {'time s':>7} {'train s':>8}")


def print_row(row: dict) -> None:
    # recomputed from the seeds' accuracies, so rows written before the spread was stored print alike
    stats = spread(row["average_accuracy_pct"])
    mean, sd, paper, seconds = stats["mean_pct"], stats["sd_pct"], row["published_pct"], own_wall_time(row)
    train = row.get("train_time_s")  # pages written before runs kept their own training time lack it
    shown = f"{mean:6.2f} ± {sd:4.2f}" if not math.isnan(sd) else f"{mean:6.2f}       "
    error = "-" if math.isnan(sd) else f"{stats['se_pct']:.2f}"
    print(f"{row['scenario']:<8} {row['strategy']:<22} {shown:>14} {error:>5} "
          f"{stats['min_pct']:6.2f}-{stats['max_pct']:<6.2f} {('-' if paper is None else f'{paper:.2f}'):>10} "
          f"{('-' if paper is None else f'{mean - paper:+.1f}'):>6} {row['forgetting']:7.3f} "
          f"{row['backward_transfer']:+7.3f} {row['extra_forward_ratio']:9.2f} {row['stored_floats']:13d} "
          f"{('-' if seconds is None else f'{seconds:.1f}'):>7} {('-' if train is None else f'{train:.1f}'):>8}", flush=True)


def config_of(args, scenario: str, strategy: str, seed: int) -> ContinualConfig:
    return ContinualConfig.from_dict({**job_settings(args), "scenario": scenario, "strategy": strategy,
                                      "seed": seed, "strategy_params": strategy_params(args, scenario, strategy)})


def report(args, jobs) -> int:
    """Run ``jobs`` and print (and with ``--json`` write) one row per scenario and strategy."""
    rows, started = [], time.perf_counter()
    print(f"{args.benchmark}: {', '.join(args.scenarios)}-incremental; seeds {args.seeds}; "
          f"{args.iters or 'protocol'} iterations per task; {args.strengths} strengths; precision {args.precision}; "
          f"{args.workers} worker(s) x {args.threads} thread(s) on {args.device}"
          + (f"; images padded by {args.pad}" if args.pad else "")
          + ("; classes paired at random per seed" if args.random_classes else "")
          + "".join(f"; {key}={value}" for key, value in args.set_text.items()))
    with contextlib.ExitStack() as stack:
        if args.workers > 1:
            out = Path(args.out) if args.out else Path(stack.enter_context(tempfile.TemporaryDirectory())) / "sweep"
            finished = run_on_ray(jobs, args, out)
        else:
            finished = run_in_process(jobs, args)
        print(HEADER)
        runs = []
        for (scenario, strategy, _seed), result, seconds in finished:
            runs.append((result, seconds))
            if len(runs) < len(args.seeds):
                continue
            row = summarise(args, scenario, strategy, runs)
            rows.append(row)
            print_row(row)
            runs = []
            if args.json:
                write_text(args.json, json.dumps({"rows": rows, "strengths": args.strengths,
                                                  "precision": args.precision, "threads": args.threads,
                                                  "workers": args.workers, "pad": args.pad,
                                                  "random_classes": args.random_classes,
                                                  "settings": args.settings,
                                                  "device": args.device, "published_source": PUBLISHED_SOURCE,
                                                  "total_time_s": time.perf_counter() - started}, indent=1))
    print(PUBLISHED_SOURCE)
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


#: what a table's runs share besides each row's strategy settings, with the value of tables written
#: before the field was kept; runs that differ in any of them are not pooled
PROTOCOL_DEFAULTS = {"pad": 0, "random_classes": False, "precision": "32"}


def read_figures(path: str) -> dict:
    """The figures of a ``--json`` file, or of a results page's data (its ``figures``)."""
    data = json.loads(Path(path).read_text())
    figures = data.get("figures", data)
    if not isinstance(figures.get("rows"), list):
        raise ValueError("it has no rows")
    return figures


def own_wall_time(row: dict) -> float | None:
    """A row's wall time, or None where it cannot cover the whole run: a wall time below the run's
    own training time is the last segment of a run resumed from its checkpoint (pages recorded
    before the benchmark left those empty kept it)."""
    wall, train = row.get("wall_time_s"), row.get("train_time_s")
    return None if wall is None or (train is not None and wall < train) else wall


def weighted_mean(parts: list[tuple[int, float | None]]) -> float | None:
    """The mean over every seed of figures kept as per-row means (None when a row lacks it)."""
    if any(value is None for _, value in parts):
        return None
    return sum(n * value for n, value in parts) / sum(n for n, _ in parts)


def pool(tables: list[tuple[str, dict]]) -> dict:
    """One table from several run at one protocol: rows of the same benchmark, scenario, strategy,
    iterations, tasks and strategy settings become one row over all their seeds (a seed in two
    tables, or tables of different padding, class pairing or precision, are refused)."""
    first_path, first = tables[0]
    protocol = {field: first.get(field, default) for field, default in PROTOCOL_DEFAULTS.items()}
    for path, figures in tables[1:]:
        for field, default in PROTOCOL_DEFAULTS.items():
            if figures.get(field, default) != protocol[field]:
                raise ValueError(f"{path} has {field} {figures.get(field, default)!r}, {first_path} has "
                                 f"{protocol[field]!r}: runs of different protocols are not pooled")
    groups: dict[tuple, list[dict]] = {}
    for path, figures in tables:
        for row in figures["rows"]:
            if "seeds" not in row:
                raise ValueError(f"a {row['strategy']} row of {path} does not name its seeds")
            # completed with today's defaults: a setting added since a table was written reads as its
            # default; the row's settings are the resolved ones its run recorded (replay's size and
            # per_class both), so they are not checked as settings to run with
            settings = build_strategy(row["strategy"], row.get("strategy_params") or {}).params()
            key = (row.get("benchmark"), row["scenario"], row["strategy"], row.get("iters"), row.get("n_tasks"),
                   json.dumps(settings, sort_keys=True))
            groups.setdefault(key, []).append({**row, "strategy_params": settings})
    rows = []
    for parts in groups.values():
        runs = sorted((seed, acc, matrix) for row in parts for seed, acc, matrix in
                      zip(row["seeds"], row["average_accuracy_pct"], row.get("accuracy_matrices") or
                          [None] * len(row["seeds"])))
        seeds = [seed for seed, _, _ in runs]
        repeated = sorted({seed for seed in seeds if seeds.count(seed) > 1})
        if repeated:
            raise ValueError(f"seed {repeated[0]} of {parts[0]['strategy']} ({parts[0]['scenario']}-IL) is in more "
                             "than one table")
        accs = [acc for _, acc, _ in runs]
        stats, paper = spread(accs), parts[0].get("published_pct")
        rows.append({**parts[0], "seeds": seeds, "average_accuracy_pct": accs, **stats,
                     "difference_pp": None if paper is None else stats["mean_pct"] - paper,
                     **{name: weighted_mean([(len(row["seeds"]), row.get(name)) for row in parts])
                        for name in ("forgetting", "backward_transfer", "forward_transfer", "train_time_s")},
                     "wall_time_s": weighted_mean([(len(row["seeds"]), own_wall_time(row)) for row in parts]),
                     "accuracy_matrices": [matrix for _, _, matrix in runs]})
    # seeds run on different devices pool their accuracies, not their times: a mean of CPU and GPU
    # seconds describes neither
    devices = sorted({str(figures.get("device", "cpu")) for _, figures in tables})
    if len(devices) > 1:
        for row in rows:
            row["wall_time_s"] = row["train_time_s"] = None
    # each row's own settings say what it ran with; the label only when every table shares it
    strengths = {figures.get("strengths") for _, figures in tables}
    return {"rows": rows, **protocol, "strengths": strengths.pop() if len(strengths) == 1 else "mixed",
            "device": devices[0] if len(devices) == 1 else "mixed: " + ", ".join(devices),
            "pooled_from": [path for path, _ in tables]}


def print_table(paths: list[str], json_out: str | None = None) -> int:
    """Print the rows of one table written before, or of several pooled (and with ``json_out``, write them)."""
    tables = []
    for path in paths:
        try:
            tables.append((path, read_figures(path)))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            print(f"error: {path} is not a table of this benchmark's figures ({type(exc).__name__}: {exc})",
                  file=sys.stderr)
            return 2
    try:
        figures = pool(tables) if len(tables) > 1 else tables[0][1]
    except (ValueError, KeyError, TypeError, NeuroAIKitError) as exc:
        print(f"error: the tables cannot be pooled: {exc}", file=sys.stderr)
        return 2
    if len(tables) > 1:
        print(f"pooled from {len(tables)} tables: {', '.join(paths)}")
    print(HEADER)
    for row in figures["rows"]:
        print_row(row)
    print(PUBLISHED_SOURCE)
    if json_out:
        write_text(json_out, json.dumps({**figures, "published_source": PUBLISHED_SOURCE}, indent=1))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--benchmark", default="split-mnist", choices=("split-mnist", "permuted-mnist"))
    parser.add_argument("--scenarios", nargs="+", default=["task", "domain", "class"])
    parser.add_argument("--strategies", nargs="+", default=None, help="default: every registered strategy")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--iters", type=int, default=None, help="iterations per task (default: the protocol's)")
    parser.add_argument("--tasks", type=int, default=None, help="number of tasks (default: the benchmark's)")
    parser.add_argument("--pad", type=int, default=0,
                        help="zero pixels around each image (2: the authors' 32 x 32 MNIST); default 0")
    parser.add_argument("--random-classes", action="store_true",
                        help="split benchmarks: each seed pairs the classes at random (the 2019 code's runs)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="a strategy setting, over --strengths, for every run whose strategy has it "
                             "(repeatable; e.g. --set exact_count=true for xdg)")
    parser.add_argument("--quick", action="store_true", help="200 iterations per task, one seed")
    parser.add_argument("--strengths", choices=("toolkit", "2019"), default="toolkit",
                        help="regularisation strengths: the toolkit's defaults, or those behind the published table")
    parser.add_argument("--precision", choices=("32", "bf16-mixed"), default="32",
                        help="training steps in float32 (the published protocol) or under bfloat16 autocast")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads per run")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    parser.add_argument("--workers", type=int, default=1,
                        help="runs in parallel, through neuroaikit.sweep on a local Ray (default 1: in this process)")
    parser.add_argument("--out", help="--workers > 1: the sweep folder (kept; rerunning resumes); default temporary")
    parser.add_argument("--json", help="write the figures here (rewritten after every run)")
    parser.add_argument("--table", metavar="FILE", nargs="+",
                        help="print the table of figures written before (a --json file or a results page's data "
                             "JSON) and run nothing; several: their seeds pooled, row by row (with --json, written)")
    args = parser.parse_args(argv)
    if args.table:
        # the options given at all, at their default value too: parsed again with a marker as
        # every default (not a string, which argparse would convert with the option's type)
        unset = object()
        parser.set_defaults(**{action.dest: unset for action in parser._actions if action.dest != "help"})
        ignored = [f"--{dest.replace('_', '-')}" for dest, value in vars(parser.parse_args(argv)).items()
                   if dest not in ("table", "json") and value is not unset]
        if ignored:  # a reprint runs nothing, so a run option given with it would silently do nothing
            print(f"error: --table runs nothing; {', '.join(ignored)} would have no effect", file=sys.stderr)
            return 2
        return print_table(args.table, args.json)
    torch.set_num_threads(args.threads)
    if args.quick:
        args.iters, args.seeds = args.iters or 200, args.seeds[:1]
    strategies = args.strategies or available_strategies()
    jobs = [(scenario, strategy, seed) for scenario in args.scenarios for strategy in strategies
            if strategy != "xdg" or scenario == "task" for seed in args.seeds]
    try:
        args.set_text = parse_assignments(args.set, "--set", keep_strings=True)
        args.settings = parse_assignments(args.set, "--set")
        check_settings(args.settings, strategies)
        for scenario, strategy, seed in jobs:  # every run's settings, checked before the first one starts
            config = config_of(args, scenario, strategy, seed)
            make_strategy(strategy, config.strategy_params, config.scenario, config.task_free)
        for split in ("train", "test"):
            find_dataset_folder("mnist", args.data_dir, split)
        return report(args, jobs)
    except NeuroAIKitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
