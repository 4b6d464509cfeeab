"""``neuroaikit evaluate RUN_DIR``: the robustness protocol for (stochastic) defenses."""

from __future__ import annotations

from .options import add_execution_arguments, add_quiet_argument

NAME = "evaluate"
HELP = "attack a trained run with the randomized-defense protocol (APGD-EOT, Square, transfer, checks)"
DESCRIPTION = """\
Measure the adversarial robustness of the model in a run folder honestly, also when its
noise layers make it stochastic: an eps sweep until accuracy reaches chance with APGD-CE and
APGD-DLR using Expectation over Transformation (EOT, gradients averaged over noise draws, the
AutoAttack "rand" setting), Square (black box, EOT loss), transfer from the noise-off twin
and a random-noise baseline. An image counts as robust only if it survives every attack and
the deployed inference rule classifies it correctly in a majority of fresh draws. Sanity
checks (the model is better than chance at all, accuracy falls to chance, more steps / more
EOT change nothing, frozen noise, black box not stronger than white box, finite non-zero
gradients) are printed as pass/warn; a model whose clean accuracy is not clearly above chance
gets a WARNING line, since none of its figures mean anything.
Results go to RUN_DIR/results/robustness.json, and RUN_DIR/report.html is rebuilt to draw them
(not with --no-report).

The deployed rule (one draw, mean or vote of N draws) is the run's, unless --rule is given.
The full default (200 images, 100 steps, EOT 20) takes a while on a CPU; --quick gives a
first look in a minute or two, not a number to publish.

Your own attacks join the sweep with --attack NAME=SPEC (SPEC: package.module:Name or
file.py:Name, called as Name(model, eps=, eot=, rule=, seed=) and returning attack(x, y) ->
x_adv); they count in the per-example worst case, and an output beyond eps or outside [0, 1]
is refused.

examples:
  neuroaikit evaluate runs/mnist-hidden-noise --data-dir ../shared/data/mnist --quick
  neuroaikit evaluate runs/mnist-hidden-noise --eps 0.1 0.2 0.3 0.4 --n-examples 500 --eot 20
  neuroaikit evaluate runs/mnist-hidden-noise --quick --attack fab=my_attacks.py:FAB
"""


def add_arguments(parser):
    parser.add_argument("run_dir", help="a run folder written by `neuroaikit train`")
    parser.add_argument("--data-dir", help="folder with the dataset files (default: the one the run was trained with)")
    parser.add_argument("--eps", type=float, nargs="+", metavar="EPS",
                        help="the eps sweep (default Linf 0.05 .. 0.5 for grey images, 1/255 .. 32/255 for colour; "
                             "L2 0.5 .. 4 and 0.125 .. 2)")
    parser.add_argument("--reference-eps", type=float, help="eps of the headline figure and the checks (default Linf 0.3 or 8/255, L2 2.0 or 0.5)")
    parser.add_argument("--norm", choices=("Linf", "L2"), help="threat model (default Linf)")
    parser.add_argument("--n-examples", type=int, help="first N test images (default 200; 32 with --quick)")
    parser.add_argument("--steps", type=int, help="APGD iterations (default 100; 20 with --quick)")
    parser.add_argument("--eot", type=int, help="noise draws per gradient (default 20; 5 with --quick)")
    parser.add_argument("--square-queries", type=int, help="Square queries per image (default 1000; 100 with --quick)")
    parser.add_argument("--checks", type=int, help="fresh evaluations in the final majority check (default 10)")
    parser.add_argument("--rule", choices=("single", "mean", "vote"), help="deployed inference rule (default: the run's)")
    parser.add_argument("--n-draws", type=int,
                        help="draws of the mean/vote rule (default: the run's eval_draws, with any --rule; else 20)")
    parser.add_argument("--seed", type=int, help="seed of attacks and noise (default 0)")
    parser.add_argument("--batch-size", type=int,
                        help="examples attacked together (default 100; each is EOT draws of rows: fewer if memory runs out)")
    parser.add_argument("--attack", action="append", metavar="NAME=SPEC", default=[],
                        help="add your own attack (repeatable): SPEC is package.module:Name or file.py:Name")
    parser.add_argument("--quick", action="store_true", help="a short first look: 32 images, 20 steps, EOT 5")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing results/robustness.json")
    parser.add_argument("--no-report", action="store_true", help="do not rebuild report.html")
    add_execution_arguments(parser)
    add_quiet_argument(parser)


def _extra_attacks(specs: list[str]) -> dict:
    from ..attacks.evaluate import import_attack
    from ..errors import ConfigError

    extra = {}
    for item in specs:
        name, sep, spec = item.partition("=")
        if not sep or not name.strip() or not spec.strip():
            raise ConfigError(f"--attack {item!r}: expected NAME=SPEC, e.g. fab=my_attacks.py:FAB")
        if name.strip() in extra:
            raise ConfigError(f"--attack: {name.strip()!r} is given twice")
        extra[name.strip()] = import_attack(spec.strip())
    return extra


def _refuse_draws_for_a_single_draw_run(run_dir, config) -> None:
    """``--n-draws`` without ``--rule`` takes the run's rule: refuse it where that rule draws once.
    (The API accepts it: a sweep's evaluate step may set draws for trials of several rules.)"""
    from ..attacks.evaluate import with_deployed_rule
    from ..errors import NeuroAIKitError
    from ..runs import Run

    try:
        trained = Run.open(run_dir).config
    except (NeuroAIKitError, OSError):
        return  # evaluate_run says what is wrong with the run folder
    unused = with_deployed_rule(config, trained).unused_setting({"n_draws"})  # the same rule, on the run's own
    if unused is not None:
        raise unused


def run(args) -> int:
    from ..attacks.evaluate import RobustnessConfig, evaluate_run
    from ..progress import default_progress
    from .options import execution_from_args

    options = {
        "eps": args.eps, "reference_eps": args.reference_eps, "norm": args.norm, "n_examples": args.n_examples,
        "steps": args.steps, "eot": args.eot, "square_queries": args.square_queries, "checks": args.checks,
        "rule": args.rule, "n_draws": args.n_draws, "seed": args.seed, "batch_size": args.batch_size,
    }
    options = {k: v for k, v in options.items() if v is not None}
    config = RobustnessConfig.quick(**options) if args.quick else RobustnessConfig(**options)
    unused = config.unused_setting(options)  # typed, yet this evaluation would not use it (--square-queries for L2)
    if unused is not None:
        raise unused
    if args.n_draws is not None and args.rule is None:
        _refuse_draws_for_a_single_draw_run(args.run_dir, config)
    result = evaluate_run(args.run_dir, data_dir=args.data_dir, config=config, overwrite=args.overwrite,
                          execution=execution_from_args(args), progress=default_progress(quiet=args.quiet),
                          extra_attacks=_extra_attacks(args.attack))
    from ..execution import is_main_process

    if not is_main_process():
        return 0
    warning = result.chance_warning()
    if warning:
        _shout(warning)
    if result.randomness is not None:
        print(f"model: {result.randomness.describe()}")
        for line in result.randomness.warnings:
            print(f"WARNING: {line}")
    print(f"deployed rule: {result.rule.rule} ({result.rule.n_draws} draws); {result.n_examples} test images")
    print(f"clean accuracy {result.clean_accuracy:.4f}; robust accuracy (worst case over attacks) "
          f"{result.robust_accuracy:.4f} at {result.norm} eps {result.reference_eps:.4g}")
    for check in result.checks:
        print(f"  [{check.status}] {check.name}: {check.detail}" + ("" if check.passed else f" (see {check.page})"))
    print(f"results: {args.run_dir}/results/{result.result_name}.json ({result.seconds} s)")
    if not args.no_report:
        from ..report import build_report

        print(f"report: {build_report(args.run_dir)}")
    if warning:  # again at the end, where the eye lands after a long run
        _shout(warning)
    return 0


def _shout(warning: str) -> None:
    import sys

    bar = "!" * 78
    for stream in (sys.stdout, sys.stderr):
        print(f"{bar}\nWARNING: {warning}\n{bar}", file=stream, flush=True)
