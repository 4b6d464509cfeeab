"""Spiking CNN trained with BPTT on MNIST / Fashion-MNIST, and ANN-to-SNN conversion.

Prints test accuracy and training time on this machine's CPU cores, and writes run folders
(``--runs DIR``) that ``neuroaikit energy`` can compare.

    python benchmarks/snn_mnist.py --data-dir ../shared/data                # everything
    python benchmarks/snn_mnist.py --data-dir ../shared/data --quick        # small subsets, ~1 min
    python benchmarks/snn_mnist.py --data-dir ../shared/data --part convert # only the conversion

Targets (issue 6): MNIST T <= 8 >= 98.5 %, Fashion-MNIST >= 88 %, conversion gap <= 1 point.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from neuroaikit.models import SmallCNN, build_model, model_spec
from neuroaikit.runs import Run, commit_run, partial_dir
from neuroaikit.spiking import convert_cnn


def load(name: str, split: str, data_dir: str):
    from neuroaikit.data import load_dataset

    return load_dataset(name, split, data_dir=data_dir)


@torch.no_grad()
def accuracy(model, images, labels, batch_size=500) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        correct += (model(images[start:start + batch_size]).argmax(1) == labels[start:start + batch_size]).sum().item()
    return correct / len(images)


def fit(model, images, labels, epochs, lr, batch_size, seed, log, test=None):
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * -(-len(images) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    elapsed, history = 0.0, []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(len(images), generator=gen)
        total = 0.0
        for start in range(0, len(images), batch_size):
            idx = order[start:start + batch_size]
            loss = F.cross_entropy(model(images[idx]), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        elapsed += time.perf_counter() - t0
        record = {"epoch": epoch + 1, "loss": total / len(images), "elapsed_s": elapsed}
        if test is not None:
            record["test_acc"] = accuracy(model, *test)
        history.append(record)
        log(f"  epoch {epoch + 1}: " + ", ".join(f"{k} {v:.4f}" for k, v in record.items() if k != "epoch"))
    return elapsed, history


def save_run(out: Path | None, name: str, model, spec: dict, metrics: dict) -> None:
    if out is None:
        return
    final = out / name
    work = Run(partial_dir(final))
    work.path.mkdir(parents=True, exist_ok=True)
    work.save_model(model, spec)
    work.save_metrics(metrics)
    commit_run(work.path, final)
    print(f"  run folder: {final}")


def snn_part(dataset, args, out):
    train, test = load(dataset, "train", args.data_dir), load(dataset, "test", args.data_dir)
    n_train = args.train_subset or len(train.images)
    n_test = args.test_subset or len(test.images)
    xtr, ytr = train.images[:n_train], train.labels[:n_train]
    xte, yte = test.images[:n_test], test.labels[:n_test]
    kwargs = {"in_channels": 1, "image_size": 28, "n_classes": 10, "T": args.T, "channels": list(args.channels),
              "hidden": args.hidden, "tau_mem": args.tau_mem}
    torch.manual_seed(args.seed)
    model = build_model("snn_cnn", **kwargs)
    print(f"[snn_cnn on {dataset}] T={args.T}, {n_train} train / {n_test} test, {args.epochs} epochs, "
          f"{torch.get_num_threads()} threads")
    elapsed, history = fit(model, xtr, ytr, args.epochs, args.lr, args.batch_size, args.seed, print,
                           (xte, yte) if args.eval_each_epoch else None)
    acc = accuracy(model, xte, yte)
    print(f"  test accuracy {acc:.4f}  (train time {elapsed:.0f} s)")
    metrics = {"dataset": dataset, "model": "snn_cnn", "n_train": n_train, "n_test": n_test,
               "test_accuracy": {"single": acc}, "history": history, "train_time_s": elapsed, "T": args.T}
    save_run(out, f"snn-{dataset}-T{args.T}", model, model_spec("snn_cnn", kwargs), metrics)
    return {"dataset": dataset, "T": args.T, "accuracy": acc, "train_time_s": elapsed, "epochs": args.epochs}


def convert_part(args, out):
    train, test = load("mnist", "train", args.data_dir), load("mnist", "test", args.data_dir)
    n_train = args.train_subset or len(train.images)
    n_test = args.test_subset or len(test.images)
    xtr, ytr = train.images[:n_train], train.labels[:n_train]
    xte, yte = test.images[:n_test], test.labels[:n_test]
    torch.manual_seed(args.seed)
    ann = SmallCNN()
    print(f"[ANN-to-SNN] SmallCNN on mnist: {n_train} train / {n_test} test, {args.ann_epochs} epochs")
    elapsed, history = fit(ann, xtr, ytr, args.ann_epochs, 1e-3, 128, args.seed, print)
    ann_acc = accuracy(ann, xte, yte)
    print(f"  ANN test accuracy {ann_acc:.4f} (train time {elapsed:.0f} s)")
    shape = {"in_channels": 1, "image_size": 28, "n_classes": 10}
    save_run(out, "ann-mnist", ann, model_spec("cnn", shape),
             {"dataset": "mnist", "model": "cnn", "n_train": n_train, "n_test": n_test,
              "test_accuracy": {"single": ann_acc}, "history": history, "train_time_s": elapsed})
    rows = []
    for T in args.convert_T:
        for pct in args.percentiles:
            snn = convert_cnn(ann, xtr[:500], T=T, percentile=pct)
            t0 = time.perf_counter()
            acc = accuracy(snn, xte, yte, batch_size=250)
            took = time.perf_counter() - t0
            rows.append({"T": T, "percentile": pct, "snn_accuracy": acc, "ann_accuracy": ann_acc,
                         "gap_points": 100 * (ann_acc - acc), "eval_time_s": took})
            print(f"  converted T={T:4d} percentile {pct}: SNN {acc:.4f}, gap {100 * (ann_acc - acc):+.2f} points "
                  f"({took:.0f} s for {n_test} images)")
            if T == max(args.convert_T) and pct == args.percentiles[0]:
                spec = model_spec("snn_converted", {**shape, "T": T, "scales": snn.scales})
                save_run(out, f"converted-mnist-T{T}", snn, spec,
                         {"dataset": "mnist", "model": "snn_converted", "n_test": n_test,
                          "test_accuracy": {"single": acc}, "ann_accuracy": ann_acc, "T": T})
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
    parser.add_argument("--eval-each-epoch", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", help="write run folders here (for `neuroaikit energy`)")
    parser.add_argument("--json", help="write the figures to this JSON file")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice; use 1 on a busy shared machine)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.train_subset, args.test_subset = args.train_subset or 2000, args.test_subset or 1000
        args.epochs, args.ann_epochs, args.convert_T = 1, 1, [32]
    out = Path(args.runs) if args.runs else None
    results = {}
    if args.part in ("all", "mnist"):
        results["mnist"] = snn_part("mnist", args, out)
    if args.part in ("all", "fashion"):
        results["fashion-mnist"] = snn_part("fashion-mnist", args, out)
    if args.part in ("all", "convert"):
        results["conversion"] = convert_part(args, out)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
