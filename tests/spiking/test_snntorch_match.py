import importlib.util
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("snntorch")
_spec = importlib.util.spec_from_file_location("lif_speed", Path(__file__).resolve().parents[2] / "benchmarks" / "lif_speed.py")
lif_speed = importlib.util.module_from_spec(_spec)
sys.modules["lif_speed"] = lif_speed
_spec.loader.exec_module(lif_speed)


def test_same_spikes_as_snntorch_leaky_on_a_tiny_network():
    ours, theirs = lif_speed.make_pair([30, 20, 20, 5], beta=0.8)
    x = (torch.rand(12, 4, 30) < 0.3).float()
    result = lif_speed.compare_spikes(ours, theirs, x)
    assert all(total > 0 for _, total in result), result  # every layer spikes: the check means something
    assert all(bad == 0 for bad, _ in result), result


def test_gradients_match_snntorch_leaky():
    ours, theirs = lif_speed.make_pair([30, 20, 20, 5], beta=0.8)
    x = (torch.rand(12, 4, 30) < 0.3).float()
    ours(x).sum().backward()
    theirs(x)[-1].sum().backward()
    for i, fc in enumerate(theirs.fcs, 1):
        assert torch.allclose(getattr(ours, f"fc{i}").weight.grad, fc.weight.grad, atol=1e-4, rtol=1e-4)
