import json

import pytest
import torch

from neuroaikit.spiking import synapses
from benchmark_modules import load_benchmark

pytest.importorskip("snntorch")
lif_speed = load_benchmark("lif_speed")


@pytest.mark.parametrize("sizes,threads", [([30, 20, 20, 5], 1), ([300, 150, 130, 20], 2)])
def test_same_spikes_as_snntorch_leaky(sizes, threads, monkeypatch):
    """Event-driven synapses (tiles of 8 vectors, 1 vector and single columns; 1 and 2 threads) + fused LIF."""
    monkeypatch.setattr(synapses, "MIN_PRODUCT_SIZE", 0)  # these small layers would take the dense product
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        ours, theirs = lif_speed.make_pair(sizes, beta=0.8)
        x = (torch.rand(12, 4, sizes[0]) < 0.3).float()
        result = lif_speed.compare_spikes(ours, theirs, x)
    finally:
        torch.set_num_threads(before)
    assert all(total > 0 for _, total in result), result  # every layer spikes: the check means something
    assert all(bad == 0 for bad, _ in result), result


def test_gradients_match_snntorch_leaky():
    ours, theirs = lif_speed.make_pair([30, 20, 20, 5], beta=0.8)
    x = (torch.rand(12, 4, 30) < 0.3).float()
    ours(x).sum().backward()
    theirs(x)[-1].sum().backward()
    for i, fc in enumerate(theirs.fcs, 1):
        assert torch.allclose(getattr(ours, f"fc{i}").weight.grad, fc.weight.grad, atol=1e-4, rtol=1e-4)


def test_benchmark_script_checks_spikes_and_prints_every_figure(capsys):
    assert lif_speed.main(["--quick", "--T", "4", "--batch", "8", "--sizes", "60", "40", "30"]) == 0
    out = capsys.readouterr().out
    assert "every sum exact in any order): True" in out
    for figure in ("with unrounded float32 weights", "neuroaikit with dense products", "the linear layers alone",
                   "LIF layer alone"):
        assert figure in out


def test_crossover_table_records_every_case_and_the_cpus_limit(tmp_path, capsys):
    out = tmp_path / "crossover.json"
    assert lif_speed.main(["--crossover", "--repeats", "1", "--threads", "1", "--json", str(out)]) == 0
    table = json.loads(out.read_text())
    assert table["default_max_density"] == synapses.default_max_density()
    assert table["min_product_size"] == synapses.min_product_size() > 0  # restored after forcing the event path
    assert len(table["cases"]) == 25 == capsys.readouterr().out.count("speed-up")
    for case in table["cases"]:
        assert case["multiply_adds"] == case["rows"] * case["inputs"] * case["outputs"]
        assert case["speedup"] == pytest.approx(case["dense_ms"] / case["event_ms"])
