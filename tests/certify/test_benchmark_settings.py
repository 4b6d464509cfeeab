"""The certification benchmarks refuse bad settings in one line (exit 2) before they train anything."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from benchmark_modules import load_benchmark

REPO = Path(__file__).resolve().parents[2]


def run_benchmark(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("args, message", [
    (["--images", "0"], "--images must be between 1 and the 10000 test images, got 0"),
    (["--n", "10"], "n0 (100 selection draws) must not exceed n (10 estimation draws)"),
    (["--device", "tpu"], "device must be"),
    (["--repeats", "0"], "--repeats must be >= 1, got 0"),
    (["--threads", "0"], "threads"),
])
def test_certify_speed_benchmark_refuses_bad_settings_before_training(shared_data, tmp_path, args, message):
    result = run_benchmark("certify.py", "--data-dir", str(shared_data / "mnist"), *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()  # the model it would train lives under runs/


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "epochs"),
    (["--input-sigma", "-1"], "sigma"),
    (["--hidden-layer", "no_such_layer"], "no_such_layer"),
])
def test_cifar_comparison_refuses_bad_settings_before_training(shared_data, tmp_path, args, message):
    out = tmp_path / "out"
    result = run_benchmark("cifar_noise_defenses.py", "--data-dir", str(shared_data / "cifar10-subset"), "--quick",
                           "--device", "cpu", "--out", str(out), *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr.splitlines()[-1] and "Traceback" not in result.stderr
    assert not out.exists()


def test_cifar_comparison_writes_each_measurement_as_it_finishes(shared_data, tmp_path, monkeypatch):
    """A run stopped part-way (a time limit on a GPU) keeps every measurement made so far: the JSON
    is rewritten after training, after each protocol and after each certificate, and the model's
    row says ``complete: false`` until all of them are in. Training and the attacks are stand-ins
    here; the second protocol fails as a time limit would stop it."""
    bench = load_benchmark("cifar_noise_defenses")
    monkeypatch.setattr(bench, "train", lambda config, path, **kw: SimpleNamespace(
        path=path, metrics={"execution": {"device": "cpu"}, "test_accuracy": 0.5}))

    def evaluate_run(path, config, **kw):
        if config.norm == "L2":
            raise KeyboardInterrupt  # stopped from outside during the second protocol
        return SimpleNamespace(clean_accuracy=0.5, reference_eps=config.reference_eps, robust_accuracy=0.25,
                               stochastic=True, sweep=[], robust_accuracy_per_attack={}, warnings=[], seconds=1.0)

    monkeypatch.setattr(bench, "evaluate_run", evaluate_run)
    figures = tmp_path / "figures.json"
    with pytest.raises(KeyboardInterrupt):
        bench.main(["--data-dir", str(shared_data / "cifar10-subset"), "--quick", "--device", "cpu", "--models",
                    "hidden", "standard", "--out", str(tmp_path / "out"), "--json", str(figures)])
    rows = json.loads(figures.read_text())["models"]
    assert [row["model"] for row in rows] == ["hidden"]
    assert rows[0]["complete"] is False and rows[0]["test_accuracy"] == 0.5
    assert rows[0]["linf"]["robust_accuracy"] == 0.25 and "l2" not in rows[0]


def certify_benchmark():
    return load_benchmark("certify", "certify_benchmark")


def test_certify_benchmark_profile_ranks_operators_and_sets_them_against_the_wall_time():
    bench = certify_benchmark()
    torch = pytest.importorskip("torch")
    a = torch.randn(256, 256)
    figures = bench.profile(lambda: [torch.relu(a @ a) for _ in range(20)], torch.device("cpu"), wall_s=1.0, top=3)
    ops = [row["op"] for row in figures["top_ops"]]
    assert len(ops) == 3 and "aten::mm" in ops and "Command Buffer Full" not in ops
    assert figures["measure"] == "self CPU time" and figures["launch_queue_full_s"] == 0
    assert 0 < sum(row["share"] for row in figures["top_ops"]) <= 1.001
    assert figures["busy_fraction"] == pytest.approx(figures["busy_s"] / 1.0, abs=1e-3)


def test_certify_benchmark_counts_a_draws_flops_and_times_only_the_weight_layers(monkeypatch):
    """The ceiling the benchmark prints: a draw's floating-point operations (2 per multiply-add)
    and the time of the weight layers alone, each at its fastest pass size, without the ReLU."""
    bench = certify_benchmark()
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 10))
    image = torch.rand(1, 8, 8)
    assert bench.flop_per_draw(model, image) == 2 * (4 * 6 * 6 * 9) + 2 * (4 * 6 * 6 * 10)
    timed = []
    for layer in model:
        layer.register_forward_hook(lambda m, args, out: timed.append((type(m).__name__, args[0].shape[0])))
    bound = bench.weight_layers_bound(model, image, torch.device("cpu"), pass_rows=(2, 8), repeats=3)
    assert bound > 0
    after_capture = timed[4:]  # the first pass, all four layers at 8 rows, captures the inputs
    assert timed[:4] == [("Conv2d", 8), ("ReLU", 8), ("Flatten", 8), ("Linear", 8)]
    assert sorted(after_capture) == sorted([(name, rows) for name in ("Conv2d", "Linear") for rows in (2, 8)] * 4)


def test_certify_benchmark_times_the_weight_layers_in_bfloat16_when_asked():
    """The bf16 ceiling casts the layers and the inputs they captured: every timed call is bf16."""
    bench = certify_benchmark()
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 10))
    seen = []
    for layer in (model[0], model[3]):
        layer.register_forward_hook(lambda m, args, out: seen.append((args[0].dtype, out.dtype)))
    bound = bench.weight_layers_bound(model, torch.rand(1, 8, 8), torch.device("cpu"), pass_rows=(2, 8), repeats=2,
                                      dtype=torch.bfloat16)
    assert bound > 0
    assert seen[:2] == [(torch.float32, torch.float32)] * 2  # the capturing pass runs the model as it is
    assert set(seen[2:]) == {(torch.bfloat16, torch.bfloat16)} and len(seen[2:]) == 2 * 2 * 3
