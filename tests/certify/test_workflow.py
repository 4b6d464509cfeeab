"""``neuroaikit certify RUN``: the run-folder workflow through the execution layer, its report
section, and one-line errors for bad input."""

from __future__ import annotations

import json

import pytest

from neuroaikit.certify import CertificationConfig, CertificationResult, certify_run
from neuroaikit.cli.main import main
from neuroaikit.errors import ConfigError, StorageError
from neuroaikit.execution import ExecutionConfig
from neuroaikit.runs import Run
from neuroaikit.training import TrainConfig, train

QUICK = ["--n0", "10", "--n", "100", "--n-examples", "8", "--threads", "1", "--quiet"]


def _train(out, noise, **extra):
    config = TrainConfig(dataset="digits", model="cnn", model_kwargs={"channels": [8, 16], "hidden": 32},
                         noise=noise, epochs=2, lr=3e-3, eval_draws=3, **extra)
    return train(config, out, progress=None).path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("certify")
    return {"input": _train(root / "input", {"input": "gaussian:0.25"}),
            "hidden": _train(root / "hidden", {"conv1": "gaussian:1.0"}),
            "plain": _train(root / "plain", {}, objective="gaussian_augmentation",
                            objective_params={"sigma": 0.25})}


def one_line_error(capsys, code: int, contains: str) -> None:
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "Traceback" not in err and len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert contains in err, err


def test_certify_run_on_each_device(runs, device):
    cert = certify_run(runs["input"], config=CertificationConfig(n0=10, n=100, n_examples=6),
                       execution=ExecutionConfig(device=device, threads=1), overwrite=True)
    assert cert.method == "smoothing" and cert.sigma == 0.25 and cert.n_examples == 6
    assert cert.curve[0].radius == 0 and cert.curve[0].certified_accuracy == cert.smoothed_accuracy
    stored = CertificationResult.load(Run.open(runs["input"]))
    assert stored.find(cert.key) is not None


def test_hidden_layer_certification_on_each_device(runs, device, tmp_path):
    """The layers' sensitivity bounds (power iterations) and the noise draws after ``conv1`` run
    on the device of the model."""
    import shutil

    run = shutil.copytree(runs["hidden"], tmp_path / "hidden")  # the other tests expect no certificate there
    cert = certify_run(run, config=CertificationConfig(method="hidden", layer="conv1", n0=10, n=100,
                                                                  n_examples=6),
                       execution=ExecutionConfig(device=device, threads=1), overwrite=True)
    assert cert.method == "hidden" and cert.n_examples == 6 and cert.execution["device"].startswith(device)


def test_compiled_certification_on_each_device(runs, device, tmp_path):
    """``compile=True`` certifies through ``torch.compile`` on the model's device (on CUDA, Triton's
    kernels) and predicts as the plain model does with the same seed."""
    import shutil

    if device == "cpu":
        pytest.skip("on the CPU, test_cli_compiled_certificate_says_so_and_certifies_as_the_model_does compiles")
    run = shutil.copytree(runs["input"], tmp_path / "input")
    certificates = [certify_run(run, config=CertificationConfig(n0=10, n=100, n_examples=6, compile=compiled),
                                execution=ExecutionConfig(device=device, threads=1), overwrite=True)
                    for compiled in (False, True)]
    plain, compiled = certificates
    assert compiled.compiled and not plain.compiled and compiled.execution["device"].startswith(device)
    assert compiled.predictions == plain.predictions


def test_cli_writes_both_certificates_and_the_report(runs, capsys):
    assert main(["certify", str(runs["input"]), *QUICK, "--overwrite", "--precision", "bf16-mixed"]) == 0
    stored = json.loads((runs["input"] / "results" / "certification.json").read_text())
    assert [c["precision"] for c in stored["certificates"] if c["method"] == "smoothing"] == ["bf16-mixed"]
    assert main(["certify", str(runs["hidden"]), "--method", "hidden", "--layer", "conv1", *QUICK]) == 0
    out = capsys.readouterr().out
    assert "hidden at conv1, sigma 1" in out and "conv1 (Conv2d)" in out
    stored = json.loads((runs["hidden"] / "results" / "certification.json").read_text())
    cert = stored["certificates"][0]
    assert cert["method"] == "hidden" and cert["sensitivity"] > 0 and cert["layer_bounds"][0]["name"] == "conv1"
    report = (runs["hidden"] / "report.html").read_text()
    assert "Certified robustness" in report and "sensitivity of the layers before the noise" in report


def test_cli_compiled_certificate_says_so_and_certifies_as_the_model_does(runs, capsys):
    """``--compile`` certifies the same network: with the same seed, the same predictions."""
    assert main(["certify", str(runs["input"]), *QUICK, "--overwrite", "--no-report"]) == 0
    plain = json.loads((runs["input"] / "results" / "certification.json").read_text())["certificates"][0]
    capsys.readouterr()
    assert main(["certify", str(runs["input"]), *QUICK, "--overwrite", "--no-report", "--compile"]) == 0
    assert "(compiled; compiling included)" in capsys.readouterr().out
    compiled = json.loads((runs["input"] / "results" / "certification.json").read_text())["certificates"][0]
    assert compiled["compiled"] is True and plain["compiled"] is False
    assert compiled["predictions"] == plain["predictions"]


@pytest.mark.parametrize("args,contains", [
    (["--sigma", "0"], "sigma"),
    (["--sigma", "-0.5"], "sigma"),
    (["--n0", "200", "--n", "100"], "must not exceed n"),
    (["--alpha", "0"], "alpha"),
    (["--alpha", "1.5"], "alpha"),
    (["--method", "hidden"], "has no Gaussian noise layer that is on"),
    (["--method", "hidden", "--layer", "relu1"], "has no Gaussian noise layer that is on"),
    (["--method", "smoothing"], "needs sigma"),
    (["--method", "hidden", "--precision", "bf16-mixed"], "smoothing only"),
    (["--method", "hidden", "--compile"], "compile applies to smoothing only"),
])
def test_bad_input_is_one_line(runs, capsys, args, contains):
    code = main(["certify", str(runs["plain"]), "--quiet", "--no-report", *args])
    one_line_error(capsys, code, contains)


def test_hidden_bad_layer_and_existing_certificate(runs, capsys):
    code = main(["certify", str(runs["hidden"]), "--method", "hidden", "--layer", "fc1", "--quiet", "--no-report"])
    one_line_error(capsys, code, "no Gaussian noise layer at 'fc1'")
    main(["certify", str(runs["hidden"]), "--method", "hidden", *QUICK, "--no-report", "--overwrite"])
    capsys.readouterr()
    code = main(["certify", str(runs["hidden"]), "--method", "hidden", *QUICK, "--no-report"])
    one_line_error(capsys, code, "pass --overwrite")


def test_config_checks():
    with pytest.raises(ConfigError, match="layer applies to the hidden method only"):
        CertificationConfig(layer="conv1")
    assert CertificationConfig(radii=[1, 0.5]).radii == [0.5, 1.0]
    with pytest.raises(ConfigError, match="n0"):
        CertificationConfig(n0=5, n=4)


def test_cifar10_resnet18_certifies_through_the_execution_layer(shared_data, tmp_path, device):
    config = TrainConfig(dataset="cifar10", data_dir=str(shared_data / "cifar10-subset"), model="resnet18",
                         model_kwargs={"width": 0.125}, noise={"input": "gaussian:0.25"}, epochs=1,
                         train_subset=64, test_subset=8, batch_size=32, eval_draws=2,
                         execution=ExecutionConfig(device=device, threads=1))
    path = train(config, tmp_path / "resnet", progress=None).path
    cert = certify_run(path, config=CertificationConfig(n0=5, n=20, n_examples=4, max_rows=64),
                       execution=ExecutionConfig(device=device, threads=1))
    assert cert.n_examples == 4 and cert.sigma == 0.25 and cert.execution["device"].startswith(device)
    # PixelDP with the noise on the input needs no layer bound (Delta = 1), residual blocks or not
    hidden = certify_run(path, config=CertificationConfig(method="hidden", n0=5, n=20, n_examples=2),
                         execution=ExecutionConfig(device=device, threads=1))
    assert hidden.site == "input" and hidden.sensitivity == 1.0 and hidden.layer_bounds == []


def test_certify_jobs_of_other_sigmas_running_together_keep_both_certificates(runs, tmp_path, monkeypatch):
    """Two certify jobs on one run (sigma 0.25 and 0.5) both exited 0, and the file held only the
    one that finished last: each merged its certificate into the file as it had read it at the start."""
    import shutil

    from neuroaikit.certify import workflow

    # without the certificates the module's other tests stored in it
    run = shutil.copytree(runs["input"], tmp_path / "run", ignore=shutil.ignore_patterns("results"))
    real = workflow.certify

    def meanwhile(sigma):  # another job certifies sigma, start to end, while this one computes
        def patched(*args, **kwargs):
            monkeypatch.setattr(workflow, "certify", real)
            certify_run(run, config=CertificationConfig(sigma=sigma, n0=10, n=50, n_examples=4))
            return real(*args, **kwargs)
        monkeypatch.setattr(workflow, "certify", patched)

    meanwhile(0.5)
    certify_run(run, config=CertificationConfig(sigma=0.25, n0=10, n=50, n_examples=4))
    assert sorted(c.sigma for c in CertificationResult.load(Run.open(run)).certificates) == [0.25, 0.5]
    # the same certificate added by another job meanwhile is not replaced without --overwrite: kept aside
    meanwhile(0.75)
    with pytest.raises(StorageError, match=r"gained smoothing at input, sigma 0.75 from another job"):
        certify_run(run, config=CertificationConfig(sigma=0.75, n0=10, n=50, n_examples=4))
    assert len(list((run / "results").glob("certification.json.conflict-*"))) == 1
