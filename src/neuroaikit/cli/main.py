"""``neuroaikit`` entry point: discovers the ``cmd_*`` modules and dispatches."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from .. import __version__
from ..errors import NeuroAIKitError

DESCRIPTION = """\
neuroaikit: learn from the brain to build better AI, and use AI to understand the brain.

Typical session:
  neuroaikit demo                                   # noisy CNNs on embedded digits, HTML report
  neuroaikit train --dataset mnist --data-dir DIR --noise relu2=gaussian:0.5 --noise-warmup 1 --out runs/mnist
  neuroaikit evaluate runs/mnist --quick            # APGD-EOT, Square, transfer, sanity checks
  neuroaikit align runs/mnist --neural antolik2016_mouse_v1.npz   # RSA / CKA / predictivity vs mouse V1
  neuroaikit twin fit sensorium-recording.zip --out runs/twin      # digital twin of mouse V1
  neuroaikit energy runs/mnist --data-dir DIR       # NeuroBench operations and energy
  neuroaikit report runs/mnist                      # self-contained HTML page of a run

Run 'neuroaikit COMMAND --help' for each command's options."""


def _commands():
    import neuroaikit.cli as package

    found = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("cmd_"):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            found.append(module)
    return sorted(found, key=lambda m: m.NAME)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neuroaikit", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"neuroaikit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _commands():
        p = sub.add_parser(
            module.NAME,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except NeuroAIKitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
