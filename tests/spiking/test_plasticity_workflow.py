"""The plasticity workflow (``learn`` / ``neuroaikit plasticity``): run folders, resume, errors, devices."""

import json

import pytest
import torch
from safetensors.torch import load_file

from neuroaikit.cli.main import main
from neuroaikit.data import load_dataset
from neuroaikit.errors import ConfigError, DataError
from neuroaikit.execution import ExecutionConfig
from neuroaikit.progress import silent
from neuroaikit.runs import RunWriter, load_run
from neuroaikit.spiking.plasticity import (CompetingHiddenUnits, DiehlCookNetwork, PlasticityConfig, PlasticityResult,
                                           STDPLearner, learn)

def cuda(test):
    """A test that needs a GPU: skipped without one, selected by ``make test-gpu`` (marked gpu)."""
    return pytest.mark.gpu(pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")(test))

# tiny protocols: seconds, not minutes
KROTOV_HOPFIELD = {"n_hidden": 20, "epochs": 2, "batch_size": 20, "readout_epochs": 4, "readout_lr": 0.02}
DIEHL_COOK = {"n_neurons": 10, "T": 30, "batch_size": 5, "stdp_images": 60, "label_images": 60, "checkpoint_every": 20,
              "eval_batch_size": 25, "synapses": "current", "min_spikes": 0}


def kh_config(device="cpu", **changes) -> PlasticityConfig:
    return PlasticityConfig(rule="krotov-hopfield", dataset="digits", train_subset=200,
                            krotov_hopfield=dict(KROTOV_HOPFIELD), execution=ExecutionConfig(device=device, threads=1),
                            **changes)


def dc_config(data_dir, device="cpu", **changes) -> PlasticityConfig:
    return PlasticityConfig(rule="diehl-cook", dataset="mnist", data_dir=str(data_dir), train_subset=60,
                            test_subset=50, diehl_cook=dict(DIEHL_COOK),
                            execution=ExecutionConfig(device=device, threads=1), **changes)


def weights(run) -> dict:
    return load_file(str(run.path / "weights.safetensors"))


def test_krotov_hopfield_writes_a_run_folder_that_rebuilds_its_classifier(tmp_path):
    run = learn(kh_config(), tmp_path / "kh", progress=silent())
    assert {p.name for p in run.path.iterdir()} == {"config.json", "model.json", "weights.safetensors",
                                                    "metrics.json", "log.txt"}
    assert not (tmp_path / "kh.partial").exists()
    recorded = json.loads((run.path / "config.json").read_text())
    assert recorded["rule"] == "krotov-hopfield" and "diehl_cook" not in recorded
    assert PlasticityConfig.from_dict(recorded) == kh_config()
    result = PlasticityResult.load(run)
    kh = result.krotov_hopfield
    assert result.diehl_cook is None and (result.n_train, kh.n_hidden, kh.unsupervised_epochs) == (200, 20, 2)
    assert [h["epoch"] for h in kh.unsupervised_history] == [1, 2] and len(kh.readout_history) == 4
    assert result.test_accuracy > 0.3  # 10 classes: chance is 0.1
    assert result.execution["device"] == "cpu" and result.execution["threads"] == 1
    # the stored model is the classifier that was measured
    model = load_run(run.path)
    test = load_dataset("digits", "test")
    with torch.no_grad():
        accuracy = (model(test.images).argmax(1) == test.labels).float().mean().item()
    assert accuracy == pytest.approx(result.test_accuracy, abs=1.5 / len(test))
    assert "Krotov-Hopfield (20 units, relu^3) + linear readout: test accuracy" in (run.path / "log.txt").read_text()


def test_diehl_cook_writes_a_run_folder_with_its_labelled_neurons(tmp_path, shared_data):
    run = learn(dc_config(shared_data), tmp_path / "dc", progress=silent())
    result = PlasticityResult.load(run)
    dc = result.diehl_cook
    assert result.krotov_hopfield is None and (dc.n_neurons, dc.T, dc.n_stdp, dc.n_label) == (10, 30, 60, 60)
    assert [h["images"] for h in dc.stdp_history] == [20, 40, 60]
    assert dc.mean_theta > 0 and sum(dc.neurons_per_class) == 10
    assert 0.0 <= result.test_accuracy <= 1.0
    net = load_run(run.path)
    assert isinstance(net, DiehlCookNetwork) and net.assignments_ is not None
    assert torch.bincount(net.assignments, minlength=10).tolist() == dc.neurons_per_class
    assert net(torch.rand(3, 1, 28, 28)).shape == (3, 10)  # class votes


def test_the_report_shows_the_rule(tmp_path):
    from neuroaikit.report import build_report

    run = learn(kh_config(), tmp_path / "kh", progress=silent())
    page = build_report(run.path).read_text()
    assert "Krotov-Hopfield competing hidden units on digits" in page and "Training:" not in page


class Interrupted(Exception):
    pass


def interrupted_then_resumed(monkeypatch, config, out, after: int):
    """Stop the job right after its ``after``-th checkpoint, then resume it to the end."""
    original = RunWriter.save_checkpoint
    saved = []

    def save_then_stop(self, state):
        original(self, state)
        saved.append(state.get("phase"))
        if len(saved) == after:
            raise Interrupted

    with monkeypatch.context() as patch:
        patch.setattr(RunWriter, "save_checkpoint", save_then_stop)
        with pytest.raises(Interrupted):
            learn(config, out, progress=silent())
    assert (out.parent / (out.name + ".partial") / "checkpoint.pt").is_file() and not out.exists()
    with pytest.raises(ConfigError, match="--resume"):
        learn(config, out, progress=silent())  # an interrupted job is neither lost nor silently restarted
    return learn(config, out, resume=True, progress=silent()), saved[-1]


@pytest.mark.parametrize("after,phase", [(1, "unsupervised"), (4, "readout")])
def test_krotov_hopfield_resumes_to_the_uninterrupted_weights(tmp_path, monkeypatch, after, phase):
    config = kh_config()
    whole = learn(config, tmp_path / "whole", progress=silent())
    resumed, stopped_in = interrupted_then_resumed(monkeypatch, config, tmp_path / "resumed", after)
    assert stopped_in == phase
    expected, got = weights(whole), weights(resumed)
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
    assert PlasticityResult.load(resumed).test_accuracy == PlasticityResult.load(whole).test_accuracy
    assert "resumed from" in (resumed.path / "log.txt").read_text()


@pytest.mark.parametrize("after,phase", [(1, "stdp"), (4, "labelled")])
def test_diehl_cook_resumes_to_the_uninterrupted_weights(tmp_path, monkeypatch, shared_data, after, phase):
    config = dc_config(shared_data)
    whole = learn(config, tmp_path / "whole", progress=silent())
    resumed, stopped_in = interrupted_then_resumed(monkeypatch, config, tmp_path / "resumed", after)
    assert stopped_in == phase
    expected, got = weights(whole), weights(resumed)
    assert expected.keys() == {"weight", "theta", "assignments"} == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    assert PlasticityResult.load(resumed).test_accuracy == PlasticityResult.load(whole).test_accuracy


@pytest.mark.parametrize("values,field", [
    ({"rule": "hebb"}, "rule"),
    ({"krotov_hopfield": {"n_hidden": 0}}, "krotov_hopfield.n_hidden"),
    ({"krotov_hopfield": {"n_hidden": 5, "k": 9}}, "krotov_hopfield.k"),
    ({"krotov_hopfield": {"p": 1.5}}, "krotov_hopfield.p"),
    ({"diehl_cook": {"synapses": "chemical"}}, "diehl_cook.synapses"),
    ({"diehl_cook": {"v_th": 70.0}}, "e_exc"),
    ({"diehl_cook": {"w_max": 0.0}}, "diehl_cook.w_max"),
    ({"diehl_cook": {"max_rate_hz": 2000}}, "diehl_cook.max_rate_hz"),
    ({"diehl_cook": {"synapses": "current", "e_exc": 50.0}}, "e_exc applies only with synapses conductance"),
    ({"diehl_cook": {"synapses": "current", "tau_syn_inh": 3.0}}, "tau_syn_inh applies only with synapses"),
    ({"diehl_cook": {"tau": 3}}, "diehl_cook option(s) tau"),
    ({"diehl_cook": {"min_spikes": 0, "max_repeats": 3}}, "max_repeats applies only with min_spikes > 0"),
    ({"train_subset": 1}, "train_subset must be >= 2 images"),
    ({"execution": {"precision": "bf16-mixed"}}, "precision"),
    ({"execution": {"device": "gpu"}}, "device"),
])
def test_bad_settings_are_one_line_errors_naming_the_setting(values, field):
    with pytest.raises(ConfigError) as error:
        PlasticityConfig.from_dict(values)
    assert field in str(error.value) and "\n" not in str(error.value)


def test_conductance_settings_are_used_with_conductance_synapses_and_a_default_is_no_setting():
    assert PlasticityConfig.from_dict({"diehl_cook": {"e_exc": 50.0, "tau_syn_exc": 2.0}}).diehl_cook.e_exc == 50.0
    current = PlasticityConfig.from_dict({"diehl_cook": {"synapses": "current", "e_exc": 65.0}})  # the default
    assert current.diehl_cook.synapses == "current"


def test_a_conductance_setting_from_the_config_file_is_located(tmp_path, capsys):
    config = tmp_path / "c.json"
    config.write_text('{"rule": "diehl-cook", "diehl_cook": {"tau_syn_exc": 3}}')
    code = main(["plasticity", "--config", str(config), "--synapses", "current", "--dataset", "digits",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err == (f"error: tau_syn_exc applies only with --synapses conductance "
                                 f"(set in --config {config})\n")
    assert not (tmp_path / "run").exists()


def test_bad_input_fails_before_anything_is_created(tmp_path):
    with pytest.raises(DataError):
        learn(PlasticityConfig(dataset="mnist", data_dir=str(tmp_path / "missing")), tmp_path / "run",
              progress=silent())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("options,message", [
    (["--units", "0"], "--units must be an integer >= 1, got 0"),
    (["--rule", "diehl-cook", "--steps", "0"], "--steps must be an integer >= 1, got 0"),
    (["--set", "p=1"], "--norm-p must be a number >= 2, got 1"),
    (["--synapses", "current"], "--synapses is a setting of the other rule"),
    (["--set", "tau_mem=3"], "unknown config.krotov_hopfield option(s) tau_mem"),
    (["--device", "tpu"], "device must be"),
    (["--rule", "diehl-cook", "--synapses", "current", "--set", "e_inh=-50"],
     "e_inh applies only with --synapses conductance"),
])
def test_cli_errors_are_one_line_and_exit_2(tmp_path, capsys, options, message):
    code = main(["plasticity", "--dataset", "digits", "--out", str(tmp_path / "run"), *options])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_cli_learns_into_a_run_folder_and_refuses_to_replace_it(tmp_path, capsys):
    args = ["plasticity", "--rule", "krotov-hopfield", "--dataset", "digits", "--train-subset", "200", "--units", "20",
            "--epochs", "2", "--batch-size", "20", "--readout-epochs", "4", "--readout-lr", "0.02", "--device", "cpu",
            "--threads", "1", "--quiet", "--out", str(tmp_path / "kh")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"run folder: {tmp_path / 'kh'}" in out and (tmp_path / "kh" / "report.html").is_file()
    # the same settings as the API's, so the same weights
    api = learn(kh_config(), tmp_path / "api", progress=silent())
    assert torch.equal(weights(api)["hidden.weight"], load_file(str(tmp_path / "kh" / "weights.safetensors"))["hidden.weight"])
    assert main(args) == 2
    assert "pass --overwrite" in capsys.readouterr().err


def test_the_sync_free_loop_gives_the_spikes_of_the_cpu_loop():
    """Off the CPU the time loop never asks whether anything fired; it must change nothing."""
    torch.manual_seed(0)
    images = (torch.rand(4, 30) < 0.5).float()
    outcomes = []
    for sync_free in (False, True):
        for synapses in ("conductance", "current"):
            net = DiehlCookNetwork(30, n_neurons=6, T=40, max_rate_hz=400.0, weight_total=30.0, v_th=4.0,
                                   synapses=synapses, refractory=3, seed=1)
            net.sync_free = sync_free
            learner = STDPLearner(net.weight, net.stdp)
            counts = net.run(images, learner, torch.Generator().manual_seed(7))
            outcomes.append((counts, net.theta.clone(), learner.dw.clone()))
    for cpu_loop, free_loop in zip(outcomes[:2], outcomes[2:]):
        assert cpu_loop[0].sum() > 0
        assert all(torch.equal(a, b) for a, b in zip(cpu_loop, free_loop))


def test_the_rules_make_every_tensor_on_their_inputs_device():
    """With torch's default device set to ``meta``, a tensor made without ``device=`` would land
    there and meet the CPU tensors in an error: the rules would fail the same way on a GPU."""
    torch.manual_seed(0)
    net = DiehlCookNetwork(20, n_neurons=5, T=20, max_rate_hz=500.0, weight_total=20.0, v_th=3.0, n_classes=3)
    layer = CompetingHiddenUnits(20, n_hidden=8, k=3)
    images, labels = torch.rand(6, 20), torch.tensor([0, 1, 2, 0, 1, 2])
    with torch.device("meta"):
        for sync_free in (False, True):
            net.sync_free = sync_free
            learner = STDPLearner(net.weight, net.stdp)
            net.run(images, learner, torch.Generator().manual_seed(0))
            learner.write_grad()
            net.assign_labels(images, labels, batch_size=4)
            assert net.predict(images).device.type == "cpu"
        layer.hebbian_grad(images)
        assert layer.weight.grad.device.type == "cpu" and layer(images).device.type == "cpu"


@cuda
def test_both_rules_learn_on_cuda(tmp_path, shared_data):
    kh_run = learn(kh_config("cuda"), tmp_path / "kh", progress=silent())
    kh = PlasticityResult.load(kh_run)
    assert kh.execution["device"].startswith("cuda") and kh.test_accuracy > 0.3
    dc_run = learn(dc_config(shared_data, "cuda"), tmp_path / "dc", progress=silent())
    dc = PlasticityResult.load(dc_run)
    assert dc.execution["device"].startswith("cuda") and dc.n_test == 50 and dc.diehl_cook.mean_theta > 0
    for run in (kh_run, dc_run):
        assert all(torch.isfinite(t.float()).all() for t in weights(run).values())
