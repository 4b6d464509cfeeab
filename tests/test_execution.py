"""The execution layer: one device / precision / threads switch for every workflow.

The ``device`` parameter comes from ``tests/conftest.py``: the CPU always, and CUDA when a GPU
is present or ``--devices cuda`` is given (``make test-gpu``), so the same workflow tests are the
GPU suite.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroaikit.cli.main import main
from neuroaikit.errors import ConfigError
from neuroaikit.execution import Execution, ExecutionConfig, derive_seed, resolve_device, torch_threads
from neuroaikit.runs import Run

TINY_TRAIN = ["--dataset", "digits", "--epochs", "1", "--model-arg", "hidden=16", "--eval-draws", "3", "--noise",
              "relu1=gaussian:0.2", "--quiet", "--no-report"]
TINY_TWIN = ["--synthetic", "n_neurons=8", "--synthetic", "image_shape=[10,12]", "--synthetic", "n_train=80",
             "--synthetic", "n_validation=10", "--synthetic", "n_test_images=3", "--synthetic", "repeats=2",
             "--channels", "4", "--layers", "1", "--max-epochs", "1", "--quiet", "--no-report"]


def test_devices_resolve_or_say_why_not():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device is available"):
            resolve_device("cuda")
    with pytest.raises(ConfigError, match="device must be"):
        resolve_device("tpu")


def test_threads_are_set_and_restored():
    before = torch.get_num_threads()
    with Execution(ExecutionConfig(device="cpu", threads=2)) as ex:
        assert torch.get_num_threads() == 2 and ex.describe()["threads"] == 2
    assert torch.get_num_threads() == before
    with torch_threads(3):
        assert torch.get_num_threads() == 3
    assert torch.get_num_threads() == before


def test_one_process_shares_and_weights():
    ex = Execution(ExecutionConfig(device="cpu"))
    batch = np.arange(37)
    assert (ex.shard(batch) == batch).all() and ex.loss_weight(37, 37) == 1.0
    assert ex.broadcast({"a": 1}) == {"a": 1} and ex.all_sum([1.0, 2.0]) == [1.0, 2.0]
    ex.world_size, ex.rank = 2, 1
    assert len(ex.shard(batch)) == 19 and ex.loss_weight(19, 37) == pytest.approx(2 * 19 / 37)


def test_seeds_are_independent_per_process_and_stable():
    assert derive_seed(0, 1) == derive_seed(0, 1)
    assert len({derive_seed(0, epoch, rank) for epoch in range(10) for rank in range(4)}) == 40


def test_precision():
    with Execution(ExecutionConfig(device="cpu", precision="bf16-mixed")) as ex:
        with ex.autocast():
            y = torch.nn.Linear(4, 3)(torch.randn(2, 4))
        assert y.dtype == torch.bfloat16 and ex.grad_scaler() is None
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="16-mixed' needs a CUDA device"):
            Execution(ExecutionConfig(device="cpu", precision="16-mixed")).__enter__()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("exec") / "run"
    assert main(["train", *TINY_TRAIN, "--device", "cpu", "--out", str(out)]) == 0
    return out


def test_train_on_each_device(device, tmp_path):
    out = tmp_path / "run"
    assert main(["train", *TINY_TRAIN, "--device", device, "--out", str(out)]) == 0
    assert Run(out).metrics["execution"]["device"].startswith(device)
    assert Run(out).load_model() is not None  # weights come back to the CPU, loadable anywhere


@pytest.mark.parametrize("objective", ["fgsm_rs", "n_fgsm", "pgd", "trades", "gaussian_augmentation"])
def test_each_robust_training_objective_on_each_device(objective, device, tmp_path):
    out = tmp_path / objective
    assert main(["train", "--dataset", "digits", "--epochs", "1", "--model-arg", "hidden=16", "--objective", objective,
                 "--device", device, "--quiet", "--no-report", "--out", str(out)]) == 0
    assert Run(out).metrics["execution"]["device"].startswith(device)


def test_norm_bounded_training_on_each_device(device, tmp_path):
    """``--norm-bound`` (PixelDP training) bounds the layers before the hidden noise on the device
    the model trains on."""
    from neuroaikit.certify.training import PreNoiseNormBound

    out = tmp_path / "run"
    assert main(["train", *TINY_TRAIN, "--norm-bound", "0.5", "--device", device, "--out", str(out)]) == 0
    assert Run(out).metrics["execution"]["device"].startswith(device)
    norms = PreNoiseNormBound(Run(out).load_model(), 0.5, (1, 8, 8)).norms()
    assert norms and max(norms.values()) <= 0.5 + 1e-5


def test_a_loaded_model_is_on_the_device_asked_for(trained):
    """``load_model(map_location)`` moves the model itself: loading the weights there is not enough,
    because ``load_state_dict`` copies them into parameters that stay where they were built (the
    CPU), and a CUDA input then meets CPU weights (found on the first GPU run)."""
    model = Run(trained).load_model(map_location="meta")
    assert {p.device.type for p in model.parameters()} == {"meta"}
    assert not model.training


def test_train_in_bf16(tmp_path):
    out = tmp_path / "run"
    assert main(["train", *TINY_TRAIN, "--precision", "bf16-mixed", "--device", "cpu", "--out", str(out)]) == 0
    assert Run(out).metrics["execution"]["precision"] == "bf16-mixed"
    assert Run(out).config["execution"]["precision"] == "bf16-mixed"


def test_evaluate_on_each_device(device, trained, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    assert main(["evaluate", str(run), "--quick", "--n-examples", "8", "--steps", "2", "--eot", "2",
                 "--square-queries", "5", "--device", device, "--quiet"]) == 0
    assert Run(run).result("robustness")["execution"]["device"].startswith(device)


def test_twin_fit_evaluate_probe_on_each_device(device, tmp_path, monkeypatch):
    from neuroaikit.neural import twin as twin_module

    timed_on = []
    timing = twin_module._prediction_seconds
    monkeypatch.setattr(twin_module, "_prediction_seconds",
                        lambda model, scored: (timed_on.append(next(model.parameters()).device.type),
                                               timing(model, scored))[1])
    out = tmp_path / "twin"
    # with a time limit: the scoring is timed, before training, on the device it will run on
    assert main(["twin", "fit", "synthetic", *TINY_TWIN, "--device", device, "--time-limit", "600", "--members", "2",
                 "--out", str(out)]) == 0
    assert timed_on and set(timed_on) == {torch.device(device).type}
    assert Run(out).metrics["execution"]["device"].startswith(device)
    assert main(["twin", "evaluate", str(out), "--overwrite", "--device", device, "--quiet", "--no-report"]) == 0
    assert main(["twin", "probe", str(out), "--neurons", "2", "--mei-steps", "2", "--noise-images", "32",
                 "--device", device, "--quiet", "--no-report"]) == 0
    assert len(Run(out).result("twin_probe")["meis"]) == 2


def test_twin_fit_in_bf16(tmp_path):
    out = tmp_path / "twin"
    assert main(["twin", "fit", "synthetic", *TINY_TWIN, "--precision", "bf16-mixed", "--device", "cpu", "--out",
                 str(out)]) == 0
    assert np.isfinite(Run(out).metrics["best_validation_correlation"])


def test_twin_fit_steps_through_the_gradient_scaler_of_16_mixed(tmp_path, monkeypatch):
    """16-mixed (a GPU's float16) scales the loss, as train, continual and the BMI decoders do;
    here a CPU scaler stands in for the one ``Execution`` makes for 16-mixed."""
    from neuroaikit.execution import Execution

    given = []
    step = Execution.optimizer_step
    monkeypatch.setattr(Execution, "grad_scaler", lambda self: torch.amp.GradScaler("cpu"))
    monkeypatch.setattr(Execution, "optimizer_step",
                        lambda self, loss, optimizer, scaler=None: (given.append(scaler),
                                                                     step(self, loss, optimizer, scaler)))
    out = tmp_path / "twin"
    assert main(["twin", "fit", "synthetic", *TINY_TWIN, "--device", "cpu", "--no-baselines", "--out", str(out)]) == 0
    assert given and all(isinstance(s, torch.amp.GradScaler) for s in given)
    assert np.isfinite(Run(out).metrics["best_validation_correlation"])


def test_twin_fit_resumes_the_gradient_scaler_of_16_mixed(tmp_path, monkeypatch):
    """``--resume`` goes on with the checkpoint's gradient scaler (scale, growth tracker), not a
    fresh one back at its initial scale; a CPU scaler that grows every 2 steps stands in for 16-mixed's."""
    from neuroaikit.runs import RunWriter, load_checkpoint, partial_dir

    class Kill(BaseException):  # not an Exception: main would report it and return
        pass

    states = []  # the scaler's state before and after each step
    step, save = Execution.optimizer_step, RunWriter.save_checkpoint

    def spied(self, loss, optimizer, scaler=None):
        before = scaler.state_dict()
        step(self, loss, optimizer, scaler)
        states.append((before, scaler.state_dict()))

    def killed_after_epoch_1(self, state):
        save(self, state)
        if (state["member_state"] or {}).get("epoch") == 1:
            raise Kill

    monkeypatch.setattr(Execution, "grad_scaler",
                        lambda self: torch.amp.GradScaler("cpu", init_scale=256.0, growth_interval=2))
    monkeypatch.setattr(Execution, "optimizer_step", spied)
    out = tmp_path / "twin"
    args = ["twin", "fit", "synthetic", *TINY_TWIN, "--max-epochs", "2", "--starts", "1", "--device", "cpu",
            "--no-baselines", "--out", str(out)]
    with monkeypatch.context() as patch:
        patch.setattr(RunWriter, "save_checkpoint", killed_after_epoch_1)
        with pytest.raises(Kill):
            main(args)
    saved = load_checkpoint(partial_dir(out) / "checkpoint.pt")["member_state"]["scaler"]
    # 3 steps (80 trials, batches of 32): grown once (256 -> 512), the growth tracker at one step since
    assert len(states) == 3 and saved == states[-1][1]
    assert (saved["scale"], saved["_growth_tracker"]) == (512.0, 1)
    states.clear()
    assert main([*args, "--resume"]) == 0
    assert states and states[0][0] == saved  # the resumed fit's first step scales as the checkpoint's scaler did


def test_align_and_energy_on_each_device(device, trained, tmp_path, shared_data):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    antolik = shared_data / "neural" / "antolik2016_mouse_v1.npz"
    assert main(["align", str(run), "--neural", str(antolik), "--layers", "relu1", "--bootstrap", "10",
                 "--device", device, "--quiet", "--no-report"]) == 0
    assert Run(run).result("alignment")["execution"]["device"].startswith(device)
    assert main(["energy", str(run), "--subset", "20", "--device", device, "--quiet"]) == 0
    assert Run(run).result("energy")["execution"]["device"].startswith(device)


def test_calcium_on_each_device(device, tmp_path, shared_data):
    """Spike inference is NumPy work on the CPU; the device is accepted and recorded as asked."""
    mats = sorted((shared_data / "calcium").glob("DS09*/*.mat"))
    if not mats:
        pytest.skip("no calcium ground truth in the shared data")
    out = tmp_path / "spikes"
    assert main(["calcium", "infer", str(mats[0]), "--device", device, "--threads", "1", "--quiet", "--no-report",
                 "--out", str(out)]) == 0
    assert Run(out).metrics["execution"]["requested_device"] == device


def test_plasticity_on_each_device(device, tmp_path):
    out = tmp_path / "kh"
    assert main(["plasticity", "--rule", "krotov-hopfield", "--dataset", "digits", "--units", "20", "--epochs", "1",
                 "--readout-epochs", "1", "--device", device, "--threads", "1", "--quiet", "--no-report", "--out",
                 str(out)]) == 0
    assert Run(out).metrics["execution"]["device"].startswith(device)


# the scenario each strategy needs: XdG gates by task label, generative replay needs no more than class-IL
CONTINUAL_SCENARIOS = {"xdg": "task", "lwf": "task"}


@pytest.mark.parametrize("strategy", ["finetune", "joint", "ewc", "online-ewc", "si", "lwf", "replay",
                                      "generative-replay", "brain-inspired-replay", "xdg", "metaplasticity",
                                      "hidden-noise"])
def test_continual_on_each_device(strategy, device, shared_data, tmp_path):
    """Every strategy's state between tasks (importances, buffers, generators, gates) lives on the run's device."""
    from neuroaikit.continual import ContinualResult

    out = tmp_path / strategy
    assert main(["continual", "--benchmark", "split-mnist", "--scenario", CONTINUAL_SCENARIOS.get(strategy, "class"),
                 "--strategy", strategy, "--iters", "4", "--hidden", "16", "--train-subset", "1000",
                 "--test-subset", "200", "--data-dir", str(shared_data), "--device", device, "--threads", "1",
                 "--no-report", "--quiet", "--out", str(out)]) == 0
    result = ContinualResult.load(Run(out))
    assert result.execution["device"].startswith(device) and len(result.accuracy_matrix) == 5


@pytest.mark.parametrize("benchmark, scenario, extra", [("permuted-mnist", "domain", ["--tasks", "3", "--pad", "2"]),
                                                        ("split-fashion-mnist", "task", []),
                                                        ("split-cifar10", "class", [])])
def test_each_continual_benchmark_on_each_device(benchmark, scenario, extra, device, shared_data, tmp_path):
    """Permuted MNIST's padded, permuted images and the other data sets' class splits are made
    for the run's device (split MNIST and rotated MNIST have their own tests)."""
    from neuroaikit.continual import ContinualResult

    out = tmp_path / benchmark
    assert main(["continual", "--benchmark", benchmark, "--scenario", scenario, "--strategy", "finetune",
                 "--iters", "3", "--hidden", "16", "--train-subset", "1000", "--test-subset", "200", *extra,
                 "--data-dir", str(shared_data), "--device", device, "--threads", "1", "--no-report", "--quiet",
                 "--out", str(out)]) == 0
    result = ContinualResult.load(Run(out))
    assert result.execution["device"].startswith(device) and len(result.accuracy_matrix) == result.n_tasks


def _tiny_image_sets():
    from neuroaikit.data import ImageDataset

    labels = torch.arange(10).repeat_interleave(12)
    images = torch.rand(len(labels), 1, 6, 6, generator=torch.Generator().manual_seed(0))
    names = [str(c) for c in range(10)]
    return (ImageDataset(images, labels, names, "synthetic", "train"),
            ImageDataset(images[::3], labels[::3], names, "synthetic", "test"))


@pytest.mark.parametrize("strategy, params", [("hidden-noise", {}), ("ewc", {"fisher_labels": "sample"})])
def test_a_continual_job_resumes_on_each_device(strategy, params, device, tmp_path):
    """A checkpoint loaded onto the run's device continues the job: the noise layers' generator
    states (loaded as CUDA tensors there) and EWC's sampled Fisher labels (drawn with a CPU
    generator) were found, by reading the code, to fail on a GPU."""
    from neuroaikit.continual.config import ContinualConfig
    from neuroaikit.continual.learner import make_learner, scenario_from

    datasets = _tiny_image_sets()
    config = ContinualConfig(benchmark="split-mnist", scenario="domain", strategy=strategy, strategy_params=params,
                             iters=6, hidden=16, batch_size=16, execution={"device": device, "threads": 1})
    scenario = scenario_from(config, datasets)
    whole, _ = make_learner(config, scenario, device)
    whole.fit()
    first, _ = make_learner(config, scenario, device)
    first.fit(on_task_end=lambda t: torch.save(first.state_dict(), tmp_path / "checkpoint.pt") if t == 1 else None)
    second, _ = make_learner(config, scenario, device)
    assert second.load_state_dict(torch.load(tmp_path / "checkpoint.pt", map_location=device, weights_only=True)) == 2
    second.fit(2)
    assert len(second.matrix) == 5
    if device == "cpu":  # bit for bit; a GPU's reductions need not repeat their rounding
        assert second.matrix == whole.matrix


def test_rotated_mnist_on_each_device(device):
    """The rotations are made on the device of the images (a CPU sampling grid met CUDA images)."""
    from neuroaikit.continual.config import ContinualConfig
    from neuroaikit.continual.learner import make_learner, scenario_from

    config = ContinualConfig(benchmark="rotated-mnist", scenario="domain", strategy="finetune", iters=3, hidden=16,
                             batch_size=16, execution={"device": device, "threads": 1})
    learner, _ = make_learner(config, scenario_from(config, _tiny_image_sets()), device)
    learner.fit()
    assert len(learner.matrix) == learner.scenario.n_tasks >= 2


class _NumpyNoiseAttack:
    """A user's attack written with NumPy: it hands back CPU images whatever the model's device."""

    def __init__(self, model, eps, **_):
        self.eps = eps

    def __call__(self, x, y):
        noise = np.sign(np.random.default_rng(0).standard_normal(tuple(x.shape))).astype(np.float32)
        return torch.from_numpy(np.clip(x.cpu().numpy() + self.eps * noise, 0, 1))


def test_an_extra_attack_may_hand_back_cpu_images_on_each_device(device):
    from neuroaikit.attacks.evaluate import RobustnessConfig, evaluate_robustness

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 4)).to(device).eval()
    x, y = torch.rand(8, 1, 2, 2), torch.arange(8) % 4
    config = RobustnessConfig.quick(eps=[0.1], reference_eps=0.1, n_examples=8, max_extensions=0)
    result = evaluate_robustness(model, x, y, config, extra_attacks={"numpy-noise": _NumpyNoiseAttack})
    assert 0 <= result.sweep[0].attacks["numpy-noise"] <= 1


def test_probe_on_each_device(device, trained, tmp_path):
    """``neuroaikit probe`` computes its features and lesions where it loaded the model (a model
    moved to CUDA was fed CPU batches: found by reading the code, not yet run on a GPU)."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    assert main(["probe", str(run), "--layers", "relu1", "--max-units", "4", "--images", "60", "--mei-units", "1",
                 "--mei-steps", "2", "--folds", "2", "--device", device, "--quiet", "--no-report"]) == 0
    result = Run(run).result("insilico")
    assert result["execution"]["device"].startswith(device) and result["lesions"] is not None


def _evaluate_robustness_in(precision_config, run_dir):
    from neuroaikit.attacks.evaluate import evaluate_robustness

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    evaluate_robustness(model, torch.rand(2, 1, 2, 2), torch.tensor([0, 1]), execution=Execution(precision_config))


def _probe_config_in(precision_config, run_dir):
    from neuroaikit.insilico.config import ProbeConfig

    ProbeConfig(execution=precision_config)


def _evaluate_run_in(precision_config, run_dir):
    from neuroaikit.attacks.evaluate import evaluate_run

    evaluate_run(run_dir, execution=precision_config)


def _twin_evaluate_in(precision_config, run_dir):
    from neuroaikit.neural.twin import evaluate_run

    evaluate_run(run_dir, execution=precision_config)


def _twin_probe_in(precision_config, run_dir):
    from neuroaikit.neural.twin import probe_run

    probe_run(run_dir, execution=precision_config)


# the sweep's eot-pgd step is not among them: it computes in float32 whatever its trial trained in
# (tests/sweep/test_sweep_precision.py)
@pytest.mark.parametrize("workflow", [_evaluate_run_in, _probe_config_in, _twin_evaluate_in, _twin_probe_in,
                                      _evaluate_robustness_in])
def test_float32_workflows_refuse_reduced_precision_before_reading_anything(workflow, tmp_path):
    # the run folder does not exist: the precision is refused before the run is opened, and an
    # option that the workflow would not apply is never silently ignored
    missing = tmp_path / "no-run"
    with pytest.raises(ConfigError, match="execution.precision must be '32' for .* got 'bf16-mixed'"):
        workflow(ExecutionConfig(device="cpu", precision="bf16-mixed"), missing)
    assert not missing.exists()
