"""Report section: NeuroBench metrics and energy, comparing models on the same task."""

from __future__ import annotations

from ...runs import Run
from ..html import Section

ORDER = 60


def build(run: Run) -> list[Section]:
    data = run.result("energy")
    if not data:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    this, rows = data["this"], data["comparison"]
    section = Section(f"Energy and NeuroBench metrics ({data['dataset']}, {data['n_samples']} test images)")
    section.paragraph(
        "Metrics follow NeuroBench's definitions (Yik et al. 2025): synaptic operations per sample, "
        "effective (zero inputs and weights skipped) and dense; ACs for spike (or binary) inputs, MACs "
        f"otherwise. Energy = operations x energy per operation, preset {data['precision']}."
    )
    section.table(
        ["metric", "value"],
        [["Footprint (bytes)", this["Footprint"]], ["ParameterCount", this.get("ParameterCount")],
         ["ConnectionSparsity", this["ConnectionSparsity"]],
         ["ActivationSparsity", round(this["ActivationSparsity"], 4)],
         ["Effective_MACs / sample", round(this["SynapticOperations"]["Effective_MACs"], 1)],
         ["Effective_ACs / sample", round(this["SynapticOperations"]["Effective_ACs"], 1)],
         ["Dense / sample", round(this["SynapticOperations"]["Dense"], 1)],
         ["MembraneUpdates / sample", round(this["MembraneUpdates"], 1)],
         ["accuracy", round(this["accuracy"], 4)],
         ["energy, effective (uJ / sample)", round(this["energy"]["effective_joules_per_sample"] * 1e6, 4)],
         ["energy, dense (uJ / sample)", round(this["energy"]["dense_joules_per_sample"] * 1e6, 4)]],
    )
    if len(rows) > 1:
        fig, ax = plt.subplots(figsize=(6.4, 4))
        for r in rows:
            ax.scatter(r["effective_uJ"], r["accuracy"], marker="o")
            ax.scatter(r["dense_uJ"], r["accuracy"], marker="x", color="gray")
            ax.annotate(r["run"], (r["effective_uJ"], r["accuracy"]), fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("energy per sample (uJ); o effective, x dense")
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3)
        section.figure(fig, "Accuracy against estimated energy per inference")
        section.table(
            ["run", "model", "T", "accuracy", "eff. MACs", "eff. ACs", "dense ops", "act. sparsity",
             "effective uJ", "dense uJ"],
            [[r["run"], r["model"], r["T"] if r["T"] is not None else "-", round(r["accuracy"], 4),
              f"{r['Effective_MACs']:.4g}", f"{r['Effective_ACs']:.4g}", f"{r['Dense']:.4g}",
              round(r["ActivationSparsity"], 4), f"{r['effective_uJ']:.4g}", f"{r['dense_uJ']:.4g}"] for r in rows],
        )
    section.paragraph("Assumptions: " + " | ".join(data["assumptions"]))
    return [section]
