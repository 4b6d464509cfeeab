"""``neuroaikit align RUN_DIR --neural DATA``."""

from __future__ import annotations

NAME = "align"
HELP = "layer-by-layer alignment (RSA, CKA, predictivity with ceilings) of a run's model to neural data"
DESCRIPTION = """\
Compare every layer of a trained model with recorded neural responses to the same images:
RSA (model RDM vs neural RDM), CKA and cross-validated linear predictivity (ridge or PLS,
median held-out r over neurons), each with a bootstrap confidence interval over stimuli and
a noise ceiling from the repeated trials. The neural images are min-max scaled, resized to
the model's input (bilinear) and repeated over its channels. Writes RUN_DIR/results/alignment.json
and adds RDM heat maps and per-layer score plots to RUN_DIR/report.html.

DATA is the Antolik 2016 file (antolik2016_mouse_v1.npz; pick --region 1, 2 or 3), the Allen
natural-scenes file (allen_natural_scenes_v1.npz; no repeats, so no ceilings), or a
NeuralDataset FileTree folder / zip.

examples:
  neuroaikit align runs/mnist-hidden --neural ../shared/data/neural/antolik2016_mouse_v1.npz --region 1
  neuroaikit align runs/mnist-hidden --neural ../shared/data/neural/allen_natural_scenes_v1.npz --layers relu1 relu2 relu3
  # noisy model: average each layer over 16 noise draws, predictivity with PLS (25 components)
  neuroaikit align runs/mnist-hidden --neural DATA --noise 16 --mapping pls
"""


def add_arguments(parser):
    parser.add_argument("run_dir", help="a run folder with a model (written by train)")
    parser.add_argument("--neural", required=True, metavar="DATA",
                        help="Antolik or Allen .npz, or a NeuralDataset folder / zip")
    parser.add_argument("--region", help="Antolik imaging region 1, 2 or 3 (default 1)")
    parser.add_argument("--layers", nargs="+", help="layer names (default: every leaf layer but flatten/dropout)")
    parser.add_argument("--noise", default="off",
                        help="model noise while reading features: off (default), draw (one draw), or N (mean of N draws)")
    parser.add_argument("--rdm", default="correlation", choices=["correlation", "euclidean", "sqeuclidean", "cosine"],
                        help="RDM distance (default correlation = 1 - Pearson r)")
    parser.add_argument("--compare", default="spearman", choices=["spearman", "pearson", "cosine", "kendall_tau_a"],
                        help="RDM comparison (default spearman)")
    parser.add_argument("--cka-kernel", default="linear", choices=["linear", "rbf"], help="CKA kernel (default linear)")
    parser.add_argument("--biased-cka", action="store_true", help="use the biased HSIC (default: debiased, Song et al. 2012)")
    parser.add_argument("--mapping", default="ridge", choices=["ridge", "pls"], help="predictivity mapping (default ridge)")
    parser.add_argument("--folds", type=int, default=10, help="cross-validation folds over stimuli (default 10)")
    parser.add_argument("--convention", default="r/sqrt(reliability)", choices=["r/sqrt(reliability)", "r2/reliability"],
                        help="how predictivity is ceiled (default r/sqrt(reliability))")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples over stimuli (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of folds, splits, resamples and noise (default 0)")
    parser.add_argument("--channels", type=int, help="model input channels (default: from the run)")
    parser.add_argument("--image-size", type=int, help="model input height = width (default: from the run)")
    parser.add_argument("--no-report", action="store_true", help="do not rebuild report.html")


def _noise(value: str):
    from ..errors import ConfigError

    if value in ("off", "draw"):
        return value
    try:
        n = int(value)
    except ValueError:
        raise ConfigError(f"--noise must be off, draw or a number of draws, got {value!r}") from None
    if n < 1:
        raise ConfigError(f"--noise draws must be >= 1, got {n}")
    return n


def run(args) -> int:
    from ..alignment import align_run
    from ..errors import ConfigError

    if (args.channels is None) != (args.image_size is None):
        raise ConfigError("give both --channels and --image-size, or neither")
    shape = (args.channels, args.image_size) if args.channels else None
    result = align_run(
        args.run_dir, args.neural, region=args.region, input_shape=shape, layers=args.layers, noise=_noise(args.noise),
        rdm_method=args.rdm, compare=args.compare, cka_kernel=args.cka_kernel, cka_debiased=not args.biased_cka,
        mapping=args.mapping, n_folds=args.folds, convention=args.convention, n_boot=args.bootstrap, seed=args.seed,
    )
    print(f"{result['neural']['name']}: {result['neural']['n_stimuli']} stimuli, {result['neural']['n_neurons']} neurons")
    print(f"{'layer':<12} {'RSA':>8} {'CKA':>8} {'pred r':>8}   (ceiled)")
    for entry in result["layers"]:
        cells, ceiled = [], []
        for key in ("rsa", "cka", "predictivity"):
            part = entry[key]
            cells.append("error" if "error" in part else f"{part['score']:.3f}")
            c = part.get("ceiled")
            ceiled.append("-" if c is None else f"{c:.2f}")
        print(f"{entry['layer']:<12} {cells[0]:>8} {cells[1]:>8} {cells[2]:>8}   ({' / '.join(ceiled)})")
    print(f"results: {args.run_dir}/results/alignment.json ({result['time_s']:.1f} s)")
    if not args.no_report:
        from ..report import build_report

        print(f"report: {build_report(args.run_dir)}")
    return 0
