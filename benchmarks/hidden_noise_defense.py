"""Does noise in a hidden layer defend against feature-space attacks better than noise at the
input? A reproduction of the seed claim of Ukita & Ohki (Neural Networks 167, 2023), made
honest: the attack is run non-adaptively (as in the paper: the noise is not in the loop) and
adaptively (EOT through the noise), and APGD with EOT is run as well.

For each dataset, a deterministic SmallCNN (and, for ``v1``, a noise-free V1Net) is trained;
noise is then added at test time only (as in the paper, no retraining) at several levels:

- ``input``: Gaussian noise on the pixels (the paper's control);
- ``hidden``: Gaussian noise after ``--layer`` (default ``relu2``), clipped at 0 (the paper's defense);
- ``hidden-all``: Gaussian noise after relu1, relu2 and relu3, clipped at 0;
- ``poisson``: Poisson-like noise (variance = gain x activity) after ``--layer``;
- ``v1``: a V1 front-end model (``v1net``: fixed Gabor bank, then the SmallCNN as back-end), trained
  noise-free like the CNN, with Poisson-like noise added after its V1 units (``v1_noise``) at test
  time, as VOneNet's stochasticity; its feature-space attack matches the V1 units. Its own
  deterministic row is ``v1-deterministic``.

A level is relative: sigma (or the Poisson gain) = level x the standard deviation of the
pixels / of that layer's activations on clean test images.

The deployed rule is a majority vote over ``--draws`` draws (the paper votes over 100).
Feature-space attack: x' close to x at ``--layer`` (relative squared distance), misclassified,
low total variation, unrestricted in pixel space (:class:`neuroaikit.attacks.FeatureSpace`).

Columns: clean accuracy (vote); "FS non-adaptive": fraction of attacked images whose x'
(crafted on the noise-free model) the noisy vote gets wrong; "FS restored": among the pairs
that fooled the noise-free model, the fraction the noisy vote puts back to the clean
prediction (the paper's metric); "FS adaptive": the same attack with EOT through the noise;
"APGD-EOT": per-example worst case of APGD-CE and APGD-DLR with EOT at ``--eps``, robust only
if the vote is right in a majority of 5 fresh votes. Compare noise types at matched clean
accuracy: the figure plots attack success against clean accuracy.

The models train, and are attacked, on ``--device`` with ``--threads`` (default one thread), in
this one process. Everything is written under ``--out``: the trained models' run folders, ``table.md``,
``results.json`` and the figure. An ``--out`` holding a finished comparison or run folder from
before is refused, before anything trains, unless ``--overwrite`` is given.

    python benchmarks/hidden_noise_defense.py --data-dir ../shared/data --quick
    python benchmarks/hidden_noise_defense.py --data-dir ../shared/data --datasets mnist fashion-mnist cifar10
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from neuroaikit.attacks import APGD, FeatureSpace
from neuroaikit.attacks.evaluate import majority_correct
from neuroaikit.cli.options import add_execution_arguments, execution_from_args, positive_int
from neuroaikit.data import dataset_info, find_dataset_folder, load_dataset
from neuroaikit.errors import ConfigError
from neuroaikit.execution import Execution, refuse_torchrun
from neuroaikit.io import write_json, write_text
from neuroaikit.noise import InferenceRule, accuracy, inject_noise
from neuroaikit.progress import silent
from neuroaikit.runs import check_replaceable
from neuroaikit.training import TrainConfig, train

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _cli beside this file, also when a test imports it by path
from _cli import add_output_options, parse_and_run, quick_defaults  # noqa: E402

# noise levels relative to the spread of what the noise is added to: sigma = level x the standard
# deviation of the pixels / of the layer's activations on clean test images (so that levels of
# input and hidden noise are comparable; for Poisson-like noise, gain = level x that std)
LEVELS = {
    "input": [0.25, 0.5, 1.0, 1.5],
    "hidden": [0.25, 0.5, 1.0, 1.5],
    "hidden-all": [0.25, 0.5, 1.0, 1.5],
    "poisson": [0.25, 0.5, 1.0, 1.5],
    "v1": [0.25, 0.5, 1.0, 1.5],
}
QUICK_LEVELS = {"input": [0.5, 1.0], "hidden": [0.5, 1.0], "hidden-all": [0.5, 1.0], "poisson": [0.5, 1.0], "v1": [0.5, 1.0]}
V1_LAYER = "v1_noise"  # V1Net's noise site: the (gain-scaled) V1 responses
RESULTS = ("table.md", "results.json", "fs_success_vs_clean.png")  # the comparison's files in --out
DEFAULT_EPS = {"mnist": 0.1, "fashion-mnist": 0.1, "cifar10": 2 / 255, "digits": 0.1}


def activation_std(model, images, names) -> dict:
    """Standard deviation of each named layer's output (and of the pixels, "input")."""
    found = {"input": images.std().item()}
    modules = dict(model.named_modules())
    handles = [modules[n].register_forward_hook(lambda m, i, o, n=n: found.__setitem__(n, o.std().item())) for n in names]
    with torch.no_grad():
        model(images)
    for h in handles:
        h.remove()
    return found


def noise_sites(variant: str, level: float, layer: str, std: dict) -> dict:
    if variant == "input":
        return {"input": {"kind": "gaussian", "sigma": level * std["input"]}}
    if variant == "hidden":
        return {layer: {"kind": "gaussian", "sigma": level * std[layer], "rectify": True}}
    if variant == "hidden-all":
        return {n: {"kind": "gaussian", "sigma": level * std[n], "rectify": True} for n in ("relu1", "relu2", "relu3")}
    if variant == "v1":
        return {V1_LAYER: {"kind": "poisson", "gain": level * std[V1_LAYER], "floor": 0.0, "rectify": True}}
    return {layer: {"kind": "poisson", "gain": level * std[layer], "floor": 0.0, "rectify": True}}


def run_name(dataset: str, model_name: str) -> str:
    return f"{dataset}-{model_name}"


def check_plan(args, out: Path, datasets, levels: dict) -> None:
    """Fail on a dataset without its files, and, unless ``--overwrite``, on an ``out`` holding
    the comparison's files or the run folders this job would train into."""
    for dataset in datasets:
        if dataset_info(dataset).needs_files:
            for split in ("train", "test"):
                find_dataset_folder(dataset, args.data_dir, split)
    models = (["cnn"] if any(variant != "v1" for variant in levels) else []) + (["v1net"] if "v1" in levels else [])
    for dataset in datasets:
        for model_name in models:
            check_replaceable(out / run_name(dataset, model_name), args.overwrite)
    found = [name for name in RESULTS if (out / name).exists()]
    if found and not args.overwrite:
        raise ConfigError(f"{out} holds a finished comparison ({', '.join(found)}); pass --overwrite to replace it, "
                          "or choose another --out")


class Base:
    """A noise-free trained model, the attacked test images it classifies correctly, and the
    non-adaptive feature-space examples crafted on it at ``layer``."""

    def __init__(self, dataset, model_name, model_kwargs, layer, args, out: Path, ex: Execution):
        self.layer = layer
        run = train(TrainConfig(dataset=dataset, data_dir=args.data_dir, model=model_name, model_kwargs=model_kwargs,
                                epochs=args.epochs, train_subset=args.train_subset,
                                test_subset=args.n_test, eval_rule="single", eval_draws=1,
                                augment="crop-flip" if dataset == "cifar10" else "none", execution=ex.config),
                    out / run_name(dataset, model_name), overwrite=args.overwrite, progress=silent())
        # the attacks run here, in this process: model and images on the execution's device
        self.model = run.load_model(map_location=ex.device).to(ex.device)
        test = load_dataset(dataset, "test", data_dir=args.data_dir)
        self.x_test = test.images[: args.n_test].to(ex.device)
        self.y_test = test.labels[: args.n_test].to(ex.device)
        with torch.no_grad():
            correct = self.model(self.x_test).argmax(1) == self.y_test
        idx = correct.nonzero().squeeze(1)[: args.n_attack]
        self.xa, self.ya = self.x_test[idx], self.y_test[idx]
        # non-adaptive, as in the paper: crafted on the noise-free model
        self.fs_x = FeatureSpace(self.model, layer=layer, steps=args.fs_steps, lr=0.02)(self.xa, self.ya)
        with torch.no_grad():
            self.pred = self.model(self.xa).argmax(1)
            self.fs_fooled = self.model(self.fs_x).argmax(1) != self.ya

    def evaluate(self, model, rule, args, eps) -> dict:
        with torch.no_grad():
            prediction = rule.predict(model, self.fs_x)
        wrong_nonadaptive = prediction != self.ya
        restored = (prediction == self.pred) & self.fs_fooled
        fs = FeatureSpace(model, layer=self.layer, steps=args.fs_steps, lr=0.02, adaptive=True, eot=args.eot, rule="mean")
        x_adaptive = fs(self.xa, self.ya)
        with torch.no_grad():
            wrong_adaptive = rule.predict(model, x_adaptive) != self.ya
        robust = torch.ones_like(self.ya, dtype=torch.bool)
        for loss in ("ce", "dlr"):
            x_adv = APGD(model, eps=eps, steps=args.steps, loss=loss, eot=args.eot, rule="mean")(self.xa, self.ya)
            robust &= majority_correct(model, x_adv, self.ya, rule, 5)
        return {
            "fs_nonadaptive": wrong_nonadaptive.float().mean().item(),
            "fs_restored": restored.float().sum().item() / max(1, int(self.fs_fooled.sum())),
            "fs_adaptive": wrong_adaptive.float().mean().item(),
            "apgd_eot": robust.float().mean().item(),
        }


def run_dataset(dataset, args, out: Path, levels, ex: Execution) -> list[dict]:
    t0 = time.time()
    eps = DEFAULT_EPS.get(dataset, 0.1)
    rule = InferenceRule("vote", args.draws)
    rows = []

    def add_rows(base: Base, deterministic_name: str, variants: dict, std: dict) -> None:
        clean = accuracy(base.model, base.x_test, base.y_test)
        row = {"dataset": dataset, "variant": deterministic_name, "level": 0.0, "clean": clean,
               **base.evaluate(base.model, InferenceRule("single"), args, eps)}
        rows.append(row)
        print(f"{dataset}: {deterministic_name} clean {clean:.3f}, FS fooled {base.fs_fooled.float().mean():.3f} "
              f"of {len(base.ya)} ({time.time() - t0:.0f} s)", flush=True)
        for variant, values in variants.items():
            for level in values:
                noisy = inject_noise(base.model, noise_sites(variant, level, args.layer, std))
                row = {"dataset": dataset, "variant": variant, "level": level,
                       "clean": accuracy(noisy, base.x_test, base.y_test, "vote", args.draws),
                       **base.evaluate(noisy, rule, args, eps)}
                rows.append(row)
                print(f"  {variant:<10} {level:<5} clean {row['clean']:.3f}  FS non-adaptive {row['fs_nonadaptive']:.3f}  "
                      f"restored {row['fs_restored']:.3f}  FS adaptive {row['fs_adaptive']:.3f}  "
                      f"APGD-EOT {row['apgd_eot']:.3f} ({time.time() - t0:.0f} s)", flush=True)

    cnn_variants = {k: v for k, v in levels.items() if k != "v1"}
    if cnn_variants:
        cnn = Base(dataset, "cnn", {}, args.layer, args, out, ex)
        add_rows(cnn, "deterministic", cnn_variants,
                 activation_std(cnn.model, cnn.x_test[:500], ["relu1", "relu2", "relu3", args.layer]))
    if "v1" in levels:
        v1 = Base(dataset, "v1net", {"noise": None}, V1_LAYER, args, out, ex)
        add_rows(v1, "v1-deterministic", {"v1": levels["v1"]}, activation_std(v1.model, v1.x_test[:500], [V1_LAYER]))
    return rows


def markdown(rows, args) -> str:
    lines = [
        f"Test-time noise on a deterministic SmallCNN (v1: on a V1Net); vote over {args.draws} draws; {args.n_attack} attacked test "
        f"images per dataset (clean accuracy on {args.n_test}); feature layer {args.layer}; APGD {args.steps} steps, "
        f"EOT {args.eot}.",
        "",
        "| dataset | noise | level (x std) | clean | FS non-adaptive success | FS restored | FS adaptive success | APGD-EOT robust (eps) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        eps = DEFAULT_EPS.get(r["dataset"], 0.1)
        lines.append(f"| {r['dataset']} | {r['variant']} | {r['level']:g} | {r['clean']:.3f} | {r['fs_nonadaptive']:.3f} | "
                     f"{r['fs_restored']:.3f} | {r['fs_adaptive']:.3f} | {r['apgd_eot']:.3f} ({eps:.3g}) |")
    return "\n".join(lines) + "\n"


def figure(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({r["dataset"] for r in rows})
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        for variant in ("input", "hidden", "hidden-all", "poisson", "v1"):
            sel = [r for r in rows if r["dataset"] == dataset and r["variant"] == variant]
            if not sel:
                continue
            line, = ax.plot([r["clean"] for r in sel], [r["fs_nonadaptive"] for r in sel], marker="o", label=f"{variant} (non-adaptive)")
            ax.plot([r["clean"] for r in sel], [r["fs_adaptive"] for r in sel], marker="x", ls="--", color=line.get_color(),
                    label=f"{variant} (adaptive)")
        ax.set_xlabel("clean accuracy (vote)")
        ax.set_ylabel("feature-space attack success")
        ax.set_title(dataset)
        ax.legend(fontsize=7)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="folder holding mnist/, fashion-mnist/, cifar10-subset/")
    parser.add_argument("--datasets", nargs="+", default=None, help="default: mnist fashion-mnist cifar10 (quick: mnist)")
    parser.add_argument("--quick", action="store_true", help="MNIST, 5,000 training images, 1 epoch, 2 levels per noise")
    parser.add_argument("--layer", default="relu2", help="hidden layer of the noise and of the feature matching")
    parser.add_argument("--n-test", type=positive_int, default=None,
                        help="test images for clean accuracy (default 2000; quick 500)")
    parser.add_argument("--n-attack", type=positive_int, default=None, help="attacked images (default 200; quick 30)")
    parser.add_argument("--draws", type=positive_int, default=None,
                        help="votes of the deployed rule (default 100; quick 20)")
    parser.add_argument("--eot", type=positive_int, default=None,
                        help="EOT draws of the adaptive attacks (default 20; quick 5)")
    parser.add_argument("--steps", type=positive_int, default=None, help="APGD steps (default 100; quick 20)")
    parser.add_argument("--fs-steps", type=positive_int, default=None,
                        help="feature-space attack steps (default 300; quick 60)")
    parser.add_argument("--levels", type=float, nargs="+", default=None,
                        help="noise levels (x std) for every variant (default 0.25 0.5 1 1.5; quick 0.5 1)")
    parser.add_argument("--variants", nargs="+", default=None, choices=list(LEVELS),
                        help="noise variants (default: all)")
    parser.add_argument("--epochs", type=positive_int, default=None, help="training epochs (default 3; quick 1)")
    parser.add_argument("--train-subset", type=positive_int, default=None,
                        help="training images (default all; quick 5,000)")
    add_execution_arguments(parser, threads=1)
    add_output_options(parser, "runs/bench/hidden_noise_defense", holds="the table, figure and run folders",
                       replaces="the comparison and run folders", figures="rows and settings")
    return parse_and_run(parser, run, argv)


def run(args) -> None:
    refuse_torchrun("hidden_noise_defense.py", "the attacks run in the process that trained the models")
    execution = execution_from_args(args)
    q = args.quick
    pick = quick_defaults(q)
    args.n_test = pick(args.n_test, 500, 2000)
    args.n_attack = pick(args.n_attack, 30, 200)
    args.draws = pick(args.draws, 20, 100)
    args.eot = pick(args.eot, 5, 20)
    args.steps = pick(args.steps, 20, 100)
    args.fs_steps = pick(args.fs_steps, 60, 300)
    args.epochs = pick(args.epochs, 1, 3)
    args.train_subset = pick(args.train_subset, 5000, None)
    datasets = pick(args.datasets, ["mnist"], ["mnist", "fashion-mnist", "cifar10"])
    out = Path(args.out)
    levels = {variant: args.levels or values for variant, values in (QUICK_LEVELS if q else LEVELS).items()
              if variant in (args.variants or LEVELS)}
    check_plan(args, out, datasets, levels)
    with Execution(execution) as ex:  # a device that is not there stops the job before --out exists
        out.mkdir(parents=True, exist_ok=True)
        started = time.time()
        rows = []
        for dataset in datasets:
            rows += run_dataset(dataset, args, out, levels, ex)
        device = str(ex.device)
    table = markdown(rows, args)
    write_text(out / "table.md", table)
    write_json(out / "results.json", {"rows": rows, "args": vars(args), "seconds": time.time() - started})
    figure(rows, out / "fs_success_vs_clean.png")
    if args.json:
        settings = {k: getattr(args, k) for k in ("layer", "n_test", "n_attack", "draws", "eot", "steps", "fs_steps",
                                                  "threads")}
        settings["device"] = device
        write_json(Path(args.json), {"settings": settings, "eps": {d: DEFAULT_EPS.get(d, 0.1) for d in datasets},
                                     "rows": rows, "seconds": time.time() - started})
    print(table)
    print(f"wrote {out}/table.md, results.json, fs_success_vs_clean.png ({time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
