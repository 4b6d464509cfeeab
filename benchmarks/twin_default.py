"""The default ``twin fit`` command on a realistic synthetic recording, as a user runs it.

Runs, in this process, ``neuroaikit twin fit synthetic --synthetic preset=realistic`` at Lurz size
(``--neurons`` neurons, 4,500 train / 500 validation trials, 100 test images x 10 repeats,
36x64) with ``--time-limit`` and every other setting at its default (``--members auto``
included: more twins while the budget lets another converge; the report is built, as the
command does unless told ``--no-report``), then reports what the run folder holds: the whole
command's time, every twin fitted (seed, epochs, fitting time, how it stopped, its validation
r, whether it joined the ensemble), and the test-tier scores of the run's model
(``twin``: the ensemble when there is one), of its first twin alone (``first_member``), of the
pixel ridge and of the simulator itself.

    python benchmarks/twin_default.py                                   # 5,300 neurons, 2,700 s
    python benchmarks/twin_default.py --neurons 300 --quick --time-limit 300   # minutes
    python benchmarks/twin_default.py --set=--behavior --set=--shifter  # more twin fit options
    python benchmarks/twin_default.py --recording ../shared/data/neural/allen_natural_scenes_v1.npz  # a file

Prints every figure; ``--json FILE`` also writes them.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from neuroaikit.cli.main import main as cli  # noqa: E402
from neuroaikit.io import write_text  # noqa: E402
from neuroaikit.runs import Run  # noqa: E402

SCORES = ("single_trial_correlation", "correlation_to_average", "feve")


def run_twin_fit(synthetic: dict, options: list[str], out: Path,
                      recording: str | None = None) -> tuple[str, float, Run | int]:
    """Run ``neuroaikit twin fit synthetic`` with the simulator settings ``synthetic`` (or
    ``twin fit RECORDING``) and the other ``options`` into ``out`` (replaced), in this process;
    returns the command as shown (``RUN`` for ``out``), its wall time, and the run (or the exit
    status when it failed)."""
    command = ["twin", "fit", recording or "synthetic"]
    for key, value in ({} if recording else synthetic).items():
        command += ["--synthetic", f"{key}={value}"]
    command += [*options, "--out", str(out), "--overwrite"]
    shown = "neuroaikit " + shlex.join(command).replace(str(out), "RUN")
    print(shown, flush=True)
    started = time.perf_counter()
    rc = cli(command)
    wall = time.perf_counter() - started
    if rc != 0:
        print(f"twin fit exited with {rc}", file=sys.stderr)
        return shown, wall, rc
    return shown, wall, Run.open(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--neurons", type=int, help="neurons of the simulated recording (default 5,300)")
    p.add_argument("--time-limit", type=float, default=2700.0, help="the command's --time-limit (default 2700)")
    p.add_argument("--quick", action="store_true", help="1,100 trials, 18x32 images")
    p.add_argument("--set", action="append", default=[], metavar="OPTION",
                   help="another twin fit option, passed as given (repeat, with '=': --set=--behavior "
                        "--set=--shifter --set=--members --set=1)")
    p.add_argument("--workdir", help="where the run folder goes (default: a temporary folder, removed)")
    p.add_argument("--recording", metavar="PATH", help="fit this recording instead of the simulated one")
    p.add_argument("--data-dir", help="unused (the recording is simulated or named by --recording); accepted for a "
                                      "uniform interface")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    if args.recording and (args.quick or args.neurons is not None):
        p.error("--neurons and --quick size the simulated recording; they do not apply to --recording")
    if args.quick:
        size = {"image_shape": "[18,32]", "n_train": 800, "n_validation": 100, "n_test_images": 20, "repeats": 10}
    else:
        size = {"image_shape": "[36,64]", "n_train": 4500, "n_validation": 500, "n_test_images": 100, "repeats": 10}
    synthetic = {"preset": "realistic", "n_neurons": args.neurons or 5300, **size}
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(args.workdir or scratch) / "twin-realistic"
        shown, wall, run = run_twin_fit(synthetic, ["--time-limit", f"{args.time_limit:g}", *args.set], out,
                                             args.recording)
        if isinstance(run, int):
            return run
        fit, evaluation = run.result("twin_fit"), run.result("twin_eval")
    models = {name: {k: scores.get(k) for k in SCORES} for name, scores in evaluation["models"].items()}
    figures = {"command": shown, "command_seconds": wall, "time_limit": args.time_limit,
               **({"recording": args.recording} if args.recording else {"synthetic": synthetic}),
               "oracle_correlation": (evaluation.get("ceiling") or {}).get("oracle_correlation"),
               "members": fit.get("members", []), "ensemble_validation_correlation": fit.get("ensemble_validation_correlation"),
               "models": models}
    oracle = figures["oracle_correlation"]
    print(f"\nthe command took {wall:.0f} s of its {args.time_limit:.0f}; jackknife oracle "
          + ("-" if oracle is None else f"{oracle:.3f}"))
    print(f"{'twin':>6} {'seed':>4} {'epochs':>6} {'fit s':>6} {'stopped by':>15} {'validation r':>12} {'kept':>5} "
          f"{'ensemble validation r':>22}")
    for i, m in enumerate(figures["members"], 1):
        ens = m.get("ensemble_validation_correlation")
        print(f"{i:>6} {m['seed']:>4} {m['epochs']:>6} {m['fit_seconds']:>6.0f} {m['stopped_by'] or '-':>15} "
              f"{m['best_validation_correlation']:>12.4f} {'yes' if m['kept'] else 'no':>5} "
              f"{'' if ens is None else f'{ens:.4f}':>22}")
    for i, m in enumerate(figures["members"], 1):
        if m.get("starts"):
            print(f"twin {i} starts (seed: epoch-1 validation r): "
                  + ", ".join(f"{s['seed']}: {s['validation_correlation']:.4f}" for s in m["starts"]))
    print(f"\n{'model (test tier)':<18} {'single-trial r':>14} {'r to average':>12} {'FEVE':>6}")
    for name, scores in models.items():
        print(f"{name:<18} " + " ".join(f"{scores[k]:>{w}.4f}" if scores[k] is not None else f"{'-':>{w}}"
                                        for k, w in zip(SCORES, (14, 12, 6))))
    if args.json:
        write_text(args.json, json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
