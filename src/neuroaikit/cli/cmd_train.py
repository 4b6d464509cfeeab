"""``neuroaikit train``: train a classifier, optionally with brain-like noise."""

from __future__ import annotations

from .options import (add_execution_arguments, add_output_arguments, add_quiet_argument, parse_assignments)
from .options import config_from_args as config_from_args_generic

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
  # resume an interrupted job (continues from RUN.partial/checkpoint.pt, same settings)
  neuroaikit train ... --out runs/mnist-hidden --resume
  # two processes, data-parallel: the same global batches and examples as one process (the same
  # weights up to float rounding; noise draws and, on CPUs, batch norm differ per process)
  torchrun --nproc_per_node 2 -m neuroaikit train ... --out runs/mnist-hidden

A finished run is never replaced unless you pass --overwrite.
"""


def add_arguments(parser):
    from ..noise import RULES
    from ..training import AUGMENTATIONS, OPTIMIZERS, SCHEDULES, TrainConfig

    d = TrainConfig()
    parser.add_argument("--config", help="JSON (or YAML) file with TrainConfig fields; command-line options override it")
    parser.add_argument("--dataset", help=f"mnist | fashion-mnist | cifar10 | digits (default {d.dataset})")
    parser.add_argument("--data-dir", help="folder holding the dataset files (not needed for digits)")
    parser.add_argument("--model", help=f"model name: mlp | cnn | resnet18 | v1net ... (default {d.model})")
    parser.add_argument("--model-arg", action="append", metavar="KEY=VALUE",
                        help="builder argument, e.g. hidden=256 (cnn), hidden=[512,512] (mlp) or width=0.5 (resnet18) "
                             "(repeatable)")
    parser.add_argument("--noise", action="append", metavar="LAYER=SPEC", help="noise after LAYER ('input' for the input), e.g. relu1=gaussian:0.5 (repeatable)")
    parser.add_argument("--noise-warmup", type=float, metavar="EPOCHS", help=f"ramp the noise s.d. from 0 to full over this many epochs (default {d.noise_warmup:g})")
    parser.add_argument("--norm-bound", type=float, metavar="BOUND", help="keep each conv/linear layer before hidden Gaussian noise within this L2 operator norm (PixelDP training for 'certify --method hidden'; default none)")
    parser.add_argument("--epochs", type=int, help=f"default {d.epochs}")
    parser.add_argument("--batch-size", type=int, help=f"global batch, shared by all processes, at least their number "
                                                           f"(default {d.batch_size})")
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
    add_output_arguments(parser, resumable=True, required=False,
                         resume_may_change="device, threads, precision and process count")
    add_execution_arguments(parser, trains=True)
    parser.add_argument("--no-report", action="store_true", help="do not write report.html")
    add_quiet_argument(parser)
    parser.add_argument("--list-objectives", action="store_true", help="print the available objectives and exit")


_OPTIONS = ["dataset", "data_dir", "model", "noise_warmup", "norm_bound", "epochs", "batch_size", "optimizer", "lr", "momentum",
            "weight_decay", "schedule", "augment", "seed", "train_subset", "test_subset", "objective", "eval_rule",
            "eval_draws"]


def config_from_args(args):
    from ..config import load_config_file
    from ..training import TrainConfig

    base = load_config_file(args.config) if args.config else {}
    if args.model_arg:
        base["model_kwargs"] = {**_mapping(base, "model_kwargs"), **parse_assignments(args.model_arg, "--model-arg")}
    if args.noise:
        base["noise"] = {**_mapping(base, "noise"), **parse_assignments(args.noise, "--noise", keep_strings=True)}
    if args.objective_param:
        base["objective_params"] = {**_mapping(base, "objective_params"),
                                    **parse_assignments(args.objective_param, "--objective-param")}
    return config_from_args_generic(TrainConfig, args, _OPTIONS, base=base, base_file=args.config)


def _mapping(values: dict, key: str) -> dict:
    from ..errors import ConfigError

    value = values.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{key} in the config file must be a mapping")
    return value


def run(args) -> int:
    from ..errors import ConfigError
    from ..execution import is_main_process
    from ..progress import default_progress
    from ..training import available_objectives, train

    if args.list_objectives:
        print("\n".join(available_objectives()))
        return 0
    if not args.out:
        raise ConfigError("--out is required: the run folder to create")
    config = config_from_args(args)
    if config.noise_warmup > 0:  # given: the default is 0
        from ..config import UnusedSettingError
        from ..training.loop import noise_sites

        if not noise_sites(config):  # v1net has noise of its own: only the built model can tell
            from ..config import load_config_file

            in_file = set(load_config_file(args.config)) if args.config else set()
            typed = {name for name, value in (("noise_warmup", args.noise_warmup), ("model", args.model),
                                              ("noise", args.noise or None)) if value is not None}
            raise UnusedSettingError("noise_warmup", f"ramps up the model's noise layers, and {{model}} {config.model} "
                                                     "has none: give {noise}", ("model", "noise")
                                     ).located(args.config, in_file - typed)
    run_ = train(config, args.out, resume=args.resume, overwrite=args.overwrite,
                 progress=default_progress(quiet=args.quiet))
    if is_main_process() and not args.no_report:
        from ..report import build_report

        print(f"report: {build_report(run_.path)}")
    if is_main_process():
        print(f"run folder: {run_.path}")
    return 0
