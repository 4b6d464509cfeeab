"""Report section: NeuroBench metrics and energy, comparing models on the same task. Reads the
typed :class:`~neuroaikit.energy.EnergyResult`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import cast

from ...runs import Run
from ..html import Section
from .._reading import load_stored
from . import computed_on

ORDER = 60


#: ActivationSparsity of a model whose activations no hook saw (no activation module)
NOT_COUNTED = "not counted"


def _rounded(value, digits: int, missing: str = "-"):
    return missing if value is None else round(value, digits)


def _changed_since(row, result, run: Run) -> str | None:
    """Why another run's row no longer describes that run (its table row is what was measured
    then), or ``None``: it holds the energy result of the same measurement, or the files predate
    the measurement ids. A row's run is looked for where it was and, when the folders have moved
    together, where it lies relative to this run."""
    if row.path is None or result.measurement_id is None or result.path is None or row.path == result.path:
        return None
    here = run.path.resolve()
    try:
        beside = (here / os.path.relpath(row.path, result.path)).resolve()
    except ValueError:  # Windows: runs on different drives have no relative path
        beside = Path(row.path)
    # a run no longer where it was measured (moved or copied with the others): its siblings first
    places = [Path(row.path), beside] if here == Path(result.path) else [beside, Path(row.path)]
    folder = next((p for p in places if p.is_dir()), None)
    if folder is None:
        return f"{row.run} is no longer at {row.path}"
    try:
        stored = json.loads((folder / "results" / "energy.json").read_text()).get("measurement_id")
    except (OSError, ValueError, AttributeError):
        stored = None
    if stored != result.measurement_id:
        return f"{folder} has been measured again, retrained or replaced since"
    return None


def _short(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def build(run: Run) -> list[Section]:
    from ...energy.results import EnergyResult

    result = load_stored(run, EnergyResult)
    if result is None:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    this, rows = result.this, result.comparison
    ops, energy = this.SynapticOperations, this.energy
    section = Section(f"Energy and NeuroBench metrics ({result.dataset}, {result.n_samples} test images)")
    section.paragraph(
        "Metrics follow NeuroBench's definitions (Yik et al. 2025): synaptic operations per sample, "
        "effective (zero inputs and weights skipped) and dense; ACs for spike (or binary) inputs, MACs "
        f"otherwise. Energy = operations x energy per operation, preset {result.precision}."
        + computed_on(result.execution, "Measured")
    )
    section.table(
        ["metric", "value"],
        [["Footprint (bytes)", this.Footprint], ["ParameterCount", this.ParameterCount],
         ["ConnectionSparsity", this.ConnectionSparsity],
         ["ActivationSparsity", _rounded(this.ActivationSparsity, 4, missing=NOT_COUNTED)],
         ["Effective_MACs / sample", round(ops.Effective_MACs, 1)],
         ["Effective_ACs / sample", round(ops.Effective_ACs, 1)],
         ["Dense / sample", round(ops.Dense, 1)],
         ["MembraneUpdates / sample", round(this.MembraneUpdates, 1)],
         ["accuracy", _rounded(this.accuracy, 4)],
         ["energy, effective (uJ / sample)", _rounded(energy.effective_uj if energy else None, 4)],
         ["energy, dense (uJ / sample)", _rounded(energy.dense_uj if energy else None, 4)]],
    )
    plotted = [r for r in rows if r.accuracy is not None and r.effective_uJ is not None]
    changed = {i: why for i, r in enumerate(rows) if (why := _changed_since(r, result, run)) is not None}
    if len(rows) > 1:
        if plotted:
            fig, ax = plt.subplots(figsize=(6.4, 4))
            for r in plotted:
                # filtered above; dense_uJ comes from the same estimate as effective_uJ
                effective, accuracy = cast(float, r.effective_uJ), cast(float, r.accuracy)
                ax.scatter(effective, accuracy, marker="o")
                ax.scatter(cast(float, r.dense_uJ), accuracy, marker="x", color="gray")
                ax.annotate(r.run, (effective, accuracy), fontsize=8)
            ax.set_xscale("log")
            ax.set_xlabel("energy per sample (uJ); o effective, x dense")
            ax.set_ylabel("test accuracy")
            ax.grid(alpha=0.3)
            section.figure(fig, "Accuracy against estimated energy per inference")
        section.table(
            ["run", "model", "T", "accuracy", "eff. MACs", "eff. ACs", "dense ops", "act. sparsity",
             "effective uJ", "dense uJ"],
            [[r.run + (" (changed since)" if i in changed else ""), r.model or "-", r.T if r.T is not None else "-", _rounded(r.accuracy, 4),
              _short(r.Effective_MACs), _short(r.Effective_ACs), _short(r.Dense),
              _rounded(r.ActivationSparsity, 4, missing=NOT_COUNTED), _short(r.effective_uJ), _short(r.dense_uJ)]
             for i, r in enumerate(rows)],
        )
    if changed:
        section.paragraph("The comparison shows each run as measured together with this one; since then "
                          + "; ".join(changed.values()) + ". Run `neuroaikit energy` on the runs again to "
                          "compare them as they are now.")
    if result.this.uncounted_weights:
        section.paragraph("Not counted: the products of weights " + ", ".join(result.this.uncounted_weights)
                          + " (no Linear/Conv layer or product-reporting module owns them), so this run's "
                            "operations and energy are too low.")
    section.paragraph("Assumptions: " + " | ".join(result.assumptions))
    return [section]
