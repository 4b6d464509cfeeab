"""Spiking CNN trained with BPTT on MNIST / Fashion-MNIST, and ANN-to-SNN conversion.

Prints test accuracy and training time on this machine, and writes run folders (``--runs DIR``;
default: a temporary folder) that ``neuroaikit energy`` can compare. The networks train through
``neuroaikit.training.train`` (the loop of ``neuroaikit train``: Adam, one-cycle schedule, a
checkpoint per epoch, test accuracy after every epoch), so ``--device``, ``--threads`` and
``--precision`` work as they do there.

    python benchmarks/snn_mnist.py --data-dir ../shared/data                # everything
    python benchmarks/snn_mnist.py --data-dir ../shared/data --quick        # small subsets, ~1 min
    python benchmarks/snn_mnist.py --data-dir ../shared/data --part convert # only the conversion

Targets (issue 6): MNIST T <= 8 >= 98.5 %, Fashion-MNIST >= 88 %, conversion gap <= 1 point.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from neuroaikit.cli.options import positive_int
from neuroaikit.data import find_dataset_folder
from neuroaikit.errors import NeuroAIKitError
from neuroaikit.execution import Execution, ExecutionConfig
from neuroaikit.models import model_spec
from neuroaikit.progress import default_progress
from neuroaikit.runs import RunWriter, check_replaceable
from neuroaikit.spiking import convert_cnn
from neuroaikit.training import TrainConfig, TrainingResult, train
from neuroaikit.io import write_text


#: the run folders' names under --runs
SNN_RUN, ANN_RUN, CONVERTED_RUN = "snn-{dataset}-T{T}", "ann-mnist", "converted-mnist-T{T}"


def load(name: str, split: str, data_dir: str):
    from neuroaikit.data import load_dataset

    return load_dataset(name, split, data_dir=data_dir)


@torch.no_grad()
def accuracy(model, images, labels, device, batch_size=500) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        logits = model(images[start:start + batch_size].to(device))
        correct += (logits.argmax(1).cpu() == labels[start:start + batch_size]).sum().item()
    return correct / len(images)


def execution(args) -> ExecutionConfig:
    given = {"device": args.device, "threads": args.threads, "precision": args.precision}
    return ExecutionConfig(**{k: v for k, v in given.items() if v is not None})


def train_config(args, dataset: str, model: str, model_kwargs: dict, epochs: int, lr: float,
                 batch_size: int) -> TrainConfig:
    """The benchmark's protocol for ``train``: Adam with a one-cycle schedule; the networks have
    no noise, so one evaluation pass is the deployed rule."""
    return TrainConfig(dataset=dataset, data_dir=args.data_dir, model=model, model_kwargs=model_kwargs,
                       epochs=epochs, batch_size=batch_size, optimizer="adam", lr=lr, schedule="onecycle",
                       seed=args.seed, train_subset=args.train_subset, test_subset=args.test_subset,
                       eval_rule="mean", eval_draws=1, execution=execution(args))


def planned(args) -> tuple[list[str], list[str]]:
    """The datasets the chosen parts read and the run folders they write (names under ``--runs``)."""
    datasets, runs = [], []
    for part, dataset in (("mnist", "mnist"), ("fashion", "fashion-mnist")):
        if args.part in ("all", part):
            datasets.append(dataset)
            runs.append(SNN_RUN.format(dataset=dataset, T=args.T))
    if args.part in ("all", "convert"):
        datasets.append("mnist")
        runs += [ANN_RUN, CONVERTED_RUN.format(T=max(args.convert_T))]
    return list(dict.fromkeys(datasets)), runs


def snn_part(dataset, args, out: Path):
    kwargs = {"T": args.T, "channels": list(args.channels), "hidden": args.hidden, "tau_mem": args.tau_mem}
    config = train_config(args, dataset, "snn_cnn", kwargs, args.epochs, args.lr, args.batch_size)
    print(f"[snn_cnn on {dataset}] T={args.T}, {args.epochs} epochs, precision {config.execution.precision}")
    run = train(config, out / SNN_RUN.format(dataset=dataset, T=args.T), overwrite=args.overwrite, progress=default_progress())
    result = TrainingResult.load(run)
    acc = result.test_accuracy["single"]
    print(f"  test accuracy {acc:.4f} on {result.n_test} images (train time {result.train_time_s:.0f} s on "
          f"{result.execution.get('device')}); run folder {run.path}")
    return {"dataset": dataset, "T": args.T, "accuracy": acc, "train_time_s": result.train_time_s,
            "epochs": args.epochs, "n_train": result.n_train, "n_test": result.n_test,
            "device": result.execution.get("device"), "precision": result.execution.get("precision")}


def convert_part(args, out: Path):
    shape = {"in_channels": 1, "image_size": 28, "n_classes": 10}
    config = train_config(args, "mnist", "cnn", {}, args.ann_epochs, 1e-3, 128)
    print(f"[ANN-to-SNN] SmallCNN on mnist: {args.ann_epochs} epochs")
    ann_run = train(config, out / ANN_RUN, overwrite=args.overwrite, progress=default_progress())
    ann_result = TrainingResult.load(ann_run)
    ann_acc = ann_result.test_accuracy["single"]
    print(f"  ANN test accuracy {ann_acc:.4f} (train time {ann_result.train_time_s:.0f} s)")
    ann = ann_run.load_model()
    train_set, test_set = load("mnist", "train", args.data_dir), load("mnist", "test", args.data_dir)
    n_train = min(args.train_subset or len(train_set), len(train_set))
    n_test = min(args.test_subset or len(test_set), len(test_set))
    xtr = train_set.images[:n_train]
    xte, yte = test_set.images[:n_test], test_set.labels[:n_test]
    rows = []
    with Execution(config.execution) as ex:
        for T in args.convert_T:
            for pct in args.percentiles:
                snn = convert_cnn(ann, xtr[:500], T=T, percentile=pct).to(ex.device)
                t0 = time.perf_counter()
                acc = accuracy(snn, xte, yte, ex.device, batch_size=250)
                took = time.perf_counter() - t0
                rows.append({"T": T, "percentile": pct, "snn_accuracy": acc, "ann_accuracy": ann_acc,
                             "gap_points": 100 * (ann_acc - acc), "eval_time_s": took, "device": str(ex.device)})
                print(f"  converted T={T:4d} percentile {pct}: SNN {acc:.4f}, gap {100 * (ann_acc - acc):+.2f} "
                      f"points ({took:.0f} s for {n_test} images on {ex.device})")
                if T == max(args.convert_T) and pct == args.percentiles[0]:
                    spec = model_spec("snn_converted", {**shape, "T": T, "scales": snn.scales})
                    record = {"dataset": "mnist", "data_dir": args.data_dir, "model": "snn_converted", "T": T,
                              "percentile": pct, "ann_run": str(ann_run.path)}
                    writer = RunWriter(out / CONVERTED_RUN.format(T=T), record, overwrite=args.overwrite)
                    with writer:
                        writer.run.save_model(snn, spec)
                        writer.run.save_metrics({"dataset": "mnist", "model": "snn_converted", "n_test": n_test,
                                                 "test_accuracy": {"single": acc}, "ann_accuracy": ann_acc, "T": T,
                                                 "execution": ex.describe()})
                        print(f"  run folder: {writer.commit().path}")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--quick", action="store_true", help="2,000 train / 1,000 test images, 1 epoch")
    parser.add_argument("--part", choices=["all", "mnist", "fashion", "convert"], default="all")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--ann-epochs", type=int, default=2)
    parser.add_argument("--T", type=int, default=6)
    parser.add_argument("--tau-mem", type=float, default=2.0)
    parser.add_argument("--channels", type=int, nargs=2, default=(16, 32))
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--convert-T", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--percentiles", type=float, nargs="+", default=[99.9, 100.0])
    parser.add_argument("--train-subset", type=int)
    parser.add_argument("--test-subset", type=int)
    parser.add_argument("--eval-each-epoch", action="store_true",
                        help="kept for old command lines: the test accuracy is now recorded after every epoch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", help="write the run folders here (for `neuroaikit energy`; default: a temporary "
                                       "folder, removed at the end)")
    parser.add_argument("--overwrite", action="store_true", help="replace finished runs in --runs")
    parser.add_argument("--json", help="write the figures to this JSON file")
    parser.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps (default auto)")
    parser.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's choice; use 1 on a busy shared machine)")
    parser.add_argument("--precision", choices=["32", "bf16-mixed", "16-mixed"],
                        help="training precision (default 32; bf16-mixed trains these networks: its surrogate gradients agree with float32's)")
    args = parser.parse_args(argv)
    if args.quick:
        args.train_subset, args.test_subset = args.train_subset or 2000, args.test_subset or 1000
        args.epochs, args.ann_epochs, args.convert_T = 1, 1, [32]
    datasets, runs = planned(args)
    try:  # the data and the run folders checked before the first network trains
        for dataset in datasets:
            for split in ("train", "test"):
                find_dataset_folder(dataset, args.data_dir, split)
        for name in runs if args.runs else []:
            check_replaceable(Path(args.runs) / name, args.overwrite)
        results = measure(args)
    except NeuroAIKitError as error:
        parser.error(str(error))
    if args.json:
        write_text(args.json, json.dumps(results, indent=2))


def measure(args) -> dict:
    """Train (and convert) the networks of the chosen parts; their figures, by part."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="snn-mnist-") as scratch:
        out = Path(args.runs) if args.runs else Path(scratch)
        if args.part in ("all", "mnist"):
            results["mnist"] = snn_part("mnist", args, out)
        if args.part in ("all", "fashion"):
            results["fashion-mnist"] = snn_part("fashion-mnist", args, out)
        if args.part in ("all", "convert"):
            results["conversion"] = convert_part(args, out)
    return results


if __name__ == "__main__":
    main()
