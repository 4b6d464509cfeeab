"""Throughput of the workflows on 1 and 2 processes, and against the code before the workflow core.

For each workload the same command runs (a) on one process, (b) on two under ``torchrun``
(gloo on CPUs, one thread per process), and (c) on one process with the code of the revision
before the workflow core (``--old-rev``, unpacked from git into a temporary folder), all in
this one run, so machine load hits them alike:

- ``train``: a small CNN on MNIST (``--train-images``; the digits data set when MNIST is absent);
  samples/s = training images x epochs / training time;
- ``twin fit``: a synthetic recording (36x64 images); samples/s = train trials x epochs / fit time;
- ``evaluate``: the robustness protocol (``--quick`` settings) on the trained CNN;
  samples/s = attacked images / protocol time.

Each run reports its own compute time (startup excluded); the settings take turns, ``--repeats``
times, and each keeps its best (a busy machine only ever slows a run down). Printed per
workload: samples/s for each setting, the 2-process scaling efficiency (speed-up / 2) and the ratio of today's
one-process path to the old one (1.0 = no regression). On a GPU machine (``--device cuda``)
the same table is made on the GPU (two processes need two GPUs).

    python benchmarks/scaling.py --data-dir ../shared/data            # ~25 min on 2 CPU cores
    python benchmarks/scaling.py --quick --repeats 1                   # ~6 min, smaller workloads
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from neuroaikit.io import write_text

REPO = Path(__file__).resolve().parents[1]
#: the last revision before the workflow core (run folders, execution layer, configs, results)
OLD_REV = "8327899"


def _torchrun() -> str:
    found = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if found is None:
        raise SystemExit("torchrun not found next to this Python")
    return found


def _env(extra_path: Path | None = None) -> dict:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"  # the old code has no --threads for every command: one thread for all settings
    if extra_path is not None:
        env["PYTHONPATH"] = str(extra_path)
    return env


def _run(command: list[str], env: dict, cwd: Path) -> None:
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=3600)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")


def _old_tree(rev: str, into: Path) -> Path | None:
    """The package at ``rev``, unpacked with ``git archive`` (``None`` without git history)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "src"], capture_output=True)
    if archive.returncode != 0:
        print(f"(no old revision {rev} in this clone: the regression column is skipped)")
        return None
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "src"


def _metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def measure(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="scaling-"))
    old_src = _old_tree(args.old_rev, work) if not args.no_old else None
    python, torchrun = sys.executable, _torchrun()
    device = args.device
    have_mnist = args.data_dir and (Path(args.data_dir) / "mnist").exists()
    dataset = ["--dataset", "mnist", "--data-dir", str(Path(args.data_dir).resolve()), "--train-subset",
               str(args.train_images), "--test-subset", "500"] if have_mnist else ["--dataset", "digits"]
    train = ["train", *dataset, "--epochs", str(args.epochs), "--batch-size", "128", "--noise",
             "relu2=gaussian:0.3", "--eval-draws", "3", "--no-report"]
    twin = ["twin", "fit", "synthetic", "--synthetic", f"n_neurons={args.neurons}", "--synthetic",
            "image_shape=[36,64]", "--synthetic", f"n_train={args.twin_trials}", "--synthetic", "n_validation=200",
            "--synthetic", "n_test_images=10", "--synthetic", "repeats=2", "--max-epochs", str(args.twin_epochs),
            "--patience", "100", "--no-baselines", "--no-report"]
    evaluate = ["--quick", "--n-examples", str(args.attack_images)]
    new = ["--device", device, "--threads", "1", "--quiet"]
    results: dict = {"device": device, "old_rev": args.old_rev if old_src else None, "workloads": {}}

    def one(label: str, command: list[str], out: Path, procs: int = 1, old: bool = False) -> Path:
        prefix = [python, "-m", "neuroaikit.cli.main"] if old else (
            [torchrun, "--standalone", "--nproc_per_node", str(procs), "-m", "neuroaikit"] if procs > 1
            else [python, "-m", "neuroaikit"])
        started = time.time()
        _run([*prefix, *command, *([] if old else new), "--out", str(out)] if command[0] != "evaluate"
             else [*prefix, *command, *([] if old else new)], _env(old_src if old else None), work)
        print(f"  {label}: done in {time.time() - started:.0f} s wall", flush=True)
        return out

    settings = [("new, 1 process", 1, False), ("new, 2 processes", 2, False), ("old, 1 process", 1, True)]
    settings = [s for s in settings if not (s[2] and old_src is None)]
    best: dict = {"train": {}, "evaluate": {}, "twin fit": {}}

    def keep(workload: str, label: str, value: float) -> None:
        best[workload][label] = max(value, best[workload].get(label, 0.0))

    for repeat in range(args.repeats):
        for label, procs, old in settings:
            tag = f"{procs}-{int(old)}-{repeat}"
            run = one(f"train {label}", train, work / f"train-{tag}", procs, old)
            m = _metrics(run)
            keep("train", label, m["n_train"] * len(m["history"]) / m["train_time_s"])
        for label, procs, old in settings:  # all on the first one-process model
            run = work / f"eval-{procs}-{int(old)}-{repeat}"
            shutil.copytree(work / "train-1-0-0", run)
            one(f"evaluate {label}", ["evaluate", str(run), *evaluate], run, procs, old)
            r = json.loads((run / "results" / "robustness.json").read_text())
            keep("evaluate", label, r["n_examples"] / r["seconds"])
        for label, procs, old in settings:
            run = one(f"twin fit {label}", twin + (["--threads", "1"] if old else []), work / f"twin-{procs}-{int(old)}-"
                      f"{repeat}", procs, old)
            m = _metrics(run)
            keep("twin fit", label, args.twin_trials * m["epochs"] / m["fit_seconds"])
    results["workloads"] = best
    shutil.rmtree(work, ignore_errors=True)
    return results


def report(results: dict) -> None:
    print(f"\nsamples/s on {results['device']} (one torch thread per process); old = revision {results['old_rev']}")
    print(f"{'workload':<10} {'1 process':>10} {'2 processes':>12} {'efficiency':>11} {'old 1 proc':>11} {'new/old':>8}")
    for name, rows in results["workloads"].items():
        one, two, old = rows.get("new, 1 process"), rows.get("new, 2 processes"), rows.get("old, 1 process")
        efficiency = two / one / 2 if one and two else None
        ratio = one / old if one and old else None
        rows["efficiency"], rows["new_over_old"] = efficiency, ratio
        print(f"{name:<10} {one:>10.1f} {two:>12.1f} {efficiency:>11.2f} "
              + (f"{old:>11.1f} {ratio:>8.2f}" if old else f"{'-':>11} {'-':>8}"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", help="folder holding mnist/ (default: ../shared/data when present)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--quick", action="store_true", help="smaller workloads (about two minutes)")
    p.add_argument("--old-rev", default=OLD_REV, help=f"the revision to compare with (default {OLD_REV})")
    p.add_argument("--no-old", action="store_true", help="skip the comparison with the old revision")
    p.add_argument("--repeats", type=int, default=2, help="runs per setting, taking turns; the best counts (default 2)")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    if args.data_dir is None and (REPO.parent / "shared" / "data").exists():
        args.data_dir = str(REPO.parent / "shared" / "data")
    args.train_images = 2000 if args.quick else 12000
    args.epochs = 1 if args.quick else 2
    args.neurons = 200 if args.quick else 1000
    args.twin_trials = 600 if args.quick else 2000
    args.twin_epochs = 2 if args.quick else 3
    args.attack_images = 32 if args.quick else 128
    results = measure(args)
    report(results)
    if args.json:
        write_text(args.json, json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
