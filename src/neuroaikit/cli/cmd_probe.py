"""``neuroaikit probe RUN_DIR``: in-silico neurophysiology of a trained network."""

from __future__ import annotations

from .options import add_execution_arguments, add_quiet_argument

NAME = "probe"
HELP = "in-silico physiology of a run's network: tuning, RF maps, MEIs, probes, lesions, V1 comparison"
DESCRIPTION = """\
Record the units of each layer of RUN_DIR's model like neurons: drifting gratings (orientation,
direction, spatial frequency, phase, contrast, aperture size), natural test images, gradient
maps and most exciting / inhibiting inputs. Each unit gets the measures physiologists use
(1 - circular variance, OSI, DSI, preferred spatial frequency and bandwidth, F1/F0, C50 and
exponent, surround suppression index, lifetime sparseness); each layer gets population
sparseness, participation ratio, a cross-validated linear probe of the labels, and the distance
of its distributions to published V1 ones (--species). Then the channels a probe says carry each
class are lesioned and every class's accuracy measured. A conv layer's units are its channels
at the map centre (--position centre) or averaged over positions (--position pool).
Writes RUN_DIR/results/insilico.json (an existing one only with --overwrite) and adds polar
plots, SF curves, RF and MEI grids, the lesion matrix and probe accuracy by depth to report.html.

examples:
  neuroaikit probe runs/mnist-cnn --data-dir ../shared/data --layers relu1 relu2 relu3
  neuroaikit probe runs/mnist-v1net --data-dir ../shared/data --layers v1 --species macaque
  # noisy model, one frozen noise draw for every stimulus; channels pooled over positions
  neuroaikit probe runs/mnist-noise --noise frozen --position pool --overwrite
"""

_OPTIONS = {
    "layers": ("layers", "--layers"), "position": ("position", "--position"), "max_units": ("max_units", "--max-units"),
    "noise": ("noise", "--noise"), "visual_degrees": ("visual_degrees", "--visual-degrees"),
    "n_images": ("n_images", "--images"), "folds": ("probe_folds", "--folds"), "mei_units": ("mei_units", "--mei-units"),
    "mei_steps": ("mei_steps", "--mei-steps"), "mei_seeds": ("mei_seeds", "--mei-seeds"),
    "lesion_layer": ("lesion_layer", "--lesion-layer"), "lesion_mode": ("lesion_mode", "--lesion-mode"),
    "lesion_fraction": ("lesion_fraction", "--lesion-fraction"), "species": ("species", "--species"),
    "seed": ("seed", "--seed"),
}
#: config field -> the option that sets it, for one-line errors
FLAGS = {field: flag for field, flag in _OPTIONS.values()} | {"input_shape": "--input-shape"}


def add_arguments(parser):
    from ..insilico.config import ProbeConfig

    d = ProbeConfig()
    parser.add_argument("run_dir", help="a run folder with a model (written by train)")
    parser.add_argument("--config", help="JSON (or YAML) file with ProbeConfig fields (protocol: {...}); "
                                         "options override it")
    parser.add_argument("--layers", nargs="+", help="layer names (default: every leaf layer but flatten, dropout, "
                                                   "identity and noise layers)")
    parser.add_argument("--position", help=f"units of a feature map: centre or pool (default {d.position})")
    parser.add_argument("--max-units", type=int, help=f"units per layer (default {d.max_units})")
    parser.add_argument("--noise", help=f"model noise while recording: off, on or frozen (default {d.noise})")
    parser.add_argument("--visual-degrees", type=float, help="visual angle of the input (default: what the model "
                                                              "declares, else pixels)")
    parser.add_argument("--images", dest="n_images", type=int, help=f"test images (default {d.n_images})")
    parser.add_argument("--folds", type=int, help=f"linear-probe folds (default {d.probe_folds})")
    parser.add_argument("--mei-units", type=int, help=f"units per layer with maps and MEIs (default {d.mei_units})")
    parser.add_argument("--mei-steps", type=int, help=f"default {d.mei_steps}")
    parser.add_argument("--mei-seeds", type=int, help=f"default {d.mei_seeds}")
    parser.add_argument("--lesion-layer", help="layer to lesion (default: the last probed layer with enough units)")
    parser.add_argument("--lesion-mode", help=f"zero, mean or noise (default {d.lesion_mode})")
    parser.add_argument("--lesion-fraction", type=float, help=f"channels lesioned per class (default {d.lesion_fraction})")
    parser.add_argument("--species", help=f"published V1 distributions: macaque or mouse (default {d.species})")
    parser.add_argument("--input-shape", nargs=3, type=int, metavar=("C", "H", "W"),
                        help="model input (default: from the run)")
    parser.add_argument("--seed", type=int, help=f"default {d.seed}")
    parser.add_argument("--dataset", help="test images from this dataset (default: the run's)")
    parser.add_argument("--data-dir", help="folder holding the dataset files (default: the run's)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing results/insilico.json")
    parser.add_argument("--no-report", action="store_true", help="do not rebuild report.html")
    add_execution_arguments(parser)
    add_quiet_argument(parser)


def config_from(args):
    """The :class:`ProbeConfig` of the options given (defaults from the dataclass)."""
    from ..insilico.config import ProbeConfig
    from .options import config_from_args

    base = {"input_shape": list(args.input_shape)} if args.input_shape else {}
    return config_from_args(ProbeConfig, args, {attr: f for attr, (f, _) in _OPTIONS.items()}, args.config, base)


def print_result(result) -> None:
    from ..results import format_figure

    print(f"{'layer':<12} {'units':>5} {'tuned':>5} {'1-CV':>6} {'OSI':>6} {'SF':>8} {'F1/F0':>6} {'SI':>6} "
          f"{'sparse':>6} {'PR':>6} {'probe':>6} {'KS SF':>6}")
    for entry in result.layers:
        m = entry.measures

        def med(name, m=m):
            return format_figure(m.median(name)[0], ".3g")

        ks = next((d.ks for d in entry.distances if d.measure == "preferred_sf"), None)
        print(f"{entry.layer:<12} {m.n_units:>5} {m.median('orientation_selectivity')[1]:>5} "
              f"{med('orientation_selectivity'):>6} {med('osi'):>6} "
              f"{med('preferred_sf'):>8} {med('modulation_ratio'):>6} {med('suppression_index'):>6} "
              f"{med('lifetime_sparseness'):>6} {format_figure(m.participation_ratio, '.1f'):>6} "
              f"{format_figure(entry.probe.accuracy if entry.probe else None, '.3f'):>6} {format_figure(ks, '.2f'):>6}")
    print("medians over the units where each measure is defined ('tuned': units with an orientation tuning)")
    if result.lesions is not None:
        import numpy as np

        drop = result.lesions.drop()
        hit = int((drop.argmax(1) == np.arange(len(drop))).sum())
        print(f"lesions in {result.lesions.layer}: the class a lesion hurts most is its own for {hit} of {len(drop)}")


def run(args) -> int:
    from ..insilico.workflow import probe_run
    from ..progress import default_progress

    config = config_from(args)
    result = probe_run(args.run_dir, config, dataset=args.dataset, data_dir=args.data_dir, overwrite=args.overwrite,
                       progress=default_progress(quiet=args.quiet))
    print_result(result)
    print(f"results: {args.run_dir}/results/insilico.json ({result.time_s:.1f} s on {result.execution['device']})")
    if not args.no_report:
        from ..report import build_report

        print(f"report: {build_report(args.run_dir)}")
    return 0
