"""Smoke test of benchmarks/local_learning.py on a few real MNIST images: every option reaches the run."""

import json
from benchmark_modules import load_benchmark

local_learning = load_benchmark("local_learning")


def test_benchmark_runs_both_parts_with_its_options(shared_data, tmp_path, capsys):
    out = tmp_path / "result.json"
    local_learning.main(["--data-dir", str(shared_data), "--threads", "1", "--train-subset", "600",
                         "--test-subset", "200", "--kh-hidden", "40", "--kh-epochs", "2", "--kh-power", "2",
                         "--readout-epochs", "20", "--readout-lr", "0.01", "--dc-neurons", "12", "--dc-T", "40", "--dc-train", "60",
                         "--dc-label", "300", "--dc-batch", "2", "--dc-synapses", "current",
                         "--dc-min-spikes", "0", "--json", str(out)])
    result = json.loads(out.read_text())
    kh, dc = result["krotov_hopfield"], result["diehl_cook"]
    assert kh["power"] == 2 and kh["n_test"] == 200 and kh["readout_epochs"] == 20
    assert kh["accuracy"] > 0.3  # chance is 0.1
    assert (dc["n_neurons"], dc["T"], dc["batch_size"], dc["synapses"], dc["n_label"], dc["min_spikes"]) == \
        (12, 40, 2, "current", 300, 0)
    assert 0.0 <= dc["accuracy"] <= 1.0 and dc["mean_theta"] > 0
    assert "Diehl & Cook (12 neurons" in capsys.readouterr().out
