"""``neuroaikit plasticity``: learn an image dataset with a local learning rule into a run folder."""

from __future__ import annotations

from .options import add_execution_arguments, add_output_arguments, add_quiet_argument

NAME = "plasticity"
HELP = "learn with a local plasticity rule (Krotov-Hopfield, Diehl & Cook STDP) into a run folder"
DESCRIPTION = """\
Train a network with a local, unsupervised learning rule and write a run folder (config.json,
model.json, weights.safetensors, metrics.json, log.txt, report.html):

  krotov-hopfield  competing hidden units (Krotov & Hopfield 2019) learned without labels, then
                   a linear readout of their standardised relu(Wv)^n features. Defaults: 2,000
                   units, 60 unsupervised epochs, 100 readout epochs, n = 3 (97.4 % on MNIST).
  diehl-cook       STDP with lateral inhibition and adaptive thresholds (Diehl & Cook 2015);
                   neurons are labelled by their mean response per class. Defaults: 400 neurons,
                   one sequential pass, 350 ms per image (89.1 % on MNIST: results page
                   local_learning_dc_full).

A checkpoint is written after every unsupervised epoch (krotov-hopfield) or every
--checkpoint-every images (diehl-cook): --resume continues an interrupted job and ends with the
weights an uninterrupted one would have. The rules compute in float32 on any device.

examples:
  neuroaikit plasticity --rule krotov-hopfield --dataset mnist --data-dir ../shared/data --out runs/kh
  neuroaikit plasticity --rule diehl-cook --dataset mnist --data-dir ../shared/data --out runs/dc
  # a quick look: fewer units, images and epochs
  neuroaikit plasticity --rule krotov-hopfield --dataset mnist --data-dir ../shared/data \\
      --train-subset 10000 --test-subset 1000 --epochs 5 --readout-epochs 10 --out runs/kh-quick
  # any setting of the rule (see --config): --set tau_mem=80 --set inhibition=20
  neuroaikit plasticity --rule diehl-cook ... --out runs/dc --resume

A finished run is never replaced unless you pass --overwrite.
"""

# option attribute -> the field of each rule's section it sets (None: not an option of that rule)
_SHARED = {"units": ("n_hidden", "n_neurons"), "epochs": ("epochs", "epochs"),
           "batch_size": ("batch_size", "batch_size")}
_KROTOV_HOPFIELD = {"lr": "lr", "power": "power", "norm_p": "p", "k": "k", "delta": "delta",
                    "readout_epochs": "readout_epochs", "readout_lr": "readout_lr"}
_DIEHL_COOK = {"steps": "T", "synapses": "synapses", "theta_plus": "theta_plus", "refractory": "refractory",
               "min_spikes": "min_spikes", "stdp_images": "stdp_images", "label_images": "label_images",
               "checkpoint_every": "checkpoint_every"}
_TOP = ["rule", "dataset", "data_dir", "train_subset", "test_subset", "seed"]
# errors name the option the user typed, not the configuration field behind it (see option_names)
FLAGS = {f"{section}.{field}": "--" + attr.replace("_", "-")
         for attr, fields in _SHARED.items() for section, field in zip(("krotov_hopfield", "diehl_cook"), fields)}
FLAGS |= {f"krotov_hopfield.{field}": "--" + attr.replace("_", "-") for attr, field in _KROTOV_HOPFIELD.items()}
FLAGS |= {f"diehl_cook.{field}": "--" + attr.replace("_", "-") for attr, field in _DIEHL_COOK.items()}


def add_arguments(parser):
    from ..spiking.plasticity import (
        RULES,
        DiehlCookConfig,
        KrotovHopfieldConfig,
        PlasticityConfig,
    )

    d, kh, dc = PlasticityConfig(), KrotovHopfieldConfig(), DiehlCookConfig()
    parser.add_argument("--config", help="JSON (or YAML) file with PlasticityConfig fields (rule, dataset, "
                                         "krotov_hopfield: {...}, diehl_cook: {...}); options override it")
    parser.add_argument("--rule", choices=RULES, help=f"the learning rule (default {d.rule})")
    parser.add_argument("--dataset", help=f"mnist | fashion-mnist | cifar10 | digits (default {d.dataset})")
    parser.add_argument("--data-dir", help="folder holding the dataset files (not needed for digits)")
    parser.add_argument("--train-subset", type=int, help="use only the first N training images")
    parser.add_argument("--test-subset", type=int, help="use only the first N test images")
    parser.add_argument("--seed", type=int, help=f"initial weights, data order, input spikes (default {d.seed})")
    both = parser.add_argument_group("both rules")
    both.add_argument("--units", type=int, help=f"hidden units / excitatory neurons (default {kh.n_hidden} / "
                                                f"{dc.n_neurons})")
    both.add_argument("--epochs", type=int, help=f"unsupervised epochs / STDP passes (default {kh.epochs} / "
                                                 f"{dc.epochs})")
    both.add_argument("--batch-size", type=int, help=f"images per update (default {kh.batch_size} / {dc.batch_size}:"
                                                     f" diehl-cook's 1 is the paper's sequential protocol)")
    both.add_argument("--set", action="append", metavar="KEY=VALUE",
                      help="any setting of the chosen rule, e.g. tau_mem=80 (repeatable; see --config)")
    k = parser.add_argument_group("krotov-hopfield")
    k.add_argument("--lr", type=float, help=f"initial learning rate, annealed to 0 (default {kh.lr})")
    k.add_argument("--power", type=float, help=f"features relu(Wv)^POWER (default {kh.power:g}; the paper: 4.5)")
    k.add_argument("--norm-p", type=float, help=f"Lebesgue norm p of the rule (default {kh.p:g})")
    k.add_argument("--k", type=int, help=f"rank of the anti-Hebbian unit (default {kh.k})")
    k.add_argument("--delta", type=float, help=f"anti-Hebbian strength (default {kh.delta})")
    k.add_argument("--readout-epochs", type=int, help=f"linear readout epochs (default {kh.readout_epochs})")
    k.add_argument("--readout-lr", type=float, help=f"Adam learning rate, annealed to 0 (default {kh.readout_lr})")
    s = parser.add_argument_group("diehl-cook")
    s.add_argument("--steps", type=int, help=f"ms per image presentation (default {dc.T})")
    s.add_argument("--synapses", choices=("conductance", "current"), help=f"default {dc.synapses}")
    s.add_argument("--theta-plus", type=float, help=f"threshold step per spike (default {dc.theta_plus})")
    s.add_argument("--refractory", type=int, help=f"refractory period in ms (default {dc.refractory})")
    s.add_argument("--min-spikes", type=int, help=f"show an image again at a higher rate below this many spikes "
                                                  f"(default {dc.min_spikes}; 0: never)")
    s.add_argument("--stdp-images", type=int, help="training images for STDP (default: all)")
    s.add_argument("--label-images", type=int, help="training images that label the neurons (default: all)")
    s.add_argument("--checkpoint-every", type=int, help=f"images between checkpoints (default {dc.checkpoint_every})")
    add_output_arguments(parser, resumable=True)
    add_execution_arguments(parser)
    parser.add_argument("--no-report", action="store_true", help="do not write report.html")
    add_quiet_argument(parser)


def config_from_args(args):
    """The :class:`PlasticityConfig` of the options (over the ``--config`` file, over the defaults)."""
    from ..config import UnusedSettingError, load_config_file
    from ..errors import ConfigError
    from ..spiking.plasticity import PlasticityConfig
    from .options import config_from_args as build
    from .options import parse_assignments

    values = load_config_file(args.config) if args.config else {}
    rule = args.rule or values.get("rule") or PlasticityConfig().rule
    if rule not in ("krotov-hopfield", "diehl-cook"):
        raise ConfigError(f"rule must be one of 'krotov-hopfield', 'diehl-cook', got {rule!r}")
    section = "krotov_hopfield" if rule == "krotov-hopfield" else "diehl_cook"
    own, other = (_KROTOV_HOPFIELD, _DIEHL_COOK) if rule == "krotov-hopfield" else (_DIEHL_COOK, _KROTOV_HOPFIELD)
    for attr in other:
        if getattr(args, attr, None) is not None:
            raise ConfigError(f"--{attr.replace('_', '-')} is a setting of the other rule, not of --rule {rule}")
    nested = values.get(section) or {}
    if not isinstance(nested, dict):
        raise ConfigError(f"{section} in the config file must be a mapping")
    nested, in_file = dict(nested), set(nested)
    typed = {}
    for attr, names in _SHARED.items():
        if getattr(args, attr, None) is not None:
            typed[names[0] if rule == "krotov-hopfield" else names[1]] = getattr(args, attr)
    for attr, name in own.items():
        if getattr(args, attr, None) is not None:
            typed[name] = getattr(args, attr)
    typed.update(parse_assignments(args.set, "--set"))
    values[section] = {**nested, **typed}
    try:
        return build(PlasticityConfig, args, _TOP, base=values)
    except UnusedSettingError as error:  # the rule's own settings: say which came from the file
        raise error.located(args.config, in_file - set(typed)) from None


def run(args) -> int:
    from ..progress import default_progress
    from ..spiking.plasticity import learn

    config = config_from_args(args)
    run_ = learn(config, args.out, resume=args.resume, overwrite=args.overwrite,
                 progress=default_progress(quiet=args.quiet))
    if not args.no_report:
        from ..report import build_report

        print(f"report: {build_report(run_.path)}")
    print(f"run folder: {run_.path}")
    return 0
