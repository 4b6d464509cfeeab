"""Report sections for sweep folders (``neuroaikit sweep``, ``neuroaikit demo``): the demo's
noise figure (``neuroaikit.demo.NoiseDemoResult``) and every sweep's summary table and
figure (:class:`~neuroaikit.sweep.SweepSummary`)."""

from __future__ import annotations

from typing import Any

from ...runs import Run
from ..html import Section
from .._reading import load_stored

ORDER = 5


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _label(value: Any) -> str:
    from ...sweep.spec import format_value

    return format_value(value)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _summary_figure(summary) -> Any | None:
    """One panel per metric against ``summary.x``; one line per combination of the other
    varied settings and tags."""
    x = summary.x
    rows = [r for r in summary.rows if r.status != "failed"]
    metrics = [m for m in summary.metrics if any(_number(r.metrics.get(m)) for r in rows)][:6]
    if not x or not metrics or not rows:
        return None
    others = [k for k in summary.params + summary.tags if k != x]

    def value(row, key):
        return row.params.get(key, row.tags.get(key))

    groups: dict[tuple, list] = {}
    for row in rows:
        if _number(value(row, x)):
            groups.setdefault(tuple(_label(value(row, k)) for k in others), []).append(row)
    if not groups:
        return None
    plt = _plt()
    cols = min(3, len(metrics))
    n_rows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(n_rows, cols, figsize=(4.3 * cols, 3.4 * n_rows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        for key, members in groups.items():
            members = sorted(members, key=lambda r: value(r, x))
            xs = [value(r, x) for r in members]
            ys = [r.metrics.get(metric) if _number(r.metrics.get(metric)) else float("nan") for r in members]
            label = ", ".join(f"{k}={v}" for k, v in zip(others, key)) or "all trials"
            ax.plot(xs, ys, "o-", label=label)
        ax.set_xlabel(x)
        ax.set_title(metric, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    if len(groups) > 1:
        axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _summary_section(summary) -> Section:
    title = f"Sweep{': ' + summary.name if summary.name else ''} ({summary.job}, {len(summary.rows)} trials)"
    section = Section(title)
    counts = ", ".join(f"{v} {k}" for k, v in summary.counts.items())
    how = {"ray": f"on Ray ({summary.workers} worker(s))" if summary.workers else "on Ray",
           "serial": "one after the other in one process"}.get(summary.backend, summary.backend)
    section.paragraph(
        f"Each trial is a run folder under trials/. Status of the last call: {counts}; trials that ran now ran {how}"
        f" ({summary.time_s:.1f} s wall time). 'skipped' trials had finished with the same settings before"
        + (f"; follow-up steps: {', '.join(summary.steps)}." if summary.steps else ".")
    )
    if summary.plot:
        fig = _summary_figure(summary)
        if fig is not None:
            varied = [k for k in summary.params + summary.tags if k != summary.x]
            section.figure(fig, f"Figures against {summary.x}" + (f"; one line per {', '.join(varied)}" if varied
                                                                   else ""))
    headers = ["trial", "status", *summary.params, *summary.tags, *summary.metrics, "seconds"]
    table = []
    for r in summary.rows:
        table.append([r.name, r.status, *(_label(r.params[k]) if k in r.params else "" for k in summary.params),
                      *(_label(r.tags[k]) if k in r.tags else "" for k in summary.tags),
                      *(r.metrics.get(k, "-") for k in summary.metrics),
                      "-" if r.seconds is None else round(r.seconds, 1)])
    section.table(headers, table)
    for row in summary.failed:
        section.paragraph(f"failed: {row.name}: {row.error}", css="fail")
    return section


def _demo_figure(result):
    plt = _plt()
    base = [r for r in result.rows if r.model == "deterministic"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 3.9))
    for family, color in (("input noise", "tab:blue"), ("hidden noise", "tab:red")):
        rows = sorted(base + [r for r in result.rows if r.model == family], key=lambda r: r.sigma)
        if len(rows) <= len(base):
            continue
        sigma = [r.sigma for r in rows]
        left.plot(sigma, [r.robust_vote for r in rows], "o-", color=color, label=family)
        right.plot(sigma, [r.vote for r in rows], "s-", color=color, label=f"{family}, vote of {result.n_draws}")
        right.plot(sigma, [r.one_draw for r in rows], "o--", color=color, alpha=0.6, label=f"{family}, one draw")
    for ax, what in ((left, f"robust accuracy (EOT-PGD, eps {result.attack['eps']})"), (right, "clean accuracy")):
        ax.set_xscale("symlog", linthresh=0.1)
        ax.set_xlabel("noise sigma (0: deterministic)")
        ax.set_ylabel(what)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _demo_section(result) -> Section:
    a = result.attack
    section = Section(f"Brain-like noise: robust and clean accuracy against noise level ({result.dataset})")
    section.paragraph(
        f"CNNs trained on {result.dataset} with Gaussian noise on the input, or after the hidden layer "
        f"'{result.hidden_site}' (rectified), at each noise level; sigma 0 is the deterministic network. "
        f"The deployed rule is a vote over {result.n_draws} noise draws."
    )
    section.figure(
        _demo_figure(result),
        f"Left: robust accuracy of the vote under Linf EOT-PGD (eps {a['eps']}, {a['steps']} steps of {a['alpha']}, "
        f"gradients averaged over {a['eot']} noise draws of the vote's scores) on the first {a['n_images']} test "
        f"images. Right: clean test accuracy (vote, and one draw dashed).",
    )
    section.paragraph(
        "EOT-PGD here is a quick adaptive white-box check, not the full protocol of 'neuroaikit evaluate' "
        "(APGD-CE/DLR with EOT, Square, transfer, sanity checks), which a claim of robustness needs.",
        css="note",
    )
    section.table(
        ["model", "sigma", "one draw", f"vote@{result.n_draws}", "noise off", f"EOT-PGD eps {a['eps']} (vote)",
         "train time (s)"],
        [[r.model, r.sigma, r.one_draw, r.vote, r.noise_off, r.robust_vote, round(r.train_time_s, 1)]
         for r in result.rows],
    )
    return section


def build(run: Run) -> list[Section]:
    sections: list[Section] = []
    if run.result("noise_demo"):
        from ...demo import NoiseDemoResult

        result = load_stored(run, NoiseDemoResult)
        if result is not None and result.rows:
            sections.append(_demo_section(result))
    if (run.path / "summary.json").is_file():
        from ...sweep import SweepSummary

        summary = SweepSummary.read(run.path)
        if summary is not None:
            sections.append(_summary_section(summary))
    return sections
