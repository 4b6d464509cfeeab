"""``neuroaikit data {list,info,download}``."""

from __future__ import annotations

from ..errors import ConfigError

NAME = "data"
HELP = "list the image datasets, show one's files and md5 status (info), and download them"
DESCRIPTION = """\
Image datasets: mnist, fashion-mnist, cifar10 (files you bring or download) and digits
(scikit-learn's 8x8 digits, embedded, no files needed).

--data-dir is the folder holding a dataset's files or a parent with mnist/,
fashion-mnist/, cifar-10-batches-py/ or cifar10*/ in it; default $NEUROAIKIT_DATA,
else ~/.neuroaikit/data. Files are checked against the official md5s.

examples:
  neuroaikit data list
  neuroaikit data info --dataset mnist --data-dir ../shared/data
  neuroaikit data download --dataset fashion-mnist --data-dir ~/data
  neuroaikit data download --dataset mnist --data-dir ~/data --base-url http://mirror.example/mnist/
"""


def add_arguments(parser):
    import argparse

    from ..data import DATASETS

    def action(name: str, help: str, example: str):
        return actions.add_parser(name, help=help, description=f"{help}\n\nexample:\n  {example}",
                                  formatter_class=argparse.RawDescriptionHelpFormatter)

    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    action("list", "the datasets, their image shapes and classes (reads no file)", "neuroaikit data list")

    info = action("info", "where a dataset is, image counts per split and class, md5 status of every file "
                  "(exit 2 on a problem)", "neuroaikit data info --dataset mnist --data-dir ../shared/data")
    info.add_argument("--dataset", required=True, choices=DATASETS)
    info.add_argument("--data-dir", help="folder holding the files, or its parent (default: $NEUROAIKIT_DATA "
                                          "or ~/.neuroaikit/data)")
    info.add_argument("--json", action="store_true", help="print the description as JSON")

    download = action("download", "fetch the official files (md5-checked, written atomically; files already "
                      "present and correct are kept)", "neuroaikit data download --dataset cifar10 --data-dir ~/data")
    download.add_argument("--dataset", required=True, choices=[d for d in DATASETS if d != "digits"])
    download.add_argument("--data-dir", help="parent folder to download into (default: $NEUROAIKIT_DATA or "
                                              "~/.neuroaikit/data)")
    download.add_argument("--base-url", help="a mirror holding the same file names (default: official location)")
    download.add_argument("--no-verify", action="store_true", help="skip the md5 check (a mirror with other files)")
    download.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the server (default 60)")
    parser.set_defaults(_parser=parser)


def run(args) -> int:
    from .. import data

    if args.action == "list":
        rows = [(name, "x".join(map(str, data.dataset_info(name).shape)), str(data.dataset_info(name).n_classes),
                 f"{data.dataset_info(name).train_size}/{data.dataset_info(name).test_size}",
                 data.dataset_info(name).source) for name in data.DATASETS]
        _print_table(("dataset", "CxHxW", "classes", "train/test", "source"), rows)
        return 0
    if args.action == "info":
        description = data.describe_dataset(args.dataset, args.data_dir)
        if args.json:
            import json

            print(json.dumps(description, indent=2))
        else:
            _print_description(description)
        bad = description["problems"] or any(f["status"] == "mismatch" for f in description["files"])
        return 2 if bad else 0
    if args.action == "download":
        folder = data.download_dataset(args.dataset, args.data_dir, base_url=args.base_url,
                                       verify=not args.no_verify, timeout=args.timeout, echo=print)
        print(f"{args.dataset}: files in {folder}")
        return 0
    raise ConfigError("data needs an action: list, info or download (see 'neuroaikit data --help')")


def _print_table(headers, rows) -> None:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip())


def _print_description(d: dict) -> None:
    print(f"dataset: {d['name']}  ({d['source']})")
    print(f"folder:  {d['folder'] or '(embedded, no files)'}")
    print(f"images:  {'x'.join(map(str, d['shape']))} (CxHxW), {d['n_classes']} classes: {', '.join(d['classes'])}")
    for split, s in d["splits"].items():
        timing = f" (read, md5-checked and converted in {s['load_seconds']:.2f} s)" if "load_seconds" in s else ""
        print(f"{split}: {s['n']} images{timing}; per class {s['class_counts']}")
    for f in d["files"]:
        status = {"ok": "md5 ok (official)", "ok-content": "md5 ok (re-compressed, content official)",
                  "mismatch": f"md5 MISMATCH: {f['md5']}, expected {f['expected']}",
                  "unknown": "no official md5 (not checked)"}[f["status"]]
        print(f"  {f['path']}: {status}")
    for problem in d["problems"]:
        print(f"problem: {problem}")
