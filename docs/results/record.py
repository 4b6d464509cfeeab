"""Run a benchmark with ``--json`` and keep its figures, stamped, as ``docs/results/data/NAME.json``.

    python docs/results/record.py NAME [--title TEXT] -- python benchmarks/SCRIPT.py [OPTIONS]

The benchmark's own JSON is stored unchanged under ``figures``, beside a ``stamp`` with the
command as run, the commit, the date and the machine, so the results page generated from it
(``docs/_ext/resultsgen.py``) says how every number was made.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from neuroaikit.io import write_text

ROOT = Path(__file__).resolve().parents[2]


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> str:
    """The machine in words: CPU, cores, load, torch and its device."""
    try:
        import torch

        device = f"CUDA {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "CPU only"
        torch_version = torch.__version__
    except ImportError:  # pragma: no cover - torch is a dependency
        device, torch_version = "unknown device", "absent"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average {load:.1f} at start, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}, torch {torch_version}, "
            f"{device}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="page name: docs/results/data/NAME.json")
    parser.add_argument("--title", help="page title (default: Benchmark: NAME)")
    parser.add_argument("--description", help="one paragraph on what the benchmark measures")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing page of the same name")
    parser.add_argument("--commit", help="the commit a copy of the working tree was made from, where its own git "
                                         "history is missing or stale (a device machine); stamped as given")
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        parser.error("give the benchmark command after --")
    split = argv.index("--")
    args = parser.parse_args(argv[:split])
    command = argv[split + 1:]
    target = ROOT / "docs" / "results" / "data" / f"{args.name}.json"
    if target.exists() and not args.overwrite:
        # checked before the benchmark runs: a recorded page may stand for hours of compute
        parser.error(f"{target.relative_to(ROOT)} exists; pass --overwrite to replace it")
    if args.commit:
        commit = f"{args.commit} (run from a copy of the working tree made at that commit)"
    else:
        commit = _git("rev-parse", "--short", "HEAD")
        commit += (" (with uncommitted changes)" if _git("status", "--porcelain", "--untracked-files=no", "--", ".",
                                                         ":!docs/results/data") else "")
    stamp = {"command": shlex.join(command), "commit": commit,
             "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine()}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.json"
        started = dt.datetime.now()
        subprocess.run([*command, "--json", str(out)], cwd=ROOT, check=True)
        stamp["wall_time_s"] = round((dt.datetime.now() - started).total_seconds(), 1)
        figures = json.loads(out.read_text())
    record = {"title": args.title or f"Benchmark: {args.name}", "stamp": stamp, "figures": figures}
    if args.description:
        record["description"] = args.description
    write_text(target, json.dumps(record, indent=2) + "\n")  # a killed run leaves the page as it was
    print(f"wrote {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
