"""``neuroaikit align RUN_DIR --neural DATA``."""

from __future__ import annotations

import argparse

from .options import add_execution_arguments, add_quiet_argument

NAME = "align"
HELP = "layer-by-layer alignment (RSA, CKA, predictivity with ceilings) of a run's model to neural data"
DESCRIPTION = """\
Compare every layer of a trained model with recorded neural responses to the same images:
RSA (model RDM vs neural RDM), CKA and cross-validated linear predictivity (ridge or PLS,
median held-out r over neurons), each with a bootstrap confidence interval over stimuli and
a noise ceiling from the repeated trials. The neural images are min-max scaled, resized to
the model's input (bilinear) and repeated over its channels. Writes RUN_DIR/results/alignment.json
(an existing one only with --overwrite) and adds RDM heat maps and per-layer score plots to
RUN_DIR/report.html. The model runs on --device; the metrics run on the CPU in float64, on one
thread up to 1000 stimuli unless --threads says otherwise (small matrices are faster that way).

DATA is the Antolik 2016 file (antolik2016_mouse_v1.npz; pick --region 1, 2 or 3), the Allen
natural-scenes file (allen_natural_scenes_v1.npz; no repeats, so no ceilings), or any recording
file or folder 'twin fit' reads: a NeuralDataset FileTree folder / zip, suite2p output, CaImAn results, an NWB
file or a recording file (.json / .yaml).

examples:
  neuroaikit align runs/mnist-hidden --neural ../shared/data/neural/antolik2016_mouse_v1.npz --region 1
  neuroaikit align runs/mnist-hidden --neural ../shared/data/neural/allen_natural_scenes_v1.npz --layers relu1 relu2 relu3
  # noisy model: average each layer over 16 noise draws, predictivity with PLS (25 components)
  neuroaikit align runs/mnist-hidden --neural DATA --noise 16 --mapping pls
  # on the GPU, replacing an earlier results/alignment.json
  neuroaikit align runs/mnist-hidden --neural DATA --device cuda --overwrite
"""


# option attribute -> (AlignmentConfig field, the option as typed)
_OPTIONS = {
    "region": ("region", "--region"), "layers": ("layers", "--layers"), "noise": ("noise", "--noise"),
    "rdm": ("rdm_method", "--rdm"), "compare": ("compare", "--compare"), "cka_kernel": ("cka_kernel", "--cka-kernel"),
    "cka_debiased": ("cka_debiased", "--biased-cka"), "mapping": ("mapping", "--mapping"),
    "folds": ("n_folds", "--folds"), "convention": ("convention", "--convention"),
    "bootstrap": ("n_boot", "--bootstrap"), "splits": ("n_splits", "--splits"), "level": ("level", "--level"),
    "seed": ("seed", "--seed"), "nan_policy": ("nan_policy", "--drop-nan-trials"),
}
FLAGS = {field: flag for field, flag in _OPTIONS.values()} | {"input_shape": "--channels/--image-size"}


def add_arguments(parser):
    from ..alignment.config import AlignmentConfig

    d = AlignmentConfig()
    parser.add_argument("run_dir", help="a run folder with a model (written by train)")
    parser.add_argument("--neural", required=True, metavar="DATA",
                        help="Antolik or Allen .npz, or a recording 'twin fit' reads (FileTree, suite2p, CaImAn, NWB, "
                             "recording file)")
    parser.add_argument("--region", type=int, help="Antolik imaging region 1, 2 or 3 (default 1)")
    parser.add_argument("--layers", nargs="+", help="layer names (default: every leaf layer but flatten, dropout, "
                                                   "identity and noise layers)")
    parser.add_argument("--noise", help=f"model noise while reading features: off, draw (one draw) or N (mean of "
                                        f"N draws) (default {d.noise})")
    parser.add_argument("--rdm", help=f"RDM distance: correlation (1 - Pearson r), euclidean, sqeuclidean or cosine "
                                      f"(default {d.rdm_method})")
    parser.add_argument("--compare", help=f"RDM comparison: spearman, pearson, cosine or kendall_tau_a "
                                          f"(default {d.compare})")
    parser.add_argument("--cka-kernel", help=f"CKA kernel: linear or rbf (default {d.cka_kernel})")
    parser.add_argument("--biased-cka", dest="cka_debiased", action="store_const", const=False, default=None,
                        help="use the biased HSIC (default: debiased, Song et al. 2012)")
    parser.add_argument("--mapping", help=f"predictivity mapping: ridge or pls (default {d.mapping})")
    parser.add_argument("--folds", type=int, help=f"cross-validation folds over stimuli, >= 2 (default {d.n_folds})")
    parser.add_argument("--convention", help=f"how predictivity is ceiled: r/sqrt(reliability) or r2/reliability "
                                             f"(default {d.convention})")
    parser.add_argument("--bootstrap", type=int, help=f"bootstrap resamples over stimuli (default {d.n_boot})")
    parser.add_argument("--splits", type=int, help=f"random split halves of the repeats for the ceilings "
                                                   f"(default {d.n_splits})")
    parser.add_argument("--level", type=float, help=f"confidence level of the intervals (default {d.level})")
    parser.add_argument("--seed", type=int, help=f"seed of folds, splits, resamples and noise (default {d.seed})")
    parser.add_argument("--channels", type=int, help="model input channels (default: from the run)")
    parser.add_argument("--image-size", type=_image_size, metavar="SIZE|HxW",
                        help="model input height = width, or HxW (default: from the run)")
    parser.add_argument("--drop-nan-trials", dest="nan_policy", action="store_const", const="drop", default=None,
                        help="leave out trials whose responses hold NaN (dropped imaging frames), with a note, "
                             "instead of stopping")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing results/alignment.json")
    parser.add_argument("--no-report", action="store_true", help="do not rebuild report.html")
    add_execution_arguments(parser)
    add_quiet_argument(parser)


def _image_size(text: str) -> list[int]:
    """``28`` -> ``[28]`` (square), ``36x64`` -> ``[36, 64]``."""
    parts = text.lower().split("x")
    if len(parts) not in (1, 2) or not all(p.strip().isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"expected SIZE or HxW (e.g. 28 or 36x64), got {text!r}")
    return [int(p) for p in parts]


def _noise(value):
    """``--noise``: a whole number is a number of draws; anything else is checked by the config."""
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value)
    return value


def config_from(args):
    """The :class:`AlignmentConfig` of the options given (defaults from the dataclass)."""
    import argparse

    from ..alignment.config import AlignmentConfig
    from ..errors import ConfigError
    from .options import config_from_args

    if (args.channels is None) != (args.image_size is None):
        raise ConfigError("give both --channels and --image-size, or neither")
    base = {}
    if args.channels is not None:
        base["input_shape"] = [args.channels, *args.image_size]
    args = argparse.Namespace(**{**vars(args), "noise": _noise(args.noise)})
    return config_from_args(AlignmentConfig, args, {attr: field for attr, (field, _) in _OPTIONS.items()}, base=base)


def _cell(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_result(result) -> None:
    """The per-layer table of an :class:`AlignmentResult`: scores, then the ceiled scores."""
    neural = result.neural
    print(f"{neural.name}: {neural.n_stimuli} stimuli, {neural.n_neurons} neurons, "
          f"{neural.n_repeats or 'no'} repeats")
    print(f"{'':<12} {'score':^26}   {'ceiled (score / noise ceiling)':^32}")
    print(f"{'layer':<12} {'RSA':>8} {'CKA':>8} {'pred r':>8}   {'RSA':>10} {'CKA':>10} {'pred r':>10}")
    for entry in result.layers:
        parts = [entry.rsa, entry.cka, entry.predictivity]
        scores = ["error" if not p.ok else _cell(p.score, 3) for p in parts]
        ceiled = ["error" if not p.ok else _cell(p.ceiled, 2) for p in parts]
        print(f"{entry.layer:<12} {scores[0]:>8} {scores[1]:>8} {scores[2]:>8}   "
              f"{ceiled[0]:>10} {ceiled[1]:>10} {ceiled[2]:>10}")
    if not result.ceilings.available:
        print(f"no ceilings: {result.ceilings.reason}")
    for entry in result.layers:
        for key, part in (("RSA", entry.rsa), ("CKA", entry.cka), ("predictivity", entry.predictivity)):
            if part.error is not None:
                print(f"  {entry.layer} {key}: {part.error}")


def run(args) -> int:
    from ..alignment import align_run
    from ..progress import default_progress

    config = config_from(args)
    result = align_run(args.run_dir, args.neural, config, overwrite=args.overwrite,
                       progress=default_progress(quiet=args.quiet))
    print_result(result)
    print(f"results: {args.run_dir}/results/alignment.json ({result.time_s:.1f} s on {result.execution['device']})")
    if not args.no_report:
        from ..report import build_report

        print(f"report: {build_report(args.run_dir)}")
    return 0
