"""``neuroaikit certify RUN_DIR``: certified L2 robustness of a randomized model."""

from __future__ import annotations

import math


from .options import add_execution_arguments, add_quiet_argument

NAME = "certify"
HELP = "certified L2 radii for input noise (randomized smoothing) or hidden-layer noise (PixelDP)"
DESCRIPTION = """\
Prove, per test image, an L2 radius within which the randomized model's prediction cannot be
changed (with probability at least 1 - alpha per image over the Monte-Carlo draws):

  smoothing  Gaussian noise on the input (Cohen, Rosenfeld & Kolter 2019): n0 draws select the
             top class, n fresh draws give a Clopper-Pearson lower bound p_A on its probability,
             radius = sigma * Phi^-1(p_A); p_A <= 1/2 abstains. sigma defaults to the model's
             input-noise sigma. Train for it with Gaussian augmentation at that sigma:
             neuroaikit train ... --objective gaussian_augmentation --objective-param sigma=0.25
  hidden     the model's own Gaussian noise after a layer (PixelDP, Lecuyer et al. 2019): the
             layers before the noise are bounded by their operator norms (sensitivity Delta), the
             noise makes the network a Gaussian mechanism, and the expected-output bound gives the
             radius. The noise site must end a chain of layers from the input (a sequential
             model such as the toolkit's cnn and mlp, or e.g. a ResNet's conv1, found by
             torch.fx); conv, linear, ReLU-like, pooling and eval-mode batch-norm layers.

Writes RUN_DIR/results/certification.json (one certificate per method, site and sigma; an
existing one is replaced only with --overwrite) and adds certified-accuracy curves next to the
attacked (empirical) robust accuracy of `neuroaikit evaluate --norm L2` to RUN_DIR/report.html.

examples:
  neuroaikit certify runs/mnist-smooth --method smoothing --sigma 0.25 --n 10000 --n-examples 500
  neuroaikit certify runs/mnist-hidden --method hidden --layer conv1 --n 10000
  neuroaikit certify runs/cifar-resnet --sigma 0.25 --device cuda --n 100000 --n-examples 500
"""

_OPTIONS = {
    "method": ("method", "--method"), "sigma": ("sigma", "--sigma"), "layer": ("layer", "--layer"),
    "n0": ("n0", "--n0"), "n": ("n", "--n"), "alpha": ("alpha", "--alpha"), "delta": ("delta", "--delta"),
    "n_examples": ("n_examples", "--n-examples"), "batch_size": ("batch_size", "--batch-size"),
    "max_rows": ("max_rows", "--max-rows"), "radii": ("radii", "--radii"), "seed": ("seed", "--seed"),
    "precision": ("precision", "--precision"), "compile": ("compile", "--compile"),
}
FLAGS = {field: flag for field, flag in _OPTIONS.values()}


def add_arguments(parser):
    from ..certify.config import METHODS, CertificationConfig

    d = CertificationConfig()
    parser.add_argument("run_dir", help="a run folder written by `neuroaikit train`")
    parser.add_argument("--data-dir", help="folder with the dataset files (default: the one the run was trained with)")
    parser.add_argument("--method", choices=METHODS, help=f"smoothing (input noise) or hidden (default {d.method})")
    parser.add_argument("--sigma", type=float, help="smoothing noise s.d. (default: the model's input-noise sigma)")
    parser.add_argument("--layer", help="noise site of the hidden method (default: the model's only Gaussian site)")
    parser.add_argument("--n0", type=int, help=f"selection draws (default {d.n0})")
    parser.add_argument("--n", type=int, help=f"estimation draws (default {d.n}; Cohen et al. use 100000)")
    parser.add_argument("--alpha", type=float, help=f"failure probability per image, in (0, 1) (default {d.alpha})")
    parser.add_argument("--delta", type=float, help=f"DP delta of the hidden method, in (0, 1) (default {d.delta})")
    parser.add_argument("--n-examples", type=int, help=f"first N test images (default {d.n_examples})")
    parser.add_argument("--batch-size", type=int, help=f"images drawn for together (default {d.batch_size})")
    parser.add_argument("--max-rows", type=int, help="rows (images x draws) per forward pass (default: 256 on a CPU, 8192 on a GPU)")
    parser.add_argument("--radii", type=float, nargs="+", metavar="R",
                        help="radii of the certified-accuracy curve (default: 0 to the largest radius certified in "
                             "20 equal steps, plus the paper's radii up to it)")
    parser.add_argument("--seed", type=int, help=f"seed of the draws (default {d.seed})")
    parser.add_argument("--precision", choices=("32", "bf16-mixed"),
                        help=f"forward passes in float32 or under bfloat16 autocast (smoothing only; about 2x "
                             f"faster where the CPU or GPU has bf16 units; the bf16 network is certified) "
                             f"(default {d.precision})")
    parser.add_argument("--compile", action="store_true", default=None,
                        help="smoothing only: forward passes through torch.compile (the same network in fewer passes "
                             "over its activations; compiled once, which the reported images/s include; on a CPU "
                             "it needs a C++ compiler)")
    parser.add_argument("--overwrite", action="store_true", help="replace a certificate with the same method, site and sigma")
    parser.add_argument("--no-report", action="store_true", help="do not rebuild report.html")
    add_execution_arguments(parser)
    add_quiet_argument(parser)


def run(args) -> int:
    from ..certify.config import CertificationConfig
    from ..certify.workflow import PAPER_RADII, certify_run
    from ..progress import default_progress
    from ..report.sections import device_and_precision
    from .options import config_from_args, execution_from_args

    config = config_from_args(CertificationConfig, args, {attr: field for attr, (field, _) in _OPTIONS.items()})
    cert = certify_run(args.run_dir, data_dir=args.data_dir, config=config, overwrite=args.overwrite,
                       execution=execution_from_args(args), progress=default_progress(quiet=args.quiet))
    print(f"{cert.label()}: {cert.n_examples} {cert.split} images, n0 {cert.n0}, n {cert.n}, alpha {cert.alpha:g}"
          + (f", delta {cert.delta:g}, sensitivity {cert.sensitivity:.4g}" if cert.method == "hidden" else ""))
    for bound in cert.layer_bounds:
        print(f"  {bound.name} ({bound.kind}): {bound.bound:.4g} ({bound.how})")
    shown = cert.curve[::5] + [p for p in cert.curve if p.radius in PAPER_RADII and p not in cert.curve[::5]]
    print("certified accuracy (L2): " + ", ".join(f"{p.certified_accuracy:.3f} at {p.radius:.3g}"
                                                 for p in sorted(shown, key=lambda p: p.radius)))
    device = (cert.execution or {}).get("device", "cpu")
    # rounded down: a cap of 0.99988 printed as 1 would claim a radius no certificate reaches
    cap = math.floor(cert.max_radius * 1000 + 1e-6) / 1000  # (the 1e-6: 1.001 * 1000 is 1000.9999...)
    print(f"abstained on {cert.abstain_fraction:.3f}; largest radius n draws can certify {cap:.3f}; "
          f"{cert.images_per_second:.2f} images/s on {device_and_precision(device, cert.precision)}"
          + (" (compiled; compiling included)" if cert.compiled else ""))
    print(f"results: {args.run_dir}/results/certification.json ({cert.seconds} s)")
    if not args.no_report:
        from ..report import build_report

        print(f"report: {build_report(args.run_dir)}")
    return 0
