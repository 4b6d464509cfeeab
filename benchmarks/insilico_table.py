"""One table across runs: the measures of ``neuroaikit probe`` by layer (medians over the units that
respond to gratings; ``responsive`` counts them), their distance to V1, and
the runs' accuracy (one noise draw, noise off), so the effect of noise layers and of a V1 front-end
on unit properties can be read beside the effect on performance.

Reads ``results/insilico.json`` (run ``neuroaikit probe RUN`` first) and ``metrics.json``;
``results/robustness.json`` when present (``neuroaikit evaluate``) adds the robust accuracy: at the
evaluation's reference eps and, for the eps of ``--eps`` (default: the two smallest of the sweep),
the worst case over its attacks.

    python benchmarks/insilico_table.py runs/mnist-cnn runs/mnist-cnn-noise runs/mnist-v1net --json table.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from neuroaikit.insilico.results import InsilicoResult
from neuroaikit.runs import Run
from neuroaikit.io import write_text

MEASURES = ("orientation_selectivity", "osi", "preferred_sf", "sf_bandwidth", "modulation_ratio", "c50",
            "suppression_index", "lifetime_sparseness")


def _median(measures, name):
    if getattr(measures, name) is None:
        return None
    values = measures.array(name)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else None


def _robust(run, eps: list[float] | None) -> dict:
    robustness = run.result("robustness") or {}
    if not robustness:
        return {"robust_accuracy": None}
    sweep = {round(row["eps"], 6): row["worst_case"] for row in robustness["sweep"]}
    chosen = eps if eps is not None else sorted(sweep)[:2]
    out = {"robust_accuracy": robustness["robust_accuracy"], "reference_eps": robustness["reference_eps"]}
    out.update({f"robust@{e:g}": sweep.get(round(e, 6)) for e in chosen})
    return out


def rows_of(path: str, eps: list[float] | None = None) -> list[dict]:
    run = Run.open(path)
    result = InsilicoResult.load(run)
    if result is None:
        raise SystemExit(f"{path}: no results/insilico.json; run 'neuroaikit probe {path}' first")
    acc = (run.metrics or {}).get("test_accuracy", {})
    robust = _robust(run, eps)
    out = []
    for entry in result.layers:
        row = {"run": run.name, "layer": entry.layer, "units": entry.measures.n_units,
               "responsive": int(sum(entry.measures.responsive)),
               "sf_unit": entry.measures.sf_unit, "accuracy_single": acc.get("single"),
               "accuracy_noise_off": acc.get("noise_off"), **robust,
               "participation_ratio": entry.measures.participation_ratio,
               "probe_accuracy": entry.probe.accuracy if entry.probe else None}
        row.update({name: _median(entry.measures, name) for name in MEASURES})
        for d in entry.distances:
            row[f"ks_{d.species}_{d.measure}"] = d.ks
        out.append(row)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--eps", type=float, nargs="+", help="robust accuracy columns at these eps of the sweep")
    parser.add_argument("--json", help="write the rows to this JSON file")
    args = parser.parse_args(argv)
    rows = [row for path in args.runs for row in rows_of(path, args.eps)]
    keys = ["run", "layer", "units", "responsive", "orientation_selectivity", "osi", "preferred_sf", "sf_unit", "sf_bandwidth",
            "modulation_ratio", "c50", "suppression_index", "lifetime_sparseness", "participation_ratio",
            "probe_accuracy", "accuracy_single", "accuracy_noise_off", "reference_eps", "robust_accuracy"]
    keys += sorted({k for row in rows for k in row if k.startswith("robust@")}, key=lambda k: float(k[7:]))
    keys += sorted({k for row in rows for k in row if k.startswith("ks_")})
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        cells = [row.get(k) for k in keys]
        print("| " + " | ".join("-" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v)
                                for v in cells) + " |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_text(args.json, json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
