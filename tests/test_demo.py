"""The demo job end to end, at a tiny size."""

from neuroaikit.demo import format_sweep_table, run_demo
from neuroaikit.report import build_report


def test_demo_trains_attacks_and_reports(tmp_path):
    run = run_demo(tmp_path / "demo", sigmas=(0.5,), epochs=2, echo=None)
    rows = run.metrics["noise_sweep"]["rows"]
    assert [(r["model"], r["sigma"]) for r in rows] == [("deterministic", 0.0), ("input noise", 0.5), ("hidden noise", 0.5)]
    for row in rows:
        assert 0.0 <= row["robust_vote"] <= row["vote"] + 0.1  # an attack cannot help much beyond draw noise
        assert (run.path / row["run"] / "weights.safetensors").is_file()
    assert "EOT-PGD" in format_sweep_table(rows)
    page = build_report(run.path).read_text()
    assert "Clean accuracy vs noise level" in page and "EOT-PGD (vote)" in page
