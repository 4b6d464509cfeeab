"""``neuroaikit train``: train a classifier, optionally with brain-like noise."""

from __future__ import annotations

from ..io import read_json
from .options import parse_assignments

NAME = "train"
HELP = "train a classifier (noise layers, augmentation, schedules) into a run folder"
DESCRIPTION = """\
Train a model on an image dataset and write a run folder (config.json, model.json,
weights.safetensors, metrics.json, log.txt, report.html). Noise layers stay active during
training and evaluation; the final metrics give clean accuracy with one noise draw, under the
deployed rule (vote of N draws by default) and with the noise off.

examples:
  # MNIST CNN with Gaussian noise (sigma 0.5) after the second conv layer's ReLU (99.1% clean);
  # large noise stalls a fresh network: --noise-warmup ramps it in over the first epoch
  neuroaikit train --dataset mnist --data-dir ../shared/data --noise relu2=gaussian:0.5 --noise-warmup 1 \
      --lr 2e-3 --schedule cosine --epochs 3 --out runs/mnist-hidden
  # noise specs: gaussian:SIGMA | poisson:gain=G,floor=F | multiplicative:SIGMA, add ',rectify' to clip at 0
  neuroaikit train --dataset digits --model mlp --noise input=gaussian:0.3 --out runs/digits-mlp
  # resume an interrupted job (continues from RUN.partial/checkpoint.pt)
  neuroaikit train ... --out runs/mnist-hidden --resume
"""


def add_arguments(parser):
    from ..training import AUGMENTATIONS, OPTIMIZERS, SCHEDULES, TrainConfig
    from ..noise import RULES

    d = TrainConfig()
    parser.add_argument("--config", help="JSON file with TrainConfig fields; command-line options override it")
    parser.add_argument("--dataset", help=f"mnist | fashion-mnist | cifar10 | digits (default {d.dataset})")
    parser.add_argument("--data-dir", help="folder holding the dataset files (not needed for digits)")
    parser.add_argument("--model", help=f"model name: mlp | cnn | resnet18 | v1net ... (default {d.model})")
    parser.add_argument("--model-arg", action="append", metavar="KEY=VALUE", help="builder argument, e.g. width=0.5 (repeatable)")
    parser.add_argument("--noise", action="append", metavar="LAYER=SPEC", help="noise after LAYER ('input' for the input), e.g. relu1=gaussian:0.5 (repeatable)")
    parser.add_argument("--noise-warmup", type=float, metavar="EPOCHS", help="ramp the noise s.d. from 0 to full over this many epochs (default 0)")
    parser.add_argument("--epochs", type=int, help=f"default {d.epochs}")
    parser.add_argument("--batch-size", type=int, help=f"default {d.batch_size}")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, help=f"default {d.optimizer}")
    parser.add_argument("--lr", type=float, help=f"learning rate (default {d.lr})")
    parser.add_argument("--momentum", type=float, help=f"SGD momentum (default {d.momentum})")
    parser.add_argument("--weight-decay", type=float, help=f"default {d.weight_decay}")
    parser.add_argument("--schedule", choices=SCHEDULES, help=f"learning-rate schedule (default {d.schedule})")
    parser.add_argument("--augment", choices=AUGMENTATIONS, help=f"default {d.augment}")
    parser.add_argument("--seed", type=int, help=f"default {d.seed}")
    parser.add_argument("--train-subset", type=int, help="use only the first N training images")
    parser.add_argument("--test-subset", type=int, help="use only the first N test images")
    parser.add_argument("--objective", help=f"per-batch loss (default {d.objective}); see 'neuroaikit train --list-objectives'")
    parser.add_argument("--objective-param", action="append", metavar="KEY=VALUE", help="objective parameter (repeatable)")
    parser.add_argument("--eval-rule", choices=RULES, help=f"deployed inference rule reported at the end (default {d.eval_rule})")
    parser.add_argument("--eval-draws", type=int, help=f"noise draws for mean/vote (default {d.eval_draws})")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default auto")
    parser.add_argument("--out", help=f"run folder to write (default {d.out})")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted job from its checkpoint")
    parser.add_argument("--no-report", action="store_true", help="do not write report.html")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--list-objectives", action="store_true", help="print the available objectives and exit")


def config_from_args(args):
    from ..training import TrainConfig

    values = dict(read_json(args.config)) if args.config else {}
    for name in ("dataset", "data_dir", "model", "noise_warmup", "epochs", "batch_size", "optimizer", "lr", "momentum",
                 "weight_decay", "schedule", "augment", "seed", "train_subset", "test_subset", "objective",
                 "eval_rule", "eval_draws", "device", "out"):
        value = getattr(args, name)
        if value is not None:
            values[name] = value
    if args.model_arg:
        values["model_kwargs"] = {**values.get("model_kwargs", {}), **parse_assignments(args.model_arg, "--model-arg")}
    if args.noise:
        values["noise"] = {**values.get("noise", {}), **parse_assignments(args.noise, "--noise", keep_strings=True)}
    if args.objective_param:
        values["objective_params"] = {**values.get("objective_params", {}),
                                      **parse_assignments(args.objective_param, "--objective-param")}
    values["resume"] = bool(args.resume)
    return TrainConfig.from_dict(values)


def run(args) -> int:
    from ..training import available_objectives, train

    if args.list_objectives:
        print("\n".join(available_objectives()))
        return 0
    config = config_from_args(args)
    result = train(config, progress=None if not args.quiet else False)
    if not args.no_report:
        from ..report import build_report

        print(f"report: {build_report(result.path)}")
    print(f"run folder: {result.path}")
    return 0
